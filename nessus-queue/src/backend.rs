//! The storage contract both backends implement, and the index bookkeeping they share.

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::error::{BackendKind, Result};
use crate::task::{Task, TaskStatus};

/// An idempotency reservation made atomically with task creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdemReservation {
    /// Scoped lookup key: SHA-256 over principal and the caller's key (hex).
    pub scope_key: String,
    /// Fingerprint of what the caller sent.
    pub request_hash: String,
    /// When the reservation lapses.
    pub expires_at: Timestamp,
}

/// Result of [`Backend::create`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The task was stored and enqueued.
    Created(Box<Task>),
    /// The key was already reserved by a live reservation for this task id and hash.
    Existing {
        /// Task id the key points at.
        task_id: String,
        /// Hash stored with the key.
        request_hash: String,
    },
}

/// One scanner instance a worker may place a task on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceCapacity {
    /// Instance name within the pool.
    pub instance: String,
    /// Maximum scans it may run at once across all workers.
    pub max_concurrent: u32,
}

/// A worker's request for its next task.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    /// Worker identity recorded in the lease.
    pub worker_id: String,
    /// Pools in the order to try them (the caller rotates this for fairness).
    pub pools: Vec<(String, Vec<InstanceCapacity>)>,
    /// Lease length.
    pub lease_ttl: jiff::SignedDuration,
    /// Current time.
    pub now: Timestamp,
}

/// Filter and page for task listings (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this pool.
    pub pool: Option<String>,
    /// Only dead-lettered tasks.
    pub dead_lettered: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after this opaque cursor.
    pub cursor: Option<String>,
}

/// One page of tasks.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Tasks, newest first.
    pub tasks: Vec<Task>,
    /// Cursor for the next page, if there may be more.
    pub next_cursor: Option<String>,
}

/// Counts for one pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolCounts {
    /// Waiting tasks.
    pub queued: u64,
    /// Tasks holding a live lease.
    pub running: u64,
    /// Dead-lettered tasks.
    pub dead_lettered: u64,
}

/// What the view of a queued task needs, read together (see [`Backend::queue_snapshot`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSnapshot {
    /// 1-based position of the task in its pool's queue (`None`: not queued).
    pub position: Option<u64>,
    /// The pool's counts.
    pub counts: PoolCounts,
    /// Durations in seconds of the pool's most recent completed scans, newest first.
    pub recent_durations: Vec<f64>,
}

/// Storage for tasks. All methods are atomic on their own; `store` is a
/// compare-and-set on [`Task::version`] so that read → transition → store cycles
/// from many processes never lose an update.
pub trait Backend: Send + Sync + 'static {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// Stores a new queued task (version becomes 1), enqueues it, stores the sealed
    /// secret if any, and reserves the idempotency key — all or nothing. If the key is
    /// already reserved and not expired, nothing is written and `Existing` is returned.
    fn create(
        &self,
        task: Task,
        idem: Option<IdemReservation>,
        sealed_secret: Option<Vec<u8>>,
    ) -> BoxFuture<'_, Result<CreateOutcome>>;

    /// Drops an idempotency reservation (used when it points at a purged task).
    fn drop_idempotency(&self, pool: String, scope_key: String) -> BoxFuture<'_, Result<()>>;

    /// Loads a task.
    fn load(&self, task_id: String) -> BoxFuture<'_, Result<Option<Task>>>;

    /// Replaces `prev` with `next` if the stored version still equals `prev.version`;
    /// `next.version` must be `prev.version + 1`. Returns `false` on a lost race.
    fn store(&self, prev: Task, next: Task) -> BoxFuture<'_, Result<bool>>;

    /// Atomically claims the oldest claimable task of the first pool (in request
    /// order) with a free slot, honouring pins and per-instance capacity.
    fn claim(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<Task>>>;

    /// Ids of running tasks whose lease expired before `now`.
    fn expired_leases(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Newest-first page of tasks.
    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<Page>>;

    /// 1-based position of a queued task in its pool's queue.
    fn queue_position(&self, pool: String, task_id: String) -> BoxFuture<'_, Result<Option<u64>>>;

    /// First `n` task ids of a pool's queue, next to run first.
    fn queue_head(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Counts for a pool at `now`.
    fn pool_counts(&self, pool: String, now: Timestamp) -> BoxFuture<'_, Result<PoolCounts>>;

    /// Durations in seconds of the most recent completed scans of a pool (newest first).
    fn recent_durations(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<f64>>>;

    /// A queued task's position with its pool's counts and recent durations; what
    /// every submit and status call answers with. A backend may read it in one round
    /// trip (SQLite does: one read transaction instead of three hops to a connection);
    /// the default asks the three questions in turn. `durations` caps the list.
    fn queue_snapshot(
        &self,
        pool: String,
        task_id: String,
        now: Timestamp,
        durations: usize,
    ) -> BoxFuture<'_, Result<QueueSnapshot>> {
        Box::pin(async move {
            let position = self.queue_position(pool.clone(), task_id).await?;
            if position.is_none() {
                return Ok(QueueSnapshot::default());
            }
            Ok(QueueSnapshot {
                position,
                counts: self.pool_counts(pool.clone(), now).await?,
                recent_durations: self.recent_durations(pool, durations).await?,
            })
        })
    }

    /// The sealed secret of a task, if still stored.
    fn load_secret(&self, task_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>>>;

    /// Deletes a task's sealed secret (idempotent).
    fn delete_secret(&self, task_id: String) -> BoxFuture<'_, Result<()>>;

    /// Ids of terminal tasks that finished before `before`, oldest first.
    fn finished_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Deletes a task and everything indexed under it. Returns whether it existed.
    fn delete(&self, task_id: String) -> BoxFuture<'_, Result<bool>>;

    /// Deletes expired idempotency reservations; returns how many.
    fn purge_idempotency(&self, now: Timestamp) -> BoxFuture<'_, Result<u64>>;

    /// Stores one audit event (already capped by the caller), apart from the tasks:
    /// deleting a task never deletes its trail.
    fn append_audit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>>;

    /// Newest-first page of audit events passing every filter of `query` (filters
    /// apply before paging, so a page is short only at the end; `query.limit` ≥ 1).
    /// A backend that checks some filters row by row may bound the rows one call
    /// examines: then a short page still carries a cursor (Redis does, after 10 000).
    fn list_audit(&self, query: AuditQuery) -> BoxFuture<'_, Result<AuditPage>>;

    /// Audit events strictly older than `before` (what a purge would delete).
    fn count_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>>;

    /// Deletes audit events strictly older than `before`, with everything indexed
    /// under them; returns how many.
    fn purge_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>>;
}

/// Milliseconds since the epoch, the unit every index uses.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Newest-first ordering key shared by both backends' listings and cursors.
pub(crate) fn order_key(t: &Task) -> String {
    format!("{:013}:{}", ms(t.created_at).max(0), t.task_id)
}

/// Duration of a completed scan, for the ETA moving average.
pub(crate) fn duration_secs(t: &Task) -> Option<f64> {
    match (t.status, t.started_at, t.completed_at) {
        (TaskStatus::Completed, Some(s), Some(c)) => {
            Some((c.as_millisecond() - s.as_millisecond()).max(0) as f64 / 1000.0)
        }
        _ => None,
    }
}
