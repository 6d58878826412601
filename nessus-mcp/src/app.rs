//! Shared application state: the configuration and the libraries the tools
//! call into.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use nessus_core::Config;
use nessus_queue::{Queue, QueueConfig, Task};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::auth::Principal;

/// Everything a tool call needs, shared by all handler instances.
#[derive(Debug)]
pub struct App {
    started: Instant,
    shutdown: CancellationToken,
    /// Swapped as a whole on reload (SIGHUP), so a call sees one consistent config.
    config: RwLock<Arc<Config>>,
    queue: Queue,
    stores: Arc<crate::results::StoreCache>,
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

/// Queue tuning derived from the config file.
pub fn queue_config(config: &Config) -> QueueConfig {
    nessus_queue::ConfigDirectory::queue_config(config)
}

impl App {
    /// Application state over a loaded config and an opened queue.
    pub fn new(config: Config, queue: Queue) -> Self {
        let import_dir = config.server().data_dir().join("import");
        Self {
            import_dir,
            started: Instant::now(),
            shutdown: CancellationToken::new(),
            config: RwLock::new(Arc::new(config)),
            queue,
            stores: Arc::default(),
        }
    }

    /// Open the queue the config names (SQLite file or Redis) and build the state.
    pub async fn open(config: Config) -> Result<Self, crate::Error> {
        let cfg = queue_config(&config);
        let data_dir = config.server().data_dir().to_owned();
        std::fs::create_dir_all(&data_dir).map_err(|e| crate::Error::Queue(Box::new(e)))?;
        let queue = match config.queue().backend() {
            nessus_core::BackendConfig::Sqlite { path } => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| crate::Error::Queue(Box::new(e)))?;
                }
                Queue::sqlite(path, cfg)
            }
            nessus_core::BackendConfig::Redis { url } => {
                use secrecy::ExposeSecret;
                Queue::redis(url.secret().expose_secret(), cfg).await
            }
            other => {
                return Err(crate::Error::Queue(
                    format!("unsupported queue backend {other:?}").into(),
                ));
            }
        }
        .map_err(|e| crate::Error::Queue(Box::new(e)))?;
        let secrets = nessus_queue::SecretBox::from_env_or_file(&data_dir.join("secret.key"))
            .map_err(|e| crate::Error::Queue(Box::new(e)))?;
        Ok(Self::new(config, queue.with_secrets(secrets)))
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
        // A poisoned lock only means a reload panicked mid-swap; the stored
        // Arc is still a complete config.
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replace the configuration (SIGHUP). In-flight calls keep the config they
    /// started with; running scans are untouched.
    pub fn reload(&self, config: Config) {
        let mut guard = self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *guard = Arc::new(config);
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

    /// The task queue.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// Open findings stores.
    pub(crate) fn stores(&self) -> Arc<crate::results::StoreCache> {
        self.stores.clone()
    }

    /// Whether `principal` may see `task`: its submitter, or the local operator
    /// (stdio), sees it; other principals get "not found".
    pub fn can_see(&self, principal: &Principal, task: &Task) -> bool {
        principal.as_str() == task.principal || *principal == Principal::local()
    }

    /// Check the backend (and report the scanners configured).
    pub async fn readiness(&self) -> Readiness {
        let config = self.config();
        let mut checks = Vec::new();
        let pool = config.server().default_pool().to_owned();
        let backend =
            tokio::time::timeout(Duration::from_secs(2), self.queue.queue_status(&pool)).await;
        let (ok, detail) = match backend {
            Ok(Ok(_)) => (true, None),
            Ok(Err(e)) => (false, Some(e.to_string())),
            Err(_) => (false, Some("no answer within 2 s".to_owned())),
        };
        metrics::gauge!(crate::telemetry::BACKEND_UP).set(if ok { 1.0 } else { 0.0 });
        checks.push(Check {
            name: format!("backend ({:?})", self.queue.backend().kind()),
            ok,
            detail,
        });
        let instances = config.instances().count();
        checks.push(Check {
            name: "scanners configured".to_owned(),
            ok: instances > 0,
            detail: Some(format!(
                "{instances} instance(s) in {} pool(s)",
                config.pools().len()
            )),
        });
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
            if let Ok(s) = self.queue.queue_status(pool).await {
                let name = pool.to_owned();
                metrics::gauge!(crate::telemetry::POOL_QUEUE_DEPTH, "pool" => name.clone())
                    .set(s.queue_depth as f64);
                metrics::gauge!(crate::telemetry::POOL_RUNNING, "pool" => name.clone())
                    .set(s.running as f64);
                metrics::gauge!(crate::telemetry::POOL_DLQ_DEPTH, "pool" => name)
                    .set(s.dlq_size as f64);
            }
        }
    }
}
