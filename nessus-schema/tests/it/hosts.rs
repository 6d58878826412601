//! Issue 14: hosts are first-class (exact `host` values, host fields filterable,
//! projectable and `cidr`-matchable), severity names, and the store and the converter
//! giving the same answers. Ground truth comes from a naive text scan of the XML in this
//! file and from the corpus MANIFEST, never from the crate's parser.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;

use nessus_schema::{PageRequest, Query, QueryParams, Store};
use serde_json::{Value, json};

use crate::corpus;

/// Three IP-named hosts, 192.168.2.104/.101/.100 with 2/31/73 items (MANIFEST #16).
const LOCAL_3: &str = "libnessus__nessus_report_local_3.nessus";
/// Seven hosts named `qa3appNN`, each with a host-ip, a host-fqdn and a netbios-name
/// (MANIFEST #4).
const NAMED: &str = "defectdojo__nessus_v_unknown.xml";

/// One `<ReportHost>` as a plain text scan sees it.
#[derive(Debug, Default)]
struct NaiveHost {
    name: String,
    ip: Option<String>,
    fqdn: Option<String>,
    netbios: Option<String>,
    severities: Vec<u8>,
}

/// Splits the document at `<ReportHost ` and reads the few things the tests compare:
/// deliberately not an XML parser.
fn naive(file: &str) -> Vec<NaiveHost> {
    let text = std::fs::read_to_string(corpus(file)).unwrap();
    let attr = |s: &str, name: &str| -> Option<String> {
        let key = format!("{name}=\"");
        let at = s.find(&key)? + key.len();
        Some(s[at..at + s[at..].find('"')?].to_owned())
    };
    let tag = |s: &str, name: &str| -> Option<String> {
        let key = format!("<tag name=\"{name}\">");
        let at = s.find(&key)? + key.len();
        Some(s[at..at + s[at..].find('<')?].trim().to_owned())
    };
    text.split("<ReportHost ")
        .skip(1)
        .map(|block| {
            let block = &block[..block.find("</ReportHost>").unwrap_or(block.len())];
            let severities = block
                .split("<ReportItem ")
                .skip(1)
                .map(|item| {
                    let head = &item[..item.find('>').unwrap()];
                    attr(head, " severity").unwrap().parse().unwrap()
                })
                .collect();
            NaiveHost {
                name: attr(&format!(" {block}"), " name").unwrap(),
                ip: tag(block, "host-ip"),
                fqdn: tag(block, "host-fqdn"),
                netbios: tag(block, "netbios-name"),
                severities,
            }
        })
        .collect()
}

/// The findings per host of `hosts` whose name satisfies `which`.
fn count(hosts: &[NaiveHost], which: impl Fn(&NaiveHost) -> bool) -> u64 {
    hosts
        .iter()
        .filter(|h| which(h))
        .map(|h| h.severities.len() as u64)
        .sum()
}

fn ingest(file: &str, dir: &std::path::Path) -> Store {
    Store::ingest(
        BufReader::new(File::open(corpus(file)).unwrap()),
        &dir.join(file),
    )
    .unwrap()
}

/// Everything, without a byte budget (these tests count every finding).
fn query(params: Value) -> Query {
    let params: QueryParams = serde_json::from_value(params).unwrap();
    let mut q = Query::from_params(&params).unwrap();
    q.page = PageRequest::All { byte_budget: None };
    q.byte_budget = None;
    q
}

fn lines(text: &str) -> Vec<Value> {
    text.split('\n')
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn vulns(text: &str) -> Vec<Value> {
    lines(text)
        .into_iter()
        .filter(|l| l["type"] == "vulnerability")
        .collect()
}

/// Store answer and converter answer (text) for `params`.
fn both(store: &Store, file: &str, params: &Value) -> (String, String) {
    let q = query(params.clone());
    let (store_text, _) = store.page_string(&q).unwrap();
    let mut out = Vec::new();
    nessus_schema::convert(
        BufReader::new(File::open(corpus(file)).unwrap()),
        &mut out,
        &q,
    )
    .unwrap();
    (store_text, String::from_utf8(out).unwrap())
}

/// Findings per host in an answer.
fn per_host(vulns: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for v in vulns {
        *m.entry(v["host"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    m
}

#[test]
fn the_naive_scan_agrees_with_the_manifest() {
    let local = naive(LOCAL_3);
    let mut items: Vec<usize> = local.iter().map(|h| h.severities.len()).collect();
    items.sort_unstable();
    assert_eq!(items, [2, 31, 73]);
    let named = naive(NAMED);
    assert_eq!(named.len(), 7);
    assert_eq!(count(&named, |_| true), 296);
    assert!(
        named
            .iter()
            .all(|h| h.name.starts_with("qa3app") && h.ip.is_some())
    );
}

/// `host` rules and host fields on an IP-named and on a hostname-named scan, through the
/// store and the converter, against the naive scan.
#[test]
fn host_filters_match_the_hosts_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let local = naive(LOCAL_3);
    let named = naive(NAMED);
    let ip_in = |h: &NaiveHost, lo: u8, hi: u8| {
        h.ip.as_deref()
            .and_then(|ip| ip.rsplit('.').next()?.parse::<u8>().ok())
            .is_some_and(|last| (lo..=hi).contains(&last))
    };
    type Case<'a> = (Value, Box<dyn Fn(&NaiveHost) -> bool + 'a>);
    let cases: Vec<(&str, Vec<Case<'_>>)> = vec![
        (
            LOCAL_3,
            vec![
                // The issue's example: it used to be a substring of .100, .101 and .104
                // (106 findings); a complete address that names no host matches nothing.
                (json!({"host": "192.168.2.10"}), Box::new(|_| false)),
                (
                    json!({"host": "192.168.2.100"}),
                    Box::new(|h| h.name == "192.168.2.100"),
                ),
                (
                    json!({"host": " 192.168.2.101 "}),
                    Box::new(|h| h.name == "192.168.2.101"),
                ),
                // A partial value keeps the predecessor's substring meaning.
                (json!({"host": "192.168.2."}), Box::new(|_| true)),
                (json!({"host": "2.10"}), Box::new(|_| true)),
                (
                    json!({"host": {"eq": "192.168.2.104"}}),
                    Box::new(|h| h.name == "192.168.2.104"),
                ),
                (json!({"host": {"eq": "192.168.2.10"}}), Box::new(|_| false)),
                (
                    json!({"host": ["192.168.2.100", "192.168.2.104"]}),
                    Box::new(|h| h.name != "192.168.2.101"),
                ),
                (
                    json!({"host": {"cidr": "192.168.2.100/31"}}),
                    Box::new(|h| h.name != "192.168.2.104"),
                ),
                (
                    json!({"host_ip": {"cidr": "192.168.2.100/31"}}),
                    Box::new(|h| h.name != "192.168.2.104"),
                ),
                (
                    json!({"host_ip": "192.168.2.104"}),
                    Box::new(|h| h.name == "192.168.2.104"),
                ),
            ],
        ),
        (
            NAMED,
            vec![
                // A hostname-named host found by its address.
                (
                    json!({"host": "10.31.112.21"}),
                    Box::new(|h| h.ip.as_deref() == Some("10.31.112.21")),
                ),
                (
                    json!({"host": "qa3app01"}),
                    Box::new(|h| h.name == "qa3app01"),
                ),
                // netbios-name, in another case.
                (
                    json!({"host": "qa3APP05"}),
                    Box::new(|h| h.netbios.as_deref() == Some("QA3APP05")),
                ),
                (
                    json!({"host": {"eq": "QA3APP09"}}),
                    Box::new(|h| h.name == "qa3app09"),
                ),
                // Substrings of names, and of addresses.
                (json!({"host": "qa3app0"}), Box::new(|_| true)),
                (json!({"host": "10.31.112."}), Box::new(|_| true)),
                (json!({"host": "10.31.112.2"}), Box::new(|_| false)),
                (
                    json!({"host": {"cidr": "10.31.112.20/30"}}),
                    Box::new(|h| ip_in(h, 20, 23)),
                ),
                (
                    json!({"host_ip": {"cidr": "10.31.112.24/30"}}),
                    Box::new(|h| ip_in(h, 24, 27)),
                ),
                (
                    json!({"netbios_name": "QA3APP06"}),
                    Box::new(|h| h.netbios.as_deref() == Some("QA3APP06")),
                ),
                (
                    json!({"host_fqdn": {"eq": "qa3app04"}}),
                    Box::new(|h| h.fqdn.as_deref() == Some("qa3app04")),
                ),
                (
                    json!({"host_fqdn": {"ne": "qa3app04"}, "host": "qa3"}),
                    Box::new(|h| h.fqdn.as_deref() != Some("qa3app04")),
                ),
                (json!({"host_fqdn": {"exists": false}}), Box::new(|_| false)),
            ],
        ),
    ];
    for (file, cases) in cases {
        let store = ingest(file, dir.path());
        let hosts = if file == LOCAL_3 { &local } else { &named };
        for (filter, which) in cases {
            let params = json!({"filters": filter, "schema_profile": "minimal"});
            let (from_store, from_convert) = both(&store, file, &params);
            let want = count(hosts, &which);
            let got = vulns(&from_store);
            assert_eq!(got.len() as u64, want, "{file}: {filter}");
            assert_eq!(
                lines(&from_store)[0]["total_vulnerabilities"],
                want,
                "{file}: {filter}"
            );
            // Per host too: the right hosts, not only the right number.
            let want_hosts: BTreeMap<String, u64> = hosts
                .iter()
                .filter(|h| which(h) && !h.severities.is_empty())
                .map(|h| (h.name.clone(), h.severities.len() as u64))
                .collect();
            assert_eq!(per_host(&got), want_hosts, "{file}: {filter}");
            assert_eq!(
                vulns(&from_convert),
                got,
                "{file}: {filter}: store and converter differ"
            );
        }
    }
}

/// Profiles write `host_ip` only when it differs from `host`; `custom_fields` write every
/// known host field; `full` adds the known host fields.
#[test]
fn host_fields_are_projected() {
    let dir = tempfile::tempdir().unwrap();
    let named = naive(NAMED);
    let store = ingest(NAMED, dir.path());
    for profile in ["minimal", "summary", "brief", "full"] {
        let params = json!({"schema_profile": profile});
        let (from_store, from_convert) = both(&store, NAMED, &params);
        let got = vulns(&from_store);
        assert_eq!(got.len(), 296, "{profile}");
        for v in &got {
            let h = named.iter().find(|h| h.name == v["host"]).unwrap();
            assert_eq!(v["host_ip"].as_str(), h.ip.as_deref(), "{profile}: {v}");
            if profile == "full" {
                assert_eq!(v["host_fqdn"].as_str(), h.fqdn.as_deref(), "{v}");
                assert_eq!(v["netbios_name"].as_str(), h.netbios.as_deref(), "{v}");
            } else {
                assert!(v.get("netbios_name").is_none(), "{profile}: {v}");
            }
        }
        assert_eq!(vulns(&from_convert), got, "{profile}: store and converter");
    }

    let local = naive(LOCAL_3);
    let store = ingest(LOCAL_3, dir.path());
    for profile in ["minimal", "brief", "full"] {
        let (from_store, from_convert) = both(&store, LOCAL_3, &json!({"schema_profile": profile}));
        let got = vulns(&from_store);
        assert_eq!(got.len(), 106);
        assert!(
            got.iter().all(|v| v.get("host_ip").is_none()),
            "{profile}: an IP-named host does not repeat its address"
        );
        assert_eq!(vulns(&from_convert), got, "{profile}: store and converter");
    }
    let params = json!({"custom_fields": ["host", "host_ip", "host_end", "plugin_id"]});
    let (from_store, from_convert) = both(&store, LOCAL_3, &params);
    let got = vulns(&from_store);
    assert_eq!(got.len(), 106);
    for v in &got {
        let h = local.iter().find(|h| h.name == v["host"]).unwrap();
        assert_eq!(v["host_ip"].as_str(), h.ip.as_deref(), "{v}");
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["type", "host", "host_ip", "host_end", "plugin_id"]);
    }
    // MANIFEST #16: the host ends.
    let mut ends: Vec<&str> = got
        .iter()
        .map(|v| v["host_end"].as_str().unwrap())
        .collect();
    ends.sort_unstable();
    ends.dedup();
    assert_eq!(
        ends,
        [
            "Thu Mar 20 00:57:04 2014",
            "Thu Mar 20 01:07:03 2014",
            "Thu Mar 20 01:22:17 2014"
        ]
    );
    assert_eq!(vulns(&from_convert), got);
}

/// The schema line lists each profile's fields (the contract's lists).
#[test]
fn profiles_list_their_fields() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(LOCAL_3, dir.path());
    let minimal = [
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
    let summary = [&minimal[..], &["protocol", "cvss3_base_score", "synopsis"]].concat();
    let brief = [&summary[..], &["description", "solution"]].concat();
    for (profile, want) in [
        ("minimal", json!(minimal)),
        ("summary", json!(summary)),
        ("brief", json!(brief)),
        ("full", json!("all")),
    ] {
        let (text, _) = store
            .page_string(&query(json!({"schema_profile": profile})))
            .unwrap();
        assert_eq!(lines(&text)[0]["fields"], want, "{profile}");
    }
}

/// Severity names give the numeric filters' answers, counted by the naive scan.
#[test]
fn severity_names_on_a_corpus_file() {
    let dir = tempfile::tempdir().unwrap();
    let local = naive(LOCAL_3);
    let store = ingest(LOCAL_3, dir.path());
    let sev = |keep: &dyn Fn(u8) -> bool| -> u64 {
        local
            .iter()
            .flat_map(|h| &h.severities)
            .filter(|s| keep(**s))
            .count() as u64
    };
    // MANIFEST #16: {0:71,1:10,2:20,3:3,4:2}.
    assert_eq!(sev(&|s| s >= 3), 5);
    let cases: Vec<(Value, u64)> = vec![
        (json!("critical"), sev(&|s| s == 4)),
        (json!(">=high"), sev(&|s| s >= 3)),
        (json!("<medium"), sev(&|s| s < 2)),
        (json!("!=info"), sev(&|s| s != 0)),
        (json!(["critical", "high"]), sev(&|s| s >= 3)),
        (json!({"ge": "high"}), sev(&|s| s >= 3)),
        (json!({"in": ["high", 4]}), sev(&|s| s >= 3)),
        (json!({"in": ["Medium", "LOW"]}), sev(&|s| s == 1 || s == 2)),
        (json!("informational"), sev(&|s| s == 0)),
    ];
    for (filter, want) in cases {
        let params = json!({"filters": {"severity": filter}});
        let (from_store, from_convert) = both(&store, LOCAL_3, &params);
        assert_eq!(vulns(&from_store).len() as u64, want, "{filter}");
        assert_eq!(vulns(&from_convert), vulns(&from_store), "{filter}");
    }
}

/// A store written before the host fields existed (its meta.json host table has only
/// name and ip) still opens: host_ip is known (from the address), the others are not.
#[test]
fn stores_without_host_fields_still_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest(NAMED, dir.path());
    let path = store.dir().join("meta.json");
    drop(store);
    let mut meta: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for h in meta["hosts"].as_array_mut().unwrap() {
        let h = h.as_object_mut().unwrap();
        assert!(h.remove("fields").is_some(), "the new store writes them");
    }
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
    let store = Store::open(&dir.path().join(NAMED)).unwrap();
    let answer = |filter: Value| {
        let (text, _) = store
            .page_string(&query(
                json!({"filters": filter, "schema_profile": "minimal"}),
            ))
            .unwrap();
        vulns(&text)
    };
    let named = naive(NAMED);
    let by_ip = answer(json!({"host": "10.31.112.21"}));
    assert_eq!(
        by_ip.len() as u64,
        count(&named, |h| h.ip.as_deref() == Some("10.31.112.21"))
    );
    assert!(by_ip.iter().all(|v| v["host_ip"] == "10.31.112.21"));
    assert!(answer(json!({"netbios_name": "QA3APP01"})).is_empty());
}

/// Hosts `web1` and `web`, and an IP-named host: `"web"` names a host, so it is exact although `web1` contains it, and the
/// converter, which meets `web1` first, must drop `web1`'s lines once it has seen `web`.
const TRICKY: &str = r#"<?xml version="1.0" ?>
<NessusClientData_v2><Report name="t">
<ReportHost name="web1"><HostProperties><tag name="host-ip">10.0.0.11</tag></HostProperties>
<ReportItem port="80" svc_name="www" protocol="tcp" severity="2" pluginID="1" pluginName="a" pluginFamily="f"/>
<ReportItem port="443" svc_name="www" protocol="tcp" severity="2" pluginID="4" pluginName="d" pluginFamily="f"/>
</ReportHost>
<ReportHost name="web">
<HostProperties><tag name="host-ip">10.0.0.10</tag><tag name="netbios-name">WEBNB</tag></HostProperties>
<ReportItem port="80" svc_name="www" protocol="tcp" severity="3" pluginID="2" pluginName="b" pluginFamily="f"/>
</ReportHost>
<ReportHost name="10.0.0.12"><HostProperties><tag name="host-ip">10.0.0.12</tag></HostProperties>
<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="1" pluginID="3" pluginName="c" pluginFamily="f"/>
</ReportHost>
</Report></NessusClientData_v2>"#;

#[test]
fn a_host_named_exactly_wins_over_substrings_in_store_and_converter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::ingest(TRICKY.as_bytes(), &dir.path().join("tricky")).unwrap();
    let cases: &[(Value, &[u64])] = &[
        (json!({"host": "web"}), &[2]),
        (json!({"host": "WEB "}), &[2]),
        (json!({"host": "we"}), &[1, 2, 4]),
        (json!({"host": "WEBNB"}), &[2]),
        (json!({"host": "10.0.0.10"}), &[2]),
        (json!({"host": "10.0.0.1"}), &[]),
        (json!({"host": "10.0.0.1", "severity": ">=info"}), &[]),
        (json!({"host": "10.0.0."}), &[1, 2, 3, 4]),
        (json!({"host": "10.0.0.12"}), &[3]),
        (json!({"netbios_name": "webnb"}), &[2]),
        (json!({"host_ip": {"cidr": "10.0.0.10/31"}}), &[1, 2, 4]),
        (json!({"host": {"ne": "web"}}), &[1, 3, 4]),
        (json!({"host": "web", "severity": "high"}), &[2]),
        (json!({"host": "web", "severity": "medium"}), &[]),
    ];
    for sort in [None, Some("port")] {
        for (filter, want) in cases {
            let mut params = json!({"filters": filter, "custom_fields": ["host", "plugin_id", "host_ip", "netbios_name"]});
            if let Some(sort) = sort {
                params["sort"] = json!(sort);
            }
            let q = query(params);
            let (text, _) = store.page_string(&q).unwrap();
            let mut got: Vec<u64> = vulns(&text)
                .iter()
                .map(|v| v["plugin_id"].as_u64().unwrap())
                .collect();
            got.sort_unstable();
            assert_eq!(got, *want, "store: {filter} sort {sort:?}");
            assert_eq!(
                lines(&text)[0]["total_vulnerabilities"],
                want.len(),
                "{filter}"
            );
            let mut out = Vec::new();
            nessus_schema::convert(TRICKY.as_bytes(), &mut out, &q).unwrap();
            let converted = String::from_utf8(out).unwrap();
            assert_eq!(
                lines(&converted)[0],
                lines(&text)[0],
                "{filter} sort {sort:?}"
            );
            assert_eq!(
                vulns(&converted),
                vulns(&text),
                "convert: {filter} sort {sort:?}"
            );
        }
    }
}
