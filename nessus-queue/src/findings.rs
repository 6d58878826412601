//! Findings over time: asset identity, finding fingerprints, and the per-asset
//! finding states (`new`, `persistent`, `fixed`, `reopened`) kept in the queue
//! backend for every completed scan (worker ingest and import call
//! [`Queue::record_findings`], the one code path). The rules are written in
//! ARCHITECTURE.md ("Findings over time").
//!
//! **Asset identity.** A host's asset id is `ip:<address>` when the host has one
//! (`host-ip`, else `ReportHost@name` when that is an address): the primary key. A host without an address joins the asset one of its aliases
//! already points at, tried in the order FQDN, NetBIOS name, MAC address; with none
//! known it becomes a new asset named after its first alias (`fqdn:…`, `netbios:…`,
//! `mac:…`, else `name:<ReportHost@name>`). A host with an address records its
//! aliases so later address-less scans join it. Caveat (DHCP): an address that moves
//! to another machine is the same asset to these rules; aliases never split or merge
//! assets that have addresses.
//!
//! **Fingerprint.** sha256 over asset id, plugin id, port and protocol (NUL-separated),
//! hex — never `plugin_output`, so a changed output is the same finding.
//!
//! **Storage.** One document per (scope, asset): its current findings plus the fixed
//! ones, and the last [`SCANS_KEPT`] scans applied to it. A fixed entry is dropped
//! once it has been fixed for longer than `findings_ttl`, and a whole asset not scanned
//! for `findings_ttl` ages out (both backends), so an asset's document stays bounded
//! by the findings it has had within the TTL. Applying a scan reads and writes one
//! document per asset the scan covered (a compare-and-set per asset): the work per
//! scan is bounded by the scan. A scan already among an asset's kept scans is
//! skipped, so processing the same task twice changes nothing.
//!
//! **Scope.** The scope is the owning principal of the task (its tenancy): a
//! principal sees the findings of its own tasks, an admin every scope's.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use futures::future::BoxFuture;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::queue::Queue;

/// How many applied scans an asset document remembers (idempotency and `since`).
pub const SCANS_KEPT: usize = 32;
/// Default lifetime of a fixed finding and of an asset no scan covered (180 days).
pub const DEFAULT_FINDINGS_TTL: SignedDuration = SignedDuration::from_hours(24 * 180);
/// Most entries one `findings_changes` answer returns.
pub const CHANGES_MAX: usize = 1000;
/// Most targets one `findings_changes` call names.
pub const TARGETS_MAX: usize = 256;
/// Compare-and-set attempts per asset before giving up.
const CAS_ATTEMPTS: usize = 16;

/// The state of a finding on an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Seen for the first time.
    New,
    /// Seen before and again.
    Persistent,
    /// Seen before, absent on a later scan that covered the asset.
    Fixed,
    /// Present again after it was fixed.
    Reopened,
}

impl FindingState {
    /// Every state.
    pub const ALL: [Self; 4] = [Self::New, Self::Persistent, Self::Fixed, Self::Reopened];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Persistent => "persistent",
            Self::Fixed => "fixed",
            Self::Reopened => "reopened",
        }
    }
}

impl std::str::FromStr for FindingState {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim())
            .ok_or_else(|| {
                Error::invalid(
                    "states",
                    format!("unknown state {s:?}; one of new, persistent, fixed, reopened"),
                )
            })
    }
}

/// A triage judgement on a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageMark {
    /// Not a real finding.
    FalsePositive,
    /// Real, and the risk is accepted.
    AcceptedRisk,
}

impl TriageMark {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FalsePositive => "false_positive",
            Self::AcceptedRisk => "accepted_risk",
        }
    }
}

/// A triage mark as stored with the finding: it applies to every later scan of the
/// asset (the finding keeps its fingerprint) until it expires or is cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Triage {
    /// The judgement.
    pub mark: TriageMark,
    /// Why.
    pub reason: String,
    /// Who marked it.
    pub by: String,
    /// When.
    pub at: Timestamp,
    /// When the mark lapses (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

impl Triage {
    /// Whether the mark still applies at `now`.
    pub fn active(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}

/// What identifies a host of a scan (from its `HostProperties`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostIdentity {
    /// `ReportHost@name`.
    pub name: String,
    /// `host-ip`.
    pub ip: Option<IpAddr>,
    /// `host-fqdn`.
    pub fqdn: Option<String>,
    /// `netbios-name`.
    pub netbios: Option<String>,
    /// `mac-address` (the first, when several).
    pub mac: Option<String>,
}

impl HostIdentity {
    /// The host's address: `host-ip`, else `ReportHost@name` when it is one.
    pub fn address(&self) -> Option<IpAddr> {
        self.ip.or_else(|| self.name.trim().parse().ok())
    }

    /// The primary asset id when the host has an address.
    pub fn primary(&self) -> Option<String> {
        self.address().map(|ip| format!("ip:{ip}"))
    }

    /// The aliases in precedence order (FQDN, NetBIOS, MAC), normalised (lower case,
    /// trimmed; a MAC's first line).
    pub fn aliases(&self) -> Vec<String> {
        let norm = |s: &Option<String>| {
            s.as_deref()
                .and_then(|v| v.lines().next())
                .map(|v| v.trim().to_ascii_lowercase())
                .filter(|v| !v.is_empty())
        };
        let mut out = Vec::new();
        if let Some(v) = norm(&self.fqdn) {
            out.push(format!("fqdn:{v}"));
        }
        if let Some(v) = norm(&self.netbios) {
            out.push(format!("netbios:{v}"));
        }
        if let Some(v) = norm(&self.mac) {
            out.push(format!("mac:{v}"));
        }
        out
    }

    /// The asset id of a host with neither address nor known alias.
    pub fn fallback(&self) -> String {
        self.aliases()
            .into_iter()
            .next()
            .unwrap_or_else(|| format!("name:{}", self.name.trim().to_ascii_lowercase()))
    }
}

/// One finding a scan observed (no output: the fingerprint never depends on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// `pluginID`.
    pub plugin_id: Option<u32>,
    /// `port`.
    pub port: Option<u32>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// Severity 0-4.
    pub severity: Option<u8>,
    /// Plugin name.
    pub plugin_name: Option<String>,
}

/// A host of a scan with what was found on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObservedHost {
    /// Who the host is.
    pub identity: HostIdentity,
    /// Its findings.
    pub findings: Vec<Observed>,
}

/// The finding fingerprint: sha256(asset id, plugin id, port, protocol), hex.
pub fn fingerprint(
    asset_id: &str,
    plugin_id: Option<u32>,
    port: Option<u32>,
    protocol: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    h.update(asset_id.as_bytes());
    h.update([0]);
    h.update(
        plugin_id
            .map(|p| p.to_string())
            .unwrap_or_default()
            .as_bytes(),
    );
    h.update([0]);
    h.update(port.map(|p| p.to_string()).unwrap_or_default().as_bytes());
    h.update([0]);
    h.update(protocol.unwrap_or("").to_ascii_lowercase().as_bytes());
    hex::encode(h.finalize())
}

/// One scan applied to an asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanMark {
    /// The task.
    pub task_id: String,
    /// The asset's scan sequence number (1 for its first scan).
    pub seq: u64,
    /// When it was applied.
    pub at: Timestamp,
}

/// A finding of an asset, over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// Plugin id.
    pub plugin_id: Option<u32>,
    /// Port.
    pub port: Option<u32>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Severity at its last sighting.
    pub severity: Option<u8>,
    /// Plugin name at its last sighting.
    pub plugin_name: Option<String>,
    /// Its state after the asset's latest scan.
    pub state: FindingState,
    /// First sighting.
    pub first_seen: Timestamp,
    /// Latest sighting.
    pub last_seen: Timestamp,
    /// Asset scan sequence of the first sighting.
    pub first_seq: u64,
    /// Asset scan sequence at which it was last reopened (0: never).
    pub reopened_seq: u64,
    /// Asset scan sequence at which it was last fixed (0: not fixed now).
    pub fixed_seq: u64,
    /// When it was last fixed.
    pub fixed_at: Option<Timestamp>,
    /// Task of the latest sighting.
    pub last_task: String,
    /// The triage mark, if any (expired marks are dropped at the next scan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

/// Everything known about one asset's findings (one document in the backend).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetDoc {
    /// The asset id.
    pub asset_id: String,
    /// `ReportHost@name` at the latest scan.
    pub host: String,
    /// The host address, when known.
    pub ip: Option<IpAddr>,
    /// Aliases recorded for it.
    pub aliases: Vec<String>,
    /// Scans applied so far (a counter; the sequence of the latest).
    pub seq: u64,
    /// The last [`SCANS_KEPT`] scans applied, oldest first.
    pub scans: Vec<ScanMark>,
    /// Findings by fingerprint.
    pub findings: BTreeMap<String, FindingRecord>,
}

/// A stored asset document with its compare-and-set version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAsset {
    /// The version stored (≥ 1).
    pub version: u64,
    /// The document.
    pub doc: AssetDoc,
}

/// The findings storage both backends implement (part of [`crate::Backend`]).
pub trait FindingsBackend {
    /// The stored documents of `asset_ids` in `scope` (None: unknown or aged out).
    fn load_assets(
        &self,
        scope: String,
        asset_ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<StoredAsset>>>>;

    /// The asset each alias points at in `scope`.
    fn resolve_aliases(
        &self,
        scope: String,
        aliases: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<String>>>>;

    /// Stores `doc` as version `prev_version + 1` if the stored version is still
    /// `prev_version` (0: absent), points its aliases at it, and lets it age out
    /// after `ttl` without another store; also drops a few assets of the scope not
    /// stored for longer than `ttl`. `false` on a lost race.
    fn store_asset(
        &self,
        scope: String,
        prev_version: u64,
        doc: AssetDoc,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> BoxFuture<'_, Result<bool>>;

    /// The asset ids of a scope that have not aged out at `now` (ascending).
    fn list_assets(
        &self,
        scope: String,
        now: Timestamp,
        ttl: SignedDuration,
    ) -> BoxFuture<'_, Result<Vec<String>>>;

    /// Every scope with findings.
    fn finding_scopes(&self) -> BoxFuture<'_, Result<Vec<String>>>;
}

/// Applies one scan's findings of one asset to its document (pure: the one rule).
/// Returns `None` when the scan was already applied to the asset.
pub fn apply_scan(
    prev: Option<AssetDoc>,
    asset_id: &str,
    host: &ObservedHost,
    task_id: &str,
    at: Timestamp,
    ttl: SignedDuration,
) -> Option<AssetDoc> {
    let mut doc = prev.unwrap_or_else(|| AssetDoc {
        asset_id: asset_id.to_owned(),
        host: String::new(),
        ip: None,
        aliases: Vec::new(),
        seq: 0,
        scans: Vec::new(),
        findings: BTreeMap::new(),
    });
    if doc.scans.iter().any(|s| s.task_id == task_id) {
        return None;
    }
    doc.seq += 1;
    let seq = doc.seq;
    doc.host.clone_from(&host.identity.name);
    if let Some(ip) = host.identity.address() {
        doc.ip = Some(ip);
    }
    for a in host.identity.aliases() {
        if !doc.aliases.contains(&a) {
            doc.aliases.push(a);
        }
    }
    doc.scans.push(ScanMark {
        task_id: task_id.to_owned(),
        seq,
        at,
    });
    if doc.scans.len() > SCANS_KEPT {
        let cut = doc.scans.len() - SCANS_KEPT;
        doc.scans.drain(..cut);
    }
    let mut seen = BTreeSet::new();
    for f in &host.findings {
        let fp = fingerprint(asset_id, f.plugin_id, f.port, f.protocol.as_deref());
        if !seen.insert(fp.clone()) {
            // The same plugin twice on one port: one finding.
            continue;
        }
        match doc.findings.get_mut(&fp) {
            Some(r) => {
                r.state = if r.state == FindingState::Fixed {
                    r.reopened_seq = seq;
                    r.fixed_seq = 0;
                    r.fixed_at = None;
                    FindingState::Reopened
                } else {
                    FindingState::Persistent
                };
                r.last_seen = at;
                r.severity = f.severity;
                r.plugin_name.clone_from(&f.plugin_name);
                r.last_task = task_id.to_owned();
            }
            None => {
                doc.findings.insert(
                    fp,
                    FindingRecord {
                        plugin_id: f.plugin_id,
                        port: f.port,
                        protocol: f.protocol.clone(),
                        severity: f.severity,
                        plugin_name: f.plugin_name.clone(),
                        state: FindingState::New,
                        first_seen: at,
                        last_seen: at,
                        first_seq: seq,
                        reopened_seq: 0,
                        fixed_seq: 0,
                        fixed_at: None,
                        last_task: task_id.to_owned(),
                        triage: None,
                    },
                );
            }
        }
    }
    let horizon = at.checked_sub(ttl).unwrap_or(Timestamp::MIN);
    doc.findings.retain(|fp, r| {
        if r.triage.as_ref().is_some_and(|t| !t.active(at)) {
            r.triage = None;
        }
        if seen.contains(fp) {
            return true;
        }
        if r.state != FindingState::Fixed {
            r.state = FindingState::Fixed;
            r.fixed_seq = seq;
            r.fixed_at = Some(at);
        }
        // Fixed for longer than the TTL: aged out.
        r.fixed_at.is_none_or(|t| t >= horizon)
    });
    Some(doc)
}

/// Where a `findings_changes` answer starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Since {
    /// Changes after this instant.
    Time(Timestamp),
    /// Changes after this task's scan of each asset (an asset the task did not
    /// cover: after the task's completion time).
    Task {
        /// The task.
        task_id: String,
        /// Its completion (or creation) time, for assets it did not cover.
        at: Timestamp,
    },
}

/// One finding in a changes answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The finding fingerprint.
    pub fingerprint: String,
    /// The asset id.
    pub asset_id: String,
    /// The host as last scanned.
    pub host: String,
    /// The host address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    /// Plugin id.
    pub plugin_id: Option<u32>,
    /// Plugin name.
    pub plugin_name: Option<String>,
    /// Severity.
    pub severity: Option<u8>,
    /// Port.
    pub port: Option<u32>,
    /// Protocol.
    pub protocol: Option<String>,
    /// The change since the start: new, reopened, fixed, or persistent (present then
    /// and now).
    pub state: FindingState,
    /// The state after the asset's latest scan.
    pub current_state: FindingState,
    /// First sighting.
    pub first_seen: Timestamp,
    /// Latest sighting.
    pub last_seen: Timestamp,
    /// When it was fixed (fixed findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_at: Option<Timestamp>,
    /// Task of the latest sighting.
    pub last_task: String,
    /// The triage mark in force, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
}

/// The scan sequence of `doc` that `since` starts after.
fn since_seq(doc: &AssetDoc, since: &Since) -> u64 {
    let by_time = |t: Timestamp| {
        doc.scans
            .iter()
            .filter(|s| s.at <= t)
            .map(|s| s.seq)
            .max()
            .unwrap_or_else(|| {
                // Older than every kept scan: everything before the first kept one.
                doc.scans.first().map_or(0, |s| s.seq.saturating_sub(1))
            })
    };
    match since {
        Since::Time(t) => by_time(*t),
        Since::Task { task_id, at } => doc
            .scans
            .iter()
            .find(|s| &s.task_id == task_id)
            .map_or_else(|| by_time(*at), |s| s.seq),
    }
}

/// The finding's change since sequence `after` (None: nothing to say — fixed before).
pub fn change_since(r: &FindingRecord, after: u64) -> Option<FindingState> {
    if r.state == FindingState::Fixed {
        if r.fixed_seq <= after {
            return None;
        }
        return Some(FindingState::Fixed);
    }
    if r.first_seq > after {
        Some(FindingState::New)
    } else if r.reopened_seq > after {
        Some(FindingState::Reopened)
    } else {
        Some(FindingState::Persistent)
    }
}

/// Which findings of an asset a changes answer takes.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// Where to start.
    pub since: &'a Since,
    /// States to return.
    pub states: &'a [FindingState],
    /// Minimum severity.
    pub min_severity: u8,
    /// Whether findings with a triage mark in force are included (by default they
    /// are not: someone already judged them).
    pub include_triaged: bool,
    /// Now, for mark expiry.
    pub now: Timestamp,
}

/// The changes of one asset since `sel.since`, in fingerprint order.
pub fn changes_of(doc: &AssetDoc, sel: &Selection<'_>) -> Vec<Change> {
    let after = since_seq(doc, sel.since);
    doc.findings
        .iter()
        .filter_map(|(fp, r)| {
            let state = change_since(r, after)?;
            if !sel.states.contains(&state) || r.severity.unwrap_or(0) < sel.min_severity {
                return None;
            }
            let triage = r.triage.clone().filter(|t| t.active(sel.now));
            if triage.is_some() && !sel.include_triaged {
                return None;
            }
            Some(Change {
                fingerprint: fp.clone(),
                asset_id: doc.asset_id.clone(),
                host: doc.host.clone(),
                host_ip: doc.ip,
                plugin_id: r.plugin_id,
                plugin_name: r.plugin_name.clone(),
                severity: r.severity,
                port: r.port,
                protocol: r.protocol.clone(),
                state,
                current_state: r.state,
                first_seen: r.first_seen,
                last_seen: r.last_seen,
                fixed_at: r.fixed_at,
                last_task: r.last_task.clone(),
                triage,
            })
        })
        .collect()
}

/// A target of a changes query: an address, a network, or a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A network (a single address is a /32 or /128).
    Net(ipnet::IpNet),
    /// A host name, FQDN, NetBIOS name or MAC (matched against aliases and host).
    Name(String),
}

impl Target {
    /// Parses one target.
    pub fn parse(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid("targets", "an empty target"));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Net(ipnet::IpNet::from(ip)));
        }
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(Self::Net(net));
        }
        Ok(Self::Name(s.to_ascii_lowercase()))
    }

    fn matches_id(&self, asset_id: &str) -> bool {
        match self {
            Self::Net(n) => asset_id
                .strip_prefix("ip:")
                .and_then(|ip| ip.parse::<IpAddr>().ok())
                .is_some_and(|ip| n.contains(&ip)),
            Self::Name(_) => false,
        }
    }

    fn matches_doc(&self, doc: &AssetDoc) -> bool {
        match self {
            Self::Net(n) => doc.ip.is_some_and(|ip| n.contains(&ip)),
            Self::Name(name) => {
                doc.host.eq_ignore_ascii_case(name)
                    || doc
                        .aliases
                        .iter()
                        .any(|a| a.split_once(':').is_some_and(|(_, v)| v == name))
            }
        }
    }
}

/// A `findings_changes` query.
#[derive(Debug, Clone)]
pub struct ChangesQuery {
    /// Targets (at least one).
    pub targets: Vec<Target>,
    /// Where to start.
    pub since: Since,
    /// Which changes (default: new, reopened, fixed).
    pub states: Vec<FindingState>,
    /// Minimum severity (0-4).
    pub min_severity: u8,
    /// Include findings with a triage mark in force.
    pub include_triaged: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after this (opaque: `{asset_id}\u{1f}{fingerprint}`).
    pub cursor: Option<String>,
}

/// One page of changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangesPage {
    /// Changes, by scope, asset, then fingerprint.
    pub changes: Vec<Change>,
    /// The cursor after each change (same order as `changes`).
    #[serde(skip)]
    pub cursors: Vec<String>,
    /// Counts per state over every matching change (not only this page).
    pub counts: BTreeMap<&'static str, u64>,
    /// Assets examined.
    pub assets: usize,
    /// Cursor for the next page.
    pub next_cursor: Option<String>,
}

/// Assets one changes query reads at most; beyond, narrow the targets.
pub const ASSETS_MAX: usize = 4096;

impl Queue {
    /// Lifetime of fixed findings and unscanned assets.
    pub fn findings_ttl(&self) -> SignedDuration {
        self.config().findings_ttl
    }

    /// Records one completed scan's findings in `scope` (the task's principal): for
    /// each host, its asset is resolved (address, else alias), and its document
    /// updated by [`apply_scan`] with a compare-and-set. Idempotent per task.
    pub async fn record_findings(
        &self,
        scope: &str,
        task_id: &str,
        at: Timestamp,
        hosts: &[ObservedHost],
    ) -> Result<usize> {
        let backend = self.backend();
        let ttl = self.findings_ttl();
        let mut applied = 0;
        for host in hosts {
            let asset_id = match host.identity.primary() {
                Some(id) => id,
                None => {
                    let aliases = host.identity.aliases();
                    let found = backend
                        .resolve_aliases(scope.to_owned(), aliases)
                        .await?
                        .into_iter()
                        .flatten()
                        .next();
                    found.unwrap_or_else(|| host.identity.fallback())
                }
            };
            let mut done = false;
            for _ in 0..CAS_ATTEMPTS {
                let prev = backend
                    .load_assets(scope.to_owned(), vec![asset_id.clone()])
                    .await?
                    .pop()
                    .flatten();
                let prev_version = prev.as_ref().map_or(0, |p| p.version);
                let Some(doc) = apply_scan(prev.map(|p| p.doc), &asset_id, host, task_id, at, ttl)
                else {
                    done = true;
                    break;
                };
                if backend
                    .store_asset(scope.to_owned(), prev_version, doc, at, ttl)
                    .await?
                {
                    applied += 1;
                    done = true;
                    break;
                }
            }
            if !done {
                return Err(Error::invalid(
                    "findings",
                    format!(
                        "asset {asset_id} kept changing; the scan's findings were not recorded"
                    ),
                ));
            }
        }
        tracing::debug!(
            task_id,
            scope,
            hosts = hosts.len(),
            applied,
            "findings recorded"
        );
        Ok(applied)
    }

    /// Sets (or with `None` clears) the triage mark of the finding `fingerprint`,
    /// looked for in `scopes` in order: the scope, asset and finding after the change,
    /// or `None` when no asset of those scopes has it. Reads the scope's assets until
    /// it finds the fingerprint (no fingerprint index: a triage is rare next to
    /// scans, and the documents are read in chunks).
    pub async fn triage(
        &self,
        scopes: &[String],
        fingerprint: &str,
        mark: Option<Triage>,
    ) -> Result<Option<(String, AssetDoc)>> {
        let backend = self.backend();
        let now = Timestamp::now();
        let ttl = self.findings_ttl();
        for scope in scopes {
            let ids = backend.list_assets(scope.clone(), now, ttl).await?;
            for chunk in ids.chunks(64) {
                let docs = backend.load_assets(scope.clone(), chunk.to_vec()).await?;
                let Some(found) = docs
                    .into_iter()
                    .flatten()
                    .find(|d| d.doc.findings.contains_key(fingerprint))
                else {
                    continue;
                };
                let asset = found.doc.asset_id.clone();
                let mut current = Some(found);
                for _ in 0..CAS_ATTEMPTS {
                    let Some(stored) = current.take() else {
                        return Ok(None);
                    };
                    let mut doc = stored.doc;
                    let Some(r) = doc.findings.get_mut(fingerprint) else {
                        return Ok(None);
                    };
                    r.triage.clone_from(&mark);
                    if backend
                        .store_asset(scope.clone(), stored.version, doc.clone(), now, ttl)
                        .await?
                    {
                        return Ok(Some((scope.clone(), doc)));
                    }
                    current = backend
                        .load_assets(scope.clone(), vec![asset.clone()])
                        .await?
                        .pop()
                        .flatten();
                }
                return Err(Error::invalid(
                    "fingerprint",
                    format!("asset {asset} kept changing; try the triage again"),
                ));
            }
        }
        Ok(None)
    }

    /// What changed on the targets since `q.since`, over `scopes`.
    pub async fn findings_changes(
        &self,
        scopes: &[String],
        q: &ChangesQuery,
    ) -> Result<ChangesPage> {
        let backend = self.backend();
        let now = Timestamp::now();
        let ttl = self.findings_ttl();
        let mut page = ChangesPage::default();
        let limit = q.limit.clamp(1, CHANGES_MAX);
        let mut out: Vec<(String, Change)> = Vec::new();
        for scope in scopes {
            let ids = backend.list_assets(scope.clone(), now, ttl).await?;
            // Address targets are matched on the id; name targets need the document.
            let names = q.targets.iter().any(|t| matches!(t, Target::Name(_)));
            let ids: Vec<String> = if names {
                ids
            } else {
                ids.into_iter()
                    .filter(|id| q.targets.iter().any(|t| t.matches_id(id)))
                    .collect()
            };
            if page.assets + ids.len() > ASSETS_MAX {
                return Err(Error::invalid(
                    "targets",
                    format!(
                        "the targets cover more than {ASSETS_MAX} assets; name fewer hosts or a smaller network"
                    ),
                ));
            }
            for chunk in ids.chunks(64) {
                let docs = backend.load_assets(scope.clone(), chunk.to_vec()).await?;
                for doc in docs.into_iter().flatten().map(|s| s.doc) {
                    if !q.targets.iter().any(|t| t.matches_doc(&doc)) {
                        continue;
                    }
                    page.assets += 1;
                    let sel = Selection {
                        since: &q.since,
                        states: &q.states,
                        min_severity: q.min_severity,
                        include_triaged: q.include_triaged,
                        now,
                    };
                    for c in changes_of(&doc, &sel) {
                        *page.counts.entry(c.state.as_str()).or_default() += 1;
                        let key = format!("{}\u{1f}{}\u{1f}{}", scope, c.asset_id, c.fingerprint);
                        out.push((key, c));
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        let start = match &q.cursor {
            Some(c) => {
                let c = decode_cursor(c)?;
                out.partition_point(|(k, _)| k.as_str() <= c.as_str())
            }
            None => 0,
        };
        let rest = &out[start..];
        if rest.len() > limit {
            page.next_cursor = Some(hex::encode(rest[limit - 1].0.as_bytes()));
        }
        for (k, c) in rest.iter().take(limit) {
            page.cursors.push(hex::encode(k.as_bytes()));
            page.changes.push(c.clone());
        }
        Ok(page)
    }
}

impl ChangesPage {
    /// How many changes fit in an answer of `budget` bytes (each change counted as
    /// its JSON, plus room for the closing part), at least one, and the cursor to go
    /// on with when not all of this page's changes, or not all changes, fit.
    pub fn fit(&self, budget: usize) -> (usize, Option<String>) {
        let mut used = CLOSING_ROOM;
        let mut n = 0;
        for c in &self.changes {
            let len = serde_json::to_string(c).map_or(0, |t| t.len()) + 16;
            // The first change is always given, so paging always progresses.
            if n > 0 && used.saturating_add(len) > budget {
                break;
            }
            used = used.saturating_add(len);
            n += 1;
        }
        let next = if n < self.changes.len() {
            Some(self.cursors[n - 1].clone())
        } else {
            self.next_cursor.clone()
        };
        (n, next)
    }

    /// The closing part of an answer that gives `returned` changes and goes on at
    /// `next`: `end`, or `pagination` with the cursor and what to do next; the
    /// counts are over every matching change, not only those given.
    pub fn closing(&self, returned: usize, next: Option<&str>) -> serde_json::Value {
        let total: u64 = self.counts.values().sum();
        match next {
            Some(cursor) => serde_json::json!({
                "type": "pagination",
                "returned": returned,
                "total": total,
                "counts": self.counts,
                "assets": self.assets,
                "next_cursor": cursor,
                "next": NEXT_PAGE,
            }),
            None => serde_json::json!({
                "type": "end",
                "returned": returned,
                "total": total,
                "counts": self.counts,
                "assets": self.assets,
            }),
        }
    }

    /// The answer as JSON-NL: one `change` line per finding that fits in `budget`
    /// bytes ([`ChangesPage::fit`]), then exactly one closing line
    /// ([`ChangesPage::closing`]) — the project's closing-line convention.
    pub fn render(&self, budget: usize) -> String {
        let (n, next) = self.fit(budget);
        let mut out = String::new();
        for c in &self.changes[..n] {
            let mut v = serde_json::to_value(c).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.insert("type".into(), "change".into());
            }
            out.push_str(&v.to_string());
            out.push('\n');
        }
        out.push_str(&self.closing(n, next.as_deref()).to_string());
        out
    }
}

/// Bytes kept for the closing part of a changes answer.
const CLOSING_ROOM: usize = 700;
/// What the closing part says when more changes remain.
pub const NEXT_PAGE: &str = "more changes remain: call again with the same arguments and this cursor, or narrow targets, states or severity";

fn decode_cursor(c: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "cursor",
            format!(
                "not a cursor this server issued; {}",
                crate::backend::CURSOR_HINT
            ),
        )
    };
    if c.len() > crate::limits::CURSOR_MAX {
        return Err(bad());
    }
    let bytes = hex::decode(c).map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(ip: &str, items: &[(u32, u32)]) -> ObservedHost {
        ObservedHost {
            identity: HostIdentity {
                name: ip.into(),
                ip: ip.parse().ok(),
                ..HostIdentity::default()
            },
            findings: items
                .iter()
                .map(|&(p, port)| Observed {
                    plugin_id: Some(p),
                    port: Some(port),
                    protocol: Some("tcp".into()),
                    severity: Some(2),
                    plugin_name: None,
                })
                .collect(),
        }
    }

    #[test]
    fn states_follow_the_scans_and_a_repeat_changes_nothing() {
        let ttl = DEFAULT_FINDINGS_TTL;
        let t = |s: i64| Timestamp::from_second(1_700_000_000 + s).unwrap();
        let id = "ip:10.0.0.1";
        let d1 = apply_scan(
            None,
            id,
            &host("10.0.0.1", &[(1, 80), (2, 22)]),
            "t1",
            t(0),
            ttl,
        )
        .unwrap();
        assert!(
            apply_scan(
                Some(d1.clone()),
                id,
                &host("10.0.0.1", &[]),
                "t1",
                t(1),
                ttl
            )
            .is_none()
        );
        let d2 = apply_scan(
            Some(d1),
            id,
            &host("10.0.0.1", &[(1, 80), (3, 443)]),
            "t2",
            t(10),
            ttl,
        )
        .unwrap();
        let d3 = apply_scan(
            Some(d2),
            id,
            &host("10.0.0.1", &[(1, 80), (2, 22), (3, 443)]),
            "t3",
            t(20),
            ttl,
        )
        .unwrap();
        let state = |d: &AssetDoc, p: u32, port: u32| {
            d.findings[&fingerprint(id, Some(p), Some(port), Some("tcp"))].state
        };
        assert_eq!(state(&d3, 1, 80), FindingState::Persistent);
        assert_eq!(state(&d3, 2, 22), FindingState::Reopened);
        assert_eq!(state(&d3, 3, 443), FindingState::Persistent);
        let since_t1 = Since::Task {
            task_id: "t1".into(),
            at: t(0),
        };
        let sel = Selection {
            since: &since_t1,
            states: &FindingState::ALL,
            min_severity: 0,
            include_triaged: false,
            now: t(20),
        };
        let c = changes_of(&d3, &sel);
        let got: BTreeMap<u32, FindingState> =
            c.iter().map(|c| (c.plugin_id.unwrap(), c.state)).collect();
        assert_eq!(got[&1], FindingState::Persistent);
        assert_eq!(got[&2], FindingState::Reopened);
        assert_eq!(got[&3], FindingState::New);
        // Fixed entries age out after the TTL.
        let d4 = apply_scan(
            Some(d3),
            id,
            &host("10.0.0.1", &[]),
            "t4",
            t(30),
            SignedDuration::from_secs(5),
        )
        .unwrap();
        assert!(d4.findings.values().all(|r| r.state == FindingState::Fixed));
        let d5 = apply_scan(
            Some(d4),
            id,
            &host("10.0.0.1", &[]),
            "t5",
            t(40),
            SignedDuration::from_secs(5),
        )
        .unwrap();
        assert!(d5.findings.is_empty());
    }

    #[test]
    fn fingerprint_ignores_case_of_protocol_and_differs_by_port() {
        assert_eq!(
            fingerprint("ip:1.2.3.4", Some(1), Some(80), Some("TCP")),
            fingerprint("ip:1.2.3.4", Some(1), Some(80), Some("tcp"))
        );
        assert_ne!(
            fingerprint("ip:1.2.3.4", Some(1), Some(80), None),
            fingerprint("ip:1.2.3.4", Some(1), Some(81), None)
        );
    }
}
