//! Scan list, details, create and export bodies.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Folder, ScanStatus, de};

/// `GET /scans`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ScanList {
    /// Folders (Trash, My Scans, custom ones).
    #[serde(default, deserialize_with = "de::null_list")]
    pub folders: Vec<Folder>,
    /// Scans; `null` on the wire when there are none.
    #[serde(default, deserialize_with = "de::null_list")]
    pub scans: Vec<ScanSummary>,
    /// Server time, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub timestamp: Option<i64>,
}

/// One scan in `GET /scans`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ScanSummary {
    /// Scan id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// UUID of the latest run; `null` for a never-run scan.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Status.
    pub status: ScanStatus,
    /// Folder id (absent on Tenable.io).
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub folder_id: Option<u64>,
    /// Owner login.
    #[serde(default)]
    pub owner: Option<String>,
    /// `local` after a run on the local scanner; `null` before.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Schedule enabled.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub enabled: Option<bool>,
    /// Created, epoch seconds (0 for a never-run scan).
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub creation_date: Option<i64>,
    /// Last modified, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub last_modification_date: Option<i64>,
}

/// `GET /scans/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ScanDetails {
    /// Scan-level information.
    pub info: ScanInfo,
    /// Per-host progress and severity counts.
    #[serde(default, deserialize_with = "de::null_list")]
    pub hosts: Vec<HostSummary>,
    /// Findings grouped by plugin.
    #[serde(default, deserialize_with = "de::null_list")]
    pub vulnerabilities: Vec<VulnerabilitySummary>,
    /// Runs; `null` for a never-run scan.
    #[serde(default, deserialize_with = "de::null_list")]
    pub history: Vec<HistoryEntry>,
}

impl ScanDetails {
    /// Overall progress 0–100: `info.progress` if present, else
    /// `sum(scanprogresscurrent) / sum(scanprogresstotal)`, else 0; 100 once completed.
    pub fn progress(&self) -> u8 {
        if let Some(p) = self.info.progress {
            return p.min(100) as u8;
        }
        if self.info.status == ScanStatus::Completed {
            return 100;
        }
        let (cur, tot) = self.hosts.iter().fold((0u64, 0u64), |(c, t), h| {
            (
                c + h.scanprogresscurrent.unwrap_or(0),
                t + h.scanprogresstotal.unwrap_or(100),
            )
        });
        cur.saturating_mul(100)
            .checked_div(tot)
            .map_or(0, |p| p.min(100) as u8)
    }
}

/// The `info` object of scan details.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ScanInfo {
    /// Scan id.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub object_id: Option<u64>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// UUID of the latest run.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Status.
    pub status: ScanStatus,
    /// Targets as entered.
    #[serde(default)]
    pub targets: Option<String>,
    /// Policy (template) title.
    #[serde(default)]
    pub policy: Option<String>,
    /// Scanner name.
    #[serde(default)]
    pub scanner_name: Option<String>,
    /// Folder id.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub folder_id: Option<u64>,
    /// Hosts scanned so far.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub hostcount: Option<u64>,
    /// Run start, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub scan_start: Option<i64>,
    /// Run end, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub scan_end: Option<i64>,
    /// Overall progress, when the server reports one (not on-prem by default).
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub progress: Option<u64>,
}

/// One host of scan details.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct HostSummary {
    /// Host id (for `GET /scans/{id}/hosts/{host_id}`).
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub host_id: Option<u64>,
    /// Host name or address.
    #[serde(default)]
    pub hostname: String,
    /// `A-B/C-D` progress string; informational only, never parsed.
    #[serde(default)]
    pub progress: Option<String>,
    /// Progress numerator.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub scanprogresscurrent: Option<u64>,
    /// Progress denominator.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub scanprogresstotal: Option<u64>,
    /// Critical findings.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub critical: Option<u64>,
    /// High findings.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub high: Option<u64>,
    /// Medium findings.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub medium: Option<u64>,
    /// Low findings.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub low: Option<u64>,
    /// Informational findings.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub info: Option<u64>,
}

/// One plugin row of scan details' `vulnerabilities`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct VulnerabilitySummary {
    /// Plugin id.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub plugin_id: Option<u64>,
    /// Plugin name.
    #[serde(default)]
    pub plugin_name: Option<String>,
    /// Plugin family.
    #[serde(default)]
    pub plugin_family: Option<String>,
    /// Severity 0–4.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub severity: Option<u64>,
    /// Occurrences.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub count: Option<u64>,
}

/// One run in `history`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct HistoryEntry {
    /// Run id (`history_id` query parameter).
    #[serde(deserialize_with = "de::lenient_u64")]
    pub history_id: Option<u64>,
    /// Run UUID (the launch's `scan_uuid`).
    #[serde(default)]
    pub uuid: Option<String>,
    /// The run's status.
    pub status: ScanStatus,
    /// Created, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub creation_date: Option<i64>,
    /// Last modified, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub last_modification_date: Option<i64>,
}

/// The `scan` object returned by `POST /scans`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct CreatedScan {
    /// The new scan's id.
    pub id: u64,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// A `template-…` placeholder, not a run UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Folder id (`tag_id`).
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub tag_id: Option<u64>,
    /// Targets as stored.
    #[serde(default)]
    pub custom_targets: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct CreatedScanEnvelope {
    pub(crate) scan: CreatedScan,
}

#[derive(Deserialize)]
pub(crate) struct LaunchResponse {
    #[serde(default)]
    pub(crate) scan_uuid: Option<String>,
}

/// An export file id. Opaque: an integer on Nessus, a string (`SSE-…`) on Tenable.io.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct FileId(String);

impl FileId {
    /// Wraps an id as received.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as it goes into a URL path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for FileId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::lenient_string(d)?.map(FileId).ok_or_else(|| {
            serde::de::Error::custom("export file id is neither a string nor a number")
        })
    }
}

/// `POST /scans/{id}/export` response.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ExportFile {
    /// File id for `export/{file}/status|download`.
    pub file: FileId,
    /// Download token for `tokens/{token}/…` (Nessus 7+).
    #[serde(default, deserialize_with = "de::lenient_string")]
    pub token: Option<String>,
}

/// `GET /scans/{id}/export/{file}/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportStatus {
    /// Still generating.
    Loading,
    /// Ready to download.
    Ready,
    /// Generation failed.
    Error,
    /// Anything else.
    Other(String),
}

impl<'de> Deserialize<'de> for ExportStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            #[serde(default)]
            status: String,
        }
        let raw = Raw::deserialize(d)?;
        Ok(match raw.status.as_str() {
            "loading" => Self::Loading,
            "ready" => Self::Ready,
            "error" => Self::Error,
            _ => Self::Other(raw.status),
        })
    }
}

/// HTML/PDF report chapters (without any, Nessus renders only a cover page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Chapter {
    /// `vuln_hosts_summary`.
    VulnHostsSummary,
    /// `vuln_by_host`.
    VulnByHost,
    /// `vuln_by_plugin`.
    VulnByPlugin,
    /// `remediations`.
    Remediations,
    /// `compliance_exec`.
    ComplianceExec,
    /// `compliance`.
    Compliance,
}

impl Chapter {
    /// Every chapter.
    pub const ALL: [Self; 6] = [
        Self::VulnHostsSummary,
        Self::VulnByHost,
        Self::VulnByPlugin,
        Self::Remediations,
        Self::ComplianceExec,
        Self::Compliance,
    ];

    /// The Nessus name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VulnHostsSummary => "vuln_hosts_summary",
            Self::VulnByHost => "vuln_by_host",
            Self::VulnByPlugin => "vuln_by_plugin",
            Self::Remediations => "remediations",
            Self::ComplianceExec => "compliance_exec",
            Self::Compliance => "compliance",
        }
    }
}
