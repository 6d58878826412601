//! Shared application state: the configuration and the libraries the tools
//! call into.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use nessus_core::Config;
use nessus_queue::service::{OpenOptions, Service};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Everything a tool call needs, shared by all handler instances: the service layer
/// (which owns every rule) and what only the transport needs.
#[derive(Debug)]
pub struct App {
    started: Instant,
    shutdown: CancellationToken,
    service: Service,
    /// Where `import_scan` may read `.nessus` files from.
    import_dir: std::path::PathBuf,
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
    /// Application state over an opened service.
    pub fn new(service: Service) -> Self {
        let import_dir = service.config().server().data_dir().join("import");
        Self {
            import_dir,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            service,
        }
    }

    /// Open the queue the config names (SQLite file or Redis) and build the state.
    pub async fn open(config: Config) -> Result<Self, crate::Error> {
        let service = Service::open(config, OpenOptions::new())
            .await
            .map_err(|e| crate::Error::Queue(Box::new(e)))?;
        Ok(Self::new(service))
    }

    /// Fires when the process should stop (SIGTERM / ctrl-c).
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Time since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.service.config()
    }

    /// Replace the configuration (SIGHUP). In-flight calls keep the config they
    /// started with; running scans are untouched.
    pub fn reload(&self, config: Config) {
        self.service.reload(config);
    }

    /// The service layer every tool calls.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// Let `import_scan` read files from `dir` (default: `{data_dir}/import`);
    /// paths outside it are refused.
    pub fn with_import_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.import_dir = dir.into();
        self
    }

    /// The directory `import_scan` reads files from.
    pub fn import_dir(&self) -> &std::path::Path {
        &self.import_dir
    }

    /// The task queue (for the embedded workers).
    pub fn queue(&self) -> &nessus_queue::Queue {
        self.service.queue()
    }

    /// Check the backend (and report the scanners configured).
    pub async fn readiness(&self) -> Readiness {
        let config = self.config();
        let mut checks = Vec::new();
        let pool = config.server().default_pool().to_owned();
        let backend =
            tokio::time::timeout(Duration::from_secs(2), self.queue().queue_status(&pool)).await;
        let (ok, detail) = match backend {
            Ok(Ok(_)) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("no answer within 2 s".to_owned())),
        };
        metrics::gauge!(crate::telemetry::BACKEND_UP).set(if ok { 1.0 } else { 0.0 });
        checks.push(Check {
            name: format!("backend ({:?})", self.queue().backend().kind()),
            ok,
            detail,
        });
        if let Some(store) = self.service.results_store() {
            // One HEAD of an object that cannot exist: a 404 proves the store answers
            // and accepts the credentials. The detail is the scrubbed error text.
            let answer = tokio::time::timeout(Duration::from_secs(2), store.check()).await;
            let (ok, detail) = match answer {
                Ok(Ok(())) => (true, None),
                Ok(Err(e)) => (false, Some(e.to_string())),
                Err(_) => (false, Some("no answer within 2 s".to_owned())),
            };
            checks.push(Check {
                name: "results store".to_owned(),
                ok,
                detail,
            });
        }
        let instances = config.instances().count();
        checks.push(Check {
            name: "scanners configured".to_owned(),
            ok: instances > 0,
            detail: Some(format!(
                "{instances} instance(s) in {} pool(s)",
                config.pools().len()
            )),
        });
        if instances > 0 {
            // The same probe as `nessus-cli scanners check` (reused for a few seconds):
            // ready means at least one scanner answers; the detail names the others.
            let probes = self.service.scanner_health(Duration::from_secs(2)).await;
            let down: Vec<String> = probes
                .iter()
                .filter(|p| !p.reachable)
                .map(|p| format!("{}:{}", p.pool, p.instance))
                .collect();
            checks.push(Check {
                name: "scanners reachable".to_owned(),
                ok: down.len() < probes.len(),
                detail: Some(if down.is_empty() {
                    format!("{} of {} answered", probes.len(), probes.len())
                } else {
                    format!(
                        "{} of {} answered; not answering: {}",
                        probes.len() - down.len(),
                        probes.len(),
                        down.join(", ")
                    )
                }),
            });
        }
        Readiness {
            ready: checks.iter().all(|c| c.ok),
            checks,
        }
    }

    /// Completion values for an argument (pool names, profile names).
    pub async fn complete(&self, argument: &str, prefix: &str) -> rmcp::model::CompleteResult {
        let candidates: Vec<String> = match argument {
            "schema_profile" => nessus_schema::Profile::names().map(str::to_owned).collect(),
            "scanner_pool" => self
                .config()
                .pool_names()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            "credential_profile" => self.config().credentials().keys().cloned().collect(),
            // The export-part template's {format}.
            "format" => nessus_schema::ExportFormat::NAMES
                .iter()
                .map(|s| (*s).to_owned())
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
    pub async fn refresh_gauges(&self) {
        let config = self.config();
        for pool in config.pool_names() {
            if let Ok(s) = self.queue().queue_status(pool).await {
                let name = pool.to_owned();
                metrics::gauge!(crate::telemetry::POOL_QUEUE_DEPTH, "pool" => name.clone())
                    .set(s.queue_depth as f64);
                metrics::gauge!(crate::telemetry::POOL_RUNNING, "pool" => name.clone())
                    .set(s.running as f64);
                metrics::gauge!(crate::telemetry::POOL_DLQ_DEPTH, "pool" => name)
                    .set(s.dlq_size as f64);
            }
        }
        if let Some(cache) = self.service.results_cache() {
            // Counts only: no label carries the URL or anything from the environment.
            let s = cache.stats();
            metrics::gauge!(crate::telemetry::RESULTS_CACHE_BYTES).set(s.bytes as f64);
            metrics::gauge!(crate::telemetry::RESULTS_CACHE_STORES).set(s.stores as f64);
            metrics::counter!(crate::telemetry::RESULTS_CACHE_FETCHES).absolute(s.fetches);
            metrics::counter!(crate::telemetry::RESULTS_CACHE_EVICTIONS).absolute(s.evictions);
        }
    }
}
