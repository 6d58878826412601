//! Typed async client for the on-prem Tenable Nessus REST API, the scanner pool
//! model (config, target policy, selection, circuit breaker) and, behind the
//! `sim` feature, a faithful Nessus simulator used by tests, benches and demos.
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
mod models;
mod scanner;
mod select;
mod targets;

pub use breaker::{
    BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, BreakerStatus, CircuitBreaker, Clock,
    ManualClock, SystemClock,
};
pub use client::{
    Credentials, ExportOptions, ExportPolling, NessusClient, NessusClientBuilder, RetryPolicy,
    TlsOptions,
};
pub use config::{
    AuthMode, BackendConfig, Config, ConfigSecret, CredentialProfile, InstanceAuth, InstanceConfig,
    Pool, ProfileAuth, QueueSettings, SecretOrigin, ServerSettings,
};
pub use error::{BoxError, Error, Result, TransportKind};
pub use instance::{GuardedScanner, Instance, counts_as_scanner_failure};
pub use models::{
    Chapter, CreatedScan, EscalationMethod, ExportFile, ExportStatus, Features, FileId, Folder,
    HistoryEntry, HostSummary, License, Policy, ScanDetails, ScanInfo, ScanList, ScanStatus,
    ScanSummary, ScannerInfo, ServerProperties, ServerStatus, SessionInfo, SshAuth, SshCredentials,
    Template, VulnerabilitySummary,
};
pub use scanner::{BoxFuture, ExportFormat, ScanId, ScanSpec, ScanState, Scanner};
pub use select::{InstanceLoad, Unavailable, select_instance};
pub use targets::{
    ApprovedTargets, DEFAULT_MAX_HOSTS, InvalidTarget, IpNetwork, PolicyRule, Refusal,
    RefusalReason, Target, TargetPolicy, TargetRefusal, split_targets, targets_match,
};

#[cfg(feature = "sim")]
pub mod sim;
