//! The page engine: framing a page (schema, metadata, hosts, records, compliance,
//! pagination), sort comparisons over rows, cursors, and the two record readers
//! (positional for a page, sequential for filters that scan many records).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::row::Row;
use super::{NONE_U8, NONE_U32, PageInfo, Store, io_at};
use crate::codec::RawRecord;
use crate::error::{Error, Result};
use crate::filter::FieldSource;
use crate::jsonl::{JsonlWriter, Pagination, Truncation};
use crate::query::{PageRequest, Query, SortKey, clamp_page_size};
use crate::record::ScanMetadata;
use crate::value::ValueRef;

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
    pub(super) fn protocol(&self, r: &Row) -> Option<&str> {
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

pub(super) fn cvss_of(r: &Row) -> f64 {
    if r.cvss3.is_nan() { r.cvss2 } else { r.cvss3 }
}

pub(super) fn encode_cursor(offset: u64, size: u64, fp: u64) -> String {
    let mut b = Vec::with_capacity(24);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&fp.to_le_bytes());
    format!("c1{}", hex::encode(b))
}

pub(super) fn decode_cursor(c: &str, fp: u64) -> Result<(u64, u64)> {
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
pub(super) struct RecordReader {
    pub(super) file: File,
    pub(super) path: PathBuf,
}

impl RecordReader {
    pub(super) fn open(dir: &Path) -> Result<RecordReader> {
        let path = dir.join("findings.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        Ok(RecordReader { file, path })
    }

    pub(super) fn read(&mut self, row: &Row, buf: &mut Vec<u8>) -> Result<()> {
        buf.resize(row.len as usize, 0);
        read_at(&mut self.file, row.offset, buf).map_err(io_at(&self.path, "reading"))
    }
}

/// Reads records in ascending offset order through one buffer, skipping forward between
/// them (for filters that must look at many records).
pub(super) struct SequentialReader {
    pub(super) file: BufReader<File>,
    pub(super) pos: u64,
    pub(super) path: PathBuf,
}

impl SequentialReader {
    pub(super) fn open(dir: &Path) -> Result<SequentialReader> {
        let path = dir.join("findings.bin");
        let file = File::open(&path).map_err(io_at(&path, "opening"))?;
        Ok(SequentialReader {
            file: BufReader::with_capacity(1 << 20, file),
            pos: 0,
            path,
        })
    }

    pub(super) fn read(&mut self, row: &Row, buf: &mut Vec<u8>) -> Result<()> {
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

pub(super) struct RawView<'a> {
    pub(super) store: &'a Store,
    pub(super) raw: RawRecord<'a>,
    pub(super) row: &'a Row,
}

impl FieldSource for RawView<'_> {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        if crate::catalogue::is_host_field(name) {
            // Host data comes from the host table, never from the record.
            return self.store.meta.hosts[self.row.host as usize]
                .fields
                .get(name);
        }
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
