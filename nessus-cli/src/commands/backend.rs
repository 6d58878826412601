//! Which queue backend and directories a command uses.
//!
//! Explicit flags (or their environment variables) win over the config: `--redis-url`,
//! then `--data-dir` (SQLite file `{dir}/queue.sqlite3`), then the config's `queue.backend`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use nessus_core::{BackendConfig, Config};
use nessus_queue::{ConfigDirectory, Queue, QueueConfig};
use secrecy::ExposeSecret;
use tokio::runtime::Runtime;

use crate::cli::GlobalArgs;
use crate::exit::CliError;

/// File name of the SQLite queue inside the data directory (the config default).
pub(crate) const SQLITE_FILE: &str = "queue.sqlite3";

/// Whether a missing SQLite file may be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    /// Admin commands read an existing queue: a missing file means a wrong path.
    Refuse,
    /// Workers and imports write to the configured queue, as the server would.
    Create,
}

/// A single-threaded runtime: admin commands make one call at a time.
pub(crate) fn current_thread() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The data directory: `--data-dir`, else the config's `server.data_dir`.
pub(crate) fn data_dir(global: &GlobalArgs, config: Option<&Config>) -> Option<PathBuf> {
    global
        .data_dir
        .clone()
        .or_else(|| config.map(|c| c.server().data_dir().to_owned()))
}

/// The results root: `{--data-dir}/results`, else the config's `server.results_dir`.
pub(crate) fn results_dir(global: &GlobalArgs, config: Option<&Config>) -> Option<PathBuf> {
    match (&global.data_dir, config) {
        (Some(dir), _) => Some(dir.join("results")),
        (None, Some(config)) => Some(config.server().results_dir().to_owned()),
        (None, None) => None,
    }
}

/// Queue settings: the config's TTLs and pool capacities, else the defaults.
pub(crate) fn queue_config(config: Option<&Config>) -> QueueConfig {
    config.map_or_else(QueueConfig::default, ConfigDirectory::queue_config)
}

/// Opens the queue the flags or the config name.
pub(crate) fn open_queue(
    rt: &Runtime,
    global: &GlobalArgs,
    config: Option<&Config>,
    missing: Missing,
) -> anyhow::Result<Queue> {
    let settings = queue_config(config);
    if let Some(url) = &global.redis_url {
        return redis(rt, url, settings);
    }
    if let Some(dir) = &global.data_dir {
        return sqlite(&dir.join(SQLITE_FILE), settings, missing, "--data-dir");
    }
    match config.map(|c| c.queue().backend()) {
        Some(BackendConfig::Sqlite { path }) => sqlite(path, settings, missing, "the config"),
        Some(BackendConfig::Redis { url }) => redis(rt, url.secret().expose_secret(), settings),
        Some(other) => Err(CliError::Usage(format!("unsupported queue backend {other:?}")).into()),
        None => Err(CliError::Usage(
            "say which queue to use: --config FILE, --data-dir DIR (SQLite) or --redis-url URL \
             (or NESSUS_CONFIG / NESSUS_DATA_DIR / NESSUS_REDIS_URL)"
                .to_owned(),
        )
        .into()),
    }
}

fn redis(rt: &Runtime, url: &str, settings: QueueConfig) -> anyhow::Result<Queue> {
    rt.block_on(Queue::redis(url, settings))
        .context("cannot open the Redis queue")
}

fn sqlite(db: &Path, settings: QueueConfig, missing: Missing, from: &str) -> anyhow::Result<Queue> {
    if !db.is_file() {
        if missing == Missing::Refuse {
            return Err(CliError::Input(format!(
                "no queue database at {} (from {from}: is it the server's data directory?)",
                db.display()
            ))
            .into());
        }
        if let Some(parent) = db.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    Queue::sqlite(db, settings)
        .with_context(|| format!("cannot open the queue database {}", db.display()))
}
