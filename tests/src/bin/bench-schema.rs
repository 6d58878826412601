//! `bench-schema`: the results-pipeline benchmark.
//!
//! ```text
//! cargo run --release -p nessus-tests --bin bench-schema [-- --quick] [--data DIR] [--reps N]
//! ```
//!
//! On generated 2 MB, 100 MB and 1 GB files (cached under `target/bench-data`, generated when
//! missing) it prints, side by side: our convert throughput; a bare quick-xml event scan of the
//! same file and the ratio; the Python reference of the predecessor's pipeline
//! (`tests/bench/predecessor_pipeline.py`, 2 MB and 100 MB only) and our speed-up; peak RSS of
//! convert and of ingest; and the median and p95 latency of filtered pages served from the
//! ingested 100 MB and 1 GB stores. `--quick` skips the 1 GB file.
//!
//! Every convert, scan and ingest run happens in a fresh child process (this binary re-executed
//! in a hidden child mode), so each peak RSS (`VmHWM`) belongs to that one operation.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nessus_tests::generator::{GenOptions, Generator, corpus_dir, parse_size};
use quick_xml::Reader;
use quick_xml::events::Event;
use serde_json::{Value, json};

const CHILD_FLAG: &str = "--child";
const SEED: u64 = 1;
/// Filter of the page-latency measurement, and of nothing else: throughput runs convert every
/// finding, the heaviest output.
const PAGE_FILTER: &str = r#"{"severity":">=3"}"#;
const PAGE_SIZE: u32 = 40;
const PAGE_SAMPLES: usize = 50;
/// Above this size the Python reference is not run: ElementTree needs 5-6x the file in RAM.
const PYTHON_MAX_BYTES: u64 = 200_000_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        child::run(&args[1..])
    } else {
        run(&args)
    };
    if let Err(error) = result {
        eprintln!("bench-schema: {error:#}");
        std::process::exit(1);
    }
}

struct Options {
    sizes: Vec<(String, u64)>,
    data: PathBuf,
    reps: Option<usize>,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut sizes = vec!["2MB", "100MB", "1GB"];
    // The workspace's target directory, whatever CARGO_TARGET_DIR says: the data is large
    // and shared by every build profile.
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("the tests package has a parent directory")?;
    let mut data = workspace.join("target").join("bench-data");
    let mut reps = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--quick" => sizes = vec!["2MB", "100MB"],
            "--data" => data = PathBuf::from(it.next().context("--data needs a directory")?),
            "--reps" => {
                reps = Some(
                    it.next()
                        .context("--reps needs a number")?
                        .parse()
                        .context("--reps must be a positive integer")?,
                );
            }
            "-h" | "--help" => {
                println!("usage: bench-schema [--quick] [--data DIR] [--reps N]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let sizes = sizes
        .into_iter()
        .map(|s| Ok((s.to_owned(), parse_size(s)?)))
        .collect::<anyhow::Result<_>>()?;
    Ok(Options { sizes, data, reps })
}

/// One row of the results table.
struct Row {
    label: String,
    bytes: u64,
    findings: u64,
    convert: Timing,
    scan: Timing,
    python: Option<Timing>,
    convert_rss_kib: u64,
    ingest: Timing,
    ingest_rss_kib: u64,
}

/// Wall-clock and CPU (user + system) time of one run. The machine is shared, so wall
/// time carries other processes' load; CPU time does not, and ratios of it are stable.
#[derive(Debug, Clone, Copy)]
struct Timing {
    wall: Duration,
    cpu: Duration,
}

/// Which of the two times a table shows.
#[derive(Clone, Copy)]
enum Clock {
    Wall,
    Cpu,
}

impl Timing {
    fn get(self, clock: Clock) -> Duration {
        match clock {
            Clock::Wall => self.wall,
            Clock::Cpu => self.cpu,
        }
    }
}

fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let generator = Generator::from_corpus(&corpus_dir())?;
    let python = python_available();
    let mut rows = Vec::new();
    // Page latency is measured on every store of 100 MB and up: DESIGN §10 sets 20 ms at
    // 100 MB and 50 ms at 500 MB, so the 1 GB store (full run) bounds the latter.
    let mut latency_stores = Vec::new();

    for (label, target) in &options.sizes {
        let file = options
            .data
            .join(format!("generated-{label}-seed{SEED}.nessus"));
        eprintln!("[{label}] preparing {}", file.display());
        if let Some(summary) = generator.ensure_file(
            &file,
            &GenOptions {
                target_bytes: *target,
                seed: SEED,
            },
        )? {
            eprintln!(
                "[{label}] generated {} bytes, {} hosts",
                summary.bytes, summary.hosts
            );
        }
        let bytes = std::fs::metadata(&file)?.len();
        // Every case is timed several times and the median kept: on this shared virtual
        // machine a run of a few milliseconds moves by ±20%, and even a 1 GB run was seen
        // at half speed once.
        let reps = options.reps.unwrap_or(if bytes < 10_000_000 {
            25
        } else if bytes < 500_000_000 {
            5
        } else {
            3
        });

        eprintln!("[{label}] bare quick-xml scan and convert, alternating, x{reps}");
        let (scan, convert) = alternating(
            reps,
            &["scan", path_str(&file)?],
            &["convert", path_str(&file)?],
        )?;
        let store = options.data.join(format!("store-{label}-seed{SEED}"));
        eprintln!("[{label}] ingest into {}", store.display());
        let ingest = median_child(1, &["ingest", path_str(&file)?, path_str(&store)?])?;
        let python = if python && bytes <= PYTHON_MAX_BYTES {
            let python_reps = if bytes < 10_000_000 { 7 } else { 3 };
            eprintln!("[{label}] python reference x{python_reps}");
            Some(python_median(python_reps, &file)?)
        } else {
            None
        };
        if *target >= 100_000_000 {
            latency_stores.push((label.clone(), *target, store));
        }
        rows.push(Row {
            label: label.clone(),
            bytes,
            findings: convert.records,
            convert: convert.time,
            scan: scan.time,
            python,
            convert_rss_kib: convert.vmhwm_kib,
            ingest: ingest.time,
            ingest_rss_kib: ingest.vmhwm_kib,
        });
    }

    println!();
    println!("load average: {}", load_average());
    print_table(&rows, python, Clock::Wall);
    print_table(&rows, python, Clock::Cpu);
    print_notes();
    print_speedup_bounds(&rows);
    for (label, target, store) in latency_stores {
        eprintln!("[{label}] page latency from the store");
        let latency = child_run(&["pages", path_str(&store)?])?;
        let limit_ms = if target >= 500_000_000 { 50 } else { 20 };
        print_latency(&label, limit_ms, &latency.extra);
    }
    Ok(())
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

/// What a child run reports.
struct Measured {
    time: Timing,
    vmhwm_kib: u64,
    records: u64,
    extra: Value,
}

fn child_run(args: &[&str]) -> anyhow::Result<Measured> {
    let exe = std::env::current_exe().context("cannot locate the bench binary")?;
    let output = Command::new(exe)
        .arg(CHILD_FLAG)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot start the child process")?;
    if !output.status.success() {
        bail!(
            "child {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("child {args:?} printed no JSON report"))?;
    Ok(Measured {
        time: Timing {
            wall: Duration::from_secs_f64(report["seconds"].as_f64().unwrap_or(f64::NAN)),
            cpu: Duration::from_secs_f64(report["cpu_seconds"].as_f64().unwrap_or(f64::NAN)),
        },
        vmhwm_kib: report["vmhwm_kib"].as_u64().unwrap_or(0),
        records: report["records"].as_u64().unwrap_or(0),
        extra: report,
    })
}

/// Runs a child operation `reps` times; the median time, and the largest peak RSS.
fn median_child(reps: usize, args: &[&str]) -> anyhow::Result<Measured> {
    let runs = (0..reps.max(1))
        .map(|_| child_run(args))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(median(runs))
}

/// Runs two child operations alternately, so that both see the same machine load (the
/// ratio of the two is what matters), and keeps the median of each.
fn alternating(reps: usize, a: &[&str], b: &[&str]) -> anyhow::Result<(Measured, Measured)> {
    let (mut runs_a, mut runs_b) = (Vec::new(), Vec::new());
    for _ in 0..reps.max(1) {
        runs_a.push(child_run(a)?);
        runs_b.push(child_run(b)?);
    }
    Ok((median(runs_a), median(runs_b)))
}

fn median(mut runs: Vec<Measured>) -> Measured {
    let vmhwm_kib = runs.iter().map(|m| m.vmhwm_kib).max().unwrap_or(0);
    runs.sort_by_key(|m| m.time.wall);
    let mut median = runs.swap_remove(runs.len() / 2);
    median.vmhwm_kib = vmhwm_kib;
    median
}

fn python_script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bench/predecessor_pipeline.py"
    ))
}

fn python_available() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("python3 not found: the predecessor reference column will be empty");
    }
    ok
}

/// Times the Python reference converting every finding (`--page 0`, brief), as our convert
/// does; the script times itself, so interpreter start-up is excluded.
fn python_median(reps: usize, file: &Path) -> anyhow::Result<Timing> {
    let mut times = Vec::new();
    for _ in 0..reps {
        let output = Command::new("python3")
            .arg(python_script())
            .arg(file)
            .args(["--page", "0", "--stats"])
            .stdout(Stdio::null())
            .output()
            .context("cannot run python3")?;
        if !output.status.success() {
            bail!(
                "python reference failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stats: Value =
            serde_json::from_slice(&output.stderr).context("python reference printed no stats")?;
        times.push(Timing {
            wall: Duration::from_secs_f64(
                stats["seconds"].as_f64().context("stats without seconds")?,
            ),
            cpu: Duration::from_secs_f64(stats["cpu_seconds"].as_f64().unwrap_or(f64::NAN)),
        });
    }
    times.sort_by_key(|t| t.wall);
    Ok(times[times.len() / 2])
}

fn mb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / 1e6 / time.as_secs_f64()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

fn print_table(rows: &[Row], python: bool, clock: Clock) {
    println!();
    println!(
        "{}",
        match clock {
            Clock::Wall => "by wall-clock time:",
            Clock::Cpu => "by CPU time (user + system; insensitive to other processes' load):",
        }
    );
    println!(
        "{:<6} {:>7} {:>8} | {:>12} {:>10} {:>10} | {:>11} {:>9} | {:>12} {:>10} {:>11}",
        "file",
        "MB",
        "findings",
        "convert MB/s",
        "scan MB/s",
        "ratio≤2.5",
        "python MB/s",
        "speed-up",
        "RSS conv MiB",
        "RSS ingest",
        "ingest MB/s"
    );
    // CPU time is counted in 10 ms ticks: below a few ticks a rate means nothing.
    let usable = |d: Duration| matches!(clock, Clock::Wall) || d >= Duration::from_millis(50);
    let rate = |bytes: u64, d: Duration| {
        if usable(d) {
            format!("{:.1}", mb_per_s(bytes, d))
        } else {
            "-".to_owned()
        }
    };
    let ratio = |a: Duration, b: Duration| {
        if usable(a) && usable(b) {
            format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
        } else {
            "-".to_owned()
        }
    };
    for row in rows {
        let convert = row.convert.get(clock);
        let (python_cell, speedup_cell) = match row.python {
            Some(time) => (
                rate(row.bytes, time.get(clock)),
                match ratio(time.get(clock), convert) {
                    r if r == "-" => r,
                    r => format!("{r}x"),
                },
            ),
            None if python => ("skipped*".to_owned(), "-".to_owned()),
            None => ("n/a".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<6} {:>7.1} {:>8} | {:>12} {:>10} {:>10} | {:>11} {:>9} | {:>12.1} {:>10.1} {:>11}",
            row.label,
            row.bytes as f64 / 1e6,
            row.findings,
            rate(row.bytes, convert),
            rate(row.bytes, row.scan.get(clock)),
            ratio(convert, row.scan.get(clock)),
            python_cell,
            speedup_cell,
            mib(row.convert_rss_kib),
            mib(row.ingest_rss_kib),
            rate(row.bytes, row.ingest.get(clock)),
        );
    }
}

/// What the 10x target asks of each file with a reference run, next to the floor any
/// quick-xml-based converter stands on: a convert cannot take less than the bare scan, so
/// where 10x the reference is under ~1.2x the scan, the two targets cannot both be met.
fn print_speedup_bounds(rows: &[Row]) {
    for row in rows {
        let Some(python) = row.python else { continue };
        let budget = python.wall.as_secs_f64() / 10.0;
        let scan = row.scan.wall.as_secs_f64();
        println!(
            "{}: 10x the reference = convert in {:.2} ms = {:.2}x the bare quick-xml scan ({:.2} ms); measured convert {:.2} ms",
            row.label,
            budget * 1e3,
            budget / scan,
            scan * 1e3,
            row.convert.wall.as_secs_f64() * 1e3,
        );
    }
}

fn print_notes() {
    println!(
        "convert = whole file to JSON-NL (brief profile, every finding) into /dev/null; \
         ratio = convert time / scan time;"
    );
    println!(
        "python = tests/bench/predecessor_pipeline.py --page 0 (same output); \
         * not run above {} MB: ElementTree needs 5-6x the file in RAM (~6 GiB at 1 GB)",
        PYTHON_MAX_BYTES / 1_000_000
    );
    println!(
        "RSS = peak VmHWM of a fresh process doing only that operation (targets: ≤ 64 MB, flat); \
         CPU times count 10 ms ticks, so rates under 50 ms of CPU show as -"
    );
}

fn print_latency(label: &str, limit_ms: u32, report: &Value) {
    println!();
    println!(
        "filtered page from the ingested {label} store, filter {PAGE_FILTER}, page_size {PAGE_SIZE}, \
         {PAGE_SAMPLES} samples each (target: median ≤ {limit_ms} ms)"
    );
    if let Some(cases) = report["cases"].as_array() {
        for case in cases {
            println!(
                "  {:<28} median {:>8.3} ms   p95 {:>8.3} ms   ({} matching findings, {} pages)",
                case["name"].as_str().unwrap_or("?"),
                case["median_ms"].as_f64().unwrap_or(f64::NAN),
                case["p95_ms"].as_f64().unwrap_or(f64::NAN),
                case["total"].as_u64().unwrap_or(0),
                case["pages"].as_u64().unwrap_or(0),
            );
        }
    }
}

/// The hidden child mode: performs one operation and prints a JSON report on stdout.
mod child {
    use super::*;

    pub(super) fn run(args: &[String]) -> anyhow::Result<()> {
        let (op, rest) = args
            .split_first()
            .context("child mode needs an operation")?;
        let started = Instant::now();
        let (records, extra) = match (op.as_str(), rest) {
            ("scan", [file]) => (scan(Path::new(file))?, json!({})),
            ("convert", [file]) => (ours::convert(Path::new(file))?, json!({})),
            ("ingest", [file, store]) => {
                (ours::ingest(Path::new(file), Path::new(store))?, json!({}))
            }
            ("pages", [store]) => (0, ours::pages(Path::new(store))?),
            _ => bail!("unknown child operation {args:?}"),
        };
        let seconds = started.elapsed().as_secs_f64();
        let mut report = json!({
            "seconds": seconds,
            "cpu_seconds": cpu_seconds()?,
            "vmhwm_kib": vmhwm_kib()?,
            "records": records,
        });
        if let (Value::Object(report), Value::Object(extra)) = (&mut report, extra) {
            report.extend(extra);
        }
        println!("{report}");
        Ok(())
    }

    /// User + system CPU time of this process, from `/proc/self/stat` (fields 14 and 15,
    /// in clock ticks of 1/100 s on Linux).
    fn cpu_seconds() -> anyhow::Result<f64> {
        let stat =
            std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
        // The command name (field 2) may contain spaces; the fields after it are plain.
        let after_name = stat
            .rsplit_once(')')
            .context("unexpected /proc/self/stat")?
            .1;
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| -> anyhow::Result<f64> {
            fields
                .get(i)
                .context("short /proc/self/stat")?
                .parse::<f64>()
                .context("non-numeric /proc/self/stat field")
        };
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    /// Peak resident set size of this process, from `/proc/self/status`.
    fn vmhwm_kib() -> anyhow::Result<u64> {
        let status = std::fs::read_to_string("/proc/self/status")
            .context("cannot read /proc/self/status (Linux only)")?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM line in /proc/self/status")
    }

    /// The floor any XML-based converter stands on: every event of the file read with
    /// quick-xml, nothing decoded, nothing kept.
    fn scan(file: &Path) -> anyhow::Result<u64> {
        let input = BufReader::with_capacity(1 << 16, File::open(file)?);
        let mut reader = Reader::from_reader(input);
        let mut buf = Vec::with_capacity(1 << 16);
        let mut events = 0u64;
        loop {
            match reader.read_event_into(&mut buf)? {
                Event::Eof => break,
                _ => events += 1,
            }
            buf.clear();
        }
        Ok(events)
    }

    pub(super) fn open_input(file: &Path) -> anyhow::Result<impl BufRead> {
        Ok(BufReader::with_capacity(
            1 << 16,
            File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
        ))
    }

    pub(super) fn dev_null() -> anyhow::Result<impl Write> {
        Ok(BufWriter::with_capacity(
            1 << 16,
            File::create("/dev/null")?,
        ))
    }
}

/// The operations measured, on the nessus-schema API.
mod ours {
    use super::*;
    use nessus_schema::{Filter, IngestOptions, PageRequest, Query, QueryParams, Store};

    fn options(file: &Path) -> anyhow::Result<IngestOptions> {
        Ok(IngestOptions {
            file_size_bytes: Some(std::fs::metadata(file)?.len()),
            ..IngestOptions::default()
        })
    }

    /// Whole file to JSON-NL, brief profile, every finding, no byte budget: what
    /// `nessus-cli convert FILE > out.jsonl` does.
    pub(super) fn convert(file: &Path) -> anyhow::Result<u64> {
        let query = Query {
            page: PageRequest::All { byte_budget: None },
            ..Query::default()
        };
        let mut out = child::dev_null()?;
        // As `nessus-cli convert FILE` does for a regular file: split in two halves parsed
        // on two threads when the file is 16 MiB or more.
        let info = nessus_schema::convert_file_with(file, &mut out, &query, &options(file)?)?;
        out.flush()?;
        Ok(info.returned)
    }

    /// Parse once into a findings store (replacing a previous one).
    pub(super) fn ingest(file: &Path, store: &Path) -> anyhow::Result<u64> {
        if store.exists() {
            std::fs::remove_dir_all(store)
                .with_context(|| format!("cannot remove the old store {}", store.display()))?;
        }
        let store = Store::ingest_with(child::open_input(file)?, store, &options(file)?)?;
        Ok(store.len() as u64)
    }

    /// Filtered pages from an ingested store: page 1 and the last page, each either opening
    /// the store per call (what a stateless MCP call does) or with the store kept open.
    pub(super) fn pages(dir: &Path) -> anyhow::Result<Value> {
        let filter = Filter::from_json_str(PAGE_FILTER)?;
        let query_for = |page| Query {
            filter: filter.clone(),
            page: PageRequest::Page {
                page,
                size: PAGE_SIZE,
            },
            ..Query::default()
        };
        // What an agent's get_scan_results sends: Query::from_params, so the default
        // answer budget (32 KiB of the whole text) applies.
        let agent_for = |page| {
            Query::from_params(&QueryParams {
                filters: Some(serde_json::from_str(PAGE_FILTER)?),
                page: Some(page),
                page_size: Some(PAGE_SIZE),
                ..QueryParams::default()
            })
            .map_err(anyhow::Error::from)
        };
        let store = Store::open(dir)?;
        let first = store.write_page(&query_for(1), std::io::sink())?;
        let last = u32::try_from(first.total_pages).unwrap_or(u32::MAX);
        let mut cases = Vec::new();
        for (name, page, reopen, agent) in [
            ("page 1, open + page".to_owned(), 1, true, false),
            (
                format!("page {last} (last), open + page"),
                last,
                true,
                false,
            ),
            ("page 1, store already open".to_owned(), 1, false, false),
            (
                format!("page {last} (last), store open"),
                last,
                false,
                false,
            ),
            ("page 1, agent, store open".to_owned(), 1, false, true),
        ] {
            let query = if agent {
                agent_for(page)?
            } else {
                query_for(page)
            };
            let mut samples = Vec::with_capacity(PAGE_SAMPLES);
            for i in 0..PAGE_SAMPLES + 3 {
                let started = Instant::now();
                let mut out = Vec::with_capacity(1 << 16);
                if reopen {
                    Store::open(dir)?.write_page(&query, &mut out)?;
                } else {
                    store.write_page(&query, &mut out)?;
                }
                // The first calls warm the page cache and allocator.
                if i >= 3 {
                    samples.push(started.elapsed());
                }
            }
            samples.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1e3;
            cases.push(json!({
                "name": name,
                "median_ms": ms(samples[samples.len() / 2]),
                "p95_ms": ms(samples[samples.len() * 95 / 100]),
                "total": first.total,
                "pages": first.total_pages,
            }));
        }
        Ok(json!({ "cases": cases }))
    }
}
