//! Approvals: a pool's `approval` rules hold some scans in `pending_approval`
//! (decided in [`Service::submit`], the one place); an admin lists them and approves
//! or rejects each, or housekeeping expires them. Every decision is audited.
//!
//! An approval re-checks the task's targets against the pool's target policy in
//! force now (as a DLQ retry does): a config reload that narrowed the allow-list
//! while the task waited must not let it through. The submitter sees the reason in
//! `approval_reason` and, after the decision, in `review`.

use std::str::FromStr;

use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::limits::{REVIEW_REASON_MAX, check_len};
use crate::queue::TaskPage;
use crate::task::{Task, TaskStatus};

use super::{Operation, Principal, Service};

/// The principal named in the audit trail for an expiry.
pub const HOUSEKEEPING: &str = "housekeeping";

/// An admin's decision on a waiting scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// pending_approval → queued.
    Approve,
    /// pending_approval → cancelled.
    Reject,
}

impl Decision {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }
}

impl FromStr for Decision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "approve" => Ok(Self::Approve),
            "reject" => Ok(Self::Reject),
            other => Err(Error::invalid(
                "decision",
                format!("'{other}' is not one of approve, reject"),
            )),
        }
    }
}

impl Service {
    /// Scans waiting for approval, newest first (admin only), optionally of one pool.
    pub async fn approvals(
        &self,
        principal: &Principal,
        pool: Option<&str>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<TaskPage> {
        principal.authorize(Operation::ReviewScan, "list scans waiting for approval")?;
        self.require_admin(principal, "list scans waiting for approval")?;
        if let Some(p) = pool {
            super::known_pool(&self.config(), p, &[])?;
        }
        self.queue
            .pending_approvals(pool, None, limit, cursor)
            .await
    }

    /// Approves or rejects a scan waiting for approval (admin only); returns the task
    /// as stored. `reason` is required and recorded in the task and the audit trail.
    pub async fn review(
        &self,
        principal: &Principal,
        task_id: &str,
        decision: Decision,
        reason: &str,
    ) -> Result<Task> {
        principal.authorize(Operation::ReviewScan, "approve or reject scans")?;
        self.require_admin(principal, "approve or reject scans")?;
        check_len("reason", reason, REVIEW_REASON_MAX)?;
        if reason.trim().is_empty() {
            return Err(Error::invalid("reason", "must not be empty"));
        }
        let view = self
            .queue
            .get(task_id)
            .await?
            .ok_or_else(|| Error::NotFound {
                task_id: task_id.to_owned(),
            })?;
        if view.task.status != TaskStatus::PendingApproval {
            return Err(Error::InvalidTransition {
                from: view.task.status.to_string(),
                to: format!(
                    "{} (only a pending_approval task can be reviewed)",
                    decision.as_str()
                ),
            });
        }
        let task = match decision {
            Decision::Approve => {
                if let Err(e) = crate::directory::check_targets_in(
                    &self.config(),
                    &view.task.pool,
                    &view.task.targets,
                ) {
                    self.record_refusal(
                        AuditAction::PolicyRefused,
                        principal,
                        &view.task.pool,
                        &view.task.targets,
                        &format!("approval of {task_id}: {e}"),
                    )
                    .await;
                    return Err(e);
                }
                self.queue
                    .approve(task_id, principal.as_str(), reason)
                    .await?
            }
            Decision::Reject => {
                self.queue
                    .reject(task_id, principal.as_str(), reason)
                    .await?
            }
        };
        let action = match decision {
            Decision::Approve => AuditAction::Approve,
            Decision::Reject => AuditAction::Reject,
        };
        tracing::info!(task_id, principal = %principal, decision = decision.as_str(), "scan_reviewed");
        self.record_task(action, principal, &task, Some(reason.to_owned()))
            .await;
        Ok(task)
    }
}
