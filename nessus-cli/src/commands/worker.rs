//! `nessus-cli worker`: the queue worker runtime over the configured backend and
//! scanners, until SIGTERM or Ctrl-C.
//!
//! On the signal it stops claiming, lets each task finish its current step and releases
//! the leases, so another worker (or this one, restarted) re-attaches to the running
//! Nessus scans instead of starting them again. A second signal is not needed and not
//! special: draining takes at most one scanner call per task.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use nessus_queue::{ConfigDirectory, SchemaIngest, Worker};
use tokio::sync::watch;

use crate::cli::{GlobalArgs, WorkerArgs};
use crate::commands::{backend, config};
use crate::exit::CliError;

pub(crate) fn run(global: &GlobalArgs, args: &WorkerArgs) -> anyhow::Result<()> {
    if !(args.poll_interval.is_finite() && args.poll_interval > 0.0) {
        return Err(CliError::Usage(format!(
            "--poll-interval must be a positive number of seconds, not {}",
            args.poll_interval
        ))
        .into());
    }
    let config = Arc::new(config::require(global, "worker")?);
    let worker_id = args.id.clone().unwrap_or_else(default_id);
    let mut settings = ConfigDirectory::worker_config(&config, worker_id.clone())
        .max_in_flight(usize::from(args.concurrency));
    let first_poll = Duration::from_secs_f64(args.poll_interval);
    let poll_max = settings.poll_max.max(first_poll);
    settings = settings.polling(first_poll, poll_max);
    let pools: Vec<String> = settings.pools.iter().map(|(p, _)| p.clone()).collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Opened as the server opens it: the same queue, results directory and key file
    // (ad-hoc credentials sealed at submit time are opened here).
    let service = backend::open_service(
        &rt,
        global,
        Some((*config).clone()),
        backend::Missing::Create,
    )?;
    settings.results_dir = service.results_dir().root().to_owned();
    settings = settings.results_store(service.results_store());
    let results_at = match &settings.results_store {
        Some(store) => store.url().to_owned(),
        None => settings.results_dir.display().to_string(),
    };
    let service = Arc::new(service);
    let queue = service.queue().clone();
    let directory = Arc::new(ConfigDirectory::new(Arc::clone(&config), None)?);
    let worker = Worker::new(queue, settings, directory.clone(), Arc::new(SchemaIngest));
    let config_path = global.config.clone();

    eprintln!(
        "worker {worker_id} serving pool(s) {} (results in {results_at}); SIGTERM or Ctrl-C to stop",
        pools.join(", "),
    );
    rt.block_on(async {
        if let Some(path) = config_path {
            reload_on_sighup(path, directory);
        }
        let (stop, stopped) = watch::channel(false);
        let scheduler_stop = stopped.clone();
        let run = tokio::spawn(async move { worker.run(stopped).await });
        // Every worker also runs the scheduler (each slot is claimed atomically in
        // the queue backend; no leader).
        let sched = Arc::clone(&service);
        let scheduler = tokio::spawn(async move { sched.run_scheduler(scheduler_stop).await });
        shutdown_signal().await?;
        eprintln!("stopping: finishing the current step of each task, releasing leases");
        let _ = stop.send(true);
        run.await.context("the worker panicked")??;
        let _ = scheduler.await;
        eprintln!("worker {worker_id} stopped");
        anyhow::Ok(())
    })
}

/// SIGHUP: reload the config, so the next claim checks targets against the policy in
/// force (scanner clients and served pools stay as started).
fn reload_on_sighup(path: std::path::PathBuf, directory: Arc<ConfigDirectory>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match nessus_core::Config::load(&path) {
                Ok(c) => {
                    directory.reload(Arc::new(c));
                    eprintln!("config reloaded from {}", path.display());
                }
                Err(e) => eprintln!("config reload failed, keeping the previous one: {e}"),
            }
        }
    });
    #[cfg(not(unix))]
    let _ = (path, directory);
}

/// `cli-{hostname}-{pid}`: unique per process and readable in `tasks show`.
fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("cli-{host}-{}", std::process::id())
}

/// Resolves on Ctrl-C, or SIGTERM (what service managers and containers send).
async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for Ctrl-C")
    }
}
