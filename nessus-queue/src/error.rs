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
    /// No schedule with this id exists (or the caller may not see it).
    #[error("Schedule {schedule_id} not found")]
    ScheduleNotFound {
        /// The id that was looked up.
        schedule_id: String,
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
    /// Targets outside the pool's target policy as configured now, or a pool that is no
    /// longer configured: refused at submit, at claim (the worker ends the task
    /// `target_not_allowed` before any Nessus request) and at DLQ retry.
    #[error("targets refused by pool {pool}: {reason}")]
    TargetsNotAllowed {
        /// The task's pool.
        pool: String,
        /// Every refused target with its reason, or why the pool cannot check them.
        reason: String,
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
    /// The request named a pool the config does not define.
    #[error("No enabled scanners in pool '{pool}'")]
    UnknownPool {
        /// The pool asked for.
        pool: String,
        /// The pools that exist.
        known: Vec<String>,
    },
    /// The request pinned an instance the pool does not have.
    #[error("Scanner not found: {pool}:{instance}")]
    ScannerNotFound {
        /// The pool.
        pool: String,
        /// The instance asked for.
        instance: String,
    },
    /// The request named a credential profile the config does not define.
    #[error("credential profile '{profile}' is not configured")]
    UnknownCredentialProfile {
        /// The profile asked for.
        profile: String,
        /// The profiles that exist.
        known: Vec<String>,
    },
    /// An authenticated scan came without usable credentials.
    #[error("{reason}")]
    InvalidCredentials {
        /// What is missing or wrong (never a secret value).
        reason: String,
    },
    /// An authenticated scan came with no credentials at all (neither a profile nor a
    /// username and password).
    #[error(
        "an authenticated scan needs credential_profile, or both ssh_username and ssh_password"
    )]
    MissingCredentials,
    /// A `.nessus` file sent inline with an import is larger than the inline limit.
    #[error("inline content is {actual} bytes; the limit is {limit}")]
    ImportTooLarge {
        /// Its size in bytes.
        actual: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A free-text field is longer than its limit.
    #[error("{field} is {actual} bytes; the limit is {limit}")]
    TooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        actual: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The principal may not do this (a pool it may not use, an authenticated scan it
    /// may not run).
    #[error("principal '{principal}' may not {what}")]
    Forbidden {
        /// Who asked.
        principal: String,
        /// What was refused.
        what: String,
    },
    /// The caller's access token lacks the scope this operation needs (OAuth callers
    /// only; the HTTP frontend answers it with 403 `insufficient_scope`).
    #[error("principal '{principal}' may not {what}: the access token lacks the {scope} scope")]
    InsufficientScope {
        /// Who asked.
        principal: String,
        /// What was refused.
        what: &'static str,
        /// The capability that would allow it.
        scope: crate::Scope,
    },
    /// Results were asked of a task that has not completed.
    #[error("Scan not completed yet (status: {status})")]
    NotCompleted {
        /// The task.
        task_id: String,
        /// Its status.
        status: String,
    },
    /// A completed task has no findings store (housekeeping removed it, or it was
    /// never ingested).
    #[error("Scan results not found")]
    ResultsNotFound {
        /// The task.
        task_id: String,
    },
    /// A results query or a findings store failed (bad filter, bad cursor, I/O).
    #[cfg(feature = "service")]
    #[error("{0}")]
    Query(#[source] nessus_schema::Error),
    /// The results profile named at submit is not one of the catalogue's.
    #[error("{message}")]
    InvalidProfile {
        /// The predecessor's message, listing the profiles.
        message: String,
    },
    /// A file given to import is not a `.nessus` export (or could not be read).
    #[error("cannot import the file: {reason}")]
    InvalidImport {
        /// Why.
        reason: String,
    },
    /// An import path names no file inside the import directory.
    #[error("'{path}' is not a file in the import directory")]
    ImportPathRefused {
        /// The path as given.
        path: String,
    },
    /// Imports from files are off: the import directory does not exist.
    #[error("the import directory does not exist")]
    ImportDisabled,
    /// An admin read named a SQLite queue that does not exist (a wrong data directory,
    /// not an empty queue).
    #[error("no queue database at {}", path.display())]
    NoQueueDatabase {
        /// The file looked for.
        path: std::path::PathBuf,
    },
    /// The results object store (`server.results_url`) failed. The reason is the
    /// store client's text with every known secret value scrubbed.
    #[error("{what}: {reason}")]
    ResultsStore {
        /// What was being done.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// File-system work around the results directory failed.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The stable `error_code` frontends report for this error (one spelling, owned
    /// here, so the MCP envelope and the CLI agree).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "task_not_found",
            Self::ScheduleNotFound { .. } => "schedule_not_found",
            Self::InvalidTransition { .. } => "invalid_state",
            Self::LeaseLost { .. } => "lease_lost",
            Self::IdempotencyConflict { .. } => "idempotency_conflict",
            Self::Invalid { .. } => "invalid_argument",
            Self::Contention { .. } => "busy",
            Self::UnknownPool { .. } => "unknown_pool",
            Self::ScannerNotFound { .. } => "scanner_not_found",
            Self::TargetsNotAllowed { .. } => "target_not_allowed",
            Self::UnknownCredentialProfile { .. } => "unknown_credential_profile",
            Self::InvalidCredentials { .. } => "invalid_credentials",
            Self::MissingCredentials => "missing_credentials",
            Self::ImportTooLarge { .. } => "content_too_large",
            Self::TooLong { .. } => "field_too_long",
            Self::Forbidden { .. } => "forbidden",
            Self::InsufficientScope { .. } => "insufficient_scope",
            Self::QuotaExceeded { .. } => "quota_exceeded",
            Self::NotCompleted { .. } => "not_completed",
            Self::ResultsNotFound { .. } => "results_not_found",
            #[cfg(feature = "service")]
            Self::Query(_) => "invalid_query",
            Self::InvalidProfile { .. } => "invalid_profile",
            Self::InvalidImport { .. } => "invalid_nessus_file",
            Self::ImportPathRefused { .. } => "path_not_allowed",
            Self::ImportDisabled => "import_disabled",
            Self::UnsafeBackend { .. }
            | Self::Backend { .. }
            | Self::Secret { .. }
            | Self::Corrupt { .. }
            | Self::NoQueueDatabase { .. }
            | Self::ResultsStore { .. }
            | Self::Io { .. } => "internal_error",
        }
    }

    /// Whether the caller's request was at fault (not the server).
    pub fn is_caller_error(&self) -> bool {
        self.code() != "internal_error" && !self.is_retryable()
    }

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

    /// A target-policy refusal from `nessus-core`, as this crate reports it (the
    /// refused targets and why, without the core error type).
    pub(crate) fn targets_refused(pool: &str, e: nessus_core::Error) -> Self {
        let reason = match e {
            nessus_core::Error::TargetsRefused { refusal, .. } => refusal.to_string(),
            other => other.to_string(),
        };
        Self::TargetsNotAllowed {
            pool: pool.to_owned(),
            reason,
        }
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
