//! The queue administration commands against a real SQLite queue file.

use super::*;
use nessus_queue::testkit::RedisServer;
use nessus_queue::{NewTask, Queue, QueueConfig, ScanType};

const NOT_FOUND: i32 = 4;
const REFUSED: i32 = 6;
const CONFLICT: i32 = 5;

/// A data directory whose queue holds two queued tasks and one dead-lettered task.
struct Fixture {
    dir: tempfile::TempDir,
    queued: Vec<String>,
    dead: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.sqlite3");
        let (dead, queued) = crate::support::seed_queue(
            &db,
            &[
                ("10.0.0.5", "first", ""),
                ("10.0.0.6", "second", ""),
                ("10.0.0.7", "third", ""),
            ],
            "policy not found",
        );
        Self { dir, queued, dead }
    }

    /// Writes a config whose pool `nessus` has the given target policy body; returns
    /// its path.
    fn config(&self, policy: &str) -> String {
        let path = self
            .dir
            .path()
            .join(format!("scanners-{}.yaml", policy.len()));
        std::fs::write(
            &path,
            format!(
                "nessus:\n  target_policy:\n    {policy}\n  instances:\n    - instance_id: scanner1\n      url: https://127.0.0.1:1\n      username: u\n      password: p\n"
            ),
        )
        .unwrap();
        path.to_str().unwrap().to_owned()
    }

    fn data_dir(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    /// Runs `nessus-cli --data-dir DIR args...`.
    fn run(&self, args: &[&str], code: i32) -> Output {
        let mut all = vec!["--data-dir", self.data_dir()];
        all.extend_from_slice(args);
        check(&all, code)
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.push("--json");
        serde_json::from_slice(&self.run(&all, OK).stdout).expect("JSON output")
    }
}

#[test]
fn queue_status_and_task_listing() {
    let fx = Fixture::new();
    let status = fx.json(&["queue", "status"]);
    assert_eq!(status["queue_depth"], 2);
    assert_eq!(status["dlq_size"], 1);
    let human = stdout(&fx.run(&["queue", "status", "--pool", "nessus"], OK));
    assert!(
        human.contains("2 queued, 0 running, 1 in the DLQ"),
        "{human}"
    );

    let page = fx.json(&["tasks", "list"]);
    assert_eq!(page["tasks"].as_array().unwrap().len(), 3);
    let queued = fx.json(&["tasks", "list", "--status", "queued"]);
    assert_eq!(queued["tasks"].as_array().unwrap().len(), 2);
    let by_target = fx.json(&["tasks", "list", "--target", "10.0.0.6"]);
    assert_eq!(by_target["tasks"].as_array().unwrap().len(), 1);
    let table = stdout(&fx.run(&["tasks", "list"], OK));
    assert!(
        fx.queued.iter().all(|id| table.contains(id.as_str())),
        "{table}"
    );

    let shown = fx.json(&["tasks", "show", &fx.queued[0]]);
    assert_eq!(shown["task"]["status"], "queued");
    assert!(shown["queue_position"].is_u64());
    let human = stdout(&fx.run(&["tasks", "show", &fx.queued[0]], OK));
    assert!(human.contains("queue_position"), "{human}");
}

#[test]
fn cancel_a_queued_task_then_again() {
    let fx = Fixture::new();
    let id = fx.queued[1].as_str();
    let out = fx.json(&["tasks", "cancel", id]);
    assert_eq!(out["outcome"], "cancelled");
    let again = stdout(&fx.run(&["tasks", "cancel", id], OK));
    assert!(again.contains("already finished"), "{again}");
    assert_eq!(
        fx.json(&["tasks", "show", id])["task"]["status"],
        "cancelled"
    );
}

#[test]
fn dead_letter_queue_list_show_retry_purge() {
    let fx = Fixture::new();
    let dead = fx.dead.as_str();
    let list = fx.json(&["dlq", "list"]);
    assert_eq!(list["tasks"][0]["task_id"], dead);
    assert_eq!(
        fx.json(&["dlq", "show", dead])["error_code"],
        "nessus_rejected"
    );

    // Purge refuses without --yes, and a queued task is not in the DLQ.
    let out = fx.run(&["dlq", "purge", "--all"], USAGE);
    assert!(stderr(&out).contains("--yes"));
    fx.run(&["dlq", "show", &fx.queued[0]], NOT_FOUND);
    fx.run(&["dlq", "retry", &fx.queued[0]], NOT_FOUND);

    // A retry re-checks the targets against the policy in force: without a config
    // there is no policy (and no pool), so it is refused and the task stays put.
    let out = fx.run(&["dlq", "retry", dead], REFUSED);
    assert!(stderr(&out).contains("nessus"), "{}", stderr(&out));
    let narrow = fx.config("allow: [10.9.0.0/16]");
    let out = fx.run(&["--config", &narrow, "dlq", "retry", dead], REFUSED);
    assert!(stderr(&out).contains("10.0.0."), "{}", stderr(&out));
    assert_eq!(fx.json(&["dlq", "list"])["tasks"][0]["task_id"], dead);

    let wide = fx.config("allow: [10.0.0.0/24]");
    let retried = fx.json(&["--config", &wide, "dlq", "retry", dead]);
    assert_eq!(retried["status"], "queued");
    assert_eq!(
        fx.json(&["dlq", "list"])["tasks"].as_array().unwrap().len(),
        0
    );
    assert_eq!(fx.json(&["dlq", "purge", "--all", "--yes"])["purged"], 0);
}

#[test]
fn purge_one_dead_task() {
    let fx = Fixture::new();
    let out = stdout(&fx.run(&["dlq", "purge", &fx.dead, "-y"], OK));
    assert!(out.contains("purged 1 task"), "{out}");
    fx.run(&["tasks", "show", &fx.dead], NOT_FOUND);
}

#[test]
fn housekeeping_dry_run_keeps_recent_tasks() {
    let fx = Fixture::new();
    let report = fx.json(&["housekeeping", "run", "--dry-run"]);
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["tasks"].as_array().unwrap().len(), 0);
    let out = stdout(&fx.run(&["housekeeping", "run"], OK));
    assert!(out.contains("deleted 0 expired task(s)"), "{out}");
}

#[test]
fn queue_errors() {
    let fx = Fixture::new();
    fx.run(&["tasks", "show", "no-such-task"], NOT_FOUND);
    fx.run(&["tasks", "cancel", "no-such-task"], NOT_FOUND);
    let out = fx.run(&["tasks", "list", "--status", "sleeping"], USAGE);
    assert!(stderr(&out).contains("unknown status"));
    let out = fx.run(&["dlq", "purge", "--before", "yesterday", "--yes"], USAGE);
    assert!(stderr(&out).contains("RFC 3339"));
    fx.run(&["dlq", "purge", "--yes"], USAGE);

    // No queue selected, or a directory without a queue database.
    let out = check(&["tasks", "list"], USAGE);
    assert!(stderr(&out).contains("--data-dir"), "{}", stderr(&out));
    let empty = tempfile::tempdir().unwrap();
    let out = check(
        &[
            "tasks",
            "list",
            "--data-dir",
            empty.path().to_str().unwrap(),
        ],
        INPUT,
    );
    assert!(
        stderr(&out).contains("no queue database"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_same_commands_reach_a_redis_queue() {
    let redis = RedisServer::start().expect("redis-server");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let queue = Queue::redis(redis.url(), QueueConfig::default())
            .await
            .unwrap();
        let request = NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.9", "on redis");
        queue
            .submit("bob", request, None, None)
            .await
            .unwrap()
            .task
            .task_id
    });
    let out = check(&["tasks", "list", "--json", "--redis-url", redis.url()], OK);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["tasks"][0]["task_id"], id.as_str());
    let out = check(
        &["--redis-url", redis.url(), "queue", "status", "--json"],
        OK,
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["queue_depth"], 1);
}

#[test]
fn approvals_list_approve_reject() {
    let fx = Fixture::new();
    let db = fx.dir.path().join("queue.sqlite3");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let held: Vec<String> = rt.block_on(async {
        let q = Queue::sqlite(&db, QueueConfig::default()).unwrap();
        let mut ids = Vec::new();
        for t in ["10.0.0.8", "10.0.0.9"] {
            let hold = nessus_queue::ApprovalHold {
                reason: "targets outside the pool's auto_approve list".to_owned(),
                expires_after: jiff::SignedDuration::from_hours(1),
            };
            let s = q
                .submit_held(
                    "alice",
                    NewTask::new(ScanType::Untrusted, "nessus", t, "held"),
                    None,
                    None,
                    None,
                    Some(hold),
                )
                .await
                .unwrap();
            ids.push(s.task.task_id);
        }
        ids
    });
    let wide = fx.config("allow: [10.0.0.0/24]");
    let list = fx.json(&["--config", &wide, "approvals", "list"]);
    assert_eq!(list["tasks"].as_array().unwrap().len(), 2, "{list}");
    let human = stdout(&fx.run(&["--config", &wide, "approvals", "list"], OK));
    assert!(human.contains("auto_approve list"), "{human}");
    // (subcommand, task, status after)
    let cases = [
        ("approve", &held[0], "queued"),
        ("reject", &held[1], "cancelled"),
    ];
    for (cmd, id, want) in cases {
        let t = fx.json(&[
            "--config",
            &wide,
            "approvals",
            cmd,
            id,
            "--reason",
            "ticket 9",
        ]);
        assert_eq!(t["status"], want, "{cmd}: {t}");
        assert_eq!(t["review"]["by"], "local", "{t}");
        // Decided: a second decision conflicts.
        fx.run(
            &[
                "--config",
                &wide,
                "approvals",
                "approve",
                id,
                "--reason",
                "again",
            ],
            CONFLICT,
        );
    }
    let list = fx.json(&["--config", &wide, "approvals", "list"]);
    assert!(list["tasks"].as_array().unwrap().is_empty(), "{list}");
    let approve = fx.json(&["audit", "--action", "approve"]);
    assert!(approve.to_string().contains("ticket 9"), "{approve}");
}

#[test]
fn schedules_create_list_show_pause_resume_delete() {
    let fx = Fixture::new();
    let cfg = fx.config("allow: [10.0.0.0/24]");
    let c = |args: &[&str]| {
        let mut all = vec!["--config", cfg.as_str()];
        all.extend_from_slice(args);
        fx.json(&all)
    };
    let s = c(&[
        "schedules",
        "create",
        "--cron",
        "30 1 * * 1",
        "--timezone",
        "America/New_York",
        "--targets",
        "10.0.0.9",
        "--name",
        "weekly",
        "--principal",
        "alice",
    ]);
    let id = s["schedule_id"].as_str().unwrap().to_owned();
    assert_eq!(s["principal"], "alice");
    assert_eq!(s["timezone"], "America/New_York");
    // (subcommand, paused after)
    for (cmd, paused) in [
        ("pause", true),
        ("show", true),
        ("resume", false),
        ("show", false),
    ] {
        assert_eq!(c(&["schedules", cmd, &id])["paused"], paused, "{cmd}");
    }
    let list = c(&["schedules", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let human = stdout(&fx.run(&["--config", &cfg, "schedules", "list"], OK));
    assert!(
        human.contains(&id) && human.contains("'30 1 * * 1'"),
        "{human}"
    );
    // Refused: a bad cron (an invalid argument: usage) and targets outside the policy.
    fx.run(
        &[
            "--config",
            &cfg,
            "schedules",
            "create",
            "--cron",
            "* *",
            "--targets",
            "10.0.0.1",
            "--name",
            "x",
        ],
        USAGE,
    );
    fx.run(
        &[
            "--config",
            &cfg,
            "schedules",
            "create",
            "--cron",
            "* * * * *",
            "--targets",
            "10.9.9.9",
            "--name",
            "x",
        ],
        REFUSED,
    );
    assert_eq!(c(&["schedules", "delete", &id])["deleted"], id.as_str());
    fx.run(&["--config", &cfg, "schedules", "show", &id], NOT_FOUND);
    assert!(c(&["schedules", "list"]).as_array().unwrap().is_empty());
}
