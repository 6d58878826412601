//! `nessus-cli audit` against a SQLite queue whose trail was written through the library.

use super::*;
use jiff::{SignedDuration, Timestamp};
use nessus_queue::{AuditAction, AuditEvent, Queue, QueueConfig};

/// A data directory holding four audit events, and the events themselves (the model).
struct Trail {
    dir: tempfile::TempDir,
    events: Vec<AuditEvent>,
    now: Timestamp,
}

impl Trail {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.sqlite3");
        let now = Timestamp::now();
        let ago = |mins: i64| now - SignedDuration::from_mins(mins);
        let events = vec![
            AuditEvent::builder(AuditAction::Submit, "alice")
                .at(ago(180))
                .trace_id("trace-1")
                .task_id("ness_un_20261207_150000_00000000000000000000000000000001")
                .pool("nessus")
                .targets("192.0.2.1")
                .build(),
            AuditEvent::builder(AuditAction::PolicyRefused, "bob")
                .at(ago(120))
                .trace_id("trace-2")
                .pool("nessus")
                .targets("10.0.0.1")
                .outcome("target_not_allowed")
                .detail("target 10.0.0.1 is not allowed in pool nessus")
                .build(),
            AuditEvent::builder(AuditAction::ResultsRead, "alice")
                .at(ago(60))
                .trace_id("trace-3")
                .task_id("ness_un_20261207_150000_00000000000000000000000000000001")
                .pool("nessus")
                .detail("task \u{1b}[31mred\u{1b}[0m\r")
                .build(),
            AuditEvent::builder(AuditAction::Cancel, "alice")
                .at(ago(10))
                .trace_id("trace-4")
                .task_id("ness_un_20261207_150000_00000000000000000000000000000001")
                .pool("nessus")
                .build(),
        ];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let queue = Queue::sqlite(&db, QueueConfig::default()).unwrap();
            for e in &events {
                queue.audit(e.clone()).await.unwrap();
            }
        });
        Self { dir, events, now }
    }

    fn run(&self, args: &[&str], code: i32) -> Output {
        let mut all = vec!["--data-dir", self.dir.path().to_str().unwrap(), "audit"];
        all.extend_from_slice(args);
        check(&all, code)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_slice(&self.run(&all, OK).stdout).expect("JSON output")
    }

    /// Trace ids of the events `keep` selects, newest first: the model's answer.
    fn expected(&self, keep: impl Fn(&AuditEvent) -> bool) -> Vec<String> {
        let mut kept: Vec<&AuditEvent> = self.events.iter().filter(|e| keep(e)).collect();
        kept.sort_by_key(|e| std::cmp::Reverse(e.at));
        kept.iter().map(|e| e.trace_id.clone()).collect()
    }
}

fn trace_ids(page: &serde_json::Value) -> Vec<String> {
    page["events"]
        .as_array()
        .expect("an events array")
        .iter()
        .map(|e| e["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn audit_json_filters_match_the_model() {
    let trail = Trail::new();
    let until = (trail.now - SignedDuration::from_mins(90)).to_string();
    let since_cut = trail.now - SignedDuration::from_mins(90);
    let until_cut = since_cut;
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (vec![], trail.expected(|_| true)),
        (
            vec!["--principal", "alice"],
            trail.expected(|e| e.principal == "alice"),
        ),
        (
            vec!["--action", "policy_refused"],
            trail.expected(|e| e.action == AuditAction::PolicyRefused),
        ),
        (
            vec![
                "--task",
                "ness_un_20261207_150000_00000000000000000000000000000001",
                "--action",
                "cancel",
            ],
            trail.expected(|e| {
                e.task_id.as_deref()
                    == Some("ness_un_20261207_150000_00000000000000000000000000000001")
                    && e.action == AuditAction::Cancel
            }),
        ),
        (vec!["--pool", "dmz"], vec![]),
        (
            vec!["--since", "90m"],
            trail.expected(|e| e.at >= since_cut),
        ),
        (
            vec!["--until", &until],
            trail.expected(|e| e.at < until_cut),
        ),
    ];
    for (args, expected) in cases {
        let page = trail.json(&args);
        assert_eq!(trace_ids(&page), expected, "audit {args:?}");
        assert!(page["next_cursor"].is_null(), "{args:?}: one page");
    }
    // Every field comes back as recorded.
    let all = trail.json(&[]);
    let refused = &all["events"][2];
    assert_eq!(refused["action"], "policy_refused");
    assert_eq!(refused["outcome"], "target_not_allowed");
    assert_eq!(refused["targets"], "10.0.0.1");
    assert!(refused["task_id"].is_null());
}

#[test]
fn audit_pages_with_a_cursor() {
    let trail = Trail::new();
    let expected = trail.expected(|e| e.principal == "alice");
    let first = trail.json(&["--principal", "alice", "--limit", "2"]);
    assert_eq!(trace_ids(&first), expected[..2]);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let second = trail.json(&["--principal", "alice", "--limit", "2", "--cursor", &cursor]);
    assert_eq!(trace_ids(&second), expected[2..]);
    assert!(second["next_cursor"].is_null());
    let human = stdout(&trail.run(&["--principal", "alice", "--limit", "2"], OK));
    assert!(
        human.contains(&format!("more: --cursor {cursor}")),
        "{human}"
    );
}

#[test]
fn audit_table_escapes_control_characters() {
    let trail = Trail::new();
    let out = trail.run(&[], OK);
    let human = stdout(&out);
    assert!(
        !out.stdout.iter().any(|&b| b == 0x1b || b == b'\r'),
        "raw ESC or CR reached the terminal: {human:?}"
    );
    assert!(
        human.contains("task \\u{1b}[31mred\\u{1b}[0m\\r"),
        "{human}"
    );
    for e in &trail.events {
        assert!(human.contains(&e.trace_id), "{human}");
    }
    assert!(human.contains("policy_refused"), "{human}");
}

#[test]
fn audit_refuses_bad_arguments_and_missing_queues() {
    let trail = Trail::new();
    for args in [
        vec!["--action", "launch"],
        vec!["--since", "yesterday"],
        vec!["--until", "5y"],
        vec!["--cursor", "garbage"],
    ] {
        let err = stderr(&trail.run(&args, USAGE));
        assert!(err.contains("error:"), "{args:?}: {err}");
    }
    let empty = tempfile::tempdir().unwrap();
    check(
        &["--data-dir", empty.path().to_str().unwrap(), "audit"],
        INPUT,
    );
}
