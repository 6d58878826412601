//! JSON-NL output with the predecessor's framing (seed-spec §9.5).
//!
//! Lines are `schema`, `scan_metadata`, optional `host` lines, `vulnerability` lines,
//! optional `compliance` lines, then exactly one closing line: `pagination` (paged and
//! cursor requests), `truncated` (a `page=0` request cut by its byte budget) or `end` (a
//! `page=0` request not cut). Lines are separated by `\n` with no trailing
//! newline, and written with Python's default separators (`", "`, `": "`) and key order so
//! that output is byte-compatible with what existing agents parse. Non-ASCII text is
//! written as UTF-8 rather than `\uXXXX` escapes.

use std::io::Write;

use serde_json::{Map, Value as Json};

use crate::catalogue::{HOST_FIELDS, Projection, is_host_field};
use crate::codec::{Dictionary, RawRecord};
use crate::cut::cut_to_fit;
use crate::error::{Error, Result};
use crate::record::{ATTRIBUTE_FIELDS, ComplianceResult, Finding, Host, HostFields, ScanMetadata};
use crate::swar::{HI, LO, first_match};
use crate::value::{ListRef, ValueRef};

/// Writes JSON-NL lines to `W`, counting the bytes written.
#[derive(Debug)]
pub struct JsonlWriter<W: Write> {
    out: W,
    line: Vec<u8>,
    first: bool,
    bytes: u64,
    /// While set, a record line that does not fit is cut to fit (see [`cut_to_fit`]):
    /// the first record of an answer, which must be written for paging to progress.
    cut: bool,
    /// Fields cut so far (names, in line order).
    cut_fields: Vec<String>,
}

/// Values of the `pagination` line (paged and cursor answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pagination {
    /// 1-based page.
    pub page: u64,
    /// Clamped page size.
    pub page_size: u64,
    /// Total pages (at least 1).
    pub total_pages: u64,
    /// Cursor that resumes right after the last returned record, if anything follows it.
    pub next_cursor: Option<String>,
    /// Vulnerability lines in this answer.
    pub returned: u64,
    /// Whether the byte budget cut this answer.
    pub truncated: bool,
    /// One sentence: how to get the rest, or that this is the end.
    pub next: String,
    /// Notices (omitted from the line when empty).
    pub notices: Vec<String>,
}

/// Values of the `truncated` line written when `page=0` hits its byte budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// Vulnerability lines written.
    pub returned: u64,
    /// Total matching findings.
    pub total: u64,
    /// The byte budget that was applied (bytes of the whole answer).
    pub byte_budget: u64,
    /// Cursor to continue after the last written record.
    pub next_cursor: Option<String>,
    /// One sentence: how to get the rest.
    pub next: String,
    /// Notices (omitted from the line when empty).
    pub notices: Vec<String>,
}

/// Values of the `end` line that closes a `page=0` answer the budget did not cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct End {
    /// Vulnerability lines written.
    pub returned: u64,
    /// Total matching findings.
    pub total: u64,
    /// One sentence: that this is everything.
    pub next: String,
    /// Notices (omitted from the line when empty).
    pub notices: Vec<String>,
}

/// The one line that closes every results answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Closing {
    Pagination(Pagination),
    Truncated(Truncation),
    End(End),
}

impl Closing {
    /// Renders the line (without separator) into `l`.
    pub(crate) fn render(&self, l: &mut Vec<u8>) {
        match self {
            Closing::Pagination(p) => {
                let has_next = p.page < p.total_pages;
                l.extend_from_slice(b"{\"type\": \"pagination\", \"page\": ");
                int(l, p.page as i64);
                key(l, "page_size");
                int(l, p.page_size as i64);
                key(l, "total_pages");
                int(l, p.total_pages as i64);
                key(l, "has_next");
                l.extend_from_slice(if has_next { b"true" } else { b"false" });
                key(l, "next_page");
                if has_next {
                    int(l, p.page as i64 + 1);
                } else {
                    l.extend_from_slice(b"null");
                }
                key(l, "next_cursor");
                opt_str(l, p.next_cursor.as_deref());
                key(l, "returned");
                int(l, p.returned as i64);
                tail(l, p.truncated, &p.next, &p.notices);
            }
            Closing::Truncated(t) => {
                l.extend_from_slice(
                    b"{\"type\": \"truncated\", \"reason\": \"byte_budget\", \"byte_budget\": ",
                );
                int(l, t.byte_budget as i64);
                key(l, "returned");
                int(l, t.returned as i64);
                key(l, "total_vulnerabilities");
                int(l, t.total as i64);
                key(l, "next_cursor");
                opt_str(l, t.next_cursor.as_deref());
                tail(l, true, &t.next, &t.notices);
            }
            Closing::End(e) => {
                l.extend_from_slice(b"{\"type\": \"end\", \"returned\": ");
                int(l, e.returned as i64);
                key(l, "total_vulnerabilities");
                int(l, e.total as i64);
                tail(l, false, &e.next, &e.notices);
            }
        }
    }

    /// Bytes of the rendered line.
    pub(crate) fn len(&self) -> u64 {
        let mut l = Vec::new();
        self.render(&mut l);
        l.len() as u64
    }
}

/// `truncated`, `next`, `notices` (omitted when empty) and the closing brace.
fn tail(l: &mut Vec<u8>, truncated: bool, next: &str, notices: &[String]) {
    key(l, "truncated");
    l.extend_from_slice(if truncated { b"true" } else { b"false" });
    key(l, "next");
    str_lit(l, next);
    if !notices.is_empty() {
        key(l, "notices");
        str_array(l, notices.iter().map(String::as_str));
    }
    l.push(b'}');
}

impl<W: Write> JsonlWriter<W> {
    /// Wraps `out` (wrap files in a `BufWriter`).
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            line: Vec::with_capacity(64 * 1024),
            first: true,
            bytes: 0,
            cut: false,
            cut_fields: Vec::new(),
        }
    }

    /// Whether a record that does not fit its budget is cut to fit instead of refused.
    pub(crate) fn set_cut(&mut self, cut: bool) {
        self.cut = cut;
    }

    /// Whether records are cut to fit (see [`JsonlWriter::set_cut`]).
    pub(crate) fn cutting(&self) -> bool {
        self.cut
    }

    /// Names of the fields cut so far, emptied.
    pub(crate) fn take_cut_fields(&mut self) -> Vec<String> {
        std::mem::take(&mut self.cut_fields)
    }

    /// Writes `line`, which is over `budget`, cut to fit it (or as far as cutting goes).
    fn write_cut(&mut self, line: &[u8], budget: u64) -> Result<bool> {
        let room = budget.saturating_sub(u64::from(!self.first));
        let (cut, fields) = cut_to_fit(line, usize::try_from(room).unwrap_or(usize::MAX))
            .unwrap_or_else(|| (line.to_vec(), Vec::new()));
        self.cut_fields.extend(fields);
        self.write_line(&cut)?;
        Ok(true)
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Flushes and returns the inner writer.
    pub fn into_inner(mut self) -> Result<W> {
        self.out
            .flush()
            .map_err(|e| Error::io("flushing the output", e))?;
        Ok(self.out)
    }

    fn emit(&mut self) -> Result<()> {
        let line = std::mem::take(&mut self.line);
        let out = self.write_line(&line);
        self.line = line;
        self.line.clear();
        out
    }

    fn write_line(&mut self, line: &[u8]) -> Result<()> {
        self.separate()?;
        self.out
            .write_all(line)
            .map_err(|e| Error::io("writing the output", e))?;
        self.bytes += line.len() as u64;
        Ok(())
    }

    /// Lines are separated, not terminated (the predecessor's framing): a newline goes
    /// before every line but the first.
    fn separate(&mut self) -> Result<()> {
        if !self.first {
            self.out
                .write_all(b"\n")
                .map_err(|e| Error::io("writing the output", e))?;
            self.bytes += 1;
        }
        self.first = false;
        Ok(())
    }

    /// The `schema` line.
    pub fn schema(
        &mut self,
        projection: &Projection,
        filters: &Map<String, Json>,
        total: u64,
        total_pages: u64,
    ) -> Result<()> {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"type\": \"schema\", \"profile\": ");
        str_lit(l, projection.profile_name());
        l.extend_from_slice(b", \"fields\": ");
        match projection.fields() {
            Some(fields) => str_array(l, fields.iter().map(String::as_str)),
            None => l.extend_from_slice(b"\"all\""),
        }
        l.extend_from_slice(b", \"filters_applied\": ");
        json_obj(l, filters);
        l.extend_from_slice(b", \"total_vulnerabilities\": ");
        int(l, total as i64);
        l.extend_from_slice(b", \"total_pages\": ");
        int(l, total_pages as i64);
        l.push(b'}');
        self.emit()
    }

    /// The `scan_metadata` line: `scan_name` (the predecessor's only key, `"Unknown"` when
    /// absent), then `policy_name`, `scan_start`, `scan_end` when known.
    pub fn scan_metadata(&mut self, m: &ScanMetadata) -> Result<()> {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"type\": \"scan_metadata\", \"scan_name\": ");
        str_lit(l, m.report_name.as_deref().unwrap_or("Unknown"));
        for (k, v) in [
            ("policy_name", &m.policy_name),
            ("scan_start", &m.scan_start),
            ("scan_end", &m.scan_end),
        ] {
            if let Some(v) = v {
                key(l, k);
                str_lit(l, v);
            }
        }
        l.push(b'}');
        self.emit()
    }

    /// A `vulnerability` line: `type`, then the projected fields in order (fields absent
    /// from the finding are omitted; a present null is kept). `full` writes the standard
    /// attributes, every child in document order, then the computed `cvss_score`.
    pub fn finding(&mut self, f: &Finding, projection: &Projection) -> Result<()> {
        self.render_finding(f, projection);
        self.emit()
    }

    /// Writes a stored record without decoding it into a [`Finding`] (the store's hot
    /// path). With a budget, writes only if the line fits; returns whether it was written.
    pub(crate) fn raw_finding(
        &mut self,
        raw: RawRecord<'_>,
        dict: &Dictionary,
        projection: &Projection,
        host: HostLine<'_>,
        budget: Option<u64>,
    ) -> Result<bool> {
        let entries: Vec<(u16, ValueRef<'_>)> = raw.entries().collect();
        let find = |id: Option<u16>| {
            id.and_then(|id| entries.iter().find(|(k, _)| *k == id).map(|(_, v)| *v))
        };
        let cvss = || {
            find(dict.id("cvss3_base_score"))
                .and_then(|v| v.as_f64())
                .or_else(|| find(dict.id("cvss_base_score")).and_then(|v| v.as_f64()))
        };
        let l = &mut self.line;
        l.extend_from_slice(b"{\"type\": \"vulnerability\"");
        match projection.fields() {
            Some(fields) => {
                for name in fields {
                    if is_host_field(name) {
                        host.write(l, name, projection);
                        continue;
                    }
                    let v = match find(dict.id(name)) {
                        Some(v) => Some(v),
                        None if name == "cvss_score" => cvss().map(ValueRef::Float),
                        None => None,
                    };
                    if let Some(v) = v {
                        key(l, name);
                        value(l, v);
                    }
                }
            }
            None => {
                for (id, v) in &entries {
                    let name = dict.name(*id).map_or("unknown_field", |n| &**n);
                    key(l, name);
                    value(l, *v);
                }
                if find(dict.id("cvss_score")).is_none()
                    && let Some(s) = cvss()
                {
                    key(l, "cvss_score");
                    float(l, s);
                }
                host.write_known(l, projection, |n| find(dict.id(n)).is_some());
            }
        }
        l.push(b'}');
        if let Some(budget) = budget {
            let need = self.line.len() as u64 + u64::from(!self.first);
            if need > budget {
                let line = std::mem::take(&mut self.line);
                let written = if self.cut {
                    self.write_cut(&line, budget)
                } else {
                    Ok(false)
                };
                self.line = line;
                self.line.clear();
                return written;
            }
        }
        self.emit()?;
        Ok(true)
    }

    /// Writes an already rendered line if it fits in `budget`; returns whether it was
    /// written.
    pub(crate) fn raw_line(&mut self, line: &[u8], budget: Option<u64>) -> Result<bool> {
        if let Some(budget) = budget
            && line.len() as u64 + u64::from(!self.first) > budget
        {
            if self.cut {
                return self.write_cut(line, budget);
            }
            return Ok(false);
        }
        self.write_line(line)?;
        Ok(true)
    }

    /// Writes a line of `len` bytes produced by `write` if it fits in `budget`; returns
    /// whether it was written (never cuts: a caller in cut mode renders the line and
    /// passes it to [`JsonlWriter::raw_line`]).
    pub(crate) fn raw_with(
        &mut self,
        len: u64,
        budget: Option<u64>,
        write: impl FnOnce(&mut W) -> std::io::Result<()>,
    ) -> Result<bool> {
        if let Some(budget) = budget
            && len + u64::from(!self.first) > budget
        {
            return Ok(false);
        }
        self.separate()?;
        write(&mut self.out).map_err(|e| Error::io("writing the output", e))?;
        self.bytes += len;
        Ok(true)
    }

    fn render_finding(&mut self, f: &Finding, projection: &Projection) {
        render_finding(&mut self.line, f, projection);
    }

    /// A `host` line.
    pub fn host(&mut self, h: &Host) -> Result<()> {
        self.render_host(h);
        self.emit()
    }

    /// Renders the pending line; writes it if the output then stays within `limit` bytes
    /// in all (`None` = no limit). Returns whether it was written.
    fn emit_within(&mut self, limit: Option<u64>) -> Result<bool> {
        if let Some(limit) = limit
            && self.bytes + u64::from(!self.first) + self.line.len() as u64 > limit
        {
            self.line.clear();
            return Ok(false);
        }
        self.emit()?;
        Ok(true)
    }

    /// A `host` line if the output stays within `limit` bytes; returns whether written.
    pub(crate) fn host_within(&mut self, h: &Host, limit: Option<u64>) -> Result<bool> {
        self.render_host(h);
        self.emit_within(limit)
    }

    /// A `compliance` line if the output stays within `limit` bytes; returns whether
    /// written.
    pub(crate) fn compliance_within(
        &mut self,
        c: &ComplianceResult,
        limit: Option<u64>,
    ) -> Result<bool> {
        self.render_compliance(c);
        self.emit_within(limit)
    }

    /// The closing line.
    pub(crate) fn closing(&mut self, c: &Closing) -> Result<()> {
        c.render(&mut self.line);
        self.emit()
    }

    fn render_host(&mut self, h: &Host) {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"type\": \"host\", \"host\": ");
        str_lit(l, &h.name);
        let ip = h.ip.map(|i| i.to_string());
        for (k, v) in [
            ("ip", &ip),
            ("fqdn", &h.fqdn),
            ("netbios", &h.netbios),
            ("mac", &h.mac),
            ("os", &h.os),
        ] {
            key(l, k);
            opt_str(l, v.as_deref());
        }
        key(l, "credentialed");
        match h.credentialed {
            Some(b) => l.extend_from_slice(if b { b"true" } else { b"false" }),
            None => l.extend_from_slice(b"null"),
        }
        key(l, "start");
        opt_str(l, h.start.as_deref());
        key(l, "end");
        opt_str(l, h.end.as_deref());
        key(l, "properties");
        l.push(b'{');
        for (i, (k, v)) in h.properties.iter().enumerate() {
            if i > 0 {
                l.extend_from_slice(b", ");
            }
            str_lit(l, k);
            l.extend_from_slice(b": ");
            str_lit(l, v);
        }
        l.extend_from_slice(b"}}");
    }

    /// A `compliance` line.
    pub fn compliance(&mut self, c: &ComplianceResult) -> Result<()> {
        self.render_compliance(c);
        self.emit()
    }

    fn render_compliance(&mut self, c: &ComplianceResult) {
        let l = &mut self.line;
        l.extend_from_slice(b"{\"type\": \"compliance\", \"host\": ");
        str_lit(l, &c.host);
        key(l, "plugin_id");
        match c.plugin_id {
            Some(p) => int(l, p.into()),
            None => l.extend_from_slice(b"null"),
        }
        key(l, "plugin_name");
        opt_str(l, c.plugin_name.as_deref());
        key(l, "check_name");
        opt_str(l, c.check_name.as_deref());
        key(l, "result");
        opt_str(l, c.result.as_deref());
        for (k, v) in &c.fields {
            if k == "check_name" || k == "result" {
                continue;
            }
            key(l, k);
            str_lit(l, v);
        }
        l.push(b'}');
    }

    /// The `pagination` line: the predecessor's keys, then `next_cursor`, `returned`,
    /// `truncated`, `next` and `notices`.
    pub fn pagination(&mut self, p: &Pagination) -> Result<()> {
        self.closing(&Closing::Pagination(p.clone()))
    }

    /// The `truncated` line.
    pub fn truncated(&mut self, t: &Truncation) -> Result<()> {
        self.closing(&Closing::Truncated(t.clone()))
    }

    /// The `end` line.
    pub fn end(&mut self, e: &End) -> Result<()> {
        self.closing(&Closing::End(e.clone()))
    }
}

/// Renders a `vulnerability` line (without separator) into `l`.
pub(crate) fn render_finding(l: &mut Vec<u8>, f: &Finding, projection: &Projection) {
    let host = HostLine::of(f);
    l.extend_from_slice(b"{\"type\": \"vulnerability\"");
    match projection.fields() {
        Some(fields) => {
            for name in fields {
                if is_host_field(name) {
                    host.write(l, name, projection);
                } else if let Some(v) = f.get(name) {
                    key(l, name);
                    value(l, v);
                }
            }
        }
        None => {
            for name in ATTRIBUTE_FIELDS {
                if let Some(v) = f.get(name) {
                    key(l, name);
                    value(l, v);
                }
            }
            for (name, v) in &f.fields {
                key(l, name);
                value(l, v.as_ref());
            }
            if f.child("cvss_score").is_none()
                && let Some(s) = f.cvss_score()
            {
                key(l, "cvss_score");
                float(l, s);
            }
            host.write_known(l, projection, |n| f.child(n).is_some());
        }
    }
    l.push(b'}');
}

/// The host of a `vulnerability` line: its host fields come from the host table (or the
/// parsed host), never from the record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HostLine<'a> {
    /// The host name (`host`).
    pub(crate) name: &'a str,
    /// Its host fields, when known.
    pub(crate) fields: Option<&'a HostFields>,
}

impl<'a> HostLine<'a> {
    /// The host of a parsed finding.
    pub(crate) fn of(f: &'a Finding) -> HostLine<'a> {
        HostLine {
            name: &f.host,
            fields: f.host_fields.as_deref(),
        }
    }

    /// The value written for host field `name`: a profile leaves out a `host_ip` that only
    /// repeats the host name; `custom_fields` write every known value.
    pub(crate) fn value(&self, name: &str, projection: &Projection) -> Option<ValueRef<'a>> {
        let fields = self.fields?;
        if name == "host_ip"
            && projection.profile_name() != "custom"
            && fields.ip_repeats_name(self.name)
        {
            return None;
        }
        fields.get(name)
    }

    /// Writes host field `name` if it has a value.
    pub(crate) fn write(&self, l: &mut Vec<u8>, name: &str, projection: &Projection) {
        if let Some(v) = self.value(name, projection) {
            key(l, name);
            value(l, v);
        }
    }

    /// `full`: every known host field the record does not already hold (`in_record`).
    fn write_known(
        &self,
        l: &mut Vec<u8>,
        projection: &Projection,
        in_record: impl Fn(&str) -> bool,
    ) {
        for name in HOST_FIELDS {
            if !in_record(name) {
                self.write(l, name, projection);
            }
        }
    }
}

pub(crate) fn key(l: &mut Vec<u8>, k: &str) {
    l.extend_from_slice(b", ");
    str_lit(l, k);
    l.extend_from_slice(b": ");
}

fn opt_str(l: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => str_lit(l, s),
        None => l.extend_from_slice(b"null"),
    }
}

/// Decimal digits of an integer, without the formatting machinery (runs a few times per
/// finding).
fn int(l: &mut Vec<u8>, i: i64) {
    if i < 0 {
        l.push(b'-');
    }
    let mut n = i.unsigned_abs();
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    l.extend_from_slice(&digits[at..]);
}

/// Python's float repr: shortest round-trip, always with a fraction or exponent.
fn float(l: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        // JSON has no NaN/Infinity; the parser never produces them.
        l.extend_from_slice(b"null");
        return;
    }
    // Scores (7.5, 10.0, 5.3...): a non-negative value that is exactly the double nearest
    // to some n/10 has a shortest representation with at most one decimal, and only one
    // such string is near it, so it can be written from n directly.
    if f.is_sign_positive() && f < 1e6 {
        let n = (f * 10.0).round();
        if n / 10.0 == f {
            let n = n as i64;
            int(l, n / 10);
            l.push(b'.');
            l.push(b'0' + (n % 10) as u8);
            return;
        }
    }
    let start = l.len();
    let _ = write!(l, "{f}");
    if !l[start..].iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        l.extend_from_slice(b".0");
    }
}

pub(crate) fn value(l: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => l.extend_from_slice(b"null"),
        ValueRef::Bool(b) => l.extend_from_slice(if b { b"true" } else { b"false" }),
        ValueRef::Int(i) => int(l, i),
        ValueRef::Float(f) => float(l, f),
        ValueRef::Text(s) => str_lit(l, s),
        ValueRef::List(items) => list(l, items),
    }
}

fn list(l: &mut Vec<u8>, items: ListRef<'_>) {
    str_array(l, items.iter());
}

/// A JSON array of string literals, with Python's `", "` separator.
fn str_array<'a>(l: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    l.push(b'[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            l.extend_from_slice(b", ");
        }
        str_lit(l, s);
    }
    l.push(b']');
}

/// Bytes that must be escaped inside a JSON string.
const ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Index of the first byte of `bytes` that needs escaping, if any. Looks at 8 bytes at a
/// time (SWAR): almost all text needs no escape, and this runs over every output byte.
fn first_escape(bytes: &[u8]) -> Option<usize> {
    first_match(
        bytes,
        |w| {
            // Per byte, exact (no carries cross bytes): the high bit ends up clear where
            // the byte is < 0x20, == '"' or == '\\'.
            let low = w & !HI;
            let control = (low + LO * 0x60) | w;
            let quote = ((low ^ (LO * 0x22)) + !HI) | w;
            let backslash = ((low ^ (LO * 0x5c)) + !HI) | w;
            !(control & quote & backslash) & HI
        },
        |b| ESCAPE[b as usize],
    )
}

/// A JSON string literal. Copies runs of plain bytes at once; only `"`, `\\` and control
/// characters are escaped ([`is_str_lit_of`] reads these escapes back).
pub(crate) fn str_lit(l: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    l.reserve(s.len() + 2);
    l.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(off) = first_escape(&bytes[start..]) {
        let i = start + off;
        l.extend_from_slice(&bytes[start..i]);
        let b = bytes[i];
        match b {
            b'"' => l.extend_from_slice(b"\\\""),
            b'\\' => l.extend_from_slice(b"\\\\"),
            b'\n' => l.extend_from_slice(b"\\n"),
            b'\r' => l.extend_from_slice(b"\\r"),
            b'\t' => l.extend_from_slice(b"\\t"),
            0x08 => l.extend_from_slice(b"\\b"),
            0x0c => l.extend_from_slice(b"\\f"),
            _ => {
                l.extend_from_slice(b"\\u00");
                l.push(HEX[(b >> 4) as usize]);
                l.push(HEX[(b & 0xf) as usize]);
            }
        }
        start = i + 1;
    }
    l.extend_from_slice(&bytes[start..]);
    l.push(b'"');
}

/// Whether `lit`, a literal written by [`str_lit`], is the literal of `s`: lets a cache of
/// rendered texts compare a new text with its entries without keeping the raw text too.
/// Walks the literal from backslash to backslash (SIMD search; escapes are rare): the runs
/// between them hold no byte that needs escaping, so a run equal to the text's next bytes
/// proves those bytes need none either.
pub(crate) fn is_str_lit_of(lit: &[u8], s: &str) -> bool {
    let Some(mut lit) = lit.strip_prefix(b"\"").and_then(|l| l.strip_suffix(b"\"")) else {
        return false;
    };
    let mut s = s.as_bytes();
    loop {
        let run = memchr::memchr(b'\\', lit).unwrap_or(lit.len());
        let Some(rest) = s.strip_prefix(&lit[..run]) else {
            return false;
        };
        s = rest;
        lit = &lit[run..];
        let Some((&kind, after)) = lit.get(1..).and_then(<[u8]>::split_first) else {
            return s.is_empty() && lit.is_empty();
        };
        let (byte, len) = match kind {
            b'u' => {
                let hex = after.get(..4).and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => (b, 6),
                    None => return false,
                }
            }
            b'n' => (b'\n', 2),
            b'r' => (b'\r', 2),
            b't' => (b'\t', 2),
            b'b' => (0x08, 2),
            b'f' => (0x0c, 2),
            other => (other, 2),
        };
        match s.split_first() {
            Some((&b, rest)) if b == byte => s = rest,
            _ => return false,
        }
        lit = &lit[len..];
    }
}

fn json_obj(l: &mut Vec<u8>, m: &Map<String, Json>) {
    l.push(b'{');
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 {
            l.extend_from_slice(b", ");
        }
        str_lit(l, k);
        l.extend_from_slice(b": ");
        json(l, v);
    }
    l.push(b'}');
}

pub(crate) fn json(l: &mut Vec<u8>, v: &Json) {
    match v {
        Json::Null => l.extend_from_slice(b"null"),
        Json::Bool(b) => l.extend_from_slice(if *b { b"true" } else { b"false" }),
        Json::Number(n) => match n.as_i64() {
            Some(i) => int(l, i),
            None => match n.as_f64() {
                Some(f) if n.is_f64() => float(l, f),
                _ => l.extend_from_slice(n.to_string().as_bytes()),
            },
        },
        Json::String(s) => str_lit(l, s),
        Json::Array(a) => {
            l.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    l.extend_from_slice(b", ");
                }
                json(l, x);
            }
            l.push(b']');
        }
        Json::Object(m) => json_obj(l, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The literal is compared exactly: a text matches its own literal and no other
        /// text's (JSON escaping is one-to-one), also when one is a prefix of the other.
        #[test]
        fn a_literal_matches_only_its_own_text(
            a in "[a-c\"\\\\\n\r\t\u{8}\u{c}\u{1}\u{1f}é]{0,12}",
            b in "[a-c\"\\\\\n\r\t\u{8}\u{c}\u{1}\u{1f}é]{0,12}",
        ) {
            let mut lit = Vec::new();
            str_lit(&mut lit, &a);
            prop_assert!(is_str_lit_of(&lit, &a));
            prop_assert_eq!(is_str_lit_of(&lit, &b), a == b);
            let longer = format!("{a}{b}");
            prop_assert_eq!(is_str_lit_of(&lit, &longer), b.is_empty());
            prop_assert!(!is_str_lit_of(&lit[..lit.len() - 1], &a));
        }
    }

    #[test]
    fn escapes_and_floats() {
        let mut l = Vec::new();
        str_lit(&mut l, "a\"b\\c\nd\u{1}é");
        assert_eq!(String::from_utf8(l).unwrap(), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let mut l = Vec::new();
        float(&mut l, 10.0);
        l.push(b' ');
        float(&mut l, 9.8);
        assert_eq!(String::from_utf8(l).unwrap(), "10.0 9.8");
        // The fast paths agree with the formatting machinery.
        let display = |f: f64| {
            let s = format!("{f}");
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        };
        let mut floats = vec![
            0.0, -0.0, 0.1, 0.3, 1e-7, 2.5e-3, 999_999.9, 1e6, 123_456.7, -4.2,
        ];
        floats.extend((0..=1000).map(|i| f64::from(i) / 10.0));
        floats.extend((0..=1000).map(|i| f64::from(i) * 0.1));
        floats.extend((0..=1000).map(|i| f64::from(i) / 100.0));
        for f in floats {
            let mut l = Vec::new();
            float(&mut l, f);
            assert_eq!(String::from_utf8(l).unwrap(), display(f), "{f:?}");
        }
        for i in [0, 1, -1, 9, 10, -10, 4_294_967_295, i64::MAX, i64::MIN] {
            let mut l = Vec::new();
            int(&mut l, i);
            assert_eq!(String::from_utf8(l).unwrap(), i.to_string());
        }
    }

    #[test]
    fn swar_escape_scan_matches_the_table() {
        let all: Vec<u8> = (0..=255u8).collect();
        for b in 0..=255u8 {
            for pos in 0..20 {
                let mut text = vec![b'a'; 20];
                text[pos] = b;
                let naive = text.iter().position(|&x| ESCAPE[x as usize]);
                assert_eq!(first_escape(&text), naive, "byte {b:#x} at {pos}");
            }
        }
        let naive = all.iter().position(|&x| ESCAPE[x as usize]);
        assert_eq!(first_escape(&all), naive);
        let high: Vec<u8> = (0x80..=0xffu8).chain([b'\\']).collect();
        assert_eq!(first_escape(&high), Some(128));
    }
}
