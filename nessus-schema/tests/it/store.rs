//! The findings store: pages, cursors, budgets, sorting, consistency of the column index
//! with record evaluation, hosts/compliance lines, diff.

use std::collections::HashSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use nessus_schema::{
    Error, Filter, NessusReader, PageRequest, Profile, Projection, Query, QueryParams, Record,
    SortKey, Store, ValueRef, diff,
};

use crate::{FIXTURE, corpus};

pub(crate) fn ingest(name: &str, dir: &Path) -> Store {
    let file = BufReader::new(File::open(corpus(name)).unwrap());
    Store::ingest(file, &dir.join(name)).unwrap()
}

fn page(store: &Store, q: &Query) -> Vec<serde_json::Value> {
    let (text, _) = store.page_string(q).unwrap();
    text.split('\n')
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect()
}

fn vulns(lines: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .collect()
}

/// The store (column index + record fallback) must agree with evaluating the filter on
/// freshly parsed findings.
fn check(store: &Store, file: &str, filter: &str) {
    let f = Filter::from_json_str(filter).unwrap();
    let direct = NessusReader::new(BufReader::new(File::open(corpus(file)).unwrap()))
        .filter_map(|r| match r.unwrap() {
            Record::Finding(x) => Some(x),
            _ => None,
        })
        .filter(|x| f.matches(x))
        .count() as u64;
    let q = Query {
        filter: f,
        page: PageRequest::All { byte_budget: None },
        ..Query::default()
    };
    let (_, info) = store.page_string(&q).unwrap();
    assert_eq!(info.total, direct, "{file}: {filter}");
}

#[test]
fn index_and_records_agree_on_every_filter() {
    let dir = tempfile::tempdir().unwrap();
    let filters = [
        r#"{"severity":">=2"}"#,
        r#"{"severity":{"lt":1}}"#,
        r#"{"port":{"in":[22,80,443]}}"#,
        r#"{"host":{"cidr":"10.0.0.0/8"}}"#,
        r#"{"host":"192.168"}"#,
        r#"{"protocol":"udp"}"#,
        r#"{"plugin_name":{"regex":"(?i)ssl|tls"}}"#,
        r#"{"plugin_family":"General"}"#,
        r#"{"cvss_score":{"ge":7}}"#,
        r#"{"cvss_base_score":{"exists":true}}"#,
        r#"{"vpr_score":{"gt":5}}"#,
        r#"{"epss_score":{"ge":0.5}}"#,
        r#"{"exploit_available":true}"#,
        r#"{"exploit_available":false}"#,
        r#"{"cve":"CVE-20"}"#,
        r#"{"plugin_output":"apache"}"#,
        r#"{"solution":{"contains":"upgrade"},"severity":{"ge":1}}"#,
        r#"{"svc_name":null}"#,
        r#"{"risk_factor":{"in":["High","Critical"]}}"#,
        r#"{"plugin_id":{"ne":19506}}"#,
    ];
    for file in [
        FIXTURE,
        "auvap__ms2_scan.nessus",
        "libnessus__nessus_report_local_3.nessus",
        "reconmap__nessus-1.xml",
        "ruby-nessus__examples_example_v2.nessus",
        "hdf-libs__compliance.nessus",
    ] {
        let store = ingest(file, dir.path());
        for filter in filters {
            check(&store, file, filter);
        }
    }
}

#[test]
fn paging_and_cursors_cover_every_finding_once_in_default_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let mut seen = Vec::new();
    let mut q = Query {
        projection: Projection::profile(Profile::Full),
        page: PageRequest::Page { page: 1, size: 1 },
        ..Query::default()
    };
    loop {
        let lines = page(&store, &q);
        let pag = lines.last().unwrap();
        assert_eq!(pag["type"], "pagination");
        assert_eq!(pag["page_size"], 10, "page_size 1 is clamped to 10");
        assert_eq!(pag["total_pages"], 4);
        for v in vulns(&lines) {
            seen.push((
                v["severity"].as_i64().unwrap(),
                v["port"].as_i64().unwrap(),
                v["plugin_id"].as_i64().unwrap(),
            ));
        }
        match pag["next_cursor"].as_str() {
            Some(c) => q.page = PageRequest::Cursor(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 40);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    assert_eq!(seen, sorted, "severity desc, then port, then plugin_id");

    // Page numbers give the same pages; past the end there are no records.
    let p5 = Query {
        page: PageRequest::Page { page: 5, size: 10 },
        ..Query::default()
    };
    let lines = page(&store, &p5);
    assert!(vulns(&lines).is_empty());
    assert_eq!(lines.last().unwrap()["has_next"], false);

    // A cursor from another filter is refused.
    let other = Query {
        filter: Filter::from_json_str(r#"{"severity":"4"}"#).unwrap(),
        page: PageRequest::Page { page: 1, size: 10 },
        ..Query::default()
    };
    let cursor = store.page_string(&other).unwrap().1.next_cursor.unwrap();
    let wrong = Query {
        page: PageRequest::Cursor(cursor),
        ..Query::default()
    };
    assert!(matches!(
        store.page_string(&wrong),
        Err(Error::InvalidCursor { .. })
    ));
}

#[test]
fn everything_is_capped_by_the_byte_budget_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let params = QueryParams {
        page: Some(0),
        schema_profile: Some("full".into()),
        byte_budget: Some(50_000),
        ..QueryParams::default()
    };
    let q = Query::from_params(&params).unwrap();
    let (text, info) = store.page_string(&q).unwrap();
    assert!(info.truncated);
    assert!(info.returned > 0 && info.returned < 40);
    // The budget bounds the whole answer now, not only its record lines.
    assert!(text.len() <= 50_000, "{}", text.len());
    let last: serde_json::Value = serde_json::from_str(text.rsplit('\n').next().unwrap()).unwrap();
    assert_eq!(last["type"], "truncated");
    assert_eq!(last["byte_budget"], 50_000);
    assert_eq!(last["total_vulnerabilities"], 40);
    assert_eq!(last["returned"], info.returned);
    assert_eq!(last["truncated"], true);
    assert!(last["next"].as_str().unwrap().contains("next_cursor"));
    // Uncut, page=0 ends with an `end` line (never `pagination`: the predecessor's
    // clients check that page=0 has none).
    let all = Query::from_params(&QueryParams {
        page: Some(0),
        schema_profile: Some("minimal".into()),
        ..QueryParams::default()
    })
    .unwrap();
    let lines = page(&store, &all);
    assert_eq!(lines.len(), 43);
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["returned"], 40);
    assert_eq!(end["total_vulnerabilities"], 40);
    assert_eq!(end["truncated"], false);
    assert!(lines.iter().all(|l| l["type"] != "pagination"));
    // Issue 14: minimal gained plugin_name, port and host_ip (after the predecessor's
    // fields, in this order); host_ip is left out on this IP-named host.
    let order = [
        "type",
        "host",
        "plugin_id",
        "severity",
        "cve",
        "cvss_score",
        "exploit_available",
        "plugin_name",
        "port",
        "host_ip",
    ];
    for v in vulns(&lines) {
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let expected: Vec<&str> = order.iter().copied().filter(|k| keys.contains(k)).collect();
        assert_eq!(keys, expected, "profile order, absent fields omitted");
    }
}

#[test]
fn query_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let q = Query {
        filter: Filter::from_json_str(r#"{"severty":"4"}"#).unwrap(),
        ..Query::default()
    };
    match store.page_string(&q) {
        Err(Error::UnknownField { field, suggestion }) => {
            assert_eq!(field, "severty");
            assert_eq!(suggestion.as_deref(), Some("severity"));
        }
        other => panic!("{other:?}"),
    }
    let both = QueryParams {
        schema_profile: Some("full".into()),
        custom_fields: Some(vec![]),
        ..QueryParams::default()
    };
    assert_eq!(
        Query::from_params(&both).unwrap_err().to_string(),
        "Cannot specify both schema_profile and custom_fields"
    );
    let bad = QueryParams {
        schema_profile: Some("xyz".into()),
        ..QueryParams::default()
    };
    assert_eq!(
        Query::from_params(&bad).unwrap_err().to_string(),
        "Invalid schema profile: xyz. Must be one of: ['minimal', 'summary', 'brief', 'full']"
    );
    assert!(SortKey::parse("sevrity").is_err());
    assert!(Store::ingest(&b""[..], &dir.path().join("empty")).is_err());
    assert!(
        !dir.path().join("empty").exists(),
        "a failed ingest leaves nothing behind"
    );
    assert!(
        Store::ingest(&b""[..], &dir.path().join(FIXTURE)).is_err(),
        "existing store"
    );
}

#[test]
fn custom_sort_and_custom_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest("auvap__ms2_scan.nessus", dir.path());
    let q = Query::from_params(&QueryParams {
        custom_fields: Some(vec![
            "plugin_id".into(),
            "cvss_score".into(),
            "vpr_score".into(),
        ]),
        sort: Some("cvss_score:desc,plugin_id".into()),
        page: Some(1),
        page_size: Some(100),
        ..QueryParams::default()
    })
    .unwrap();
    let lines = page(&store, &q);
    assert_eq!(lines[0]["profile"], "custom");
    let scores: Vec<f64> = vulns(&lines)
        .iter()
        .filter_map(|v| v.get("cvss_score").and_then(|s| s.as_f64()))
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
    // Ghostcat: CVSS v3 9.8 wins over v2 7.5.
    let ghostcat = vulns(&lines)
        .into_iter()
        .find(|v| v["plugin_id"] == 134862)
        .unwrap();
    assert_eq!(ghostcat["cvss_score"], 9.8);
}

#[test]
fn hosts_and_compliance_lines_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest("hdf-libs__compliance.nessus", dir.path());
    let q = Query {
        include_hosts: true,
        include_compliance: true,
        ..Query::default()
    };
    let lines = page(&store, &q);
    let hosts: Vec<_> = lines.iter().filter(|l| l["type"] == "host").collect();
    assert_eq!(hosts.len(), 1);
    assert_eq!(lines[2]["type"], "host", "hosts follow scan_metadata");
    let compliance: Vec<_> = lines.iter().filter(|l| l["type"] == "compliance").collect();
    let mut results: Vec<&str> = compliance
        .iter()
        .map(|c| c["result"].as_str().unwrap())
        .collect();
    results.sort();
    assert_eq!(results, ["ERROR", "FAILED", "FAILED", "PASSED", "WARNING"]);
    let refs: Vec<&str> = compliance
        .iter()
        .filter_map(|c| c["reference"].as_str())
        .collect();
    assert!(refs.iter().any(|r| r.contains("V-71849")), "{refs:?}");
    assert_eq!(store.summary().compliance_counts["FAILED"], 2);
}

#[test]
fn reopened_store_serves_the_same_and_keeps_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest("libnessus__nessus_report_local_3.nessus", dir.path());
    let again = Store::open(store.dir()).unwrap();
    let q = Query::default();
    assert_eq!(
        store.page_string(&q).unwrap().0,
        again.page_string(&q).unwrap().0
    );
    let s = again.summary();
    assert_eq!(s.hosts_scanned, 3);
    assert_eq!(
        s.hosts.iter().map(|h| h.findings).collect::<Vec<_>>(),
        [2, 31, 73]
    );
    assert_eq!(
        s.scan.scan_start.as_deref(),
        Some("Thu Mar 20 00:30:57 2014")
    );
    assert_eq!(s.scan.scan_end.as_deref(), Some("Thu Mar 20 01:22:17 2014"));
    let hosts = again.hosts().unwrap();
    assert_eq!(
        hosts
            .iter()
            .map(|h| h.property("patch-summary-total-cves"))
            .collect::<Vec<_>>(),
        [Some("0"), Some("9"), Some("43")]
    );
    assert_eq!(hosts[0].end.as_deref(), Some("Thu Mar 20 01:07:03 2014"));
}

#[test]
fn other_manifest_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    // VPR 9.0 from both element names.
    for file in [
        "dradis-nessus__vpr_score.xml",
        "dradis-nessus__vulnerability_priority_rating.xml",
    ] {
        let store = ingest(file, dir.path());
        let f = store.findings().unwrap().next().unwrap().unwrap();
        assert_eq!(f.child("vpr_score"), Some(ValueRef::Float(9.0)), "{file}");
    }
    // CWE 94 (a list, as every repeated cross-reference kind).
    let store = ingest("defectdojo__nessus_with_cwe-.nessus", dir.path());
    let f = store.findings().unwrap().next().unwrap().unwrap();
    assert!(matches!(f.child("cwe"), Some(ValueRef::List(l)) if l.iter().any(|c| c == "CWE-94")));
    // libnessus's forged report: the five items with their attributes.
    let store = ingest(
        "libnessus__nessus_forgedReport_ReportItem.nessus",
        dir.path(),
    );
    let mut got: Vec<_> = store
        .findings()
        .unwrap()
        .map(|f| {
            let f = f.unwrap();
            (
                f.plugin_id.unwrap(),
                f.severity.unwrap(),
                f.port.unwrap(),
                f.protocol.unwrap(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (10544, 4, 33489, "udp".into()),
            (19506, 0, 0, "tcp".into()),
            (60020, 0, 0, "tcp".into()),
            (64381, 3, 0, "tcp".into()),
            (66334, 0, 0, "tcp".into()),
        ]
    );
    // localpci: host property and double-spaced times kept verbatim.
    let store = ingest("libnessus__nessus_report_localpci.nessus", dir.path());
    let h = &store.hosts().unwrap()[0];
    assert_eq!(h.property("patch-summary-total-cves"), Some("156"));
    assert_eq!(h.start.as_deref(), Some("Tue Jan  7 08:19:20 2014"));
    assert_eq!(h.fqdn.as_deref(), Some("python-dev"));
    // reconmap-1: 288 ReportItems that are not "Nessus Scan Information".
    let store = ingest("reconmap__nessus-1.xml", dir.path());
    let q = Query {
        filter: Filter::from_json_str(r#"{"plugin_name":{"ne":"Nessus Scan Information"}}"#)
            .unwrap(),
        ..Query::default()
    };
    assert_eq!(store.page_string(&q).unwrap().1.total, 288);
    // ruby-nessus: snorby.org's last event and the unique port set.
    let store = ingest("ruby-nessus__examples_example_v2.nessus", dir.path());
    let ports: std::collections::BTreeSet<u32> = store
        .findings()
        .unwrap()
        .map(|f| f.unwrap().port.unwrap())
        .collect();
    assert_eq!(
        ports.into_iter().collect::<Vec<_>>(),
        [0, 21, 22, 25, 53, 80, 123, 443, 554, 7070, 9090]
    );
    let s = store.summary();
    assert_eq!(
        (
            s.severity_counts.low,
            s.severity_counts.medium,
            s.total_vulnerabilities
        ),
        (47, 3, 50)
    );
}

#[test]
fn diff_of_two_scans() {
    let dir = tempfile::tempdir().unwrap();
    let old = ingest(FIXTURE, dir.path());
    let text = std::fs::read_to_string(corpus(FIXTURE)).unwrap();
    // The newer scan: one finding fixed (plugin 19506 removed), one severity changed.
    let start = text.find(r#"pluginID="19506""#).unwrap();
    let item_start = text[..start].rfind("<ReportItem").unwrap();
    let item_end = start + text[start..].find("</ReportItem>").unwrap() + "</ReportItem>".len();
    let mut newer = format!("{}{}", &text[..item_start], &text[item_end..]);
    let sev = newer.find(r#"severity="4" pluginID="150280""#).unwrap();
    newer.replace_range(sev..sev + r#"severity="4""#.len(), r#"severity="3""#);
    let new = Store::ingest(newer.as_bytes(), &dir.path().join("newer")).unwrap();
    let d = diff(&old, &new).unwrap();
    assert_eq!(d.fixed.len(), 1);
    assert_eq!(d.fixed[0].fingerprint.plugin_id, Some(19506));
    assert!(d.new.is_empty());
    assert_eq!(d.severity_changed.len(), 1);
    assert_eq!(d.severity_changed[0].old_severity, Some(4));
    assert_eq!(d.severity_changed[0].new_severity, Some(3));
    assert_eq!(d.unchanged.len(), 38);
    let reverse = diff(&new, &old).unwrap();
    assert_eq!(reverse.new.len(), 1);
}

#[test]
fn convert_matches_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        QueryParams::default(),
        QueryParams {
            schema_profile: Some("full".into()),
            page: Some(0),
            include_hosts: true,
            include_compliance: true,
            ..QueryParams::default()
        },
        QueryParams {
            filters: Some(
                serde_json::json!({"severity": {"ge": 1}, "host": {"cidr": "10.0.0.0/8"}}),
            ),
            sort: Some("cvss_score,port:desc".into()),
            page: Some(2),
            page_size: Some(10),
            ..QueryParams::default()
        },
        QueryParams {
            custom_fields: Some(vec!["plugin_name".into(), "cve".into(), "vpr_score".into()]),
            filters: Some(serde_json::json!({"plugin_output": "apache"})),
            page: Some(0),
            byte_budget: Some(20_000),
            ..QueryParams::default()
        },
    ];
    let strip = |text: &str| -> Vec<serde_json::Value> {
        text.split('\n')
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("next_cursor");
                v
            })
            .collect()
    };
    for file in [
        "auvap__ms2_scan.nessus",
        "hdf-libs__compliance.nessus",
        "reconmap__nessus-1.xml",
    ] {
        let store = ingest(file, dir.path());
        for params in &cases {
            let q = Query::from_params(params).unwrap();
            let (from_store, _) = store.page_string(&q).unwrap();
            let mut out = Vec::new();
            let input = BufReader::new(File::open(corpus(file)).unwrap());
            nessus_schema::convert(input, &mut out, &q).unwrap();
            assert_eq!(
                strip(&String::from_utf8(out).unwrap()),
                strip(&from_store),
                "{file}: {params:?}"
            );
        }
    }
    let bad = Query {
        filter: Filter::from_json_str(r#"{"plugin_outptu":"x"}"#).unwrap(),
        ..Query::default()
    };
    let input = BufReader::new(File::open(corpus(FIXTURE)).unwrap());
    assert!(matches!(
        nessus_schema::convert(input, Vec::new(), &bad),
        Err(Error::UnknownField { suggestion: Some(s), .. }) if s == "plugin_output"
    ));
}

#[test]
fn a_corrupt_store_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let path = store.dir().to_owned();
    drop(store);
    let index = path.join("index.bin");
    let mut bytes = std::fs::read(&index).unwrap();
    bytes[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // first row's record length
    std::fs::write(&index, &bytes).unwrap();
    assert!(matches!(Store::open(&path), Err(Error::Store { .. })));
    std::fs::write(&index, &bytes[..100]).unwrap();
    assert!(matches!(Store::open(&path), Err(Error::Store { .. })));
    std::fs::write(path.join("meta.json"), b"{").unwrap();
    assert!(matches!(Store::open(&path), Err(Error::Store { .. })));
}
