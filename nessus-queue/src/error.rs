//! The crate's single error type.

use std::fmt;

/// Boxed source error kept opaque so dependency types never leak into our API.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which storage backend reported a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendKind {
    /// The embedded SQLite backend.
    Sqlite,
    /// The Redis backend.
    Redis,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "sqlite",
            Self::Redis => "redis",
        })
    }
}

/// Everything that can go wrong in the queue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task with this id exists.
    #[error("Task {task_id} not found")]
    NotFound {
        /// The id that was looked up.
        task_id: String,
    },
    /// The state machine refused a transition.
    #[error("Invalid transition: {from} → {to}")]
    InvalidTransition {
        /// State the task is in.
        from: String,
        /// State that was requested.
        to: String,
    },
    /// The caller's lease is gone or was superseded (fencing token mismatch).
    #[error("lease lost for task {task_id}: token {token} is no longer current")]
    LeaseLost {
        /// The task.
        task_id: String,
        /// The stale token the caller presented.
        token: u64,
    },
    /// The idempotency key was already used with different request parameters.
    #[error(
        "Idempotency key '{key}' exists with different request parameters. Use a different key or match the original request."
    )]
    IdempotencyConflict {
        /// The caller's key.
        key: String,
    },
    /// A request argument is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which argument.
        field: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// The principal already has as many queued tasks in the pool as the queue
    /// allows (`QueueConfig::max_queued_per_principal`). Nothing was stored.
    #[error(
        "principal {principal} already has {limit} queued tasks in this pool, the most allowed; wait for some to start"
    )]
    QuotaExceeded {
        /// The principal.
        principal: String,
        /// The limit in force.
        limit: u64,
    },
    /// Too many concurrent writers changed the same task; the write was not applied.
    #[error("task {task_id} kept changing under concurrent writers; giving up after retries")]
    Contention {
        /// The task.
        task_id: String,
    },
    /// The backend refused to start because its configuration is unsafe.
    #[error("{backend} backend refused to start: {reason}")]
    UnsafeBackend {
        /// Which backend.
        backend: BackendKind,
        /// Why.
        reason: String,
    },
    /// A storage operation failed (I/O, connection, corruption).
    #[error("{backend} backend error during {op}")]
    Backend {
        /// Which backend.
        backend: BackendKind,
        /// The operation that failed.
        op: &'static str,
        /// Whether retrying later may succeed (connection loss, busy database).
        retryable: bool,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
    /// Sealing or opening a secret failed.
    #[error("secret store: {reason}")]
    Secret {
        /// What went wrong (never contains secret material).
        reason: String,
    },
    /// A stored record could not be decoded.
    #[error("corrupt stored record for {what}")]
    Corrupt {
        /// Which record.
        what: String,
        /// The decode error.
        #[source]
        source: BoxError,
    },
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Backend {
                retryable: true,
                ..
            } | Self::Contention { .. }
        )
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}

/// Crate result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
