//! `convert` of a seekable file on two cores: the document is split at a `<ReportHost`
//! near its middle and the halves are parsed by two threads.
//!
//! Parsing is ~78% of convert and a parser→renderer pipeline moved every finding between
//! cores for too small an overlap; splitting the input keeps each finding on one core.
//!
//! - A candidate split is the first `<ReportHost` (followed by a space, a tab, a line
//!   break, `>` or `/`) found from the middle of the file by a plain byte search. Whether
//!   it is a real element start (and not text inside a comment, a CDATA section or an
//!   attribute value) is only known to a parser that read everything before it.
//! - The first half is the ordinary sequential parse, told to pause if it gets to exactly
//!   that offset between two children of `<NessusClientData_v2><Report>`
//!   (`NessusReader::stop_at`). If it never does, it simply reads the document to its
//!   end: that is the sequential result, and the second half's work is dropped.
//! - The second half is parsed from the candidate offset behind a synthetic
//!   `<NessusClientData_v2><Report>` prefix, so it expects what may follow a report's
//!   child: more elements, then `</Report></NessusClientData_v2>`. It may not see a second
//!   `Report` (whose name would change the header).
//! - The halves are joined as if one pass had read both: the second half's host ids are
//!   renumbered in first-appearance order, its sorted runs come after the first half's (so
//!   document order breaks ties), its shared values stay its own, its host and compliance
//!   lines follow, and the summaries (scan start and end, ...) are combined.
//! - Anything irregular in the second half (a second `Report`, more distinct child names
//!   than the parser records, unknown fields) resumes the paused first half to the end: a
//!   paused parser continues exactly as if it had never paused. Any error in either half
//!   reparses the whole file sequentially, so errors (kind, byte, line) are the
//!   sequential ones. A custom sort, or a file below the threshold, is converted
//!   sequentially.
//!
//! Memory: two parsers, two run buffers and two sets of shared values.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::convert::{
    Collected, Outcome, check_fields, convert_limited, is_default_order, new_parser,
};
use crate::encoding::{self, Detected};
use crate::error::{Error, Result};
use crate::parser::{MAX_INTERNED_NAMES, NessusReader};
use crate::query::Query;
use crate::record::Record;
use crate::runs::RunLimits;
use crate::store::{IngestOptions, PageInfo, read_at};

/// Files smaller than this are converted on one thread (the second thread's set-up and
/// the join cost more than they save).
pub const DEFAULT_PARALLEL_MIN_BYTES: u64 = 16 * 1024 * 1024;

/// How far past the middle a split point is looked for.
const SEARCH_BYTES: u64 = 64 * 1024 * 1024;

/// Read buffer of each half.
const READ_BUFFER: usize = 64 * 1024;

/// What the second half's parser sees before the bytes at the split.
const CONTINUATION_PREFIX: &[u8] = b"<NessusClientData_v2><Report>";

/// Converts the `.nessus` file at `path` to JSON-NL for `query`: the same bytes as
/// [`convert`](crate::convert) on the file's contents, parsed on two threads when the file
/// is large enough (see [`IngestOptions::parallel_min_bytes`]).
pub fn convert_file<W: Write>(path: &Path, writer: W, query: &Query) -> Result<PageInfo> {
    convert_file_with(path, writer, query, &IngestOptions::default())
}

/// [`convert_file`] with parser limits and the parallel threshold.
pub fn convert_file_with<W: Write>(
    path: &Path,
    writer: W,
    query: &Query,
    options: &IngestOptions,
) -> Result<PageInfo> {
    convert_file_limited(path, writer, query, options, RunLimits::default()).map(|(info, _)| info)
}

/// How the file was converted (for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// One thread.
    Sequential,
    /// Both halves were used.
    Split,
    /// Two threads were started, but the first half's result was used alone (no real
    /// boundary at the candidate, or an irregular second half).
    FirstHalfOnly,
    /// An error: the file was converted again sequentially.
    Reparsed,
}

/// The parse phase's result.
enum Parsed<'q> {
    Ready(Box<Collected<'q>>, Route),
    /// Convert the whole file again on one thread.
    Reparse,
}

pub(crate) fn convert_file_limited<W: Write>(
    path: &Path,
    writer: W,
    query: &Query,
    options: &IngestOptions,
    limits: RunLimits,
) -> Result<(PageInfo, Route)> {
    let open = || File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e));
    let sequential = |file: File, writer: W, how: Route| {
        let reader = BufReader::with_capacity(READ_BUFFER, Counted::new(file, options));
        convert_limited(reader, writer, query, options, limits).map(|info| (info, how))
    };
    let mut file = open()?;
    let len = file
        .metadata()
        .map_err(|e| Error::io(format!("reading the size of {}", path.display()), e))?
        .len();
    let min = options
        .parallel_min_bytes
        .unwrap_or(DEFAULT_PARALLEL_MIN_BYTES);
    if len < min || !is_default_order(query) {
        return sequential(file, writer, Route::Sequential);
    }
    // A read error here shows up again in the sequential parse, with its position.
    let split = if is_utf8(&mut file, len) {
        find_split(&mut file, len).ok().flatten()
    } else {
        None
    };
    // Outside Unix, `read_at` moves the file position.
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
    let Some(split) = split else {
        return sequential(file, writer, Route::Sequential);
    };
    match parse_halves(path, file, split, query, options, limits) {
        Parsed::Ready(collected, how) => collected.serve(writer).map(|info| (info, how)),
        Parsed::Reparse => sequential(open()?, writer, Route::Reparsed),
    }
}

/// Whether the file is read as is (UTF-8): a decoded document's second half would need
/// the decoder's state at the split. A read error counts as no (the sequential parse
/// reports it).
fn is_utf8(file: &mut File, len: u64) -> bool {
    let mut head = vec![0u8; encoding::HEAD_BYTES.min(usize::try_from(len).unwrap_or(usize::MAX))];
    read_at(file, 0, &mut head).is_ok() && encoding::detect(&head) == Detected::Utf8
}

/// The first `<ReportHost` tag-like byte sequence at or after the middle of the file.
fn find_split(file: &mut File, len: u64) -> std::io::Result<Option<u64>> {
    const NEEDLE: &[u8] = b"<ReportHost";
    const CHUNK: usize = 256 * 1024;
    let start = len / 2;
    let stop = len.min(start.saturating_add(SEARCH_BYTES));
    let mut buf = vec![0u8; CHUNK];
    let mut at = start;
    while at < stop {
        // One byte past the needle is needed to see what follows it.
        let n = (stop - at).min(CHUNK as u64) as usize;
        let chunk = &mut buf[..n];
        read_at(file, at, chunk)?;
        let hit = chunk.windows(NEEDLE.len() + 1).position(|w| {
            w.starts_with(NEEDLE)
                && matches!(w[NEEDLE.len()], b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/')
        });
        if let Some(i) = hit {
            return Ok(Some(at + i as u64));
        }
        if n <= NEEDLE.len() {
            break;
        }
        // Overlap so that a needle across two chunks is found.
        at += (n - NEEDLE.len()) as u64;
    }
    Ok(None)
}

/// What the second half hands back.
struct SecondHalf<'q> {
    collected: Collected<'q>,
    names: Vec<String>,
}

fn parse_second<'q>(
    path: &Path,
    split: u64,
    query: &'q Query,
    options: &IngestOptions,
    limits: RunLimits,
    cancel: &AtomicBool,
) -> Result<Option<SecondHalf<'q>>> {
    let mut file =
        File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    file.seek(SeekFrom::Start(split))
        .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
    let reader = Cursor::new(CONTINUATION_PREFIX).chain(BufReader::with_capacity(
        READ_BUFFER,
        Counted::new(file, options),
    ));
    let mut parser = new_parser(reader, query, options);
    // The prefix's own `Report` start.
    if !matches!(parser.next_record()?, Some(Record::Scan(_))) {
        return Ok(None);
    }
    let mut collected = Collected::new(query, limits);
    if collected.collect(&mut parser, Some(cancel))? != Outcome::End {
        return Ok(None);
    }
    if parser.seen_field_count() >= MAX_INTERNED_NAMES {
        return Ok(None);
    }
    let names = parser.seen_field_names().map(str::to_owned).collect();
    Ok(Some(SecondHalf { collected, names }))
}

fn parse_halves<'q>(
    path: &Path,
    file: File,
    split: u64,
    query: &'q Query,
    options: &IngestOptions,
    limits: RunLimits,
) -> Parsed<'q> {
    let cancel = AtomicBool::new(false);
    let cancel = &cancel;
    std::thread::scope(|scope| {
        let second = scope.spawn(move || parse_second(path, split, query, options, limits, cancel));

        let mut parser = new_parser(
            BufReader::with_capacity(READ_BUFFER, Counted::new(file, options)),
            query,
            options,
        );
        parser.stop_at(split);
        let mut first = Collected::new(query, limits);
        let outcome = first.collect(&mut parser, None);
        let paused = outcome.is_ok() && parser.stopped();
        if !paused {
            // The second half's work cannot be used.
            cancel.store(true, Ordering::Relaxed);
        }
        // A panic in the second half is treated like an irregular second half.
        let second = second.join().unwrap_or(Ok(None));
        if outcome.is_err() {
            return Parsed::Reparse;
        }
        if paused {
            if let Ok(Some(half)) = second
                && let Some(joined) = join(&mut first, &parser, half)
            {
                return match joined {
                    Ok(()) => Parsed::Ready(Box::new(first), Route::Split),
                    Err(_) => Parsed::Reparse,
                };
            }
            parser.resume();
            if first.collect(&mut parser, None).is_err() {
                return Parsed::Reparse;
            }
        }
        finish_alone(first, &parser)
    })
}

/// Appends the second half to the first, unless the combination could differ from one
/// pass (`None`: resume the first half instead).
fn join<R: BufRead>(
    first: &mut Collected<'_>,
    parser: &NessusReader<R>,
    half: SecondHalf<'_>,
) -> Option<Result<()>> {
    // One pass records at most MAX_INTERNED_NAMES names: past that, the union of the
    // halves' names could accept a field one pass rejects.
    if parser.seen_field_count() + half.names.len() >= MAX_INTERNED_NAMES {
        return None;
    }
    let seen: HashSet<&str> = parser
        .seen_field_names()
        .chain(half.names.iter().map(String::as_str))
        .collect();
    // The error's suggestion comes from one pass's names: let the resumed parse report it.
    check_fields(first.query(), seen).ok()?;
    Some(first.append(half.collected))
}

/// The first half read the whole document.
fn finish_alone<'q, R: BufRead>(first: Collected<'q>, parser: &NessusReader<R>) -> Parsed<'q> {
    match check_fields(first.query(), parser.seen_field_names().collect()) {
        Ok(()) => Parsed::Ready(Box::new(first), Route::FirstHalfOnly),
        Err(_) => Parsed::Reparse,
    }
}

/// A file reader that adds what it reads to [`IngestOptions::bytes_read`], so a caller
/// can show progress while both halves are read on their own threads. One atomic add
/// per buffer refill (hundreds of KiB), so it costs nothing measurable.
struct Counted {
    file: File,
    bytes: Option<Arc<AtomicU64>>,
}

impl Counted {
    fn new(file: File, options: &IngestOptions) -> Counted {
        Counted {
            file,
            bytes: options.bytes_read.clone(),
        }
    }
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        if let Some(bytes) = &self.bytes {
            bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::QueryParams;

    fn host(i: usize) -> String {
        format!(
            "<ReportHost name=\"10.0.0.{i}\"><HostProperties><tag name=\"HOST_START_TIMESTAMP\">{}</tag>\
             <tag name=\"HOST_START\">start {i}</tag><tag name=\"HOST_END\">end {i}</tag></HostProperties>\
             <ReportItem port=\"{i}\" svc_name=\"x\" protocol=\"tcp\" severity=\"{}\" pluginID=\"{}\" pluginName=\"p\" pluginFamily=\"f\">\
             <description>{}</description></ReportItem></ReportHost>\n",
            1000 - i,
            i % 5,
            i % 3,
            "d".repeat(200),
        )
    }

    fn doc(hosts: std::ops::Range<usize>, middle: &str) -> String {
        let mid = (hosts.start + hosts.end) / 2;
        let mut s = String::from(
            "<?xml version=\"1.0\" ?>\n<NessusClientData_v2><Policy><policyName>P</policyName></Policy>\n<Report name=\"R\">\n",
        );
        for i in hosts {
            if i == mid {
                s.push_str(middle);
            }
            s.push_str(&host(i));
        }
        s.push_str("</Report>\n</NessusClientData_v2>\n");
        s
    }

    /// Which route each kind of document takes, and that the output is the sequential one.
    #[test]
    fn routes() {
        let dir = tempfile::tempdir().unwrap();
        let pad = "y".repeat(20_000);
        let cases = [
            (doc(0..40, ""), Route::Split),
            (doc(0..1, ""), Route::Sequential),
            (
                doc(0..40, &format!("<!-- {pad} <ReportHost name=\"x\"> -->")),
                Route::FirstHalfOnly,
            ),
            // A second report after the split: its name would be the header's.
            (
                doc(30..40, "").replace(
                    "<ReportHost name=\"10.0.0.38\"",
                    "</Report><Report name=\"S\"><ReportHost name=\"10.0.0.38\"",
                ),
                Route::FirstHalfOnly,
            ),
            // One before it: the first half sees it.
            (
                doc(30..40, "").replace(
                    "<ReportHost name=\"10.0.0.32\"",
                    "</Report><Report name=\"S\"><ReportHost name=\"10.0.0.32\"",
                ),
                Route::Split,
            ),
            (
                doc(0..40, "").replace("10.0.0.35\"", "10.0.0.35"),
                Route::Reparsed,
            ),
        ];
        let q = Query::from_params(&QueryParams {
            page: Some(0),
            include_hosts: true,
            ..QueryParams::default()
        })
        .unwrap();
        let options = IngestOptions {
            parallel_min_bytes: Some(0),
            ..IngestOptions::default()
        };
        for (i, (text, route)) in cases.iter().enumerate() {
            let path = dir.path().join(format!("{i}.nessus"));
            std::fs::write(&path, text).unwrap();
            let mut got = Vec::new();
            let out = convert_file_limited(&path, &mut got, &q, &options, RunLimits::default());
            let mut want = Vec::new();
            let expected = crate::convert(text.as_bytes(), &mut want, &q);
            assert_eq!(
                out.as_ref().map(|(_, r)| *r).unwrap_or(Route::Reparsed),
                *route,
                "case {i}"
            );
            assert_eq!(
                format!("{:?}", out.map(|(info, _)| info)),
                format!("{expected:?}"),
                "case {i}"
            );
            assert!(got == want, "case {i}");
        }
    }
}
