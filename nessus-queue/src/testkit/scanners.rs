//! The scanner side of a test: a simulator, a client for it, and the worker's view
//! of which scanners exist.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nessus_core::sim::{Simulator, SimulatorBuilder};
use nessus_core::{Credentials, NessusClient, NessusClientBuilder, Scanner};

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
#[derive(Default, Clone)]
pub struct StaticDirectory {
    scanners: HashMap<(String, String), Arc<dyn Scanner>>,
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
}
