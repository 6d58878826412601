//! A simulator started in-process, and config files pointing at it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nessus_core::sim::{SimHandle, Simulator};

/// A Nessus simulator on a free loopback port, served by its own runtime for as long as
/// this value lives.
pub(crate) struct Sim {
    pub(crate) handle: Option<SimHandle>,
    pub(crate) rt: tokio::runtime::Runtime,
}

impl Sim {
    /// Scans complete after `scan_duration`.
    pub(crate) fn start(scan_duration: Duration) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt
            .block_on(
                Simulator::builder()
                    .scan_duration(scan_duration)
                    .start("127.0.0.1:0"),
            )
            .expect("simulator starts");
        Self {
            handle: Some(handle),
            rt,
        }
    }

    pub(crate) fn url(&self) -> String {
        self.handle.as_ref().unwrap().base_url().to_owned()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.rt.block_on(handle.shutdown());
        }
    }
}

/// Writes `scanners.yaml` into `dir`: one pool `nessus` whose instances are
/// `(instance_id, url)`, data under `dir/data`.
pub(crate) fn write_config(dir: &Path, instances: &[(&str, &str)]) -> PathBuf {
    let mut yaml = format!(
        "server:\n  data_dir: {data:?}\nqueue:\n  completed_ttl_days: 1\n  failed_ttl_days: 2\n\
         nessus:\n  target_policy:\n    allow: [192.0.2.0/24]\n  instances:\n",
        data = dir.join("data")
    );
    for (id, url) in instances {
        yaml.push_str(&format!(
            "    - instance_id: {id}\n      url: {url}\n      access_key: test-access\n      \
             secret_key: test-secret-value\n      max_concurrent_scans: 2\n      timeout_secs: 5\n"
        ));
    }
    let path = dir.join("scanners.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// A loopback URL where nothing listens (a port bound, then released).
pub(crate) fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// One task to queue with [`seed_queue`]: target, name, description.
pub(crate) type Seed<'a> = (&'a str, &'a str, &'a str);

/// Queues `tasks` for `alice` in pool `nessus` of the SQLite queue at `db` (created),
/// then claims one and dead-letters it with `error`. Returns the dead-lettered id and
/// the still-queued ids in submit order.
pub(crate) fn seed_queue(db: &Path, tasks: &[Seed<'_>], error: &str) -> (String, Vec<String>) {
    use nessus_queue::testkit::single_pool;
    use nessus_queue::{Failure, NewTask, Queue, QueueConfig, ScanType};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let queue = Queue::sqlite(db, QueueConfig::default()).unwrap();
        let mut ids = Vec::new();
        for (target, name, description) in tasks {
            let request = NewTask::new(ScanType::Untrusted, "nessus", *target, *name)
                .description(*description);
            ids.push(
                queue
                    .submit("alice", request, None, None)
                    .await
                    .unwrap()
                    .task
                    .task_id,
            );
        }
        let pools = single_pool("nessus", "scanner1", 1);
        let claim = queue
            .claim("worker-1", &pools)
            .await
            .unwrap()
            .expect("a task");
        let failure = Failure::dead_letter("nessus_rejected", error);
        queue
            .fail(&claim.task.task_id, claim.token, failure)
            .await
            .unwrap();
        let dead = claim.task.task_id;
        ids.retain(|id| *id != dead);
        (dead, ids)
    })
}
