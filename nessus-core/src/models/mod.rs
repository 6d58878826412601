//! Typed serde models of Nessus request and response bodies.

mod credentials;
mod status;

pub use credentials::{EscalationMethod, SshAuth, SshCredentials};
pub use status::ScanStatus;
