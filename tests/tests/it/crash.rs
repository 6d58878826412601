//! Crash test: ≥ 50 scans against the simulator, 4 worker processes, two of them
//! killed with SIGKILL mid-run and restarted: 0 tasks lost, 0 duplicate Nessus scans
//! (simulator counters), every task terminal — on SQLite and on Redis.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nessus_core::sim::Simulator;
use nessus_queue::{NewTask, Queue, QueueConfig, ScanType, TaskStatus};

const TASKS: usize = 50;

pub(crate) struct Proc(pub(crate) Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn worker(backend: &str, sim: &str, results: &Path, id: &str) -> Proc {
    Proc(
        Command::new(env!("CARGO_BIN_EXE_queue-worker"))
            .env("NQ_BACKEND", backend)
            .env("NQ_SIM_URL", sim)
            .env("NQ_RESULTS", results)
            .env("NQ_WORKER_ID", id)
            .env("NQ_LEASE_MS", "2000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn queue-worker"),
    )
}

async fn run(backend: &str, queue: Queue) {
    let sim = Simulator::builder()
        .scan_duration(Duration::from_secs(2))
        .corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpus/nessus/defectdojo__nessus_was_one_vuln.xml"
        ))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let results = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let r = NewTask::new(
            ScanType::Untrusted,
            "nessus",
            format!("10.2.0.{}", i + 1),
            "crash",
        );
        ids.push(queue.submit("p", r, None, None).await.unwrap().task.task_id);
    }
    let mut procs: Vec<Proc> = (0..4)
        .map(|i| worker(backend, sim.base_url(), results.path(), &format!("w{i}")))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // kill -9 two workers mid-run (scans created and running), then restart them.
    for p in procs.iter_mut().take(2) {
        p.0.kill().unwrap();
        p.0.wait().unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    procs[0] = worker(backend, sim.base_url(), results.path(), "w0-restarted");
    procs[1] = worker(backend, sim.base_url(), results.path(), "w1-restarted");

    let start = Instant::now();
    loop {
        let mut terminal = 0;
        for id in &ids {
            let v = queue
                .get(id)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("task {id} lost"));
            terminal += usize::from(v.task.status.is_terminal());
        }
        if terminal == TASKS {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(150),
            "{terminal}/{TASKS} terminal"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for id in &ids {
        let t = queue.get(id).await.unwrap().unwrap().task;
        assert_eq!(
            t.status,
            TaskStatus::Completed,
            "{id}: {:?}",
            t.error_message
        );
    }
    let c = sim.counters();
    assert_eq!(c.scans_created, TASKS as u64, "one Nessus scan per task");
    assert!(
        c.by_name.values().all(|n| n.created == 1),
        "a scan name was created twice"
    );
    drop(procs);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_two_of_four_workers_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.db");
    let queue = Queue::sqlite(&db, QueueConfig::default()).unwrap();
    run(&format!("sqlite:{}", db.display()), queue).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_two_of_four_workers_redis() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _redis = Proc(
        Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for the Redis crash test"),
    );
    let url = format!("redis://127.0.0.1:{port}/");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let queue = Queue::redis(&url, QueueConfig::default()).await.unwrap();
    run(&url, queue).await;
}
