//! `index.bin` rows: the fixed 64-byte row per finding, the tables (hosts, plugins,
//! protocols) its columns point into, the default order, and the row-level field
//! source filters evaluate without decoding a record.

use std::collections::HashMap;
use std::fs::File;
use std::net::IpAddr;
use std::path::PathBuf;

use super::page::{SortTables, cvss_of};
use super::{FLAG_IRREGULAR, HostEntry, NONE_U8, NONE_U32, ROW_BYTES, Store, io_at, read_at};
use crate::catalogue::is_host_field;
use crate::error::Result;
use crate::filter::FieldSource;
use crate::record::{Finding, Host, HostFields};
use crate::value::ValueRef;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(super) host: u32,
    pub(super) plugin: u32,
    pub(super) plugin_id: u32,
    pub(super) port: u32,
    pub(super) severity: u8,
    pub(super) protocol: u8,
    /// 0 absent, 1 false, 2 true, 3 null.
    pub(super) exploit: u8,
    pub(super) flags: u8,
    pub(super) cvss3: f64,
    pub(super) cvss2: f64,
    pub(super) vpr: f64,
    pub(super) epss: f64,
}

impl Row {
    /// The row's host id (its index in the host table).
    pub(crate) fn host_id(&self) -> u32 {
        self.host
    }

    pub(super) fn to_bytes(self) -> [u8; ROW_BYTES] {
        let mut b = [0u8; ROW_BYTES];
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.len.to_le_bytes());
        b[12..16].copy_from_slice(&self.host.to_le_bytes());
        b[16..20].copy_from_slice(&self.plugin.to_le_bytes());
        b[20..24].copy_from_slice(&self.plugin_id.to_le_bytes());
        b[24..28].copy_from_slice(&self.port.to_le_bytes());
        b[28] = self.severity;
        b[29] = self.protocol;
        b[30] = self.exploit;
        b[31] = self.flags;
        b[32..40].copy_from_slice(&self.cvss3.to_le_bytes());
        b[40..48].copy_from_slice(&self.cvss2.to_le_bytes());
        b[48..56].copy_from_slice(&self.vpr.to_le_bytes());
        b[56..64].copy_from_slice(&self.epss.to_le_bytes());
        b
    }

    pub(super) fn from_bytes(b: &[u8]) -> Row {
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_le_bytes(a)
        };
        Row {
            offset: u64_at(0),
            len: u32_at(8),
            host: u32_at(12),
            plugin: u32_at(16),
            plugin_id: u32_at(20),
            port: u32_at(24),
            severity: b[28],
            protocol: b[29],
            exploit: b[30],
            flags: b[31],
            cvss3: f64::from_bits(u64_at(32)),
            cvss2: f64::from_bits(u64_at(40)),
            vpr: f64::from_bits(u64_at(48)),
            epss: f64::from_bits(u64_at(56)),
        }
    }
}

/// Reads `index.bin` rows by number (positional reads, for a page's rows).
pub(super) struct RowReader {
    pub(super) file: File,
    pub(super) path: PathBuf,
}

impl RowReader {
    pub(super) fn get(&mut self, store: &Store, i: u32) -> Result<Row> {
        let mut b = [0u8; ROW_BYTES];
        read_at(&mut self.file, u64::from(i) * ROW_BYTES as u64, &mut b)
            .map_err(io_at(&self.path, "reading"))?;
        store.checked(Row::from_bytes(&b))
    }
}

/// Builds the tables and rows while records stream in.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub(super) hosts: Vec<HostEntry>,
    pub(super) host_ids: HashMap<String, u32>,
    pub(super) plugins: Vec<(Option<String>, Option<String>)>,
    /// Keyed by `name \0 family` (with a marker for "absent") built in `key_buf`, so the
    /// common lookup does not allocate.
    pub(super) plugin_ids: HashMap<String, u32>,
    pub(super) key_buf: String,
    pub(super) protocols: Vec<Option<String>>,
    pub(super) last_host: Option<u32>,
}

impl Tables {
    /// Rank of every host in the default order.
    pub(crate) fn host_ranks(&self) -> Vec<u32> {
        ranks(&self.hosts)
    }

    /// The tables a sort needs.
    pub(crate) fn sort_tables<'a>(&'a self, host_rank: &'a [u32]) -> SortTables<'a> {
        SortTables {
            plugins: &self.plugins,
            protocols: &self.protocols,
            host_rank,
        }
    }

    /// Host names by id.
    pub(crate) fn host_names(&self) -> impl Iterator<Item = &str> {
        self.hosts.iter().map(|h| h.name.as_str())
    }

    pub(crate) fn host(&mut self, name: &str) -> u32 {
        // Findings arrive grouped by host.
        if let Some(id) = self.last_host
            && self.hosts[id as usize].name == name
        {
            return id;
        }
        if let Some(id) = self.host_ids.get(name) {
            self.last_host = Some(*id);
            return *id;
        }
        let id = self.hosts.len() as u32;
        self.hosts.push(HostEntry {
            name: name.to_owned(),
            ..HostEntry::default()
        });
        self.host_ids.insert(name.to_owned(), id);
        self.last_host = Some(id);
        id
    }

    /// Records a host's properties (a later block for the same name wins, as it would in
    /// one pass); returns its id.
    pub(crate) fn describe_host(&mut self, h: &Host) -> u32 {
        let id = self.host(&h.name);
        let entry = &mut self.hosts[id as usize];
        entry.ip = h.ip;
        entry.fields = HostFields::of(h);
        entry.described = true;
        id
    }

    /// Takes over host `id` of `later` (tables of a later part of the same document):
    /// returns its id here, with its properties if `later` saw them.
    pub(crate) fn adopt_host(&mut self, later: &Tables, id: usize) -> u32 {
        let theirs = &later.hosts[id];
        let mine = self.host(&theirs.name);
        if theirs.described {
            let entry = &mut self.hosts[mine as usize];
            entry.ip = theirs.ip;
            entry.fields = theirs.fields.clone();
            entry.described = true;
        }
        mine
    }

    /// Which hosts pass the per-host conditions of `filter` (its `host` shorthands
    /// resolved against every host of these tables); `None` when it has none.
    pub(crate) fn host_mask(&self, filter: &crate::filter::Filter) -> Option<Vec<bool>> {
        if !filter.has_host_conditions() {
            return None;
        }
        let views: Vec<HostView<'_>> = self.hosts.iter().map(|entry| HostView { entry }).collect();
        let sources: Vec<&dyn FieldSource> = views.iter().map(|v| v as &dyn FieldSource).collect();
        let resolved = filter.resolve_hosts(&sources);
        Some(
            views
                .iter()
                .map(|v| resolved.host_conditions_match(v))
                .collect(),
        )
    }

    pub(super) fn plugin(&mut self, name: &Option<String>, family: &Option<String>) -> u32 {
        self.key_buf.clear();
        for part in [name, family] {
            match part {
                Some(p) => {
                    self.key_buf.push('+');
                    self.key_buf.push_str(p);
                }
                None => self.key_buf.push('-'),
            }
            self.key_buf.push('\0');
        }
        if let Some(id) = self.plugin_ids.get(self.key_buf.as_str()) {
            return *id;
        }
        let id = self.plugins.len() as u32;
        self.plugins.push((name.clone(), family.clone()));
        self.plugin_ids.insert(self.key_buf.clone(), id);
        id
    }

    pub(super) fn protocol(&mut self, p: &Option<String>) -> Option<u8> {
        if let Some(i) = self.protocols.iter().position(|x| x == p) {
            return u8::try_from(i).ok().filter(|i| *i != NONE_U8);
        }
        if self.protocols.len() >= NONE_U8 as usize {
            return None;
        }
        self.protocols.push(p.clone());
        Some((self.protocols.len() - 1) as u8)
    }
}

pub(super) fn score(v: ValueRef<'_>, irregular: &mut bool) -> f64 {
    match v {
        ValueRef::Null => f64::NAN,
        ValueRef::Float(x) => x,
        ValueRef::Int(i) => i as f64,
        _ => {
            *irregular = true;
            f64::NAN
        }
    }
}

pub(crate) fn row_for(f: &Finding, t: &mut Tables, offset: u64, len: u32) -> Row {
    let mut irregular = false;
    let protocol = t.protocol(&f.protocol).unwrap_or_else(|| {
        irregular = true;
        NONE_U8
    });
    let (mut exploit, mut cvss3, mut cvss2, mut vpr, mut epss) =
        (0, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    // One pass over the children for every indexed one.
    for (name, v) in &f.fields {
        let v = v.as_ref();
        match &**name {
            "exploit_available" => {
                exploit = match v {
                    ValueRef::Bool(false) => 1,
                    ValueRef::Bool(true) => 2,
                    ValueRef::Null => 3,
                    _ => {
                        irregular = true;
                        0
                    }
                }
            }
            "cvss3_base_score" => cvss3 = score(v, &mut irregular),
            "cvss_base_score" => cvss2 = score(v, &mut irregular),
            "vpr_score" => vpr = score(v, &mut irregular),
            "epss_score" => epss = score(v, &mut irregular),
            // A child shadowing a computed or attribute field: let filters see the record.
            "cvss_score" | "host" => irregular = true,
            _ => {}
        }
    }
    if f.plugin_id == Some(NONE_U32) || f.port == Some(NONE_U32) || f.severity == Some(NONE_U8) {
        irregular = true;
    }
    Row {
        offset,
        len,
        host: t.host(&f.host),
        plugin: t.plugin(&f.plugin_name, &f.plugin_family),
        plugin_id: f.plugin_id.unwrap_or(NONE_U32),
        port: f.port.unwrap_or(NONE_U32),
        severity: f.severity.unwrap_or(NONE_U8),
        protocol,
        exploit,
        flags: if irregular { FLAG_IRREGULAR } else { 0 },
        cvss3,
        cvss2,
        vpr,
        epss,
    }
}

/// Host names that are addresses sort numerically before names, which sort as text.
pub(super) fn host_order(a: &HostEntry, b: &HostEntry) -> std::cmp::Ordering {
    match (a.name.parse::<IpAddr>(), b.name.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.name.cmp(&b.name),
    }
}

pub(super) fn ranks(hosts: &[HostEntry]) -> Vec<u32> {
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    order.sort_by(|&a, &b| host_order(&hosts[a], &hosts[b]));
    let mut rank = vec![0u32; hosts.len()];
    for (r, i) in order.into_iter().enumerate() {
        rank[i] = r as u32;
    }
    rank
}

/// The columns of a [`Row`] that the default order compares.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OrderKey {
    pub(crate) offset: u64,
    pub(super) host: u32,
    pub(super) port: u32,
    pub(super) plugin_id: u32,
    pub(super) severity: u8,
}

impl Row {
    pub(crate) fn order_key(&self) -> OrderKey {
        OrderKey {
            offset: self.offset,
            host: self.host,
            port: self.port,
            plugin_id: self.plugin_id,
            severity: self.severity,
        }
    }
}

pub(crate) fn default_cmp(a: &Row, b: &Row, rank: &[u32]) -> std::cmp::Ordering {
    key_cmp(&a.order_key(), &b.order_key(), rank)
}

/// The default order: severity desc, host rank, port, plugin_id, document order.
pub(crate) fn key_cmp(a: &OrderKey, b: &OrderKey, rank: &[u32]) -> std::cmp::Ordering {
    // Missing severity counts as lowest; missing port/plugin sort last (u32::MAX).
    let sev = |r: &OrderKey| {
        if r.severity == NONE_U8 {
            -1
        } else {
            i16::from(r.severity)
        }
    };
    sev(b)
        .cmp(&sev(a))
        .then_with(|| rank[a.host as usize].cmp(&rank[b.host as usize]))
        .then_with(|| a.port.cmp(&b.port))
        .then_with(|| a.plugin_id.cmp(&b.plugin_id))
        .then_with(|| a.offset.cmp(&b.offset))
}

pub(crate) fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

pub(super) struct RowView<'a> {
    pub(super) store: &'a Store,
    pub(super) row: &'a Row,
}

pub(super) fn float_ref(x: f64) -> Option<ValueRef<'static>> {
    (!x.is_nan()).then_some(ValueRef::Float(x))
}

impl FieldSource for RowView<'_> {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        let r = self.row;
        let (pname, pfamily) = &self.store.meta.plugins[r.plugin as usize];
        fn text(s: &Option<String>) -> Option<ValueRef<'_>> {
            Some(s.as_deref().map_or(ValueRef::Null, ValueRef::Text))
        }
        let int = |v: u32| {
            Some(if v == NONE_U32 {
                ValueRef::Null
            } else {
                ValueRef::Int(v.into())
            })
        };
        match name {
            "host" => Some(ValueRef::Text(&self.store.meta.hosts[r.host as usize].name)),
            "plugin_id" => int(r.plugin_id),
            "plugin_name" => text(pname),
            "plugin_family" => text(pfamily),
            "severity" => Some(if r.severity == NONE_U8 {
                ValueRef::Null
            } else {
                ValueRef::Int(r.severity.into())
            }),
            "port" => int(r.port),
            "protocol" => Some(
                self.store
                    .protocol(r)
                    .map_or(ValueRef::Null, ValueRef::Text),
            ),
            "exploit_available" => match r.exploit {
                1 => Some(ValueRef::Bool(false)),
                2 => Some(ValueRef::Bool(true)),
                3 => Some(ValueRef::Null),
                _ => None,
            },
            "cvss3_base_score" => float_ref(r.cvss3),
            "cvss_base_score" => float_ref(r.cvss2),
            "vpr_score" => float_ref(r.vpr),
            "epss_score" => float_ref(r.epss),
            "cvss_score" => float_ref(cvss_of(r)),
            n if is_host_field(n) => self.store.meta.hosts[r.host as usize].fields.get(n),
            _ => None,
        }
    }

    fn host_ip(&self) -> Option<IpAddr> {
        self.store.meta.hosts[self.row.host as usize].ip
    }
}

/// A host of the host table as a field source: `host` and the host fields, nothing else
/// (for the conditions evaluated once per host).
pub(crate) struct HostView<'a> {
    pub(super) entry: &'a HostEntry,
}

impl FieldSource for HostView<'_> {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        match name {
            "host" => Some(ValueRef::Text(&self.entry.name)),
            n => self.entry.fields.get(n),
        }
    }

    fn host_ip(&self) -> Option<IpAddr> {
        self.entry.ip
    }
}

/// Index rows kept during ingest in fixed-size chunks, so growing never holds two copies
/// (a doubling `Vec` would briefly need 3x the rows' size at 1 GB inputs).
#[derive(Debug)]
pub(crate) struct ChunkedRows<T = Row> {
    pub(super) chunks: Vec<Vec<T>>,
    pub(super) len: u32,
}

impl<T> Default for ChunkedRows<T> {
    fn default() -> Self {
        ChunkedRows {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedRows<T> {
    const CHUNK: usize = 16 * 1024;

    pub(crate) fn push(&mut self, row: T) {
        match self.chunks.last_mut() {
            Some(c) if c.len() < Self::CHUNK => c.push(row),
            _ => {
                let mut c = Vec::with_capacity(Self::CHUNK);
                c.push(row);
                self.chunks.push(c);
            }
        }
        self.len += 1;
    }

    pub(crate) fn get(&self, i: u32) -> &T {
        let i = i as usize;
        &self.chunks[i / Self::CHUNK][i % Self::CHUNK]
    }

    pub(crate) fn len(&self) -> u32 {
        self.len
    }
}
