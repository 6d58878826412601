//! Imported scans: tasks that were never run by a worker but hold results that
//! already exist (an existing `.nessus` file), so agents can page and diff them
//! like any completed scan.
//!
//! An import is two steps around the caller's own ingest:
//! [`Queue::begin_import`] stores a queued task in [`IMPORT_POOL`] (the normal
//! submit path, so ids, principals and listings behave as for any task), the
//! caller writes the findings store under the task id, then
//! [`Queue::finish_import`] moves it to `completed` in one compare-and-set (or
//! [`Queue::abort_import`] to `failed`). No worker ever claims it: scanner pool
//! names in the config must start with `nessus`, so no worker serves
//! [`IMPORT_POOL`], and the task is never seen as `running`.

use jiff::Timestamp;

use crate::error::{Error, Result};
use crate::queue::Queue;
use crate::task::{Completion, Failure, NewTask, ScanType, Task, TaskStatus};

/// The pool imported tasks live in. Configured scanner pools must start with
/// `nessus`, so no worker is ever asked to claim from it.
pub const IMPORT_POOL: &str = "imported";

/// Worker id and instance recorded on an imported task's (instantaneous) claim.
const IMPORTER: &str = "import";

/// How often a lost compare-and-set is retried before giving up.
const RETRIES: usize = 16;

impl Queue {
    /// Records a new import as a queued task in [`IMPORT_POOL`] owned by
    /// `principal`. `targets` should list the hosts the results cover (it feeds
    /// `list_tasks` target filters); `name` labels it. The task stays queued
    /// (never claimable by workers) until [`Queue::finish_import`] or
    /// [`Queue::abort_import`].
    pub async fn begin_import(
        &self,
        principal: &str,
        targets: &str,
        name: &str,
        schema_profile: &str,
    ) -> Result<Task> {
        let req = NewTask::new(ScanType::Untrusted, IMPORT_POOL, targets, name)
            .description("imported .nessus results")
            .schema_profile(schema_profile);
        Ok(self.submit(principal, req, None, None).await?.task)
    }

    /// queued → completed for an import whose results are in place: the
    /// claim and completion are applied to the task in memory and stored in a
    /// single compare-and-set, so no reader ever sees it running.
    pub async fn finish_import(&self, task_id: &str, completion: Completion) -> Result<Task> {
        self.import_transition(task_id, |t, now| {
            let token = t.claim(IMPORTER, IMPORTER, jiff::SignedDuration::ZERO, now)?;
            t.complete(token, completion.clone(), now)
        })
        .await
    }

    /// queued → failed for an import whose results could not be ingested.
    pub async fn abort_import(&self, task_id: &str, code: &str, message: &str) -> Result<Task> {
        self.import_transition(task_id, |t, now| {
            t.fail_queued(Failure::plain(code, message), now)
        })
        .await
    }

    async fn import_transition(
        &self,
        task_id: &str,
        mut apply: impl FnMut(&mut Task, Timestamp) -> Result<()>,
    ) -> Result<Task> {
        for _ in 0..RETRIES {
            let prev = self
                .backend()
                .load(task_id.to_owned())
                .await?
                .ok_or_else(|| Error::NotFound {
                    task_id: task_id.to_owned(),
                })?;
            if prev.pool != IMPORT_POOL {
                return Err(Error::invalid(
                    "task_id",
                    format!("task {task_id} is not an import (pool {})", prev.pool),
                ));
            }
            if prev.status != TaskStatus::Queued {
                return Err(Error::InvalidTransition {
                    from: prev.status.to_string(),
                    to: "completed".to_owned(),
                });
            }
            let mut next = prev.clone();
            apply(&mut next, Timestamp::now())?;
            next.version = prev.version + 1;
            if self.backend().store(prev, next.clone()).await? {
                return Ok(next);
            }
            tokio::task::yield_now().await;
        }
        Err(Error::Contention {
            task_id: task_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstanceCapacity, ListTasks, QueueConfig};

    fn queue(dir: &tempfile::TempDir) -> Queue {
        Queue::sqlite(dir.path().join("q.db"), QueueConfig::default()).expect("open sqlite")
    }

    fn summary() -> Completion {
        Completion {
            results_summary: Some(serde_json::json!({"hosts_scanned": 2})),
            ..Completion::default()
        }
    }

    #[tokio::test]
    async fn import_completes_without_a_worker_and_is_listed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = queue(&dir);
        let t = q
            .begin_import("alice", "10.0.0.1, 10.0.0.2", "old scan", "brief")
            .await
            .expect("begin");
        assert_eq!(
            (t.status, t.pool.as_str()),
            (TaskStatus::Queued, IMPORT_POOL)
        );
        // A worker serving every configured pool (and even this one by
        // mistake) with a real instance name cannot take it: workers only
        // claim pools they are configured with.
        let pools = vec![(
            "nessus".to_owned(),
            vec![InstanceCapacity {
                instance: "s1".to_owned(),
                max_concurrent: 4,
            }],
        )];
        assert!(q.claim("w1", &pools).await.expect("claim").is_none());

        let done = q
            .finish_import(&t.task_id, summary())
            .await
            .expect("finish");
        assert_eq!(done.status, TaskStatus::Completed);
        assert_eq!(done.progress, Some(100));
        assert!(done.lease.is_none());
        let view = q.get(&t.task_id).await.expect("get").expect("exists");
        assert_eq!(view.task, done);
        assert_eq!(view.queue_position, None);
        let st = q.queue_status(IMPORT_POOL).await.expect("status");
        assert_eq!((st.queue_depth, st.running), (0, 0));
        let listed = q
            .list(ListTasks::new(10).target("10.0.0.2"))
            .await
            .expect("list");
        assert_eq!(listed.tasks.len(), 1);

        // Finishing twice is a state error, not a silent rewrite.
        let again = q.finish_import(&t.task_id, summary()).await;
        assert!(
            matches!(again, Err(Error::InvalidTransition { .. })),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn abort_and_foreign_tasks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let q = queue(&dir);
        let t = q
            .begin_import("alice", "10.0.0.1", "broken", "brief")
            .await
            .expect("begin");
        let failed = q
            .abort_import(&t.task_id, "import_failed", "not a .nessus file")
            .await
            .expect("abort");
        assert_eq!(failed.status, TaskStatus::Failed);
        assert_eq!(failed.error_code.as_deref(), Some("import_failed"));

        let req = NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.9", "real");
        let real = q
            .submit("alice", req, None, None)
            .await
            .expect("submit")
            .task;
        let r = q.finish_import(&real.task_id, summary()).await;
        assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
        let missing = q
            .finish_import("impo_un_20250101_000000_00000000", summary())
            .await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );
    }
}
