//! The crate's single error type.

use std::path::PathBuf;

use crate::targets::TargetRefusal;

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error `nessus-core` returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- Configuration, target policy, scanner availability -----
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The config is invalid; `line` and `column` (1-based) point at the culprit when
    /// known.
    #[error("{}: {message}", config_location(origin, *line, *column))]
    Config {
        /// The file name, or `<config>` for text.
        origin: String,
        /// 1-based line.
        line: Option<u64>,
        /// 1-based column.
        column: Option<u64>,
        /// What is wrong (never a secret value).
        message: String,
    },

    /// Some scan targets are outside the pool's target policy; nothing was sent to
    /// Nessus.
    #[error("pool {pool}: {refusal}")]
    TargetsRefused {
        /// The pool whose policy refused them.
        pool: String,
        /// Every refused target with its reason.
        refusal: TargetRefusal,
    },

    /// The scanner's circuit breaker is open; wait `retry_after` or use another
    /// scanner. Transient: never a reason to fail a task.
    #[error("scanner {instance} is unavailable (circuit breaker open); next probe in {:.1}s", retry_after.as_secs_f64())]
    CircuitOpen {
        /// The instance key (`pool:instance_id`).
        instance: String,
        /// Time until the breaker lets a probe through.
        retry_after: std::time::Duration,
    },
}

fn config_location(origin: &str, line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{origin}:{l}:{c}"),
        (Some(l), None) => format!("{origin}:{l}"),
        _ => origin.to_owned(),
    }
}
