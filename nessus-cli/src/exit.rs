//! Exit codes, and how an error maps to one.

use std::io;
use std::process::ExitCode;

/// Success.
pub(crate) const OK: u8 = 0;
/// A runtime failure that is not the input's fault (writing output, internal errors).
pub(crate) const RUNTIME: u8 = 1;
/// A usage error: bad flags or a bad profile, field list, filter, sort or cursor. clap's own
/// parse errors use the same code.
pub(crate) const USAGE: u8 = 2;
/// An input error: a missing or unreadable file, malformed or unsupported `.nessus`
/// content, or a corrupt findings store.
pub(crate) const INPUT: u8 = 3;

/// The named task does not exist (or is not in the dead-letter queue).
pub(crate) const NOT_FOUND: u8 = 4;
/// The operation is not allowed in the task's current state.
pub(crate) const CONFLICT: u8 = 5;
/// The target policy, a quota or the principal's rights refused it.
pub(crate) const REFUSED: u8 = 6;

/// The exit-code table shown at the end of `--help`.
pub(crate) const EXIT_CODES_HELP: &str = "Exit codes:
  0  success
  1  runtime failure (writing output, internal error, a scanner or backend not answering)
  2  usage error (bad flags, profile, fields, filter, sort or cursor; --config missing)
  3  input error (missing or unreadable file, malformed or unsupported .nessus, corrupt store,
     no queue database, invalid config file)
  4  not found (unknown task id)
  5  conflict (the task's state does not allow the operation)
  6  refused (outside the pool's target policy, an unknown pool, a quota, or not allowed)";

/// An error the CLI itself detected, tagged with its exit code.
#[derive(Debug)]
pub(crate) enum CliError {
    /// The arguments make no sense together.
    Usage(String),
    /// The input cannot be used.
    Input(String),
    /// The named object does not exist.
    NotFound(String),
    /// Something the command needs did not answer (a scanner, a backend).
    Unavailable(String),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Usage(message)
            | Self::Input(message)
            | Self::NotFound(message)
            | Self::Unavailable(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

/// Picks the exit code for an error by looking through its whole chain for the first
/// error whose kind is known.
pub(crate) fn code_for(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(cli) = cause.downcast_ref::<CliError>() {
            return match cli {
                CliError::Usage(_) => USAGE,
                CliError::Input(_) => INPUT,
                CliError::NotFound(_) => NOT_FOUND,
                CliError::Unavailable(_) => RUNTIME,
            };
        }
        if let Some(schema) = cause.downcast_ref::<nessus_schema::Error>() {
            return schema_code(schema);
        }
        if let Some(queue) = cause.downcast_ref::<nessus_queue::Error>() {
            return queue_code(queue);
        }
        if let Some(core) = cause.downcast_ref::<nessus_core::Error>() {
            return core_code(core);
        }
    }
    RUNTIME
}

fn schema_code(error: &nessus_schema::Error) -> u8 {
    use nessus_schema::Error as E;
    match error {
        E::UnknownField { .. }
        | E::InvalidFilter { .. }
        | E::InvalidQuery { .. }
        | E::InvalidCursor { .. } => USAGE,
        E::Empty
        | E::UnsupportedFormat { .. }
        | E::UnsupportedEncoding { .. }
        | E::Truncated { .. }
        | E::Malformed { .. }
        | E::Forbidden { .. }
        | E::RecordTooLarge { .. }
        | E::TooDeep { .. }
        | E::InvalidValue { .. }
        | E::Store { .. } => INPUT,
        _ => RUNTIME,
    }
}

fn queue_code(error: &nessus_queue::Error) -> u8 {
    use nessus_queue::Error as E;
    match error {
        E::NotFound { .. } | E::ScheduleNotFound { .. } => NOT_FOUND,
        E::InvalidTransition { .. } | E::IdempotencyConflict { .. } => CONFLICT,
        E::Invalid { .. }
        | E::TooLong { .. }
        | E::InvalidProfile { .. }
        | E::InvalidCredentials { .. }
        | E::MissingCredentials
        | E::ImportTooLarge { .. }
        | E::ImportPathRefused { .. }
        | E::Query(_) => USAGE,
        E::Corrupt { .. } | E::InvalidImport { .. } => INPUT,
        E::TargetsNotAllowed { .. }
        | E::UnknownPool { .. }
        | E::Forbidden { .. }
        | E::InsufficientScope { .. }
        | E::QuotaExceeded { .. } => REFUSED,
        _ => RUNTIME,
    }
}

fn core_code(error: &nessus_core::Error) -> u8 {
    use nessus_core::Error as E;
    match error {
        // A config that cannot be read or loaded is a bad input, like a bad .nessus.
        E::ConfigRead { .. } | E::Config { .. } => INPUT,
        _ => RUNTIME,
    }
}

/// Whether the error is only "the reader of stdout went away" (`nessus-cli convert | head`),
/// which is not a failure worth reporting.
pub(crate) fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Converts a code into the process exit code.
pub(crate) fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}
