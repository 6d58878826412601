//! Scan summary and credential check (seed-spec §7, with the scan-type naming bug fixed).

use std::collections::BTreeMap;
use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::parser::NessusReader;
use crate::record::{Finding, Host, Record, ScanMetadata};

/// Plugins whose presence shows local (authenticated) checks ran (the predecessor's list).
pub const AUTH_PLUGINS: [u32; 8] = [20811, 21643, 97833, 66334, 12634, 51192, 33851, 22869];
/// "Nessus Scan Information": its output has a `Credentialed checks : ...` line.
pub const PLUGIN_SCAN_INFO: u32 = 19506;
/// "Target Credential Status by Authentication Protocol - Valid Credentials Provided".
pub const PLUGIN_VALID_CREDENTIALS: u32 = 141118;
/// "Target Credential Issues by Authentication Protocol - Insufficient Privilege".
pub const PLUGIN_INSUFFICIENT_PRIVILEGE: u32 = 110385;
/// "Target Credential Status by Authentication Protocol - Failure for Provided Credentials".
pub const PLUGIN_CREDENTIAL_FAILURE: u32 = 104410;
/// Below this many [`AUTH_PLUGINS`] findings, a scan without other evidence is not
/// considered authenticated.
pub const MIN_AUTH_PLUGINS: usize = 5;

/// Findings per severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityCounts {
    /// Severity 4.
    pub critical: u64,
    /// Severity 3.
    pub high: u64,
    /// Severity 2.
    pub medium: u64,
    /// Severity 1.
    pub low: u64,
    /// Severity 0 or missing.
    pub info: u64,
}

impl SeverityCounts {
    /// Counts one finding of `severity`.
    pub fn add(&mut self, severity: Option<u8>) {
        match severity {
            Some(4) => self.critical += 1,
            Some(3) => self.high += 1,
            Some(2) => self.medium += 1,
            Some(1) => self.low += 1,
            _ => self.info += 1,
        }
    }

    /// All findings except informational ones.
    pub fn total_excluding_info(&self) -> u64 {
        self.critical + self.high + self.medium + self.low
    }
}

/// Whether a host was scanned with working credentials.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Credentialed {
    /// Credentials worked.
    Yes,
    /// Credentials were not used or did not work.
    No,
    /// Credentials worked with insufficient privilege, or only for some protocols.
    Partial,
    /// No evidence either way.
    #[default]
    Unknown,
}

/// The overall outcome of authentication for a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthenticationStatus {
    /// Every host with evidence authenticated.
    Success,
    /// No host authenticated.
    Failed,
    /// Some hosts (or protocols) authenticated, some did not.
    Partial,
    /// The scan was not an authenticated scan.
    NotApplicable,
}

/// Per-host credential status and counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStatus {
    /// `ReportHost@name`.
    pub host: String,
    /// `host-ip`.
    pub ip: Option<String>,
    /// Number of findings.
    pub findings: u64,
    /// Findings per severity.
    pub severity_counts: SeverityCounts,
    /// Credential status.
    pub credentialed: Credentialed,
    /// Why: which plugin or property decided.
    pub evidence: Vec<String>,
    #[serde(skip)]
    scan_info: Option<Credentialed>,
    #[serde(skip)]
    property: Option<bool>,
    #[serde(skip)]
    valid_credentials: bool,
    #[serde(skip)]
    insufficient_privilege: bool,
    #[serde(skip)]
    credential_failure: bool,
}

/// Everything the worker and the status tools report about a finished scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scan name, policy, start and end.
    pub scan: ScanMetadata,
    /// Size of the `.nessus` file.
    pub file_size_bytes: u64,
    /// Number of `ReportHost` elements.
    pub hosts_scanned: u64,
    /// Number of `ReportItem` elements (all severities).
    pub total_plugins: u64,
    /// Findings excluding informational ones.
    pub total_vulnerabilities: u64,
    /// Findings per severity.
    pub severity_counts: SeverityCounts,
    /// Number of findings from [`AUTH_PLUGINS`].
    pub auth_plugins_found: u64,
    /// `yes`/`no`/`partial` from the first plugin 19506 output, as the predecessor had it.
    pub credentialed_status_raw: Option<String>,
    /// Compliance results per outcome (`PASSED`, `FAILED`, ...).
    pub compliance_counts: BTreeMap<String, u64>,
    /// Per-host status, in document order.
    pub hosts: Vec<HostStatus>,
}

impl Summary {
    /// Reads a whole `.nessus` stream and summarizes it.
    pub fn from_reader<R: BufRead>(reader: R, file_size_bytes: u64) -> Result<Summary> {
        let mut b = SummaryBuilder::default();
        for record in NessusReader::new(reader) {
            b.add(&record?);
        }
        Ok(b.finish(file_size_bytes))
    }

    /// The authentication outcome. `authenticated_scan` is whether credentials were
    /// supplied (the predecessor compared against scan-type names its tools never used, so
    /// a failed login never counted; here the caller says it directly).
    pub fn authentication_status(&self, authenticated_scan: bool) -> AuthenticationStatus {
        if !authenticated_scan {
            return AuthenticationStatus::NotApplicable;
        }
        let known: Vec<Credentialed> = self
            .hosts
            .iter()
            .map(|h| h.credentialed)
            .filter(|c| *c != Credentialed::Unknown)
            .collect();
        if known.is_empty() {
            return if self.auth_plugins_found as usize >= MIN_AUTH_PLUGINS {
                AuthenticationStatus::Success
            } else {
                AuthenticationStatus::Failed
            };
        }
        if known.iter().all(|c| *c == Credentialed::Yes) {
            AuthenticationStatus::Success
        } else if known.iter().all(|c| *c == Credentialed::No) {
            AuthenticationStatus::Failed
        } else {
            AuthenticationStatus::Partial
        }
    }
}

/// Builds a [`Summary`] from records as they stream past.
#[derive(Debug, Default)]
pub struct SummaryBuilder {
    summary: Summary,
    current: Option<usize>,
    by_name: std::collections::HashMap<String, usize>,
    earliest: Option<(i64, String)>,
    latest: Option<(i64, String)>,
}

impl SummaryBuilder {
    /// Accounts for one record.
    pub fn add(&mut self, record: &Record) {
        match record {
            Record::Scan(m) => {
                self.summary.scan.report_name = m.report_name.clone();
                self.summary.scan.policy_name = m.policy_name.clone();
            }
            Record::Host(h) => self.add_host(h),
            Record::Finding(f) => self.add_finding(f),
            Record::Compliance(c) => {
                let key = c.result.clone().unwrap_or_else(|| "UNKNOWN".to_owned());
                *self.summary.compliance_counts.entry(key).or_default() += 1;
            }
        }
    }

    fn add_host(&mut self, h: &Host) {
        self.summary.hosts_scanned += 1;
        let idx = self.summary.hosts.len();
        self.summary.hosts.push(HostStatus {
            host: h.name.clone(),
            ip: h.ip.map(|i| i.to_string()),
            property: h.credentialed,
            ..HostStatus::default()
        });
        self.by_name.insert(h.name.clone(), idx);
        self.current = Some(idx);
        if let Some(start) = &h.start {
            let key = h.start_timestamp.unwrap_or(i64::MAX);
            if self.earliest.as_ref().is_none_or(|(k, _)| key < *k) {
                self.earliest = Some((key, start.clone()));
            }
        }
        if let Some(end) = &h.end {
            let key = h.end_timestamp.unwrap_or(i64::MIN);
            if self.latest.as_ref().is_none_or(|(k, _)| key >= *k) {
                self.latest = Some((key, end.clone()));
            }
        }
    }

    fn add_finding(&mut self, f: &Finding) {
        let s = &mut self.summary;
        s.total_plugins += 1;
        s.severity_counts.add(f.severity);
        let plugin = f.plugin_id.unwrap_or(0);
        if AUTH_PLUGINS.contains(&plugin) {
            s.auth_plugins_found += 1;
        }
        let idx = match self.current {
            Some(i) if s.hosts[i].host == f.host => Some(i),
            _ => self.by_name.get(&f.host).copied(),
        };
        let raw = (plugin == PLUGIN_SCAN_INFO)
            .then(|| scan_info_credentialed(f))
            .flatten();
        if s.credentialed_status_raw.is_none()
            && let Some(r) = raw
        {
            s.credentialed_status_raw = Some(
                match r {
                    Credentialed::Yes => "yes",
                    Credentialed::No => "no",
                    _ => "partial",
                }
                .to_owned(),
            );
        }
        let Some(i) = idx else {
            return;
        };
        let h = &mut s.hosts[i];
        h.findings += 1;
        h.severity_counts.add(f.severity);
        match plugin {
            PLUGIN_SCAN_INFO => h.scan_info = raw.or(h.scan_info),
            PLUGIN_VALID_CREDENTIALS => h.valid_credentials = true,
            PLUGIN_INSUFFICIENT_PRIVILEGE => h.insufficient_privilege = true,
            PLUGIN_CREDENTIAL_FAILURE => h.credential_failure = true,
            _ => {}
        }
    }

    /// Accounts for `later`, which saw the records that follow this builder's in the same
    /// document (convert's second half of a split file): the result is what one builder
    /// fed every record would hold. `later` must not have seen a `Scan` record.
    pub(crate) fn append(&mut self, later: SummaryBuilder) {
        let offset = self.summary.hosts.len();
        let l = later.summary;
        let s = &mut self.summary;
        s.hosts_scanned += l.hosts_scanned;
        s.total_plugins += l.total_plugins;
        let (a, b) = (&mut s.severity_counts, l.severity_counts);
        a.critical += b.critical;
        a.high += b.high;
        a.medium += b.medium;
        a.low += b.low;
        a.info += b.info;
        s.auth_plugins_found += l.auth_plugins_found;
        if s.credentialed_status_raw.is_none() {
            s.credentialed_status_raw = l.credentialed_status_raw;
        }
        for (k, n) in l.compliance_counts {
            *s.compliance_counts.entry(k).or_default() += n;
        }
        s.hosts.extend(l.hosts);
        for (name, idx) in later.by_name {
            self.by_name.insert(name, idx + offset);
        }
        if let Some(i) = later.current {
            self.current = Some(i + offset);
        }
        // Earliest: the first strictly smaller wins; latest: the last of equals wins.
        if let Some(e) = later.earliest
            && self.earliest.as_ref().is_none_or(|(k, _)| e.0 < *k)
        {
            self.earliest = Some(e);
        }
        if let Some(e) = later.latest
            && self.latest.as_ref().is_none_or(|(k, _)| e.0 >= *k)
        {
            self.latest = Some(e);
        }
    }

    /// The finished summary.
    pub fn finish(mut self, file_size_bytes: u64) -> Summary {
        let s = &mut self.summary;
        s.file_size_bytes = file_size_bytes;
        s.total_vulnerabilities = s.severity_counts.total_excluding_info();
        s.scan.scan_start = self.earliest.map(|(_, v)| v);
        s.scan.scan_end = self.latest.map(|(_, v)| v);
        for h in &mut s.hosts {
            decide(h);
        }
        self.summary
    }
}

fn decide(h: &mut HostStatus) {
    let mut ev = Vec::new();
    let mut status = Credentialed::Unknown;
    if let Some(c) = h.scan_info {
        ev.push(format!("plugin 19506 reports credentialed checks: {c:?}").to_lowercase());
        status = c;
    } else if let Some(p) = h.property {
        ev.push(format!("host property Credentialed_Scan = {p}"));
        status = if p {
            Credentialed::Yes
        } else {
            Credentialed::No
        };
    }
    if h.valid_credentials {
        ev.push("plugin 141118 (valid credentials provided)".to_owned());
        if status == Credentialed::Unknown {
            status = Credentialed::Yes;
        }
    }
    if h.credential_failure {
        ev.push("plugin 104410 (failure for provided credentials)".to_owned());
        status = match status {
            Credentialed::Unknown | Credentialed::No => Credentialed::No,
            _ => Credentialed::Partial,
        };
    }
    if h.insufficient_privilege {
        ev.push("plugin 110385 (insufficient privilege)".to_owned());
        if status == Credentialed::Yes {
            status = Credentialed::Partial;
        }
    }
    h.credentialed = status;
    h.evidence = ev;
}

/// Reads `Credentialed checks : yes|no|partial` from a plugin 19506 output. The first
/// line mentioning it decides (the predecessor's rule).
fn scan_info_credentialed(f: &Finding) -> Option<Credentialed> {
    let Some(crate::value::ValueRef::Text(out)) = f.child("plugin_output") else {
        return None;
    };
    let line = out
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("credentialed checks"))?
        .to_ascii_lowercase();
    let value = line.split_once(':').map_or(line.as_str(), |(_, v)| v);
    if value.contains("yes") {
        Some(Credentialed::Yes)
    } else if value.contains("partial") {
        Some(Credentialed::Partial)
    } else if value.contains("no") {
        Some(Credentialed::No)
    } else {
        None
    }
}
