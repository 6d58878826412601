//! The facade the MCP server, the CLI and the worker call. It owns the business
//! rules (validation, idempotency hashing, ETA, retries of compare-and-set writes)
//! and delegates storage to a [`Backend`].

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::backend::{
    Backend, ClaimRequest, CreateOutcome, IdemReservation, InstanceCapacity, ListQuery, PoolCounts,
    PrincipalCounts, QueueSnapshot,
};
use crate::error::{Error, Result};
use crate::secret::{AdhocCredentials, SecretBox};
use crate::sqlite::SqliteBackend;
use crate::task::{
    ApprovalHold, CancelOutcome, Completion, Failure, NewTask, ScanType, Task, TaskStatus,
};
use nessus_core::targets_match;

/// Tunables of the queue. `Default` gives the documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueueConfig {
    /// Lease length; workers heartbeat at a third of it.
    pub lease_ttl: SignedDuration,
    /// Interrupted attempts (expired leases) before a task is dead-lettered.
    pub max_attempts: u32,
    /// Lifetime of an idempotency key.
    pub idempotency_ttl: SignedDuration,
    /// Assumed scan duration for the ETA until a pool has history.
    pub default_scan_duration: SignedDuration,
    /// How many recent durations the ETA averages.
    pub eta_window: usize,
    /// Completed tasks are deleted after this long.
    pub completed_ttl: SignedDuration,
    /// Failed, timed-out and cancelled tasks are deleted after this long.
    pub other_ttl: SignedDuration,
    /// Total `max_concurrent_scans` per pool, for the ETA (default 1 per pool).
    pub pool_capacity: BTreeMap<String, u32>,
    /// Audit events are deleted by housekeeping after this long (default 90 days).
    pub audit_ttl: SignedDuration,
    /// Most queued tasks one principal may hold in one pool (default 10 000); a
    /// submit beyond it is [`Error::QuotaExceeded`]. Checked atomically with the
    /// create; idempotent replays of an existing task do not count. Per pool
    /// because each pool's keys live in one Redis slot, which is what lets the
    /// Redis script check it atomically.
    pub max_queued_per_principal: u64,
    /// Fixed findings, and assets no scan covered, leave the findings-over-time
    /// store after this long (default 180 days; `queue.findings_ttl_days`).
    pub findings_ttl: SignedDuration,
}

/// Default of [`QueueConfig::max_queued_per_principal`]: generous, so valid work is
/// accepted ("queues queue"), but one caller cannot grow a pool without bound.
pub const DEFAULT_MAX_QUEUED_PER_PRINCIPAL: u64 = 10_000;

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease_ttl: SignedDuration::from_secs(60),
            max_attempts: 3,
            idempotency_ttl: SignedDuration::from_hours(48),
            default_scan_duration: SignedDuration::from_mins(15),
            eta_window: 20,
            completed_ttl: SignedDuration::from_hours(24 * 7),
            other_ttl: SignedDuration::from_hours(24 * 30),
            pool_capacity: BTreeMap::new(),
            audit_ttl: SignedDuration::from_hours(24 * 90),
            max_queued_per_principal: DEFAULT_MAX_QUEUED_PER_PRINCIPAL,
            findings_ttl: crate::findings::DEFAULT_FINDINGS_TTL,
        }
    }
}

impl QueueConfig {
    /// Sets the lease length.
    pub fn lease_ttl(mut self, d: SignedDuration) -> Self {
        self.lease_ttl = d;
        self
    }

    /// Sets the poison-task limit.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Declares a pool's total capacity for ETAs.
    pub fn pool_capacity(mut self, pool: impl Into<String>, capacity: u32) -> Self {
        self.pool_capacity.insert(pool.into(), capacity.max(1));
        self
    }

    /// Sets the ETA default before there is history.
    pub fn default_scan_duration(mut self, d: SignedDuration) -> Self {
        self.default_scan_duration = d;
        self
    }

    /// Sets how long audit events are kept.
    pub fn audit_ttl(mut self, d: SignedDuration) -> Self {
        self.audit_ttl = d;
        self
    }

    /// Sets the per-principal cap on queued tasks in a pool (at least 1).
    pub fn max_queued_per_principal(mut self, n: u64) -> Self {
        self.max_queued_per_principal = n.max(1);
        self
    }

    /// Sets the retention TTLs (completed, and every other terminal state).
    pub fn ttls(mut self, completed: SignedDuration, other: SignedDuration) -> Self {
        self.completed_ttl = completed;
        self.other_ttl = other;
        self
    }
}

/// What `submit` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Submitted {
    /// The task (new, or the existing one on an idempotent hit).
    pub task: Task,
    /// True when an idempotency key matched an earlier identical request.
    pub idempotent: bool,
    /// 1-based position in the pool's queue while queued.
    pub queue_position: Option<u64>,
    /// Estimated minutes until a worker starts it, while queued.
    pub estimated_wait_minutes: Option<u64>,
}

/// A task with its live queue position and ETA.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskView {
    /// The task.
    pub task: Task,
    /// 1-based position while queued.
    pub queue_position: Option<u64>,
    /// Estimated minutes until start while queued.
    pub estimated_wait_minutes: Option<u64>,
}

/// Filters for [`Queue::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListTasks {
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this pool.
    pub pool: Option<String>,
    /// CIDR-aware target filter (seed-spec §2.13). Not indexable: applied to
    /// the rows of the (status, pool, principal) index scan with a budget, so a
    /// target-filtered page may come back short with a cursor to continue.
    pub target: Option<String>,
    /// Only this principal's tasks, filtered in the index: pages are full and
    /// the cursor never carries another principal's task.
    pub principal: Option<String>,
    /// Page size (1-1000, default 10).
    pub limit: usize,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

impl ListTasks {
    /// First page of `limit` tasks, no filters.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Only this status.
    pub fn status(mut self, s: TaskStatus) -> Self {
        self.status = Some(s);
        self
    }

    /// Only this pool.
    pub fn pool(mut self, p: impl Into<String>) -> Self {
        self.pool = Some(p.into());
        self
    }

    /// Only this principal's tasks.
    pub fn principal(mut self, p: impl Into<String>) -> Self {
        self.principal = Some(p.into());
        self
    }

    /// Only tasks whose targets match.
    pub fn target(mut self, t: impl Into<String>) -> Self {
        self.target = Some(t.into());
        self
    }

    /// Continue after a cursor.
    pub fn cursor(mut self, c: impl Into<String>) -> Self {
        self.cursor = Some(c.into());
        self
    }
}

/// A page of tasks.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct TaskPage {
    /// Tasks, newest first.
    pub tasks: Vec<Task>,
    /// Pass to [`ListTasks::cursor`] for the next page.
    pub next_cursor: Option<String>,
}

/// Queue overview for `get_queue_status` (never includes credentials).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct QueueStatus {
    /// Pool.
    pub pool: String,
    /// Waiting tasks.
    pub queue_depth: u64,
    /// Tasks with a live lease.
    pub running: u64,
    /// Dead-lettered tasks.
    pub dlq_size: u64,
    /// Tasks waiting for an admin's approval (not in `queue_depth`).
    pub pending_approval: u64,
    /// Next tasks to run (up to 3), next first; in a principal's view only its own.
    pub next_tasks: Vec<Task>,
    /// In a principal's view ([`Queue::queue_status_for`]): its own waiting and
    /// running counts and everyone else's, as counts only. `None` in the admin view.
    pub principal: Option<PrincipalCounts>,
    /// When this was computed.
    pub timestamp: Timestamp,
}

/// A claimed task and the fencing token every further write must present.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Claim {
    /// The task as claimed (status running, instance chosen).
    pub task: Task,
    /// Fencing token.
    pub token: u64,
}

/// What to purge from the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DlqPurge {
    /// One task.
    Id(String),
    /// Entries dead-lettered before this time.
    Before(Timestamp),
    /// Everything.
    All,
}

/// What the reaper did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ReapReport {
    /// Tasks put back in their queue.
    pub requeued: Vec<String>,
    /// Tasks dead-lettered after too many interrupted attempts.
    pub dead_lettered: Vec<String>,
    /// Tasks cancelled because a cancel was pending.
    pub cancelled: Vec<String>,
}

/// What housekeeping deleted (or would delete in dry-run mode).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HousekeepReport {
    /// Terminal tasks past their TTL, with their status.
    pub tasks: Vec<(String, TaskStatus)>,
    /// Expired idempotency keys removed (0 in dry-run mode).
    pub idempotency_keys: u64,
    /// Audit events past `QueueConfig::audit_ttl` deleted (in dry-run mode: that
    /// would be deleted).
    pub audit_events: u64,
    /// Tasks whose approval window elapsed, cancelled now (in dry-run mode: that
    /// would be).
    pub approvals_expired: Vec<String>,
    /// Whether nothing was actually deleted.
    pub dry_run: bool,
}

/// The queue facade. Cheap to clone.
#[derive(Clone)]
pub struct Queue {
    backend: Arc<dyn Backend>,
    cfg: QueueConfig,
    secrets: Option<SecretBox>,
    rr: Arc<AtomicUsize>,
    /// Wakes idle workers of this process the moment a task is enqueued, so a claim
    /// does not wait for the next idle poll (other processes still poll).
    enqueued: Arc<tokio::sync::Notify>,
    /// Wakes this process's cancel watches when a running task is asked to cancel.
    cancelled: Arc<tokio::sync::Notify>,
    /// Configured webhooks (none: no outbox entries are written).
    hooks: crate::hooks::SharedHooks,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("backend", &self.backend.kind())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Maximum rows a target-filtered listing examines per call; the page's cursor
/// lets the caller continue, so one call never reads the whole history.
const TARGET_SCAN_BUDGET: usize = 2_000;

const RETRIES: usize = 64;

/// Fingerprint of what the caller sent (never the auto-picked instance, never
/// passwords). Canonical JSON with sorted keys, SHA-256, lowercase hex.
pub fn request_hash(req: &NewTask, creds: Option<&AdhocCredentials>) -> String {
    let mut m = BTreeMap::new();
    m.insert("scan_type", Some(req.scan_type.as_str().to_owned()));
    m.insert("scanner_pool", Some(req.pool.clone()));
    m.insert("scanner_instance", req.scanner_instance.clone());
    m.insert("targets", Some(req.targets.clone()));
    m.insert("name", Some(req.name.clone()));
    m.insert("description", Some(req.description.clone()));
    m.insert("schema_profile", Some(req.schema_profile.clone()));
    m.insert("credential_profile", req.credential_profile.clone());
    if let Some(c) = creds {
        m.insert("ssh_username", Some(c.username.clone()));
        m.insert(
            "elevate_privileges_with",
            Some(c.elevate_privileges_with.clone()),
        );
        m.insert("escalation_account", c.escalation_account.clone());
    }
    let canon = serde_json::to_string(&m).unwrap_or_default();
    hex::encode(Sha256::digest(canon.as_bytes()))
}

fn scope_key(principal: &str, key: &str) -> String {
    let mut h = Sha256::new();
    h.update(principal.as_bytes());
    h.update([0]);
    h.update(key.as_bytes());
    hex::encode(h.finalize())
}

impl Queue {
    /// A queue over any backend.
    pub fn new(backend: Arc<dyn Backend>, cfg: QueueConfig) -> Self {
        Self {
            backend,
            cfg,
            secrets: None,
            rr: Arc::new(AtomicUsize::new(0)),
            enqueued: Arc::new(tokio::sync::Notify::new()),
            cancelled: Arc::new(tokio::sync::Notify::new()),
            hooks: None,
        }
    }

    /// Webhooks: task events are written to the outbox and delivered by
    /// [`Queue::run_deliveries`].
    pub fn with_webhooks(mut self, hooks: crate::hooks::Webhooks) -> Self {
        self.hooks = (!hooks.hooks.is_empty()).then(|| Arc::new(hooks));
        self
    }

    /// The configured webhooks.
    pub fn webhooks(&self) -> Option<&Arc<crate::hooks::Webhooks>> {
        self.hooks.as_ref()
    }

    /// A queue over the SQLite file at `path`.
    pub fn sqlite(path: impl AsRef<Path>, cfg: QueueConfig) -> Result<Self> {
        Ok(Self::new(Arc::new(SqliteBackend::open(path)?), cfg))
    }

    /// A queue over Redis at `url` (refuses evicting `maxmemory-policy`).
    pub async fn redis(url: &str, cfg: QueueConfig) -> Result<Self> {
        Ok(Self::new(
            Arc::new(crate::redis_backend::RedisBackend::connect(url).await?),
            cfg,
        ))
    }

    /// A queue over Redis in any topology: one server, Sentinel or Cluster
    /// (refuses a primary with an evicting `maxmemory-policy`).
    pub async fn redis_topology(topology: &crate::RedisTopology, cfg: QueueConfig) -> Result<Self> {
        Ok(Self::new(
            Arc::new(crate::redis_backend::RedisBackend::connect_topology(topology).await?),
            cfg,
        ))
    }

    /// Enables ad-hoc credentials, sealed with this box.
    pub fn with_secrets(mut self, b: SecretBox) -> Self {
        self.secrets = Some(b);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &QueueConfig {
        &self.cfg
    }

    /// Resolves when a task is next enqueued through this queue handle (or a clone of
    /// it), or right away if one was enqueued since the last waiter woke. In-process
    /// workers select on it next to their idle poll.
    pub async fn enqueued(&self) {
        self.enqueued.notified().await;
    }

    /// Resolves when a running task is next asked to cancel through this queue handle
    /// (or a clone of it). Workers' cancel watches select on it next to their poll, so
    /// an in-process cancel is acted on at once; other processes' cancels are seen by
    /// the poll.
    pub async fn cancel_requested(&self) {
        self.cancelled.notified().await;
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// Validates and enqueues a scan. With an idempotency key, the same key and the
    /// same request from the same principal return the first task
    /// (`idempotent: true`); a different request is [`Error::IdempotencyConflict`].
    pub async fn submit(
        &self,
        principal: &str,
        req: NewTask,
        credentials: Option<AdhocCredentials>,
        idempotency_key: Option<&str>,
    ) -> Result<Submitted> {
        self.submit_capped(principal, req, credentials, idempotency_key, None)
            .await
    }

    /// As [`Queue::submit`], with this principal's own cap on queued tasks in the pool
    /// (`None`: [`QueueConfig::max_queued_per_principal`]).
    pub async fn submit_capped(
        &self,
        principal: &str,
        req: NewTask,
        credentials: Option<AdhocCredentials>,
        idempotency_key: Option<&str>,
        max_queued: Option<u64>,
    ) -> Result<Submitted> {
        self.submit_held(
            principal,
            req,
            credentials,
            idempotency_key,
            max_queued,
            None,
        )
        .await
    }

    /// As [`Queue::submit_capped`]; with a `hold` the task is created
    /// `pending_approval` (not queued, not claimable) with the hold's reason and
    /// expiry. Whether a hold applies is the service's decision (one place:
    /// `Service::submit`). An idempotent replay answers the existing task whatever
    /// its state.
    pub async fn submit_held(
        &self,
        principal: &str,
        req: NewTask,
        credentials: Option<AdhocCredentials>,
        idempotency_key: Option<&str>,
        max_queued: Option<u64>,
        hold: Option<ApprovalHold>,
    ) -> Result<Submitted> {
        let max_queued = max_queued
            .unwrap_or(self.cfg.max_queued_per_principal)
            .max(1);
        req.validate()?;
        match (req.scan_type, &credentials, &req.credential_profile) {
            (ScanType::Untrusted, Some(_), _) | (ScanType::Untrusted, _, Some(_)) => {
                return Err(Error::invalid(
                    "scan_type",
                    "an untrusted scan takes no credentials",
                ));
            }
            (ScanType::Authenticated | ScanType::AuthenticatedPrivileged, None, None) => {
                return Err(Error::invalid(
                    "credentials",
                    "an authenticated scan needs ad-hoc credentials or a credential profile",
                ));
            }
            _ => {}
        }
        if let Some(k) = idempotency_key {
            crate::limits::check_len("idempotency_key", k, crate::limits::IDEMPOTENCY_KEY_MAX)?;
            if k.is_empty() {
                return Err(Error::invalid("idempotency_key", "must not be empty"));
            }
        }
        let now = Timestamp::now();
        let hash = request_hash(&req, credentials.as_ref());
        let idem = idempotency_key.map(|k| IdemReservation {
            scope_key: scope_key(principal, k),
            request_hash: hash.clone(),
            expires_at: now + self.cfg.idempotency_ttl,
        });
        let has_creds = credentials.is_some();
        for _ in 0..3 {
            let task = match &hold {
                Some(h) => Task::held(req.clone(), principal, has_creds, h, now),
                None => Task::queued(req.clone(), principal, has_creds, now),
            };
            let sealed = match &credentials {
                Some(c) => {
                    let b = self.secrets.as_ref().ok_or_else(|| {
                        Error::invalid(
                            "credentials",
                            "this queue has no secret key configured for ad-hoc credentials",
                        )
                    })?;
                    Some(b.seal(&task.task_id, c)?)
                }
                None => None,
            };
            match self
                .backend
                .create(task, idem.clone(), sealed, max_queued)
                .await?
            {
                CreateOutcome::Created(task) => {
                    if task.status == TaskStatus::PendingApproval {
                        self.raise_events(&task).await?;
                    }
                    self.enqueued.notify_waiters();
                    self.enqueued.notify_one();
                    let view = self.view(*task).await?;
                    return Ok(Submitted {
                        task: view.task,
                        idempotent: false,
                        queue_position: view.queue_position,
                        estimated_wait_minutes: view.estimated_wait_minutes,
                    });
                }
                CreateOutcome::Existing {
                    task_id,
                    request_hash,
                } => {
                    if request_hash != hash {
                        return Err(Error::IdempotencyConflict {
                            key: idempotency_key.unwrap_or_default().to_owned(),
                        });
                    }
                    match self.backend.load(task_id).await? {
                        Some(task) => {
                            let view = self.view(task).await?;
                            return Ok(Submitted {
                                task: view.task,
                                idempotent: true,
                                queue_position: view.queue_position,
                                estimated_wait_minutes: view.estimated_wait_minutes,
                            });
                        }
                        // The task was purged while its key lived on: the key is stale.
                        None => {
                            if let Some(r) = &idem {
                                self.backend
                                    .drop_idempotency(req.pool.clone(), r.scope_key.clone())
                                    .await?;
                            }
                        }
                    }
                }
            }
        }
        Err(Error::Contention {
            task_id: "(new submission)".to_owned(),
        })
    }

    /// A task with its live queue position and ETA.
    pub async fn get(&self, task_id: &str) -> Result<Option<TaskView>> {
        if !crate::task::is_valid_task_id(task_id) {
            return Ok(None);
        }
        match self.backend.load(task_id.to_owned()).await? {
            Some(t) => Ok(Some(self.view(t).await?)),
            None => Ok(None),
        }
    }

    async fn view(&self, task: Task) -> Result<TaskView> {
        if task.status != TaskStatus::Queued {
            return Ok(TaskView {
                task,
                queue_position: None,
                estimated_wait_minutes: None,
            });
        }
        let snap = self
            .backend
            .queue_snapshot(
                task.pool.clone(),
                task.task_id.clone(),
                Timestamp::now(),
                self.cfg.eta_window,
            )
            .await?;
        let eta = snap
            .position
            .map(|p| self.eta_minutes(&task.pool, p, &snap));
        Ok(TaskView {
            task,
            queue_position: snap.position,
            estimated_wait_minutes: eta,
        })
    }

    /// Minutes until the task at 1-based `position` starts: it needs
    /// `position + running - capacity` completions, which happen at
    /// `capacity / avg_duration` per minute.
    fn eta_minutes(&self, pool: &str, position: u64, snap: &QueueSnapshot) -> u64 {
        let cap = u64::from(self.cfg.pool_capacity.get(pool).copied().unwrap_or(1));
        let needed = (position + snap.counts.running).saturating_sub(cap);
        if needed == 0 {
            return 0;
        }
        let recent = &snap.recent_durations;
        let avg_secs = if recent.is_empty() {
            self.cfg.default_scan_duration.as_secs_f64()
        } else {
            recent.iter().sum::<f64>() / recent.len() as f64
        };
        (needed as f64 * avg_secs / cap as f64 / 60.0).ceil() as u64
    }

    /// Newest-first page of tasks.
    pub async fn list(&self, q: ListTasks) -> Result<TaskPage> {
        crate::backend::check_cursor(q.cursor.as_deref(), crate::task::is_valid_task_id)?;
        let limit = if q.limit == 0 { 10 } else { q.limit.min(1000) };
        let base = ListQuery {
            status: q.status,
            pool: q.pool.clone(),
            dead_lettered: false,
            principal: q.principal.clone(),
            limit,
            cursor: q.cursor.clone(),
        };
        let Some(target) = q.target.as_deref().filter(|t| !t.trim().is_empty()) else {
            let p = self.backend.list(base).await?;
            return Ok(TaskPage {
                tasks: p.tasks,
                next_cursor: p.next_cursor,
            });
        };
        let mut out = Vec::new();
        let mut cursor = q.cursor.clone();
        let mut scanned = 0;
        loop {
            let p = self
                .backend
                .list(ListQuery {
                    cursor: cursor.clone(),
                    limit: 200,
                    ..base.clone()
                })
                .await?;
            for t in p.tasks {
                scanned += 1;
                let key = crate::backend::order_key(&t);
                if targets_match(target, &t.targets) {
                    out.push(t);
                    if out.len() == limit {
                        return Ok(TaskPage {
                            tasks: out,
                            next_cursor: Some(key),
                        });
                    }
                }
                cursor = Some(key);
            }
            if p.next_cursor.is_none() {
                return Ok(TaskPage {
                    tasks: out,
                    next_cursor: None,
                });
            }
            if scanned >= TARGET_SCAN_BUDGET {
                return Ok(TaskPage {
                    tasks: out,
                    next_cursor: cursor,
                });
            }
        }
    }

    /// Cancels a task (queued → cancelled; running → the worker stops the scan).
    pub async fn cancel(&self, task_id: &str) -> Result<CancelOutcome> {
        let now = Timestamp::now();
        let (t, out) = self.update(task_id, |t| Ok(t.cancel(now))).await?;
        if out == CancelOutcome::CancelRequested {
            self.cancelled.notify_waiters();
        }
        self.drop_secret_if_done(&t).await?;
        Ok(out)
    }

    /// pending_approval → queued (an admin's approval); the task joins the tail of
    /// its pool's queue. Returns the task as stored.
    pub async fn approve(&self, task_id: &str, by: &str, reason: &str) -> Result<Task> {
        let now = Timestamp::now();
        let t = self
            .update(task_id, |t| t.approve(by, reason, now))
            .await?
            .0;
        self.enqueued.notify_waiters();
        self.enqueued.notify_one();
        Ok(t)
    }

    /// pending_approval → cancelled (an admin's rejection).
    pub async fn reject(&self, task_id: &str, by: &str, reason: &str) -> Result<Task> {
        let now = Timestamp::now();
        self.finish(task_id, |t| t.reject(by, reason, now)).await
    }

    /// Tasks waiting for approval, newest first (one pool or all; one principal's
    /// or everyone's).
    pub async fn pending_approvals(
        &self,
        pool: Option<&str>,
        principal: Option<&str>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<TaskPage> {
        self.status_page(ListQuery {
            status: Some(TaskStatus::PendingApproval),
            pool: pool.map(str::to_owned),
            dead_lettered: false,
            principal: principal.map(str::to_owned),
            limit,
            cursor,
        })
        .await
    }

    /// Cancels every pending approval whose window has elapsed at `now` (with
    /// `dry_run`, only lists them). The expiry rule is [`Task::expire_approval`];
    /// a decision racing it wins or loses by the compare-and-set.
    pub async fn expire_approvals(&self, now: Timestamp, dry_run: bool) -> Result<Vec<Task>> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.pending_approvals(None, None, 500, cursor).await?;
            for t in &page.tasks {
                let mut probe = t.clone();
                if !probe.expire_approval(now) {
                    continue;
                }
                if dry_run {
                    out.push(probe);
                    continue;
                }
                match self
                    .update(&t.task_id, |t| Ok(t.expire_approval(now)))
                    .await
                {
                    Ok((t, true)) => {
                        self.drop_secret_if_done(&t).await?;
                        out.push(t);
                    }
                    Ok((_, false)) | Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(out)
    }

    /// Queue overview for one pool, everything visible (the admin view).
    pub async fn queue_status(&self, pool: &str) -> Result<QueueStatus> {
        self.queue_status_for(pool, None).await
    }

    /// Queue overview for one pool as `principal` may see it: `next_tasks` are its
    /// own next tasks (in its own order) and `principal` holds its counts and
    /// everyone else's as counts only. `None` is the admin view of everything.
    pub async fn queue_status_for(
        &self,
        pool: &str,
        principal: Option<&str>,
    ) -> Result<QueueStatus> {
        let now = Timestamp::now();
        let PoolCounts {
            queued,
            running,
            dead_lettered,
            pending_approval,
        } = self.backend.pool_counts(pool.to_owned(), now).await?;
        let (head, counts) = match principal {
            Some(p) => (
                self.backend
                    .queue_head_for(pool.to_owned(), p.to_owned(), 3)
                    .await?,
                Some(
                    self.backend
                        .principal_counts(pool.to_owned(), p.to_owned(), now)
                        .await?,
                ),
            ),
            None => (self.backend.queue_head(pool.to_owned(), 3).await?, None),
        };
        let mut next = Vec::new();
        for id in head {
            if let Some(t) = self.backend.load(id).await? {
                next.push(t);
            }
        }
        Ok(QueueStatus {
            pool: pool.to_owned(),
            queue_depth: queued,
            running,
            dlq_size: dead_lettered,
            pending_approval,
            next_tasks: next,
            principal: counts,
            timestamp: now,
        })
    }

    /// Dead-lettered tasks, newest first.
    pub async fn dlq_list(
        &self,
        pool: Option<&str>,
        limit: usize,
        cursor: Option<String>,
    ) -> Result<TaskPage> {
        self.status_page(ListQuery {
            status: Some(TaskStatus::Failed),
            pool: pool.map(str::to_owned),
            dead_lettered: true,
            principal: None,
            limit,
            cursor,
        })
        .await
    }

    /// One page of an admin listing by status (the DLQ, pending approvals): the
    /// cursor checked, the limit held to 1–1000.
    async fn status_page(&self, mut query: ListQuery) -> Result<TaskPage> {
        crate::backend::check_cursor(query.cursor.as_deref(), crate::task::is_valid_task_id)?;
        query.limit = query.limit.clamp(1, 1000);
        let p = self.backend.list(query).await?;
        Ok(TaskPage {
            tasks: p.tasks,
            next_cursor: p.next_cursor,
        })
    }

    /// One dead-lettered task.
    pub async fn dlq_get(&self, task_id: &str) -> Result<Option<Task>> {
        Ok(self
            .get(task_id)
            .await?
            .map(|v| v.task)
            .filter(Task::is_dead_lettered))
    }

    /// Requeues a dead-lettered task as a fresh attempt that can succeed; returns the
    /// requeued task (what [`AuditEvent::for_task`] takes).
    pub async fn dlq_retry(&self, task_id: &str) -> Result<Task> {
        let now = Timestamp::now();
        Ok(self.update(task_id, |t| t.retry_from_dlq(now)).await?.0)
    }

    /// Deletes dead-lettered tasks; returns each task that went, as it was, so the
    /// caller can audit them ([`AuditEvent::for_task`]).
    pub async fn dlq_purge(&self, what: DlqPurge) -> Result<Vec<Task>> {
        let mut gone = Vec::new();
        match what {
            DlqPurge::Id(id) => {
                if let Some(t) = self.dlq_get(&id).await?
                    && self.backend.delete(id).await?
                {
                    gone.push(t);
                }
            }
            DlqPurge::Before(_) | DlqPurge::All => {
                let before = match what {
                    DlqPurge::Before(t) => Some(t),
                    _ => None,
                };
                let mut cursor = None;
                loop {
                    let page = self.dlq_list(None, 500, cursor).await?;
                    for t in &page.tasks {
                        let old = before.is_none_or(|b| t.dead_lettered_at.is_some_and(|d| d < b));
                        if old && self.backend.delete(t.task_id.clone()).await? {
                            gone.push(t.clone());
                        }
                    }
                    match page.next_cursor {
                        Some(c) => cursor = Some(c),
                        None => break,
                    }
                }
            }
        }
        Ok(gone)
    }

    /// Claims the next task for a worker. Pools are tried in a rotating order so a
    /// busy pool cannot starve the others.
    pub async fn claim(
        &self,
        worker_id: &str,
        pools: &[(String, Vec<InstanceCapacity>)],
    ) -> Result<Option<Claim>> {
        if pools.is_empty() {
            return Ok(None);
        }
        let start = self.rr.fetch_add(1, Ordering::Relaxed) % pools.len();
        let mut order = pools.to_vec();
        order.rotate_left(start);
        let got = self
            .backend
            .claim(ClaimRequest {
                worker_id: worker_id.to_owned(),
                pools: order,
                lease_ttl: self.cfg.lease_ttl,
                now: Timestamp::now(),
            })
            .await?;
        Ok(got.and_then(|task| {
            let token = task.lease.as_ref()?.token;
            Some(Claim { task, token })
        }))
    }

    /// Renews a lease; returns the task so the worker sees `cancel_requested`.
    pub async fn heartbeat(&self, task_id: &str, token: u64) -> Result<Task> {
        let ttl = self.cfg.lease_ttl;
        Ok(self
            .update(task_id, |t| t.heartbeat(token, ttl, Timestamp::now()))
            .await?
            .0)
    }

    /// Records the Nessus scan id and deletes the sealed credentials (the scan now
    /// holds them).
    pub async fn record_scan(&self, task_id: &str, token: u64, scan_id: i64) -> Result<Task> {
        let t = self
            .update(task_id, |t| t.record_scan(token, scan_id, Timestamp::now()))
            .await?
            .0;
        self.backend.delete_secret(task_id.to_owned()).await?;
        Ok(t)
    }

    /// Records progress.
    pub async fn progress(&self, task_id: &str, token: u64, pct: u8) -> Result<Task> {
        Ok(self
            .update(task_id, |t| t.set_progress(token, pct, Timestamp::now()))
            .await?
            .0)
    }

    /// running → completed.
    pub async fn complete(&self, task_id: &str, token: u64, c: Completion) -> Result<Task> {
        self.finish(task_id, |t| t.complete(token, c.clone(), Timestamp::now()))
            .await
    }

    /// running → failed.
    pub async fn fail(&self, task_id: &str, token: u64, f: Failure) -> Result<Task> {
        self.finish(task_id, |t| t.fail(token, f.clone(), Timestamp::now()))
            .await
    }

    /// running → timeout.
    pub async fn time_out(&self, task_id: &str, token: u64, message: &str) -> Result<Task> {
        self.finish(task_id, |t| t.time_out(token, message, Timestamp::now()))
            .await
    }

    /// running → cancelled after the worker stopped the scan.
    pub async fn confirm_cancel(&self, task_id: &str, token: u64) -> Result<Task> {
        self.finish(task_id, |t| t.confirm_cancel(token, Timestamp::now()))
            .await
    }

    /// running → queued (graceful shutdown).
    pub async fn release(&self, task_id: &str, token: u64) -> Result<Task> {
        Ok(self
            .update(task_id, |t| t.release(token, Timestamp::now()))
            .await?
            .0)
    }

    /// Opens the sealed ad-hoc credentials of a task (worker only).
    pub async fn open_credentials(&self, task_id: &str) -> Result<Option<AdhocCredentials>> {
        let Some(sealed) = self.backend.load_secret(task_id.to_owned()).await? else {
            return Ok(None);
        };
        let b = self.secrets.as_ref().ok_or_else(|| Error::Secret {
            reason: "no secret key configured to open ad-hoc credentials".to_owned(),
        })?;
        b.open(task_id, &sealed).map(Some)
    }

    /// Requeues tasks whose lease expired (dead-lettering poison tasks).
    pub async fn reap(&self) -> Result<ReapReport> {
        let now = Timestamp::now();
        let mut rep = ReapReport::default();
        let max = self.cfg.max_attempts;
        for id in self.backend.expired_leases(now, 256).await? {
            let (t, changed) = match self.update(&id, |t| Ok(t.expire_lease(max, now))).await {
                Ok(x) => x,
                Err(Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if !changed {
                continue;
            }
            match t.status {
                TaskStatus::Queued => rep.requeued.push(id),
                TaskStatus::Cancelled => rep.cancelled.push(id),
                _ => rep.dead_lettered.push(id),
            }
            self.drop_secret_if_done(&t).await?;
        }
        Ok(rep)
    }

    /// Deletes terminal tasks past their TTL and expired idempotency keys, and
    /// cancels pending approvals past their window. With `dry_run` it only lists them. `on_delete` runs for each task before it is
    /// deleted (the caller removes its results directory there).
    pub async fn housekeep(
        &self,
        dry_run: bool,
        mut on_delete: impl FnMut(&Task),
    ) -> Result<HousekeepReport> {
        let now = Timestamp::now();
        let shortest = if self.cfg.completed_ttl < self.cfg.other_ttl {
            self.cfg.completed_ttl
        } else {
            self.cfg.other_ttl
        };
        let mut rep = HousekeepReport {
            dry_run,
            ..HousekeepReport::default()
        };
        for id in self.backend.finished_before(now - shortest, 10_000).await? {
            let Some(t) = self.backend.load(id.clone()).await? else {
                continue;
            };
            let ttl = if t.status == TaskStatus::Completed {
                self.cfg.completed_ttl
            } else {
                self.cfg.other_ttl
            };
            if !t.status.is_terminal() || t.completed_at.is_none_or(|c| c + ttl > now) {
                continue;
            }
            if !dry_run {
                on_delete(&t);
                self.backend.delete(id.clone()).await?;
            }
            rep.tasks.push((id, t.status));
        }
        rep.approvals_expired = self
            .expire_approvals(now, dry_run)
            .await?
            .into_iter()
            .map(|t| t.task_id)
            .collect();
        let audit_before = now - self.cfg.audit_ttl;
        if dry_run {
            rep.audit_events = self.backend.count_audit_before(audit_before).await?;
        } else {
            rep.idempotency_keys = self.backend.purge_idempotency(now).await?;
            rep.audit_events = self.backend.purge_audit_before(audit_before).await?;
        }
        Ok(rep)
    }

    /// Records an audit event, its fields capped to their documented lengths. An
    /// error is returned, never swallowed: the caller decides whether an action
    /// whose trail could not be written may go ahead.
    pub async fn audit(&self, event: AuditEvent) -> Result<()> {
        if event.principal.trim().is_empty() {
            return Err(Error::invalid(
                "principal",
                "an audit event needs a principal",
            ));
        }
        self.backend.append_audit(event.capped()).await
    }

    /// Newest-first page of audit events (limit 1-1000, default 50).
    pub async fn audit_list(&self, mut q: AuditQuery) -> Result<AuditPage> {
        q.validate()?;
        q.limit = if q.limit == 0 { 50 } else { q.limit.min(1000) };
        self.backend.list_audit(q).await
    }

    async fn finish(&self, task_id: &str, f: impl FnMut(&mut Task) -> Result<()>) -> Result<Task> {
        let t = self.update(task_id, f).await?.0;
        self.drop_secret_if_done(&t).await?;
        Ok(t)
    }

    async fn drop_secret_if_done(&self, t: &Task) -> Result<()> {
        if t.has_adhoc_credentials && t.status.is_terminal() {
            self.backend.delete_secret(t.task_id.clone()).await?;
        }
        Ok(())
    }

    /// Load → pure transition → compare-and-set, retried on lost races.
    async fn update<T>(
        &self,
        task_id: &str,
        mut f: impl FnMut(&mut Task) -> Result<T>,
    ) -> Result<(Task, T)> {
        for _ in 0..RETRIES {
            let prev = self
                .backend
                .load(task_id.to_owned())
                .await?
                .ok_or_else(|| Error::NotFound {
                    task_id: task_id.to_owned(),
                })?;
            let mut next = prev.clone();
            let out = f(&mut next)?;
            if next == prev {
                return Ok((prev, out));
            }
            next.version = prev.version + 1;
            let entered = prev.status != next.status;
            if self.backend.store(prev, next.clone()).await? {
                if entered {
                    self.raise_events(&next).await?;
                }
                return Ok((next, out));
            }
            tokio::task::yield_now().await;
        }
        Err(Error::Contention {
            task_id: task_id.to_owned(),
        })
    }
}
