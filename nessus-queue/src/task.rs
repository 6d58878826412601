//! The task record and its pure state machine. No I/O happens here: backends load a
//! task, call one of the transition methods, and store the result with a
//! compare-and-set on [`Task::version`], so every write goes through these rules.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Lifecycle state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TaskStatus {
    /// Waiting in its pool's queue.
    Queued,
    /// Claimed by a worker under a lease.
    Running,
    /// Finished and ingested.
    Completed,
    /// Failed; see `error_code`.
    Failed,
    /// The scan exceeded its time limit and was stopped.
    Timeout,
    /// Cancelled by a caller.
    Cancelled,
    /// Waiting for an admin to approve it (the pool's `approval` rules asked for
    /// it); never claimed. Leaves by approve (→ queued), reject, expiry or the
    /// owner's cancel (→ cancelled).
    PendingApproval,
}

impl TaskStatus {
    /// All states, in lifecycle order.
    pub const ALL: [Self; 7] = [
        Self::PendingApproval,
        Self::Queued,
        Self::Running,
        Self::Completed,
        Self::Failed,
        Self::Timeout,
        Self::Cancelled,
    ];

    /// The wire name (`queued`, `running`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::PendingApproval => "pending_approval",
        }
    }

    /// Whether no further transition is possible (except an operator's DLQ retry).
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running | Self::PendingApproval)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "status",
                    format!(
                        "'{s}' is not one of pending_approval, queued, running, completed, failed, timeout, cancelled"
                    ),
                )
            })
    }
}

/// Kind of scan, as the predecessor named them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ScanType {
    /// Network scan without credentials.
    Untrusted,
    /// Credentialed (SSH) scan.
    Authenticated,
    /// Credentialed scan with privilege escalation.
    AuthenticatedPrivileged,
}

impl ScanType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Untrusted => "untrusted",
            Self::Authenticated => "authenticated",
            Self::AuthenticatedPrivileged => "authenticated_privileged",
        }
    }
}

impl fmt::Display for ScanType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ScanType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "untrusted" => Ok(Self::Untrusted),
            "authenticated" => Ok(Self::Authenticated),
            "authenticated_privileged" => Ok(Self::AuthenticatedPrivileged),
            other => Err(Error::invalid(
                "scan_type",
                format!(
                    "'{other}' is not one of untrusted, authenticated, authenticated_privileged"
                ),
            )),
        }
    }
}

/// A worker's claim on a running task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// Identifier of the worker process/task holding the lease.
    pub worker_id: String,
    /// Fencing token: strictly increases with every claim of this task.
    pub token: u64,
    /// When the lease lapses unless renewed by a heartbeat.
    pub expires_at: Timestamp,
}

/// Summary of ingested results shown by `get_scan_status` (predecessor's `results_summary`).
pub type ResultsSummary = serde_json::Value;

/// One queued scan and everything known about it. Never contains secret material:
/// ad-hoc credentials live sealed in a separate record (see [`crate::SecretBox`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Task {
    /// Readable unique id, see [`new_task_id`].
    pub task_id: String,
    /// Correlation id returned to the caller and logged with every event.
    pub trace_id: String,
    /// Current state.
    pub status: TaskStatus,
    /// Kind of scan.
    pub scan_type: ScanType,
    /// Scanner pool the task waits in.
    pub pool: String,
    /// Scanner instance the caller explicitly asked for, if any.
    pub pinned_instance: Option<String>,
    /// Instance chosen at claim time (equals the pin when there is one).
    pub instance: Option<String>,
    /// Target list exactly as submitted.
    pub targets: String,
    /// Scan name given by the caller.
    pub name: String,
    /// Scan description.
    pub description: String,
    /// Results profile requested.
    pub schema_profile: String,
    /// Named credential profile (resolved only inside the worker).
    pub credential_profile: Option<String>,
    /// Whether sealed ad-hoc credentials were supplied at submit time.
    pub has_adhoc_credentials: bool,
    /// Who submitted it (scopes idempotency keys).
    pub principal: String,
    /// Nessus scan id once the scan was created.
    pub nessus_scan_id: Option<i64>,
    /// Scan progress 0-100 while running.
    pub progress: Option<u8>,
    /// Number of claims so far (a claim that ended in a crash counts).
    pub attempts: u32,
    /// Machine-readable failure reason.
    pub error_code: Option<String>,
    /// Human-readable failure reason.
    pub error_message: Option<String>,
    /// Submission time.
    pub created_at: Timestamp,
    /// First time a worker started it.
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal state.
    pub completed_at: Option<Timestamp>,
    /// Last write.
    pub updated_at: Timestamp,
    /// Current lease while running.
    pub lease: Option<Lease>,
    /// Highest fencing token ever issued for this task.
    pub fence: u64,
    /// A caller asked to cancel while it was running; the worker stops the scan.
    pub cancel_requested: bool,
    /// Set when the task was moved to the dead-letter queue.
    pub dead_lettered_at: Option<Timestamp>,
    /// Credential check outcome after ingest.
    pub authentication_status: Option<String>,
    /// Results summary after ingest.
    pub results_summary: Option<ResultsSummary>,
    /// Non-fatal warnings from ingest.
    pub validation_warnings: Vec<String>,
    /// Optimistic-concurrency version, bumped by every stored write.
    pub version: u64,
    /// Why the task needed an admin's approval (set when it was created
    /// `pending_approval`; kept after the decision). Shown to the submitter.
    #[serde(default)]
    pub approval_reason: Option<String>,
    /// When a pending approval lapses (housekeeping cancels it then).
    #[serde(default)]
    pub approval_expires_at: Option<Timestamp>,
    /// The admin's decision, once made.
    #[serde(default)]
    pub review: Option<Review>,
}

/// An admin's decision on a task that waited for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Review {
    /// `approved`, `rejected` or `expired`.
    pub decision: ReviewDecision,
    /// Who decided (`housekeeping` for an expiry).
    pub by: String,
    /// The reason given.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// What became of a task that waited for approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReviewDecision {
    /// Approved: queued.
    Approved,
    /// Rejected: cancelled.
    Rejected,
    /// Nobody decided in time: cancelled.
    Expired,
}

impl ReviewDecision {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

/// Why a task must wait for approval and until when (see
/// [`crate::Queue::submit_held`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalHold {
    /// Shown to the submitter.
    pub reason: String,
    /// How long the request may wait.
    pub expires_after: SignedDuration,
}

/// What a caller submits; the queue fills in ids and timestamps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NewTask {
    /// Kind of scan.
    pub scan_type: ScanType,
    /// Pool (after defaulting).
    pub pool: String,
    /// Explicit instance pin.
    pub scanner_instance: Option<String>,
    /// Targets as submitted.
    pub targets: String,
    /// Scan name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Results profile.
    pub schema_profile: String,
    /// Named credential profile.
    pub credential_profile: Option<String>,
}

impl NewTask {
    /// A request for `scan_type` in `pool` with the predecessor's defaults
    /// (empty description, `brief` profile, no pin).
    pub fn new(
        scan_type: ScanType,
        pool: impl Into<String>,
        targets: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            scan_type,
            pool: pool.into(),
            scanner_instance: None,
            targets: targets.into(),
            name: name.into(),
            description: String::new(),
            schema_profile: "brief".to_owned(),
            credential_profile: None,
        }
    }

    /// Sets the description.
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Sets the results profile.
    pub fn schema_profile(mut self, p: impl Into<String>) -> Self {
        self.schema_profile = p.into();
        self
    }

    /// Pins the scan to one scanner instance.
    pub fn scanner_instance(mut self, i: impl Into<String>) -> Self {
        self.scanner_instance = Some(i.into());
        self
    }

    /// Uses a named credential profile from the scanner config.
    pub fn credential_profile(mut self, p: impl Into<String>) -> Self {
        self.credential_profile = Some(p.into());
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        crate::limits::check_task_text(&self.name, &self.description, &self.targets)?;
        check_name("scanner_pool", &self.pool)?;
        if let Some(i) = &self.scanner_instance {
            check_name("scanner_instance", i)?;
        }
        if self.targets.trim().is_empty() {
            return Err(Error::invalid("targets", "must not be empty"));
        }
        if self.name.trim().is_empty() {
            return Err(Error::invalid("name", "must not be empty"));
        }
        Ok(())
    }
}

/// Pool and instance names become key parts and path parts: keep them boring.
fn check_name(field: &'static str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("'{v}' must be 1-64 characters of A-Z, a-z, 0-9, '_', '-', '.'"),
        ))
    }
}

/// Task ids are `{pool4}_{type2}_{YYYYMMDD}_{HHMMSS}_{random32hex}` in lowercase, e.g.
/// `ness_un_20251127_132509_3f9c0a7e5b2d4c18a6e1f07b9d3c2e45`: five underscore-separated
/// parts like the predecessor, readable, sortable within a pool, and safe as a path
/// component. The last part is 128 bits from the thread-local CSPRNG (rand's `ThreadRng`):
/// a task id is also the MCP Task handle, which must not be guessable (MCP Tasks asks for
/// at least 122 random bits, as many as a UUIDv4), and the predecessor's 32 bits were not.
/// The instance is no longer part of it because it is chosen at claim time.
pub fn new_task_id(pool: &str, scan_type: ScanType, now: Timestamp) -> String {
    let pool4: String = pool
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(4)
        .collect::<String>()
        .to_ascii_lowercase();
    let ty = match scan_type {
        ScanType::Untrusted => "un",
        ScanType::Authenticated => "au",
        ScanType::AuthenticatedPrivileged => "ap",
    };
    let dt = now.to_zoned(jiff::tz::TimeZone::UTC);
    let rnd: u128 = rand::random();
    format!("{pool4}_{ty}_{}_{rnd:032x}", dt.strftime("%Y%m%d_%H%M%S"))
}

/// Whether `id` is a syntactically valid task id (safe for paths and keys).
pub fn is_valid_task_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What a worker reports when a scan finished and was ingested.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Completion {
    /// Credential-check outcome.
    pub authentication_status: Option<String>,
    /// Results summary.
    pub results_summary: Option<ResultsSummary>,
    /// Non-fatal warnings.
    pub validation_warnings: Vec<String>,
}

/// How a failure should be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Failure {
    /// Machine-readable code, e.g. `nessus_rejected`, `lease_expired_max_attempts`.
    pub code: String,
    /// Human-readable message (must not contain secrets).
    pub message: String,
    /// Whether the task goes to the dead-letter queue.
    pub dead_letter: bool,
}

impl Failure {
    /// A failure that is dead-lettered (permanent errors, poison tasks).
    pub fn dead_letter(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            dead_letter: true,
        }
    }

    /// A failure that is recorded but not dead-lettered (e.g. scanner reported failure).
    pub fn plain(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            dead_letter: false,
        }
    }
}

/// Result of a cancel request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CancelOutcome {
    /// The task was queued and is now cancelled.
    Cancelled,
    /// The task is running; its worker will stop the scan and mark it cancelled.
    CancelRequested,
    /// The task had already finished; nothing changed.
    AlreadyFinished,
}

impl Task {
    /// Builds a freshly queued task.
    pub(crate) fn queued(
        req: NewTask,
        principal: &str,
        has_adhoc_credentials: bool,
        now: Timestamp,
    ) -> Self {
        Self {
            task_id: new_task_id(&req.pool, req.scan_type, now),
            trace_id: uuid::Uuid::new_v4().to_string(),
            status: TaskStatus::Queued,
            scan_type: req.scan_type,
            pool: req.pool,
            pinned_instance: req.scanner_instance.clone(),
            instance: req.scanner_instance,
            targets: req.targets,
            name: req.name,
            description: req.description,
            schema_profile: req.schema_profile,
            credential_profile: req.credential_profile,
            has_adhoc_credentials,
            principal: principal.to_owned(),
            nessus_scan_id: None,
            progress: None,
            attempts: 0,
            error_code: None,
            error_message: None,
            created_at: now,
            started_at: None,
            completed_at: None,
            updated_at: now,
            lease: None,
            fence: 0,
            cancel_requested: false,
            dead_lettered_at: None,
            authentication_status: None,
            results_summary: None,
            validation_warnings: Vec::new(),
            version: 0,
            approval_reason: None,
            approval_expires_at: None,
            review: None,
        }
    }

    /// Builds a task that waits for an admin's approval instead of queueing.
    pub(crate) fn held(
        req: NewTask,
        principal: &str,
        has_adhoc_credentials: bool,
        hold: &ApprovalHold,
        now: Timestamp,
    ) -> Self {
        let mut t = Self::queued(req, principal, has_adhoc_credentials, now);
        t.status = TaskStatus::PendingApproval;
        t.approval_reason = Some(hold.reason.clone());
        t.approval_expires_at = Some(now + hold.expires_after);
        t
    }

    /// Nessus scan name used for this task; also how a re-attaching worker finds it.
    pub fn nessus_scan_name(&self) -> String {
        format!("mcp-{}", self.task_id)
    }

    /// Whether the task was imported from a `.nessus` file (`import_scan`,
    /// `nessus-cli import`) rather than scanned: frontends show this instead of
    /// comparing pool names.
    pub fn is_imported(&self) -> bool {
        self.pool == crate::import::IMPORT_POOL
    }

    /// Whether the task is in the dead-letter queue.
    pub fn is_dead_lettered(&self) -> bool {
        self.dead_lettered_at.is_some()
    }

    fn bad(&self, to: &str) -> Error {
        Error::InvalidTransition {
            from: self.status.to_string(),
            to: to.to_owned(),
        }
    }

    fn check_lease(&self, token: u64) -> Result<()> {
        match &self.lease {
            Some(l) if l.token == token && self.status == TaskStatus::Running => Ok(()),
            _ => Err(Error::LeaseLost {
                task_id: self.task_id.clone(),
                token,
            }),
        }
    }

    fn finish(&mut self, status: TaskStatus, now: Timestamp) {
        self.status = status;
        self.completed_at = Some(now);
        self.updated_at = now;
        self.lease = None;
    }

    /// queued → running: a worker claims the task on `instance` with a fresh lease.
    /// Returns the new fencing token.
    pub fn claim(
        &mut self,
        worker_id: &str,
        instance: &str,
        lease_ttl: SignedDuration,
        now: Timestamp,
    ) -> Result<u64> {
        if self.status != TaskStatus::Queued {
            return Err(self.bad("running"));
        }
        if let Some(pin) = &self.pinned_instance
            && pin != instance
        {
            return Err(Error::invalid(
                "scanner_instance",
                format!("task is pinned to '{pin}', not '{instance}'"),
            ));
        }
        self.fence += 1;
        self.attempts += 1;
        self.status = TaskStatus::Running;
        self.instance = Some(instance.to_owned());
        self.started_at.get_or_insert(now);
        self.updated_at = now;
        self.lease = Some(Lease {
            worker_id: worker_id.to_owned(),
            token: self.fence,
            expires_at: now + lease_ttl,
        });
        Ok(self.fence)
    }

    /// Renews the lease of the holder of `token`.
    pub fn heartbeat(
        &mut self,
        token: u64,
        lease_ttl: SignedDuration,
        now: Timestamp,
    ) -> Result<()> {
        self.check_lease(token)?;
        if let Some(l) = &mut self.lease {
            l.expires_at = now + lease_ttl;
        }
        self.updated_at = now;
        Ok(())
    }

    /// Records the Nessus scan id (before launch, so a re-attach can find it).
    pub fn record_scan(&mut self, token: u64, scan_id: i64, now: Timestamp) -> Result<()> {
        self.check_lease(token)?;
        self.nessus_scan_id = Some(scan_id);
        self.updated_at = now;
        Ok(())
    }

    /// Records scan progress (clamped to 0-100).
    pub fn set_progress(&mut self, token: u64, pct: u8, now: Timestamp) -> Result<()> {
        self.check_lease(token)?;
        self.progress = Some(pct.min(100));
        self.updated_at = now;
        Ok(())
    }

    /// running → completed.
    pub fn complete(&mut self, token: u64, c: Completion, now: Timestamp) -> Result<()> {
        self.check_lease(token)
            .map_err(|e| self.lost_or_bad(e, "completed"))?;
        self.authentication_status = c.authentication_status;
        self.results_summary = c.results_summary;
        self.validation_warnings = c.validation_warnings;
        self.progress = Some(100);
        self.finish(TaskStatus::Completed, now);
        Ok(())
    }

    /// running → failed (optionally dead-lettered).
    pub fn fail(&mut self, token: u64, f: Failure, now: Timestamp) -> Result<()> {
        self.check_lease(token)
            .map_err(|e| self.lost_or_bad(e, "failed"))?;
        self.apply_failure(f, now);
        Ok(())
    }

    /// queued → failed without a worker (e.g. the request became invalid).
    pub fn fail_queued(&mut self, f: Failure, now: Timestamp) -> Result<()> {
        if self.status != TaskStatus::Queued {
            return Err(self.bad("failed"));
        }
        self.apply_failure(f, now);
        Ok(())
    }

    fn apply_failure(&mut self, f: Failure, now: Timestamp) {
        self.error_code = Some(f.code);
        self.error_message = Some(f.message);
        if f.dead_letter {
            self.dead_lettered_at = Some(now);
        }
        self.finish(TaskStatus::Failed, now);
    }

    /// running → timeout (the worker stopped the scan).
    pub fn time_out(
        &mut self,
        token: u64,
        message: impl Into<String>,
        now: Timestamp,
    ) -> Result<()> {
        self.check_lease(token)
            .map_err(|e| self.lost_or_bad(e, "timeout"))?;
        self.error_code = Some("scan_timeout".to_owned());
        self.error_message = Some(message.into());
        self.finish(TaskStatus::Timeout, now);
        Ok(())
    }

    /// pending_approval → queued: an admin approved it. It joins its pool's queue
    /// at the tail (its queue order starts now).
    pub fn approve(&mut self, by: &str, reason: &str, now: Timestamp) -> Result<()> {
        if self.status != TaskStatus::PendingApproval {
            return Err(self.bad("queued (approve)"));
        }
        self.status = TaskStatus::Queued;
        self.review = Some(Review {
            decision: ReviewDecision::Approved,
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: now,
        });
        self.updated_at = now;
        Ok(())
    }

    /// pending_approval → cancelled: an admin rejected it.
    pub fn reject(&mut self, by: &str, reason: &str, now: Timestamp) -> Result<()> {
        if self.status != TaskStatus::PendingApproval {
            return Err(self.bad("cancelled (reject)"));
        }
        self.error_code = Some("approval_rejected".to_owned());
        self.error_message = Some(format!("Rejected by {by}: {reason}"));
        self.review = Some(Review {
            decision: ReviewDecision::Rejected,
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: now,
        });
        self.finish(TaskStatus::Cancelled, now);
        Ok(())
    }

    /// pending_approval → cancelled when its approval window has passed. Returns
    /// `false` (nothing changed) when it is not pending or not yet expired.
    pub fn expire_approval(&mut self, now: Timestamp) -> bool {
        let expired = self.status == TaskStatus::PendingApproval
            && self.approval_expires_at.is_none_or(|e| e <= now);
        if !expired {
            return false;
        }
        self.error_code = Some("approval_expired".to_owned());
        self.error_message =
            Some("Nobody approved or rejected the scan before its approval expired".to_owned());
        self.review = Some(Review {
            decision: ReviewDecision::Expired,
            by: "housekeeping".to_owned(),
            reason: "approval window elapsed".to_owned(),
            at: now,
        });
        self.finish(TaskStatus::Cancelled, now);
        true
    }

    /// A caller's cancel: queued or pending approval → cancelled at once; running →
    /// flag for the worker.
    pub fn cancel(&mut self, now: Timestamp) -> CancelOutcome {
        match self.status {
            TaskStatus::PendingApproval => {
                self.error_code = Some("cancelled".to_owned());
                self.error_message = Some("Cancelled by request while pending approval".to_owned());
                self.finish(TaskStatus::Cancelled, now);
                CancelOutcome::Cancelled
            }
            TaskStatus::Queued => {
                self.error_code = Some("cancelled".to_owned());
                self.error_message = Some("Cancelled by request while queued".to_owned());
                self.finish(TaskStatus::Cancelled, now);
                CancelOutcome::Cancelled
            }
            TaskStatus::Running => {
                self.cancel_requested = true;
                self.updated_at = now;
                CancelOutcome::CancelRequested
            }
            _ => CancelOutcome::AlreadyFinished,
        }
    }

    /// running → cancelled, by the worker after it stopped the Nessus scan.
    pub fn confirm_cancel(&mut self, token: u64, now: Timestamp) -> Result<()> {
        self.check_lease(token)
            .map_err(|e| self.lost_or_bad(e, "cancelled"))?;
        self.error_code = Some("cancelled".to_owned());
        self.error_message = Some("Cancelled by request; the Nessus scan was stopped".to_owned());
        self.finish(TaskStatus::Cancelled, now);
        Ok(())
    }

    /// running → queued: the holder gives the task back (graceful shutdown). The
    /// attempt does not count against the poison-task limit.
    pub fn release(&mut self, token: u64, now: Timestamp) -> Result<()> {
        self.check_lease(token)
            .map_err(|e| self.lost_or_bad(e, "queued"))?;
        self.attempts = self.attempts.saturating_sub(1);
        self.status = TaskStatus::Queued;
        self.lease = None;
        self.updated_at = now;
        Ok(())
    }

    /// The reaper's transition for a running task whose lease lapsed: back to the
    /// queue, or after `max_attempts` interrupted attempts into the DLQ with the
    /// reason. A cancel requested meanwhile wins. Returns `false` when the lease is
    /// still valid (nothing changed).
    pub fn expire_lease(&mut self, max_attempts: u32, now: Timestamp) -> bool {
        let expired = self.status == TaskStatus::Running
            && self.lease.as_ref().is_none_or(|l| l.expires_at <= now);
        if !expired {
            return false;
        }
        if self.cancel_requested {
            self.error_code = Some("cancelled".to_owned());
            self.error_message = Some(
                "Cancelled by request; its worker vanished before stopping the scan".to_owned(),
            );
            self.finish(TaskStatus::Cancelled, now);
        } else if self.attempts >= max_attempts {
            self.apply_failure(
                Failure::dead_letter(
                    "lease_expired_max_attempts",
                    format!(
                        "worker lease expired on each of {} attempts; the task may be crashing its worker",
                        self.attempts
                    ),
                ),
                now,
            );
        } else {
            self.status = TaskStatus::Queued;
            self.lease = None;
            self.updated_at = now;
        }
        true
    }

    /// Operator retry of a dead-lettered task: failed → queued with a fresh attempt
    /// budget. The one exception to "terminal states are final", and only from the DLQ.
    pub fn retry_from_dlq(&mut self, now: Timestamp) -> Result<()> {
        if self.status != TaskStatus::Failed || self.dead_lettered_at.is_none() {
            return Err(self.bad("queued (dlq retry)"));
        }
        self.status = TaskStatus::Queued;
        self.attempts = 0;
        self.error_code = None;
        self.error_message = None;
        self.dead_lettered_at = None;
        self.completed_at = None;
        self.progress = None;
        self.cancel_requested = false;
        self.updated_at = now;
        Ok(())
    }

    /// A terminal task keeps LeaseLost errors only when the lease really is someone
    /// else's; for a terminal task report the transition instead, which reads better.
    fn lost_or_bad(&self, e: Error, to: &str) -> Error {
        if self.status.is_terminal() {
            self.bad(to)
        } else {
            e
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        "2026-01-02T03:04:05Z".parse().unwrap()
    }

    fn task() -> Task {
        Task::queued(
            NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.1", "n"),
            "p",
            false,
            t0(),
        )
    }

    #[test]
    fn id_has_five_parts_and_is_path_safe() {
        let id = new_task_id("nessus_dmz", ScanType::Untrusted, t0());
        assert_eq!(id.split('_').count(), 5, "{id}");
        assert!(id.starts_with("ness_un_20260102_030405_"), "{id}");
        let random = id.rsplit('_').next().unwrap();
        assert_eq!(random.len(), 32, "128 random bits as lowercase hex: {id}");
        assert!(
            random
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(is_valid_task_id(&id));
        // Fresh randomness every time (a fixed or short tail would repeat).
        let ids: std::collections::HashSet<String> = (0..1000)
            .map(|_| new_task_id("nessus_dmz", ScanType::Untrusted, t0()))
            .collect();
        assert_eq!(ids.len(), 1000);
        assert!(!is_valid_task_id("../etc"));
    }

    #[test]
    fn happy_path_and_terminal_is_final() {
        let mut t = task();
        let ttl = SignedDuration::from_secs(30);
        let tok = t.claim("w", "s1", ttl, t0()).unwrap();
        assert_eq!((t.status, t.attempts, tok), (TaskStatus::Running, 1, 1));
        t.record_scan(tok, 7, t0()).unwrap();
        t.complete(tok, Completion::default(), t0()).unwrap();
        assert_eq!(t.status, TaskStatus::Completed);
        assert!(t.lease.is_none());
        assert!(matches!(
            t.claim("w", "s1", ttl, t0()),
            Err(Error::InvalidTransition { .. })
        ));
        assert_eq!(t.cancel(t0()), CancelOutcome::AlreadyFinished);
    }

    #[test]
    fn stale_token_rejected_after_reclaim() {
        let mut t = task();
        let ttl = SignedDuration::from_secs(1);
        let old = t.claim("w1", "s1", ttl, t0()).unwrap();
        assert!(t.expire_lease(3, t0() + SignedDuration::from_secs(2)));
        let new = t.claim("w2", "s1", ttl, t0()).unwrap();
        assert!(new > old);
        assert!(matches!(
            t.record_scan(old, 1, t0()),
            Err(Error::LeaseLost { .. })
        ));
        t.record_scan(new, 1, t0()).unwrap();
    }

    #[test]
    fn poison_task_dead_letters_after_max_attempts() {
        let mut t = task();
        let ttl = SignedDuration::from_secs(1);
        for _ in 0..3 {
            t.claim("w", "s1", ttl, t0()).unwrap();
            assert!(t.expire_lease(3, t0() + SignedDuration::from_secs(5)));
        }
        assert_eq!(t.status, TaskStatus::Failed);
        assert!(t.is_dead_lettered());
        assert_eq!(t.error_code.as_deref(), Some("lease_expired_max_attempts"));
        t.retry_from_dlq(t0()).unwrap();
        assert_eq!((t.status, t.attempts), (TaskStatus::Queued, 0));
    }

    #[test]
    fn pin_is_honoured() {
        let mut t = Task::queued(
            NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.1", "n").scanner_instance("s2"),
            "p",
            false,
            t0(),
        );
        assert!(
            t.claim("w", "s1", SignedDuration::from_secs(1), t0())
                .is_err()
        );
        t.claim("w", "s2", SignedDuration::from_secs(1), t0())
            .unwrap();
    }

    /// Every transition into and out of pending_approval, from every state: only
    /// pending_approval may be approved, rejected or expired; a pending task is
    /// cancelled by its owner at once and never claimed.
    #[test]
    fn pending_approval_transitions_from_every_state() {
        let ttl = SignedDuration::from_secs(30);
        let later = t0() + SignedDuration::from_hours(48);
        let hold = ApprovalHold {
            reason: "r".to_owned(),
            expires_after: SignedDuration::from_hours(24),
        };
        let in_state = |s: TaskStatus| {
            let req = NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.1", "n");
            let mut t = Task::held(req, "p", false, &hold, t0());
            if s == TaskStatus::PendingApproval {
                return t;
            }
            t.approve("a", "ok", t0()).unwrap();
            match s {
                TaskStatus::Queued => {}
                TaskStatus::Running => {
                    t.claim("w", "s1", ttl, t0()).unwrap();
                }
                TaskStatus::Completed => {
                    let tok = t.claim("w", "s1", ttl, t0()).unwrap();
                    t.complete(tok, Completion::default(), t0()).unwrap();
                }
                TaskStatus::Failed => {
                    t.fail_queued(Failure::plain("x", "y"), t0()).unwrap();
                }
                TaskStatus::Timeout => {
                    let tok = t.claim("w", "s1", ttl, t0()).unwrap();
                    t.time_out(tok, "slow", t0()).unwrap();
                }
                _ => {
                    t.cancel(t0());
                }
            }
            assert_eq!(t.status, s);
            t
        };
        for s in TaskStatus::ALL {
            let pending = s == TaskStatus::PendingApproval;
            let mut t = in_state(s);
            assert_eq!(
                t.approve("a", "ok", t0()).is_ok(),
                pending,
                "approve from {s}"
            );
            if pending {
                assert_eq!(t.status, TaskStatus::Queued);
                assert!(
                    t.claim("w", "s1", ttl, t0()).is_ok(),
                    "approved is claimable"
                );
            }
            let mut t = in_state(s);
            assert_eq!(
                t.reject("a", "no", t0()).is_ok(),
                pending,
                "reject from {s}"
            );
            if pending {
                assert_eq!(
                    (t.status, t.error_code.as_deref()),
                    (TaskStatus::Cancelled, Some("approval_rejected"))
                );
                assert!(t.completed_at.is_some());
            }
            let mut t = in_state(s);
            assert!(!t.expire_approval(t0()), "not yet expired from {s}");
            assert_eq!(t.expire_approval(later), pending, "expire from {s}");
            if pending {
                assert_eq!(t.error_code.as_deref(), Some("approval_expired"));
                assert_eq!(t.review.as_ref().unwrap().decision, ReviewDecision::Expired);
            }
        }
        let mut t = in_state(TaskStatus::PendingApproval);
        assert!(!t.status.is_terminal());
        assert!(matches!(
            t.claim("w", "s1", ttl, t0()),
            Err(Error::InvalidTransition { .. })
        ));
        assert!(t.fail_queued(Failure::plain("x", "y"), t0()).is_err());
        assert_eq!(t.cancel(t0()), CancelOutcome::Cancelled);
        assert_eq!(t.status, TaskStatus::Cancelled);
        assert_eq!(
            "pending_approval".parse::<TaskStatus>().unwrap(),
            TaskStatus::PendingApproval
        );
        // Documents stored before approvals existed still load.
        let mut old = serde_json::to_value(in_state(TaskStatus::Queued)).unwrap();
        for k in ["approval_reason", "approval_expires_at", "review"] {
            old.as_object_mut().unwrap().remove(k);
        }
        let back: Task = serde_json::from_value(old).unwrap();
        assert!(back.approval_reason.is_none());
    }
}
