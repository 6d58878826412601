//! The worker runtime end to end against the `nessus-core` simulator over real HTTP
//! on 127.0.0.1, with a real SQLite queue.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use jiff::SignedDuration;
use nessus_core::RetryPolicy;
use nessus_core::sim::SimHandle;
use nessus_queue::testkit::{self, StaticDirectory, sim_client, simulator, single_pool};
use nessus_queue::{
    AdhocCredentials, KeepExportOnly, ListTasks, NewTask, Queue, QueueConfig, ScanType, TaskStatus,
    Worker, WorkerConfig,
};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::support::Harness;

/// Every log line of the test binary at TRACE, for the secret canary.
pub(crate) fn log_buffer() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let w = Arc::clone(&buf);
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(Arc::clone(&w)))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Rig {
    sim: SimHandle,
    queue: Queue,
    results: tempfile::TempDir,
    h: Harness,
}

async fn rig(scan: Duration, lease: SignedDuration) -> Rig {
    log_buffer();
    let sim = simulator(scan).start("127.0.0.1:0").await.unwrap();
    let h = Harness::sqlite();
    let queue = h.with_config(
        QueueConfig::default()
            .lease_ttl(lease)
            .pool_capacity("nessus", 4),
    );
    Rig {
        sim,
        queue,
        results: tempfile::tempdir().unwrap(),
        h,
    }
}

impl Rig {
    fn worker(&self, id: &str) -> Worker {
        let client = sim_client(self.sim.base_url())
            .retry(RetryPolicy::none())
            .build()
            .unwrap();
        let cfg = WorkerConfig::new(id, single_pool("nessus", "s1", 4), self.results.path())
            .idle_poll(Duration::from_millis(50))
            .retry_backoff(Duration::from_millis(100), Duration::from_millis(500))
            .reap_interval(Duration::from_millis(200));
        Worker::new(
            self.queue.clone(),
            cfg,
            Arc::new(StaticDirectory::one("nessus", "s1", client)),
            Arc::new(KeepExportOnly),
        )
    }

    fn spawn(&self, id: &str) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
        let (tx, rx) = watch::channel(false);
        let w = self.worker(id);
        (tx, tokio::spawn(async move { w.run(rx).await.unwrap() }))
    }

    async fn wait_terminal(&self, ids: &[String], limit: Duration) {
        let start = Instant::now();
        loop {
            let done = testkit::terminal_count(&self.queue, ids).await.unwrap();
            if done == ids.len() {
                return;
            }
            if start.elapsed() >= limit {
                let logs = log_buffer();
                let logs = logs.lock().unwrap();
                let tail = String::from_utf8_lossy(&logs).into_owned();
                panic!(
                    "{done}/{} terminal after {limit:?}; log tail:\n{tail}",
                    ids.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn req(i: usize) -> NewTask {
    NewTask::new(
        ScanType::Untrusted,
        "nessus",
        format!("10.0.0.{}", i % 250 + 1),
        "w",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn short_scan_completes_promptly_with_results_and_one_nessus_scan() {
    let r = rig(Duration::from_secs(2), SignedDuration::from_secs(30)).await;
    let (stop, run) = r.spawn("w1");
    let t0 = Instant::now();
    let s = r.queue.submit("p", req(1), None, None).await.unwrap();
    r.wait_terminal(
        std::slice::from_ref(&s.task.task_id),
        Duration::from_secs(40),
    )
    .await;
    let took = t0.elapsed();
    let t = r.queue.get(&s.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Completed, "{t:?}");
    // Adaptive polling: a 2 s scan is done well before a fixed 30 s poll would notice.
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert!(t.nessus_scan_id.is_some());
    assert!(
        r.results
            .path()
            .join(&t.task_id)
            .join("scan.nessus")
            .is_file()
    );
    let c = r.sim.counters();
    assert_eq!(c.scans_created, 1);
    assert_eq!(c.by_name[&t.nessus_scan_name()].created, 1);
    stop.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_identical_submits_make_one_task_and_one_scan() {
    let r = rig(Duration::from_millis(500), SignedDuration::from_secs(30)).await;
    let (stop, run) = r.spawn("w1");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let q = r.queue.clone();
        set.spawn(async move { q.submit("p", req(7), None, Some("dup")).await.unwrap() });
    }
    let mut ids = std::collections::HashSet::new();
    while let Some(s) = set.join_next().await {
        ids.insert(s.unwrap().task.task_id);
    }
    assert_eq!(ids.len(), 1);
    let ids: Vec<String> = ids.into_iter().collect();
    r.wait_terminal(&ids, Duration::from_secs(40)).await;
    assert_eq!(r.sim.counters().scans_created, 1);
    stop.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scanner_outage_fails_nothing() {
    // The outage length is a parameter; the 60 s is shortened to keep the suite fast.
    let outage = Duration::from_secs(3);
    let r = rig(Duration::from_secs(1), SignedDuration::from_secs(30)).await;
    let (stop, run) = r.spawn("w1");
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            r.queue
                .submit("p", req(i), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Refuse new connections and answer 503 on open ones.
    r.sim.update_faults(|f| {
        f.drop_connections = true;
        f.error_rate = 1.0;
        f.fail_status = Some(503);
    });
    tokio::time::sleep(outage).await;
    r.sim.update_faults(|f| {
        f.drop_connections = false;
        f.error_rate = 0.0;
    });
    r.wait_terminal(&ids, Duration::from_secs(60)).await;
    let failed = testkit::not_completed(&r.queue, &ids).await.unwrap();
    assert!(failed.is_empty(), "not completed: {failed:?}");
    let c = r.sim.counters();
    assert!(
        c.dropped + c.injected_errors > 0,
        "the outage must have been felt"
    );
    assert!(
        c.by_name.values().all(|n| n.created <= 1),
        "no duplicate scans"
    );
    stop.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crashed_worker_is_replaced_and_the_scan_reattached() {
    let r = rig(Duration::from_secs(2), SignedDuration::from_millis(600)).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            r.queue
                .submit("p", req(i), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    let (_stop_a, run_a) = r.spawn("a");
    // Let worker A create and launch its scans, then "kill -9" it: no release, no cleanup.
    tokio::time::sleep(Duration::from_millis(800)).await;
    run_a.abort();
    let _ = run_a.await;
    let created_before = r.sim.counters().scans_created;
    assert!(created_before > 0);
    let (stop_b, run_b) = r.spawn("b");
    r.wait_terminal(&ids, Duration::from_secs(40)).await;
    for id in &ids {
        let t = r.queue.get(id).await.unwrap().unwrap().task;
        assert_eq!(t.status, TaskStatus::Completed);
    }
    let c = r.sim.counters();
    assert_eq!(
        c.scans_created, 4,
        "one Nessus scan per task, re-attached not recreated"
    );
    assert!(c.by_name.values().all(|n| n.created == 1));
    stop_b.send(true).unwrap();
    run_b.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_running_stops_the_scan_and_timeout_stops_too() {
    let r = rig(Duration::from_secs(30), SignedDuration::from_millis(600)).await;
    let (stop, run) = r.spawn("w1");
    let s = r.queue.submit("p", req(1), None, None).await.unwrap();
    // Wait until it runs on Nessus.
    let start = Instant::now();
    while r
        .queue
        .get(&s.task.task_id)
        .await
        .unwrap()
        .unwrap()
        .task
        .nessus_scan_id
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "scan never created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    r.queue.cancel(&s.task.task_id).await.unwrap();
    r.wait_terminal(
        std::slice::from_ref(&s.task.task_id),
        Duration::from_secs(10),
    )
    .await;
    let t = r.queue.get(&s.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert_eq!(r.sim.counters().scans_stopped, 1);
    stop.send(true).unwrap();
    run.await.unwrap();

    // Timeout: a worker whose limit is shorter than the scan.
    let client = sim_client(r.sim.base_url()).build().unwrap();
    let cfg = WorkerConfig::new("t", single_pool("nessus", "s1", 1), r.results.path())
        .idle_poll(Duration::from_millis(50))
        .scan_timeout(Duration::from_secs(1));
    let w = Worker::new(
        r.queue.clone(),
        cfg,
        Arc::new(StaticDirectory::one("nessus", "s1", client)),
        Arc::new(KeepExportOnly),
    );
    let (tx, rx) = watch::channel(false);
    let run = tokio::spawn(async move { w.run(rx).await.unwrap() });
    let s = r.queue.submit("p", req(2), None, None).await.unwrap();
    r.wait_terminal(
        std::slice::from_ref(&s.task.task_id),
        Duration::from_secs(10),
    )
    .await;
    let t = r.queue.get(&s.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Timeout);
    assert_eq!(t.error_code.as_deref(), Some("scan_timeout"));
    assert_eq!(r.sim.counters().scans_stopped, 2);
    tx.send(true).unwrap();
    run.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secret_canary_appears_nowhere_but_once_per_created_scan() {
    let logs = log_buffer();
    let r = rig(Duration::from_millis(500), SignedDuration::from_secs(30)).await;
    let canary = format!("CANARY-{}", uuid::Uuid::new_v4());
    let creds = || AdhocCredentials::ssh("root", SecretString::from(canary.clone()));
    let auth = |i: usize| {
        NewTask::new(
            ScanType::Authenticated,
            "nessus",
            format!("10.1.0.{i}"),
            "auth",
        )
    };
    let (stop, run) = r.spawn("w1");
    let ok = r
        .queue
        .submit("p", auth(1), Some(creds()), None)
        .await
        .unwrap();
    r.wait_terminal(
        std::slice::from_ref(&ok.task.task_id),
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(
        r.queue
            .get(&ok.task.task_id)
            .await
            .unwrap()
            .unwrap()
            .task
            .status,
        TaskStatus::Completed
    );
    assert_eq!(
        r.sim.secret_seen_count(&canary),
        1,
        "exactly once for the one created scan"
    );
    // Failure path: Nessus refuses the create with 400 → DLQ.
    r.sim.update_faults(|f| {
        f.only = Some("POST /scans".to_owned());
        f.fail_next = 1;
        f.fail_status = Some(400);
    });
    let bad = r
        .queue
        .submit("p", auth(2), Some(creds()), None)
        .await
        .unwrap();
    r.wait_terminal(
        std::slice::from_ref(&bad.task.task_id),
        Duration::from_secs(40),
    )
    .await;
    let t = r.queue.get(&bad.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.error_code.as_deref(), Some("nessus_http_400"));
    assert!(t.is_dead_lettered());
    stop.send(true).unwrap();
    run.await.unwrap();

    let needle = canary.as_bytes();
    let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(
        !has(&r.h.all_stored_bytes().await),
        "canary in the SQLite files"
    );
    assert!(!has(&logs.lock().unwrap()), "canary in the logs");
    let dlq = serde_json::to_vec(&r.queue.dlq_list(None, 100, None).await.unwrap()).unwrap();
    assert!(!has(&dlq), "canary in the DLQ");
    let listing = serde_json::to_vec(&r.queue.list(ListTasks::new(100)).await.unwrap()).unwrap();
    assert!(!has(&listing), "canary in list_tasks");
    for e in walk(r.results.path()) {
        assert!(
            !has(&std::fs::read(&e).unwrap()),
            "canary in {}",
            e.display()
        );
    }
    assert!(
        r.queue
            .open_credentials(&ok.task.task_id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        r.queue
            .open_credentials(&bad.task.task_id)
            .await
            .unwrap()
            .is_none()
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn housekeeping_deletes_expired_tasks_results_and_only_our_scans() {
    let r = rig(Duration::from_millis(300), SignedDuration::from_secs(30)).await;
    let (stop, run) = r.spawn("w1");
    let s = r.queue.submit("p", req(3), None, None).await.unwrap();
    r.wait_terminal(
        std::slice::from_ref(&s.task.task_id),
        Duration::from_secs(40),
    )
    .await;
    stop.send(true).unwrap();
    run.await.unwrap();
    assert!(r.results.path().join(&s.task.task_id).is_dir());
    // A worker whose queue keeps completed tasks for 0.1 s only.
    let q = r.h.with_config(QueueConfig::default().ttls(
        SignedDuration::from_millis(100),
        SignedDuration::from_secs(3600),
    ));
    let w = {
        let client = sim_client(r.sim.base_url()).build().unwrap();
        Worker::new(
            q.clone(),
            WorkerConfig::new("hk", vec![], r.results.path()),
            Arc::new(StaticDirectory::one("nessus", "s1", client)),
            Arc::new(KeepExportOnly),
        )
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let dry = w.housekeep(true).await.unwrap();
    assert_eq!(dry.tasks.len(), 1);
    assert_eq!(r.sim.counters().scans_deleted, 0, "dry run deletes nothing");
    let rep = w.housekeep(false).await.unwrap();
    assert_eq!(rep.tasks.len(), 1);
    assert_eq!(r.sim.counters().scans_deleted, 1);
    assert!(!r.results.path().join(&s.task.task_id).exists());
    assert!(q.get(&s.task.task_id).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_releases_and_the_next_worker_reattaches() {
    let r = rig(Duration::from_secs(3), SignedDuration::from_secs(30)).await;
    let (stop, run) = r.spawn("first");
    let s = r.queue.submit("p", req(4), None, None).await.unwrap();
    let start = Instant::now();
    while r
        .queue
        .get(&s.task.task_id)
        .await
        .unwrap()
        .unwrap()
        .task
        .nessus_scan_id
        .is_none()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "scan never created"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    run.await.unwrap();
    let t = r.queue.get(&s.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Queued, "released, not abandoned");
    assert_eq!(t.attempts, 0, "a graceful release is not an attempt");
    assert!(t.nessus_scan_id.is_some());
    let (stop, run) = r.spawn("second");
    r.wait_terminal(
        std::slice::from_ref(&s.task.task_id),
        Duration::from_secs(40),
    )
    .await;
    assert_eq!(
        r.queue
            .get(&s.task.task_id)
            .await
            .unwrap()
            .unwrap()
            .task
            .status,
        TaskStatus::Completed
    );
    assert_eq!(
        r.sim.counters().scans_created,
        1,
        "re-attached to the recorded scan"
    );
    stop.send(true).unwrap();
    run.await.unwrap();
}

/// The worker records findings over time for a completed scan (before completing
/// it), on the same code path as import; recording the task again (a worker killed
/// after recording, the task re-run) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_ingest_records_findings_over_time_once() {
    use nessus_queue::findings::{ChangesQuery, FindingState, Since, Target};
    let r = rig(Duration::from_millis(300), SignedDuration::from_secs(30)).await;
    let client = sim_client(r.sim.base_url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let cfg = WorkerConfig::new("wf", single_pool("nessus", "s1", 4), r.results.path())
        .idle_poll(Duration::from_millis(50));
    let w = Worker::new(
        r.queue.clone(),
        cfg,
        Arc::new(StaticDirectory::one("nessus", "s1", client)),
        Arc::new(nessus_queue::SchemaIngest),
    );
    let (stop, rx) = watch::channel(false);
    let run = tokio::spawn(async move { w.run(rx).await.unwrap() });
    let s = r.queue.submit("p", req(7), None, None).await.unwrap();
    let id = s.task.task_id.clone();
    r.wait_terminal(std::slice::from_ref(&id), Duration::from_secs(40))
        .await;
    stop.send(true).unwrap();
    run.await.unwrap();
    let t = r.queue.get(&id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Completed, "{t:?}");
    let q = ChangesQuery {
        targets: vec![
            Target::parse("0.0.0.0/0").unwrap(),
            Target::parse("::/0").unwrap(),
        ],
        since: Since::Time(jiff::Timestamp::UNIX_EPOCH),
        states: FindingState::ALL.to_vec(),
        min_severity: 0,
        include_triaged: true,
        limit: 1000,
        cursor: None,
    };
    let page = r
        .queue
        .findings_changes(&["p".to_owned()], &q)
        .await
        .unwrap();
    let store = nessus_schema::Store::open(&nessus_queue::ResultsDir::store_in(
        &r.results.path().join(&id),
    ))
    .unwrap();
    let observed = nessus_queue::SchemaIngest::observed(&store).unwrap();
    let distinct: std::collections::BTreeSet<_> = observed
        .iter()
        .flat_map(|h| {
            h.findings.iter().map(move |f| {
                (
                    h.identity.name.clone(),
                    f.plugin_id,
                    f.port,
                    f.protocol.clone(),
                )
            })
        })
        .collect();
    assert!(!distinct.is_empty(), "the simulated scan found something");
    assert_eq!(page.changes.len(), distinct.len());
    assert!(
        page.changes
            .iter()
            .all(|c| c.current_state == FindingState::New)
    );
    let again = r
        .queue
        .record_findings("p", &id, jiff::Timestamp::now(), &observed)
        .await
        .unwrap();
    assert_eq!(again, 0, "the same task twice changes nothing");
}
