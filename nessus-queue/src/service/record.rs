//! The audit trail as the service writes it: one event per submit, cancel, import,
//! results read, diff, DLQ action and refusal, with principal, trace id, task, pool
//! and canonical targets, never credentials (an [`AuditEvent`] has no field that could
//! hold them).
//!
//! A failed append is logged at `error` and counted, and does not fail the caller's
//! call: the action already happened (or was refused), and an agent must not retry a
//! submit because the trail's backend hiccupped.

use crate::audit::{AuditAction, AuditEvent};
use crate::task::Task;

use super::{Principal, Service};

impl Service {
    pub(crate) async fn record(&self, event: AuditEvent) {
        if let Err(e) = self.queue.audit(event).await {
            tracing::error!(error = %e, "could not append to the audit trail");
        }
    }

    pub(crate) async fn record_task(
        &self,
        action: AuditAction,
        principal: &Principal,
        task: &Task,
        detail: Option<String>,
    ) {
        let mut b = AuditEvent::for_task(action, principal.as_str(), task);
        if let Some(d) = detail {
            b = b.detail(d);
        }
        self.record(b.build()).await;
    }

    pub(crate) async fn record_refusal(
        &self,
        action: AuditAction,
        principal: &Principal,
        pool: &str,
        targets: &str,
        why: &str,
    ) {
        let event = AuditEvent::builder(action, principal.as_str())
            .pool(pool)
            .targets(targets)
            .outcome("refused")
            .detail(why)
            .build();
        self.record(event).await;
    }
}
