//! Embedded workers: the glue between the config (scanners, credential
//! profiles), the Nessus client, the queue's worker runtime and the findings
//! store. `nessus-cli worker` can reuse it.

use std::{collections::HashMap, io::BufReader, path::Path, sync::Arc};

use nessus_core::{BreakerConfig, CircuitBreaker, Config, GuardedScanner, Scanner, SshCredentials};
use nessus_queue::{
    BoxError, Completion, Ingest, InstanceCapacity, ScannerDirectory, Task, WorkerConfig,
};
use nessus_schema::{AuthenticationStatus, Store};

/// Scanners and credential profiles built from one config snapshot.
pub struct ConfigDirectory {
    scanners: HashMap<String, Arc<dyn Scanner>>,
    config: Arc<Config>,
}

impl std::fmt::Debug for ConfigDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDirectory")
            .field("scanners", &self.scanners.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ConfigDirectory {
    /// Build a client per configured instance. `extra_ca_pem` is trusted in
    /// addition to each instance's own CA (the demo's simulator CA).
    pub fn new(
        config: Arc<Config>,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, nessus_core::Error> {
        let mut scanners: HashMap<String, Arc<dyn Scanner>> = HashMap::new();
        for inst in config.instances() {
            let mut tls = inst.tls().clone();
            if let Some(pem) = extra_ca_pem {
                tls.ca_pem = Some(pem.to_vec());
            }
            let client = inst.client_builder().tls(tls).build()?;
            // Every call to a scanner goes through its circuit breaker, so an
            // unreachable instance fails fast instead of tying up workers.
            let breaker = Arc::new(CircuitBreaker::new(inst.key(), BreakerConfig::default()));
            let client = GuardedScanner::new(inst.key(), Arc::new(client), breaker);
            scanners.insert(inst.key(), Arc::new(client));
        }
        Ok(Self { scanners, config })
    }

    /// The pools and instance capacities a worker serves.
    pub fn worker_pools(config: &Config) -> Vec<(String, Vec<InstanceCapacity>)> {
        config
            .pools()
            .iter()
            .map(|p| {
                let caps = p
                    .instances()
                    .iter()
                    .map(|i| InstanceCapacity {
                        instance: i.instance_id().to_owned(),
                        max_concurrent: i.max_concurrent_scans(),
                    })
                    .collect();
                (p.name().to_owned(), caps)
            })
            .collect()
    }

    /// A worker configuration for `config`.
    pub fn worker_config(config: &Config, worker_id: impl Into<String>) -> WorkerConfig {
        WorkerConfig::new(
            worker_id,
            Self::worker_pools(config),
            config.server().results_dir(),
        )
        .scan_timeout(config.server().default_scan_timeout())
    }
}

impl ScannerDirectory for ConfigDirectory {
    fn scanner(&self, pool: &str, instance: &str) -> Option<Arc<dyn Scanner>> {
        self.scanners.get(&format!("{pool}:{instance}")).cloned()
    }

    fn credential_profile(&self, name: &str) -> Option<SshCredentials> {
        self.config.credential(name).map(|c| c.to_ssh_credentials())
    }
}

/// Ingests exports into a findings store (`{task_dir}/store`) and builds the
/// status summary the predecessor returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemaIngest;

impl Ingest for SchemaIngest {
    fn ingest(&self, task: &Task, export: &Path, task_dir: &Path) -> Result<Completion, BoxError> {
        let dir = task_dir.join("store");
        // A crash after the store was renamed into place but before the task was
        // completed leaves a finished store: reuse it.
        let store = if dir.exists() {
            Store::open(&dir)?
        } else {
            let file = std::fs::File::open(export)?;
            Store::ingest(BufReader::with_capacity(1 << 16, file), &dir)?
        };
        let s = store.summary();
        let authenticated = task.scan_type != nessus_queue::ScanType::Untrusted;
        let auth = match s.authentication_status(authenticated) {
            AuthenticationStatus::Success => "success",
            AuthenticationStatus::Failed => "failed",
            AuthenticationStatus::Partial => "partial",
            AuthenticationStatus::NotApplicable => "not_applicable",
            _ => "unknown",
        };
        let c = s.severity_counts;
        let mut warnings = Vec::new();
        if s.hosts_scanned == 0 {
            warnings.push(
                "the scan produced no hosts: check the targets are reachable from the scanner"
                    .to_owned(),
            );
        }
        if auth == "failed" {
            warnings.push("authentication failed on every host".to_owned());
        }
        let mut completion = Completion::default();
        completion.authentication_status = Some(auth.to_owned());
        completion.results_summary = Some(serde_json::json!({
            "hosts_scanned": s.hosts_scanned,
            "total_vulnerabilities": s.total_vulnerabilities,
            "severity_breakdown": {
                "critical": c.critical, "high": c.high, "medium": c.medium,
                "low": c.low, "info": c.info,
            },
            "file_size_kb": (s.file_size_bytes as f64 / 1024.0 * 10.0).round() / 10.0,
            "auth_plugins_found": s.auth_plugins_found,
        }));
        completion.validation_warnings = warnings;
        Ok(completion)
    }
}
