//! Counts and top-N groups of the findings matching a filter ([`Store::aggregate`]): the
//! common analyst questions ("hosts ranked by critical and high findings with an
//! exploit") in one call, without paging through findings.
//!
//! Everything but CVE groups is computed from `index.bin` rows alone; CVE groups read the
//! matching records' `cve` lists, in file order.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

use serde::Serialize;

use super::page::SequentialReader;
use super::row::Row;
use super::{NONE_U8, NONE_U32, Store};
use crate::catalogue::severity_name;
use crate::codec::RawRecord;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::summary::SeverityCounts;
use crate::value::ValueRef;

/// Default number of groups returned.
pub const DEFAULT_TOP: usize = 10;
/// Largest number of groups returned.
pub const MAX_TOP: usize = 100;

/// What to group findings by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupBy {
    /// One group per host (key: the host name).
    Host,
    /// One group per plugin (key: the plugin id as text).
    Plugin,
    /// One group per severity (key: the digit), always ordered 4..0.
    Severity,
    /// One group per CVE id; a finding with several counts once in each, a finding
    /// without one in none.
    Cve,
    /// One group per port and protocol (key: `"443/tcp"`).
    Port,
    /// One group per plugin family.
    PluginFamily,
}

impl GroupBy {
    /// Every grouping, as spelled in requests.
    pub const NAMES: [&'static str; 6] =
        ["host", "plugin", "severity", "cve", "port", "plugin_family"];

    /// The name as spelled in requests.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Host => "host",
            GroupBy::Plugin => "plugin",
            GroupBy::Severity => "severity",
            GroupBy::Cve => "cve",
            GroupBy::Port => "port",
            GroupBy::PluginFamily => "plugin_family",
        }
    }
}

impl FromStr for GroupBy {
    type Err = Error;

    fn from_str(s: &str) -> Result<GroupBy> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "host" => GroupBy::Host,
            "plugin" => GroupBy::Plugin,
            "severity" => GroupBy::Severity,
            "cve" => GroupBy::Cve,
            "port" => GroupBy::Port,
            "plugin_family" => GroupBy::PluginFamily,
            _ => {
                return Err(Error::query(format!(
                    "unknown group_by {s:?}: use one of {}",
                    GroupBy::NAMES.join(", ")
                )));
            }
        })
    }
}

/// How groups are ranked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rank {
    /// Critical findings desc, then high, medium, low, info (each desc), then findings
    /// desc, then key asc.
    #[default]
    Severity,
    /// Findings desc, then the severity rank.
    Count,
    /// Distinct hosts desc ("most widespread"), then the severity rank.
    Hosts,
}

impl FromStr for Rank {
    type Err = Error;

    fn from_str(s: &str) -> Result<Rank> {
        match s.trim().to_ascii_lowercase().as_str() {
            "severity" => Ok(Rank::Severity),
            "count" => Ok(Rank::Count),
            "hosts" => Ok(Rank::Hosts),
            _ => Err(Error::query(format!(
                "unknown rank_by {s:?}: use severity, count or hosts"
            ))),
        }
    }
}

/// An aggregation request for [`Store::aggregate`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Aggregate {
    /// Which findings count (applied first, exactly as for pages).
    pub filter: Filter,
    /// What to group by.
    pub group_by: GroupBy,
    /// How many groups to return (1..=100; default 10); the rest are summed in `other`.
    pub top: usize,
    /// How groups are ranked.
    pub rank: Rank,
}

impl Aggregate {
    /// Every finding, grouped by `group_by`, top 10 by severity rank.
    pub fn new(group_by: GroupBy) -> Aggregate {
        Aggregate {
            filter: Filter::none(),
            group_by,
            top: DEFAULT_TOP,
            rank: Rank::Severity,
        }
    }

    /// Only findings matching `filter`.
    pub fn filter(mut self, filter: Filter) -> Aggregate {
        self.filter = filter;
        self
    }

    /// Returns the first `top` groups (clamped to 1..=100).
    pub fn top(mut self, top: usize) -> Aggregate {
        self.top = top.clamp(1, MAX_TOP);
        self
    }

    /// Ranks by `rank`.
    pub fn rank(mut self, rank: Rank) -> Aggregate {
        self.rank = rank;
        self
    }
}

/// The groups left out of the top N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Other {
    /// Groups left out.
    pub groups: u64,
    /// Their findings (summed per group: for CVE groups a finding with several CVEs
    /// counts in each).
    pub findings: u64,
}

/// What identifies a group, by grouping.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum GroupIdentity {
    /// `group_by: host`.
    Host {
        /// Host name.
        host: String,
        /// The host's address, when it differs from its name.
        #[serde(skip_serializing_if = "Option::is_none")]
        host_ip: Option<String>,
    },
    /// `group_by: plugin`.
    Plugin {
        /// Plugin id.
        plugin_id: Option<u32>,
        /// Plugin name.
        plugin_name: Option<String>,
        /// Plugin family.
        plugin_family: Option<String>,
        /// Highest severity the plugin reported.
        severity: Option<u8>,
    },
    /// `group_by: cve`.
    Cve {
        /// CVE id.
        cve: String,
    },
    /// `group_by: port`.
    Port {
        /// Port number.
        port: Option<u32>,
        /// Protocol.
        protocol: Option<String>,
    },
    /// `group_by: severity`.
    Severity {
        /// 0..=4.
        severity: u8,
        /// `critical`, `high`, `medium`, `low` or `info`.
        severity_name: &'static str,
    },
    /// `group_by: plugin_family`.
    PluginFamily {
        /// Plugin family.
        plugin_family: Option<String>,
    },
}

/// One group of findings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// Host name, plugin id, CVE id, `"443/tcp"`, severity digit or family name.
    pub key: String,
    /// A human name for the key (plugin name, severity name), if there is one.
    pub label: Option<String>,
    /// Findings in the group.
    pub findings: u64,
    /// Distinct hosts among them.
    pub hosts: u64,
    /// Highest severity among them.
    pub max_severity: Option<u8>,
    /// Findings per severity.
    pub severity_counts: SeverityCounts,
    /// Findings with `exploit_available` true.
    pub exploitable: u64,
    /// What the key stands for.
    #[serde(flatten)]
    pub identity: GroupIdentity,
}

/// The answer of [`Store::aggregate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Aggregation {
    /// Findings matching the filter.
    pub matched: u64,
    /// Groups in all.
    pub groups_total: u64,
    /// The first `top` groups, ranked.
    pub groups: Vec<Group>,
    /// The groups left out, if any.
    pub other: Option<Other>,
    /// Why nothing matched ([`Store::explain`]), when the filter matched nothing.
    pub explanation: Option<String>,
}

/// A group while rows are counted.
struct Acc {
    first: Row,
    findings: u64,
    hosts: HashSet<u32>,
    counts: SeverityCounts,
    max: Option<u8>,
    exploitable: u64,
}

impl Acc {
    fn new(first: Row) -> Acc {
        Acc {
            first,
            findings: 0,
            hosts: HashSet::new(),
            counts: SeverityCounts::default(),
            max: None,
            exploitable: 0,
        }
    }

    fn add(&mut self, r: &Row) {
        self.findings += 1;
        self.hosts.insert(r.host);
        let sev = (r.severity != NONE_U8).then_some(r.severity);
        self.counts.add(sev);
        self.max = self.max.max(sev);
        self.exploitable += u64::from(r.exploit == 2);
    }
}

/// The grouping key of a row (CVE groups are keyed by text instead).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Host(u32),
    Plugin(u32),
    Severity(u8),
    Port(u32, u8),
    Family(Option<String>),
    Cve(String),
}

/// The severity rank: critical desc, high desc, medium desc, low desc, info desc, then
/// findings desc.
fn severity_rank(a: &Group, b: &Group) -> Ordering {
    let c = |g: &Group| {
        let s = &g.severity_counts;
        [s.critical, s.high, s.medium, s.low, s.info, g.findings]
    };
    c(b).cmp(&c(a))
}

impl Store {
    /// Groups the findings matching `request.filter` (the same filter, with the same
    /// rules, as pages) and returns the first `request.top` groups, ranked.
    pub fn aggregate(&self, request: &Aggregate) -> Result<Aggregation> {
        let candidates = || {
            crate::catalogue::KNOWN_FIELDS
                .iter()
                .copied()
                .chain(self.dict.names().iter().map(|n| &**n))
        };
        request
            .filter
            .check_fields(|n| self.is_known_field(n), candidates())?;
        let matched = self.select(&request.filter, &[])?;
        // `select` without a sort returns row numbers in ascending order.
        let mut rows = Vec::with_capacity(matched.len());
        let mut next = matched.iter().peekable();
        self.for_each_row(|i, row| {
            if next.peek() == Some(&&i) {
                next.next();
                rows.push(row);
            }
            Ok(())
        })?;
        let mut groups: HashMap<Key, Acc> = HashMap::new();
        let mut count = |key: Key, r: &Row| {
            groups.entry(key).or_insert_with(|| Acc::new(*r)).add(r);
        };
        match request.group_by {
            GroupBy::Cve => {
                let id = self.dict.id("cve");
                let mut by_offset: Vec<&Row> = rows.iter().collect();
                by_offset.sort_by_key(|r| r.offset);
                let mut reader = SequentialReader::open(&self.dir)?;
                let mut buf = Vec::new();
                let mut seen: Vec<String> = Vec::new();
                for r in by_offset {
                    let Some(id) = id else { break };
                    reader.read(r, &mut buf)?;
                    seen.clear();
                    match (RawRecord { bytes: &buf }).get(id) {
                        Some(ValueRef::List(items)) => {
                            seen.extend(items.iter().map(|c| c.trim().to_owned()));
                        }
                        Some(ValueRef::Text(c)) => seen.push(c.trim().to_owned()),
                        _ => {}
                    }
                    seen.retain(|c| !c.is_empty());
                    seen.sort_unstable();
                    seen.dedup();
                    for c in seen.drain(..) {
                        count(Key::Cve(c), r);
                    }
                }
            }
            by => {
                for r in &rows {
                    let key = match by {
                        GroupBy::Host => Key::Host(r.host),
                        GroupBy::Plugin => Key::Plugin(r.plugin_id),
                        GroupBy::Severity => {
                            Key::Severity(if r.severity == NONE_U8 { 0 } else { r.severity })
                        }
                        GroupBy::Port => Key::Port(r.port, r.protocol),
                        _ => Key::Family(self.meta.plugins[r.plugin as usize].1.clone()),
                    };
                    count(key, r);
                }
            }
        }
        let mut out: Vec<Group> = groups
            .into_iter()
            .map(|(key, acc)| self.group(key, acc))
            .collect();
        match (request.group_by, request.rank) {
            (GroupBy::Severity, _) => out.sort_by(|a, b| b.key.cmp(&a.key)),
            (_, Rank::Severity) => {
                out.sort_by(|a, b| severity_rank(a, b).then_with(|| a.key.cmp(&b.key)));
            }
            (_, Rank::Count) => out.sort_by(|a, b| {
                b.findings
                    .cmp(&a.findings)
                    .then_with(|| severity_rank(a, b))
                    .then_with(|| a.key.cmp(&b.key))
            }),
            (_, Rank::Hosts) => out.sort_by(|a, b| {
                b.hosts
                    .cmp(&a.hosts)
                    .then_with(|| severity_rank(a, b))
                    .then_with(|| a.key.cmp(&b.key))
            }),
        }
        let groups_total = out.len() as u64;
        let top = request.top.clamp(1, MAX_TOP);
        let rest = out.split_off(top.min(out.len()));
        let other = (!rest.is_empty()).then(|| Other {
            groups: rest.len() as u64,
            findings: rest.iter().map(|g| g.findings).sum(),
        });
        let explanation = if matched.is_empty() && !request.filter.as_json().is_empty() {
            Some(self.explain(&request.filter)?)
        } else if self.is_empty() {
            Some("this scan has no findings".to_owned())
        } else {
            None
        };
        Ok(Aggregation {
            matched: matched.len() as u64,
            groups_total,
            groups: out,
            other,
            explanation,
        })
    }

    fn group(&self, key: Key, acc: Acc) -> Group {
        let r = &acc.first;
        let (plugin_name, plugin_family) = self.meta.plugins[r.plugin as usize].clone();
        let opt = |v: u32| (v != NONE_U32).then_some(v);
        let (key, label, identity) = match key {
            Key::Host(h) => {
                let entry = &self.meta.hosts[h as usize];
                let ip = entry
                    .ip
                    .map(|ip| ip.to_string())
                    .filter(|ip| *ip != entry.name);
                (
                    entry.name.clone(),
                    None,
                    GroupIdentity::Host {
                        host: entry.name.clone(),
                        host_ip: ip,
                    },
                )
            }
            Key::Plugin(id) => (
                opt(id).map_or_else(|| "unknown".to_owned(), |id| id.to_string()),
                plugin_name.clone(),
                GroupIdentity::Plugin {
                    plugin_id: opt(id),
                    plugin_name,
                    plugin_family,
                    severity: acc.max,
                },
            ),
            Key::Severity(s) => (
                s.to_string(),
                Some(severity_name(s).to_owned()),
                GroupIdentity::Severity {
                    severity: s,
                    severity_name: severity_name(s),
                },
            ),
            Key::Port(port, _) => {
                let protocol = self.protocol(r).map(str::to_owned);
                let port_text = opt(port).map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                let key = match &protocol {
                    Some(p) => format!("{port_text}/{p}"),
                    None => port_text,
                };
                (
                    key,
                    None,
                    GroupIdentity::Port {
                        port: opt(port),
                        protocol,
                    },
                )
            }
            Key::Family(f) => (
                f.clone().unwrap_or_else(|| "unknown".to_owned()),
                None,
                GroupIdentity::PluginFamily { plugin_family: f },
            ),
            Key::Cve(c) => (c.clone(), None, GroupIdentity::Cve { cve: c }),
        };
        Group {
            key,
            label,
            findings: acc.findings,
            hosts: acc.hosts.len() as u64,
            max_severity: acc.max,
            severity_counts: acc.counts,
            exploitable: acc.exploitable,
            identity,
        }
    }
}
