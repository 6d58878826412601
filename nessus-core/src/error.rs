//! The crate's single error type.
//!
//! Variants are grouped by where the failure comes from: talking to Nessus (HTTP status,
//! capability, transport, decoding), the scan lifecycle (exports, lookups by name), and
//! local inputs (client configuration, credentials, files). Dependency error types never
//! appear in a public variant; they are kept as opaque boxed sources.

use std::{path::PathBuf, time::Duration};

use crate::targets::TargetRefusal;

/// A boxed error from a dependency, kept only as a `source()` for diagnostics.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong below HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// The TCP or TLS connection could not be established (refused, unreachable, bad
    /// certificate). The request was never sent.
    Connect,
    /// The request or the response did not complete in time.
    Timeout,
    /// The connection broke after the request may have been sent (reset, closed early,
    /// truncated body). For a write the outcome is unknown.
    Interrupted,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Connect => "could not connect",
            Self::Timeout => "timed out",
            Self::Interrupted => "connection interrupted",
        })
    }
}

/// Every error `nessus-core` returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ----- Nessus answered, but not with success -----
    /// Nessus answered with an error status. `message` is Nessus's own `error` text when
    /// the body had one.
    #[error("Nessus returned HTTP {status} for {endpoint}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// Method and path, e.g. `GET /scans/42`.
        endpoint: String,
        /// Nessus's `{"error": ...}` message, or a short description of the body.
        message: String,
        /// The server's `Retry-After`, when it sent one (429/503).
        retry_after: Option<Duration>,
    },

    /// HTTP 412 "API is not available": the licence has `scan_api: false` (Nessus
    /// Essentials, Professional, Expert), so scan control through the API is refused.
    #[error(
        "the scan API is disabled on this Nessus license ({endpoint} answered 412 \"API is not \
         available\"); use Nessus Manager, or configure the web-UI token auth mode"
    )]
    ScanApiDisabled {
        /// Method and path of the refused call.
        endpoint: String,
    },

    /// Nessus refused the credentials (bad API keys, wrong password, or a session that
    /// could not be renewed).
    #[error("Nessus rejected the credentials for {endpoint}: {message}")]
    Unauthorized {
        /// Method and path of the refused call.
        endpoint: String,
        /// Nessus's own message, e.g. `Invalid Credentials`.
        message: String,
    },

    /// The request did not get an HTTP answer.
    #[error("{endpoint}: {kind}")]
    Transport {
        /// Method and path of the call.
        endpoint: String,
        /// What failed.
        kind: TransportKind,
        /// The underlying error.
        #[source]
        source: BoxError,
    },

    /// Nessus answered 200 but the body did not have the expected shape.
    #[error("unexpected response body from {endpoint}: {reason}")]
    Decode {
        /// Method and path of the call.
        endpoint: String,
        /// What was wrong with the body.
        reason: String,
    },

    /// The server's clock could not be read: its `Date` header was missing or not an
    /// HTTP date.
    #[error("cannot read the server clock from {endpoint}: {reason}")]
    ServerClock {
        /// Method and path of the call.
        endpoint: String,
        /// What was wrong with the header.
        reason: String,
    },

    // ----- Scan lifecycle -----
    /// A named object (template, folder, scanner, scan) does not exist on this Nessus.
    #[error("{kind} {name:?} not found on this Nessus{}", available_hint(.available))]
    NotFound {
        /// What was looked up, e.g. `scan template`.
        kind: &'static str,
        /// The name or id asked for.
        name: String,
        /// Names that do exist (may be empty).
        available: Vec<String>,
    },

    /// Nessus reported the export as failed (`status: error`) or lost it (404).
    #[error("export {file} of scan {scan_id} failed: {reason}")]
    ExportFailed {
        /// Scan id.
        scan_id: u64,
        /// Opaque export file id.
        file: String,
        /// What Nessus said.
        reason: String,
    },

    /// The export was still not ready when polling gave up.
    #[error("export {file} of scan {scan_id} was not ready after {waited:?}")]
    ExportTimeout {
        /// Scan id.
        scan_id: u64,
        /// Opaque export file id.
        file: String,
        /// How long we polled.
        waited: Duration,
    },

    /// The download exceeded the configured size cap; the partial file was removed.
    #[error("export download exceeded the size cap of {limit} bytes")]
    ExportTooLarge {
        /// The cap in bytes.
        limit: u64,
    },

    // ----- Local inputs -----
    /// The client could not be built from the given settings.
    #[error("invalid Nessus client configuration: {reason}")]
    ClientConfig {
        /// What was wrong.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// Scan credentials are incomplete or inconsistent.
    #[error("invalid scan credentials: {reason}")]
    InvalidCredentials {
        /// What was wrong (never contains a secret).
        reason: String,
    },

    /// Reading or writing a local file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What we were doing, e.g. `writing export to`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    // ----- Configuration, target policy, scanner availability (config/targets/breaker) -----
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
    #[error(
        "scanner {instance} is unavailable (circuit breaker open); next probe in {:.1}s",
        retry_after.as_secs_f64()
    )]
    CircuitOpen {
        /// The instance key (`pool:instance_id`).
        instance: String,
        /// Time until the breaker lets a probe through.
        retry_after: Duration,
    },

    // ----- Simulator (feature `sim`) -----
    /// The simulator could not start.
    #[error("Nessus simulator: {reason}")]
    Simulator {
        /// What failed.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },
}

fn config_location(origin: &str, line: Option<u64>, column: Option<u64>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{origin}:{l}:{c}"),
        (Some(l), None) => format!("{origin}:{l}"),
        _ => origin.to_owned(),
    }
}

fn available_hint(available: &[String]) -> String {
    if available.is_empty() {
        String::new()
    } else {
        format!(" (available: {})", available.join(", "))
    }
}

impl Error {
    /// Whether repeating the same call later may succeed: throttling (429), server
    /// trouble (500, 502, 503, 504), timeouts and broken connections.
    ///
    /// This says nothing about whether repeating is *safe*: the client only retries
    /// idempotent calls by itself; for a scan create or launch that failed with a
    /// retryable error the caller must first check whether it happened (find the scan by
    /// name) before trying again.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Self::Transport { .. } | Self::ExportTimeout { .. } | Self::CircuitOpen { .. } => true,
            _ => false,
        }
    }

    /// Whether the request may have taken effect even though it failed: the connection
    /// broke or timed out after the request could have reached Nessus.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            Self::Transport {
                kind: TransportKind::Timeout | TransportKind::Interrupted,
                ..
            }
        )
    }

    /// The HTTP status Nessus answered with, if this error came from an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::ScanApiDisabled { .. } => Some(412),
            Self::Unauthorized { .. } => Some(401),
            _ => None,
        }
    }

    /// The delay the server asked for with `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            Self::CircuitOpen { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub(crate) fn client_config(reason: impl Into<String>) -> Self {
        Self::ClientConfig {
            reason: reason.into(),
            source: None,
        }
    }

    pub(crate) fn decode(endpoint: &str, reason: impl Into<String>) -> Self {
        Self::Decode {
            endpoint: endpoint.to_owned(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses() {
        let api = |status| Error::Api {
            status,
            endpoint: "GET /scans".into(),
            message: String::new(),
            retry_after: None,
        };
        for s in [429, 500, 502, 503, 504] {
            assert!(api(s).is_retryable(), "{s}");
        }
        for s in [400, 403, 404, 405, 409] {
            assert!(!api(s).is_retryable(), "{s}");
        }
        let disabled = Error::ScanApiDisabled {
            endpoint: "POST /scans".into(),
        };
        assert!(!disabled.is_retryable());
        assert!(
            disabled
                .to_string()
                .contains("the scan API is disabled on this Nessus license")
        );
    }
}
