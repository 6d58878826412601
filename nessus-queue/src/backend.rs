//! The storage contract both backends implement, and the index bookkeeping they share.

use futures::future::BoxFuture;
use jiff::Timestamp;

use crate::audit::{AuditEvent, AuditPage, AuditQuery};
use crate::error::{BackendKind, Result};
use crate::schedule::Schedule;
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
    /// False while the instance's circuit breaker refuses calls: the claim then
    /// places nothing on it (a task pinned to it stays queued). Filled by the claim
    /// builder from `CircuitBreaker::is_available`.
    pub available: bool,
}

impl InstanceCapacity {
    /// An available instance with `max_concurrent` slots.
    pub fn new(instance: impl Into<String>, max_concurrent: u32) -> Self {
        Self {
            instance: instance.into(),
            max_concurrent,
            available: true,
        }
    }

    /// Sets breaker availability.
    #[must_use]
    pub fn with_available(mut self, available: bool) -> Self {
        self.available = available;
        self
    }
}

/// The one placement rule of every backend: `nessus_core::select_instance` over the
/// claim's load snapshot (`active` = live slots counted by the backend in the same
/// transaction or, on Redis, re-checked by the compare-and-set's capacity
/// precondition). `None`: the task cannot be placed now and stays queued — whether
/// the instances are full, their breakers open, or the pin names an instance this
/// worker does not serve.
pub(crate) fn place(
    task: &Task,
    instances: &[InstanceCapacity],
    active: &[u32],
) -> Option<(String, u32)> {
    let loads: Vec<nessus_core::InstanceLoad> = instances
        .iter()
        .zip(active)
        .map(|(i, a)| {
            nessus_core::InstanceLoad::new(i.instance.clone(), *a, i.max_concurrent)
                .with_available(i.available)
        })
        .collect();
    let chosen = nessus_core::select_instance(&loads, task.pinned_instance.as_deref()).ok()?;
    Some((chosen.instance_id.clone(), chosen.max_concurrent))
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
    /// Only tasks of this principal, filtered in the index: pages are full and
    /// cursors only ever carry this principal's keys.
    pub principal: Option<String>,
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
    /// Tasks waiting for an admin's approval (never claimed until approved).
    pub pending_approval: u64,
}

/// One principal's share of a pool, and everyone else's (see
/// [`Backend::principal_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrincipalCounts {
    /// The principal's waiting tasks.
    pub queued: u64,
    /// The principal's tasks holding a live lease.
    pub running: u64,
    /// Everyone else's waiting tasks.
    pub others_queued: u64,
    /// Everyone else's tasks holding a live lease.
    pub others_running: u64,
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
pub trait Backend: crate::findings::FindingsBackend + Send + Sync + 'static {
    /// Which implementation this is.
    fn kind(&self) -> BackendKind;

    /// Stores a new queued task (version becomes 1), enqueues it, stores the sealed
    /// secret if any, and reserves the idempotency key — all or nothing. If the key is
    /// already reserved and not expired, nothing is written and `Existing` is returned
    /// (before the quota is looked at: a replay never counts against it). If the
    /// task's principal already has `max_queued` queued tasks in the task's pool,
    /// nothing is written and the result is [`Error::QuotaExceeded`](crate::Error).
    fn create(
        &self,
        task: Task,
        idem: Option<IdemReservation>,
        sealed_secret: Option<Vec<u8>>,
        max_queued: u64,
    ) -> BoxFuture<'_, Result<CreateOutcome>>;

    /// Drops an idempotency reservation (used when it points at a purged task).
    fn drop_idempotency(&self, pool: String, scope_key: String) -> BoxFuture<'_, Result<()>>;

    /// Loads a task.
    fn load(&self, task_id: String) -> BoxFuture<'_, Result<Option<Task>>>;

    /// Replaces `prev` with `next` if the stored version still equals `prev.version`;
    /// `next.version` must be `prev.version + 1`. Returns `false` on a lost race.
    fn store(&self, prev: Task, next: Task) -> BoxFuture<'_, Result<bool>>;

    /// Atomically claims a task of the first pool (in request order) that has one
    /// claimable: within a pool, the oldest placeable task of the principal with the
    /// fewest running tasks there (ties: the principal whose oldest queued task is
    /// older), placed by the one rule ([`InstanceCapacity`], breaker-aware) and
    /// honouring pins and per-instance capacity.
    fn claim(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<Task>>>;

    /// Ids of running tasks whose lease expired before `now`.
    fn expired_leases(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Newest-first page of tasks.
    fn list(&self, query: ListQuery) -> BoxFuture<'_, Result<Page>>;

    /// 1-based position of a queued task in its pool's claim order (the fair order
    /// of [`Backend::claim`], modelled by [`fair_ahead`]).
    fn queue_position(&self, pool: String, task_id: String) -> BoxFuture<'_, Result<Option<u64>>>;

    /// First `n` task ids of a pool's queue, next to run first.
    fn queue_head(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// First `n` queued task ids of one principal in a pool, next to run first.
    fn queue_head_for(
        &self,
        pool: String,
        principal: String,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>>;

    /// One principal's queued and running counts in a pool, and everyone else's.
    fn principal_counts(
        &self,
        pool: String,
        principal: String,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<PrincipalCounts>>;

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

    /// Stores a schedule by compare-and-set: `prev_version` `None` inserts (fails if
    /// the id exists), `Some(v)` replaces the stored schedule only if its version is
    /// still `v` (`next.version` must be `v + 1`). The due index (`next_slot` of
    /// unpaused schedules) is updated in the same atomic step. `false`: lost race.
    fn store_schedule(
        &self,
        prev_version: Option<u64>,
        next: Schedule,
    ) -> BoxFuture<'_, Result<bool>>;

    /// Loads a schedule.
    fn load_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<Option<Schedule>>>;

    /// Every schedule (of one principal, or all), oldest first.
    fn list_schedules(&self, principal: Option<String>) -> BoxFuture<'_, Result<Vec<Schedule>>>;

    /// Ids of unpaused schedules whose `next_slot` is at or before `now`, earliest first.
    fn due_schedules(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Deletes a schedule and its due entry; returns whether it existed.
    fn delete_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<bool>>;

    // --- Webhook outbox (crate::hooks) -------------------------------------------

    /// Compare-and-set of one delivery (`prev_version` none: insert if absent).
    fn store_delivery(
        &self,
        prev_version: Option<u64>,
        next: crate::hooks::Delivery,
    ) -> BoxFuture<'_, Result<bool>>;

    /// One delivery.
    fn load_delivery(&self, id: String) -> BoxFuture<'_, Result<Option<crate::hooks::Delivery>>>;

    /// Ids of pending deliveries due at `now` (retry time and lease passed).
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Deliveries, newest first.
    fn list_deliveries(&self, limit: usize) -> BoxFuture<'_, Result<Vec<crate::hooks::Delivery>>>;
}

/// How many of another principal Q's queued tasks are claimed before task T, in the
/// fair order when nothing completes meanwhile (the model `queue_position` and the
/// ETA use). Claims go to the principal with the fewest running tasks, so each claim
/// raises that principal's "level" (running + already claimed) by one. T is the
/// `rank`-th (1-based) queued task of a principal P with `own_running` running, so
/// it is claimed at level L = own_running + rank − 1. Q's tasks claimed first are
/// those at levels below L — k = L − q_running of them (at most `q_queued`) — plus
/// the one at level L if it is older than T (ties go to the older head), i.e. if at
/// least k + 1 of Q's queued tasks are older than T. `q_older` is that count, and may
/// be capped at k + 1 by the caller. A Q whose running count is above L has
/// nothing ahead of T (see `fair_older_cap`).
pub fn fair_ahead(rank: u64, own_running: u64, q_queued: u64, q_running: u64, q_older: u64) -> u64 {
    let level = own_running + rank.saturating_sub(1);
    if q_running > level {
        // Q's first waiting task sits above T's level: T goes first.
        return 0;
    }
    let k = level - q_running;
    k.min(q_queued).max((k + 1).min(q_older))
}

/// How far a backend needs to count Q's queued tasks older than T for
/// [`fair_ahead`]: `None` when the answer does not depend on it (k ≥ q_queued).
pub(crate) fn fair_older_cap(
    rank: u64,
    own_running: u64,
    q_queued: u64,
    q_running: u64,
) -> Option<u64> {
    let level = own_running + rank.saturating_sub(1);
    let k = level.checked_sub(q_running)?;
    (k < q_queued).then_some(k + 1)
}

/// Fair claim order among the principals with queued tasks of a pool: fewest
/// running first, then the older head (smaller queue sequence), then the name.
pub(crate) fn fair_order(mut v: Vec<(String, u64, i64)>) -> Vec<String> {
    // (principal, running, head sequence)
    v.sort_by(|a, b| {
        a.1.cmp(&b.1)
            .then(a.2.cmp(&b.2))
            .then_with(|| a.0.cmp(&b.0))
    });
    v.into_iter().map(|(p, _, _)| p).collect()
}

/// Milliseconds since the epoch, the unit every index uses.
pub(crate) fn ms(t: Timestamp) -> i64 {
    t.as_millisecond()
}

/// Newest-first ordering key shared by both backends' listings and cursors.
pub(crate) fn order_key(t: &Task) -> String {
    format!("{:013}:{}", ms(t.created_at).max(0), t.task_id)
}

/// What a caller is told about a cursor this crate did not issue.
pub(crate) const CURSOR_HINT: &str = "pass next_cursor exactly as returned, or omit it";

/// Refuses a listing cursor that is not an order key (`{13-digit ms}:{id}`, see
/// [`order_key`] and `AuditEvent::order_key`) before any backend sees it: SQLite would
/// compare any string with `order_key < ?` and Redis would build `(cursor` from it, so a
/// typo or a forged value would silently return a wrong page. `id_ok` says which ids the
/// listing holds (task ids, audit event ids). The one check for every listing on both
/// backends.
pub(crate) fn check_cursor(cursor: Option<&str>, id_ok: fn(&str) -> bool) -> Result<()> {
    let Some(c) = cursor else {
        return Ok(());
    };
    let ok = c.len() <= crate::limits::CURSOR_MAX
        && c.split_once(':').is_some_and(|(ms, id)| {
            ms.len() == 13 && ms.bytes().all(|b| b.is_ascii_digit()) && id_ok(id)
        });
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(
            "cursor",
            format!("not a cursor this server issued; {CURSOR_HINT}"),
        ))
    }
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

#[cfg(test)]
mod tests {
    use super::fair_ahead;

    #[test]
    fn fair_ahead_cases() {
        // (rank, own_running, q_queued, q_running, q_older) → Q's tasks ahead of T.
        let cases = [
            (
                (1, 0, 500, 0, 500),
                1,
                "a newcomer waits for one older task of the flood",
            ),
            (
                (1, 0, 500, 0, 0),
                0,
                "Q's tasks are all newer: T's head wins the tie",
            ),
            (
                (3, 0, 500, 0, 500),
                3,
                "rank 3 waits for Q's levels 0, 1 and the older 2",
            ),
            ((3, 0, 1, 0, 1), 1, "Q has only one task"),
            ((1, 0, 5, 2, 5), 0, "Q already runs more than T's level"),
            (
                (1, 2, 5, 0, 5),
                3,
                "T's principal runs two: Q catches up first",
            ),
            ((2, 0, 5, 1, 0), 0, "same level, T older"),
        ];
        for ((r, own, qq, qr, qo), want, why) in cases {
            assert_eq!(fair_ahead(r, own, qq, qr, qo), want, "{why}");
        }
    }
}
