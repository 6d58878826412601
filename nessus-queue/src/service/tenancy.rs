//! Tenancy: a principal sees, lists, cancels and counts only its own tasks; an admin
//! sees everyone's. Another principal's task answers "not found", never "forbidden",
//! so its existence is not revealed either.

use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::queue::{ListTasks, QueueStatus, TaskPage, TaskView};
use crate::task::{CancelOutcome, Task};

use super::{Operation, Principal, Service};

/// What a cancel did, and the task afterwards.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Cancelled {
    /// What happened.
    pub outcome: CancelOutcome,
    /// The task after the cancel.
    pub task: Task,
}

impl Service {
    /// The URL of the instance `task` is pinned to, as its submission answered
    /// (`None` when unpinned, or when the instance left the config since).
    pub fn pinned_url(&self, task: &Task) -> Option<String> {
        let id = task.pinned_instance.as_deref()?;
        self.config()
            .pool(&task.pool)?
            .instance(id)
            .map(|i| i.display_url())
    }

    /// Whether `principal` has the admin role under the config in force.
    pub fn is_admin(&self, principal: &Principal) -> bool {
        principal.settings(&self.config()).is_admin()
    }

    /// Whether `principal` may see `task`.
    pub fn can_see(&self, principal: &Principal, task: &Task) -> bool {
        task.principal == principal.as_str() || self.is_admin(principal)
    }

    /// A task `principal` may see, with its queue position, or `NotFound`.
    pub async fn task(&self, principal: &Principal, task_id: &str) -> Result<TaskView> {
        principal.authorize(Operation::Read, "read tasks")?;
        self.visible_task(principal, task_id).await
    }

    /// A task `principal` may see (tenancy only; the caller checked the scopes).
    async fn visible_task(&self, principal: &Principal, task_id: &str) -> Result<TaskView> {
        let not_found = || Error::NotFound {
            task_id: task_id.to_owned(),
        };
        let view = self.queue.get(task_id).await?.ok_or_else(not_found)?;
        if self.can_see(principal, &view.task) {
            Ok(view)
        } else {
            Err(not_found())
        }
    }

    /// A page of the tasks `principal` may see, newest first. The principal filter
    /// is applied in the backend's index, so pages are full and cursors never carry
    /// another principal's task.
    /// A pool filter must name a configured pool (or the import pool, where imported
    /// scans live): an unknown name is `UnknownPool`, not an empty page.
    pub async fn list(&self, principal: &Principal, q: ListTasks) -> Result<TaskPage> {
        principal.authorize(Operation::Read, "list tasks")?;
        if let Some(p) = q.pool.as_deref() {
            super::known_pool(&self.config(), p, &[crate::IMPORT_POOL])?;
        }
        let q = if self.is_admin(principal) {
            q
        } else {
            q.principal(principal.as_str())
        };
        self.queue.list(q).await
    }

    /// Cancels a task `principal` may see.
    pub async fn cancel(&self, principal: &Principal, task_id: &str) -> Result<Cancelled> {
        principal.authorize(Operation::Cancel, "cancel scans")?;
        self.visible_task(principal, task_id).await?;
        let outcome = self.queue.cancel(task_id).await?;
        let task = self.visible_task(principal, task_id).await?.task;
        tracing::info!(task_id, principal = %principal, ?outcome, "cancel_scan");
        self.record_task(
            AuditAction::Cancel,
            principal,
            &task,
            Some(format!("{outcome:?}")),
        )
        .await;
        Ok(Cancelled { outcome, task })
    }

    /// The pool's queue: counts of everyone's work, and the next tasks only if they
    /// are the principal's own (an admin sees every next task).
    pub async fn queue_status(
        &self,
        principal: &Principal,
        pool: Option<&str>,
    ) -> Result<QueueStatus> {
        principal.authorize(Operation::Read, "read the queue status")?;
        let config = self.config();
        let name = pool
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| config.server().default_pool());
        super::known_pool(&config, name, &[])?;
        let admin = self.is_admin(principal);
        // INTERIM until the backends count per principal.
        let mut status = self.queue.queue_status(name).await?;
        if !admin {
            status
                .next_tasks
                .retain(|t| t.principal == principal.as_str());
        }
        Ok(status)
    }
}
