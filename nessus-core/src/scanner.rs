//! The `Scanner` trait: the handful of operations the worker drives on one Nessus
//! instance. [`NessusClient`] implements it; tests may use the
//! simulator behind a real client rather than a fake implementation.

use std::{fmt, future::Future, path::Path, pin::Pin};

use serde::{Deserialize, Serialize};

use crate::{
    NessusClient,
    client::ExportOptions,
    error::{Error, Result},
    models::{ScanStatus, SshCredentials},
};

/// A boxed, `Send` future, so that [`Scanner`] stays object safe (`Arc<dyn Scanner>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A Nessus scan id (an integer in every Nessus version).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScanId(pub u64);

impl fmt::Display for ScanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Export formats the worker can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ExportFormat {
    /// `.nessus` XML (v2), the input of `nessus-schema`.
    #[default]
    Nessus,
    /// CSV.
    Csv,
    /// HTML report (sent with every chapter, since Nessus otherwise renders a cover page).
    Html,
}

impl ExportFormat {
    /// The `format` value of `POST /scans/{id}/export`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nessus => "nessus",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What to create: the worker names scans `mcp-{task_id}` so it can find them again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanSpec {
    /// Scan name; unique per task so a scan can be re-found by name after a crash.
    pub name: String,
    /// Targets, already checked against the pool's policy. Sent newline-separated.
    pub targets: Vec<String>,
    /// Scan template name as listed by `GET /editor/scan/templates` (`basic`,
    /// `advanced`, …); resolved to its UUID, never hard-coded.
    pub template: String,
    /// Folder name; `None` means the user's main folder (`type: main`, "My Scans").
    pub folder: Option<String>,
    /// Description; defaults to the name.
    pub description: Option<String>,
    /// SSH credentials for an authenticated scan.
    pub credentials: Option<SshCredentials>,
}

impl ScanSpec {
    /// A scan named `name` of `targets` with the `advanced` template in the main folder.
    pub fn new<I, S>(name: impl Into<String>, targets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            targets: targets.into_iter().map(Into::into).collect(),
            template: "advanced".to_owned(),
            folder: None,
            description: None,
            credentials: None,
        }
    }

    /// Use the template with this name.
    #[must_use]
    pub fn template(mut self, name: impl Into<String>) -> Self {
        self.template = name.into();
        self
    }

    /// Put the scan in the folder with this name.
    #[must_use]
    pub fn folder(mut self, name: impl Into<String>) -> Self {
        self.folder = Some(name.into());
        self
    }

    /// Set the description.
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }

    /// Scan with these SSH credentials.
    #[must_use]
    pub fn credentials(mut self, creds: SshCredentials) -> Self {
        self.credentials = Some(creds);
        self
    }
}

/// Where a scan is: its status and overall progress.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScanState {
    /// Status as reported by Nessus.
    pub status: ScanStatus,
    /// Overall progress 0–100: `info.progress` when present, else the per-host sums.
    pub progress: u8,
    /// UUID of the latest run, if the scan ever ran.
    pub uuid: Option<String>,
    /// Number of hosts Nessus reports on so far.
    pub host_count: usize,
}

/// The operations the worker needs from one Nessus instance.
///
/// Retry semantics: implementations retry idempotent reads (`find_scan_by_name`,
/// `status`, export polling and download) themselves. `create_scan` and `launch` are
/// never retried blindly: when they fail with [`Error::outcome_unknown`] the caller must
/// look the scan up by name before acting again.
///
/// [`Error::outcome_unknown`]: crate::Error::outcome_unknown
pub trait Scanner: Send + Sync + fmt::Debug {
    /// Creates (does not launch) a scan and returns its id.
    fn create_scan<'a>(&'a self, spec: &'a ScanSpec) -> BoxFuture<'a, Result<ScanId>>;

    /// The id of the scan with exactly this name, if one exists (outside the trash).
    fn find_scan_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ScanId>>>;

    /// Launches a scan; returns the run UUID.
    fn launch(&self, id: ScanId) -> BoxFuture<'_, Result<String>>;

    /// Current status and progress.
    fn status(&self, id: ScanId) -> BoxFuture<'_, Result<ScanState>>;

    /// Requests an export, polls it until ready (bounded), and streams it to `path`.
    /// Fails with `ExportTooLarge` (and removes the partial file) beyond `size_cap`
    /// bytes. Returns the number of bytes written.
    fn export_to_file<'a>(
        &'a self,
        id: ScanId,
        format: ExportFormat,
        path: &'a Path,
        size_cap: u64,
    ) -> BoxFuture<'a, Result<u64>>;

    /// Stops a running scan; stopping a scan that is not running is not an error.
    fn stop(&self, id: ScanId) -> BoxFuture<'_, Result<()>>;

    /// Deletes a scan; deleting a scan that is already gone is not an error.
    fn delete(&self, id: ScanId) -> BoxFuture<'_, Result<()>>;
}

impl Scanner for NessusClient {
    fn create_scan<'a>(&'a self, spec: &'a ScanSpec) -> BoxFuture<'a, Result<ScanId>> {
        Box::pin(async move {
            match NessusClient::create_scan(self, spec).await {
                Ok(created) => Ok(ScanId(created.id)),
                // Nessus 10 sometimes drops the connection instead of answering (and PUT/
                // DELETE were seen to succeed before the drop): when the outcome is
                // unknown, a scan with this exact name is ours. Only reads happen here.
                Err(e) if e.outcome_unknown() => match self.find_scan_by_name(&spec.name).await {
                    Ok(Some(id)) => {
                        tracing::info!(scan = %spec.name, id = id.0, "create failed in transit but the scan exists");
                        Ok(id)
                    }
                    _ => Err(e),
                },
                Err(e) => Err(e),
            }
        })
    }

    fn find_scan_by_name<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<ScanId>>> {
        Box::pin(async move {
            let list = self.list_scans(None).await?;
            let trash: Vec<u64> = list
                .folders
                .iter()
                .filter(|f| f.is_trash())
                .map(|f| f.id)
                .collect();
            // Names are unique per task; if a duplicate exists anyway, the newest wins.
            Ok(list
                .scans
                .iter()
                .filter(|s| s.name == name && !s.folder_id.is_some_and(|f| trash.contains(&f)))
                .map(|s| ScanId(s.id))
                .max())
        })
    }

    fn launch(&self, id: ScanId) -> BoxFuture<'_, Result<String>> {
        Box::pin(self.launch_scan(id))
    }

    fn status(&self, id: ScanId) -> BoxFuture<'_, Result<ScanState>> {
        Box::pin(async move {
            let d = self.scan_details(id, None).await?;
            Ok(ScanState {
                progress: d.progress(),
                uuid: d.info.uuid.clone().filter(|u| !u.is_empty()),
                host_count: d.hosts.len(),
                status: d.info.status,
            })
        })
    }

    fn export_to_file<'a>(
        &'a self,
        id: ScanId,
        format: ExportFormat,
        path: &'a Path,
        size_cap: u64,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            NessusClient::export_to_file(self, id, &ExportOptions::new(format), path, size_cap)
                .await
        })
    }

    fn stop(&self, id: ScanId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.stop_scan(id).await {
                // 409 "Scan is not active": already stopped or finished.
                Err(Error::Api { status: 409, .. }) => Ok(()),
                other => other,
            }
        })
    }

    fn delete(&self, id: ScanId) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            match self.delete_scan(id).await {
                Err(Error::Api { status: 404, .. }) => Ok(()),
                other => other,
            }
        })
    }
}
