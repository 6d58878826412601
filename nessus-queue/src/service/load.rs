//! Pool load: what each scanner instance runs now, from the queue (which spans
//! processes and hosts), counted without a cap, and the scanner probe.

use std::collections::BTreeMap;
use std::time::Duration;

use nessus_core::{InstanceConfig, ScannerProbe};

use crate::error::Result;
use crate::queue::ListTasks;
use crate::task::TaskStatus;

use super::{Operation, Principal, Service};

/// One instance's load.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InstanceLoad {
    /// The instance's config (pool, id, name, display URL, capacity).
    pub instance: InstanceConfig,
    /// Scans running on it now.
    pub active: u64,
}

impl InstanceLoad {
    /// Its `max_concurrent_scans`.
    pub fn capacity(&self) -> u64 {
        u64::from(self.instance.max_concurrent_scans())
    }

    /// Free slots.
    pub fn available(&self) -> u64 {
        self.capacity().saturating_sub(self.active)
    }

    /// Percent of capacity in use, one decimal.
    pub fn utilization_pct(&self) -> f64 {
        utilization_pct(self.active, self.capacity())
    }
}

/// Percent of `max` that `active` uses, one decimal (0 for no capacity).
pub fn utilization_pct(active: u64, max: u64) -> f64 {
    if max == 0 {
        0.0
    } else {
        (active as f64 / max as f64 * 1000.0).round() / 10.0
    }
}

/// The last probe of every scanner and when it was taken. Behind an async lock held
/// for the whole probe, so concurrent callers wait for one probe instead of each
/// sending their own.
#[derive(Debug, Default)]
pub(crate) struct ProbeCache {
    last: tokio::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<ScannerProbe>>)>>,
}

/// How long a probe answers `/ready`: readiness checks come every few seconds and
/// need no token, so each one must not become a request to every scanner.
pub const PROBE_MAX_AGE: Duration = Duration::from_secs(15);

/// Page size when walking the running tasks.
const PAGE: usize = 1000;

impl Service {
    /// The load of every instance of `pool` (or of every pool), in config order.
    /// Unknown pools are an error, not an empty answer.
    pub async fn pool_load(
        &self,
        principal: &Principal,
        pool: Option<&str>,
    ) -> Result<Vec<InstanceLoad>> {
        principal.authorize(Operation::Read, "read the scanners' load")?;
        let config = self.config();
        if let Some(p) = pool {
            super::known_pool(&config, p, &[])?;
        }
        let active = self.active_by_instance(pool).await?;
        Ok(config
            .instances()
            .filter(|i| pool.is_none_or(|p| i.pool() == p))
            .map(|i| InstanceLoad {
                active: active.get(&i.key()).copied().unwrap_or(0),
                instance: i.clone(),
            })
            .collect())
    }

    /// Running scans per `pool:instance`, walking every page (running tasks are
    /// bounded by the pools' capacity plus leases about to lapse, so this is short).
    async fn active_by_instance(&self, pool: Option<&str>) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut q = ListTasks::new(PAGE).status(TaskStatus::Running);
            if let Some(p) = pool {
                q = q.pool(p.to_owned());
            }
            if let Some(c) = cursor.take() {
                q = q.cursor(c);
            }
            let page = self.queue.list(q).await?;
            for t in &page.tasks {
                if let Some(i) = &t.instance {
                    *out.entry(format!("{}:{i}", t.pool)).or_insert(0) += 1;
                }
            }
            match page.next_cursor {
                Some(c) if !page.tasks.is_empty() => cursor = Some(c),
                _ => return Ok(out),
            }
        }
    }

    /// The scanners' health for readiness: the last probe if it is younger than
    /// [`PROBE_MAX_AGE`], else a fresh one (one at a time, however many ask).
    pub async fn scanner_health(&self, timeout: Duration) -> std::sync::Arc<Vec<ScannerProbe>> {
        let mut last = self.probes.last.lock().await;
        if let Some((at, probes)) = last.as_ref()
            && at.elapsed() < PROBE_MAX_AGE
        {
            return probes.clone();
        }
        let probes = std::sync::Arc::new(self.probe_scanners(timeout).await);
        *last = Some((std::time::Instant::now(), probes.clone()));
        probes
    }

    /// Asks every configured scanner whether it answers (one attempt each, at most
    /// `timeout`), in pool and instance order.
    pub async fn probe_scanners(&self, timeout: Duration) -> Vec<ScannerProbe> {
        let config = self.config();
        let mut set = tokio::task::JoinSet::new();
        let instances: Vec<InstanceConfig> = config.instances().cloned().collect();
        for i in instances {
            set.spawn(async move { nessus_core::probe(&i, timeout).await });
        }
        let mut out = Vec::new();
        while let Some(done) = set.join_next().await {
            if let Ok(p) = done {
                out.push(p);
            }
        }
        out.sort_by(|a, b| (&a.pool, &a.instance).cmp(&(&b.pool, &b.instance)));
        out
    }
}
