//! Opening what a service needs: the backend the config (or an override) names, the
//! secret box for ad-hoc credentials, and the results directory. The server and every
//! CLI command open through here, so they agree on file names and precedence.

use std::path::{Path, PathBuf};

use nessus_core::{BackendConfig, Config};
use secrecy::{ExposeSecret, SecretString};

use crate::directory::ConfigDirectory;
use crate::error::{Error, Result};
use crate::queue::{Queue, QueueConfig};
use crate::redis_con::RedisTopology;
use crate::results_dir::ResultsDir;
use crate::secret::SecretBox;

use super::Service;

/// File name of the SQLite queue inside a data directory (the config default too).
pub const SQLITE_FILE: &str = "queue.sqlite3";
/// File name of the secret key inside a data directory.
pub const SECRET_KEY_FILE: &str = "secret.key";

/// Whether a missing SQLite file may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Missing {
    /// The server, workers and imports write to the configured queue.
    #[default]
    Create,
    /// Admin reads: a missing file means a wrong path, not an empty queue.
    Refuse,
}

/// Overrides of the config's locations (the CLI's `--data-dir` and `--redis-url`).
///
/// Precedence: `redis_url`, then `data_dir` (SQLite `{dir}/queue.sqlite3`, results
/// `{dir}/results`, key `{dir}/secret.key`), then the config.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenOptions {
    data_dir: Option<PathBuf>,
    redis_url: Option<SecretString>,
    missing: Missing,
    results_options: Vec<(String, SecretString)>,
}

impl OpenOptions {
    /// The config's locations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Use this data directory instead of the config's.
    #[must_use]
    pub fn data_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.data_dir = dir;
        self
    }

    /// Use this Redis queue instead of the config's backend.
    #[must_use]
    pub fn redis_url(mut self, url: Option<SecretString>) -> Self {
        self.redis_url = url;
        self
    }

    /// What to do when the SQLite file does not exist.
    #[must_use]
    pub fn missing(mut self, missing: Missing) -> Self {
        self.missing = missing;
        self
    }

    /// Settings of the results object store that override its environment variables
    /// (same names, e.g. `AWS_ENDPOINT`, `AWS_SECRET_ACCESS_KEY`): for embedders and
    /// tests that must not change the process environment.
    #[must_use]
    pub fn results_options(mut self, options: Vec<(String, SecretString)>) -> Self {
        self.results_options = options;
        self
    }

    /// The results cache directory in force (`{data_dir}/results-cache` with a data
    /// directory override, else the config's `server.results_cache_dir`).
    pub fn results_cache_for(&self, config: &Config) -> PathBuf {
        match &self.data_dir {
            Some(dir) => dir.join("results-cache"),
            None => config.server().results_cache_dir().to_owned(),
        }
    }

    /// The data directory in force.
    pub fn data_dir_for<'a>(&'a self, config: &'a Config) -> &'a Path {
        self.data_dir
            .as_deref()
            .unwrap_or_else(|| config.server().data_dir())
    }

    /// The results directory in force.
    pub fn results_for(&self, config: &Config) -> ResultsDir {
        match &self.data_dir {
            Some(dir) => ResultsDir::new(dir.join("results")),
            None => ResultsDir::new(config.server().results_dir()),
        }
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

impl Service {
    /// Opens the queue, the secret box and the results directory for `config`.
    pub async fn open(config: Config, opts: OpenOptions) -> Result<Self> {
        let settings = ConfigDirectory::queue_config(&config);
        let queue = open_queue(&config, &opts, settings)
            .await?
            .with_webhooks(crate::hooks::Webhooks::from_config(&config)?);
        let data_dir = opts.data_dir_for(&config).to_owned();
        let queue = match opts.missing {
            // Creating the key is a write: an admin read of someone else's data
            // directory must not leave a fresh key behind.
            Missing::Refuse
                if std::env::var_os(crate::secret::KEY_ENV).is_none()
                    && !data_dir.join(SECRET_KEY_FILE).is_file() =>
            {
                queue
            }
            _ => {
                std::fs::create_dir_all(&data_dir)
                    .map_err(io(format!("cannot create {}", data_dir.display())))?;
                queue.with_secrets(SecretBox::from_env_or_file(
                    &data_dir.join(SECRET_KEY_FILE),
                )?)
            }
        };
        let results = opts.results_for(&config);
        let remote = match config.server().results_url() {
            Some(url) => {
                let store = crate::results_store::ResultsStore::open(url, &opts.results_options)?;
                Some(crate::results_store::ResultsCache::new(
                    std::sync::Arc::new(store),
                    opts.results_cache_for(&config),
                    config.server().results_cache_max_bytes(),
                )?)
            }
            None => None,
        };
        let service = Self::new(config, queue, results);
        Ok(match remote {
            Some(cache) => service.with_results_cache(cache),
            None => service,
        })
    }
}

async fn open_queue(config: &Config, opts: &OpenOptions, settings: QueueConfig) -> Result<Queue> {
    if let Some(url) = &opts.redis_url {
        return Queue::redis(url.expose_secret(), settings).await;
    }
    if let Some(dir) = &opts.data_dir {
        return sqlite(&dir.join(SQLITE_FILE), settings, opts.missing);
    }
    match config.queue().backend() {
        BackendConfig::Sqlite { path } => sqlite(path, settings, opts.missing),
        BackendConfig::Redis { url } => Queue::redis(url.secret().expose_secret(), settings).await,
        BackendConfig::RedisSentinel {
            sentinels,
            master,
            master_password,
        } => {
            let topology = RedisTopology::Sentinel {
                sentinels: sentinels.iter().map(|s| s.secret().clone()).collect(),
                master: master.clone(),
                master_password: master_password.as_ref().map(|p| p.secret().clone()),
            };
            Queue::redis_topology(&topology, settings).await
        }
        BackendConfig::RedisCluster { nodes } => {
            let topology =
                RedisTopology::Cluster(nodes.iter().map(|n| n.secret().clone()).collect());
            Queue::redis_topology(&topology, settings).await
        }
        other => Err(Error::invalid(
            "queue.backend",
            format!("unsupported queue backend {other:?}"),
        )),
    }
}

fn sqlite(db: &Path, settings: QueueConfig, missing: Missing) -> Result<Queue> {
    if !db.is_file() {
        if missing == Missing::Refuse {
            return Err(Error::NoQueueDatabase {
                path: db.to_owned(),
            });
        }
        if let Some(parent) = db.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("cannot create {}", parent.display())))?;
        }
    }
    Queue::sqlite(db, settings)
}
