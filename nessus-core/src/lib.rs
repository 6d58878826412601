//! Typed async client for the on-prem Tenable Nessus REST API, the scanner pool
//! model (config, target policy, selection, circuit breaker) and, behind the
//! `sim` feature, a faithful Nessus simulator used by tests, benches and demos.

mod client;
mod error;
mod models;
mod scanner;

pub use client::{
    Credentials, ExportOptions, ExportPolling, NessusClient, NessusClientBuilder, RetryPolicy,
    TlsOptions,
};
pub use error::{BoxError, Error, Result, TransportKind};
pub use models::{
    Chapter, CreatedScan, EscalationMethod, ExportFile, ExportStatus, Features, FileId, Folder,
    HistoryEntry, HostSummary, License, Policy, ScanDetails, ScanInfo, ScanList, ScanStatus,
    ScanSummary, ScannerInfo, ServerProperties, ServerStatus, SessionInfo, SshAuth, SshCredentials,
    Template, VulnerabilitySummary,
};
pub use scanner::{BoxFuture, ExportFormat, ScanId, ScanSpec, ScanState, Scanner};

#[cfg(feature = "sim")]
pub mod sim;
