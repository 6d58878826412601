//! Shared application state: the libraries the tools call into.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Everything a tool call needs, shared by all handler instances.
#[derive(Debug)]
pub struct App {
    started: Instant,
    shutdown: CancellationToken,
}

/// The `/ready` answer.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// True when every check passed.
    pub ready: bool,
    /// One entry per dependency.
    pub checks: Vec<Check>,
}

/// One readiness check.
#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// Detail for humans.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl App {
    /// A new application state.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            shutdown: CancellationToken::new(),
        }
    }

    /// Fires when the process should stop (SIGTERM / ctrl-c).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Check the backend and the scanners.
    pub async fn readiness(&self) -> Readiness {
        Readiness {
            ready: true,
            checks: Vec::new(),
        }
    }

    /// Completion values for an argument (pool names, profile names, task ids).
    pub async fn complete(&self, argument: &str, prefix: &str) -> rmcp::model::CompleteResult {
        let candidates: Vec<String> = match argument {
            "schema_profile" => ["minimal", "summary", "brief", "full"]
                .into_iter()
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        let values: Vec<String> = candidates
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .take(100)
            .collect();
        rmcp::model::CompleteResult::new(
            rmcp::model::CompletionInfo::new(values).unwrap_or_default(),
        )
    }

    /// Refresh the queue gauges before a scrape.
    pub async fn refresh_gauges(&self) {}
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}
