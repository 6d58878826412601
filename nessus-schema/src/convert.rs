//! One-call conversion for the command line.
//!
//! The schema line states the total before any record and the default order is by
//! severity, so records cannot be written as they are parsed. Instead of a full findings
//! store, `convert` evaluates the filter on each parsed finding and renders the matching
//! ones straight to JSON-NL lines:
//!
//! - in the default order, lines go through [`RunSorter`], an external sort in bounded
//!   memory (sorted runs per host, merged at the end), with the values shared by every
//!   finding of a plugin rendered once ([`SharedValues`]);
//! - with a custom sort, lines are spilled to one anonymous file per severity and one
//!   64-byte sort row per matching finding is kept in memory and sorted at the end.
//!
//! Scratch bytes stay in memory up to 1 MiB before moving to a temporary file.
//!
//! The `host` shorthand's meaning depends on every host of the scan (a value that names
//! some host is exact, see [`Filter`](crate::Filter)), which is only known at the end.
//! While parsing, a finding's host is compared with itself alone, which keeps a superset
//! of the answer; at the end the per-host conditions are resolved against every host and
//! the lines of the hosts they exclude are dropped (whole runs, or rows of the custom
//! order) before the total is written.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::catalogue::{KNOWN_FIELDS, closest};
use crate::error::{Error, Result};
use crate::jsonl::render_finding;
use crate::parser::NessusReader;
use crate::query::{Query, SortKey};
use crate::record::{ComplianceResult, Finding, Host, Record};
use crate::runs::{RunLimits, RunSorter};
use crate::shared_values::SharedValues;
use crate::spill::{Spill, SpillReader};
use crate::store::{
    Census, ChunkedRows, Frame, IngestOptions, PageInfo, Row, Tables, default_cmp, fnv, read_at,
    row_for, serve,
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

fn read_err(e: std::io::Error) -> Error {
    Error::io("reading a temporary file", e)
}

/// [`convert`] with parser limits (`options.file_size_bytes` is unused here).
pub fn convert_with<R: BufRead, W: Write>(
    reader: R,
    writer: W,
    query: &Query,
    options: &IngestOptions,
) -> Result<PageInfo> {
    convert_limited(reader, writer, query, options, RunLimits::default())
}

/// Where the matching findings' lines go while the file is parsed.
enum Lines {
    /// Default order. One set of shared values per part of the document (lines refer to
    /// their own part's).
    Sorted {
        runs: Box<RunSorter>,
        shared: Vec<SharedValues>,
    },
    /// Custom sort: one spill file per severity, one sort row per finding.
    Custom {
        spills: Spills,
        rows: ChunkedRows<Row>,
    },
}

impl Lines {
    fn len(&self) -> u64 {
        match self {
            Lines::Sorted { runs, .. } => runs.len(),
            Lines::Custom { rows, .. } => u64::from(rows.len()),
        }
    }
}

/// The default order's severity key: missing (or the 255 marker) sorts lowest.
fn severity_key(f: &Finding) -> i16 {
    match f.severity {
        Some(s) if s != u8::MAX => i16::from(s),
        _ => -1,
    }
}

pub(crate) fn convert_limited<R: BufRead, W: Write>(
    reader: R,
    writer: W,
    query: &Query,
    options: &IngestOptions,
    limits: RunLimits,
) -> Result<PageInfo> {
    let mut parser = new_parser(reader, query, options);
    let mut collected = Collected::new(query, limits);
    collected.collect(&mut parser, None)?;
    check_fields(query, parser.seen_field_names().collect())?;
    collected.serve(writer)
}

/// A parser that copies out only what `query` needs.
pub(crate) fn new_parser<R: BufRead>(
    reader: R,
    query: &Query,
    options: &IngestOptions,
) -> NessusReader<R> {
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
    parser
}

/// Whether `query` uses the default order (the external sort, which can take over the
/// runs of a second half of the document).
pub(crate) fn is_default_order(query: &Query) -> bool {
    query.sort.is_empty() || query.sort == SortKey::default_order()
}

/// How [`Collected::collect`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The parser has no more records.
    End,
    /// A continuation was told to stop.
    Cancelled,
    /// A continuation met a second `Report` (its scan metadata would change the header):
    /// the document cannot be split.
    Irregular,
}

/// What the parse of a document (or of part of it) keeps for the response.
pub(crate) struct Collected<'q> {
    query: &'q Query,
    summary: SummaryBuilder,
    tables: Tables,
    lines: Lines,
    /// Host and compliance lines (on request): one pair per part, in document order.
    extras: Vec<(Spill, Spill)>,
    line: Vec<u8>,
    /// What explains an empty answer, counted while parsing (only for a filter: without
    /// one, an empty answer means an empty scan).
    census: Option<Census>,
}

impl<'q> Collected<'q> {
    pub(crate) fn new(query: &'q Query, limits: RunLimits) -> Collected<'q> {
        let extras = if query.include_hosts || query.include_compliance {
            vec![(
                Spill::with_limit(limits.memory_bytes),
                Spill::with_limit(limits.memory_bytes),
            )]
        } else {
            Vec::new()
        };
        let lines = if is_default_order(query) {
            Lines::Sorted {
                runs: Box::new(RunSorter::new(limits)),
                shared: vec![SharedValues::default()],
            }
        } else {
            Lines::Custom {
                spills: Spills::new(),
                rows: ChunkedRows::default(),
            }
        };
        Collected {
            query,
            summary: SummaryBuilder::default(),
            tables: Tables::default(),
            lines,
            extras,
            line: Vec::with_capacity(64 * 1024),
            census: if query.filter.as_json().is_empty() {
                None
            } else {
                // The filter parsed once already, so its conditions parse alone.
                Census::for_filter(&query.filter).ok()
            },
        }
    }

    pub(crate) fn query(&self) -> &'q Query {
        self.query
    }

    /// Renders the parser's records until it has no more. `continuation` marks the
    /// second half of a split document (it may be cancelled, and must not see a `Report`).
    pub(crate) fn collect<R: BufRead>(
        &mut self,
        parser: &mut NessusReader<R>,
        continuation: Option<&AtomicBool>,
    ) -> Result<Outcome> {
        let query = self.query;
        let line = &mut self.line;
        while let Some(record) = parser.next_record()? {
            if let Some(cancel) = continuation {
                if cancel.load(Ordering::Relaxed) {
                    return Ok(Outcome::Cancelled);
                }
                if matches!(record, Record::Scan(_)) {
                    return Ok(Outcome::Irregular);
                }
            }
            self.summary.add(&record);
            if let Some(census) = &mut self.census {
                match &record {
                    Record::Finding(f) => census.finding(f),
                    Record::Host(h) => census.host(&h.name, h.ip),
                    _ => {}
                }
            }
            match record {
                Record::Finding(f) => {
                    // Every host with findings is in the host table, as in the store: the
                    // `host` rules look at all of them.
                    self.tables.host(&f.host);
                    // Per-host conditions of a finding whose host is not described yet
                    // are left to `serve`, which knows every host.
                    if !query.filter.matches_deferring_hosts(&f) {
                        continue;
                    }
                    if self.lines.len() == u64::from(u32::MAX) {
                        return Err(Error::query("more than 4 billion findings"));
                    }
                    match &mut self.lines {
                        Lines::Sorted { runs, shared } => {
                            // Rendered straight into the sort's buffer.
                            let render = |buf: &mut Vec<u8>| match query.projection.fields() {
                                Some(fields) => {
                                    shared[0].render(buf, &f, &query.projection, fields)
                                }
                                None => {
                                    let start = buf.len();
                                    render_finding(buf, &f, &query.projection);
                                    (buf.len() - start) as u64
                                }
                            };
                            runs.push_rendered(
                                self.tables.host(&f.host),
                                severity_key(&f),
                                f.port.unwrap_or(u32::MAX),
                                f.plugin_id.unwrap_or(u32::MAX),
                                render,
                            )
                            .map_err(spill_err)?;
                        }
                        Lines::Custom { spills, rows } => {
                            line.clear();
                            render_finding(line, &f, &query.projection);
                            let offset = spills.write(f.severity, line)?;
                            rows.push(row_for(&f, &mut self.tables, offset, line.len() as u32));
                        }
                    }
                }
                Record::Host(h) => {
                    self.tables.describe_host(&h);
                    if !query.include_hosts {
                        continue;
                    }
                    if let Some((hosts, _)) = self.extras.first_mut() {
                        serde_json::to_writer(&mut *hosts, &h).map_err(|e| spill_err(e.into()))?;
                        hosts.write_all(b"\n").map_err(spill_err)?;
                    }
                }
                Record::Compliance(c) if query.include_compliance => {
                    if let Some((_, comp)) = self.extras.first_mut() {
                        serde_json::to_writer(&mut *comp, &c).map_err(|e| spill_err(e.into()))?;
                        comp.write_all(b"\n").map_err(spill_err)?;
                    }
                }
                _ => {}
            }
        }
        Ok(Outcome::End)
    }

    /// Takes over what `later` collected from the rest of the same document, as if this
    /// one had gone on parsing it. Default order only.
    pub(crate) fn append(&mut self, later: Collected<'_>) -> Result<()> {
        let (
            Lines::Sorted { runs, shared },
            Lines::Sorted {
                runs: later_runs,
                shared: later_shared,
            },
        ) = (&mut self.lines, later.lines)
        else {
            return Err(Error::query("only the default order can be split"));
        };
        // Host ids in first-appearance order, as one pass would have numbered them.
        let host_map: Vec<u32> = (0..later.tables.host_names().count())
            .map(|id| self.tables.adopt_host(&later.tables, id))
            .collect();
        runs.append(*later_runs, &host_map).map_err(spill_err)?;
        shared.extend(later_shared);
        self.summary.append(later.summary);
        self.extras.extend(later.extras);
        if let (Some(mine), Some(theirs)) = (&mut self.census, later.census) {
            mine.append(theirs);
        }
        Ok(())
    }

    /// Writes the response.
    pub(crate) fn serve<W: Write>(mut self, writer: W) -> Result<PageInfo> {
        let query = self.query;
        // The `host` rules depend on every host of the scan: now that all are known, drop
        // the lines of hosts the resolved per-host conditions exclude (during the parse a
        // host was only compared with itself, which keeps a superset).
        let host_mask = self.tables.host_mask(&query.filter);
        let keep = |host: u32| {
            host_mask
                .as_ref()
                .is_none_or(|m| m.get(host as usize).copied().unwrap_or(true))
        };
        if let Lines::Sorted { runs, .. } = &mut self.lines
            && host_mask.is_some()
        {
            runs.retain_hosts(keep).map_err(spill_err)?;
        }
        // The scan header does not depend on the file size.
        let scan = self.summary.finish(0).scan;
        let rank = self.tables.host_ranks();

        let (filter, sort) = query.cursor_identity();
        let fp = fnv(&[b"convert", filter.as_bytes(), sort.as_bytes()]);
        let mut hosts_files = Vec::new();
        let mut comp_files = Vec::new();
        for (h, c) in self.extras {
            hosts_files.push(h.finish().map_err(spill_err)?);
            comp_files.push(c.finish().map_err(spill_err)?);
        }
        // A custom sort serves rows through `order`: the excluded hosts' rows leave it.
        let custom_order: Option<Vec<u32>> = match &self.lines {
            Lines::Custom { rows, .. } => Some(
                (0..rows.len())
                    .filter(|&i| keep(rows.get(i).host_id()))
                    .collect(),
            ),
            Lines::Sorted { .. } => None,
        };
        let total = match &custom_order {
            Some(order) => order.len() as u64,
            None => self.lines.len(),
        };
        let census = self.census;
        let explain = || Ok(census.as_ref().map(|c| c.text(total)).unwrap_or_default());
        let frame = Frame {
            query,
            total,
            fp,
            scan: &scan,
            explain: Some(&explain),
        };
        let hosts = |w: &mut _, until| {
            let (mut written, mut of) = (0, 0);
            for h in read_back::<Host>(hosts_files)? {
                let h = h?;
                of += 1;
                if written + 1 == of && crate::jsonl::JsonlWriter::host_within(w, &h, until)? {
                    written += 1;
                }
            }
            Ok((written, of))
        };
        let compliance = |w: &mut _, until| {
            let (mut written, mut of) = (0, 0);
            for c in read_back::<ComplianceResult>(comp_files)? {
                let c = c?;
                of += 1;
                if written + 1 == of && crate::jsonl::JsonlWriter::compliance_within(w, &c, until)?
                {
                    written += 1;
                }
            }
            Ok((written, of))
        };
        match self.lines {
            Lines::Sorted { runs, shared } => {
                let mut sorted = runs.finish(&rank).map_err(spill_err)?;
                serve(
                    frame,
                    writer,
                    hosts,
                    |w, pos, budget| {
                        let line = sorted.line(pos).map_err(read_err)?;
                        let values = shared
                            .get(line.part)
                            .ok_or_else(|| read_err(std::io::Error::other("unknown part")))?;
                        if w.raw_with(line.expanded, budget, |out| values.expand(line.bytes, out))?
                        {
                            return Ok(true);
                        }
                        if !w.cutting() {
                            return Ok(false);
                        }
                        // To be cut, the line is needed whole.
                        let mut whole = Vec::new();
                        values.expand(line.bytes, &mut whole).map_err(read_err)?;
                        w.raw_line(&whole, budget)
                    },
                    compliance,
                )
            }
            Lines::Custom { spills, rows } => {
                let t = self.tables.sort_tables(&rank);
                let mut order = custom_order.unwrap_or_default();
                // Ties fall back to the default order, like the store.
                order.sort_by(|&a, &b| {
                    let (ra, rb) = (rows.get(a), rows.get(b));
                    t.compare(ra, rb, &query.sort)
                        .then_with(|| default_cmp(ra, rb, &rank))
                });
                let mut windows = spills.finish()?;
                serve(
                    frame,
                    writer,
                    hosts,
                    |w, pos, budget| {
                        let row = rows.get(order[pos as usize]);
                        let line = windows.line(row.offset, row.len).map_err(read_err)?;
                        w.raw_line(line, budget)
                    },
                    compliance,
                )
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
    fn new() -> Spills {
        Spills {
            files: (0..BUCKETS).map(|_| None).collect(),
        }
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

/// Streams back the JSON lines of spills, one after the other.
fn read_back<T: serde::de::DeserializeOwned>(
    spills: Vec<SpillReader>,
) -> Result<impl Iterator<Item = Result<T>>> {
    let readers = spills
        .into_iter()
        .map(SpillReader::into_reader)
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read_err)?;
    Ok(readers.into_iter().flat_map(|r| r.lines()).map(|line| {
        let line = line.map_err(read_err)?;
        serde_json::from_str(&line)
            .map_err(|e| Error::query(format!("temporary file is corrupt: {e}")))
    }))
}

/// Filter and custom field names must exist in the catalogue or in the file (`seen`: the
/// parser's `seen_field_names`).
pub(crate) fn check_fields(query: &Query, seen: std::collections::HashSet<&str>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::QueryParams;

    fn corpus(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../corpus/nessus")
            .join(name)
    }

    /// `"web"` names a host, so `web1`'s lines (met first, and kept while only `web1` was
    /// known) are dropped at the end: from the buffer, from runs spilled to a file, and
    /// from a custom order.
    #[test]
    fn lines_of_hosts_the_host_rules_exclude_are_dropped() {
        let item = |port: u32, plugin: u32| {
            format!(
                r#"<ReportItem port="{port}" protocol="tcp" severity="2" pluginID="{plugin}" pluginName="p{plugin}" pluginFamily="f"><description>{}</description></ReportItem>"#,
                "x".repeat(300)
            )
        };
        let host = |name: &str, ip: &str, items: &[(u32, u32)]| {
            let items: String = items.iter().map(|(p, id)| item(*p, *id)).collect();
            format!(
                r#"<ReportHost name="{name}"><HostProperties><tag name="host-ip">{ip}</tag></HostProperties>{items}</ReportHost>"#
            )
        };
        let xml = format!(
            r#"<NessusClientData_v2><Report name="t">{}{}{}</Report></NessusClientData_v2>"#,
            host("web1", "10.0.0.11", &[(80, 1), (443, 2), (8080, 3)]),
            host("web", "10.0.0.10", &[(80, 4), (22, 5)]),
            host("web2", "10.0.0.12", &[(25, 6)]),
        );
        let tiny = RunLimits {
            run_bytes: 700,
            memory_bytes: 0,
            read_bytes: 1,
        };
        for (filters, want) in [
            (r#"{"host": "web"}"#, vec![4, 5]),
            (r#"{"host": "10.0.0.10"}"#, vec![4, 5]),
            (r#"{"host": "we"}"#, vec![1, 2, 3, 4, 5, 6]),
            (r#"{"host": "10.0.0.1"}"#, vec![]),
        ] {
            for sort in [None, Some("port:desc".to_owned())] {
                for limits in [tiny, RunLimits::default()] {
                    let q = Query::from_params(&QueryParams {
                        filters: Some(serde_json::from_str(filters).unwrap()),
                        sort: sort.clone(),
                        page: Some(0),
                        ..QueryParams::default()
                    })
                    .unwrap();
                    let mut out = Vec::new();
                    let info = convert_limited(
                        xml.as_bytes(),
                        &mut out,
                        &q,
                        &IngestOptions::default(),
                        limits,
                    )
                    .unwrap();
                    let text = String::from_utf8(out).unwrap();
                    let mut got: Vec<u64> = text
                        .lines()
                        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                        .filter(|l| l["type"] == "vulnerability")
                        .map(|l| l["plugin_id"].as_u64().unwrap())
                        .collect();
                    got.sort_unstable();
                    assert_eq!(got, want, "{filters} {sort:?} {limits:?}");
                    assert_eq!(info.total, want.len() as u64, "{filters}");
                }
            }
        }
    }

    /// Tiny run, memory and read limits force many runs per host, multi-run merges, a
    /// file-backed spill and refills in the middle of lines; tiny runs in a memory spill
    /// force multi-run merges read in place: the output must not change.
    #[test]
    fn tiny_sort_buffers_give_the_same_output() {
        let tiny = RunLimits {
            run_bytes: 700,
            memory_bytes: 0,
            read_bytes: 1,
        };
        let tiny_in_memory = RunLimits {
            run_bytes: 700,
            memory_bytes: 1 << 30,
            read_bytes: 1,
        };
        let queries = [
            QueryParams {
                page: Some(0),
                include_hosts: true,
                include_compliance: true,
                ..QueryParams::default()
            },
            QueryParams {
                schema_profile: Some("full".into()),
                page: Some(3),
                page_size: Some(10),
                ..QueryParams::default()
            },
            QueryParams {
                page: Some(0),
                byte_budget: Some(30_000),
                ..QueryParams::default()
            },
        ];
        for file in [
            "auvap__ms2_scan.nessus",
            "hdf-libs__compliance.nessus",
            "defectdojo__nessus_many_vuln.xml",
        ] {
            for params in &queries {
                let q = Query::from_params(params).unwrap();
                let run = |limits| {
                    let input = std::io::BufReader::new(File::open(corpus(file)).unwrap());
                    let mut out = Vec::new();
                    convert_limited(input, &mut out, &q, &IngestOptions::default(), limits)
                        .unwrap();
                    String::from_utf8(out).unwrap()
                };
                let (small, normal) = (run(tiny), run(RunLimits::default()));
                assert!(normal.lines().count() > 2, "{file}");
                assert_eq!(small, normal, "{file}: {params:?}");
                assert_eq!(run(tiny_in_memory), normal, "{file}: {params:?}");
            }
        }
    }
}
