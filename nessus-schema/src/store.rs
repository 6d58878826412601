//! The per-task findings store: ingest a `.nessus` once, serve any page from it.
//!
//! # Format (version 1)
//!
//! A store is a directory written once by [`Store::ingest`] (into a sibling
//! `.<name>.partial-<pid>` directory that is renamed into place when complete, so a
//! crashed ingest never leaves a half store under the final name):
//!
//! | file | content |
//! |---|---|
//! | `meta.json` | format version, store id, scan metadata, [`Summary`], the field-name dictionary, the host table (name, ip), the plugin table (name, family), the protocol table |
//! | `findings.bin` | 8-byte magic `NSFB\x01\0\0\0`, then per finding a `u32 LE` length and the record encoded as described in the `codec` module (field-id, type tag, payload entries) |
//! | `index.bin` | one fixed 64-byte little-endian row per finding, **already in the default order** (severity desc, host, port, plugin_id): record offset and length, host, plugin-table and protocol-table indexes, plugin_id, port, severity, exploit_available, flags, and cvss3/cvss2/VPR/EPSS scores as `f64` (NaN = absent) |
//! | `hosts.jsonl` | one JSON [`Host`] per line, in document order |
//! | `compliance.jsonl` | one JSON [`ComplianceResult`] per line |
//!
//! Serving a page streams `index.bin` (64 bytes per finding; an open store does not hold
//! it, so keeping many stores open costs little memory), evaluates filter conditions on
//! indexed fields against the rows, decodes records only for conditions on other fields
//! (reading candidates in file order), sorts the matching rows by index columns when the
//! order is not the default, and decodes just the records of the page. The XML is never
//! read again.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalogue::{KNOWN_FIELDS, closest};
use crate::codec::{self, Dictionary, RawRecord};
use crate::error::{Error, Result};
use crate::filter::{FieldSource, Filter};
use crate::jsonl::{JsonlWriter, Pagination, Truncation};
use crate::parser::{Limits, NessusReader};
use crate::query::{PageRequest, Query, SortKey, clamp_page_size};
use crate::record::{ComplianceResult, Finding, Host, Record, ScanMetadata};
use crate::runs::{RunLimits, RunSorter};
use crate::summary::{Summary, SummaryBuilder};
use crate::value::ValueRef;

const FORMAT: u32 = 1;
const MAGIC: &[u8; 8] = b"NSFB\x01\0\0\0";
const ROW_BYTES: usize = 64;
const NONE_U32: u32 = u32::MAX;
const NONE_U8: u8 = u8::MAX;
/// Row flag: some indexed field could not be represented exactly in the row, so filters
/// must look at the record itself.
const FLAG_IRREGULAR: u8 = 1;

/// Fields whose values live in `index.bin` and can be filtered and sorted without reading
/// records.
pub const INDEXED_FIELDS: &[&str] = &[
    "host",
    "plugin_id",
    "plugin_name",
    "plugin_family",
    "severity",
    "port",
    "protocol",
    "exploit_available",
    "cvss3_base_score",
    "cvss_base_score",
    "vpr_score",
    "epss_score",
    "cvss_score",
];

/// Options for [`Store::ingest_with`].
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Parser limits.
    pub limits: Limits,
    /// Size of the source file for the summary; default: bytes read.
    pub file_size_bytes: Option<u64>,
    /// [`convert_file`](crate::convert_file_with) parses files at least this large in two
    /// halves on two threads; default ([`None`]): 16 MiB.
    pub parallel_min_bytes: Option<u64>,
    /// If set, [`convert_file_with`](crate::convert_file_with) adds every byte it reads
    /// from the file here (from both threads), for a progress display. A file that has to
    /// be parsed again after an error counts twice.
    pub bytes_read: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// What one served page contained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// Findings matching the filter.
    pub total: u64,
    /// Total pages at this page size (1 for `page=0`).
    pub total_pages: u64,
    /// 1-based page served (0 for "everything").
    pub page: u64,
    /// Clamped page size (0 for "everything").
    pub page_size: u64,
    /// Vulnerability lines written.
    pub returned: u64,
    /// Whether a `page=0` response was cut by its byte budget.
    pub truncated: bool,
    /// Cursor for the next page, if any.
    pub next_cursor: Option<String>,
    /// Bytes written.
    pub bytes_written: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct HostEntry {
    name: String,
    ip: Option<IpAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Meta {
    format: u32,
    store_id: String,
    summary: Summary,
    fields: Vec<String>,
    hosts: Vec<HostEntry>,
    plugins: Vec<(Option<String>, Option<String>)>,
    protocols: Vec<Option<String>>,
    findings: u64,
    compliance: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    host: u32,
    plugin: u32,
    plugin_id: u32,
    port: u32,
    severity: u8,
    protocol: u8,
    /// 0 absent, 1 false, 2 true, 3 null.
    exploit: u8,
    flags: u8,
    cvss3: f64,
    cvss2: f64,
    vpr: f64,
    epss: f64,
}

impl Row {
    fn to_bytes(self) -> [u8; ROW_BYTES] {
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

    fn from_bytes(b: &[u8]) -> Row {
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

/// An ingested findings store (see the module documentation for the format).
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    meta: Meta,
    dict: Dictionary,
    /// Rows in `index.bin` (read per call, validated on open and on every read).
    len: u32,
    findings_len: u64,
    host_rank: Vec<u32>,
}

/// Reads `index.bin` rows by number (positional reads, for a page's rows).
struct RowReader {
    file: File,
    path: PathBuf,
}

impl RowReader {
    fn get(&mut self, store: &Store, i: u32) -> Result<Row> {
        let mut b = [0u8; ROW_BYTES];
        read_at(&mut self.file, u64::from(i) * ROW_BYTES as u64, &mut b)
            .map_err(io_at(&self.path, "reading"))?;
        store.checked(Row::from_bytes(&b))
    }
}

/// Builds the tables and rows while records stream in.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    hosts: Vec<HostEntry>,
    host_ids: HashMap<String, u32>,
    plugins: Vec<(Option<String>, Option<String>)>,
    /// Keyed by `name \0 family` (with a marker for "absent") built in `key_buf`, so the
    /// common lookup does not allocate.
    plugin_ids: HashMap<String, u32>,
    key_buf: String,
    protocols: Vec<Option<String>>,
    last_host: Option<u32>,
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
            ip: None,
        });
        self.host_ids.insert(name.to_owned(), id);
        self.last_host = Some(id);
        id
    }

    fn plugin(&mut self, name: &Option<String>, family: &Option<String>) -> u32 {
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

    fn protocol(&mut self, p: &Option<String>) -> Option<u8> {
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

fn score(v: ValueRef<'_>, irregular: &mut bool) -> f64 {
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
fn host_order(a: &HostEntry, b: &HostEntry) -> std::cmp::Ordering {
    match (a.name.parse::<IpAddr>(), b.name.parse::<IpAddr>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.name.cmp(&b.name),
    }
}

fn ranks(hosts: &[HostEntry]) -> Vec<u32> {
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
    host: u32,
    port: u32,
    plugin_id: u32,
    severity: u8,
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

/// The error for a failed I/O on `path`; the message is formatted only on failure (this
/// runs per row and per record).
fn io_at<'a>(path: &'a Path, what: &'a str) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::io(format!("{what} {}", path.display()), e)
}

impl Store {
    /// Parses a `.nessus` stream once into a new store directory `dir` (which must not
    /// exist) and opens it. Memory: the largest record, a few MiB of sort buffers (index
    /// rows are sorted externally through a temporary file), plus the host and plugin
    /// tables.
    pub fn ingest<R: BufRead>(reader: R, dir: &Path) -> Result<Store> {
        Store::ingest_with(reader, dir, &IngestOptions::default())
    }

    /// [`Store::ingest`] with options.
    pub fn ingest_with<R: BufRead>(
        reader: R,
        dir: &Path,
        options: &IngestOptions,
    ) -> Result<Store> {
        if dir.exists() {
            return Err(Error::store(
                dir,
                "already exists; ingest writes a new store",
            ));
        }
        let name = dir
            .file_name()
            .ok_or_else(|| Error::store(dir, "not a directory path"))?
            .to_string_lossy()
            .into_owned();
        let tmp = dir.with_file_name(format!(".{name}.partial-{}", std::process::id()));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp, "removing stale"))?;
        }
        fs::create_dir_all(&tmp).map_err(io_at(&tmp, "creating"))?;
        match write_store(reader, &tmp, options) {
            Ok(()) => {
                fs::rename(&tmp, dir).map_err(io_at(dir, "moving the finished store to"))?;
                Store::open(dir)
            }
            Err(e) => {
                // Best effort: the error that matters is the ingest error.
                let _ = fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Opens an existing store.
    pub fn open(dir: &Path) -> Result<Store> {
        let meta_path = dir.join("meta.json");
        let meta_bytes = fs::read(&meta_path).map_err(io_at(&meta_path, "reading"))?;
        let meta: Meta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| Error::store(dir, format!("meta.json is not valid: {e}")))?;
        if meta.format != FORMAT {
            return Err(Error::store(
                dir,
                format!(
                    "format version {} is not supported (expected {FORMAT})",
                    meta.format
                ),
            ));
        }
        let index_path = dir.join("index.bin");
        let index_len = fs::metadata(&index_path)
            .map_err(io_at(&index_path, "reading"))?
            .len();
        let len = u32::try_from(meta.findings)
            .ok()
            .filter(|&n| u64::from(n) * ROW_BYTES as u64 == index_len)
            .ok_or_else(|| Error::store(dir, "index.bin does not match meta.json"))?;
        let findings_path = dir.join("findings.bin");
        let findings_len = fs::metadata(&findings_path)
            .map_err(io_at(&findings_path, "reading"))?
            .len();
        let host_rank = ranks(&meta.hosts);
        let dict = Dictionary::from_names(meta.fields.clone());
        let store = Store {
            dir: dir.to_owned(),
            meta,
            dict,
            len,
            findings_len,
            host_rank,
        };
        // Validate every row once (streamed): a corrupt index is refused at open rather
        // than at the first query. Reads check rows again, so serving never indexes out of
        // bounds or allocates a record buffer larger than the file, whatever the file says.
        store.for_each_row(|_, _| Ok(()))?;
        Ok(store)
    }

    /// A row whose references are in bounds, or an error.
    fn checked(&self, r: Row) -> Result<Row> {
        if (r.host as usize) < self.meta.hosts.len()
            && (r.plugin as usize) < self.meta.plugins.len()
            && r.offset.saturating_add(u64::from(r.len)) <= self.findings_len
        {
            Ok(r)
        } else {
            Err(Error::store(
                &self.dir,
                "index.bin does not match the store's tables and records",
            ))
        }
    }

    /// Streams every row of `index.bin` in order (the default order).
    fn for_each_row(&self, mut f: impl FnMut(u32, Row) -> Result<()>) -> Result<()> {
        use std::io::Read;
        let path = self.dir.join("index.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        let mut r = BufReader::with_capacity(256 * 1024, file);
        let mut b = [0u8; ROW_BYTES];
        for i in 0..self.len {
            r.read_exact(&mut b).map_err(io_at(&path, "reading"))?;
            f(i, self.checked(Row::from_bytes(&b))?)?;
        }
        Ok(())
    }

    fn row_reader(&self) -> Result<RowReader> {
        let path = self.dir.join("index.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        Ok(RowReader { file, path })
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Summary and credential check computed at ingest.
    pub fn summary(&self) -> &Summary {
        &self.meta.summary
    }

    /// Scan metadata (with start/end derived from the hosts).
    pub fn scan_metadata(&self) -> &ScanMetadata {
        &self.meta.summary.scan
    }

    /// Number of findings.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether the store has no findings.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Every field name that occurs in this store.
    pub fn field_names(&self) -> &[crate::record::FieldName] {
        self.dict.names()
    }

    /// All hosts, in document order.
    pub fn hosts(&self) -> Result<Vec<Host>> {
        self.read_jsonl("hosts.jsonl")
    }

    /// All compliance results, in document order.
    pub fn compliance(&self) -> Result<Vec<ComplianceResult>> {
        self.read_jsonl("compliance.jsonl")
    }

    fn read_jsonl<T: serde::de::DeserializeOwned>(&self, file: &str) -> Result<Vec<T>> {
        let path = self.dir.join(file);
        let f = File::open(&path).map_err(io_at(&path, "opening"))?;
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io_at(&path, "reading"))?;
            if line.is_empty() {
                continue;
            }
            out.push(
                serde_json::from_str(&line)
                    .map_err(|e| Error::store(&self.dir, format!("{file} is corrupt: {e}")))?,
            );
        }
        Ok(out)
    }

    /// Every finding in the default order, decoded one at a time.
    pub fn findings(&self) -> Result<impl Iterator<Item = Result<Finding>> + '_> {
        let mut reader = RecordReader::open(&self.dir)?;
        let mut rows = self.row_reader()?;
        let mut buf = Vec::new();
        Ok((0..self.len).map(move |i| {
            let row = rows.get(self, i)?;
            reader.read(&row, &mut buf)?;
            let mut f = codec::decode(RawRecord { bytes: &buf }, &self.dict);
            f.host_ip = self.meta.hosts[row.host as usize].ip;
            Ok(f)
        }))
    }

    fn is_known_field(&self, name: &str) -> bool {
        KNOWN_FIELDS.contains(&name) || self.dict.id(name).is_some()
    }

    fn check_fields(&self, q: &Query) -> Result<()> {
        let candidates = || {
            KNOWN_FIELDS
                .iter()
                .copied()
                .chain(self.dict.names().iter().map(|n| &**n))
        };
        q.filter
            .check_fields(|n| self.is_known_field(n), candidates())?;
        if let Some(fields) = q.projection.fields() {
            for f in fields {
                if !self.is_known_field(f) {
                    return Err(Error::UnknownField {
                        field: f.clone(),
                        suggestion: closest(f, candidates()),
                    });
                }
            }
        }
        Ok(())
    }

    /// Row numbers of the findings matching `filter`, in `sort` order (empty = default).
    fn select(&self, filter: &Filter, sort: &[SortKey]) -> Result<Vec<u32>> {
        let (indexed, other): (Vec<_>, Vec<_>) = filter
            .conditions()
            .iter()
            .partition(|c| INDEXED_FIELDS.contains(&c.field.as_str()));
        let custom = !sort.is_empty() && sort != SortKey::default_order().as_slice();
        // (row number, row); the rows are kept only when a custom sort needs them.
        let mut matched: Vec<(u32, Option<Row>)> = Vec::new();
        let mut to_check = Vec::new();
        self.for_each_row(|i, row| {
            if row.flags & FLAG_IRREGULAR != 0 {
                to_check.push((i, row));
                return Ok(());
            }
            let view = RowView {
                store: self,
                row: &row,
            };
            if !indexed.iter().all(|c| c.matches(&view)) {
                return Ok(());
            }
            if other.is_empty() {
                matched.push((i, custom.then_some(row)));
            } else {
                to_check.push((i, row));
            }
            Ok(())
        })?;
        if !to_check.is_empty() {
            // Read candidate records in file order, then restore index order.
            to_check.sort_by_key(|(_, row)| row.offset);
            let mut reader = SequentialReader::open(&self.dir)?;
            let mut buf = Vec::new();
            for (i, row) in to_check {
                reader.read(&row, &mut buf)?;
                let view = RawView {
                    store: self,
                    raw: RawRecord { bytes: &buf },
                    row: &row,
                };
                if filter.matches_source(&view) {
                    matched.push((i, custom.then_some(row)));
                }
            }
            matched.sort_unstable_by_key(|(i, _)| *i);
        }
        if custom {
            let tables = SortTables {
                plugins: &self.meta.plugins,
                protocols: &self.meta.protocols,
                host_rank: &self.host_rank,
            };
            // Stable, from index order: ties keep the default order.
            matched.sort_by(|(_, a), (_, b)| match (a, b) {
                (Some(a), Some(b)) => tables.compare(a, b, sort),
                _ => std::cmp::Ordering::Equal,
            });
        }
        Ok(matched.into_iter().map(|(i, _)| i).collect())
    }

    fn protocol(&self, r: &Row) -> Option<&str> {
        if r.protocol == NONE_U8 {
            return None;
        }
        self.meta
            .protocols
            .get(r.protocol as usize)
            .and_then(|p| p.as_deref())
    }

    fn fingerprint(&self, q: &Query) -> u64 {
        let (filter, sort) = q.cursor_identity();
        fnv(&[
            self.meta.store_id.as_bytes(),
            filter.as_bytes(),
            sort.as_bytes(),
        ])
    }

    /// Writes the JSON-NL response for `query` (see [`JsonlWriter`] for the framing).
    pub fn write_page<W: Write>(&self, query: &Query, out: W) -> Result<PageInfo> {
        self.check_fields(query)?;
        let matched = self.select(&query.filter, &query.sort)?;
        let fp = self.fingerprint(query);
        let mut reader = None;
        let mut rows = None;
        let mut buf = Vec::new();
        serve(
            Frame {
                query,
                total: matched.len() as u64,
                fp,
                scan: self.scan_metadata(),
            },
            out,
            |w| {
                for h in self.hosts()? {
                    w.host(&h)?;
                }
                Ok(())
            },
            |w, pos, budget| {
                let reader = match &mut reader {
                    Some(r) => r,
                    None => reader.insert(RecordReader::open(&self.dir)?),
                };
                let rows = match &mut rows {
                    Some(r) => r,
                    None => rows.insert(self.row_reader()?),
                };
                let row = &rows.get(self, matched[pos as usize])?;
                reader.read(row, &mut buf)?;
                w.raw_finding(
                    RawRecord { bytes: &buf },
                    &self.dict,
                    &query.projection,
                    budget,
                )
            },
            |w| {
                for c in self.compliance()? {
                    w.compliance(&c)?;
                }
                Ok(())
            },
        )
    }

    /// The page as a `String` (for tool results).
    pub fn page_string(&self, query: &Query) -> Result<(String, PageInfo)> {
        let mut out = Vec::new();
        let info = self.write_page(query, &mut out)?;
        // The writer only emits valid UTF-8.
        let text = String::from_utf8(out)
            .map_err(|_| Error::store(&self.dir, "produced invalid UTF-8"))?;
        Ok((text, info))
    }

    /// Fingerprint-level view of every finding for [`diff`](crate::diff), without
    /// reading records.
    pub(crate) fn for_each_fingerprint<'a>(
        &'a self,
        mut f: impl FnMut(crate::record::Fingerprint, Option<u8>, Option<&'a str>),
    ) -> Result<()> {
        self.for_each_row(|_, r| {
            let r = &r;
            f(
                crate::record::Fingerprint {
                    host: self.meta.hosts[r.host as usize].name.clone(),
                    port: (r.port != NONE_U32).then_some(r.port),
                    protocol: self.protocol(r).map(str::to_owned),
                    plugin_id: (r.plugin_id != NONE_U32).then_some(r.plugin_id),
                },
                (r.severity != NONE_U8).then_some(r.severity),
                self.meta.plugins[r.plugin as usize].0.as_deref(),
            );
            Ok(())
        })
    }
}

/// What [`serve`] frames: the query, the number of matching records, the cursor
/// fingerprint and the scan metadata.
pub(crate) struct Frame<'a> {
    pub(crate) query: &'a Query,
    pub(crate) total: u64,
    pub(crate) fp: u64,
    pub(crate) scan: &'a ScanMetadata,
}

/// Writes the framing around `total` ordered records: schema, metadata, hosts (first page
/// only), the page's records via `record(writer, position, budget_left)`, compliance (first
/// page only), then pagination or the truncation trailer.
pub(crate) fn serve<W, H, R, C>(
    frame: Frame<'_>,
    out: W,
    hosts: H,
    mut record: R,
    compliance: C,
) -> Result<PageInfo>
where
    W: Write,
    H: FnOnce(&mut JsonlWriter<BufWriter<W>>) -> Result<()>,
    R: FnMut(&mut JsonlWriter<BufWriter<W>>, u64, Option<u64>) -> Result<bool>,
    C: FnOnce(&mut JsonlWriter<BufWriter<W>>) -> Result<()>,
{
    let Frame {
        query,
        total,
        fp,
        scan,
    } = frame;
    let (start, size, page, budget) = match &query.page {
        PageRequest::Page { page, size } => {
            let size = u64::from(clamp_page_size(*size));
            let page = u64::from((*page).max(1));
            ((page - 1).saturating_mul(size), Some(size), page, None)
        }
        PageRequest::Cursor(c) => {
            let (offset, size) = decode_cursor(c, fp)?;
            (offset, Some(size), offset / size + 1, None)
        }
        PageRequest::All { byte_budget } => (0, None, 0, byte_budget.map(|b| b as u64)),
    };
    let total_pages = match size {
        Some(s) => total.div_ceil(s).max(1),
        None => 1,
    };
    let first_page = start == 0;
    // Lines are written in small pieces (a line, its shared values): batch them. 64 KiB
    // is enough for few syscalls, and touches a quarter of the pages a larger buffer
    // would on small outputs.
    let mut w = JsonlWriter::new(BufWriter::with_capacity(64 * 1024, out));
    w.schema(
        &query.projection,
        query.filter.as_json(),
        total,
        total_pages,
    )?;
    w.scan_metadata(scan)?;
    if query.include_hosts && first_page {
        hosts(&mut w)?;
    }
    let end = match size {
        Some(s) => start.saturating_add(s).min(total),
        None => total,
    };
    let mut returned = 0u64;
    let mut truncated = false;
    let records_start = w.bytes_written();
    for pos in start..end {
        let left = budget.map(|b| b.saturating_sub(w.bytes_written() - records_start));
        if !record(&mut w, pos, left)? {
            truncated = true;
            break;
        }
        returned += 1;
    }
    if query.include_compliance && first_page {
        compliance(&mut w)?;
    }
    let mut next_cursor = None;
    match size {
        Some(s) => {
            if end < total {
                next_cursor = Some(encode_cursor(end, s, fp));
            }
            w.pagination(&Pagination {
                page,
                page_size: s,
                total_pages,
                next_cursor: next_cursor.clone(),
            })?;
        }
        None if truncated => {
            next_cursor = Some(encode_cursor(
                returned,
                u64::from(crate::query::MAX_PAGE_SIZE),
                fp,
            ));
            w.truncated(&Truncation {
                returned,
                total,
                byte_budget: budget.unwrap_or(0),
                next_cursor: next_cursor.clone(),
            })?;
        }
        None => {}
    }
    let bytes_written = w.bytes_written();
    w.into_inner()?
        .into_inner()
        .map_err(|e| Error::io("flushing the output", e.into_error()))?;
    Ok(PageInfo {
        total,
        total_pages,
        page,
        page_size: size.unwrap_or(0),
        returned,
        truncated,
        next_cursor,
        bytes_written,
    })
}

/// Tables a sort comparison needs.
pub(crate) struct SortTables<'a> {
    pub(crate) plugins: &'a [(Option<String>, Option<String>)],
    pub(crate) protocols: &'a [Option<String>],
    pub(crate) host_rank: &'a [u32],
}

impl SortTables<'_> {
    fn protocol(&self, r: &Row) -> Option<&str> {
        if r.protocol == NONE_U8 {
            return None;
        }
        self.protocols
            .get(r.protocol as usize)
            .and_then(|p| p.as_deref())
    }

    /// Orders two rows by `sort`; missing values sort lowest.
    pub(crate) fn compare(&self, a: &Row, b: &Row, sort: &[SortKey]) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        let f64_key = |x: f64| if x.is_nan() { None } else { Some(x) };
        let fcmp = |x: f64, y: f64| {
            f64_key(x)
                .partial_cmp(&f64_key(y))
                .unwrap_or(Ordering::Equal)
        };
        let opt = |x: u32| (x != NONE_U32).then_some(x);
        let plugin = |r: &Row| self.plugins.get(r.plugin as usize);
        for k in sort {
            let o = match k.field.as_str() {
                "severity" => {
                    let s = |r: &Row| (r.severity != NONE_U8).then_some(r.severity);
                    s(a).cmp(&s(b))
                }
                "host" => self
                    .host_rank
                    .get(a.host as usize)
                    .cmp(&self.host_rank.get(b.host as usize)),
                "port" => opt(a.port).cmp(&opt(b.port)),
                "plugin_id" => opt(a.plugin_id).cmp(&opt(b.plugin_id)),
                "plugin_name" => plugin(a).map(|p| &p.0).cmp(&plugin(b).map(|p| &p.0)),
                "plugin_family" => plugin(a).map(|p| &p.1).cmp(&plugin(b).map(|p| &p.1)),
                "protocol" => self.protocol(a).cmp(&self.protocol(b)),
                "exploit_available" => (a.exploit == 2).cmp(&(b.exploit == 2)),
                "cvss3_base_score" => fcmp(a.cvss3, b.cvss3),
                "cvss_base_score" => fcmp(a.cvss2, b.cvss2),
                "vpr_score" => fcmp(a.vpr, b.vpr),
                "epss_score" => fcmp(a.epss, b.epss),
                "cvss_score" => fcmp(cvss_of(a), cvss_of(b)),
                _ => Ordering::Equal,
            };
            let o = if k.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

fn cvss_of(r: &Row) -> f64 {
    if r.cvss3.is_nan() { r.cvss2 } else { r.cvss3 }
}

fn encode_cursor(offset: u64, size: u64, fp: u64) -> String {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&fp.to_le_bytes());
    format!("c1{}", hex::encode(b))
}

fn decode_cursor(c: &str, fp: u64) -> Result<(u64, u64)> {
    let bad = |reason: &str| Error::InvalidCursor {
        reason: reason.to_owned(),
    };
    let hex_part = c
        .strip_prefix("c1")
        .ok_or_else(|| bad("unknown cursor version"))?;
    let b = hex::decode(hex_part).map_err(|_| bad("not a cursor"))?;
    if b.len() != 24 {
        return Err(bad("not a cursor"));
    }
    let word = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(a)
    };
    if word(16) != fp {
        return Err(bad(
            "it belongs to a different filter, sort order or result set; start again from page 1",
        ));
    }
    let size = word(8);
    if !(u64::from(crate::query::MIN_PAGE_SIZE)..=u64::from(crate::query::MAX_PAGE_SIZE))
        .contains(&size)
    {
        return Err(bad("bad page size"));
    }
    Ok((word(0), size))
}

/// Reads records by offset: positional reads of exactly one record (a buffered reader
/// would refill a whole buffer on every backward jump of the sorted order).
struct RecordReader {
    file: File,
    path: PathBuf,
}

impl RecordReader {
    fn open(dir: &Path) -> Result<RecordReader> {
        let path = dir.join("findings.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        Ok(RecordReader { file, path })
    }

    fn read(&mut self, row: &Row, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(row.len as usize, 0);
        read_at(&mut self.file, row.offset, buf).map_err(io_at(&self.path, "reading"))
    }
}

/// Reads records in ascending offset order through one buffer, skipping forward between
/// them (for filters that must look at many records).
struct SequentialReader {
    file: BufReader<File>,
    pos: u64,
    path: PathBuf,
}

impl SequentialReader {
    fn open(dir: &Path) -> Result<SequentialReader> {
        let path = dir.join("findings.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        Ok(SequentialReader {
            file: BufReader::with_capacity(1 << 20, file),
            pos: 0,
            path,
        })
    }

    fn read(&mut self, row: &Row, buf: &mut Vec<u8>) -> Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        if row.offset >= self.pos {
            let skip = i64::try_from(row.offset - self.pos).unwrap_or(i64::MAX);
            self.file
                .seek_relative(skip)
                .map_err(io_at(&self.path, "seeking in"))?;
        } else {
            self.file
                .seek(SeekFrom::Start(row.offset))
                .map_err(io_at(&self.path, "seeking in"))?;
        }
        buf.resize(row.len as usize, 0);
        self.file
            .read_exact(buf)
            .map_err(io_at(&self.path, "reading"))?;
        self.pos = row.offset + u64::from(row.len);
        Ok(())
    }
}

#[cfg(unix)]
pub(crate) fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
pub(crate) fn read_at(file: &mut File, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

struct RowView<'a> {
    store: &'a Store,
    row: &'a Row,
}

fn float_ref(x: f64) -> Option<ValueRef<'static>> {
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
            _ => None,
        }
    }

    fn host_ip(&self) -> Option<IpAddr> {
        self.store.meta.hosts[self.row.host as usize].ip
    }
}

struct RawView<'a> {
    store: &'a Store,
    raw: RawRecord<'a>,
    row: &'a Row,
}

impl FieldSource for RawView<'_> {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        if let Some(id) = self.store.dict.id(name)
            && let Some(v) = self.raw.get(id)
        {
            return Some(v);
        }
        match name {
            "cvss_score" => {
                let num = |n: &str| {
                    self.store
                        .dict
                        .id(n)
                        .and_then(|id| self.raw.get(id))
                        .and_then(|v| v.as_f64())
                };
                num("cvss3_base_score")
                    .or_else(|| num("cvss_base_score"))
                    .map(ValueRef::Float)
            }
            // Standard attributes absent from the file are present as null.
            n if crate::record::ATTRIBUTE_FIELDS.contains(&n) => Some(ValueRef::Null),
            _ => None,
        }
    }

    fn host_ip(&self) -> Option<IpAddr> {
        self.store.meta.hosts[self.row.host as usize].ip
    }
}

/// Index rows kept during ingest in fixed-size chunks, so growing never holds two copies
/// (a doubling `Vec` would briefly need 3x the rows' size at 1 GB inputs).
#[derive(Debug)]
pub(crate) struct ChunkedRows<T = Row> {
    chunks: Vec<Vec<T>>,
    len: u32,
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

fn write_store<R: BufRead>(reader: R, dir: &Path, options: &IngestOptions) -> Result<()> {
    let create = |name: &str| -> Result<BufWriter<File>> {
        let path = dir.join(name);
        let f = File::create(&path).map_err(io_at(&path, "creating"))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    };
    let findings_path = dir.join("findings.bin");
    let (hosts_path, compliance_path, index_path) = (
        dir.join("hosts.jsonl"),
        dir.join("compliance.jsonl"),
        dir.join("index.bin"),
    );
    let mut findings = create("findings.bin")?;
    let mut hosts = create("hosts.jsonl")?;
    let mut compliance = create("compliance.jsonl")?;
    fn werr(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        io_at(p, "writing")
    }
    findings.write_all(MAGIC).map_err(werr(&findings_path))?;
    let mut offset = MAGIC.len() as u64;

    let mut parser = NessusReader::with_limits(reader, options.limits);
    let mut summary = SummaryBuilder::default();
    let mut tables = Tables::default();
    let mut dict = Dictionary::default();
    // Rows are sorted into the default order externally (bounded memory, see `runs`).
    let mut rows = RunSorter::new(RunLimits::default());
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut ncompliance = 0u64;
    while let Some(record) = parser.next_record()? {
        summary.add(&record);
        match record {
            Record::Scan(_) => {}
            Record::Host(h) => {
                let id = tables.host(&h.name);
                tables.hosts[id as usize].ip = h.ip;
                serde_json::to_writer(&mut hosts, &h)
                    .map_err(|e| Error::io("writing hosts.jsonl", e.into()))?;
                hosts.write_all(b"\n").map_err(werr(&hosts_path))?;
            }
            Record::Finding(f) => {
                if rows.len() == u64::from(u32::MAX) {
                    return Err(Error::store(dir, "more than 4 billion findings"));
                }
                buf.clear();
                if !codec::encode(&f, &mut dict, &mut buf) {
                    return Err(Error::store(dir, "more than 65536 distinct field names"));
                }
                let len = buf.len() as u32;
                findings
                    .write_all(&len.to_le_bytes())
                    .and_then(|()| findings.write_all(&buf))
                    .map_err(werr(&findings_path))?;
                let row = row_for(&f, &mut tables, offset + 4, len);
                let severity = match row.severity {
                    NONE_U8 => -1,
                    s => i16::from(s),
                };
                rows.push(
                    row.host,
                    severity,
                    row.port,
                    row.plugin_id,
                    &row.to_bytes(),
                    ROW_BYTES as u64,
                )
                .map_err(|e| Error::io("writing a temporary file", e))?;
                offset += 4 + u64::from(len);
            }
            Record::Compliance(c) => {
                ncompliance += 1;
                serde_json::to_writer(&mut compliance, &c)
                    .map_err(|e| Error::io("writing compliance.jsonl", e.into()))?;
                compliance
                    .write_all(b"\n")
                    .map_err(werr(&compliance_path))?;
            }
        }
    }
    let file_size = options.file_size_bytes.unwrap_or(parser.bytes_read());
    let summary = summary.finish(file_size);

    let rank = ranks(&tables.hosts);
    let count = rows.len();
    let mut sorted = rows
        .finish(&rank)
        .map_err(|e| Error::io("writing a temporary file", e))?;
    let mut index = create("index.bin")?;
    for pos in 0..count {
        let row = sorted
            .line(pos)
            .map_err(|e| Error::io("reading a temporary file", e))?;
        index.write_all(row.bytes).map_err(werr(&index_path))?;
    }
    for (name, w) in [
        ("findings.bin", findings),
        ("hosts.jsonl", hosts),
        ("compliance.jsonl", compliance),
        ("index.bin", index),
    ] {
        let path = dir.join(name);
        let f = w
            .into_inner()
            .map_err(|e| Error::io(format!("flushing {}", path.display()), e.into_error()))?;
        f.sync_all().map_err(io_at(&path, "syncing"))?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let meta = Meta {
        format: FORMAT,
        store_id: format!(
            "{:016x}",
            fnv(&[
                &nanos.to_le_bytes(),
                &std::process::id().to_le_bytes(),
                &offset.to_le_bytes()
            ])
        ),
        summary,
        fields: dict.names().iter().map(|n| n.to_string()).collect(),
        hosts: tables.hosts,
        plugins: tables.plugins,
        protocols: tables.protocols,
        findings: count,
        compliance: ncompliance,
    };
    let meta_path = dir.join("meta.json");
    let text = serde_json::to_vec(&meta).map_err(|e| Error::io("encoding meta.json", e.into()))?;
    fs::write(&meta_path, text).map_err(io_at(&meta_path, "writing"))?;
    Ok(())
}
