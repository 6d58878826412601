//! The use-case layer: every rule that makes the product safe to hand to an agent,
//! in one place that both frontends call and nothing bypasses.
//!
//! [`Service`] owns the opened backend, the secret box, the results directory and the
//! configuration in force (swapped whole on reload). Its operations take the calling
//! [`Principal`] and enforce, with typed [`Error`](crate::Error)s:
//!
//! - **submit** ([`submit`]): pool resolution and the principal's pools, the pinned
//!   instance, the pool's target policy (the task stores the *canonical* approved
//!   list), credential rules including escalation, length limits, quotas;
//! - **import** ([`import`]): one lifecycle for `import_scan` and `nessus-cli import`;
//! - **tenancy** ([`tenancy`]): a principal sees, lists, cancels and counts only its
//!   own tasks unless it is an admin;
//! - **results** ([`results`]): a completed task's pages and diffs;
//! - **load** ([`load`]): what each scanner runs now, counted without a cap.
//!
//! The frontends keep argument parsing, DTOs, transport and error mapping
//! ([`Error::code`](crate::Error::code) is the `error_code` they report).

mod admin;
pub mod approvals;
pub mod changes;
pub mod import;
pub mod load;
mod open;
mod principal;
pub mod progress;
mod record;
pub mod results;
pub mod schedules;
pub mod submit;
pub mod tenancy;

use std::sync::{Arc, RwLock};

use nessus_core::Config;

use crate::queue::Queue;
use crate::results_dir::ResultsDir;

pub use crate::findings::{Change, ChangesPage, FindingState};
pub use crate::scope::{Operation, Scope, Scopes};
pub use approvals::Decision;
pub use changes::{
    CHANGES_DEFAULT_LIMIT, ChangesRequest, TriageRequest, Triaged, answer_budget, changes_text,
};
pub use import::{ImportRequest, ImportSource, Imported};
pub use load::{InstanceLoad, utilization_pct};
pub use nessus_schema::{Aggregation, Group, GroupBy, GroupIdentity, Rank};
pub use nessus_schema::{ExportFormat, ExportPlan, QueryParams};
pub use open::{Missing, OpenOptions, SECRET_KEY_FILE, SQLITE_FILE};
pub use principal::{Principal, RESERVED_PRINCIPALS};
pub use progress::{PROGRESS_INTERVAL, Progress};
pub use results::{DiffOptions, DiffOutcome, Summarized, SummaryRequest};
pub use schedules::{Fired, ScheduleSpec};
pub use submit::{ScanCredentials, ScanRequest, Submission};
pub use tenancy::Cancelled;

/// The use-case layer over one queue and one configuration.
#[derive(Debug)]
pub struct Service {
    queue: Queue,
    /// Swapped as a whole on reload (SIGHUP), so a call sees one consistent config.
    config: RwLock<Arc<Config>>,
    results: ResultsDir,
    stores: Arc<results::StoreCache>,
    /// Results in object storage (`server.results_url`) and this node's cache of
    /// them; `None`: results on local disk only.
    remote: Option<Arc<crate::results_store::ResultsCache>>,
    /// The last scanner probe, reused for a while (see [`Service::scanner_health`]).
    probes: load::ProbeCache,
}

impl Service {
    /// A service over an opened queue; results live under `results`.
    pub fn new(config: Config, queue: Queue, results: ResultsDir) -> Self {
        Self {
            queue,
            config: RwLock::new(Arc::new(config)),
            results,
            stores: Arc::default(),
            remote: None,
            probes: load::ProbeCache::default(),
        }
    }

    /// Keeps results in object storage: uploads (import) and purges go there, and
    /// pages are served from `cache`, which fetches a store on first use.
    #[must_use]
    pub fn with_results_cache(mut self, cache: crate::results_store::ResultsCache) -> Self {
        self.remote = Some(Arc::new(cache));
        self
    }

    /// The results object store, when `server.results_url` is set (workers upload
    /// to it before completing a task).
    pub fn results_store(&self) -> Option<Arc<crate::results_store::ResultsStore>> {
        self.remote.as_ref().map(|c| c.remote().clone())
    }

    /// This node's cache of stores fetched from the results object store.
    pub fn results_cache(&self) -> Option<&crate::results_store::ResultsCache> {
        self.remote.as_deref()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        // A poisoned lock only means a reload panicked mid-swap; the stored Arc is
        // still a complete config.
        self.config
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the configuration (SIGHUP). Calls in flight keep the one they started
    /// with; the next submit, claim-time check and DLQ retry use the new one.
    pub fn reload(&self, config: Config) {
        *self
            .config
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(config);
    }

    /// The queue underneath (workers, housekeeping and admin reads use it directly;
    /// nothing an agent asks for does).
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The results directory.
    pub fn results_dir(&self) -> &ResultsDir {
        &self.results
    }

    /// `Ok` when `principal`'s token scopes allow `op`, else `InsufficientScope`: for
    /// the frontend's reads that need nothing but the config (the pool list).
    pub fn authorize(&self, principal: &Principal, op: Operation) -> crate::Result<()> {
        principal.authorize(op, "read the configuration")
    }
}

/// `Ok` when `config` defines `pool`, else `UnknownPool` naming the pools that exist: the
/// one refusal every pool-taking read (pool and queue status, scanner and task listings)
/// gives, so an unknown name is an error rather than an empty answer. `also` names pools
/// a read accepts beyond the configured ones (the task listing: the import pool).
pub(crate) fn known_pool(config: &Config, pool: &str, also: &[&str]) -> crate::Result<()> {
    if config.pool(pool).is_some() || also.contains(&pool) {
        return Ok(());
    }
    Err(unknown_pool(config, pool, also))
}

/// The `UnknownPool` refusal for `pool`, naming the pools that exist (and `also`).
pub(crate) fn unknown_pool(config: &Config, pool: &str, also: &[&str]) -> crate::Error {
    let mut known: Vec<String> = config.pool_names().into_iter().map(str::to_owned).collect();
    known.extend(also.iter().map(|p| (*p).to_owned()));
    crate::Error::UnknownPool {
        pool: pool.to_owned(),
        known,
    }
}

/// Runs blocking file work (ingest, store pages) off the async runtime.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::Result<T> + Send + 'static,
) -> crate::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| crate::Error::Io {
            what: "a blocking task stopped".to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
}
