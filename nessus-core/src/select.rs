//! Choosing the scanner instance for a task.
//!
//! Selection is a pure function of a load snapshot: the queue backend owns the real
//! active-slot counts (they span processes and hosts), so the caller passes them in.
//! This is the one placement rule: both `nessus-queue` backends call it inside their
//! claim (see that crate's notes, "Placement").

use std::cmp::Ordering;
use std::fmt;

/// What selection needs to know about one instance of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLoad {
    /// The instance id (unique within the pool).
    pub instance_id: String,
    /// Scans currently running on it.
    pub active: u32,
    /// Its `max_concurrent_scans`.
    pub max_concurrent: u32,
    /// When it was last given a scan, in any monotonic unit (e.g. Unix milliseconds);
    /// 0 means never.
    pub last_used: u64,
    /// False while its circuit breaker refuses calls
    /// ([`CircuitBreaker::is_available`](crate::CircuitBreaker::is_available)).
    pub available: bool,
}

impl InstanceLoad {
    /// An available, never-used instance with `active` of `max_concurrent` slots taken.
    pub fn new(instance_id: impl Into<String>, active: u32, max_concurrent: u32) -> Self {
        Self {
            instance_id: instance_id.into(),
            active,
            max_concurrent,
            last_used: 0,
            available: true,
        }
    }

    /// Sets the last-used stamp.
    #[must_use]
    pub fn with_last_used(mut self, last_used: u64) -> Self {
        self.last_used = last_used;
        self
    }

    /// Sets breaker availability.
    #[must_use]
    pub fn with_available(mut self, available: bool) -> Self {
        self.available = available;
        self
    }

    fn has_free_slot(&self) -> bool {
        self.active < self.max_concurrent
    }
}

/// Why no instance can take the task now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// The pool has no enabled instance. Permanent.
    EmptyPool,
    /// The pinned instance is not in the pool. Permanent.
    UnknownInstance {
        /// The requested instance id.
        instance_id: String,
    },
    /// Every candidate is at `max_concurrent_scans`. Wait.
    Busy,
    /// Every candidate with a free slot has an open breaker. Wait.
    BreakerOpen,
}

impl Unavailable {
    /// True when waiting cannot help (the task should fail with this reason).
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::EmptyPool | Self::UnknownInstance { .. })
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyPool => f.write_str("the pool has no enabled scanner"),
            Self::UnknownInstance { instance_id } => {
                write!(f, "scanner instance {instance_id:?} is not in the pool")
            }
            Self::Busy => f.write_str("every scanner of the pool is at its concurrency limit"),
            Self::BreakerOpen => {
                f.write_str("every scanner of the pool with a free slot is failing (breaker open)")
            }
        }
    }
}

impl std::error::Error for Unavailable {}

/// Picks the instance for the next scan of a pool.
///
/// Candidates have a free slot and an available breaker. Among them the least loaded
/// wins (lowest `active / max_concurrent`, then fewest active scans), then the least
/// recently used, then the smallest id, so ties are deterministic and idle scanners
/// are used round-robin. Unlike the predecessor it never over-subscribes a full
/// scanner: the caller waits instead. A `pinned` instance is used only if it can take
/// the scan now; it never falls back to another instance.
pub fn select_instance<'a>(
    pool: &'a [InstanceLoad],
    pinned: Option<&str>,
) -> Result<&'a InstanceLoad, Unavailable> {
    if pool.is_empty() {
        return Err(Unavailable::EmptyPool);
    }
    let candidates: Vec<&InstanceLoad> = match pinned {
        Some(id) => {
            let inst = pool.iter().find(|i| i.instance_id == id).ok_or_else(|| {
                Unavailable::UnknownInstance {
                    instance_id: id.to_owned(),
                }
            })?;
            vec![inst]
        }
        None => pool.iter().collect(),
    };
    let with_slot: Vec<&InstanceLoad> = candidates
        .into_iter()
        .filter(|i| i.has_free_slot())
        .collect();
    if with_slot.is_empty() {
        return Err(Unavailable::Busy);
    }
    with_slot
        .into_iter()
        .filter(|i| i.available)
        .min_by(|a, b| compare(a, b))
        .ok_or(Unavailable::BreakerOpen)
}

fn compare(a: &InstanceLoad, b: &InstanceLoad) -> Ordering {
    // a.active / a.max vs b.active / b.max without floating point.
    let load_a = u64::from(a.active) * u64::from(b.max_concurrent);
    let load_b = u64::from(b.active) * u64::from(a.max_concurrent);
    load_a
        .cmp(&load_b)
        .then(a.active.cmp(&b.active))
        .then(a.last_used.cmp(&b.last_used))
        .then_with(|| a.instance_id.cmp(&b.instance_id))
}
