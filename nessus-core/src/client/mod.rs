//! `NessusClient`: the HTTP layer (auth, TLS, retries, error mapping) and its builder.
//! Endpoint methods live in `api.rs` and `export.rs`.

mod api;
mod auth;
mod clock;
mod export;
mod request;
mod retry;
mod tls;

use std::{collections::HashMap, fmt, sync::Arc, time::Duration};

pub use auth::Credentials;
pub use clock::ServerClock;
pub use export::ExportOptions;
pub use retry::RetryPolicy;
pub use tls::TlsOptions;

use crate::error::{Error, Result};
use auth::AuthState;

/// A typed async client for one Nessus instance. Cheap to clone (shared connection pool
/// and session); every clone sees the same session, so there is never a reason to close
/// one while other tasks use it.
///
/// ```no_run
/// # async fn run() -> nessus_core::Result<()> {
/// use nessus_core::{Credentials, NessusClient, TlsOptions};
/// let client = NessusClient::builder()
///     .base_url("https://nessus.example:8834")
///     .credentials(Credentials::api_keys("ACCESS", "SECRET"))
///     .tls(TlsOptions::ca_file("/etc/nessus/ca.pem"))
///     .build()?;
/// for scan in client.list_scans(None).await?.scans {
///     println!("{} {} {}", scan.id, scan.status, scan.name);
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct NessusClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base_url: String,
    auth: AuthState,
    retry: RetryPolicy,
    export: ExportPolling,
    discovered: std::sync::Mutex<Discovered>,
}

/// Ids looked up once and reused: template UUIDs by name, the main folder, the scanner.
#[derive(Default)]
struct Discovered {
    templates: HashMap<String, String>,
    folders: HashMap<String, u64>,
    main_folder: Option<u64>,
    scanner_id: Option<Option<u64>>,
}

impl fmt::Debug for NessusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match &self.inner.auth.credentials {
            Credentials::ApiKeys { .. } => "api_keys",
            Credentials::Session { .. } => "session",
            Credentials::WebUi { .. } => "web_ui",
        };
        f.debug_struct("NessusClient")
            .field("base_url", &self.inner.base_url)
            .field("auth", &mode)
            .finish_non_exhaustive()
    }
}

/// How exports are polled until ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportPolling {
    /// Longest wait between status polls (polling starts faster and backs off to it).
    pub interval: Duration,
    /// Give up (with `ExportTimeout`) after this long.
    pub timeout: Duration,
}

impl Default for ExportPolling {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(600),
        }
    }
}

impl ExportPolling {
    /// Poll every `interval`, for at most `timeout`.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

/// Builder of [`NessusClient`].
#[derive(Debug, Default)]
#[must_use]
pub struct NessusClientBuilder {
    base_url: Option<String>,
    credentials: Option<Credentials>,
    tls: TlsOptions,
    timeout: Option<Duration>,
    connect_timeout: Option<Duration>,
    retry: RetryPolicy,
    export: ExportPolling,
    user_agent: Option<String>,
}

impl NessusClient {
    /// Starts a builder.
    pub fn builder() -> NessusClientBuilder {
        NessusClientBuilder::default()
    }

    /// The base URL (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }
}

impl NessusClientBuilder {
    /// Base URL, e.g. `https://nessus.example:8834` (a trailing `/` is removed).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// How to authenticate (required).
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// TLS trust settings (default: verify against the system roots).
    pub fn tls(mut self, tls: TlsOptions) -> Self {
        self.tls = tls;
        self
    }

    /// Whole-request timeout (default 30 s). Downloads are not bounded by it; they are
    /// bounded by the read timeout between chunks.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// TCP + TLS connect timeout (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Retry policy for idempotent calls.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Export polling cadence and deadline.
    pub fn export_polling(mut self, polling: ExportPolling) -> Self {
        self.export = polling;
        self
    }

    /// Overrides the `User-Agent`.
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = Some(ua.into());
        self
    }

    /// Builds the client. Fails on a missing or malformed URL, missing credentials, or
    /// unusable TLS settings. Logs a warning when TLS verification is off.
    pub fn build(self) -> Result<NessusClient> {
        let raw = self
            .base_url
            .ok_or_else(|| Error::client_config("base_url is required"))?;
        let base_url = raw.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url).map_err(|e| Error::ClientConfig {
            reason: format!("base_url {base_url:?} is not a valid URL"),
            source: Some(Box::new(e)),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::client_config(format!(
                "base_url {base_url:?} must use http or https"
            )));
        }
        let credentials = self
            .credentials
            .ok_or_else(|| Error::client_config("credentials are required"))?;
        let mut http = reqwest::Client::builder()
            .timeout(self.timeout.unwrap_or(Duration::from_secs(30)))
            .connect_timeout(self.connect_timeout.unwrap_or(Duration::from_secs(10)))
            .user_agent(
                self.user_agent
                    .unwrap_or_else(|| format!("nessus-core/{}", env!("CARGO_PKG_VERSION"))),
            );
        http = self.tls.apply(http, &base_url)?;
        let http = http.build().map_err(|e| Error::ClientConfig {
            reason: "the HTTP client could not be built".into(),
            source: Some(Box::new(e)),
        })?;
        Ok(NessusClient {
            inner: Arc::new(Inner {
                http,
                base_url,
                auth: AuthState::new(credentials),
                retry: self.retry,
                export: self.export,
                discovered: std::sync::Mutex::default(),
            }),
        })
    }
}
