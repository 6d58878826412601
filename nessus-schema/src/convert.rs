//! One-call conversion for the command line.
//!
//! The schema line states the total before any record and the default order is by
//! severity, so records cannot be written as they are parsed. Instead of a full findings
//! store, `convert` evaluates the filter on each parsed finding, renders the matching ones
//! straight to JSON-NL lines in an anonymous temporary file, keeps one 64-byte sort row per
//! matching finding, and at the end copies the page's lines out in order. Memory: the
//! largest record plus 64 bytes per matching finding (plus a `u32` per finding for the sort
//! permutation); disk: the rendered lines of the matching findings.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};

use crate::catalogue::{KNOWN_FIELDS, closest};
use crate::error::{Error, Result};
use crate::jsonl::render_finding;
use crate::parser::NessusReader;
use crate::query::{Query, SortKey};
use crate::record::{ComplianceResult, Host, Record};
use crate::store::{
    ChunkedRows, Frame, IngestOptions, OrderKey, PageInfo, Row, Tables, default_cmp, fnv, key_cmp,
    read_at, row_for, serve,
};
use crate::summary::SummaryBuilder;

/// Converts a `.nessus` stream to JSON-NL for `query` (see the module documentation for
/// how, and for its memory and disk use).
pub fn convert<R: BufRead, W: Write>(reader: R, writer: W, query: &Query) -> Result<PageInfo> {
    convert_with(reader, writer, query, &IngestOptions::default())
}

fn temp() -> Result<File> {
    tempfile::tempfile().map_err(|e| Error::io("creating a temporary file", e))
}

fn spill_err(e: std::io::Error) -> Error {
    Error::io("writing a temporary file", e)
}

/// [`convert`] with parser limits (`options.file_size_bytes` is unused here).
pub fn convert_with<R: BufRead, W: Write>(
    reader: R,
    writer: W,
    query: &Query,
    options: &IngestOptions,
) -> Result<PageInfo> {
    // One spill file per severity: the default order reads each one front to back.
    let mut spills = Spills::new()?;
    let mut extras = if query.include_hosts || query.include_compliance {
        Some((BufWriter::new(temp()?), BufWriter::new(temp()?)))
    } else {
        None
    };
    let mut parser = NessusReader::with_limits(reader, options.limits);
    if let Some(fields) = query.projection.fields() {
        // Only what is written, filtered on, or sorted on (the sort row) is worth copying
        // out of the XML; large texts such as `plugin_output` are skipped.
        parser.keep_only(
            fields
                .iter()
                .map(String::as_str)
                .chain(query.filter.conditions().iter().map(|c| c.field.as_str()))
                .chain(ROW_FIELDS.iter().copied()),
        );
    }
    let mut summary = SummaryBuilder::default();
    let mut tables = Tables::default();
    let default_order = query.sort.is_empty() || query.sort == SortKey::default_order();
    let mut rows = if default_order {
        Kept::Keys(ChunkedRows::default())
    } else {
        Kept::Rows(ChunkedRows::default())
    };
    let mut line = Vec::with_capacity(64 * 1024);
    while let Some(record) = parser.next_record()? {
        summary.add(&record);
        match record {
            Record::Finding(f) => {
                if !query.filter.matches(&f) {
                    continue;
                }
                if rows.len() == u32::MAX {
                    return Err(Error::query("more than 4 billion findings"));
                }
                line.clear();
                render_finding(&mut line, &f, &query.projection);
                let offset = spills.write(f.severity, &line)?;
                rows.push(row_for(&f, &mut tables, offset, line.len() as u32));
            }
            Record::Host(h) if query.include_hosts => {
                if let Some((hosts, _)) = &mut extras {
                    serde_json::to_writer(&mut *hosts, &h).map_err(|e| spill_err(e.into()))?;
                    hosts.write_all(b"\n").map_err(spill_err)?;
                }
            }
            Record::Compliance(c) if query.include_compliance => {
                if let Some((_, comp)) = &mut extras {
                    serde_json::to_writer(&mut *comp, &c).map_err(|e| spill_err(e.into()))?;
                    comp.write_all(b"\n").map_err(spill_err)?;
                }
            }
            _ => {}
        }
    }
    check_fields(query, &parser)?;
    let scan = summary.finish(parser.bytes_read()).scan;

    let rank = tables.host_ranks();
    let mut order: Vec<u32> = (0..rows.len()).collect();
    match &rows {
        Kept::Keys(keys) => order.sort_by(|&a, &b| key_cmp(keys.get(a), keys.get(b), &rank)),
        Kept::Rows(full) => {
            let t = tables.sort_tables(&rank);
            // Ties fall back to the default order, like the store.
            order.sort_by(|&a, &b| {
                let (ra, rb) = (full.get(a), full.get(b));
                t.compare(ra, rb, &query.sort)
                    .then_with(|| default_cmp(ra, rb, &rank))
            });
        }
    }

    let mut lines = spills.finish()?;
    let filter = serde_json::to_string(query.filter.as_json()).unwrap_or_default();
    let sort: String = query
        .effective_sort()
        .iter()
        .map(|k| format!("{}:{},", k.field, k.descending))
        .collect();
    let fp = fnv(&[b"convert", filter.as_bytes(), sort.as_bytes()]);
    let (hosts_file, comp_file) = match extras {
        Some((h, c)) => (
            Some(h.into_inner().map_err(|e| spill_err(e.into_error()))?),
            Some(c.into_inner().map_err(|e| spill_err(e.into_error()))?),
        ),
        None => (None, None),
    };
    serve(
        Frame {
            query,
            total: u64::from(rows.len()),
            fp,
            scan: &scan,
        },
        writer,
        |w| {
            for h in read_back::<Host>(hosts_file)? {
                w.host(&h?)?;
            }
            Ok(())
        },
        |w, pos, budget| {
            let (offset, len) = rows.span(order[pos as usize]);
            let line = lines
                .line(offset, len)
                .map_err(|e| Error::io("reading a temporary file", e))?;
            w.raw_line(line, budget)
        },
        |w| {
            for c in read_back::<ComplianceResult>(comp_file)? {
                w.compliance(&c?)?;
            }
            Ok(())
        },
    )
}

/// One entry per matching finding: the whole sort row for a custom sort, only the
/// default order's columns otherwise (half the memory).
enum Kept {
    Keys(ChunkedRows<OrderKey>),
    Rows(ChunkedRows<Row>),
}

impl Kept {
    fn push(&mut self, row: Row) {
        match self {
            Kept::Keys(k) => k.push(row.order_key()),
            Kept::Rows(r) => r.push(row),
        }
    }

    fn len(&self) -> u32 {
        match self {
            Kept::Keys(k) => k.len(),
            Kept::Rows(r) => r.len(),
        }
    }

    /// Offset and length of entry `i`'s line.
    fn span(&self, i: u32) -> (u64, u32) {
        match self {
            Kept::Keys(k) => {
                let k = k.get(i);
                (k.offset, k.len)
            }
            Kept::Rows(r) => {
                let r = r.get(i);
                (r.offset, r.len)
            }
        }
    }
}

/// Children `row_for` reads.
const ROW_FIELDS: &[&str] = &[
    "exploit_available",
    "cvss3_base_score",
    "cvss_base_score",
    "vpr_score",
    "epss_score",
    "cvss_score",
    "host",
];

/// Severity buckets of the spill: 0-4, anything else.
const BUCKETS: usize = 6;
/// Bits of a row offset that address bytes inside one bucket's file; the bucket number
/// sits above them.
const BUCKET_SHIFT: u32 = 56;
/// Bytes read from a spill file at once when serving lines.
const WINDOW: usize = 256 * 1024;

/// The rendered lines, spilled to one anonymous file per severity bucket (created on
/// first use). Row offsets carry the bucket in their top byte; offsets stay unique and
/// ordered by document position within a severity, which is all the sort's tie-break needs.
struct Spills {
    files: Vec<Option<(BufWriter<File>, u64)>>,
}

impl Spills {
    fn new() -> Result<Spills> {
        Ok(Spills {
            files: (0..BUCKETS).map(|_| None).collect(),
        })
    }

    /// Appends `line` to its bucket; returns its tagged offset.
    fn write(&mut self, severity: Option<u8>, line: &[u8]) -> Result<u64> {
        let bucket = severity.map_or(BUCKETS - 1, |s| usize::from(s).min(BUCKETS - 1));
        let slot = &mut self.files[bucket];
        let (file, len) = match slot {
            Some(open) => open,
            None => slot.insert((BufWriter::with_capacity(256 * 1024, temp()?), 0)),
        };
        if *len >= 1 << BUCKET_SHIFT {
            return Err(Error::query("more than 64 PiB of output"));
        }
        let offset = ((bucket as u64) << BUCKET_SHIFT) | *len;
        file.write_all(line).map_err(spill_err)?;
        *len += line.len() as u64;
        Ok(offset)
    }

    fn finish(self) -> Result<Windows> {
        let files = self
            .files
            .into_iter()
            .map(|slot| {
                slot.map(|(w, len)| {
                    let file = w.into_inner().map_err(|e| spill_err(e.into_error()))?;
                    Ok(Window {
                        file,
                        len,
                        base: 0,
                        buf: Vec::new(),
                    })
                })
                .transpose()
            })
            .collect::<Result<_>>()?;
        Ok(Windows { files })
    }
}

/// Reads spilled lines back through one window per bucket: the served order walks each
/// bucket mostly forwards, so one positional read serves many lines.
struct Windows {
    files: Vec<Option<Window>>,
}

struct Window {
    file: File,
    len: u64,
    /// File offset of `buf[0]`.
    base: u64,
    buf: Vec<u8>,
}

impl Windows {
    fn line(&mut self, tagged: u64, len: u32) -> std::io::Result<&[u8]> {
        let bucket = (tagged >> BUCKET_SHIFT) as usize;
        let offset = tagged & ((1 << BUCKET_SHIFT) - 1);
        let w = self
            .files
            .get_mut(bucket)
            .and_then(Option::as_mut)
            .ok_or_else(|| std::io::Error::other("line of an unknown spill file"))?;
        let end = offset + u64::from(len);
        if offset < w.base || end > w.base + w.buf.len() as u64 {
            // Keep a little before the line too: rows of one host in one severity are
            // close together but not in file order.
            let start = offset.saturating_sub(WINDOW as u64 / 8);
            let stop = w.len.min(start + (WINDOW as u64).max(end - start));
            if end > stop {
                return Err(std::io::Error::other("line past the end of a spill file"));
            }
            w.buf.resize((stop - start) as usize, 0);
            read_at(&mut w.file, start, &mut w.buf)?;
            w.base = start;
        }
        let at = (offset - w.base) as usize;
        Ok(&w.buf[at..at + len as usize])
    }
}

/// Streams back the JSON lines spilled to `file`.
fn read_back<T: serde::de::DeserializeOwned>(
    file: Option<File>,
) -> Result<impl Iterator<Item = Result<T>>> {
    let reader = match file {
        Some(mut f) => {
            f.seek(SeekFrom::Start(0))
                .map_err(|e| Error::io("reading a temporary file", e))?;
            Some(BufReader::new(f))
        }
        None => None,
    };
    Ok(reader.into_iter().flat_map(|r| r.lines()).map(|line| {
        let line = line.map_err(|e| Error::io("reading a temporary file", e))?;
        serde_json::from_str(&line)
            .map_err(|e| Error::query(format!("temporary file is corrupt: {e}")))
    }))
}

/// Filter and custom field names must exist in the catalogue or in the file.
fn check_fields<R: BufRead>(query: &Query, parser: &NessusReader<R>) -> Result<()> {
    let seen: std::collections::HashSet<&str> = parser.seen_field_names().collect();
    let known = |n: &str| KNOWN_FIELDS.contains(&n) || seen.contains(n);
    let candidates = || KNOWN_FIELDS.iter().copied().chain(seen.iter().copied());
    query.filter.check_fields(known, candidates())?;
    if let Some(f) = query
        .projection
        .fields()
        .and_then(|fields| fields.iter().find(|f| !known(f)))
    {
        return Err(Error::UnknownField {
            field: f.clone(),
            suggestion: closest(f, candidates()),
        });
    }
    Ok(())
}
