//! Every corpus file parses with the MANIFEST's counts, or fails with the predicted error.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;

use nessus_schema::{Error, NessusReader, Record};

use crate::corpus;

#[derive(Debug, Default)]
struct Counts {
    hosts: usize,
    findings: usize,
    severities: BTreeMap<u8, usize>,
    per_host: Vec<usize>,
    compliance: Vec<String>,
}

fn read(name: &str) -> Result<Counts, Error> {
    let file = File::open(corpus(name)).expect("corpus file exists");
    let mut c = Counts::default();
    for r in NessusReader::new(BufReader::new(file)) {
        match r? {
            Record::Host(_) => {
                c.hosts += 1;
                c.per_host.push(0);
            }
            Record::Finding(f) => {
                c.findings += 1;
                *c.severities.entry(f.severity.unwrap_or(255)).or_default() += 1;
                if let Some(n) = c.per_host.last_mut() {
                    *n += 1;
                }
            }
            Record::Compliance(x) => c.compliance.push(x.result.unwrap_or_default()),
            _ => {}
        }
    }
    Ok(c)
}

/// Expected outcome of one corpus file.
enum Expect {
    /// hosts, findings, severity histogram.
    Ok(usize, usize, &'static [(u8, usize)]),
    Fails(fn(&Error) -> bool),
}

fn check(name: &str, expect: Expect) {
    let got = read(name);
    match (expect, got) {
        (Expect::Ok(hosts, findings, sev), Ok(c)) => {
            assert_eq!(
                (c.hosts, c.findings),
                (hosts, findings),
                "{name}: hosts/findings"
            );
            let want: BTreeMap<u8, usize> = sev.iter().copied().collect();
            assert_eq!(c.severities, want, "{name}: severity histogram");
        }
        (Expect::Ok(..), Err(e)) => panic!("{name}: expected to parse, got {e}"),
        (Expect::Fails(pred), Err(e)) => assert!(pred(&e), "{name}: unexpected error {e:?}"),
        (Expect::Fails(_), Ok(c)) => panic!("{name}: expected an error, parsed {c:?}"),
    }
}

#[test]
fn every_corpus_file_matches_the_manifest() {
    use Expect::{Fails, Ok};
    let cases: Vec<(&str, Expect)> = vec![
        (
            "auvap__ms2_scan.nessus",
            Ok(1, 181, &[(0, 131), (1, 8), (2, 26), (3, 5), (4, 11)]),
        ),
        ("defectdojo__issue_6992.nessus", Ok(1, 1, &[(2, 1)])),
        ("defectdojo__nessus_many_vuln.xml", Ok(1, 7, &[(0, 7)])),
        (
            "defectdojo__nessus_v_unknown.xml",
            Ok(7, 296, &[(0, 266), (1, 7), (2, 23)]),
        ),
        ("defectdojo__nessus_was_no_vuln.xml", Ok(1, 0, &[])),
        ("defectdojo__nessus_was_one_vuln.xml", Ok(1, 1, &[(3, 1)])),
        (
            "defectdojo__nessus_with_cvssv3.nessus",
            Ok(1, 49, &[(0, 23), (1, 1), (2, 13), (3, 10), (4, 2)]),
        ),
        ("defectdojo__nessus_with_cwe-.nessus", Ok(1, 1, &[(3, 1)])),
        (
            "dradis-nessus__report_item-with-list.xml",
            Ok(0, 1, &[(2, 1)]),
        ),
        ("dradis-nessus__vpr_score.xml", Ok(1, 1, &[(1, 1)])),
        (
            "dradis-nessus__vulnerability_priority_rating.xml",
            Ok(1, 1, &[(1, 1)]),
        ),
        (
            "eafonin-nessus-api__sample_scan.nessus",
            Ok(1, 40, &[(0, 16), (1, 1), (2, 3), (3, 9), (4, 11)]),
        ),
        (
            "hdf-libs__compliance.nessus",
            Ok(1, 5, &[(0, 1), (1, 1), (2, 2), (3, 1)]),
        ),
        (
            "libnessus__hostnessus.xml",
            Ok(1, 167, &[(0, 94), (1, 5), (2, 44), (3, 21), (4, 3)]),
        ),
        (
            "libnessus__nessus_forgedReport_ReportItem.nessus",
            Ok(1, 5, &[(0, 3), (3, 1), (4, 1)]),
        ),
        (
            "libnessus__nessus_report_local_3.nessus",
            Ok(3, 106, &[(0, 71), (1, 10), (2, 20), (3, 3), (4, 2)]),
        ),
        (
            "libnessus__nessus_report_localpci.nessus",
            Ok(1, 167, &[(0, 94), (1, 5), (2, 44), (3, 21), (4, 3)]),
        ),
        (
            "libnessus__nessus_report_test_local.nessus",
            Ok(2, 147, &[(0, 119), (1, 8), (2, 19), (4, 1)]),
        ),
        (
            "libnessus__nessus_report_test_local.nessus.v1",
            Fails(
                |e| matches!(e, Error::UnsupportedFormat { root, .. } if root == "NessusClientData"),
            ),
        ),
        ("libnessus__reportitems.xml", Ok(0, 1, &[(0, 1)])),
        (
            "libnessus__xxxxxxxx.nessus",
            Fails(|e| matches!(e, Error::Empty)),
        ),
        (
            "pytenable-tio__scan175_export_download.nessus",
            Ok(1, 133, &[(0, 133)]),
        ),
        (
            "reconmap__nessus-1.xml",
            Ok(7, 295, &[(0, 265), (1, 7), (2, 23)]),
        ),
        ("reconmap__nessus-2.xml", Ok(1, 6, &[(0, 6)])),
        (
            "ruby-nessus__example_v_wrong.nessus",
            Fails(
                |e| matches!(e, Error::UnsupportedFormat { root, .. } if root == "NessusClientData_vwrong"),
            ),
        ),
        (
            "ruby-nessus__examples_example_v2.nessus",
            Ok(2, 69, &[(0, 19), (1, 47), (2, 3)]),
        ),
        (
            "ruby-nessus__spec_example_v2.nessus",
            Fails(|e| matches!(e, Error::Malformed { line: 1488, .. })),
        ),
        (
            "seccubus__compliance.nessus",
            Ok(1, 398, &[(0, 2), (1, 44), (2, 200), (3, 152)]),
        ),
    ];
    let listed = std::fs::read_dir(corpus("")).unwrap().count();
    assert_eq!(listed, cases.len(), "every corpus file has a case");
    for (name, expect) in cases {
        check(name, expect);
    }
}

#[test]
fn libnessus_per_host_counts() {
    let c = read("libnessus__nessus_report_local_3.nessus").unwrap();
    assert_eq!(c.per_host, vec![2, 31, 73]);
    let c = read("libnessus__nessus_report_test_local.nessus").unwrap();
    assert_eq!(c.per_host, vec![74, 73]);
    let c = read("ruby-nessus__examples_example_v2.nessus").unwrap();
    assert_eq!(c.per_host[0], 47);
}

#[test]
fn compliance_results_from_cm_namespace() {
    let c = read("hdf-libs__compliance.nessus").unwrap();
    let mut results = c.compliance;
    results.sort();
    assert_eq!(results, ["ERROR", "FAILED", "FAILED", "PASSED", "WARNING"]);
}
