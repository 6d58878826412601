//! `Store::aggregate`: groups equal a naive grouping of the XML (naive reader), severity
//! groups equal the MANIFEST histograms; ranking, top-N and `other` follow the contract.

use std::collections::{BTreeMap, HashSet};

use nessus_schema::{Aggregate, Filter, Group, GroupBy, Rank};

use crate::naive::{self, Item};
use crate::store::ingest;
use crate::{FIXTURE, corpus};

const FILES: &[&str] = &[
    FIXTURE,
    "auvap__ms2_scan.nessus",
    "libnessus__nessus_report_local_3.nessus",
    "libnessus__nessus_report_test_local.nessus",
    "defectdojo__nessus_v_unknown.xml",
    "seccubus__compliance.nessus",
];

/// A naive group: findings, distinct hosts, counts per severity 0..=4, exploitable.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Naive {
    findings: u64,
    hosts: HashSet<String>,
    sev: [u64; 5],
    exploitable: u64,
}

fn naive_groups(items: &[Item], by: GroupBy) -> BTreeMap<String, Naive> {
    let mut m: BTreeMap<String, Naive> = BTreeMap::new();
    for i in items {
        let keys: Vec<String> = match by {
            GroupBy::Host => vec![i.host.clone()],
            GroupBy::Plugin => vec![i.plugin_id.to_string()],
            GroupBy::Severity => vec![i.severity.to_string()],
            GroupBy::Port => vec![format!("{}/{}", i.port, i.protocol)],
            GroupBy::Cve => i.cves.clone(),
            _ => unreachable!(),
        };
        for k in keys {
            let g = m.entry(k).or_default();
            g.findings += 1;
            g.hosts.insert(i.host.clone());
            g.sev[usize::from(i.severity)] += 1;
            g.exploitable += u64::from(i.exploit);
        }
    }
    m
}

fn sev_of(g: &Group) -> [u64; 5] {
    let c = &g.severity_counts;
    [c.info, c.low, c.medium, c.high, c.critical]
}

/// The contract's orders, written out from the naive groups.
fn expected_order(groups: &BTreeMap<String, Naive>, by: GroupBy, rank: Rank) -> Vec<String> {
    let mut keys: Vec<&String> = groups.keys().collect();
    let sev_key = |k: &String| {
        let g = &groups[k];
        // critical desc, high, medium, low, info desc, then findings desc.
        std::cmp::Reverse((g.sev[4], g.sev[3], g.sev[2], g.sev[1], g.sev[0], g.findings))
    };
    match (by, rank) {
        (GroupBy::Severity, _) => keys.sort_by(|a, b| b.cmp(a)),
        (_, Rank::Count) => keys.sort_by(|a, b| {
            groups[*b]
                .findings
                .cmp(&groups[*a].findings)
                .then_with(|| sev_key(a).cmp(&sev_key(b)))
                .then_with(|| a.cmp(b))
        }),
        (_, Rank::Hosts) => keys.sort_by(|a, b| {
            groups[*b]
                .hosts
                .len()
                .cmp(&groups[*a].hosts.len())
                .then_with(|| sev_key(a).cmp(&sev_key(b)))
                .then_with(|| a.cmp(b))
        }),
        _ => keys.sort_by(|a, b| sev_key(a).cmp(&sev_key(b)).then_with(|| a.cmp(b))),
    }
    keys.into_iter().cloned().collect()
}

fn check(file: &str, store: &nessus_schema::Store, items: &[Item], filter: &str) {
    for by in [
        GroupBy::Host,
        GroupBy::Plugin,
        GroupBy::Severity,
        GroupBy::Cve,
        GroupBy::Port,
    ] {
        let want = naive_groups(items, by);
        for rank in [Rank::Severity, Rank::Count, Rank::Hosts] {
            let request = Aggregate::new(by)
                .filter(Filter::from_json_str(filter).unwrap())
                .top(100)
                .rank(rank);
            let got = store.aggregate(&request).unwrap();
            let what = format!("{file} {filter} {by:?} {rank:?}");
            assert_eq!(got.matched, items.len() as u64, "{what}");
            assert_eq!(got.groups_total, want.len() as u64, "{what}");
            let order = expected_order(&want, by, rank);
            let shown: Vec<&String> = got.groups.iter().map(|g| &g.key).collect();
            let expected: Vec<&String> = order.iter().take(100).collect();
            assert_eq!(shown, expected, "{what}: ranking");
            for g in &got.groups {
                let n = &want[&g.key];
                assert_eq!(g.findings, n.findings, "{what} {}", g.key);
                assert_eq!(g.hosts, n.hosts.len() as u64, "{what} {}", g.key);
                assert_eq!(sev_of(g), n.sev, "{what} {}", g.key);
                assert_eq!(g.exploitable, n.exploitable, "{what} {}", g.key);
                let max = (0..5u8).rev().find(|s| n.sev[usize::from(*s)] > 0);
                assert_eq!(g.max_severity, max, "{what} {}", g.key);
            }
            match &got.other {
                None => assert!(want.len() <= 100, "{what}"),
                Some(o) => {
                    assert_eq!(o.groups, want.len() as u64 - 100, "{what}");
                    let rest: u64 = order[100..].iter().map(|k| want[k].findings).sum();
                    assert_eq!(o.findings, rest, "{what}");
                }
            }
        }
    }
}

#[test]
fn groups_equal_a_naive_grouping_of_the_xml() {
    let dir = tempfile::tempdir().unwrap();
    for file in FILES {
        let store = ingest(file, dir.path());
        let all = naive::items(&corpus(file));
        check(file, &store, &all, "{}");
        // Filters first: the same filter as pages.
        let high: Vec<Item> = all.iter().filter(|i| i.severity >= 3).cloned().collect();
        check(file, &store, &high, r#"{"severity": ">=3"}"#);
        let risky: Vec<Item> = all
            .iter()
            .filter(|i| i.severity >= 2 && i.exploit)
            .cloned()
            .collect();
        check(
            file,
            &store,
            &risky,
            r#"{"severity": ">=2", "exploit_available": true}"#,
        );
    }
}

/// MANIFEST severity histograms, ordered 4..0 whatever the rank.
#[test]
fn severity_groups_match_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    for (file, hist) in [
        (
            "auvap__ms2_scan.nessus",
            vec![(4, 11), (3, 5), (2, 26), (1, 8), (0, 131)],
        ),
        (FIXTURE, vec![(4, 11), (3, 9), (2, 3), (1, 1), (0, 16)]),
        (
            "libnessus__nessus_report_test_local.nessus",
            vec![(4, 1), (2, 19), (1, 8), (0, 119)],
        ),
        (
            "seccubus__compliance.nessus",
            vec![(3, 152), (2, 200), (1, 44), (0, 2)],
        ),
    ] {
        let store = ingest(file, dir.path());
        for rank in [Rank::Severity, Rank::Count, Rank::Hosts] {
            let got = store
                .aggregate(&Aggregate::new(GroupBy::Severity).rank(rank))
                .unwrap();
            let shown: Vec<(u8, u64)> = got
                .groups
                .iter()
                .map(|g| (g.key.parse().unwrap(), g.findings))
                .collect();
            assert_eq!(shown, hist, "{file}");
            let names: Vec<&str> = got
                .groups
                .iter()
                .map(|g| g.label.as_deref().unwrap())
                .collect();
            let expected: Vec<&str> = hist
                .iter()
                .map(|(s, _)| ["info", "low", "medium", "high", "critical"][*s as usize])
                .collect();
            assert_eq!(names, expected);
        }
    }
}

#[test]
fn top_n_and_other() {
    let dir = tempfile::tempdir().unwrap();
    let file = "auvap__ms2_scan.nessus";
    let store = ingest(file, dir.path());
    let all = naive::items(&corpus(file));
    let want = naive_groups(&all, GroupBy::Plugin);
    // MANIFEST: 115 distinct plugin ids.
    assert_eq!(want.len(), 115);
    let order = expected_order(&want, GroupBy::Plugin, Rank::Severity);
    for top in [1, 3, 10, 100] {
        let got = store
            .aggregate(&Aggregate::new(GroupBy::Plugin).top(top))
            .unwrap();
        assert_eq!(got.groups.len(), top);
        assert_eq!(got.groups_total, 115);
        let other = got.other.unwrap();
        assert_eq!(other.groups, 115 - top as u64);
        let shown: u64 = got.groups.iter().map(|g| g.findings).sum();
        assert_eq!(shown + other.findings, 181, "MANIFEST: 181 items");
        let keys: Vec<&String> = got.groups.iter().map(|g| &g.key).collect();
        assert_eq!(keys, order.iter().take(top).collect::<Vec<_>>());
    }
    // Defaults: top 10, severity rank; top is clamped to 1..=100.
    let default = store.aggregate(&Aggregate::new(GroupBy::Plugin)).unwrap();
    assert_eq!(default.groups.len(), 10);
    assert_eq!(
        store
            .aggregate(&Aggregate::new(GroupBy::Plugin).top(0))
            .unwrap()
            .groups
            .len(),
        1
    );
    assert_eq!(
        store
            .aggregate(&Aggregate::new(GroupBy::Plugin).top(1000))
            .unwrap()
            .groups
            .len(),
        100
    );
    // The typed identity is serialized flat next to the counts.
    let json = serde_json::to_value(&default).unwrap();
    let g = &json["groups"][0];
    for k in [
        "key",
        "label",
        "findings",
        "hosts",
        "max_severity",
        "severity_counts",
        "exploitable",
        "plugin_id",
        "plugin_name",
        "plugin_family",
        "severity",
    ] {
        assert!(g.get(k).is_some(), "{k}: {g}");
    }
    assert_eq!(g["key"], g["plugin_id"].to_string());
}

#[test]
fn group_by_names_and_empty_aggregations() {
    for (name, by) in [
        ("host", GroupBy::Host),
        ("plugin", GroupBy::Plugin),
        ("severity", GroupBy::Severity),
        ("cve", GroupBy::Cve),
        ("port", GroupBy::Port),
        ("plugin_family", GroupBy::PluginFamily),
    ] {
        assert_eq!(name.parse::<GroupBy>().unwrap(), by);
        assert_eq!(by.as_str(), name);
    }
    let err = "hosts".parse::<GroupBy>().unwrap_err().to_string();
    assert!(
        err.contains("host, plugin, severity, cve, port, plugin_family"),
        "{err}"
    );
    assert!("counts".parse::<Rank>().is_err());
    assert_eq!("count".parse::<Rank>().unwrap(), Rank::Count);
    assert_eq!("hosts".parse::<Rank>().unwrap(), Rank::Hosts);

    let dir = tempfile::tempdir().unwrap();
    let store = ingest(FIXTURE, dir.path());
    let filter = Filter::from_json_str(r#"{"severity": "4", "port": 22}"#).unwrap();
    let got = store
        .aggregate(&Aggregate::new(GroupBy::Host).filter(filter.clone()))
        .unwrap();
    assert_eq!((got.matched, got.groups_total), (0, 0));
    assert!(got.groups.is_empty() && got.other.is_none());
    assert_eq!(got.explanation.unwrap(), store.explain(&filter).unwrap());
    // Host groups name the host (and its address only when it differs).
    let hosts = store.aggregate(&Aggregate::new(GroupBy::Host)).unwrap();
    let json = serde_json::to_value(&hosts.groups[0]).unwrap();
    assert_eq!(json["host"], "172.32.0.215");
    assert!(json.get("host_ip").is_none(), "{json}");
    // Families: every finding in exactly one family group.
    let fam = store
        .aggregate(&Aggregate::new(GroupBy::PluginFamily).top(100))
        .unwrap();
    assert_eq!(fam.groups.iter().map(|g| g.findings).sum::<u64>(), 40);
}
