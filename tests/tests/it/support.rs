//! What the process-level fault tests share: a worker process, and the end-of-test
//! proof that every task completed with exactly one Nessus scan each.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nessus_core::sim::SimHandle;
use nessus_queue::Queue;
use nessus_queue::testkit::{self, ChildGuard};

/// A `queue-worker` process serving pool `nessus` on the simulator at `sim`, with
/// 2 s leases so a killed worker's tasks come back quickly.
pub(crate) fn worker(backend: &str, sim: &str, results: &Path, id: &str) -> ChildGuard {
    ChildGuard::new(
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

/// Waits (at most `limit`) until every task in `ids` is terminal, then asserts that
/// none was lost, all completed, and the simulator created one scan per task.
pub(crate) async fn assert_all_completed_once(
    queue: &Queue,
    ids: &[String],
    sim: &SimHandle,
    limit: Duration,
) {
    let start = Instant::now();
    loop {
        let terminal = testkit::terminal_count(queue, ids).await.unwrap();
        if terminal == ids.len() {
            break;
        }
        assert!(
            start.elapsed() < limit,
            "{terminal}/{} terminal after {limit:?}",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let failed = testkit::not_completed(queue, ids).await.unwrap();
    assert!(failed.is_empty(), "not completed: {failed:?}");
    let c = sim.counters();
    assert_eq!(
        c.scans_created,
        ids.len() as u64,
        "one Nessus scan per task"
    );
    assert!(
        c.by_name.values().all(|n| n.created == 1),
        "a scan name was created twice"
    );
}
