//! The audit trail: who did what to which task, stored next to the tasks but apart
//! from them, with its own retention (`QueueConfig::audit_ttl`).
//!
//! An [`AuditEvent`] has only typed, named fields — there is no free-form map — so a
//! caller cannot attach a request body, and with it a credential, by accident. Every
//! text field is capped when it is recorded ([`Queue::audit`](crate::Queue::audit)), so
//! a hostile name or target list cannot make the trail grow without bound.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::task::Task;

/// What was done. The string forms (`as_str`, serde) are stable: they are stored and
/// filtered on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditAction {
    /// A scan was submitted (or an idempotent retry answered).
    Submit,
    /// A task was cancelled or a cancel was requested.
    Cancel,
    /// A `.nessus` file was imported as a completed task.
    Import,
    /// A page of a task's results was read.
    ResultsRead,
    /// Two scans were compared.
    Diff,
    /// A dead-lettered task was requeued.
    DlqRetry,
    /// A dead-lettered task was deleted.
    DlqPurge,
    /// A request was refused by the target policy (or another policy rule).
    PolicyRefused,
    /// A request was refused by a per-principal quota.
    QuotaRefused,
    /// Findings over time were read (`findings_changes`).
    FindingsRead,
    /// A finding was marked (or cleared) false positive or accepted risk.
    Triage,
    /// An admin approved a task waiting for approval.
    Approve,
    /// An admin rejected a task waiting for approval.
    Reject,
    /// A task's approval window elapsed (housekeeping cancelled it).
    ApprovalExpired,
    /// A schedule was created.
    ScheduleCreate,
    /// A schedule was paused.
    SchedulePause,
    /// A schedule was resumed.
    ScheduleResume,
    /// A schedule was deleted.
    ScheduleDelete,
    /// A schedule's slot fired (the run itself is audited as a `submit`).
    ScheduleFire,
}

impl AuditAction {
    /// Every action, in declaration order (for help texts and tests).
    pub const ALL: [Self; 19] = [
        Self::Submit,
        Self::Cancel,
        Self::Import,
        Self::ResultsRead,
        Self::Diff,
        Self::DlqRetry,
        Self::DlqPurge,
        Self::PolicyRefused,
        Self::QuotaRefused,
        Self::FindingsRead,
        Self::Triage,
        Self::Approve,
        Self::Reject,
        Self::ApprovalExpired,
        Self::ScheduleCreate,
        Self::SchedulePause,
        Self::ScheduleResume,
        Self::ScheduleDelete,
        Self::ScheduleFire,
    ];

    /// The stable snake_case form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Cancel => "cancel",
            Self::Import => "import",
            Self::ResultsRead => "results_read",
            Self::Diff => "diff",
            Self::DlqRetry => "dlq_retry",
            Self::DlqPurge => "dlq_purge",
            Self::PolicyRefused => "policy_refused",
            Self::QuotaRefused => "quota_refused",
            Self::FindingsRead => "findings_read",
            Self::Triage => "triage",
            Self::Approve => "approve",
            Self::Reject => "reject",
            Self::ApprovalExpired => "approval_expired",
            Self::ScheduleCreate => "schedule_create",
            Self::SchedulePause => "schedule_pause",
            Self::ScheduleResume => "schedule_resume",
            Self::ScheduleDelete => "schedule_delete",
            Self::ScheduleFire => "schedule_fire",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<&str> = Self::ALL.iter().map(|a| a.as_str()).collect();
                Error::invalid(
                    "action",
                    format!("unknown action {s:?} (one of {})", known.join(", ")),
                )
            })
    }
}

/// Longest stored principal, in bytes.
pub const AUDIT_MAX_PRINCIPAL: usize = 256;
/// Longest stored trace id, task id and pool, in bytes.
pub const AUDIT_MAX_ID: usize = 128;
/// Longest stored target list, in bytes.
pub const AUDIT_MAX_TARGETS: usize = 4096;
/// Longest stored outcome, in bytes.
pub const AUDIT_MAX_OUTCOME: usize = 64;
/// Longest stored detail, in bytes.
pub const AUDIT_MAX_DETAIL: usize = 512;

/// One entry of the audit trail. Build it with [`AuditEvent::builder`] or
/// [`AuditEvent::for_task`]; record it with [`Queue::audit`](crate::Queue::audit).
///
/// None of its fields may hold a secret: `detail` is a short human explanation
/// ("target 10.0.0.1 not allowed in pool nessus"), never a request body, a password,
/// a token or a key. There is deliberately no field for credentials or arbitrary
/// key/value data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEvent {
    /// Unique id, assigned when the event is built; breaks ties between events of the
    /// same millisecond.
    pub id: String,
    /// When it happened.
    pub at: Timestamp,
    /// Who did it (the bearer-token principal, `local` for stdio and the CLI).
    pub principal: String,
    /// The request's trace id (empty when the caller had none).
    pub trace_id: String,
    /// The task concerned, if any (a refused submit has none).
    pub task_id: Option<String>,
    /// What was done.
    pub action: AuditAction,
    /// The scanner pool concerned, if any.
    pub pool: Option<String>,
    /// The canonical target text (`ApprovedTargets::to_nessus_text`), never raw input
    /// when a canonical form exists.
    pub targets: Option<String>,
    /// Short outcome code: `ok`, or an error code such as `target_not_allowed`.
    pub outcome: String,
    /// Short human explanation. Never a secret.
    pub detail: Option<String>,
}

/// Builds an [`AuditEvent`].
#[derive(Debug, Clone)]
pub struct AuditEventBuilder {
    event: AuditEvent,
}

impl AuditEvent {
    /// An event of `action` by `principal`, now, outcome `ok`.
    pub fn builder(action: AuditAction, principal: impl Into<String>) -> AuditEventBuilder {
        AuditEventBuilder {
            event: Self {
                id: new_event_id(),
                at: Timestamp::now(),
                principal: principal.into(),
                trace_id: String::new(),
                task_id: None,
                action,
                pool: None,
                targets: None,
                outcome: "ok".to_owned(),
                detail: None,
            },
        }
    }

    /// An event about `task`: its id, trace id, pool and (canonical) targets are
    /// filled in. What `dlq_retry` and `dlq_purge` return is meant to go here.
    pub fn for_task(
        action: AuditAction,
        principal: impl Into<String>,
        task: &Task,
    ) -> AuditEventBuilder {
        Self::builder(action, principal)
            .trace_id(task.trace_id.clone())
            .task_id(task.task_id.clone())
            .pool(task.pool.clone())
            .targets(task.targets.clone())
    }

    /// The newest-first ordering key, also the cursor of a page that ends here.
    pub(crate) fn order_key(&self) -> String {
        format!("{:013}:{}", self.at.as_millisecond().max(0), self.id)
    }

    /// The event with every text field cut to its cap (at a character boundary, with
    /// a `…` marking the cut), so what is stored is bounded whatever the caller sent.
    pub(crate) fn capped(mut self) -> Self {
        cap(&mut self.principal, AUDIT_MAX_PRINCIPAL);
        cap(&mut self.trace_id, AUDIT_MAX_ID);
        cap(&mut self.outcome, AUDIT_MAX_OUTCOME);
        for (field, max) in [
            (&mut self.task_id, AUDIT_MAX_ID),
            (&mut self.pool, AUDIT_MAX_ID),
            (&mut self.targets, AUDIT_MAX_TARGETS),
            (&mut self.detail, AUDIT_MAX_DETAIL),
        ] {
            if let Some(s) = field {
                cap(s, max);
            }
        }
        self
    }
}

impl AuditEventBuilder {
    /// When it happened (default: when the builder was made).
    pub fn at(mut self, at: Timestamp) -> Self {
        self.event.at = at;
        self
    }

    /// The request's trace id.
    pub fn trace_id(mut self, trace_id: impl Into<String>) -> Self {
        self.event.trace_id = trace_id.into();
        self
    }

    /// The task concerned.
    pub fn task_id(mut self, task_id: impl Into<String>) -> Self {
        self.event.task_id = Some(task_id.into());
        self
    }

    /// The pool concerned.
    pub fn pool(mut self, pool: impl Into<String>) -> Self {
        self.event.pool = Some(pool.into());
        self
    }

    /// The canonical target text.
    pub fn targets(mut self, targets: impl Into<String>) -> Self {
        self.event.targets = Some(targets.into());
        self
    }

    /// Short outcome code (default `ok`).
    pub fn outcome(mut self, outcome: impl Into<String>) -> Self {
        self.event.outcome = outcome.into();
        self
    }

    /// Short human explanation; never a secret.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.event.detail = Some(detail.into());
        self
    }

    /// The event.
    pub fn build(self) -> AuditEvent {
        self.event
    }
}

/// Filter and page for [`Queue::audit_list`](crate::Queue::audit_list), newest first.
/// Every filter is applied before paging, so pages are full (on Redis, a query with
/// filters beyond its most selective one may end a call early after examining 10 000
/// entries: the short page then carries a cursor; only a page without a cursor is the
/// last).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only this task.
    pub task_id: Option<String>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only events at or after this time.
    pub since: Option<Timestamp>,
    /// Only events before this time.
    pub until: Option<Timestamp>,
    /// Page size (1-1000, default 50).
    pub limit: usize,
    /// Continue after this opaque cursor.
    pub cursor: Option<String>,
}

impl AuditQuery {
    /// First page of `limit` events, no filters.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Only this principal.
    pub fn principal(mut self, p: impl Into<String>) -> Self {
        self.principal = Some(p.into());
        self
    }

    /// Only this action.
    pub fn action(mut self, a: AuditAction) -> Self {
        self.action = Some(a);
        self
    }

    /// Only this task.
    pub fn task_id(mut self, t: impl Into<String>) -> Self {
        self.task_id = Some(t.into());
        self
    }

    /// Only this pool.
    pub fn pool(mut self, p: impl Into<String>) -> Self {
        self.pool = Some(p.into());
        self
    }

    /// Only events at or after `t`.
    pub fn since(mut self, t: Timestamp) -> Self {
        self.since = Some(t);
        self
    }

    /// Only events before `t`.
    pub fn until(mut self, t: Timestamp) -> Self {
        self.until = Some(t);
        self
    }

    /// Continue after a cursor.
    pub fn cursor(mut self, c: impl Into<String>) -> Self {
        self.cursor = Some(c.into());
        self
    }

    /// Whether `e` passes every filter (the backends' shared definition; SQLite puts
    /// the same conditions in SQL).
    pub(crate) fn matches(&self, e: &AuditEvent) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == e.principal)
            && self.action.is_none_or(|a| a == e.action)
            && self
                .task_id
                .as_ref()
                .is_none_or(|t| e.task_id.as_ref() == Some(t))
            && self
                .pool
                .as_ref()
                .is_none_or(|p| e.pool.as_ref() == Some(p))
    }

    /// The key range `[low, high)` the time filters and the cursor leave, as order keys.
    pub(crate) fn key_range(&self) -> (Option<String>, Option<String>) {
        let low = self.since.map(time_key);
        let until = self.until.map(time_key);
        let high = match (until, self.cursor.clone()) {
            (Some(u), Some(c)) => Some(if c < u { c } else { u }),
            (u, c) => u.or(c),
        };
        (low, high)
    }

    /// Refuses a cursor that is not one of ours, so a typo is an error rather than a
    /// silently wrong page.
    pub(crate) fn validate(&self) -> Result<()> {
        crate::backend::check_cursor(self.cursor.as_deref(), |id| {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }
}

/// A page of audit events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuditPage {
    /// Events, newest first.
    pub events: Vec<AuditEvent>,
    /// Pass to [`AuditQuery::cursor`] for the next page, if there may be more.
    pub next_cursor: Option<String>,
}

impl AuditPage {
    pub(crate) fn new(events: Vec<AuditEvent>, next_cursor: Option<String>) -> Self {
        Self {
            events,
            next_cursor,
        }
    }
}

/// The smallest order key at `t`: keys of events at `t` sort at or after it.
pub(crate) fn time_key(t: Timestamp) -> String {
    format!("{:013}:", t.as_millisecond().max(0))
}

fn new_event_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

fn cap(s: &mut String, max: usize) {
    const MARK: &str = "…";
    if s.len() <= max {
        return;
    }
    let mut end = max.saturating_sub(MARK.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s.push_str(MARK);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_their_stable_names() {
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>().unwrap(), a);
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                format!("\"{}\"", a.as_str())
            );
        }
        assert!("Submit".parse::<AuditAction>().is_err());
    }

    #[test]
    fn caps_cut_at_character_boundaries() {
        for (input, max, expected) in [
            ("abc", 3, "abc"),
            ("abcd", 3, "…"),
            ("abcdefgh", 6, "abc…"),
            ("ééééé", 7, "éé…"),
            ("", 0, ""),
        ] {
            let mut s = input.to_owned();
            cap(&mut s, max);
            assert_eq!(s, expected, "{input:?} capped at {max}");
            assert!(s.len() <= max.max(MARK_LEN), "{s:?}");
        }
    }

    const MARK_LEN: usize = "…".len();
}
