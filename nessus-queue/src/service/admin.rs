//! Operator actions: the dead-letter queue and housekeeping. The same rules as agent
//! paths apply: a task re-queued from the DLQ must still be inside its pool's target
//! policy (the config in force now), or it stays dead-lettered.

use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::queue::{DlqPurge, HousekeepReport};
use crate::task::Task;

use super::{Operation, Principal, Service};

impl Service {
    /// Re-queues a dead-lettered task after checking its targets against the policy
    /// in force now. Only an admin may; a refused task stays in the DLQ.
    pub async fn dlq_retry(&self, principal: &Principal, task_id: &str) -> Result<Task> {
        principal.authorize(Operation::Admin, "retry dead-lettered tasks")?;
        self.require_admin(principal, "retry dead-lettered tasks")?;
        let task = self
            .queue
            .dlq_get(task_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                task_id: task_id.to_owned(),
            })?;
        // The same check the worker makes at claim, against the config in force now.
        if let Err(e) =
            crate::directory::check_targets_in(&self.config(), &task.pool, &task.targets)
        {
            self.record_refusal(
                AuditAction::PolicyRefused,
                principal,
                &task.pool,
                &task.targets,
                &format!("dlq retry of {task_id}: {e}"),
            )
            .await;
            return Err(e);
        }
        let task = self.queue.dlq_retry(task_id).await?;
        tracing::info!(task_id, principal = %principal, pool = %task.pool, "dlq_retry");
        self.record_task(AuditAction::DlqRetry, principal, &task, None)
            .await;
        Ok(task)
    }

    /// Deletes dead-lettered tasks; returns how many went.
    pub async fn dlq_purge(&self, principal: &Principal, what: DlqPurge) -> Result<u64> {
        principal.authorize(Operation::Admin, "purge the dead-letter queue")?;
        self.require_admin(principal, "purge the dead-letter queue")?;
        let purged = self.queue.dlq_purge(what).await?;
        tracing::info!(principal = %principal, purged = purged.len(), "dlq_purge");
        for t in &purged {
            // A task dead-lettered mid-upload (`results_upload_failed`) may have left
            // objects without a manifest: they go with it.
            if let Some(cache) = &self.remote
                && let Err(e) = cache.remote().delete_task(&t.task_id).await
            {
                tracing::warn!(task_id = %t.task_id, error = %e, "could not delete a task's results objects");
            }
            self.record_task(AuditAction::DlqPurge, principal, t, None)
                .await;
        }
        Ok(purged.len() as u64)
    }

    /// Deletes tasks past their TTL with their results directories. A directory that
    /// cannot be removed is logged and does not stop the sweep.
    pub async fn housekeep(&self, dry_run: bool) -> Result<HousekeepReport> {
        if let (Some(cache), false) = (&self.remote, dry_run) {
            // Objects first (the manifest first of all), while the tasks still exist:
            // a task whose objects could not go is logged and still deleted, its
            // objects then orphaned under the prefix (a lifecycle rule can sweep
            // them), never a task pointing at half its results.
            let candidates = self.queue.housekeep(true, |_| {}).await?;
            for (id, _) in &candidates.tasks {
                if let Err(e) = cache.remote().delete_task(id).await {
                    tracing::warn!(task_id = %id, error = %e, "could not delete a task's results objects");
                }
                cache.forget(id);
            }
        }
        let results = self.results.clone();
        let rep = self
            .queue
            .housekeep(dry_run, |task| {
                if let Err(e) = results.remove_task(&task.task_id) {
                    tracing::warn!(task_id = %task.task_id, error = %e, "could not remove a task's results");
                }
            })
            .await?;
        if !dry_run {
            let by = Principal::new(super::approvals::HOUSEKEEPING);
            for id in &rep.approvals_expired {
                if let Ok(Some(v)) = self.queue.get(id).await {
                    tracing::info!(task_id = %id, "approval_expired");
                    self.record_task(AuditAction::ApprovalExpired, &by, &v.task, None)
                        .await;
                }
            }
        }
        Ok(rep)
    }

    pub(crate) fn require_admin(&self, principal: &Principal, what: &str) -> Result<()> {
        if self.is_admin(principal) {
            Ok(())
        } else {
            Err(Error::Forbidden {
                principal: principal.as_str().to_owned(),
                what: what.to_owned(),
            })
        }
    }
}
