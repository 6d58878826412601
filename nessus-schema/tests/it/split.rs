//! `convert_file` (a file split at a `<ReportHost` and parsed on two threads) writes
//! exactly what `convert` writes, and fails with exactly its errors.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use nessus_schema::{IngestOptions, PageInfo, Query, QueryParams};

use crate::corpus;

/// The queries every input is converted with (also by the encodings tests).
pub(crate) fn queries() -> Vec<QueryParams> {
    let all = |p: QueryParams| QueryParams { page: Some(0), ..p };
    vec![
        QueryParams::default(),
        all(QueryParams::default()),
        all(QueryParams {
            include_hosts: true,
            include_compliance: true,
            ..QueryParams::default()
        }),
        all(QueryParams {
            byte_budget: Some(30_000),
            ..QueryParams::default()
        }),
        QueryParams {
            filters: Some(serde_json::json!({"severity": ">=2"})),
            page: Some(2),
            page_size: Some(10),
            ..QueryParams::default()
        },
        all(QueryParams {
            filters: Some(serde_json::json!({"host": {"cidr": "10.0.0.0/8"}, "port": {"ne": 0}})),
            ..QueryParams::default()
        }),
        all(QueryParams {
            custom_fields: Some(vec![
                "plugin_name".into(),
                "description".into(),
                "solution".into(),
                "cve".into(),
            ]),
            ..QueryParams::default()
        }),
        all(QueryParams {
            schema_profile: Some("full".into()),
            include_hosts: true,
            ..QueryParams::default()
        }),
        QueryParams {
            sort: Some("cvss_score,port:desc".into()),
            page: Some(1),
            page_size: Some(25),
            ..QueryParams::default()
        },
        // Unknown fields: the same error.
        all(QueryParams {
            filters: Some(serde_json::json!({"plugin_outptu": "x"})),
            ..QueryParams::default()
        }),
        // Issue 14's host rules and host fields: resolved against every host, also those
        // of the other half.
        all(QueryParams {
            filters: Some(serde_json::json!({"host": "10.31.112.21"})),
            schema_profile: Some("minimal".into()),
            ..QueryParams::default()
        }),
        all(QueryParams {
            filters: Some(
                serde_json::json!({"host_ip": {"cidr": "10.0.0.0/8"}, "severity": ">=low"}),
            ),
            custom_fields: Some(vec!["host".into(), "host_ip".into(), "netbios_name".into()]),
            ..QueryParams::default()
        }),
        all(QueryParams {
            custom_fields: Some(vec!["no_such_field".into()]),
            ..QueryParams::default()
        }),
    ]
}

fn sequential(path: &Path, q: &Query) -> (Vec<u8>, Result<PageInfo, String>) {
    let mut out = Vec::new();
    let input = BufReader::new(File::open(path).unwrap());
    let info = nessus_schema::convert(input, &mut out, q).map_err(|e| format!("{e:?}"));
    (out, info)
}

fn split(path: &Path, q: &Query) -> (Vec<u8>, Result<PageInfo, String>) {
    let mut out = Vec::new();
    let options = IngestOptions {
        parallel_min_bytes: Some(0),
        ..IngestOptions::default()
    };
    let info =
        nessus_schema::convert_file_with(path, &mut out, q, &options).map_err(|e| format!("{e:?}"));
    (out, info)
}

/// `convert_file` with the parallel path forced gives `convert`'s bytes and page info (or
/// error) for every query, and for a cursor to page 2.
fn check(path: &Path) {
    let name = path.display();
    for params in queries() {
        let q = Query::from_params(&params).unwrap();
        let (want, want_info) = sequential(path, &q);
        let (got, got_info) = split(path, &q);
        assert_eq!(got_info, want_info, "{name}: {params:?}");
        assert!(got == want, "{name}: {params:?}: output differs");
        if let Ok(PageInfo {
            next_cursor: Some(cursor),
            ..
        }) = want_info
        {
            let q = Query::from_params(&QueryParams {
                cursor: Some(cursor),
                ..params.clone()
            })
            .unwrap();
            let (want, want_info) = sequential(path, &q);
            let (got, got_info) = split(path, &q);
            assert_eq!(got_info, want_info, "{name}: cursor {params:?}");
            assert!(got == want, "{name}: cursor {params:?}: output differs");
        }
    }
}

#[test]
fn every_corpus_file_converts_the_same_on_two_threads() {
    for entry in std::fs::read_dir(corpus("")).unwrap() {
        check(&entry.unwrap().path());
    }
}

/// A document of `copies` rounds of a corpus file's hosts, renamed per round (round
/// `reuse` takes round 0's names again: a host that appears twice, once in each half),
/// with `middle` inserted between the two halves of the rounds.
fn generated(source: &str, copies: usize, reuse: usize, middle: &str) -> String {
    let text = std::fs::read_to_string(corpus(source)).unwrap();
    let first = text.find("<ReportHost").unwrap();
    let last = text.rfind("</ReportHost>").unwrap() + "</ReportHost>".len();
    let (head, body, tail) = (&text[..first], &text[first..last], &text[last..]);
    let hosts: Vec<&str> = body
        .split_inclusive("</ReportHost>")
        .map(|h| h.trim_start())
        .collect();
    let mut out = String::from(head);
    for round in 0..copies {
        if round == copies / 2 {
            out.push_str(middle);
        }
        let named = if round == reuse { 0 } else { round };
        for (i, h) in hosts.iter().enumerate() {
            let start = h.find("name=\"").unwrap() + "name=\"".len();
            let end = start + h[start..].find('"').unwrap();
            // Names and addresses, so that the host order mixes both halves.
            let name = if i % 2 == 0 {
                format!("10.{}.{}.{}", i, named % 7, named)
            } else {
                format!("host-{named}-{i}.example")
            };
            out.push_str(&h[..start]);
            out.push_str(&name);
            out.push_str(&h[end..]);
            out.push_str(if round % 2 == 0 { "\n" } else { "\n  \n\t" });
        }
    }
    out.push_str(tail);
    out
}

#[test]
fn generated_files_convert_the_same_on_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let pad = "x".repeat(3_000_000);
    let cases = [
        // Multi-MB, a host in both halves, names and addresses.
        (
            "many",
            generated("libnessus__nessus_report_local_3.nessus", 8, 6, ""),
        ),
        (
            "compliance",
            generated("hdf-libs__compliance.nessus", 40, 30, "<!-- between -->"),
        ),
        // The first `<ReportHost` past the middle is inside a comment, a CDATA section or
        // a processing instruction: not a boundary.
        (
            "comment",
            generated(
                "reconmap__nessus-1.xml",
                4,
                99,
                &format!("<!-- {pad} <ReportHost name=\"fake\"> -->"),
            ),
        ),
        (
            "cdata",
            generated(
                "reconmap__nessus-1.xml",
                4,
                99,
                &format!("<![CDATA[ {pad} <ReportHost name=\"fake\"> ]]>"),
            ),
        ),
        (
            "pi",
            generated(
                "reconmap__nessus-1.xml",
                4,
                99,
                &format!("<?pi {pad} <ReportHost name=\"fake\"> ?>"),
            ),
        ),
        // A second report in the second half (its name is the header's).
        (
            "two-reports",
            generated(
                "libnessus__nessus_report_local_3.nessus",
                8,
                99,
                "</Report><Report name=\"second\" xmlns:cm=\"http://www.nessus.org/cm\">",
            ),
        ),
    ];
    for (name, text) in &cases {
        check(&write(name, text));
        if ["cdata", "pi"].contains(name) {
            continue;
        }
        // Cut short: in the second half, in the first, in the closing tags.
        for cut in [text.len() * 3 / 4, text.len() / 4, text.len() - 10] {
            let cut = (0..=cut).rev().find(|&i| text.is_char_boundary(i)).unwrap();
            check(&write(&format!("{name}-cut"), &text[..cut]));
        }
    }
    // Malformed XML and bad values in either half: the sequential error, byte and line.
    let many = &cases[0].1;
    for (at, from, to) in [
        (3, "</ReportItem>", "</ReportItme>"),
        (1, "</ReportItem>", "</ReportItme>"),
        (3, "severity=\"", "severity=\"x"),
        (3, "<ReportHost ", "<ReportHost name=\"dup\" "),
        (3, "</ReportHost>", "</ReportHost></Report>"),
    ] {
        let pos = many.len() * at / 4;
        let i = pos + many[pos..].find(from).unwrap();
        let bad = format!("{}{to}{}", &many[..i], &many[i + from.len()..]);
        check(&write("bad", &bad));
    }
}
