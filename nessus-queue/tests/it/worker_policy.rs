//! The worker's claim-time target check and its cancel watch, end to end: real HTTP to
//! the simulator, the production `ConfigDirectory` built from YAML (reloaded as SIGHUP
//! reloads it), on SQLite and on a spawned redis-server.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nessus_core::Config;
use nessus_core::sim::{ScanRecord, SimHandle};
use nessus_queue::testkit::{self, simulator, single_pool};
use nessus_queue::{
    ConfigDirectory, KeepExportOnly, NewTask, Queue, ScanType, Task, TaskStatus, Worker,
    WorkerConfig,
};
use tokio::sync::watch;

use crate::support::Harness;

/// Which store a test runs on.
#[derive(Clone, Copy, Debug)]
enum On {
    Sqlite,
    Redis,
}

struct Rig {
    sim: SimHandle,
    h: Harness,
    dir: Arc<ConfigDirectory>,
    tmp: tempfile::TempDir,
}

/// A config with pool `nessus` on the simulator. `allow: None` leaves the pool out
/// (another pool takes its place), as a config edit that deletes it would.
fn config(tmp: &std::path::Path, url: &str, allow: Option<&str>) -> Arc<Config> {
    let pool = match allow {
        Some(allow) => format!(
            "nessus:\n  target_policy:\n    allow: [{allow}]\n  instances:\n    \
             - instance_id: s1\n      url: \"{url}\"\n      access_key: k-access\n      \
             secret_key: k-secret\n      max_concurrent_scans: 4\n"
        ),
        None => "nessus_other:\n  target_policy:\n    allow: [192.0.2.0/24]\n  instances: []\n"
            .to_owned(),
    };
    let yaml = format!("server:\n  data_dir: {:?}\n{pool}", tmp.display());
    Arc::new(Config::from_yaml_with_env(&yaml, &|_| None).expect("config"))
}

async fn rig(on: On, scan: Duration) -> Rig {
    let sim = simulator(scan).start("127.0.0.1:0").await.unwrap();
    let h = match on {
        On::Sqlite => Harness::sqlite(),
        On::Redis => Harness::redis().await,
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), sim.base_url(), Some("192.0.2.0/24"));
    let dir = Arc::new(ConfigDirectory::new(cfg, None).expect("directory"));
    Rig { sim, h, dir, tmp }
}

impl Rig {
    fn queue(&self) -> &Queue {
        &self.h.queue
    }

    /// Narrows the policy (or drops the pool) for the next claims, as SIGHUP does.
    fn reload(&self, allow: Option<&str>) {
        self.dir
            .reload(config(self.tmp.path(), self.sim.base_url(), allow));
    }

    fn spawn(&self, id: &str) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let cfg = WorkerConfig::new(id, single_pool("nessus", "s1", 4), self.tmp.path())
            .idle_poll(Duration::from_millis(50))
            .polling(Duration::from_millis(100), Duration::from_millis(300))
            .retry_backoff(Duration::from_millis(100), Duration::from_millis(300));
        let w = Worker::new(
            self.queue().clone(),
            cfg,
            self.dir.clone(),
            Arc::new(KeepExportOnly),
        );
        let (tx, rx) = watch::channel(false);
        (tx, tokio::spawn(async move { w.run(rx).await.unwrap() }))
    }

    /// What the service layer stores at submit: the canonical text the policy in
    /// force then approved.
    fn approved(&self, raw: &str) -> String {
        self.dir
            .config()
            .pool("nessus")
            .unwrap()
            .check_targets(raw)
            .unwrap()
            .to_nessus_text()
    }

    async fn submit(&self, targets: &str) -> String {
        let req = NewTask::new(ScanType::Untrusted, "nessus", targets, "policy");
        let s = self.queue().submit("p", req, None, None).await.unwrap();
        s.task.task_id
    }

    async fn task(&self, id: &str) -> Task {
        self.queue().get(id).await.unwrap().unwrap().task
    }

    async fn wait_terminal(&self, ids: &[String]) {
        let start = Instant::now();
        while testkit::terminal_count(self.queue(), ids).await.unwrap() < ids.len() {
            assert!(
                start.elapsed() < Duration::from_secs(40),
                "tasks never ended"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn scan_named(&self, name: &str) -> Option<ScanRecord> {
        self.sim.scans().into_iter().find(|s| s.name == name)
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::On::Sqlite).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(super::On::Redis).await;
                }
            )*
        }
    };
}

on_both!(
    canonical_targets_reach_nessus,
    refused_at_claim_sends_nothing_to_nessus,
    cancel_stops_the_scan_within_two_seconds,
    cancel_from_another_handle_stops_the_scan_within_two_seconds,
    refused_on_reattach_stops_the_recorded_scan,
);

async fn canonical_targets_reach_nessus(on: On) {
    let r = rig(on, Duration::from_millis(300)).await;
    let (stop, run) = r.spawn("w1");
    // (what the caller sent, what Nessus must receive as `text_targets`). Each is
    // submitted as the service layer stores it (canonical) and as a task queued
    // before it did (the raw text): both reach Nessus as the canonical list.
    let cases = [
        ("192.0.2.10\t192.0.2.11", "192.0.2.10\n192.0.2.11"),
        ("192.0.2.10\r\n192.0.2.11", "192.0.2.10\n192.0.2.11"),
        ("::c000:20a", "192.0.2.10"),
    ];
    let mut ids = Vec::new();
    for (raw, want) in cases {
        for stored in [r.approved(raw), raw.to_owned()] {
            ids.push((r.submit(&stored).await, raw, want));
        }
    }
    let all: Vec<String> = ids.iter().map(|(id, ..)| id.clone()).collect();
    r.wait_terminal(&all).await;
    for (id, raw, want) in ids {
        let t = r.task(&id).await;
        assert_eq!(t.status, TaskStatus::Completed, "{raw:?}: {t:?}");
        let scan = r.scan_named(&t.nessus_scan_name()).expect("scan created");
        assert_eq!(
            scan.text_targets, want,
            "{on:?} {raw:?} stored as {:?}",
            t.targets
        );
    }
    stop.send(true).unwrap();
    run.await.unwrap();
}

async fn refused_at_claim_sends_nothing_to_nessus(on: On) {
    let r = rig(on, Duration::from_millis(300)).await;
    // A task that Nessus refuses (400 at create) goes to the DLQ.
    r.sim.update_faults(|f| {
        f.only = Some("POST /scans".to_owned());
        f.fail_next = 1;
        f.fail_status = Some(400);
    });
    let (stop, run) = r.spawn("w1");
    let dlq = r.submit(&r.approved("192.0.2.20")).await;
    r.wait_terminal(std::slice::from_ref(&dlq)).await;
    assert!(r.task(&dlq).await.is_dead_lettered());
    stop.send(true).unwrap();
    run.await.unwrap();
    let before = r.sim.counters();
    assert_eq!(before.scans_created, 0);

    // Queued under the old policy; then the target leaves the allow-list (SIGHUP)
    // and the operator retries the dead-lettered task.
    let queued = r.submit(&r.approved("192.0.2.10")).await;
    r.reload(Some("198.51.100.0/24"));
    r.queue().dlq_retry(&dlq).await.unwrap();
    let (stop, run) = r.spawn("w2");
    r.wait_terminal(&[queued.clone(), dlq.clone()]).await;
    for id in [&queued, &dlq] {
        let t = r.task(id).await;
        assert_eq!(t.status, TaskStatus::Failed, "{on:?} {t:?}");
        assert_eq!(t.error_code.as_deref(), Some("target_not_allowed"));
        let msg = t.error_message.clone().unwrap_or_default();
        assert!(msg.contains("not inside the pool's allow-list"), "{msg}");
        assert!(t.is_dead_lettered(), "retryable once the policy is fixed");
    }

    // The pool disappears from the config altogether.
    r.reload(None);
    let gone = r.submit("192.0.2.10").await;
    r.wait_terminal(std::slice::from_ref(&gone)).await;
    let t = r.task(&gone).await;
    assert_eq!(t.error_code.as_deref(), Some("target_not_allowed"));
    assert!(
        t.error_message
            .unwrap_or_default()
            .contains("no longer configured")
    );
    stop.send(true).unwrap();
    run.await.unwrap();

    let after = r.sim.counters();
    assert_eq!(after.scans_created, 0, "{on:?}");
    assert_eq!(
        after.requests, before.requests,
        "{on:?}: a refused task makes no Nessus request at all"
    );
}

async fn cancel_stops_the_scan_within_two_seconds(on: On) {
    let r = rig(on, Duration::from_secs(8)).await;
    cancel_case(&r, on, r.queue().clone(), "same handle").await;
}

/// The cancel arrives through a queue handle the worker's process does not share (as
/// from the server while a `nessus-cli worker` holds the task): only the store
/// carries it.
async fn cancel_from_another_handle_stops_the_scan_within_two_seconds(on: On) {
    let r = rig(on, Duration::from_secs(8)).await;
    let other = r.h.with_config(nessus_queue::QueueConfig::default());
    cancel_case(&r, on, other, "other handle").await;
}

async fn cancel_case(r: &Rig, on: On, canceller: Queue, how: &str) {
    let (stop, run) = r.spawn("w1");
    let id = r.submit(&r.approved("192.0.2.10")).await;
    let start = Instant::now();
    let name = loop {
        let t = r.task(&id).await;
        if let Some(s) = r.scan_named(&t.nessus_scan_name())
            && matches!(s.status.as_str(), "pending" | "running")
        {
            break s.name;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "never launched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled_at = epoch_ms();
    canceller.cancel(&id).await.unwrap();
    let stopped_at = loop {
        if let Some(ms) = r.scan_named(&name).and_then(|s| s.stop_requested_ms) {
            break ms;
        }
        assert!(
            epoch_ms() - cancelled_at < 3_000,
            "{on:?}/{how}: Nessus scan not stopped 3 s after the cancel"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let latency = stopped_at.saturating_sub(cancelled_at);
    println!("cancel-to-stop latency {on:?}/{how}: {latency} ms");
    assert!(latency < 2_000, "{on:?}/{how}: {latency} ms");
    r.wait_terminal(std::slice::from_ref(&id)).await;
    let t = r.task(&id).await;
    assert_eq!(t.status, TaskStatus::Cancelled, "{on:?}/{how}: {t:?}");
    let c = r.sim.counters();
    assert_eq!(c.scans_stopped, 1);
    assert_eq!(c.scans_created, 1);
    stop.send(true).unwrap();
    run.await.unwrap();
}

/// A task released by one worker (its scan recorded and running) and claimed again
/// after its target left the policy: the recorded scan is ours, so it is stopped, and
/// the task ends `target_not_allowed` without a second create.
async fn refused_on_reattach_stops_the_recorded_scan(on: On) {
    let r = rig(on, Duration::from_secs(8)).await;
    let (stop, run) = r.spawn("first");
    let id = r.submit(&r.approved("192.0.2.10")).await;
    let start = Instant::now();
    while r.task(&id).await.nessus_scan_id.is_none() {
        assert!(start.elapsed() < Duration::from_secs(20), "never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    run.await.unwrap();
    assert_eq!(r.task(&id).await.status, TaskStatus::Queued, "released");
    r.reload(Some("198.51.100.0/24"));
    let (stop, run) = r.spawn("second");
    r.wait_terminal(std::slice::from_ref(&id)).await;
    let t = r.task(&id).await;
    assert_eq!(
        t.error_code.as_deref(),
        Some("target_not_allowed"),
        "{on:?}"
    );
    let scan = r.scan_named(&t.nessus_scan_name()).unwrap();
    assert!(scan.stop_requested_ms.is_some(), "{on:?}: {scan:?}");
    assert_eq!(r.sim.counters().scans_created, 1);
    stop.send(true).unwrap();
    run.await.unwrap();
}
