//! Typed async client for the on-prem Tenable Nessus REST API, the scanner pool
//! model (config, target policy, selection, circuit breaker) and, behind the
//! `sim` feature, a faithful Nessus simulator used by tests, benches and demos.

mod error;
mod models;
mod scanner;

pub use error::{BoxError, Error, Result, TransportKind};
pub use models::{EscalationMethod, ScanStatus, SshAuth, SshCredentials};
pub use scanner::{BoxFuture, ExportFormat, ScanId, ScanSpec, ScanState, Scanner};
