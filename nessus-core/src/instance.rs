//! A scanner instance as the worker holds it: identity, capacity, and a [`Scanner`]
//! whose every call goes through the instance's circuit breaker.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::client::{Credentials, NessusClient, NessusClientBuilder};
use crate::config::{InstanceAuth, InstanceConfig};
use crate::error::{Error, Result};
use crate::scanner::{BoxFuture, ExportFormat, ScanId, ScanSpec, ScanState, Scanner};
use crate::select::InstanceLoad;

/// Whether an error says the *scanner* is unhealthy, so it feeds the breaker:
/// connection failures, timeouts, broken connections, 429 and 5xx. Answers such as
/// 400, 401, 404 or 409 prove the scanner is up and count as successes.
pub fn counts_as_scanner_failure(error: &Error) -> bool {
    match error {
        Error::Transport { .. } => true,
        Error::Api { status, .. } => *status == 429 || (500..=599).contains(status),
        _ => false,
    }
}

/// A [`Scanner`] wrapped in a circuit breaker. While the breaker is open every call
/// fails fast with [`Error::CircuitOpen`] (retryable; the task should wait, not fail).
#[derive(Clone)]
pub struct GuardedScanner {
    key: String,
    inner: Arc<dyn Scanner>,
    breaker: Arc<CircuitBreaker>,
}

impl GuardedScanner {
    /// Wraps `inner`; `key` names the instance in errors (`pool:instance_id`).
    pub fn new(
        key: impl Into<String>,
        inner: Arc<dyn Scanner>,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        Self {
            key: key.into(),
            inner,
            breaker,
        }
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.breaker
    }

    /// The unguarded scanner.
    pub fn inner(&self) -> &Arc<dyn Scanner> {
        &self.inner
    }

    fn guard<'a, T: Send + 'a>(
        &'a self,
        call: BoxFuture<'a, Result<T>>,
    ) -> BoxFuture<'a, Result<T>> {
        Box::pin(async move {
            let permit = self
                .breaker
                .try_acquire()
                .map_err(|open| Error::CircuitOpen {
                    instance: self.key.clone(),
                    retry_after: open.retry_after,
                })?;
            let result = call.await;
            match &result {
                Err(e) if counts_as_scanner_failure(e) => permit.failure(),
                _ => permit.success(),
            }
            result
        })
    }
}

impl fmt::Debug for GuardedScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedScanner")
            .field("key", &self.key)
            .field("breaker", &self.breaker.state())
            .field("inner", &self.inner)
            .finish()
    }
}

impl Scanner for GuardedScanner {
    fn create_scan<'a>(&'a self, spec: &'a ScanSpec) -> BoxFuture<'a, Result<ScanId>> {
        self.guard(self.inner.create_scan(spec))
    }

    fn find_scan_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ScanId>>> {
        self.guard(self.inner.find_scan_by_name(name))
    }

    fn launch(&self, id: ScanId) -> BoxFuture<'_, Result<String>> {
        self.guard(self.inner.launch(id))
    }

    fn status(&self, id: ScanId) -> BoxFuture<'_, Result<ScanState>> {
        self.guard(self.inner.status(id))
    }

    fn export_to_file<'a>(
        &'a self,
        id: ScanId,
        format: ExportFormat,
        path: &'a Path,
        size_cap: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        self.guard(self.inner.export_to_file(id, format, path, size_cap))
    }

    fn stop(&self, id: ScanId) -> BoxFuture<'_, Result<()>> {
        self.guard(self.inner.stop(id))
    }

    fn delete(&self, id: ScanId) -> BoxFuture<'_, Result<()>> {
        self.guard(self.inner.delete(id))
    }
}

/// One scanner instance of a pool, ready for the worker.
#[derive(Debug, Clone)]
pub struct Instance {
    pool: String,
    instance_id: String,
    max_concurrent_scans: u32,
    scanner: GuardedScanner,
}

impl Instance {
    /// An instance around any [`Scanner`] (a [`NessusClient`], the simulator, …).
    pub fn new(
        pool: impl Into<String>,
        instance_id: impl Into<String>,
        max_concurrent_scans: u32,
        scanner: Arc<dyn Scanner>,
        breaker: Arc<CircuitBreaker>,
    ) -> Self {
        let (pool, instance_id) = (pool.into(), instance_id.into());
        let scanner = GuardedScanner::new(format!("{pool}:{instance_id}"), scanner, breaker);
        Self {
            pool,
            instance_id,
            max_concurrent_scans,
            scanner,
        }
    }

    /// Builds the Nessus client of a configured instance, with a fresh breaker.
    pub fn from_config(config: &InstanceConfig, breaker: BreakerConfig) -> Result<Self> {
        let client = config.build_client()?;
        let breaker = Arc::new(CircuitBreaker::new(config.key(), breaker));
        Ok(Self::new(
            config.pool(),
            config.instance_id(),
            config.max_concurrent_scans(),
            Arc::new(client),
            breaker,
        ))
    }

    /// The pool.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// The id within the pool.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// `{pool}:{instance_id}`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.pool, self.instance_id)
    }

    /// Its concurrency limit.
    pub fn max_concurrent_scans(&self) -> u32 {
        self.max_concurrent_scans
    }

    /// The breaker-guarded scanner; use it for every call.
    pub fn scanner(&self) -> &GuardedScanner {
        &self.scanner
    }

    /// The breaker.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        self.scanner.breaker()
    }

    /// A selection snapshot of this instance with the backend's counts.
    pub fn load(&self, active: u32, last_used: u64) -> InstanceLoad {
        InstanceLoad::new(self.instance_id.clone(), active, self.max_concurrent_scans)
            .with_last_used(last_used)
            .with_available(self.breaker().is_available())
    }
}

impl InstanceConfig {
    /// A [`NessusClient`] builder with this instance's URL, credentials, TLS options
    /// and timeout; adjust retries or export polling before `build()`.
    pub fn client_builder(&self) -> NessusClientBuilder {
        let credentials = match self.auth() {
            InstanceAuth::ApiKeys {
                access_key,
                secret_key,
            } => Credentials::api_keys(access_key.secret().clone(), secret_key.secret().clone()),
            InstanceAuth::Session {
                mode,
                username,
                password,
            } => match mode {
                crate::config::AuthMode::WebToken => {
                    Credentials::web_ui(username.clone(), password.secret().clone())
                }
                _ => Credentials::session(username.clone(), password.secret().clone()),
            },
        };
        NessusClient::builder()
            .base_url(self.url())
            .credentials(credentials)
            .tls(self.tls().clone())
            .timeout(self.timeout())
    }

    /// Builds the client with the defaults of [`client_builder`](Self::client_builder).
    pub fn build_client(&self) -> Result<NessusClient> {
        self.client_builder().build()
    }
}
