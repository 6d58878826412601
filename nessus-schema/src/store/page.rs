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
use crate::jsonl::{Closing, End, JsonlWriter, Pagination, Truncation};
use crate::query::{MAX_PAGE_SIZE, MIN_PAGE_SIZE, PageRequest, Query, SortKey, clamp_page_size};
use crate::record::ScanMetadata;
use crate::value::ValueRef;

/// What [`serve`] frames: the query, the number of matching records, the cursor
/// fingerprint, the scan metadata, and what explains an empty answer.
pub(crate) struct Frame<'a> {
    pub(crate) query: &'a Query,
    pub(crate) total: u64,
    pub(crate) fp: u64,
    pub(crate) scan: &'a ScanMetadata,
    /// Says what the scan holds near a filter that matched nothing (the store's
    /// [`Store::explain`]); without it the notice only says that nothing matched.
    pub(crate) explain: Option<&'a dyn Fn() -> Result<String>>,
}

/// Room kept for the notice naming the fields of a cut record (see [`cut_notice`]).
const CUT_NOTICE_ROOM: u64 = 512;
/// Room host lines leave for the records when both are asked for.
const RECORD_ROOM: u64 = 2048;
/// Slack on the reserved closing line (a digit or two of `returned`).
const CLOSING_SLACK: u64 = 8;

/// The notice for cut fields: at most five names of at most 40 bytes each, so it always
/// fits [`CUT_NOTICE_ROOM`].
fn cut_notice(fields: &[String]) -> String {
    let mut names: Vec<&str> = fields
        .iter()
        .take(5)
        .map(|f| {
            let mut end = f.len().min(40);
            while !f.is_char_boundary(end) {
                end -= 1;
            }
            &f[..end]
        })
        .collect();
    let more = fields.len().saturating_sub(names.len());
    let more_text = format!("and {more} more");
    if more > 0 {
        names.push(&more_text);
    }
    format!(
        "the first finding alone did not fit the byte budget: its longest values were cut \
         ({}); each cut value ends with \"…[cut: N more characters]\"; ask with a larger \
         byte_budget or with custom_fields to see them whole",
        names.join(", ")
    )
}

/// The notice for host or compliance lines left out; `what` is `host` or `compliance`.
fn lines_notice(what: &str, written: u64, of: u64) -> String {
    format!(
        "{what} lines cut by the byte budget: {written} of {of} written; ask again with \
         include_{} and a larger byte_budget",
        if what == "host" { "hosts" } else { what }
    )
}

/// Where an answer stands when its closing line is written.
struct Progress {
    returned: u64,
    truncated: bool,
}

/// Everything the closing line depends on besides [`Progress`].
struct Closer {
    start: u64,
    /// `None` for `page=0`.
    size: Option<u64>,
    page: u64,
    total: u64,
    total_pages: u64,
    fp: u64,
    budget: Option<u64>,
    cursor_request: bool,
    empty_scan: bool,
}

impl Closer {
    fn window(&self) -> u64 {
        match self.size {
            Some(s) => self.start.saturating_add(s).min(self.total),
            None => self.total,
        }
        .saturating_sub(self.start)
    }

    fn line(&self, p: &Progress, notices: &[String]) -> Closing {
        let after = self.start.saturating_add(p.returned);
        let more = after < self.total;
        let cursor_size = self.size.unwrap_or(u64::from(crate::query::MAX_PAGE_SIZE));
        let next_cursor = more.then(|| encode_cursor(after, cursor_size, self.fp));
        let next = self.next(p, after);
        let notices = notices.to_vec();
        match self.size {
            Some(page_size) => Closing::Pagination(Pagination {
                page: self.page,
                page_size,
                total_pages: self.total_pages,
                next_cursor,
                returned: p.returned,
                truncated: p.truncated,
                next,
                notices,
            }),
            None if p.truncated => Closing::Truncated(Truncation {
                returned: p.returned,
                total: self.total,
                byte_budget: self.budget.unwrap_or(0),
                next_cursor,
                next,
                notices,
            }),
            None => Closing::End(End {
                returned: p.returned,
                total: self.total,
                next,
                notices,
            }),
        }
    }

    /// The closing line's `next` sentence.
    fn next(&self, p: &Progress, after: u64) -> String {
        let (total, page, pages) = (self.total, self.page, self.total_pages);
        if total == 0 {
            return if self.empty_scan {
                "nothing to fetch: this scan has no findings".to_owned()
            } else {
                "nothing to fetch: no findings match the filter (the notices say what the \
                 scan holds)"
                    .to_owned()
            };
        }
        if self.size.is_some() && self.start >= total {
            let range = if pages == 1 {
                "1".to_owned()
            } else {
                format!("1-{pages}")
            };
            return format!("page {page} is past the end; ask for page {range}");
        }
        let window = self.window();
        if after < total && p.returned < window {
            let resume = "pass next_cursor to resume right after the last returned finding";
            return match self.size {
                Some(_) if page < pages && !self.cursor_request => format!(
                    "cut by the byte budget after {} of this page's {window} findings: \
                     {resume} (next_page {} would skip the rest of this page)",
                    p.returned,
                    page + 1
                ),
                Some(_) => format!(
                    "cut by the byte budget after {} of this answer's {window} findings: \
                     {resume}",
                    p.returned
                ),
                None => format!(
                    "cut by the byte budget after {} of {total} findings: {resume} (pages of \
                     100), or ask for fewer fields or a narrower filter",
                    p.returned
                ),
            };
        }
        if after < total {
            let left = total - after;
            let findings = if left == 1 { "finding" } else { "findings" };
            return if self.cursor_request || page >= pages {
                format!("{left} more {findings}: pass next_cursor")
            } else {
                format!(
                    "{left} more {findings}: ask for page {} or pass next_cursor",
                    page + 1
                )
            };
        }
        let whole = if p.truncated {
            "; some values or lines were cut to fit (see notices): ask with a larger \
             byte_budget or fewer fields to see them whole"
        } else {
            ""
        };
        match self.size {
            Some(_) => format!("this is the end: no more findings match{whole}"),
            None => format!("this is everything: all {total} matching findings{whole}"),
        }
    }

    /// Bytes to keep free for the closing line with `notices` (plus its separator).
    fn reserve(&self, notices: &[String]) -> u64 {
        let window = self.window();
        let done = self
            .line(
                &Progress {
                    returned: window,
                    truncated: false,
                },
                notices,
            )
            .len();
        let cut = self
            .line(
                &Progress {
                    returned: window.saturating_sub(1),
                    truncated: true,
                },
                notices,
            )
            .len();
        1 + done.max(cut) + CLOSING_SLACK
    }
}

/// Writes the framing around `total` ordered records: schema, metadata, hosts (first page
/// only), the page's records via `record(writer, position, budget_left)`, compliance (first
/// page only), then the closing line (`pagination`, `truncated` or `end`). With a budget
/// (the query's), the whole text stays within it: every line is written only if the
/// closing line still fits after it, and the first record, if it alone does not fit, is
/// cut to fit. `hosts` and `compliance` get the byte count the output may reach and
/// return how many lines they wrote and how many there were.
pub(crate) fn serve<W, H, R, C>(
    frame: Frame<'_>,
    out: W,
    hosts: H,
    mut record: R,
    compliance: C,
) -> Result<PageInfo>
where
    W: Write,
    H: FnOnce(&mut JsonlWriter<BufWriter<W>>, Option<u64>) -> Result<(u64, u64)>,
    R: FnMut(&mut JsonlWriter<BufWriter<W>>, u64, Option<u64>) -> Result<bool>,
    C: FnOnce(&mut JsonlWriter<BufWriter<W>>, Option<u64>) -> Result<(u64, u64)>,
{
    let Frame {
        query,
        total,
        fp,
        scan,
        explain,
    } = frame;
    let budget = query.effective_budget().map(|b| b as u64);
    let mut notices = query.notices.clone();
    let (start, size, page) = match &query.page {
        PageRequest::Page { page, size: asked } => {
            let size = clamp_page_size(*asked);
            if size != *asked {
                let how = if size > *asked { "raised" } else { "lowered" };
                notices.push(format!(
                    "page_size {asked} was {how} to {size}; allowed {MIN_PAGE_SIZE}-{MAX_PAGE_SIZE}"
                ));
            }
            let size = u64::from(size);
            let page = u64::from((*page).max(1));
            ((page - 1).saturating_mul(size), Some(size), page)
        }
        PageRequest::Cursor(c) => {
            let (offset, size) = decode_cursor(c, fp)?;
            (offset, Some(size), offset / size + 1)
        }
        PageRequest::All { .. } => (0, None, 0),
    };
    let total_pages = match size {
        Some(s) => total.div_ceil(s).max(1),
        None => 1,
    };
    if let (Some(s), PageRequest::Page { .. }) = (size, &query.page)
        && page > total_pages
    {
        let range = if total_pages == 1 {
            "1".to_owned()
        } else {
            format!("1-{total_pages}")
        };
        notices.push(format!(
            "page {page} is past the end: {total_pages} page{} of {s} ({total} matching \
             findings); ask for page {range}",
            if total_pages == 1 { "" } else { "s" }
        ));
    }
    let empty_filter = query.filter.as_json().is_empty();
    if total == 0 {
        notices.push(match explain {
            Some(explain) if !empty_filter => explain()?,
            _ if empty_filter => "this scan has no findings".to_owned(),
            _ => "no findings match the filter".to_owned(),
        });
    }
    let closer = Closer {
        start,
        size,
        page,
        total,
        total_pages,
        fp,
        budget,
        cursor_request: matches!(query.page, PageRequest::Cursor(_)),
        empty_scan: total == 0 && empty_filter,
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
    // Notices that may still come, reserved for until they are known: a line is only
    // written if the closing line, with them, still fits after it.
    let want_hosts = query.include_hosts && first_page;
    let want_compliance = query.include_compliance && first_page;
    let placeholder = |what| lines_notice(what, u64::MAX, u64::MAX);
    let limit = |notices: &[String], pending: &[String]| {
        budget.map(|b| {
            let all: Vec<String> = notices.iter().chain(pending).cloned().collect();
            b.saturating_sub(closer.reserve(&all))
        })
    };
    let mut truncated = false;
    let compliance_pending: Vec<String> = if want_compliance {
        vec![placeholder("compliance")]
    } else {
        Vec::new()
    };
    if want_hosts {
        let mut pending = compliance_pending.clone();
        pending.push(placeholder("host"));
        let room = if closer.window() > 0 { RECORD_ROOM } else { 0 };
        let until = limit(&notices, &pending).map(|l| l.saturating_sub(room));
        let (written, of) = hosts(&mut w, until)?;
        if written < of {
            truncated = true;
            notices.push(lines_notice("host", written, of));
        }
    }
    let end = start.saturating_add(closer.window());
    let mut returned = 0u64;
    let mut until = limit(&notices, &compliance_pending);
    for pos in start..end {
        let left = until.map(|u| u.saturating_sub(w.bytes_written()));
        if record(&mut w, pos, left)? {
            returned += 1;
            continue;
        }
        if returned > 0 {
            truncated = true;
            break;
        }
        // The first record alone does not fit: write it cut, so that paging progresses.
        w.set_cut(true);
        let written = record(&mut w, pos, left.map(|l| l.saturating_sub(CUT_NOTICE_ROOM)));
        w.set_cut(false);
        if !written? {
            truncated = true;
            break;
        }
        returned += 1;
        let cut = w.take_cut_fields();
        if !cut.is_empty() {
            truncated = true;
            notices.push(cut_notice(&cut));
            until = limit(&notices, &compliance_pending);
        }
    }
    if want_compliance {
        let until = limit(&notices, &compliance_pending);
        let (written, of) = compliance(&mut w, until)?;
        if written < of {
            truncated = true;
            notices.push(lines_notice("compliance", written, of));
        }
    }
    let closing = closer.line(
        &Progress {
            returned,
            truncated,
        },
        &notices,
    );
    let next_cursor = match &closing {
        Closing::Pagination(p) => p.next_cursor.clone(),
        Closing::Truncated(t) => t.next_cursor.clone(),
        Closing::End(_) => None,
    };
    w.closing(&closing)?;
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
        notices,
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
