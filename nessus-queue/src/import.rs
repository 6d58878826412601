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
//! [`IMPORT_POOL`], and the task is never seen as `running`. The backend
//! conformance suite (`tests/it/conformance.rs`) runs this lifecycle on SQLite
//! and Redis.

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
        self.begin_import_with(principal, req).await
    }

    /// As [`Queue::begin_import`], for callers that record more about the
    /// imported scan (its scan type, a description). `request.pool` must be
    /// [`IMPORT_POOL`], and it may neither pin an instance nor name a
    /// credential profile: nothing will run.
    pub async fn begin_import_with(&self, principal: &str, request: NewTask) -> Result<Task> {
        if request.pool != IMPORT_POOL {
            return Err(Error::invalid(
                "pool",
                format!(
                    "an import is recorded in pool {IMPORT_POOL}, not {}",
                    request.pool
                ),
            ));
        }
        // Named by the field that was set, so the caller knows what to drop.
        for (field, set) in [
            ("scanner_instance", request.scanner_instance.is_some()),
            ("credential_profile", request.credential_profile.is_some()),
        ] {
            if set {
                return Err(Error::invalid(
                    field,
                    "an import runs no scan: no instance pin or credential profile",
                ));
            }
        }
        Ok(self.submit(principal, request, None, None).await?.task)
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
                self.raise_events(&next).await?;
                return Ok(next);
            }
            tokio::task::yield_now().await;
        }
        Err(Error::Contention {
            task_id: task_id.to_owned(),
        })
    }
}
