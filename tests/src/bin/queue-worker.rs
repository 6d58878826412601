//! A queue worker process for the crash tests: serves pool `nessus` (instance `s1`)
//! on a simulator URL until SIGTERM/SIGINT, then releases its leases.
//!
//! Environment: `NQ_BACKEND` (`sqlite:<path>` or a `redis://` URL), `NQ_SIM_URL`,
//! `NQ_RESULTS` (results dir), `NQ_WORKER_ID`, `NQ_LEASE_MS` (default 2000),
//! `NQ_CAPACITY` (max concurrent scans on `s1`, default 8).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nessus_queue::testkit::{StaticDirectory, sim_client, single_pool};
use nessus_queue::{KeepExportOnly, Queue, QueueConfig, Worker, WorkerConfig};

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| format!("{name} must be set"))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let backend = env("NQ_BACKEND")?;
    let lease_ms: i64 = std::env::var("NQ_LEASE_MS")
        .unwrap_or_else(|_| "2000".into())
        .parse()
        .context("NQ_LEASE_MS")?;
    let capacity: u32 = std::env::var("NQ_CAPACITY")
        .unwrap_or_else(|_| "8".into())
        .parse()
        .context("NQ_CAPACITY")?;
    let cfg = QueueConfig::default().lease_ttl(jiff::SignedDuration::from_millis(lease_ms));
    let queue = match backend.strip_prefix("sqlite:") {
        Some(path) => Queue::sqlite(path, cfg)?,
        None => Queue::redis(&backend, cfg).await?,
    };
    let client = sim_client(&env("NQ_SIM_URL")?).build()?;
    let pools = single_pool("nessus", "s1", capacity);
    let wcfg = WorkerConfig::new(env("NQ_WORKER_ID")?, pools, env("NQ_RESULTS")?)
        .idle_poll(Duration::from_millis(100))
        .retry_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .reap_interval(Duration::from_millis(500));
    let worker = Worker::new(
        queue,
        wcfg,
        Arc::new(StaticDirectory::one("nessus", "s1", client)),
        Arc::new(KeepExportOnly),
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        let _ = tx.send(true);
    });
    worker.run(rx).await?;
    Ok(())
}
