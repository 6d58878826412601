//! The predecessor's fixture (`sample_scan.nessus`): ground truth from seed-spec §7 and §9.

use std::fs::File;
use std::io::BufReader;

use nessus_schema::{
    AuthenticationStatus, Filter, PageRequest, Profile, Projection, Query, Summary, convert,
};

use crate::{FIXTURE, corpus};

fn run(query: &Query) -> (String, nessus_schema::PageInfo) {
    let file = BufReader::new(File::open(corpus(FIXTURE)).unwrap());
    let mut out = Vec::new();
    let info = convert(file, &mut out, query).unwrap();
    (String::from_utf8(out).unwrap(), info)
}

fn query(filter: &str, profile: Profile) -> Query {
    Query {
        projection: Projection::profile(profile),
        filter: Filter::from_json_str(filter).unwrap(),
        page: PageRequest::All { byte_budget: None },
        ..Query::default()
    }
}

/// One ground-truth filter total, checked with every profile: filters run before
/// projection, so the profile must not change the count.
fn check(filter: &str, expected: u64) {
    for profile in [
        Profile::Minimal,
        Profile::Summary,
        Profile::Brief,
        Profile::Full,
    ] {
        let (text, info) = run(&query(filter, profile));
        assert_eq!(info.total, expected, "{filter} with {profile:?}");
        let vulns = text
            .lines()
            .filter(|l| l.contains(r#""type": "vulnerability""#))
            .count();
        assert_eq!(vulns as u64, expected, "{filter} with {profile:?}: lines");
    }
}

#[test]
fn ground_truth_filter_totals() {
    check("{}", 40);
    check(r#"{"severity":"4"}"#, 11);
    check(r#"{"severity":">=3"}"#, 20);
    check(r#"{"cvss3_base_score":">=9"}"#, 11);
    check(r#"{"port":"22"}"#, 8);
    check(r#"{"severity":{"ge":3}}"#, 20);
    check(r#"{"severity":{"in":[3,4]},"port":{"ne":22}}"#, 20);
    check(r#"{"severity":{"in":[3,4]},"port":22}"#, 0);
}

#[test]
fn summary_and_credential_check() {
    let file = BufReader::new(File::open(corpus(FIXTURE)).unwrap());
    let s = Summary::from_reader(file, 2_063_924).unwrap();
    assert_eq!(s.file_size_bytes, 2_063_924);
    assert_eq!(s.hosts_scanned, 1);
    assert_eq!(s.total_plugins, 40);
    assert_eq!(s.auth_plugins_found, 1);
    assert_eq!(s.credentialed_status_raw.as_deref(), Some("no"));
    let c = s.severity_counts;
    assert_eq!(
        (c.critical, c.high, c.medium, c.low, c.info),
        (11, 9, 3, 1, 16)
    );
    assert_eq!(s.total_vulnerabilities, 24);
    assert_eq!(
        s.authentication_status(false),
        AuthenticationStatus::NotApplicable
    );
    assert_eq!(s.authentication_status(true), AuthenticationStatus::Failed);
    assert_eq!(s.hosts[0].credentialed, nessus_schema::Credentialed::No);
}

#[test]
fn golden_framing_of_the_spec_example() {
    let q = Query {
        filter: Filter::from_json_str(r#"{"severity": "4"}"#).unwrap(),
        page: PageRequest::Page { page: 1, size: 10 },
        ..Query::default()
    };
    let (text, info) = run(&q);
    assert!(!text.ends_with('\n'), "no trailing newline");
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), 13, "schema + metadata + 10 + pagination");
    assert_eq!(
        lines[0],
        r#"{"type": "schema", "profile": "brief", "fields": ["host", "plugin_id", "severity", "cve", "cvss_score", "exploit_available", "plugin_name", "port", "host_ip", "protocol", "cvss3_base_score", "synopsis", "description", "solution"], "filters_applied": {"severity": "4"}, "total_vulnerabilities": 11, "total_pages": 2}"#
    );
    assert!(
        lines[1].starts_with(
            r#"{"type": "scan_metadata", "scan_name": "Integration Test - Complete Scan 172.32.0.215""#
        ),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with(r#"{"type": "vulnerability", "host": "172.32.0.215", "plugin_id": "#),
        "{}",
        lines[2]
    );
    let cursor = info.next_cursor.unwrap();
    assert_eq!(
        lines[12],
        format!(
            r#"{{"type": "pagination", "page": 1, "page_size": 10, "total_pages": 2, "has_next": true, "next_page": 2, "next_cursor": "{cursor}", "returned": 10, "truncated": false, "next": "1 more finding: ask for page 2 or pass next_cursor"}}"#
        )
    );
    // The spec's example record, typed: numbers are numbers.
    let apache = lines
        .iter()
        .find(|l| l.contains(r#""plugin_id": 150280,"#))
        .expect("plugin 150280 on page 1");
    assert!(
        apache.starts_with(
            r#"{"type": "vulnerability", "host": "172.32.0.215", "plugin_id": 150280, "severity": 4, "cve": ["CVE-2019-17567", "#
        ),
        "{apache}"
    );
    // Issue 14: brief now carries port and protocol (and host_ip, omitted here: the host
    // is named by its address).
    assert!(apache.contains(r#""plugin_name": "Apache 2.4.x < 2.4.47 Multiple Vulnerabilities", "port": 80, "protocol": "tcp", "cvss3_base_score": 9.8"#));
    assert!(!apache.contains("host_ip"), "{apache}");
}
