//! Crash test: ≥ 50 scans against the simulator, 4 worker processes, two of them
//! killed with SIGKILL mid-run and restarted: 0 tasks lost, 0 duplicate Nessus scans
//! (simulator counters), every task terminal — on SQLite and on Redis.

use std::time::Duration;

use nessus_queue::testkit::{ChildGuard, RedisServer, simulator};
use nessus_queue::{NewTask, Queue, QueueConfig, ScanType};

use crate::support::{assert_all_completed_once, worker};

const TASKS: usize = 50;

async fn run(backend: &str, queue: Queue) {
    let sim = simulator(Duration::from_secs(2))
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
    let mut procs: Vec<ChildGuard> = (0..4)
        .map(|i| worker(backend, sim.base_url(), results.path(), &format!("w{i}")))
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // kill -9 two workers mid-run (scans created and running), then restart them.
    for p in procs.iter_mut().take(2) {
        p.kill();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    procs[0] = worker(backend, sim.base_url(), results.path(), "w0-restarted");
    procs[1] = worker(backend, sim.base_url(), results.path(), "w1-restarted");

    assert_all_completed_once(&queue, &ids, &sim, Duration::from_secs(150)).await;
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
    let redis = RedisServer::start().expect("redis-server");
    let queue = Queue::redis(redis.url(), QueueConfig::default())
        .await
        .unwrap();
    run(redis.url(), queue).await;
}
