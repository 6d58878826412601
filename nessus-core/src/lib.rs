//! Typed async client for the on-prem Tenable Nessus REST API, the scanner pool
//! model (config, target policy, selection, circuit breaker) and, behind the
//! `sim` feature, a faithful Nessus simulator used by tests, benches and demos.
//!
//! The client side in one picture: [`NessusClient`] (built with
//! [`NessusClient::builder`]) speaks the REST API with typed models and one
//! [`enum@Error`]; it implements [`Scanner`], the object-safe trait the worker drives
//! (`create_scan`, `find_scan_by_name`, `launch`, `status`, `export_to_file`, `stop`,
//! `delete`).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> nessus_core::Result<()> {
//! use std::{sync::Arc, time::Duration};
//! use nessus_core::{Credentials, ExportFormat, NessusClient, ScanSpec, Scanner, sim::Simulator};
//!
//! // A simulated Nessus on a free port (feature `sim`); a real one works the same way.
//! let sim = Simulator::builder().scan_duration(Duration::from_millis(100)).start("127.0.0.1:0").await?;
//! let client = NessusClient::builder()
//!     .base_url(sim.base_url())
//!     .credentials(Credentials::api_keys("access", "secret"))
//!     .build()?;
//! let scanner: Arc<dyn Scanner> = Arc::new(client);
//! let id = scanner.create_scan(&ScanSpec::new("mcp-42", ["192.0.2.10"])).await?;
//! scanner.launch(id).await?;
//! while !scanner.status(id).await?.status.is_terminal() {
//!     tokio::time::sleep(Duration::from_millis(20)).await;
//! }
//! let path = std::env::temp_dir().join(format!("nessus-core-doc-{}.nessus", std::process::id()));
//! let bytes = scanner.export_to_file(id, ExportFormat::Nessus, &path, 64 << 20).await?;
//! assert!(bytes > 0);
//! # std::fs::remove_file(&path).ok();
//! # Ok(()) }
//! ```
//!
//! The pool side: [`Config`] loads `scanners.yaml` (the predecessor's format plus
//! auth, TLS, target policies and credential profiles); each [`Pool`] checks targets
//! against its deny-by-default [`TargetPolicy`]; [`select_instance`] picks a scanner
//! from a load snapshot; [`Instance`] wraps every call in a [`CircuitBreaker`].
//!
//! ```
//! use nessus_core::Config;
//!
//! let yaml = r#"
//! nessus:
//!   target_policy:
//!     allow: [192.0.2.0/24]
//!   instances:
//!     - instance_id: scanner1
//!       url: https://nessus.example:8834
//!       access_key: ${NESSUS_ACCESS_KEY:-test-access}
//!       secret_key: ${NESSUS_SECRET_KEY:-test-secret}
//! "#;
//! let config = Config::from_yaml_with_env(yaml, &|_| None)?;
//! let pool = config.pool("nessus").expect("pool");
//! assert_eq!(pool.check_targets("192.0.2.10-20")?.host_count(), 11);
//! assert!(pool.check_targets("127.0.0.1").is_err());
//! # Ok::<(), nessus_core::Error>(())
//! ```

mod breaker;
mod client;
mod config;
mod error;
mod instance;
mod log_filter;
mod models;
mod probe;
mod scanner;
mod select;
mod targets;

pub use breaker::{
    BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, BreakerStatus, CircuitBreaker, Clock,
    ManualClock, SystemClock,
};
pub use client::{
    Credentials, ExportOptions, ExportPolling, NessusClient, NessusClientBuilder, RetryPolicy,
    ServerClock, TlsOptions,
};
pub use config::{
    ApprovalRules, AuthMode, AuthSettings, BackendConfig, Config, ConfigSecret, CredentialProfile,
    DEFAULT_APPROVAL_EXPIRY, InstanceAuth, InstanceConfig, IntrospectionSettings, OAuthSettings,
    Pool, PrincipalSettings, ProfileAuth, QueueSettings, ScopeNames, SecretOrigin, ServerSettings,
    ToolOutput, WEBHOOK_EVENTS, WebhookConfig, display_url,
};
pub use error::{BoxError, Error, Result, TransportKind};
pub use instance::{GuardedScanner, Instance, counts_as_scanner_failure};
pub use log_filter::{DEPENDENCY_LOG_CEILING, OWN_LOG_TARGETS, log_filter};
pub use models::{
    Chapter, CreatedScan, EscalationMethod, ExportFile, ExportStatus, Features, FileId, Folder,
    HistoryEntry, HostSummary, License, Policy, ScanDetails, ScanInfo, ScanList, ScanStatus,
    ScanSummary, ScannerInfo, ServerProperties, ServerStatus, SessionInfo, SshAuth, SshCredentials,
    Template, VulnerabilitySummary,
};
pub use probe::{CLOCK_SKEW_LIMIT_SECS, ScannerProbe, chain as error_chain, probe, tls_setting};
pub use scanner::{BoxFuture, ExportFormat, ScanId, ScanSpec, ScanState, Scanner};
pub use select::{InstanceLoad, Unavailable, select_instance};
pub use targets::{
    ApprovedTargets, DEFAULT_MAX_HOSTS, InvalidTarget, IpNetwork, PolicyRule, Refusal,
    RefusalReason, Target, TargetPolicy, TargetRefusal, split_targets, targets_match,
};

#[cfg(feature = "sim")]
pub mod sim;
