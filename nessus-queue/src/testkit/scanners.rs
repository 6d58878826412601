//! The scanner side of a test: a simulator, a client for it, and the worker's view
//! of which scanners exist.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nessus_core::sim::{Simulator, SimulatorBuilder};
use nessus_core::{
    ApprovedTargets, Credentials, NessusClient, NessusClientBuilder, Scanner, TargetPolicy,
};

use crate::{InstanceCapacity, ScannerDirectory};

/// One small `.nessus` file of the repository corpus: it keeps a debug-build
/// simulator quick to build results and to answer.
pub const SMALL_CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/nessus/defectdojo__nessus_was_one_vuln.xml"
);

/// A simulator builder whose scans take `scan` and whose results come from
/// [`SMALL_CORPUS`]; chain more settings, then `.start("127.0.0.1:0")`.
pub fn simulator(scan: Duration) -> SimulatorBuilder {
    Simulator::builder()
        .scan_duration(scan)
        .corpus(SMALL_CORPUS)
}

/// A client builder for a simulator at `base_url` (any API keys pass there), with a
/// 10 s request timeout so a stuck test fails instead of hanging.
pub fn sim_client(base_url: &str) -> NessusClientBuilder {
    NessusClient::builder()
        .base_url(base_url)
        .credentials(Credentials::api_keys("access", "secret"))
        .timeout(Duration::from_secs(10))
}

/// Pools for [`crate::Queue::claim`] and [`crate::WorkerConfig::new`]: one pool
/// with one instance.
pub fn single_pool(
    pool: &str,
    instance: &str,
    max_concurrent: u32,
) -> Vec<(String, Vec<InstanceCapacity>)> {
    vec![(
        pool.to_owned(),
        vec![InstanceCapacity::new(instance, max_concurrent)],
    )]
}

/// A fixed [`ScannerDirectory`]: the scanners it was given, by pool and instance.
///
/// Target policies: a pool without one set by [`StaticDirectory::set_policy`] allows
/// every address (`0.0.0.0/0`, `::/0`) minus the built-in deny-list, which is what the
/// suites' arbitrary `10.x` targets need. Policies are shared by clones and can change
/// while a worker runs, as a SIGHUP reload changes a real config.
#[derive(Default, Clone)]
pub struct StaticDirectory {
    scanners: HashMap<(String, String), Arc<dyn Scanner>>,
    policies: Arc<RwLock<HashMap<String, Option<TargetPolicy>>>>,
}

impl StaticDirectory {
    /// A directory with one scanner.
    pub fn one(pool: &str, instance: &str, scanner: impl Scanner + 'static) -> Self {
        Self::default().with(pool, instance, scanner)
    }

    /// Adds (or replaces) the scanner of `instance` in `pool`.
    #[must_use]
    pub fn with(mut self, pool: &str, instance: &str, scanner: impl Scanner + 'static) -> Self {
        self.scanners
            .insert((pool.to_owned(), instance.to_owned()), Arc::new(scanner));
        self
    }

    /// Sets `pool`'s target policy for the next claims; `None` makes the pool "no
    /// longer configured" (every task refused).
    pub fn set_policy(&self, pool: &str, policy: Option<TargetPolicy>) {
        self.policies
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(pool.to_owned(), policy);
    }
}

fn allow_everything() -> TargetPolicy {
    let all = ["0.0.0.0/0", "::/0"]
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    TargetPolicy::new(all, Vec::new()).with_max_hosts(u64::MAX)
}

impl std::fmt::Debug for StaticDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.scanners.keys()).finish()
    }
}

impl ScannerDirectory for StaticDirectory {
    fn scanner(&self, pool: &str, instance: &str) -> Option<Arc<dyn Scanner>> {
        self.scanners
            .get(&(pool.to_owned(), instance.to_owned()))
            .cloned()
    }

    fn check_targets(&self, pool: &str, targets: &str) -> crate::Result<ApprovedTargets> {
        let policy = self
            .policies
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(pool)
            .cloned()
            .unwrap_or_else(|| Some(allow_everything()));
        let not_allowed = |reason: String| crate::Error::TargetsNotAllowed {
            pool: pool.to_owned(),
            reason,
        };
        policy
            .ok_or_else(|| not_allowed("the pool is no longer configured".to_owned()))?
            .check(targets)
            .map_err(|r| not_allowed(r.to_string()))
    }
}
