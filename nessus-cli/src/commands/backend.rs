//! Which queue and directories a command uses: the flags (or their environment
//! variables) become `nessus_queue::service::OpenOptions`, and the service opens the
//! backend, the secret box and the results directory exactly as the server does.
//!
//! Precedence (owned by `OpenOptions`): `--redis-url`, then `--data-dir`, then the
//! config's `queue.backend`.

use anyhow::Context;
use nessus_core::Config;
use nessus_queue::service::{OpenOptions, Service};
use tokio::runtime::Runtime;

use crate::cli::GlobalArgs;
use crate::exit::CliError;

pub(crate) use nessus_queue::service::Missing;

/// A single-threaded runtime: admin commands make one call at a time.
pub(crate) fn current_thread() -> anyhow::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// The service over the queue the flags or the config name. Without a config, the
/// defaults apply to everything but the locations the flags give.
pub(crate) fn open_service(
    rt: &Runtime,
    global: &GlobalArgs,
    config: Option<Config>,
    missing: Missing,
) -> anyhow::Result<Service> {
    if config.is_none() && global.redis_url.is_none() && global.data_dir.is_none() {
        return Err(CliError::Usage(
            "say which queue to use: --config FILE, --data-dir DIR (SQLite) or --redis-url URL \
             (or NESSUS_CONFIG / NESSUS_DATA_DIR / NESSUS_REDIS_URL)"
                .to_owned(),
        )
        .into());
    }
    let config = match config {
        Some(c) => c,
        None => "".parse().context("the built-in default config")?,
    };
    let opts = OpenOptions::new()
        .data_dir(global.data_dir.clone())
        .redis_url(global.redis_url.clone().map(secrecy::SecretString::from))
        .missing(missing);
    rt.block_on(Service::open(config, opts))
        .map_err(|e| match e {
            nessus_queue::Error::NoQueueDatabase { .. } => {
                CliError::Input(format!("{e} (is it the server's data directory?)")).into()
            }
            e => anyhow::Error::new(e).context("cannot open the queue"),
        })
}
