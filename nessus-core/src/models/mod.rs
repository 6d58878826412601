//! Typed serde models of Nessus request and response bodies. Every model ignores
//! unknown fields and accepts `null` for lists, since both vary between versions.

mod catalog;
mod credentials;
pub(crate) mod de;
mod scans;
mod server;
mod status;

pub use catalog::{Folder, Policy, ScannerInfo, Template};
pub(crate) use catalog::{FolderList, PolicyList, ScannerList, TemplateList};
pub use credentials::{EscalationMethod, SshAuth, SshCredentials};
pub use scans::{
    Chapter, CreatedScan, ExportFile, ExportStatus, FileId, HistoryEntry, HostSummary, ScanDetails,
    ScanInfo, ScanList, ScanSummary, VulnerabilitySummary,
};
pub(crate) use scans::{CreatedScanEnvelope, LaunchResponse};
pub(crate) use server::LoginResponse;
pub use server::{Features, License, ServerProperties, ServerStatus, SessionInfo};
pub use status::ScanStatus;
