//! A queue worker process for the crash tests: serves pool `nessus` (instance `s1`)
//! on a simulator URL until SIGTERM/SIGINT, then releases its leases.
//!
//! Environment: `NQ_BACKEND` (`sqlite:<path>` or a `redis://` URL), `NQ_SIM_URL`,
//! `NQ_RESULTS` (results dir), `NQ_WORKER_ID`, `NQ_LEASE_MS` (default 2000),
//! `NQ_CAPACITY` (max concurrent scans on `s1`, default 8).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nessus_core::{Credentials, NessusClient, Scanner};
use nessus_queue::{
    InstanceCapacity, KeepExportOnly, Queue, QueueConfig, ScannerDirectory, Worker, WorkerConfig,
};

struct Dir(HashMap<String, Arc<dyn Scanner>>);

impl ScannerDirectory for Dir {
    fn scanner(&self, pool: &str, instance: &str) -> Option<Arc<dyn Scanner>> {
        (pool == "nessus")
            .then(|| self.0.get(instance).cloned())
            .flatten()
    }
}

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
    let client = NessusClient::builder()
        .base_url(env("NQ_SIM_URL")?)
        .credentials(Credentials::api_keys("access", "secret"))
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut scanners: HashMap<String, Arc<dyn Scanner>> = HashMap::new();
    scanners.insert("s1".to_owned(), Arc::new(client));
    let pools = vec![(
        "nessus".to_owned(),
        vec![InstanceCapacity {
            instance: "s1".to_owned(),
            max_concurrent: capacity,
        }],
    )];
    let wcfg = WorkerConfig::new(env("NQ_WORKER_ID")?, pools, env("NQ_RESULTS")?)
        .idle_poll(Duration::from_millis(100))
        .retry_backoff(Duration::from_millis(200), Duration::from_secs(2))
        .reap_interval(Duration::from_millis(500));
    let worker = Worker::new(
        queue,
        wcfg,
        Arc::new(Dir(scanners)),
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
