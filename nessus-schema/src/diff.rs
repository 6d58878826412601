//! Comparing two ingested scans of the same targets.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::record::Fingerprint;
use crate::store::Store;

/// One finding in a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffEntry {
    /// Host, port, protocol, plugin id.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Plugin name.
    pub plugin_name: Option<String>,
    /// Severity (in the newer scan for `unchanged`).
    pub severity: Option<u8>,
}

/// A finding present in both scans whose severity changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeverityChange {
    /// Host, port, protocol, plugin id.
    #[serde(flatten)]
    pub fingerprint: Fingerprint,
    /// Plugin name (from the newer scan).
    pub plugin_name: Option<String>,
    /// Severity in the older scan.
    pub old_severity: Option<u8>,
    /// Severity in the newer scan.
    pub new_severity: Option<u8>,
}

/// The difference between two scans, by fingerprint (host, port, protocol, plugin_id).
///
/// A fingerprint that occurs several times in one scan (the same plugin reporting twice on
/// one port) is matched occurrence by occurrence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanDiff {
    /// Only in the newer scan.
    pub new: Vec<DiffEntry>,
    /// Only in the older scan.
    pub fixed: Vec<DiffEntry>,
    /// In both, same severity.
    pub unchanged: Vec<DiffEntry>,
    /// In both, different severity.
    pub severity_changed: Vec<SeverityChange>,
}

/// Severity and plugin name of one occurrence of a fingerprint.
type Occurrence = (Option<u8>, Option<String>);

/// Compares two stores. Works from the stores' indexes only (no record is decoded);
/// memory is proportional to the number of findings of the older scan. Fails only if an
/// index cannot be read.
pub fn diff(old: &Store, new: &Store) -> Result<ScanDiff> {
    let mut pool: HashMap<Fingerprint, Vec<Occurrence>> = HashMap::new();
    let mut old_order = Vec::new();
    old.for_each_fingerprint(|fp, sev, name| {
        old_order.push(fp.clone());
        pool.entry(fp)
            .or_default()
            .push((sev, name.map(str::to_owned)));
    })?;
    // Match in reverse so that `pop` takes the first occurrence.
    for v in pool.values_mut() {
        v.reverse();
    }
    let mut out = ScanDiff::default();
    new.for_each_fingerprint(|fp, sev, name| {
        let name = name.map(str::to_owned);
        match pool.get_mut(&fp).and_then(Vec::pop) {
            Some((old_sev, _)) if old_sev == sev => out.unchanged.push(DiffEntry {
                fingerprint: fp,
                plugin_name: name,
                severity: sev,
            }),
            Some((old_sev, _)) => out.severity_changed.push(SeverityChange {
                fingerprint: fp,
                plugin_name: name,
                old_severity: old_sev,
                new_severity: sev,
            }),
            None => out.new.push(DiffEntry {
                fingerprint: fp,
                plugin_name: name,
                severity: sev,
            }),
        }
    })?;
    // Whatever is left in the pool was fixed; report it in the old scan's order.
    for fp in old_order {
        if let Some((sev, name)) = pool.get_mut(&fp).and_then(Vec::pop) {
            out.fixed.push(DiffEntry {
                fingerprint: fp,
                plugin_name: name,
                severity: sev,
            });
        }
    }
    Ok(out)
}
