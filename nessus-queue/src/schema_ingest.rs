//! The `nessus-schema` ingest (feature `schema`): exports become a findings store at
//! `{task_dir}/store` and the status summary the predecessor returned. Behind a feature
//! so the queue itself stays parser-free; the MCP server and `nessus-cli` enable it.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use nessus_schema::{AuthenticationStatus, Store, Summary};

use crate::error::BoxError;
use crate::findings::{HostIdentity, Observed, ObservedHost};
use crate::task::{Completion, ScanType, Task};
use crate::worker::Ingest;

/// Ingests exports into a findings store (`{task_dir}/store`) and builds the
/// status summary the predecessor returned.
#[derive(Debug, Clone, Copy, Default)]
pub struct SchemaIngest;

impl SchemaIngest {
    /// Where the findings store of a task directory lives.
    pub fn store_dir(task_dir: &Path) -> PathBuf {
        crate::ResultsDir::store_in(task_dir)
    }

    /// The completion (status summary, authentication status, warnings) for a
    /// store's summary; `authenticated` says whether the scan had credentials.
    pub fn completion(summary: &Summary, authenticated: bool) -> Completion {
        let auth = match summary.authentication_status(authenticated) {
            AuthenticationStatus::Success => "success",
            AuthenticationStatus::Failed => "failed",
            AuthenticationStatus::Partial => "partial",
            AuthenticationStatus::NotApplicable => "not_applicable",
            _ => "unknown",
        };
        let c = summary.severity_counts;
        let mut warnings = Vec::new();
        if summary.hosts_scanned == 0 {
            warnings.push(
                "the scan produced no hosts: check the targets are reachable from the scanner"
                    .to_owned(),
            );
        }
        if auth == "failed" {
            warnings.push("authentication failed on every host".to_owned());
        }
        Completion {
            authentication_status: Some(auth.to_owned()),
            results_summary: Some(serde_json::json!({
                "hosts_scanned": summary.hosts_scanned,
                // The predecessor's count (low..critical), kept; `total_findings` counts
                // every finding incl. info, as the results' `total_vulnerabilities` does.
                "total_vulnerabilities": summary.total_vulnerabilities,
                "total_findings": c.critical + c.high + c.medium + c.low + c.info,
                "severity_breakdown": {
                    "critical": c.critical, "high": c.high, "medium": c.medium,
                    "low": c.low, "info": c.info,
                },
                "file_size_kb": (summary.file_size_bytes as f64 / 1024.0 * 10.0).round() / 10.0,
                "auth_plugins_found": summary.auth_plugins_found,
            })),
            validation_warnings: warnings,
        }
    }
}

impl SchemaIngest {
    /// What a store's scan found, host by host, for findings over time (from the
    /// indexes and the host table: no record is decoded, no `plugin_output` read).
    pub fn observed(store: &Store) -> Result<Vec<ObservedHost>, nessus_schema::Error> {
        let mut hosts: Vec<ObservedHost> = store
            .hosts()?
            .into_iter()
            .map(|h| ObservedHost {
                identity: HostIdentity {
                    name: h.name,
                    ip: h.ip,
                    fqdn: h.fqdn,
                    netbios: h.netbios,
                    mac: h.mac,
                },
                findings: Vec::new(),
            })
            .collect();
        let index: std::collections::HashMap<String, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.identity.name.clone(), i))
            .collect();
        store.for_each_fingerprint(|fp, severity, name| {
            if let Some(&i) = index.get(&fp.host) {
                hosts[i].findings.push(Observed {
                    plugin_id: fp.plugin_id,
                    port: fp.port,
                    protocol: fp.protocol,
                    severity,
                    plugin_name: name.map(str::to_owned),
                });
            }
        })?;
        Ok(hosts)
    }
}

impl Ingest for SchemaIngest {
    fn observed(&self, task_dir: &Path) -> Result<Option<Vec<ObservedHost>>, BoxError> {
        let store = Store::open(&Self::store_dir(task_dir))?;
        Ok(Some(Self::observed(&store)?))
    }

    fn ingest(&self, task: &Task, export: &Path, task_dir: &Path) -> Result<Completion, BoxError> {
        let dir = Self::store_dir(task_dir);
        // A crash after the store was renamed into place but before the task was
        // completed leaves a finished store: reuse it.
        let store = if dir.exists() {
            Store::open(&dir)?
        } else {
            let file = std::fs::File::open(export)?;
            Store::ingest(BufReader::with_capacity(1 << 16, file), &dir)?
        };
        let authenticated = task.scan_type != ScanType::Untrusted;
        Ok(Self::completion(store.summary(), authenticated))
    }
}
