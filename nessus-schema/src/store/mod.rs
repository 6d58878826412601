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
//! | `meta.json` | format version, store id, scan metadata, [`Summary`], the field-name dictionary, the host table (name, ip, and the host fields' values: fqdn, netbios, mac, os, start, end, credentialed; absent in stores written before them, which then open with those unknown), the plugin table (name, family), the protocol table |
//! | `findings.bin` | 8-byte magic `NSFB\x01\0\0\0`, then per finding a `u32 LE` length and the record encoded as described in the `codec` module (field-id, type tag, payload entries) |
//! | `index.bin` | one fixed 64-byte little-endian row per finding, **already in the default order** (severity desc, host, port, plugin_id): record offset and length, host, plugin-table and protocol-table indexes, plugin_id, port, severity, exploit_available, flags, and cvss3/cvss2/VPR/EPSS scores as `f64` (NaN = absent) |
//! | `hosts.jsonl` | one JSON [`Host`] per line, in document order |
//! | `compliance.jsonl` | one JSON [`ComplianceResult`] per line |
//!
//! Serving a page streams `index.bin` (64 bytes per finding; an open store does not hold
//! it, so keeping many stores open costs little memory), evaluates conditions on `host`
//! and the host fields once per host of the host table (the `host` shorthand resolved
//! against every host first) and the other conditions on indexed fields against the rows,
//! decodes records only for conditions on other fields (reading candidates in file
//! order), sorts the matching rows by index columns when the
//! order is not the default, and decodes just the records of the page. The XML is never
//! read again.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalogue::{KNOWN_FIELDS, closest};
use crate::codec::{self, Dictionary, RawRecord};
use crate::error::{Error, Result};
use crate::filter::{FieldSource, Filter, is_host_level};
use crate::jsonl::JsonlWriter;
use crate::parser::Limits;
use crate::query::{Query, SortKey};
use crate::record::{ComplianceResult, Finding, Host, HostFields, ScanMetadata};
use crate::summary::Summary;

mod aggregate;
mod explain;
mod export;
mod page;
mod report;
mod row;
mod writer;

pub use aggregate::{
    Aggregate, Aggregation, DEFAULT_TOP, Group, GroupBy, GroupIdentity, MAX_TOP, Other, Rank,
};
pub(crate) use explain::Census;
pub use export::{EXPORT_PART_MAX_BYTES, EXPORT_PART_MAX_FINDINGS, ExportFormat, ExportPlan};
pub(crate) use page::{Frame, SortTables, read_at, serve};
use page::{RawView, RecordReader, SequentialReader};
pub use report::{REPORT_MAX_BYTES, REPORT_MAX_FINDINGS, SARIF_VERSION};
pub(crate) use row::{ChunkedRows, HostView, Row, Tables, default_cmp, fnv, row_for};
use row::{RowReader, RowView, ranks};
use writer::write_store;

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
    /// Whether the byte budget cut the answer (records, lines or values left out).
    pub truncated: bool,
    /// Cursor for the next page, if any.
    pub next_cursor: Option<String>,
    /// Bytes written.
    pub bytes_written: u64,
    /// The closing line's notices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

/// One host of the host table: its name, address and [`HostFields`] (the values of the
/// host fields; `default` so that stores written before they existed still open, with the
/// fields unknown).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HostEntry {
    name: String,
    ip: Option<IpAddr>,
    #[serde(default)]
    fields: HostFields,
    /// Whether a `HostProperties` block described it (while building the tables only).
    #[serde(skip)]
    described: bool,
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
    /// `meta.hosts[i].fields`, shared by the findings [`Store::findings`] decodes.
    host_fields: Vec<std::sync::Arc<HostFields>>,
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
        let mut meta: Meta = serde_json::from_slice(&meta_bytes)
            .map_err(|e| Error::store(dir, format!("meta.json is not valid: {e}")))?;
        // `host_ip` is the address the table keeps, as text.
        for h in &mut meta.hosts {
            h.fields.ip = h.ip.map(|ip| ip.to_string());
        }
        let host_fields = meta
            .hosts
            .iter()
            .map(|h| std::sync::Arc::new(h.fields.clone()))
            .collect();
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
            host_fields,
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
            f.host_fields = Some(self.host_fields[row.host as usize].clone());
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
    ///
    /// Conditions on `host` and the host fields are evaluated once per host of the host
    /// table (after resolving the `host` shorthand against it), the other indexed ones on
    /// rows, the rest on records.
    fn select(&self, filter: &Filter, sort: &[SortKey]) -> Result<Vec<u32>> {
        let resolved;
        let filter = if filter.has_host_conditions() {
            resolved = self.resolve_hosts(filter);
            &resolved
        } else {
            filter
        };
        let host_mask = filter.has_host_conditions().then(|| {
            self.meta
                .hosts
                .iter()
                .map(|h| filter.host_conditions_match(&HostView { entry: h }))
                .collect::<Vec<bool>>()
        });
        let (indexed, other): (Vec<_>, Vec<_>) = filter
            .conditions()
            .iter()
            .filter(|c| !is_host_level(&c.field))
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
            if let Some(mask) = &host_mask
                && !mask[row.host as usize]
            {
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

    /// `filter` with its `host` shorthands resolved against this store's hosts (see
    /// [`Filter`]'s host rules).
    pub(crate) fn resolve_hosts(&self, filter: &Filter) -> Filter {
        if !filter.has_host_conditions() {
            return filter.clone();
        }
        let views: Vec<HostView<'_>> = self
            .meta
            .hosts
            .iter()
            .map(|entry| HostView { entry })
            .collect();
        let sources: Vec<&dyn FieldSource> = views.iter().map(|v| v as &dyn FieldSource).collect();
        filter.resolve_hosts(&sources)
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

    /// Writes the JSON-NL response for `query` (see [`JsonlWriter`](crate::jsonl::JsonlWriter) for the framing).
    pub fn write_page<W: Write>(&self, query: &Query, out: W) -> Result<PageInfo> {
        self.check_fields(query)?;
        let matched = self.select(&query.filter, &query.sort)?;
        let fp = self.fingerprint(query);
        let mut reader = None;
        let mut rows = None;
        let mut buf = Vec::new();
        let explain = || self.explain(&query.filter);
        serve(
            Frame {
                query,
                total: matched.len() as u64,
                fp,
                scan: self.scan_metadata(),
                explain: Some(&explain),
            },
            out,
            |w, until| lines_within(w, &self.hosts()?, until, JsonlWriter::host_within),
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
                let host = &self.meta.hosts[row.host as usize];
                w.raw_finding(
                    RawRecord { bytes: &buf },
                    &self.dict,
                    &query.projection,
                    crate::jsonl::HostLine {
                        name: &host.name,
                        fields: Some(&host.fields),
                    },
                    budget,
                )
            },
            |w, until| {
                lines_within(
                    w,
                    &self.compliance()?,
                    until,
                    JsonlWriter::compliance_within,
                )
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
    /// Calls `f` with every finding's fingerprint (host name, port, protocol, plugin
    /// id), severity and plugin name, from the indexes only (no record is decoded).
    pub fn for_each_fingerprint<'a>(
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

/// Writes `items` in order while each line fits before `until`: (lines written, items).
fn lines_within<W: Write, T>(
    w: &mut JsonlWriter<W>,
    items: &[T],
    until: Option<u64>,
    write: impl Fn(&mut JsonlWriter<W>, &T, Option<u64>) -> Result<bool>,
) -> Result<(u64, u64)> {
    let mut written = 0;
    for item in items {
        if !write(w, item, until)? {
            break;
        }
        written += 1;
    }
    Ok((written, items.len() as u64))
}
