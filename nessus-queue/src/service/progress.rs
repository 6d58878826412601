//! How far a long call has got: a cheap handle the service fills while it works (off the
//! async runtime, in bytes for an import, in findings for an export plan) and a frontend
//! reads on its own clock (e.g. MCP `notifications/progress`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The shortest gap between two progress reports of one call (MCP clients render each
/// notification; more often than this is noise).
pub const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// Work done out of a total. Clones share the counters.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    done: Arc<AtomicU64>,
    /// 0 until the total is known (never, for an import from a reader of unknown length).
    total: Arc<AtomicU64>,
}

impl Progress {
    /// A new handle at 0 of an unknown total.
    pub fn new() -> Self {
        Self::default()
    }

    /// Work done so far (bytes read of an import's file, findings measured of an export).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The total once known.
    pub fn total(&self) -> Option<u64> {
        Some(self.total.load(Ordering::Relaxed)).filter(|&n| n > 0)
    }

    pub(crate) fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(&self, done: u64, total: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.total.store(total, Ordering::Relaxed);
    }

    pub(crate) fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
    }
}
