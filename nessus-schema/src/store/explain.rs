//! What a scan holds near a filter that matched nothing: the sentence an empty answer
//! carries in its closing line's notices, so that an agent can fix its filter instead of
//! concluding that the scan is clean.
//!
//! The store computes the figures from its index ([`Store::explain`]); the offline
//! converter counts them while it parses ([`Census`]); both write them with
//! [`Census::text`], so the two give the same sentence.

use std::collections::HashSet;
use std::net::IpAddr;

use serde_json::{Map, Value as Json};

use super::{NONE_U8, Store};
use crate::catalogue::severity_name;
use crate::error::Result;
use crate::filter::Filter;
use crate::record::Finding;
use crate::value::ValueRef;

/// Host conditions: for these the explanation lists the hosts that exist.
const HOST_KEYS: &[&str] = &["host", "host_ip", "host_fqdn", "netbios_name"];
/// Hosts named in an explanation before "and N more".
const HOSTS_LISTED: usize = 10;

/// The filter's conditions one by one, as given (field, condition, filter of just it).
fn conditions(filter: &Filter) -> Result<Vec<(String, Json, Filter)>> {
    filter
        .as_json()
        .iter()
        .map(|(field, cond)| {
            let mut one = Map::new();
            one.insert(field.clone(), cond.clone());
            Ok((
                field.clone(),
                cond.clone(),
                Filter::from_json(&Json::Object(one))?,
            ))
        })
        .collect()
}

/// The figures an explanation states, gathered from a store or while parsing.
#[derive(Debug, Default)]
pub(crate) struct Census {
    /// Each condition of the filter alone: field, condition, matches.
    alone: Vec<(String, Json, u64)>,
    /// The conditions as filters, when they are counted per finding (parsing).
    filters: Vec<Filter>,
    findings: u64,
    /// Host names (and addresses) in order of first appearance.
    hosts: Vec<(String, Option<IpAddr>)>,
    host_names: HashSet<String>,
    highest: Option<u8>,
    exploitable: u64,
}

impl Census {
    /// Counts for `filter` while parsing. A filter of one condition is not evaluated a
    /// second time: alone it matches what the whole filter matches (`total` at the end).
    pub(crate) fn for_filter(filter: &Filter) -> Result<Census> {
        let conds = conditions(filter)?;
        let mut census = Census::default();
        if conds.len() > 1 {
            census.filters = conds.iter().map(|(_, _, f)| f.clone()).collect();
        }
        census.alone = conds.into_iter().map(|(k, c, _)| (k, c, 0)).collect();
        Ok(census)
    }

    /// A host seen (a host record, or a finding's host).
    pub(crate) fn host(&mut self, name: &str, ip: Option<IpAddr>) {
        // Findings arrive grouped by host: the common case allocates nothing.
        if let Some(last) = self.hosts.last_mut()
            && last.0 == name
        {
            last.1 = ip.or(last.1);
            return;
        }
        if !self.host_names.contains(name) {
            self.host_names.insert(name.to_owned());
            self.hosts.push((name.to_owned(), ip));
        } else if ip.is_some()
            && let Some(h) = self.hosts.iter_mut().find(|h| h.0 == name)
        {
            h.1 = ip;
        }
    }

    /// A finding seen (matching or not).
    pub(crate) fn finding(&mut self, f: &Finding) {
        self.host(&f.host, None);
        self.findings += 1;
        if let Some(s) = f.severity.filter(|s| *s != NONE_U8) {
            self.highest = self.highest.max(Some(s));
        }
        if matches!(f.get("exploit_available"), Some(ValueRef::Bool(true))) {
            self.exploitable += 1;
        }
        for (i, filter) in self.filters.iter().enumerate() {
            if filter.matches(f) {
                self.alone[i].2 += 1;
            }
        }
    }

    /// Takes over what `later` counted in the rest of the same document.
    pub(crate) fn append(&mut self, later: Census) {
        for (name, ip) in later.hosts {
            self.host(&name, ip);
        }
        self.findings += later.findings;
        self.highest = self.highest.max(later.highest);
        self.exploitable += later.exploitable;
        for (mine, theirs) in self.alone.iter_mut().zip(later.alone) {
            mine.2 += theirs.2;
        }
    }

    /// The explanation; `total` is what the whole filter matched (0 when explaining).
    pub(crate) fn text(&self, total: u64) -> String {
        if self.findings == 0 {
            return "this scan has no findings".to_owned();
        }
        let mut parts = Vec::new();
        if !self.alone.is_empty() {
            let single = self.alone.len() == 1;
            let alone: Vec<String> = self
                .alone
                .iter()
                .map(|(field, cond, n)| {
                    let n = if single { total } else { *n };
                    format!(
                        "{field} {} matches {n}",
                        serde_json::to_string(cond).unwrap_or_default()
                    )
                })
                .collect();
            parts.push(format!(
                "no findings match the filter; each condition alone: {}",
                alone.join(", ")
            ));
        }
        let hosts = self.hosts.len();
        let mut holds = format!(
            "this scan holds {} findings on {hosts} host{}",
            self.findings,
            if hosts == 1 { "" } else { "s" }
        );
        if let Some(s) = self.highest {
            holds.push_str(&format!(
                "; the highest severity is {s} ({})",
                severity_name(s)
            ));
        }
        holds.push_str(&format!(
            "; {} finding{} exploit_available true",
            self.exploitable,
            if self.exploitable == 1 {
                " has"
            } else {
                "s have"
            }
        ));
        parts.push(holds);
        if self
            .alone
            .iter()
            .any(|(k, _, _)| HOST_KEYS.contains(&k.as_str()))
        {
            let named: Vec<String> = self
                .hosts
                .iter()
                .take(HOSTS_LISTED)
                .map(|(name, ip)| match ip {
                    Some(ip) if ip.to_string() != *name => format!("{name} ({ip})"),
                    _ => name.clone(),
                })
                .collect();
            let more = hosts.saturating_sub(named.len());
            let mut list = format!("hosts: {}", named.join(", "));
            if more > 0 {
                list.push_str(&format!(" and {more} more"));
            }
            parts.push(list);
        }
        parts.join(". ")
    }
}

impl Store {
    /// Says what the scan holds near `filter`: how many findings each of its conditions
    /// matches alone, the scan's findings and hosts, its highest severity (with its
    /// name), how many findings have an exploit, and (for a host condition) which hosts
    /// exist, the first ten and how many more. For a scan without findings, says that.
    pub fn explain(&self, filter: &Filter) -> Result<String> {
        let mut census = Census::default();
        for (field, cond, one) in conditions(filter)? {
            let n = self.select(&one, &[])?.len() as u64;
            census.alone.push((field, cond, n));
        }
        census.findings = self.len() as u64;
        for h in &self.meta.hosts {
            census.host(&h.name, h.ip);
        }
        self.for_each_row(|_, r| {
            if r.severity != NONE_U8 {
                census.highest = census.highest.max(Some(r.severity));
            }
            census.exploitable += u64::from(r.exploit == 2);
            Ok(())
        })?;
        // Every count was taken alone, so `total` is not needed.
        census.filters.clear();
        let total = census.alone.first().map_or(0, |c| c.2);
        Ok(census.text(total))
    }
}
