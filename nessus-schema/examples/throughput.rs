//! Rough local throughput check: `cargo run --release -p nessus-schema --example throughput -- FILE [scan|ingest|convert|page|all]`.
//!
//! Prints MB/s of a bare quick-xml event scan, of ingest, and of convert (page=0, no
//! budget) on the same file, and the median time of a filtered page from the store. The
//! project's benchmark harness (in `tests/`) is the reference; this is for quick checks.

use std::fs::File;
use std::io::{BufReader, sink};
use std::path::Path;
use std::time::Instant;

use nessus_schema::{Filter, PageRequest, Query, Store, convert};

fn mbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

fn bare_scan(path: &Path) -> u64 {
    let mut r = quick_xml::Reader::from_reader(BufReader::with_capacity(
        1 << 16,
        File::open(path).unwrap(),
    ));
    let mut buf = Vec::new();
    let mut events = 0u64;
    loop {
        match r.read_event_into(&mut buf) {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => events += 1,
            Err(e) => panic!("{e}"),
        }
        buf.clear();
    }
    events
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: throughput FILE [mode]");
    let mode = args.next().unwrap_or_else(|| "all".to_owned());
    let path = Path::new(&path);
    let size = std::fs::metadata(path).unwrap().len();
    let all = mode == "all";
    if all || mode == "scan" {
        let t = Instant::now();
        let events = bare_scan(path);
        let s = t.elapsed().as_secs_f64();
        println!(
            "bare quick-xml scan: {events} events, {s:.3}s, {:.0} MB/s",
            mbps(size, s)
        );
    }
    if all || mode == "parse" {
        let t = Instant::now();
        let mut n = 0u64;
        for r in nessus_schema::NessusReader::new(BufReader::with_capacity(
            1 << 16,
            File::open(path).unwrap(),
        )) {
            r.unwrap();
            n += 1;
        }
        let s = t.elapsed().as_secs_f64();
        println!(
            "parse to records: {n} records, {s:.3}s, {:.0} MB/s",
            mbps(size, s)
        );
    }
    if all || mode == "convert" {
        let q = Query {
            page: PageRequest::All { byte_budget: None },
            projection: nessus_schema::Projection::profile(nessus_schema::Profile::Full),
            ..Query::default()
        };
        let t = Instant::now();
        let info = convert(
            BufReader::with_capacity(1 << 16, File::open(path).unwrap()),
            sink(),
            &q,
        )
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "convert (full, page=0): {} findings, {} bytes out, {s:.3}s, {:.0} MB/s",
            info.total,
            info.bytes_written,
            mbps(size, s)
        );
    }
    if all || mode == "ingest" || mode == "page" {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("s");
        let t = Instant::now();
        let store = Store::ingest(
            BufReader::with_capacity(1 << 16, File::open(path).unwrap()),
            &store_dir,
        )
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        println!(
            "ingest: {} findings, {s:.3}s, {:.0} MB/s",
            store.len(),
            mbps(size, s)
        );
        if all || mode == "page" {
            for filter in [
                r#"{"severity":">=3"}"#,
                r#"{"port":"22"}"#,
                r#"{"plugin_output":"apache"}"#,
                // Resolved against the host table, evaluated per host, not per record.
                r#"{"host":"10.31.112.21"}"#,
                r#"{"host_fqdn":"qa3app0"}"#,
            ] {
                let mut times = Vec::new();
                for page in 1..=21u32 {
                    let t = Instant::now();
                    let store = Store::open(&store_dir).unwrap();
                    let q = Query {
                        filter: Filter::from_json_str(filter).unwrap(),
                        page: PageRequest::Page { page, size: 40 },
                        ..Query::default()
                    };
                    store.write_page(&q, sink()).unwrap();
                    times.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                times.sort_by(f64::total_cmp);
                println!(
                    "page (open + {filter}, pages 1..21): median {:.2} ms, max {:.2} ms",
                    times[10], times[20]
                );
            }
        }
    }
}
