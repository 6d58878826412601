//! Exports: a whole (filtered, sorted, projected) result set cut into parts
//! that a client fetches one at a time, instead of one huge answer.
//!
//! - JSON-NL parts hold only vulnerability lines (the framing lines of a page
//!   would repeat in every part); CSV parts each start with the header row.
//! - A part holds at most [`EXPORT_PART_MAX_FINDINGS`] findings and at most
//!   [`EXPORT_PART_MAX_BYTES`] bytes. [`Store::export_plan`] renders every matching
//!   finding once to measure it and shrinks the part size until the largest part
//!   fits the byte cap (proportionally to the overshoot, at least one finding per
//!   step); a single finding larger than the cap is a part on its own.
//! - Parts are fixed windows of the sorted selection: part `k` (1-based) is
//!   findings `(k-1)*part_size .. k*part_size`, so a client can fetch them in any
//!   order and the plan stays valid as long as the store does (stores are immutable).
//! - SARIF and HTML are one document each (see the `report` module): their plan is
//!   one part, and the document is refused past its caps instead of being cut.

use serde::Serialize;

use super::Store;
use super::page::RecordReader;
use super::report::{Document, REPORT_MAX_FINDINGS};
use crate::catalogue::Projection;
use crate::codec::{self, RawRecord};
use crate::csv::{self, Cell};
use crate::error::{Error, Result};
use crate::query::Query;
use crate::record::{ATTRIBUTE_FIELDS, Finding};

/// Most findings in one export part.
pub const EXPORT_PART_MAX_FINDINGS: u32 = 500;
/// Most bytes in one export part (unless one finding alone is larger).
pub const EXPORT_PART_MAX_BYTES: usize = 4 * 1024 * 1024;

/// The body format of an export: parts (JSON-NL, CSV) or one document (SARIF, HTML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportFormat {
    /// One JSON vulnerability line per finding (the JSON-NL of a page, without framing).
    JsonLines,
    /// RFC 4180 CSV with a header row per part.
    Csv,
    /// A SARIF 2.1.0 log: one document, not parts (capped by
    /// [`crate::REPORT_MAX_FINDINGS`] and [`crate::REPORT_MAX_BYTES`]).
    Sarif,
    /// A self-contained HTML report: one document, not parts (capped by
    /// [`crate::REPORT_MAX_FINDINGS`] and [`crate::REPORT_MAX_BYTES`]).
    Html,
}

impl ExportFormat {
    /// Every format name [`ExportFormat::parse`] accepts.
    pub const NAMES: [&'static str; 4] = ["jsonl", "csv", "sarif", "html"];

    /// Parses `jsonl`, `csv`, `sarif` or `html` (case-insensitive).
    pub fn parse(name: &str) -> Result<ExportFormat> {
        match name.trim().to_ascii_lowercase().as_str() {
            "jsonl" => Ok(ExportFormat::JsonLines),
            "csv" => Ok(ExportFormat::Csv),
            "sarif" => Ok(ExportFormat::Sarif),
            "html" => Ok(ExportFormat::Html),
            other => Err(Error::query(format!(
                "unknown export format {other:?}: use {}",
                Self::NAMES.join(", ")
            ))),
        }
    }

    /// The name used in URIs (`jsonl`, `csv`, `sarif`, `html`).
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "jsonl",
            ExportFormat::Csv => "csv",
            ExportFormat::Sarif => "sarif",
            ExportFormat::Html => "html",
        }
    }

    /// Whether the format is one document (SARIF, HTML) rather than parts: its plan
    /// has exactly one part, capped by [`REPORT_MAX_FINDINGS`] and [`crate::REPORT_MAX_BYTES`].
    pub fn is_document(self) -> bool {
        self.document().is_some()
    }

    fn document(self) -> Option<Document> {
        match self {
            ExportFormat::Sarif => Some(Document::Sarif),
            ExportFormat::Html => Some(Document::Html),
            ExportFormat::JsonLines | ExportFormat::Csv => None,
        }
    }

    /// The MIME type of a part.
    pub fn mime_type(self) -> &'static str {
        match self {
            ExportFormat::JsonLines => "application/x-ndjson",
            ExportFormat::Csv => "text/csv",
            ExportFormat::Sarif => "application/sarif+json",
            ExportFormat::Html => "text/html",
        }
    }
}

/// How an export is cut into parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ExportPlan {
    /// Findings matching the query.
    pub findings: u64,
    /// Number of parts (0 when nothing matches).
    pub parts: u32,
    /// Findings per part (the last part may hold fewer).
    pub part_size: u32,
    /// Bytes of the largest part.
    pub largest_part_bytes: u64,
}

/// The largest part size `<= max` whose aligned windows of `sizes` (plus `header`
/// bytes each) fit `cap`; 1 when even single findings do not fit.
pub(crate) fn part_size_for(sizes: &[u64], header: u64, cap: u64, max: u32) -> (u32, u64) {
    let mut p = usize::try_from(max.max(1)).unwrap_or(1);
    loop {
        let worst = sizes
            .chunks(p)
            .map(|c| c.iter().sum::<u64>() + header)
            .max()
            .unwrap_or(0);
        if worst <= cap || p == 1 {
            return (u32::try_from(p).unwrap_or(1), worst);
        }
        let shrunk = u128::from(cap) * p as u128 / u128::from(worst.max(1));
        p = usize::try_from(shrunk).unwrap_or(1).clamp(1, p - 1);
    }
}

/// How many findings [`Store::export_plan_with`] measures between two progress calls.
const PROGRESS_EVERY: usize = 256;

impl Store {
    /// The columns of a CSV export: the projection's fields, or for `full` the
    /// standard attributes, every other field this store holds, and `cvss_score`.
    fn export_columns(&self, projection: &Projection) -> Vec<String> {
        if let Some(f) = projection.fields() {
            return f.to_vec();
        }
        let mut cols: Vec<String> = ATTRIBUTE_FIELDS.iter().map(|s| (*s).to_owned()).collect();
        for n in self.dict.names() {
            if !cols.iter().any(|c| **c == **n) {
                cols.push(n.to_string());
            }
        }
        if !cols.iter().any(|c| c == "cvss_score") {
            cols.push("cvss_score".to_owned());
        }
        cols
    }

    /// Decodes the findings at `rows` (row numbers) in that order, calling `f` on each.
    pub(super) fn each_finding(
        &self,
        rows: &[u32],
        mut f: impl FnMut(&Finding) -> Result<()>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut reader = RecordReader::open(&self.dir)?;
        let mut index = self.row_reader()?;
        let mut buf = Vec::new();
        for &i in rows {
            let row = index.get(self, i)?;
            reader.read(&row, &mut buf)?;
            let mut finding = codec::decode(RawRecord { bytes: &buf }, &self.dict);
            // As `findings()` does: the host's address and fields come from the host table.
            finding.host_ip = self.meta.hosts.get(row.host as usize).and_then(|h| h.ip);
            finding.host_fields = self.host_fields.get(row.host as usize).cloned();
            f(&finding)?;
        }
        Ok(())
    }

    /// Renders one finding of a parts format (documents are rendered whole).
    fn render(
        format: ExportFormat,
        projection: &Projection,
        columns: &[String],
        f: &Finding,
        out: &mut Vec<u8>,
    ) {
        match format {
            ExportFormat::JsonLines => {
                crate::jsonl::render_finding(out, f, projection);
                out.push(b'\n');
            }
            ExportFormat::Csv => csv::row(
                out,
                columns
                    .iter()
                    .map(|c| f.get(c).map_or(Cell::Empty, Cell::Value)),
            ),
            ExportFormat::Sarif | ExportFormat::Html => {}
        }
    }

    fn header(&self, format: ExportFormat, columns: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        if format == ExportFormat::Csv {
            csv::row(&mut out, columns.iter().map(|c| Cell::Header(c)));
        }
        out
    }

    /// How the export of `query` (its projection, filter and sort; the page is
    /// ignored) in `format` is cut into parts (see the module documentation).
    pub fn export_plan(&self, query: &Query, format: ExportFormat) -> Result<ExportPlan> {
        self.export_plan_with(query, format, &mut |_, _| {})
    }

    /// [`Store::export_plan`], calling `progress(measured, total)` as findings are
    /// measured (at the start, every 256 findings, and at the end), so a caller can
    /// report a long plan.
    pub fn export_plan_with(
        &self,
        query: &Query,
        format: ExportFormat,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<ExportPlan> {
        if let Some(doc) = format.document() {
            // One document: rendered once to check both caps and measure it.
            progress(0, 0);
            let (body, findings) = self.report(query, doc)?;
            progress(findings, findings);
            return Ok(ExportPlan {
                findings,
                parts: 1,
                part_size: REPORT_MAX_FINDINGS,
                largest_part_bytes: body.len() as u64,
            });
        }
        self.check_fields(query)?;
        let matched = self.select(&query.filter, &query.sort)?;
        let columns = self.export_columns(&query.projection);
        let header = self.header(format, &columns).len() as u64;
        let total = matched.len() as u64;
        let mut sizes = Vec::with_capacity(matched.len());
        let mut scratch = Vec::new();
        progress(0, total);
        self.each_finding(&matched, |f| {
            scratch.clear();
            Self::render(format, &query.projection, &columns, f, &mut scratch);
            sizes.push(scratch.len() as u64);
            if sizes.len() % PROGRESS_EVERY == 0 {
                progress(sizes.len() as u64, total);
            }
            Ok(())
        })?;
        progress(total, total);
        let (part_size, largest) = part_size_for(
            &sizes,
            header,
            EXPORT_PART_MAX_BYTES as u64,
            EXPORT_PART_MAX_FINDINGS,
        );
        let findings = matched.len() as u64;
        let parts = findings.div_ceil(u64::from(part_size));
        Ok(ExportPlan {
            findings,
            parts: u32::try_from(parts).unwrap_or(u32::MAX),
            part_size,
            largest_part_bytes: if findings == 0 { 0 } else { largest },
        })
    }

    /// Part `part` (1-based) of the export of `query` in `format`, cut at
    /// `part_size` findings per part (the plan's; larger values are clamped to
    /// [`EXPORT_PART_MAX_FINDINGS`]).
    pub fn export_part(
        &self,
        query: &Query,
        format: ExportFormat,
        part_size: u32,
        part: u32,
    ) -> Result<Vec<u8>> {
        if let Some(doc) = format.document() {
            if part != 1 {
                return Err(Error::query(format!(
                    "export part {part} does not exist: a {} export is one document, part 1",
                    format.name()
                )));
            }
            return Ok(self.report(query, doc)?.0);
        }
        self.check_fields(query)?;
        let size = part_size.clamp(1, EXPORT_PART_MAX_FINDINGS) as usize;
        let matched = self.select(&query.filter, &query.sort)?;
        let parts = matched.len().div_ceil(size);
        if part == 0 || part as usize > parts {
            return Err(Error::query(format!(
                "export part {part} does not exist: this export has {parts} part(s) of {size} \
                 findings ({} findings); ask for part 1-{parts}",
                matched.len()
            )));
        }
        let start = (part as usize - 1) * size;
        let window = &matched[start..(start + size).min(matched.len())];
        let columns = self.export_columns(&query.projection);
        let mut out = self.header(format, &columns);
        self.each_finding(window, |f| {
            Self::render(format, &query.projection, &columns, f, &mut out);
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_size_shrinks_until_every_part_fits() {
        // (sizes, header, cap, max) -> part size; checked against a naive search.
        let cases: [(Vec<u64>, u64, u64, u32); 5] = [
            (vec![10; 1000], 0, 10_000, 500),
            (vec![10; 1000], 5, 1_000, 500),
            (vec![1, 1, 1, 100, 1, 1], 0, 102, 6),
            (vec![5000, 1, 1], 10, 100, 3),
            (vec![], 10, 100, 500),
        ];
        for (sizes, header, cap, max) in cases {
            let (got, worst) = part_size_for(&sizes, header, cap, max);
            let fits = |p: usize| {
                sizes
                    .chunks(p)
                    .all(|c| c.iter().sum::<u64>() + header <= cap)
            };
            let naive = (1..=max as usize).rev().find(|&p| fits(p)).unwrap_or(1);
            assert!(fits(got as usize) || got == 1, "{sizes:?}: {got}");
            assert!(got as usize <= naive.max(1), "{sizes:?}: {got} > {naive}");
            assert!(worst <= cap || got == 1, "{sizes:?}");
        }
    }
}
