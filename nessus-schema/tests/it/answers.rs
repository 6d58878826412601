//! Answers, not pages (issue 14): every answer within its byte budget and closed by one
//! line that says whether it was cut and how to get the rest; cursors resume after cuts;
//! clamps, pages past the end and empty answers are explained. Ground truth comes from the
//! corpus MANIFEST and from the naive XML reader, not from the crate.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;

use nessus_schema::{PageInfo, Query, QueryParams, Store, convert};
use serde_json::Value;

use crate::naive::{self, Item};
use crate::store::ingest;
use crate::{FIXTURE, corpus};

const TEST_LOCAL: &str = "libnessus__nessus_report_test_local.nessus";
/// MANIFEST: the longest plugin_output of TEST_LOCAL, in characters (ElementTree: plugin
/// 10662 on 192.168.1.1, port 80).
const TEST_LOCAL_LONGEST: usize = 265_343;

const FILES: &[&str] = &[
    FIXTURE,
    TEST_LOCAL,
    "auvap__ms2_scan.nessus",
    "hdf-libs__compliance.nessus",
];

fn lines(text: &str) -> Vec<Value> {
    text.split('\n')
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn params(page: Option<u32>, profile: &str, budget: Option<usize>) -> QueryParams {
    QueryParams {
        schema_profile: Some(profile.into()),
        page,
        byte_budget: budget,
        ..QueryParams::default()
    }
}

const CLOSING: &[&str] = &["pagination", "truncated", "end"];

/// The answer's structure: parses, one closing line and it is last, of the right type,
/// with `returned` equal to the vulnerability lines.
fn check_closing(text: &str, q: &Query, info: &PageInfo) -> Value {
    let lines = lines(text);
    let closing = lines.last().unwrap().clone();
    let kinds = lines
        .iter()
        .filter(|l| CLOSING.contains(&l["type"].as_str().unwrap()))
        .count();
    assert_eq!(kinds, 1, "exactly one closing line: {closing}");
    let vulns = lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .count();
    assert_eq!(closing["returned"], vulns as u64, "{closing}");
    assert_eq!(closing["truncated"], info.truncated, "{closing}");
    assert!(closing["next"].as_str().is_some_and(|n| !n.is_empty()));
    let expected = match q.page {
        nessus_schema::PageRequest::All { .. } if info.truncated => "truncated",
        nessus_schema::PageRequest::All { .. } => "end",
        _ => "pagination",
    };
    assert_eq!(closing["type"], expected, "{closing}");
    if let Some(n) = closing.get("notices") {
        assert!(
            !n.as_array().unwrap().is_empty(),
            "notices omitted when empty"
        );
    }
    closing
}

#[test]
fn every_answer_stays_within_its_budget_and_ends_with_one_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        let store = ingest(file, dir.path());
        for profile in ["minimal", "summary", "brief", "full"] {
            for budget in [
                None,
                Some(4096),
                Some(5000),
                Some(9000),
                Some(32_768),
                Some(120_000),
            ] {
                let mut requests = vec![
                    params(Some(0), profile, budget),
                    params(Some(1), profile, budget),
                    params(None, profile, budget),
                    QueryParams {
                        page_size: Some(100),
                        ..params(Some(1), profile, budget)
                    },
                    QueryParams {
                        include_hosts: true,
                        include_compliance: true,
                        ..params(Some(1), profile, budget)
                    },
                    QueryParams {
                        include_hosts: true,
                        include_compliance: true,
                        ..params(Some(0), profile, budget)
                    },
                ];
                requests.push(QueryParams {
                    filters: Some(serde_json::json!({"severity": ">=1"})),
                    ..params(Some(2), profile, budget)
                });
                for p in requests {
                    let q = Query::from_params(&p).unwrap();
                    let limit = budget.unwrap_or(nessus_schema::DEFAULT_ANSWER_BUDGET);
                    let (text, info) = store.page_string(&q).unwrap();
                    assert!(
                        text.len() <= limit,
                        "{file} {p:?}: {} bytes over {limit}",
                        text.len()
                    );
                    assert_eq!(info.bytes_written, text.len() as u64);
                    let closing = check_closing(&text, &q, &info);
                    if info.total > 0 && info.page <= info.total_pages {
                        assert!(info.returned > 0, "{file} {p:?}: progress: {closing}");
                    }
                }
            }
        }
    }
}

/// The 265,343-character plugin_output does not fit any budget from 4 KiB to 128 KiB:
/// its record is written cut, with the cut counted, and named in a notice.
#[test]
fn a_record_larger_than_the_budget_is_cut_to_fit() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(TEST_LOCAL, dir.path());
    for budget in [4096, 10_000, 32_768, 131_072] {
        let q = Query::from_params(&QueryParams {
            schema_profile: Some("full".into()),
            filters: Some(
                serde_json::json!({"plugin_id": 10662, "host": "192.168.1.1", "port": 80}),
            ),
            page: Some(0),
            byte_budget: Some(budget),
            ..QueryParams::default()
        })
        .unwrap();
        let (text, info) = store.page_string(&q).unwrap();
        assert_eq!(info.total, 1, "{text}");
        assert!(text.len() <= budget, "{budget}: {}", text.len());
        let lines = lines(&text);
        let v = lines.iter().find(|l| l["type"] == "vulnerability").unwrap();
        let out = v["plugin_output"].as_str().unwrap();
        let (kept, marker) = out.rsplit_once('…').unwrap();
        let n: usize = marker
            .strip_prefix("[cut: ")
            .and_then(|m| m.strip_suffix(" more characters]"))
            .unwrap()
            .parse()
            .unwrap();
        // The parser trims the text's surrounding whitespace (here a newline each side).
        assert_eq!(kept.chars().count() + n, TEST_LOCAL_LONGEST - 2, "{budget}");
        // Nearly the whole budget is used for it.
        assert!(text.len() + 1200 >= budget, "{budget}: {}", text.len());
        let closing = lines.last().unwrap();
        assert_eq!(closing["type"], "truncated", "{closing}");
        assert_eq!(closing["truncated"], true);
        assert_eq!(closing["next_cursor"], Value::Null, "nothing follows");
        let notices = closing["notices"].as_array().unwrap();
        assert!(
            notices
                .iter()
                .any(|n| n.as_str().unwrap().contains("plugin_output")),
            "{closing}"
        );
        assert!(info.notices.iter().any(|n| n.contains("plugin_output")));
    }
}

/// What every profile writes of a finding: host, plugin_id, severity.
fn identity(v: &Value) -> (String, u32, u8) {
    (
        v["host"].as_str().unwrap().to_owned(),
        v["plugin_id"].as_u64().unwrap() as u32,
        v["severity"].as_u64().unwrap() as u8,
    )
}

fn counted(items: impl Iterator<Item = (String, u32, u8)>) -> HashMap<(String, u32, u8), usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// Following `next_cursor` from page 1 or from page=0, under budgets that cut pages (and
/// the first record of some), returns every matching finding exactly once.
#[test]
fn walking_by_next_cursor_after_cuts_returns_every_finding_once() {
    let dir = tempfile::tempdir().unwrap();
    for file in [TEST_LOCAL, "auvap__ms2_scan.nessus"] {
        let store = ingest(file, dir.path());
        let all: Vec<Item> = naive::items(&corpus(file));
        for (min_sev, filters) in [
            (0u8, None),
            (1, Some(serde_json::json!({"severity": ">=1"}))),
        ] {
            let want = counted(
                all.iter()
                    .filter(|i| i.severity >= min_sev)
                    .map(|i| (i.host.clone(), i.plugin_id, i.severity)),
            );
            for (profile, budget, page, size) in [
                ("full", 4096, Some(1), Some(10)),
                ("full", 20_000, Some(0), None),
                ("full", 9000, Some(1), Some(100)),
                ("brief", 4096, Some(1), Some(40)),
                ("summary", 5000, Some(0), None),
            ] {
                let mut p = QueryParams {
                    schema_profile: Some(profile.into()),
                    custom_fields: None,
                    filters: filters.clone(),
                    page,
                    page_size: size,
                    byte_budget: Some(budget),
                    ..QueryParams::default()
                };
                let mut got = Vec::new();
                let mut answers = 0;
                loop {
                    let q = Query::from_params(&p).unwrap();
                    let (text, info) = store.page_string(&q).unwrap();
                    assert!(text.len() <= budget, "{file} {profile} {budget}");
                    check_closing(&text, &q, &info);
                    let lines = lines(&text);
                    got.extend(
                        lines
                            .iter()
                            .filter(|l| l["type"] == "vulnerability")
                            .map(identity),
                    );
                    answers += 1;
                    assert!(answers < 2000, "no progress");
                    match info.next_cursor {
                        Some(c) => {
                            assert_eq!(lines.last().unwrap()["next_cursor"], c.as_str());
                            p.cursor = Some(c);
                        }
                        None => break,
                    }
                }
                assert_eq!(
                    got.len(),
                    want.values().sum::<usize>(),
                    "{file} {profile} {budget}"
                );
                assert_eq!(counted(got.into_iter()), want, "{file} {profile} {budget}");
            }
        }
    }
}

fn notices(text: &str) -> Vec<String> {
    let l = lines(text);
    l.last().unwrap()["notices"]
        .as_array()
        .map(|a| a.iter().map(|n| n.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default()
}

#[test]
fn clamps_and_pages_past_the_end_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let answer = |p: QueryParams| store.page_string(&Query::from_params(&p).unwrap()).unwrap();
    // MANIFEST: 40 findings, so 1 page of 40.
    let (text, info) = answer(QueryParams {
        page: Some(99),
        ..QueryParams::default()
    });
    assert_eq!(info.returned, 0);
    assert_eq!(
        notices(&text),
        ["page 99 is past the end: 1 page of 40 (40 matching findings); ask for page 1"]
    );
    assert!(
        lines(&text).last().unwrap()["next"]
            .as_str()
            .unwrap()
            .contains("past the end")
    );
    let (text, _) = answer(QueryParams {
        page: Some(5),
        page_size: Some(10),
        ..QueryParams::default()
    });
    assert_eq!(
        notices(&text),
        ["page 5 is past the end: 4 pages of 10 (40 matching findings); ask for page 1-4"]
    );
    let (text, info) = answer(QueryParams {
        page_size: Some(5),
        ..QueryParams::default()
    });
    assert_eq!(info.page_size, 10);
    assert_eq!(
        notices(&text),
        ["page_size 5 was raised to 10; allowed 10-100"]
    );
    let (text, _) = answer(QueryParams {
        page_size: Some(1000),
        schema_profile: Some("minimal".into()),
        ..QueryParams::default()
    });
    assert_eq!(
        notices(&text),
        ["page_size 1000 was lowered to 100; allowed 10-100"]
    );
    let (text, _) = answer(QueryParams {
        byte_budget: Some(100),
        notices: vec!["ignored unknown argument \"x\"".into()],
        ..QueryParams::default()
    });
    assert_eq!(
        notices(&text),
        [
            "ignored unknown argument \"x\"",
            "byte_budget 100 was raised to 4096; allowed 4096-1048576"
        ]
    );
    assert!(text.len() <= 4096);
    let (_, info) = answer(QueryParams {
        byte_budget: Some(10 << 20),
        ..QueryParams::default()
    });
    assert_eq!(
        info.notices,
        ["byte_budget 10485760 was lowered to 1048576; allowed 4096-1048576"]
    );
    // Nothing to say: no notices key at all.
    let (text, _) = answer(QueryParams::default());
    assert!(lines(&text).last().unwrap().get("notices").is_none());
}

/// Convert gives the same answer bytes as the store for an empty answer, explanation
/// included.
fn both(file: &str, store: &Store, p: &QueryParams) -> String {
    let q = Query::from_params(p).unwrap();
    let (text, _) = store.page_string(&q).unwrap();
    let mut out = Vec::new();
    convert(
        BufReader::new(File::open(corpus(file)).unwrap()),
        &mut out,
        &q,
    )
    .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), text, "{file} {p:?}");
    text
}

#[test]
fn empty_answers_explain_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let items = naive::items(&corpus(FIXTURE));
    let exploitable = items.iter().filter(|i| i.exploit).count();
    let port22 = items.iter().filter(|i| i.port == 22).count();
    // seed-spec ground truth: 11 critical, 8 on port 22, none of them both.
    assert_eq!(port22, 8);
    let p = QueryParams {
        filters: Some(serde_json::json!({"severity": "4", "port": 22})),
        ..QueryParams::default()
    };
    let text = both(FIXTURE, &store, &p);
    let n = notices(&text);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(
        n[0],
        format!(
            "no findings match the filter; each condition alone: severity \"4\" matches 11, \
             port 22 matches 8. this scan holds 40 findings on 1 host; the highest severity is \
             4 (critical); {exploitable} findings have exploit_available true"
        )
    );
    // A host condition lists the hosts.
    let p = QueryParams {
        filters: Some(serde_json::json!({"host": {"cidr": "10.0.0.0/8"}})),
        page: Some(0),
        ..QueryParams::default()
    };
    let text = both(FIXTURE, &store, &p);
    let l = lines(&text);
    assert_eq!(l.last().unwrap()["type"], "end");
    let n = notices(&text);
    assert!(
        n[0].contains("host {\"cidr\":\"10.0.0.0/8\"} matches 0"),
        "{n:?}"
    );
    assert!(n[0].ends_with("hosts: 172.32.0.215"), "{n:?}");
    assert_eq!(
        store
            .explain(
                &nessus_schema::Filter::from_json_str(r#"{"host":{"cidr":"10.0.0.0/8"}}"#).unwrap()
            )
            .unwrap(),
        n[0]
    );
    // A scan without findings says so, with a filter or without.
    let empty = "defectdojo__nessus_was_no_vuln.xml";
    let store = ingest(empty, dir.path());
    for filters in [None, Some(serde_json::json!({"severity": 4}))] {
        let text = both(
            empty,
            &store,
            &QueryParams {
                filters,
                ..QueryParams::default()
            },
        );
        assert_eq!(notices(&text), ["this scan has no findings"]);
    }
}

/// More than ten hosts: the first ten and "N more".
#[test]
fn explanations_list_ten_hosts_and_count_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let file = "defectdojo__nessus_v_unknown.xml";
    let store = ingest(file, dir.path());
    let f = nessus_schema::Filter::from_json_str(r#"{"host":"no-such-host"}"#).unwrap();
    let text = store.explain(&f).unwrap();
    // MANIFEST: 7 hosts, 296 items.
    assert!(
        text.contains("this scan holds 296 findings on 7 hosts"),
        "{text}"
    );
    let hosts = text.rsplit_once("hosts: ").unwrap().1;
    assert_eq!(hosts.split(", ").count(), 7, "{text}");
    assert!(!text.contains("more"), "{text}");

    // The fixture's host replicated 12 times under new names (a real ReportHost).
    let xml = std::fs::read_to_string(corpus(FIXTURE)).unwrap();
    let start = xml.find("<ReportHost ").unwrap();
    let end = xml.find("</ReportHost>").unwrap() + "</ReportHost>".len();
    let host = &xml[start..end];
    let copies: String = (1..=12)
        .map(|i| host.replace("172.32.0.215", &format!("10.1.0.{i}")))
        .collect();
    let many = format!("{}{copies}{}", &xml[..start], &xml[end..]);
    let store = Store::ingest(many.as_bytes(), &dir.path().join("many")).unwrap();
    let text = store.explain(&f).unwrap();
    assert!(
        text.contains("this scan holds 480 findings on 12 hosts"),
        "{text}"
    );
    let listed: Vec<String> = (1..=10).map(|i| format!("10.1.0.{i}")).collect();
    assert!(
        text.ends_with(&format!("hosts: {} and 2 more", listed.join(", "))),
        "{text}"
    );
}
