//! Streaming `.nessus` reader: XML events in, typed [`Record`]s out.
//!
//! Memory is bounded by the largest single record: only the `ReportItem` (or host
//! properties block) being built is held, and a metering adapter under the XML reader
//! refuses any record larger than [`Limits::max_record_bytes`] before buffering it.
//!
//! Accepted roots: `NessusClientData_v2` (a full export), and the fragments `ReportHost`
//! and `ReportItem` that tools produce by cutting exports apart (a bare `ReportItem` gets an
//! empty host name). `NessusClientData` (the v1 format) and any other root are refused
//! with [`Error::UnsupportedFormat`]. DTDs are refused outright and only the five
//! predefined entities and character references are resolved, so there is no entity
//! expansion and no external fetch.

use std::collections::{HashMap, VecDeque};
use std::io::{self, BufRead, Read};
use std::net::IpAddr;
use std::sync::Arc;

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use crate::catalogue::{FieldKind, field_kind};
use crate::encoding::{self, Decoding, Detected, read_retrying};
use crate::error::{Error, Result};
use crate::record::{ComplianceResult, FieldName, Finding, Host, HostFields, Record, ScanMetadata};
use crate::value::Value;

/// Resource limits applied while parsing hostile or broken input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single record (a `ReportItem`, a `HostProperties` block, or any other
    /// single XML event) in bytes of input. Default 32 MiB, over 100× the largest
    /// `plugin_output` seen in real exports.
    pub max_record_bytes: u64,
    /// Deepest element nesting. Default 64 (real exports nest 6 deep).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 32 * 1024 * 1024,
            max_depth: 64,
        }
    }
}

/// The reader quick-xml reads from: a buffer over the caller's reader that counts
/// consumed bytes, counts newlines once per buffer refill (so an error's line number costs
/// nothing on the hot path), and refuses to hand out more than `limit` bytes since the
/// current record started, so the XML reader never buffers an oversized text node.
#[derive(Debug)]
struct Metered<R> {
    inner: R,
    /// How `inner`'s bytes become the UTF-8 the XML reader reads (see `encoding`).
    input: Input,
    /// Why the input could not be decoded, for the error (the XML reader only sees an
    /// I/O error).
    encoding_failure: Option<EncodingFailure>,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
    consumed: u64,
    /// Newlines in buffers already fully consumed.
    newlines_done: u64,
    window_start: u64,
    limit: u64,
    exceeded: bool,
}

impl<R> Metered<R> {
    /// 1-based line of the next unconsumed byte.
    fn line(&self) -> u64 {
        1 + self.newlines_done + count_newlines(&self.buf[..self.pos])
    }
}

impl<R: Read> Metered<R> {
    /// Reads the next buffer (once per 64 KiB: kept out of the inlined fast path).
    #[cold]
    #[inline(never)]
    fn refill(&mut self) -> io::Result<()> {
        self.newlines_done += count_newlines(&self.buf[..self.filled]);
        self.pos = 0;
        self.filled = 0;
        self.filled = match &mut self.input {
            Input::Utf8 => read_retrying(&mut self.inner, &mut self.buf)?,
            Input::Unknown => self.first_fill()?,
            Input::Decoding(d) => match d.read(&mut self.inner, &mut self.buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    self.encoding_failure = Some(EncodingFailure::Invalid(e.to_string()));
                    return Err(e);
                }
                Err(e) => return Err(e),
            },
        };
        Ok(())
    }

    /// Reads the first buffer and decides how the input is read: as is (UTF-8) or
    /// decoded. Returns the bytes now in `buf`.
    #[cold]
    fn first_fill(&mut self) -> io::Result<usize> {
        let mut n = 0;
        loop {
            let got = read_retrying(&mut self.inner, &mut self.buf[n..])?;
            n += got;
            if got == 0 || n == self.buf.len() || !encoding::needs_more(&self.buf[..n]) {
                break;
            }
        }
        match encoding::detect(&self.buf[..n]) {
            Detected::Utf8 => {
                self.input = Input::Utf8;
                Ok(n)
            }
            Detected::Decode(encoding) => {
                let mut d = Box::new(Decoding::new(encoding, &self.buf[..n]));
                let n = d.read(&mut self.inner, &mut self.buf).inspect_err(|e| {
                    if e.kind() == io::ErrorKind::InvalidData {
                        self.encoding_failure = Some(EncodingFailure::Invalid(e.to_string()));
                    }
                })?;
                self.input = Input::Decoding(d);
                Ok(n)
            }
            Detected::Unsupported(label) => {
                let e = io::Error::other(format!("unsupported encoding {label:?}"));
                self.encoding_failure = Some(EncodingFailure::Unsupported(label));
                Err(e)
            }
        }
    }
}

/// How the input's bytes are read.
#[derive(Debug)]
enum Input {
    /// Not looked at yet.
    Unknown,
    /// UTF-8: as is.
    Utf8,
    /// Decoded to UTF-8 from another encoding.
    Decoding(Box<Decoding>),
}

/// Why the input could not be decoded.
#[derive(Debug, Clone)]
enum EncodingFailure {
    /// The declared encoding (label as written) cannot be read.
    Unsupported(String),
    /// A byte sequence is invalid in the document's encoding.
    Invalid(String),
}

impl<R: Read> Read for Metered<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = {
            let buf = self.fill_buf()?;
            let n = buf.len().min(out.len());
            out[..n].copy_from_slice(&buf[..n]);
            n
        };
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Metered<R> {
    // quick-xml calls these for every few bytes: inlined into its loops, not called.
    #[inline(always)]
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed - self.window_start > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("record size limit exceeded"));
        }
        if self.pos >= self.filled {
            self.refill()?;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    #[inline(always)]
    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.filled - self.pos);
        self.pos += amt;
        self.consumed += amt as u64;
    }
}

/// Counts `\n` bytes (this runs over every input byte). Written so that LLVM vectorizes it
/// with baseline SSE2: a `u8` counter per 64-byte block (it cannot overflow) compiles to
/// byte compares and subtractions, half the instructions of the former SWAR version.
fn count_newlines(bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let mut k = 0u8;
        for &b in block {
            k += u8::from(b == b'\n');
        }
        n += u64::from(k);
    }
    n + blocks.remainder().iter().filter(|&&b| b == b'\n').count() as u64
}

/// Initial capacity of the text capture buffer.
const TEXT_CAPACITY: usize = 64 * 1024;

/// The trimmed contents of `buf`, which is replaced by a new buffer.
fn take_trimmed(buf: &mut String) -> String {
    let mut s = std::mem::replace(buf, String::with_capacity(TEXT_CAPACITY));
    s.truncate(s.trim_end().len());
    let lead = s.len() - s.trim_start().len();
    s.drain(..lead);
    s
}

/// Most distinct child names the parser caches (real exports use about 100).
pub(crate) const MAX_INTERNED_NAMES: usize = 4096;

/// A fast non-keyed hash for short trusted-to-be-few keys (field names, plugin ids): one
/// multiply per 8 bytes (the FxHash step) instead of one per byte. Hostile input cannot
/// make the maps large: names are capped at [`MAX_INTERNED_NAMES`], plugin-keyed caches by
/// their byte budgets.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FnvBuild;

/// State of [`FnvBuild`].
#[derive(Debug)]
pub(crate) struct Fnv(u64);

const FX_K: u64 = 0xf135_7aea_2e62_a9c5;

impl Fnv {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(FX_K);
    }
}

impl std::hash::BuildHasher for FnvBuild {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0)
    }
}

impl std::hash::Hasher for Fnv {
    #[inline]
    fn finish(&self) -> u64 {
        // The multiply leaves the best bits at the top; hashbrown indexes with the low ones.
        self.0.rotate_left(26)
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for c in &mut words {
            self.add(u64::from_le_bytes([
                c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7],
            ]));
        }
        let rest = words.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        // The length keeps "a" and "a\0" apart.
        self.add(u64::from_le_bytes(last) ^ ((bytes.len() as u64) << 59));
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
}

/// Where the parser is in the document. One entry per open element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Elem {
    Root,
    Policy,
    PolicyName,
    Report,
    ReportHost,
    HostProperties,
    Tag,
    ReportItem,
    ItemChild,
    /// A `ReportItem` child whose value nobody asked for (see `keep_only`).
    SkippedChild,
    Other,
}

/// Streaming reader of a Nessus v2 export.
///
/// ```
/// use nessus_schema::{NessusReader, Record};
///
/// let xml = r#"<NessusClientData_v2><Report name="r"><ReportHost name="10.0.0.1">
///   <ReportItem port="22" svc_name="ssh" protocol="tcp" severity="2" pluginID="1" pluginName="x" pluginFamily="f">
///     <cve>CVE-1</cve><cvss3_base_score>5.3</cvss3_base_score>
///   </ReportItem></ReportHost></Report></NessusClientData_v2>"#;
/// let findings: Vec<_> = NessusReader::new(xml.as_bytes())
///     .filter_map(|r| match r.unwrap() { Record::Finding(f) => Some(f), _ => None })
///     .collect();
/// assert_eq!(findings[0].severity, Some(2));
/// assert_eq!(findings[0].cvss_score(), Some(5.3));
/// ```
#[derive(Debug)]
pub struct NessusReader<R: BufRead> {
    xml: quick_xml::Reader<Metered<R>>,
    limits: Limits,
    buf: Vec<u8>,
    stack: Vec<Elem>,
    /// Names of the open elements (for truncation errors); entries past `stack.len()` are
    /// kept as spare allocations.
    open_names: Vec<String>,
    /// Interned child names (raw name to canonical name, kind, whether its value is kept).
    names: HashMap<String, (FieldName, FieldKind, bool), FnvBuild>,
    text: String,
    capturing: bool,
    seen_root: bool,
    done: bool,
    policy_name: Option<String>,
    host: Option<Host>,
    host_emitted: bool,
    /// The emitted host's fields, shared by its findings.
    host_fields: Option<Arc<HostFields>>,
    tag_name: String,
    /// The `ReportItem` child being captured.
    child: Option<(FieldName, FieldKind)>,
    item: Option<Finding>,
    item_start: u64,
    pending: VecDeque<Record>,
    /// Children of the previous `ReportItem`: the next one's `fields` starts that large.
    fields_hint: usize,
    /// Canonical names of the `ReportItem` children whose values are kept; `None` keeps
    /// all of them.
    keep: Option<std::collections::HashSet<String, FnvBuild>>,
    /// Byte offset at which to pause if it is a `ReportHost` boundary (see `stop_at`).
    stop_at: Option<u64>,
    stopped: bool,
}

impl<R: BufRead> NessusReader<R> {
    /// Reads from `reader` with default [`Limits`].
    pub fn new(reader: R) -> Self {
        Self::with_limits(reader, Limits::default())
    }

    /// Reads from `reader` with the given limits.
    pub fn with_limits(reader: R, limits: Limits) -> Self {
        let metered = Metered {
            inner: reader,
            input: Input::Unknown,
            encoding_failure: None,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            pos: 0,
            filled: 0,
            consumed: 0,
            newlines_done: 0,
            window_start: 0,
            limit: limits.max_record_bytes,
            exceeded: false,
        };
        let mut xml = quick_xml::Reader::from_reader(metered);
        let config = xml.config_mut();
        // Never trim: trimming each fragment around entity references corrupts text
        // (quick-xml#900); values are trimmed once when their element ends.
        config.trim_text(false);
        config.check_end_names = true;
        config.expand_empty_elements = false;
        NessusReader {
            xml,
            limits,
            buf: Vec::with_capacity(64 * 1024),
            stack: Vec::with_capacity(16),
            open_names: Vec::with_capacity(16),
            names: HashMap::default(),
            text: String::with_capacity(TEXT_CAPACITY),
            capturing: false,
            seen_root: false,
            done: false,
            policy_name: None,
            host: None,
            host_emitted: false,
            host_fields: None,
            tag_name: String::new(),
            child: None,
            item: None,
            item_start: 0,
            pending: VecDeque::new(),
            fields_hint: 0,
            keep: None,
            stop_at: None,
            stopped: false,
        }
    }

    /// Keeps the values of only these `ReportItem` children (canonical names) plus any
    /// namespaced one (compliance results); the others are still parsed, validated and
    /// listed by `seen_field_names`, but their text is not copied. Attributes are always
    /// kept. For callers that look at a known set of fields (convert with a projection).
    pub(crate) fn keep_only<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) {
        self.keep = Some(names.into_iter().map(str::to_owned).collect());
        // Cached entries carry the previous keep decision.
        self.names.clear();
    }

    /// Pauses the document (`next_record` returns `None`) if the parser gets to exactly
    /// `offset` between two children of `<NessusClientData_v2><Report>`: then the byte at
    /// `offset` starts a real element of the report, not text inside a comment, CDATA
    /// section or attribute. Otherwise the document is read to its end as usual.
    pub(crate) fn stop_at(&mut self, offset: u64) {
        self.stop_at = Some(offset);
    }

    /// Whether the parser paused at the `stop_at` offset.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped
    }

    /// Continues a paused document from where it stopped, to its end.
    pub(crate) fn resume(&mut self) {
        self.stop_at = None;
        if self.stopped {
            self.stopped = false;
            self.done = false;
        }
    }

    /// How many child names were recorded (capped at `MAX_INTERNED_NAMES`).
    pub(crate) fn seen_field_count(&self) -> usize {
        self.names.len()
    }

    /// Canonical names of the child elements seen so far (up to the intern cap).
    pub(crate) fn seen_field_names(&self) -> impl Iterator<Item = &str> {
        self.names.values().map(|(n, _, _)| &**n)
    }

    /// Bytes of input consumed so far (for progress reporting).
    pub fn bytes_read(&self) -> u64 {
        self.xml.get_ref().consumed
    }

    /// The next record, `Ok(None)` at the end of the document.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(Some(r));
            }
            if self.done {
                return Ok(None);
            }
            self.step()?;
        }
    }

    fn line(&self) -> u64 {
        self.xml.get_ref().line()
    }

    fn byte_pos(&self) -> u64 {
        self.xml.buffer_position()
    }

    fn malformed(&self, err: &quick_xml::Error) -> Error {
        let meter = self.xml.get_ref();
        if meter.exceeded {
            return Error::RecordTooLarge {
                position: meter.consumed,
                limit: self.limits.max_record_bytes,
            };
        }
        match &meter.encoding_failure {
            Some(EncodingFailure::Unsupported(label)) => {
                return Error::UnsupportedEncoding {
                    encoding: label.clone(),
                };
            }
            Some(EncodingFailure::Invalid(message)) => {
                return Error::Malformed {
                    position: meter.consumed + meter.filled as u64 - meter.pos as u64,
                    line: meter.line(),
                    message: message.clone(),
                };
            }
            None => {}
        }
        let position = self.xml.error_position();
        // quick-xml has consumed the failing event's bytes: the line at the consumed point
        // is the error's line.
        let line = self.line();
        match err {
            quick_xml::Error::Io(e) => Error::io(
                format!("reading the input at byte {position}"),
                io::Error::new(e.kind(), e.to_string()),
            ),
            quick_xml::Error::Syntax(_) if !self.stack.is_empty() || self.seen_root => {
                if self.xml.get_ref().consumed >= position && self.at_eof_syntax(err) {
                    return self.truncated();
                }
                Error::Malformed {
                    position,
                    line,
                    message: err.to_string(),
                }
            }
            _ => Error::Malformed {
                position,
                line,
                message: err.to_string(),
            },
        }
    }

    /// quick-xml reports "unclosed tag/comment/..." syntax errors when input stops in the
    /// middle of markup; those are truncations, not malformed XML.
    fn at_eof_syntax(&self, err: &quick_xml::Error) -> bool {
        let msg = err.to_string();
        msg.contains("unclosed") || msg.contains("not closed")
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            position: self.xml.get_ref().consumed,
            open: self
                .stack
                .len()
                .checked_sub(1)
                .and_then(|i| self.open_names.get(i))
                .cloned()
                .unwrap_or_else(|| "document".to_owned()),
        }
    }

    fn forbidden(&self, what: impl Into<String>) -> Error {
        Error::Forbidden {
            position: self.byte_pos(),
            line: self.line(),
            what: what.into(),
        }
    }

    /// Moves the record-size window to "now" (outside records, each event is its own
    /// window).
    fn reset_window(&mut self) {
        let meter = self.xml.get_mut();
        meter.window_start = meter.consumed;
    }

    fn step(&mut self) -> Result<()> {
        // The event borrows the buffer, and handling it needs `&mut self`: lend the
        // buffer out for the duration of one event.
        if let Some(at) = self.stop_at
            && at == self.byte_pos()
            && self.stack[..] == [Elem::Root, Elem::Report]
        {
            self.stopped = true;
            self.done = true;
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        if self.item.is_none()
            && !matches!(self.stack.last(), Some(Elem::HostProperties | Elem::Tag))
        {
            self.reset_window();
        }
        let mut adopt = None;
        let out = match self.xml.read_event_into(&mut buf) {
            // A large text that is a whole value (e.g. a 400 KB plugin description):
            // adopted below instead of copied, saving a copy and its fresh pages.
            Ok(Event::Text(t))
                if self.capturing
                    && t.len() >= TEXT_CAPACITY
                    && self.text.len() < TEXT_CAPACITY
                    && !t.contains('\r') =>
            {
                adopt = Some((t.as_ptr() as usize, t.len()));
                Ok(())
            }
            Ok(event) => self.handle(event),
            Err(e) => Err(self.malformed(&e)),
        };
        if let Some((at, len)) = adopt {
            // Where the text was in the buffer (its address, compared once it is no longer
            // borrowed).
            let start = at.wrapping_sub(buf.as_ptr() as usize);
            if start == 0 && len == buf.len() {
                buf = self.adopt_text(buf);
            } else if let Some(text) = buf
                .get(start..start.saturating_add(len))
                .and_then(|b| std::str::from_utf8(b).ok())
            {
                // Not the whole buffer (not seen with quick-xml 0.42): copied, as any text.
                self.text.push_str(text);
            }
        }
        self.buf = buf;
        out
    }

    /// Makes `buf`, which holds exactly one text event's bytes (validated as UTF-8 by the
    /// XML reader, with no `\r` to normalize), the captured text after what was captured
    /// before (a short prefix, such as an entity reference); returns the capture's former
    /// buffer, emptied, for the XML reader to reuse.
    #[cold]
    fn adopt_text(&mut self, buf: Vec<u8>) -> Vec<u8> {
        match String::from_utf8(buf) {
            Ok(mut text) => {
                text.insert_str(0, &self.text);
                let mut old = std::mem::replace(&mut self.text, text).into_bytes();
                old.clear();
                old
            }
            // Unreachable (the reader validated it); copy what can be read, as before.
            Err(e) => {
                let buf = e.into_bytes();
                self.text.push_str(&String::from_utf8_lossy(&buf));
                buf
            }
        }
    }

    fn handle(&mut self, event: Event<'_>) -> Result<()> {
        match event {
            Event::Start(start) => {
                let elem = self.open(&start)?;
                let name = start.name();
                let name = name.as_ref();
                let depth = self.stack.len();
                self.stack.push(elem);
                match self.open_names.get_mut(depth) {
                    Some(slot) => {
                        slot.clear();
                        slot.push_str(name);
                    }
                    None => self.open_names.push(name.to_owned()),
                }
                if self.stack.len() > self.limits.max_depth {
                    return Err(Error::TooDeep {
                        position: self.byte_pos(),
                        limit: self.limits.max_depth,
                    });
                }
            }
            Event::Empty(start) => {
                let elem = self.open(&start)?;
                self.close(elem)?;
            }
            Event::End(_) => {
                let Some(elem) = self.stack.pop() else {
                    return Err(Error::Malformed {
                        position: self.byte_pos(),
                        line: self.line(),
                        message: "end tag without a start tag".to_owned(),
                    });
                };
                self.close(elem)?;
                if self.stack.is_empty() {
                    self.done = true;
                }
            }
            Event::Text(t) => {
                if self.capturing {
                    self.text.push_str(&t.xml10_content());
                } else if !self.seen_root && !t.trim_ascii().is_empty() {
                    return Err(Error::Malformed {
                        position: self.byte_pos(),
                        line: self.line(),
                        message: "text before the root element".to_owned(),
                    });
                }
            }
            Event::CData(c) => {
                if self.capturing {
                    self.text.push_str(&c.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    Ok(None) => match &*r {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                    Err(e) => {
                        return Err(Error::Malformed {
                            position: self.byte_pos(),
                            line: self.line(),
                            message: format!("bad character reference &{};: {e}", &*r),
                        });
                    }
                };
                match resolved {
                    Some(c) if self.capturing => self.text.push(c),
                    Some(_) => {}
                    None => {
                        return Err(self.forbidden(format!(
                            "reference to undeclared entity &{};: only the five predefined XML entities and character references are accepted",
                            &*r
                        )));
                    }
                }
            }
            Event::DocType(_) => {
                return Err(self.forbidden(
                    "DOCTYPE declaration: DTDs and entity declarations are refused (no entity expansion, no external fetch)",
                ));
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !self.stack.is_empty() {
                    return Err(self.truncated());
                }
                if !self.seen_root {
                    return Err(Error::Empty);
                }
                self.done = true;
            }
        }
        Ok(())
    }

    fn attr(&self, start: &BytesStart<'_>, name: &str) -> Result<Option<String>> {
        for attr in start.attributes() {
            let attr = attr.map_err(|e| self.attr_error(&e.to_string()))?;
            if attr.key.as_ref() == name {
                let v = attr
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(|e| self.attr_error(&e.to_string()))?;
                return Ok(Some(v.into_owned()));
            }
        }
        Ok(None)
    }

    fn attr_error(&self, message: &str) -> Error {
        Error::Malformed {
            position: self.byte_pos(),
            line: self.line(),
            message: format!("bad attribute: {message}"),
        }
    }

    /// Handles an element start; returns what it is.
    fn open(&mut self, start: &BytesStart<'_>) -> Result<Elem> {
        let qname = start.name();
        let name: &str = qname.as_ref();
        let parent = self.stack.last().copied();
        let elem = match parent {
            None => {
                if self.seen_root {
                    return Err(Error::Malformed {
                        position: self.byte_pos(),
                        line: self.line(),
                        message: format!("second root element <{name}>"),
                    });
                }
                self.seen_root = true;
                match name {
                    "NessusClientData_v2" => Elem::Root,
                    "ReportHost" => self.open_host(start)?,
                    "ReportItem" => self.open_item(start)?,
                    "NessusClientData" => {
                        return Err(Error::UnsupportedFormat {
                            root: name.to_owned(),
                            hint: "this is the legacy Nessus v1 format; export the scan again as .nessus (v2)",
                        });
                    }
                    _ => {
                        return Err(Error::UnsupportedFormat {
                            root: name.to_owned(),
                            hint: "expected NessusClientData_v2 (or a ReportHost/ReportItem fragment)",
                        });
                    }
                }
            }
            Some(Elem::Root) => match name {
                "Policy" => Elem::Policy,
                "Report" => {
                    self.pending.push_back(Record::Scan(ScanMetadata {
                        report_name: self.attr(start, "name")?,
                        policy_name: self.policy_name.clone(),
                        scan_start: None,
                        scan_end: None,
                    }));
                    Elem::Report
                }
                _ => Elem::Other,
            },
            Some(Elem::Policy) if name == "policyName" => {
                self.start_capture();
                Elem::PolicyName
            }
            Some(Elem::Report) if name == "ReportHost" => self.open_host(start)?,
            Some(Elem::ReportHost) => match name {
                "HostProperties" => Elem::HostProperties,
                "ReportItem" => {
                    self.emit_host();
                    self.open_item(start)?
                }
                _ => Elem::Other,
            },
            Some(Elem::HostProperties) if name == "tag" => {
                self.tag_name = self.attr(start, "name")?.unwrap_or_default();
                self.start_capture();
                Elem::Tag
            }
            Some(Elem::ReportItem) => {
                if let Some(child) = self.intern(name) {
                    self.child = Some(child);
                    self.start_capture();
                    Elem::ItemChild
                } else {
                    Elem::SkippedChild
                }
            }
            _ => Elem::Other,
        };
        Ok(elem)
    }

    fn start_capture(&mut self) {
        self.text.clear();
        self.capturing = true;
    }

    fn open_host(&mut self, start: &BytesStart<'_>) -> Result<Elem> {
        self.host = Some(Host {
            name: self.attr(start, "name")?.unwrap_or_default(),
            ..Host::default()
        });
        self.host_emitted = false;
        self.host_fields = None;
        Ok(Elem::ReportHost)
    }

    fn emit_host(&mut self) {
        if !self.host_emitted
            && let Some(h) = &self.host
        {
            self.host_emitted = true;
            self.host_fields = Some(Arc::new(HostFields::of(h)));
            self.pending.push_back(Record::Host(h.clone()));
        }
    }

    fn open_item(&mut self, start: &BytesStart<'_>) -> Result<Elem> {
        // A ReportItem's size is measured from its start tag.
        self.item_start = self.byte_pos();
        {
            let meter = self.xml.get_mut();
            meter.window_start = meter.consumed;
        }
        let mut f = Finding {
            host_ip: self.host.as_ref().and_then(|h| h.ip),
            host_fields: self.host_fields.clone(),
            host: self
                .host
                .as_ref()
                .map(|h| h.name.clone())
                .unwrap_or_default(),
            fields: Vec::with_capacity(self.fields_hint),
            ..Finding::default()
        };
        // quick-xml's duplicate check compares every key with every previous one and
        // allocates per tag; here the known keys are tracked in a bit set instead.
        let mut attrs = start.attributes();
        attrs.with_checks(false);
        let mut seen = 0u8;
        for attr in attrs {
            let attr = attr.map_err(|e| self.attr_error(&e.to_string()))?;
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|e| self.attr_error(&e.to_string()))?;
            let key: &str = attr.key.as_ref();
            let bit = match key {
                "pluginID" => 1,
                "severity" => 2,
                "port" => 4,
                "pluginName" => 8,
                "pluginFamily" => 16,
                "svc_name" => 32,
                "protocol" => 64,
                other if f.fields.iter().any(|(k, _)| &**k == other) => 128,
                _ => 0,
            };
            if seen & bit != 0 || bit == 128 {
                return Err(self.attr_error(&format!("duplicated attribute `{key}`")));
            }
            seen |= bit;
            match key {
                "pluginID" => f.plugin_id = self.number(key, &value)?,
                "severity" => {
                    f.severity = self
                        .number(key, &value)?
                        .map(|sev| {
                            u8::try_from(sev)
                                .map_err(|_| self.bad_value(key, &value, "a severity 0-4"))
                        })
                        .transpose()?;
                }
                "port" => f.port = self.number(key, &value)?,
                "pluginName" => f.plugin_name = Some(value.into_owned()),
                "pluginFamily" => f.plugin_family = Some(value.into_owned()),
                "svc_name" => f.svc_name = Some(value.into_owned()),
                "protocol" => f.protocol = Some(value.into_owned()),
                other => f
                    .fields
                    .push((FieldName::from(other), Value::Text(value.into_owned()))),
            }
        }
        self.item = Some(f);
        Ok(Elem::ReportItem)
    }

    /// A numeric attribute. An empty one (as tools that rewrite files leave behind) is the
    /// same as a missing one, not a reason to refuse the whole file; any other text that is
    /// not a number is an error naming it.
    fn number(&self, field: &str, value: &str) -> Result<Option<u32>> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(None);
        }
        value
            .parse()
            .map(Some)
            .map_err(|_| self.bad_value(field, value, "a non-negative integer"))
    }

    fn bad_value(&self, field: &str, value: &str, expected: &'static str) -> Error {
        Error::InvalidValue {
            field: field.to_owned(),
            value: value.chars().take(64).collect(),
            expected,
            position: self.item_start.max(self.byte_pos().saturating_sub(1)),
        }
    }

    /// Handles an element end.
    fn close(&mut self, elem: Elem) -> Result<()> {
        match elem {
            Elem::PolicyName => {
                self.capturing = false;
                self.policy_name = Some(self.text.trim().to_owned());
            }
            Elem::Tag => {
                self.capturing = false;
                let value = self.text.trim().to_owned();
                let name = std::mem::take(&mut self.tag_name);
                if let Some(h) = &mut self.host {
                    apply_host_tag(h, &name, &value);
                    h.properties.push((name, value));
                }
            }
            Elem::HostProperties => self.emit_host(),
            Elem::ReportHost => {
                self.emit_host();
                self.host = None;
                self.host_fields = None;
            }
            Elem::ItemChild => {
                self.capturing = false;
                self.finish_child();
            }
            Elem::ReportItem => {
                if let Some(f) = self.item.take() {
                    self.fields_hint = f.fields.len().min(256);
                    let compliance = compliance_of(&f);
                    self.pending.push_back(Record::Finding(f));
                    if let Some(c) = compliance {
                        self.pending.push_back(Record::Compliance(c));
                    }
                }
            }
            Elem::Root | Elem::Policy | Elem::Report | Elem::SkippedChild | Elem::Other => {}
        }
        Ok(())
    }

    /// The canonical name and kind of a child whose value is kept (`None` for one that is
    /// skipped); remembers the name for `seen_field_names`.
    fn intern(&mut self, raw_name: &str) -> Option<(FieldName, FieldKind)> {
        // Only kept children clone the shared name (an atomic increment, and a decrement
        // when the finding is dropped).
        if let Some((name, kind, kept)) = self.names.get(raw_name) {
            return kept.then(|| (name.clone(), *kind));
        }
        let canonical = canonical(raw_name);
        let kept = self.keep.as_ref().is_none_or(|k| {
            canonical == "plugin_name" || canonical.contains(':') || k.contains(canonical)
        });
        let entry = (FieldName::from(canonical), field_kind(canonical), kept);
        let out = kept.then(|| (entry.0.clone(), entry.1));
        // Bound the cache: a hostile file could use endless distinct names.
        if self.names.len() < MAX_INTERNED_NAMES {
            self.names.insert(raw_name.to_owned(), entry);
        }
        out
    }

    fn finish_child(&mut self) {
        let Some(item) = self.item.as_mut() else {
            return;
        };
        let Some((name, kind)) = self.child.take() else {
            return;
        };
        let text = self.text.trim();
        if &*name == "plugin_name" {
            item.plugin_name = Some(text.to_owned());
            return;
        }
        // Interned names usually compare by pointer.
        if let Some((_, existing)) = item
            .fields
            .iter_mut()
            .find(|(k, _)| Arc::ptr_eq(k, &name) || **k == *name)
        {
            // A repeated child: keep every value.
            match existing {
                Value::List(items) => items.push(text.to_owned()),
                other => {
                    let first = value_text(other);
                    *other = Value::List(vec![first, text.to_owned()]);
                }
            }
            return;
        }
        let value = match kind {
            FieldKind::List => Value::List(vec![text.to_owned()]),
            FieldKind::Bool => match text {
                t if t.eq_ignore_ascii_case("true") => Value::Bool(true),
                t if t.eq_ignore_ascii_case("false") => Value::Bool(false),
                "" => Value::Null,
                t => Value::Text(t.to_owned()),
            },
            FieldKind::Float | FieldKind::Int => match text {
                "" => Value::Null,
                t => t
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map_or_else(|| Value::Text(t.to_owned()), Value::Float),
            },
            // A value that outgrew the capture buffer (a description of hundreds of KB)
            // takes the buffer itself rather than a copy in a fresh allocation.
            FieldKind::Text if self.text.capacity() > TEXT_CAPACITY => {
                Value::Text(take_trimmed(&mut self.text))
            }
            FieldKind::Text => Value::Text(text.to_owned()),
        };
        item.fields.push((name, value));
    }
}

/// The field name of a child element: two element names exist for the same score in
/// real exports.
fn canonical(raw_name: &str) -> &str {
    match raw_name {
        "vulnerability_priority_rating" => "vpr_score",
        n => n,
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Text(s) => s.clone(),
        Value::List(l) => l.join(", "),
    }
}

fn apply_host_tag(h: &mut Host, name: &str, value: &str) {
    let some = || Some(value.to_owned());
    match name {
        "host-ip" => h.ip = value.parse::<IpAddr>().ok(),
        "host-fqdn" => h.fqdn = some(),
        "netbios-name" => h.netbios = some(),
        "mac-address" => h.mac = some(),
        "operating-system" => h.os = some(),
        "os" if h.os.is_none() => h.os = some(),
        "Credentialed_Scan" => {
            h.credentialed = match value {
                v if v.eq_ignore_ascii_case("true") => Some(true),
                v if v.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            }
        }
        "HOST_START" => h.start = some(),
        "HOST_END" => h.end = some(),
        "HOST_START_TIMESTAMP" => h.start_timestamp = value.parse().ok(),
        "HOST_END_TIMESTAMP" => h.end_timestamp = value.parse().ok(),
        _ => {}
    }
}

/// The compliance result carried by a finding, if it has `*:compliance-*` children.
fn compliance_of(f: &Finding) -> Option<ComplianceResult> {
    let mut c: Option<ComplianceResult> = None;
    for (name, value) in &f.fields {
        let name: &str = name;
        let local = name.rsplit_once(':').map_or(name, |(_, l)| l);
        let Some(short) = local.strip_prefix("compliance-") else {
            continue;
        };
        if !name.contains(':') {
            continue;
        }
        let c = c.get_or_insert_with(|| ComplianceResult {
            host: f.host.clone(),
            plugin_id: f.plugin_id,
            plugin_name: f.plugin_name.clone(),
            ..ComplianceResult::default()
        });
        let text = value_text(value);
        match short {
            "check-name" => c.check_name = Some(text.clone()),
            "result" => c.result = Some(text.clone()),
            _ => {}
        }
        c.fields.push((short.replace('-', "_"), text));
    }
    c
}

impl<R: BufRead> Iterator for NessusReader<R> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                // After an error the reader is in an unknown state: stop.
                self.done = true;
                self.pending.clear();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::count_newlines;
    use crate::{Error, NessusReader};

    /// Both spellings of an aliased name, and an extra attribute with a child of the same
    /// name, become one list.
    #[test]
    fn aliases_and_attribute_names_still_merge_into_lists() {
        let xml = r#"<NessusClientData_v2><Report name="r"><ReportHost name="h">
            <ReportItem pluginID="1" extra="a"><vpr_score>5.0</vpr_score><extra>b</extra>
              <vulnerability_priority_rating>6.1</vulnerability_priority_rating></ReportItem>
            <ReportItem pluginID="2"><vulnerability_priority_rating>7.0</vulnerability_priority_rating>
              <vpr_score>8.0</vpr_score></ReportItem>
            </ReportHost></Report></NessusClientData_v2>"#;
        let findings: Vec<_> = NessusReader::new(xml.as_bytes())
            .filter_map(|r| match r.unwrap() {
                crate::Record::Finding(f) => Some(f),
                _ => None,
            })
            .collect();
        let list = |f: &crate::Finding, name: &str| f.child(name).map(|v| v.to_owned_value());
        use crate::Value::List;
        assert_eq!(
            list(&findings[0], "vpr_score"),
            Some(List(vec!["5".into(), "6.1".into()]))
        );
        assert_eq!(
            list(&findings[0], "extra"),
            Some(List(vec!["a".into(), "b".into()]))
        );
        assert_eq!(
            list(&findings[1], "vpr_score"),
            Some(List(vec!["7".into(), "8.0".into()]))
        );
    }

    /// Texts of 64 KiB and more are adopted from the XML reader's buffer, not copied
    /// (after a short prefix such as an entity, or not at all when they need line-end
    /// normalization): every case must give the same value as a copy would.
    #[test]
    fn large_texts_keep_every_byte() {
        let big = "é<x> ".repeat(20_000);
        let escaped = big.replace('<', "&lt;").replace('>', "&gt;");
        let plain = "word ".repeat(20_000);
        let cases = [
            (plain.clone(), plain.clone()),
            (format!("&amp;{plain}"), format!("&{plain}")),
            (format!("{plain}&amp;{plain}"), format!("{plain}&{plain}")),
            (format!("  &lt;{plain}&gt;  "), format!("<{plain}>")),
            (format!("{plain}\r\n{plain}\r"), format!("{plain}\n{plain}")),
            (
                format!("<![CDATA[{plain}]]>{plain}"),
                format!("{plain}{plain}"),
            ),
            (escaped, big),
            ("x".repeat(200_000), "x".repeat(200_000)),
        ];
        // Values are trimmed.
        let want = |w: &str| Some(crate::Value::Text(w.trim().to_owned()));
        for (i, (xml_text, expected)) in cases.iter().enumerate() {
            let xml = format!(
                r#"<NessusClientData_v2><Report name="r"><ReportHost name="h"><ReportItem pluginID="1">
                <description>{xml_text}</description><solution>{xml_text}</solution><synopsis>s</synopsis>
                </ReportItem></ReportHost></Report></NessusClientData_v2>"#
            );
            let finding = NessusReader::new(xml.as_bytes())
                .find_map(|r| match r.unwrap() {
                    crate::Record::Finding(f) => Some(f),
                    _ => None,
                })
                .unwrap();
            for field in ["description", "solution"] {
                let got = finding.child(field).map(|v| v.to_owned_value());
                // Not assert_eq: a failure would print megabytes.
                assert!(got == want(expected), "case {i}, {field}");
            }
            let got = finding.child("synopsis").map(|v| v.to_owned_value());
            assert_eq!(got, Some(crate::Value::Text("s".into())), "case {i}");
        }
    }

    #[test]
    fn duplicated_item_attributes_are_malformed() {
        for attrs in [r#"port="1" port="2""#, r#"x="1" x="2""#] {
            let xml = format!(
                r#"<NessusClientData_v2><Report name="r"><ReportHost name="h"><ReportItem {attrs} pluginID="1"/></ReportHost></Report></NessusClientData_v2>"#
            );
            let err = NessusReader::new(xml.as_bytes())
                .find_map(Result::err)
                .expect("an error");
            assert!(
                matches!(&err, Error::Malformed { message, .. } if message.contains("duplicated attribute")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn newline_count_matches_naive() {
        let text: Vec<u8> = (0..1000u32)
            .map(|i| if i % 7 == 0 { b'\n' } else { (i % 251) as u8 })
            .collect();
        let text: Vec<u8> = text.iter().copied().cycle().take(20_000).collect();
        for len in [0, 1, 7, 8, 9, 100, 1000, 4079, 4080, 4081, 20_000] {
            let naive = text[..len].iter().filter(|&&b| b == b'\n').count() as u64;
            assert_eq!(count_newlines(&text[..len]), naive);
        }
    }
}
