//! An in-process Nessus simulator (feature `sim`): the REST API with the response shapes
//! of real recordings, scans that progress on a configurable clock, results built from
//! real `.nessus` files with the scan's targets substituted, faults on demand, counters,
//! and optional TLS with a generated CA. Every response has a `Date` header from the
//! simulator's clock (skewed by the `clock_skew_secs` fault).
//!
//! Admin endpoints (no authentication, never faulted):
//! `GET|PUT /_sim/faults` (a [`Faults`] JSON), `GET /_sim/counters` ([`Counters`]),
//! `GET /_sim/scans` (a [`ScanRecord`] per scan),
//! `POST /_sim/expire-sessions`, `PUT /_sim/ui-token` (`{"token": "..."}`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> nessus_core::Result<()> {
//! use std::time::Duration;
//! use nessus_core::{Credentials, NessusClient, sim::Simulator};
//!
//! let sim = Simulator::builder()
//!     .scan_duration(Duration::from_millis(200))
//!     .start("127.0.0.1:0")
//!     .await?;
//! let client = NessusClient::builder()
//!     .base_url(sim.base_url())
//!     .credentials(Credentials::api_keys("any", "keys"))
//!     .build()?;
//! assert!(client.server_status().await?.is_ready());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod corpus;
mod faults;
mod listener;
mod routes;
mod state;

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

pub use faults::{Counters, Faults, GateMode, NameCounters, ScanRecord};

use crate::error::{Error, Result};
pub(crate) use listener::ConnMeta;
use listener::SimListener;
use routes::Shared;
use state::{SimSettings, SimState, digest};

/// Entry point: `Simulator::builder()`.
#[derive(Debug)]
#[non_exhaustive]
pub struct Simulator;

impl Simulator {
    /// A builder with defaults: scans take 3 s, any API keys and any username/password
    /// are accepted, `scan_api` is on, plain HTTP, results from the repository corpus
    /// (falling back to an embedded sample).
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }
}

/// Configures and starts a simulator.
#[derive(Debug, Clone)]
#[must_use]
pub struct SimulatorBuilder {
    scan_duration: Duration,
    api_keys: Option<(String, String)>,
    login: Option<(String, String)>,
    ui_token: String,
    tls: bool,
    idle_timeout: Option<Duration>,
    export_delay: Duration,
    corpus: PathBuf,
    faults: Faults,
}

impl Default for SimulatorBuilder {
    fn default() -> Self {
        Self {
            scan_duration: Duration::from_secs(3),
            api_keys: None,
            login: None,
            ui_token: "778F4A9C-D797-4817-B110-EC427B724486".to_owned(),
            tls: false,
            idle_timeout: None,
            export_delay: Duration::from_millis(50),
            corpus: corpus::Corpus::default_dir(),
            faults: Faults::default(),
        }
    }
}

impl SimulatorBuilder {
    /// How long a launched scan takes from `pending` to `completed`.
    pub fn scan_duration(mut self, d: Duration) -> Self {
        self.scan_duration = d;
        self
    }

    /// Accept only these API keys (default: any non-empty pair).
    pub fn require_api_keys(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        self.api_keys = Some((access_key.into(), secret_key.into()));
        self
    }

    /// Accept only this username/password at `POST /session` (default: any non-empty).
    pub fn require_login(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Self {
        self.login = Some((username.into(), password.into()));
        self
    }

    /// The web-UI token served in `/nessus6.js` and required (with a session) for scan
    /// control when `scan_api` is off.
    pub fn ui_token(mut self, token: impl Into<String>) -> Self {
        self.ui_token = token.into();
        self
    }

    /// Serve HTTPS with a freshly generated CA (see [`SimHandle::ca_pem`]).
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Sessions unused for this long answer 401 "Invalid Credentials".
    pub fn session_idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// How long an export stays `loading` (default 50 ms).
    pub fn export_delay(mut self, d: Duration) -> Self {
        self.export_delay = d;
        self
    }

    /// Draw results from the `.nessus` files of this directory, or from this one file
    /// (unusable files are skipped; nothing usable falls back to the embedded sample).
    pub fn corpus(mut self, path: impl Into<PathBuf>) -> Self {
        self.corpus = path.into();
        self
    }

    /// Faults active from the start.
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Binds `addr` (e.g. `127.0.0.1:0`) and serves until the handle is shut down or
    /// dropped.
    pub async fn start(self, addr: &str) -> Result<SimHandle> {
        let sim_err = |reason: String, e: Option<crate::error::BoxError>| Error::Simulator {
            reason,
            source: e,
        };
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| sim_err(format!("cannot listen on {addr}"), Some(Box::new(e))))?;
        let local = tcp
            .local_addr()
            .map_err(|e| sim_err("no local address".into(), Some(Box::new(e))))?;
        let (acceptor, ca_pem) = if self.tls {
            let (acc, pem) = listener::tls_acceptor(local)?;
            (Some(acc), Some(pem))
        } else {
            (None, None)
        };
        let settings = SimSettings {
            scan_duration: self.scan_duration,
            api_keys: self.api_keys,
            login: self.login,
            ui_token: self.ui_token,
            idle_timeout: self.idle_timeout,
            export_delay: self.export_delay,
            corpus_source: self.corpus,
        };
        let shared = Arc::new(Shared {
            drop_connections: AtomicBool::new(self.faults.drop_connections),
            state: Mutex::new(SimState::new(settings, self.faults)),
        });
        let app = routes::router(shared.clone()).into_make_service_with_connect_info::<ConnMeta>();
        let listener = SimListener::new(tcp, acceptor, shared.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        let host = match local.ip() {
            ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        let scheme = if ca_pem.is_some() { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{host}:{}", local.port()), "Nessus simulator listening");
        Ok(SimHandle {
            base_url: format!("{scheme}://{host}:{}", local.port()),
            addr: local,
            ca_pem,
            shared,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    base_url: String,
    addr: SocketAddr,
    ca_pem: Option<String>,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for SimHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHandle")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl SimHandle {
    /// `http://127.0.0.1:PORT` or `https://…`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// PEM of the generated CA that issued the TLS certificate (TLS mode only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> Counters {
        self.shared.lock().counters.clone()
    }

    /// Every scan the simulator holds, in id order, with the `text_targets` it received
    /// and when it was first stopped.
    pub fn scans(&self) -> Vec<ScanRecord> {
        self.shared.lock().scan_records()
    }

    /// The active faults.
    pub fn faults(&self) -> Faults {
        self.shared.lock().faults.clone()
    }

    /// Replaces the active faults.
    pub fn set_faults(&self, faults: Faults) {
        self.shared
            .drop_connections
            .store(faults.drop_connections, Ordering::SeqCst);
        self.shared.lock().faults = faults;
    }

    /// Edits the active faults in place.
    pub fn update_faults(&self, edit: impl FnOnce(&mut Faults)) {
        let mut st = self.shared.lock();
        edit(&mut st.faults);
        self.shared
            .drop_connections
            .store(st.faults.drop_connections, Ordering::SeqCst);
    }

    /// Expires every session (their next call gets 401 "Invalid Credentials"); returns
    /// how many there were.
    pub fn expire_sessions(&self) -> usize {
        let mut st = self.shared.lock();
        let n = st.sessions.len();
        st.sessions.clear();
        n
    }

    /// The web-UI token currently served.
    pub fn ui_token(&self) -> String {
        self.shared.lock().settings.ui_token.clone()
    }

    /// Rotates the web-UI token (as a Nessus reinstall would).
    pub fn set_ui_token(&self, token: impl Into<String>) {
        self.shared.lock().settings.ui_token = token.into();
    }

    /// How many times `secret` arrived as a password inside scan credentials. Only
    /// digests are kept, so tests can check a canary without the simulator holding it.
    pub fn secret_seen_count(&self, secret: &str) -> u64 {
        self.shared
            .lock()
            .secret_digests
            .get(&digest(secret))
            .copied()
            .unwrap_or(0)
    }

    /// Stops accepting, lets in-flight requests finish (up to 2 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    /// Serves until the process is interrupted (for the CLI and examples).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
