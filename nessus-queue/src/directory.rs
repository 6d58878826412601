//! Workers built from a loaded `scanners.yaml`: one client per configured instance
//! (each behind its circuit breaker), the credential profiles, the pools and capacities
//! a worker serves, and the queue settings. Shared by the MCP server's embedded workers
//! and `nessus-cli worker`, so both place and run tasks identically.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nessus_core::{
    ApprovedTargets, BreakerConfig, CircuitBreaker, Config, GuardedScanner, Scanner, SshCredentials,
};

use crate::backend::InstanceCapacity;
use crate::queue::QueueConfig;
use crate::worker::{ScannerDirectory, WorkerConfig};

/// Scanners built from the config at start, and the target policies and credential
/// profiles of the config in force now ([`ConfigDirectory::reload`], which SIGHUP
/// calls). Scanner clients and the pools a worker serves stay as built at start: a
/// reload that adds scanners needs a restart; one that removes a pool or narrows a
/// policy takes effect at the next claim.
pub struct ConfigDirectory {
    scanners: HashMap<String, Arc<dyn Scanner>>,
    /// Each instance's breaker (the one inside its `GuardedScanner`), read at claim.
    breakers: HashMap<String, Arc<CircuitBreaker>>,
    /// Swapped whole on reload, so one claim checks against one consistent config.
    config: RwLock<Arc<Config>>,
}

impl std::fmt::Debug for ConfigDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigDirectory")
            .field("scanners", &self.scanners.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ConfigDirectory {
    /// Builds a client per configured instance. `extra_ca_pem` is trusted in
    /// addition to each instance's own CA (the demo's simulator CA).
    pub fn new(
        config: Arc<Config>,
        extra_ca_pem: Option<&[u8]>,
    ) -> Result<Self, nessus_core::Error> {
        let mut scanners: HashMap<String, Arc<dyn Scanner>> = HashMap::new();
        let mut breakers = HashMap::new();
        for inst in config.instances() {
            let mut tls = inst.tls().clone();
            if let Some(pem) = extra_ca_pem {
                tls.ca_pem = Some(pem.to_vec());
            }
            let client = inst.client_builder().tls(tls).build()?;
            // Every call to a scanner goes through its circuit breaker, so an
            // unreachable instance fails fast instead of tying up workers.
            let breaker = Arc::new(CircuitBreaker::new(inst.key(), BreakerConfig::default()));
            breakers.insert(inst.key(), Arc::clone(&breaker));
            let client = GuardedScanner::new(inst.key(), Arc::new(client), breaker);
            scanners.insert(inst.key(), Arc::new(client));
        }
        Ok(Self {
            scanners,
            breakers,
            config: RwLock::new(config),
        })
    }

    /// Replaces the config whose target policies and credential profiles the next
    /// claims use. Tasks already running keep going; a queued (or requeued, or
    /// DLQ-retried) task is checked against `config` when it is claimed.
    pub fn reload(&self, config: Arc<Config>) {
        // A poisoned lock only means a reload panicked mid-swap; the stored Arc is
        // still a complete config.
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = config;
    }

    /// The config in force now.
    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
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
                    .map(|i| InstanceCapacity::new(i.instance_id(), i.max_concurrent_scans()))
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

    /// The queue settings of `config`: lease, retention and idempotency TTLs, the
    /// per-principal queued cap, and each pool's capacity (for queue position and ETA).
    pub fn queue_config(config: &Config) -> QueueConfig {
        let q = config.queue();
        let secs = |d: Duration| {
            jiff::SignedDuration::from_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        };
        let mut cfg = QueueConfig::default()
            .lease_ttl(secs(q.lease()))
            .ttls(secs(q.completed_ttl()), secs(q.failed_ttl()));
        cfg.idempotency_ttl = secs(q.idempotency_ttl());
        cfg.findings_ttl = secs(q.findings_ttl());
        if let Some(n) = q.max_queued_per_principal() {
            cfg = cfg.max_queued_per_principal(n);
        }
        for pool in config.pools() {
            cfg = cfg.pool_capacity(pool.name(), pool.capacity().max(1));
        }
        cfg
    }
}

impl ScannerDirectory for ConfigDirectory {
    fn scanner(&self, pool: &str, instance: &str) -> Option<Arc<dyn Scanner>> {
        self.scanners.get(&format!("{pool}:{instance}")).cloned()
    }

    fn credential_profile(&self, name: &str) -> Option<SshCredentials> {
        self.config()
            .credential(name)
            .map(|c| c.to_ssh_credentials())
    }

    fn check_targets(&self, pool: &str, targets: &str) -> crate::Result<ApprovedTargets> {
        check_targets_in(&self.config(), pool, targets)
    }

    fn available(&self, pool: &str, instance: &str) -> bool {
        self.breakers
            .get(&format!("{pool}:{instance}"))
            .is_none_or(|b| b.is_available())
    }
}

/// The target policy of `pool` in `config` applied to `targets`: the one check the
/// worker makes at claim and the service makes at DLQ retry. A pool that is no longer
/// configured refuses everything.
pub(crate) fn check_targets_in(
    config: &Config,
    pool: &str,
    targets: &str,
) -> crate::Result<ApprovedTargets> {
    let p = config
        .pool(pool)
        .ok_or_else(|| crate::Error::TargetsNotAllowed {
            pool: pool.to_owned(),
            reason: "the pool is no longer configured".to_owned(),
        })?;
    p.check_targets(targets)
        .map_err(|e| crate::Error::targets_refused(pool, e))
}
