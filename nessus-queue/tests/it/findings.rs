//! Findings over time: a sequence of scans derived from one corpus file (items
//! removed, added back, output changed, a new one added, a host left out of a scan)
//! imported in order through the service, on every backend. The expected states come
//! from the test's own XML edits and a model of the rules written here, never from
//! the code under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use nessus_core::Config;
use nessus_queue::findings::FindingState;
use nessus_queue::service::{
    ChangesRequest, ImportRequest, ImportSource, Principal, Service, TriageRequest,
};
use nessus_queue::{ResultsDir, SchemaIngest};

use crate::support::Harness;

const CORPUS: &str = "eafonin-nessus-api__sample_scan.nessus";
const HOST_A: &str = "172.32.0.215";
const HOST_B: &str = "10.9.9.9";

/// (host ip, plugin id, port, protocol): what identifies a finding to the test.
type Key = (String, u32, u32, String);

fn attr(tag: &str, name: &str) -> String {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat).expect(name) + pat.len();
    tag[start..].split('"').next().unwrap().to_owned()
}

/// The corpus file cut into: text before the host, the host's opening (up to its
/// first item), its items (whole elements), and the rest.
struct Parts {
    head: String,
    host_open: String,
    items: Vec<String>,
    host_close: String,
}

fn parts() -> Parts {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../corpus/nessus")
            .join(CORPUS),
    )
    .expect("corpus file");
    let host_at = text.find("<ReportHost ").unwrap();
    let host_end = text.find("</ReportHost>").unwrap();
    let first_item = text[host_at..].find("<ReportItem ").unwrap() + host_at;
    let mut items = Vec::new();
    let mut at = first_item;
    while let Some(i) = text[at..host_end].find("<ReportItem ") {
        let start = at + i;
        let end = text[start..].find("</ReportItem>").unwrap() + start + "</ReportItem>".len();
        items.push(text[start..end].to_owned());
        at = end;
    }
    Parts {
        head: text[..host_at].to_owned(),
        host_open: text[host_at..first_item].to_owned(),
        items,
        host_close: text[at..].to_owned(),
    }
}

fn key_of(ip: &str, item: &str) -> Key {
    let tag = &item[..item.find('>').unwrap()];
    (
        ip.to_owned(),
        attr(tag, "pluginID").parse().unwrap(),
        attr(tag, "port").parse().unwrap(),
        attr(tag, "protocol"),
    )
}

/// One scan: for each host, the items it reports.
struct Scan {
    hosts: Vec<(String, Vec<String>)>,
}

impl Scan {
    fn xml(&self, p: &Parts) -> String {
        let tail_start = p.host_close.find("</ReportHost>").unwrap();
        let (between, after) = p.host_close.split_at(tail_start);
        let after = &after["</ReportHost>".len()..];
        let mut out = p.head.clone();
        for (ip, items) in &self.hosts {
            out.push_str(&p.host_open.replace(HOST_A, ip));
            for i in items {
                out.push_str(i);
                out.push('\n');
            }
            out.push_str(between);
            out.push_str("</ReportHost>");
        }
        out.push_str(after);
        out
    }

    fn keys(&self) -> BTreeMap<String, BTreeSet<Key>> {
        self.hosts
            .iter()
            .map(|(ip, items)| (ip.clone(), items.iter().map(|i| key_of(ip, i)).collect()))
            .collect()
    }
}

/// The rules, as the test reads them: per asset covered by a scan, a finding present
/// now is new (never seen), reopened (fixed before) or persistent; one seen before and
/// absent now is fixed; an asset the scan did not cover keeps its states.
#[derive(Default)]
struct Model {
    states: BTreeMap<Key, FindingState>,
}

impl Model {
    fn apply(&mut self, scan: &BTreeMap<String, BTreeSet<Key>>) {
        for (ip, present) in scan {
            for k in present {
                let s = match self.states.get(k) {
                    None => FindingState::New,
                    Some(FindingState::Fixed) => FindingState::Reopened,
                    Some(_) => FindingState::Persistent,
                };
                self.states.insert(k.clone(), s);
            }
            for (k, s) in self.states.iter_mut() {
                if &k.0 == ip && !present.contains(k) {
                    *s = FindingState::Fixed;
                }
            }
        }
    }
}

fn service(h: &Harness) -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_yaml_with_env("principals:\n  bob: {}\n", &|_| None).unwrap();
    let queue = h.with_config(nessus_queue::QueueConfig::default());
    (
        Service::new(config, queue, ResultsDir::new(dir.path())),
        dir,
    )
}

async fn import(s: &Service, who: &Principal, xml: String) -> String {
    s.import(
        who,
        ImportRequest::new(ImportSource::Inline(xml.into_bytes())),
    )
    .await
    .expect("import")
    .task
    .task_id
}

/// Every finding on both hosts with its current state, as the service answers.
async fn current(s: &Service, who: &Principal) -> BTreeMap<Key, FindingState> {
    let mut out = BTreeMap::new();
    let mut cursor = None;
    loop {
        let req = ChangesRequest::new(vec![HOST_A.into(), "10.9.9.0/24".into()], "1970-01-01")
            .states(Some(vec![]))
            .limit(Some(7))
            .cursor(cursor);
        let page = s.findings_changes(who, &req).await.expect("changes");
        for c in &page.changes {
            let ip = c.host_ip.unwrap().to_string();
            let k = (
                ip,
                c.plugin_id.unwrap(),
                c.port.unwrap(),
                c.protocol.clone().unwrap(),
            );
            assert!(out.insert(k, c.current_state).is_none(), "a finding twice");
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// Changes since a task, as (key → state).
async fn since(s: &Service, who: &Principal, task: &str) -> BTreeMap<Key, FindingState> {
    let req = ChangesRequest::new(vec!["0.0.0.0/0".into()], task)
        .states(Some(vec![]))
        .limit(Some(1000));
    let page = s.findings_changes(who, &req).await.expect("changes");
    assert!(page.next_cursor.is_none());
    page.changes
        .iter()
        .map(|c| {
            (
                (
                    c.host_ip.unwrap().to_string(),
                    c.plugin_id.unwrap(),
                    c.port.unwrap(),
                    c.protocol.clone().unwrap(),
                ),
                c.state,
            )
        })
        .collect()
}

async fn scans_over_time_give_the_expected_states(h: &Harness) {
    let (s, _dir) = service(h);
    let p = parts();
    let admin = Principal::local();
    let all = p.items.clone();
    // Distinct fingerprints only (the test's own key), so the edits are unambiguous.
    assert!(all.len() >= 10, "the corpus file has enough items");
    let (x, y, z) = (5, 7, 3);
    let kx = key_of(HOST_A, &all[x]);
    let ky = key_of(HOST_A, &all[y]);
    let kz = key_of(HOST_A, &all[z]);
    assert!(
        all[z].contains("<plugin_output>"),
        "item {z} has an output to change"
    );
    let changed_z = all[z].replacen("<plugin_output>", "<plugin_output>CHANGED OUTPUT ", 1);
    let new_item = all[1]
        .replacen(
            &format!("pluginID=\"{}\"", attr(&all[1], "pluginID")),
            "pluginID=\"999001\"",
            1,
        )
        .replacen(
            &format!("port=\"{}\"", attr(&all[1], "port")),
            "port=\"4444\"",
            1,
        );
    let kn = key_of(HOST_A, &new_item);
    let w = 9;
    let kw = key_of(HOST_B, &all[w]);

    let without = |skip: &[usize]| -> Vec<String> {
        all.iter()
            .enumerate()
            .filter(|(i, _)| !skip.contains(i))
            .map(|(_, v)| v.clone())
            .collect()
    };
    let mut s2_a = without(&[x, y]);
    for i in s2_a.iter_mut() {
        if *i == all[z] {
            i.clone_from(&changed_z);
        }
    }
    s2_a.push(new_item.clone());
    let mut s3_a = without(&[y]);
    s3_a.push(new_item.clone());
    let scans = [
        Scan {
            hosts: vec![(HOST_A.into(), all.clone()), (HOST_B.into(), all.clone())],
        },
        Scan {
            hosts: vec![(HOST_A.into(), s2_a), (HOST_B.into(), without(&[w]))],
        },
        // Host B is not covered: its states must not move.
        Scan {
            hosts: vec![(HOST_A.into(), s3_a)],
        },
    ];
    let mut model = Model::default();
    let mut tasks: Vec<String> = Vec::new();
    for (n, scan) in scans.iter().enumerate() {
        let task = import(&s, &admin, scan.xml(&p)).await;
        let before = model.states.clone();
        let covered = scan.keys();
        model.apply(&covered);
        let got = current(&s, &admin).await;
        assert_eq!(got, model.states, "states after scan {}", n + 1);
        if let Some(prev) = tasks.last() {
            // Since the previous scan: what this scan changed, and the rest unchanged.
            let want: BTreeMap<Key, FindingState> = model
                .states
                .iter()
                .filter_map(|(k, now)| {
                    let was = before.get(k);
                    match now {
                        FindingState::Fixed if was != Some(&FindingState::Fixed) => {
                            Some((k.clone(), FindingState::Fixed))
                        }
                        FindingState::Fixed => None,
                        _ if covered.contains_key(&k.0) => Some((k.clone(), *now)),
                        _ => Some((k.clone(), FindingState::Persistent)),
                    }
                })
                .collect();
            assert_eq!(
                since(&s, &admin, prev).await,
                want,
                "changes in scan {}",
                n + 1
            );
        }
        tasks.push(task);
    }
    // The edits, spelled out.
    let last = current(&s, &admin).await;
    assert_eq!(last[&kx], FindingState::Reopened, "removed in 2, back in 3");
    assert_eq!(last[&ky], FindingState::Fixed, "removed in 2, still absent");
    assert_eq!(
        last[&kz],
        FindingState::Persistent,
        "plugin_output changed: same finding"
    );
    assert_eq!(last[&kn], FindingState::Persistent, "added in 2, kept in 3");
    assert_eq!(
        last[&kw],
        FindingState::Fixed,
        "host B absent from scan 3: still fixed"
    );
    let since1 = since(&s, &admin, &tasks[0]).await;
    assert_eq!(since1[&kn], FindingState::New);
    assert_eq!(since1[&kx], FindingState::Reopened);
    assert_eq!(since1[&ky], FindingState::Fixed);
    assert_eq!(since1[&kz], FindingState::Persistent);
    // Since the last scan: nothing changed on host A or B.
    let quiet = since(&s, &admin, &tasks[2]).await;
    assert!(
        quiet.values().all(|v| *v == FindingState::Persistent),
        "{quiet:?}"
    );

    // The same task recorded again (a worker killed after recording, the task re-run)
    // changes nothing.
    let store = nessus_schema::Store::open(&s.results_dir().store_dir(&tasks[2])).unwrap();
    let observed = SchemaIngest::observed(&store).unwrap();
    let applied = s
        .queue()
        .record_findings("local", &tasks[2], jiff::Timestamp::now(), &observed)
        .await
        .unwrap();
    assert_eq!(applied, 0);
    assert_eq!(current(&s, &admin).await, last);

    // Tenancy: another principal sees none of it, nor the task as a start.
    let bob = Principal::new("bob");
    let req = ChangesRequest::new(vec!["0.0.0.0/0".into()], "1970-01-01").states(Some(vec![]));
    let page = s.findings_changes(&bob, &req).await.unwrap();
    assert!(page.changes.is_empty() && page.assets == 0);
    let err = s
        .findings_changes(
            &bob,
            &ChangesRequest::new(vec![HOST_A.into()], tasks[0].clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "task_not_found", "{err}");

    // The default answer: only changes (new, reopened, fixed), at or above a severity.
    let req =
        ChangesRequest::new(vec![HOST_A.into()], tasks[0].clone()).severity(Some("info".into()));
    let page = s.findings_changes(&admin, &req).await.unwrap();
    let want: BTreeSet<Key> = [kx.clone(), ky.clone(), kn.clone()].into();
    let got: BTreeSet<Key> = page
        .changes
        .iter()
        .map(|c| {
            (
                HOST_A.to_owned(),
                c.plugin_id.unwrap(),
                c.port.unwrap(),
                c.protocol.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, want);
    // Rendered within a small budget, the closing line is last and says how to go on.
    let text = page.render(900);
    let lines: Vec<&str> = text.lines().collect();
    let closing: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert!(
        text.len() <= 900 || lines.len() == 2,
        "{} bytes",
        text.len()
    );
    assert_eq!(closing["type"], "pagination", "{text}");
    assert_eq!(closing["total"], 3);

    triage_carries_over_and_expires(&s, &p, &tasks, [kx, ky, kn], &all, &new_item).await;
}

/// The fingerprint of every finding on host A, by the test's key.
async fn fingerprints(s: &Service, who: &Principal) -> BTreeMap<Key, String> {
    let req = ChangesRequest::new(vec![HOST_A.into()], "1970-01-01")
        .states(Some(vec![]))
        .include_triaged(true)
        .limit(Some(1000));
    let page = s.findings_changes(who, &req).await.unwrap();
    page.changes
        .iter()
        .map(|c| {
            (
                (
                    HOST_A.to_owned(),
                    c.plugin_id.unwrap(),
                    c.port.unwrap(),
                    c.protocol.clone().unwrap(),
                ),
                c.fingerprint.clone(),
            )
        })
        .collect()
}

/// Default changes on host A since `task` (triaged findings left out): key → state.
async fn attention(s: &Service, who: &Principal, task: &str) -> BTreeMap<Key, FindingState> {
    let req = ChangesRequest::new(vec![HOST_A.into()], task);
    let page = s.findings_changes(who, &req).await.unwrap();
    page.changes
        .iter()
        .map(|c| {
            (
                (
                    HOST_A.to_owned(),
                    c.plugin_id.unwrap(),
                    c.port.unwrap(),
                    c.protocol.clone().unwrap(),
                ),
                c.state,
            )
        })
        .collect()
}

async fn triage_carries_over_and_expires(
    s: &Service,
    p: &Parts,
    tasks: &[String],
    [kx, ky, kn]: [Key; 3],
    all: &[String],
    new_item: &str,
) {
    let admin = Principal::local();
    let fps = fingerprints(s, &admin).await;
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_millis(2500);
    s.triage_finding(
        &admin,
        &TriageRequest::new(&fps[&kx], "false_positive", "lab box"),
    )
    .await
    .unwrap();
    let marked = s
        .triage_finding(
            &admin,
            &TriageRequest::new(&fps[&kn], "accepted_risk", "port closed at the firewall")
                .expires_at(Some(expires.to_string())),
        )
        .await
        .unwrap();
    assert_eq!(marked.finding.triage.as_ref().unwrap().by, "local");
    // Refused: no reason, a past expiry, another principal's finding.
    for bad in [
        TriageRequest::new(&fps[&kx], "false_positive", " "),
        TriageRequest::new(&fps[&kx], "false_positive", "x").expires_at(Some("2001-01-01".into())),
        TriageRequest::new(&fps[&kx], "wontfix", "x"),
    ] {
        let e = s.triage_finding(&admin, &bad).await.unwrap_err();
        assert_eq!(e.code(), "invalid_argument", "{e}");
    }
    let bob = Principal::new("bob");
    let e = s
        .triage_finding(
            &bob,
            &TriageRequest::new(&fps[&ky], "false_positive", "mine now"),
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        "invalid_argument",
        "bob cannot triage local's finding: {e}"
    );

    // Marked findings leave the default ("needs attention") answer; shown on request.
    let want = |keys: &[&Key]| -> BTreeMap<Key, FindingState> {
        let full: BTreeMap<Key, FindingState> = [
            (kx.clone(), FindingState::Reopened),
            (ky.clone(), FindingState::Fixed),
            (kn.clone(), FindingState::New),
        ]
        .into();
        full.into_iter()
            .filter(|(k, _)| keys.contains(&k))
            .collect()
    };
    assert_eq!(attention(s, &admin, &tasks[0]).await, want(&[&ky]));
    let shown = s
        .findings_changes(
            &admin,
            &ChangesRequest::new(vec![HOST_A.into()], tasks[0].clone()).include_triaged(true),
        )
        .await
        .unwrap();
    let x = shown
        .changes
        .iter()
        .find(|c| c.fingerprint == fps[&kx])
        .unwrap();
    let t = x.triage.as_ref().expect("triage shown");
    assert_eq!(
        (t.mark.as_str(), t.reason.as_str()),
        ("false_positive", "lab box")
    );

    // A later scan (y back, the rest as scan 3) keeps the marks: same fingerprints.
    let mut items: Vec<String> = all.to_vec();
    items.push(new_item.to_owned());
    let scan4 = Scan {
        hosts: vec![(HOST_A.into(), items)],
    };
    let t4 = import(s, &admin, scan4.xml(p)).await;
    let reopened_y: BTreeMap<Key, FindingState> = [(ky.clone(), FindingState::Reopened)].into();
    assert_eq!(
        attention(s, &admin, &tasks[0]).await,
        reopened_y,
        "y is back; x and n stay marked"
    );
    assert_eq!(
        fingerprints(s, &admin).await,
        fps,
        "fingerprints are stable"
    );

    // The accepted risk expires: n needs attention again, x stays marked.
    let wait = expires.duration_since(jiff::Timestamp::now());
    if wait.is_positive() {
        tokio::time::sleep(wait.unsigned_abs() + std::time::Duration::from_millis(100)).await;
    }
    let mut expected = reopened_y.clone();
    expected.insert(kn.clone(), FindingState::New);
    assert_eq!(attention(s, &admin, &tasks[0]).await, expected);
    // Cleared: x too.
    s.triage_finding(&admin, &TriageRequest::new(&fps[&kx], "clear", ""))
        .await
        .unwrap();
    expected.insert(kx.clone(), FindingState::Reopened);
    assert_eq!(attention(s, &admin, &tasks[0]).await, expected);
    // Since scan 4 nothing changed; the marks were audited (two marks and a clear).
    assert_eq!(attention(s, &admin, &t4).await, BTreeMap::new());
    let audit = s
        .queue()
        .audit_list(nessus_queue::AuditQuery::new(50).action(nessus_queue::AuditAction::Triage))
        .await
        .unwrap();
    assert_eq!(audit.events.len(), 3, "{:?}", audit.events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_time_sqlite() {
    scans_over_time_give_the_expected_states(&Harness::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_time_redis() {
    scans_over_time_give_the_expected_states(&Harness::redis().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_time_redis_cluster() {
    scans_over_time_give_the_expected_states(&Harness::redis_cluster().await).await;
}
