//! `nessus-cli worker`: one task end to end on a temporary SQLite queue against the
//! simulator, then a graceful SIGTERM.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nessus_queue::{
    AdhocCredentials, NewTask, Queue, QueueConfig, ScanType, SecretBox, TaskStatus,
};
use secrecy::SecretString;

use super::support::{Sim, write_config};
use super::*;

/// Kills the worker if the test fails before it is stopped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn worker_runs_a_task_to_completed_and_stops_on_sigterm() {
    let sim = Sim::start(Duration::from_millis(500));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("scanner1", &sim.url())]);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let queue = Queue::sqlite(data.join("queue.sqlite3"), QueueConfig::default()).unwrap();
    let request = NewTask::new(ScanType::Untrusted, "nessus", "192.0.2.10", "weekly");
    let task_id = sim
        .rt
        .block_on(queue.submit("alice", request, None, None))
        .unwrap()
        .task
        .task_id;

    let child = Command::new(assert_cmd::cargo::cargo_bin!("nessus-cli"))
        .args(["worker", "--id", "test-worker", "--poll-interval", "0.2"])
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the worker starts");
    let mut worker = Running(child);

    let task = wait_terminal(&sim, &queue, &task_id);
    assert_eq!(task.status, TaskStatus::Completed, "{task:?}");
    assert_eq!(task.instance.as_deref(), Some("scanner1"));
    let summary = task.results_summary.expect("a results summary");
    assert!(summary["hosts_scanned"].as_u64().unwrap() >= 1, "{summary}");
    let store = data.join("results").join(&task_id).join("store");
    assert!(store.join("meta.json").is_file(), "no findings store");

    // The admin commands see the same queue through --config.
    let config = config.to_str().unwrap();
    let out = check(
        &["tasks", "show", &task_id, "--json", "--config", config],
        OK,
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["task"]["status"], "completed", "{shown}");

    let killed = Command::new("kill")
        .args(["-TERM", &worker.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = worker.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(OK), "{status:?}");
}

/// No secret at any log level (issue 12): the worker opens the sealed passwords and
/// hands them, with the instance's API key, to the HTTP client; at `RUST_LOG=trace`
/// none of them may appear on stderr.
#[test]
fn worker_logs_no_secret_at_trace() {
    const SSH: &str = "canary-cli-ssh-pw-41d7e0";
    const ESCALATION: &str = "canary-cli-escalation-pw-9c2b5f";
    let sim = Sim::start(Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("scanner1", &sim.url())]);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let secrets = SecretBox::from_env_or_file(&data.join("secret.key")).unwrap();
    let queue = Queue::sqlite(data.join("queue.sqlite3"), QueueConfig::default())
        .unwrap()
        .with_secrets(secrets);
    let request = NewTask::new(
        ScanType::AuthenticatedPrivileged,
        "nessus",
        "192.0.2.10",
        "canary",
    );
    let credentials = AdhocCredentials::ssh("scanner", SecretString::from(SSH)).escalate(
        "sudo",
        Some("root".to_owned()),
        Some(SecretString::from(ESCALATION)),
    );
    let task_id = sim
        .rt
        .block_on(queue.submit("alice", request, Some(credentials), None))
        .unwrap()
        .task
        .task_id;

    let log = dir.path().join("worker.log");
    let child = Command::new(assert_cmd::cargo::cargo_bin!("nessus-cli"))
        .args(["worker", "--id", "canary-worker", "--poll-interval", "0.2"])
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "trace")
        .env_remove("NESSUS_QUEUE_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("the worker starts");
    let worker = Running(child);
    let task = wait_terminal(&sim, &queue, &task_id);
    drop(worker);
    assert_eq!(task.status, TaskStatus::Completed, "{task:?}");
    let seen = sim
        .handle
        .as_ref()
        .expect("simulator")
        .secret_seen_count(SSH);
    assert_eq!(seen, 1, "the password reached Nessus");

    let text = std::fs::read_to_string(&log).unwrap();
    // Our own debug lines show that `trace` took effect.
    assert!(text.contains("Nessus call"), "no debug lines: {text}");
    for secret in [SSH, ESCALATION, "test-secret-value"] {
        let leaks: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaks.is_empty(), "{secret} in log lines: {leaks:#?}");
    }
}

#[test]
fn worker_argument_errors() {
    check(&["worker"], USAGE);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("scanner1", "http://127.0.0.1:9")]);
    let config = config.to_str().unwrap();
    check(&["worker", "--config", config, "--concurrency", "0"], USAGE);
    check(
        &["worker", "--config", config, "--poll-interval", "0"],
        USAGE,
    );
}

/// Polls the task until it is terminal (at most 60 s) and returns it.
fn wait_terminal(
    sim: &crate::support::Sim,
    queue: &nessus_queue::Queue,
    task_id: &str,
) -> nessus_queue::Task {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = sim.rt.block_on(queue.get(task_id)).unwrap().expect("task");
        if view.task.status.is_terminal() {
            return view.task;
        }
        assert!(
            Instant::now() < deadline,
            "task still {:?}",
            view.task.status
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
