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
    ChunkedRows, Frame, IngestOptions, PageInfo, Tables, default_cmp, fnv, read_at, row_for, serve,
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
    let mut lines = BufWriter::with_capacity(1 << 20, temp()?);
    let mut extras = if query.include_hosts || query.include_compliance {
        Some((BufWriter::new(temp()?), BufWriter::new(temp()?)))
    } else {
        None
    };
    let mut parser = NessusReader::with_limits(reader, options.limits);
    let mut summary = SummaryBuilder::default();
    let mut tables = Tables::default();
    let mut rows = ChunkedRows::default();
    let mut line = Vec::with_capacity(64 * 1024);
    let mut offset = 0u64;
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
                lines.write_all(&line).map_err(spill_err)?;
                rows.push(row_for(&f, &mut tables, offset, line.len() as u32));
                offset += line.len() as u64;
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
    if query.sort.is_empty() || query.sort == SortKey::default_order() {
        order.sort_by(|&a, &b| default_cmp(rows.get(a), rows.get(b), &rank));
    } else {
        let t = tables.sort_tables(&rank);
        // Ties fall back to the default order, like the store.
        order.sort_by(|&a, &b| {
            let (ra, rb) = (rows.get(a), rows.get(b));
            t.compare(ra, rb, &query.sort)
                .then_with(|| default_cmp(ra, rb, &rank))
        });
    }

    let mut lines = lines.into_inner().map_err(|e| spill_err(e.into_error()))?;
    let mut buf = Vec::new();
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
            let row = rows.get(order[pos as usize]);
            buf.resize(row.len as usize, 0);
            read_at(&mut lines, row.offset, &mut buf)
                .map_err(|e| Error::io("reading a temporary file", e))?;
            w.raw_line(&buf, budget)
        },
        |w| {
            for c in read_back::<ComplianceResult>(comp_file)? {
                w.compliance(&c?)?;
            }
            Ok(())
        },
    )
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
