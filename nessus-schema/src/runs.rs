//! Convert's external sort for the default order (severity desc, host, port, plugin id,
//! document order) in bounded memory.
//!
//! Lines are buffered (at most [`RunLimits::run_bytes`]); a full buffer is sorted by
//! (host, severity desc, port, plugin id) with a stable sort and appended to a [`Spill`] as
//! one sorted *run* per host and severity (findings arrive grouped by host, so a host
//! rarely spans two runs). When every line fits in the buffer (most files) nothing is spilled: the
//! buffer is sorted once in the final order and read in place, which saves copying every
//! line and the spill's fresh pages (about 2 µs each on the VM we measure on). At the end
//! the runs are ordered by (severity desc, host rank) — ranks are only known once every
//! host has been seen — keeping creation order among runs of the same host and severity,
//! and those (usually one, several for a host larger than the run buffer or one that
//! appears twice in the file) are merged on (port, plugin id), the earlier run first on
//! ties: that is exactly the document-order tie-break. Memory: the run buffer, one small
//! descriptor per run (hosts × severities), and one read buffer per merged run when the
//! runs are in a temporary file (runs still in memory are read in place).

use std::io::{self, Write};
use std::sync::Arc;

use crate::spill::{Spill, SpillReader};

/// Sizes of the sort's buffers (configurable for tests).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunLimits {
    /// Rendered bytes buffered before a host's lines are written out as runs.
    pub(crate) run_bytes: usize,
    /// Bytes kept in memory before the runs move to a temporary file.
    pub(crate) memory_bytes: usize,
    /// Read buffer of one run while merging (shared out among the runs of a group).
    pub(crate) read_bytes: usize,
}

impl Default for RunLimits {
    fn default() -> Self {
        RunLimits {
            run_bytes: 2 * 1024 * 1024,
            memory_bytes: crate::spill::MEMORY_LIMIT,
            read_bytes: 256 * 1024,
        }
    }
}

/// Header of a stored line: port, plugin id, stored length, expanded length.
const HEADER: usize = 16;

/// The sort key of a buffered line, plus where its bytes are in the run buffer.
#[derive(Debug, Clone, Copy)]
struct Pending {
    host: u32,
    severity: i16,
    port: u32,
    plugin: u32,
    start: u32,
    len: u32,
    expanded: u32,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    severity: i16,
    host: u32,
    /// Which sorter's spill holds it (0 = this one, then appended ones in order).
    part: u32,
    start: u64,
    end: u64,
    count: u64,
}

/// Collects lines; see the module documentation.
#[derive(Debug)]
pub(crate) struct RunSorter {
    limits: RunLimits,
    spill: Spill,
    runs: Vec<Run>,
    pending: Vec<Pending>,
    buf: Vec<u8>,
    count: u64,
    /// Spills of sorters appended with [`RunSorter::append`] (parts 1, 2, ...).
    more: Vec<Spill>,
}

impl RunSorter {
    pub(crate) fn new(limits: RunLimits) -> RunSorter {
        RunSorter {
            limits,
            spill: Spill::with_limit(limits.memory_bytes),
            runs: Vec::new(),
            pending: Vec::new(),
            buf: Vec::new(),
            count: 0,
            more: Vec::new(),
        }
    }

    /// Lines pushed so far.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Adds one line. `severity` is -1 for a missing one (sorts lowest); a missing port or
    /// plugin id is `u32::MAX` (sorts last), as in the store.
    pub(crate) fn push(
        &mut self,
        host: u32,
        severity: i16,
        port: u32,
        plugin: u32,
        line: &[u8],
        expanded: u64,
    ) -> io::Result<()> {
        self.push_rendered(host, severity, port, plugin, |buf| {
            buf.extend_from_slice(line);
            expanded
        })
    }

    /// Adds the line `render` appends to the buffer it is given, returning the line's
    /// expanded length: rendering in place saves a copy of every line and, for a line
    /// with a large text, the fresh pages of a second buffer that large.
    pub(crate) fn push_rendered(
        &mut self,
        host: u32,
        severity: i16,
        port: u32,
        plugin: u32,
        render: impl FnOnce(&mut Vec<u8>) -> u64,
    ) -> io::Result<()> {
        if self.buf.capacity() == 0 {
            // As in `Spill`: one reservation instead of copies at each doubling.
            self.buf.reserve_exact(self.limits.run_bytes);
        }
        let start = self.buf.len();
        let expanded = render(&mut self.buf);
        // The buffer is flushed once it holds `run_bytes`, so `start` is small and only a
        // line of about 4 GiB (records are capped far below) can fail here.
        let too_long = || io::Error::other("a rendered finding is larger than 4 GiB");
        let len = u32::try_from(self.buf.len() - start).map_err(|_| too_long())?;
        let expanded = u32::try_from(expanded).map_err(|_| too_long())?;
        let start = u32::try_from(start)
            .ok()
            .filter(|s| s.checked_add(len).is_some())
            .ok_or_else(too_long)?;
        self.pending.push(Pending {
            host,
            severity,
            port,
            plugin,
            start,
            len,
            expanded,
        });
        self.count += 1;
        if self.buf.len() >= self.limits.run_bytes {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes the buffered lines out as sorted runs, one per host and severity.
    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Stable: equal keys keep document order (a host that appears twice in the buffer
        // gets one run holding both parts, in document order).
        self.pending.sort_by(|a, b| {
            a.host
                .cmp(&b.host)
                .then(b.severity.cmp(&a.severity))
                .then(a.port.cmp(&b.port))
                .then(a.plugin.cmp(&b.plugin))
        });
        let mut i = 0;
        while i < self.pending.len() {
            let (host, severity) = (self.pending[i].host, self.pending[i].severity);
            let start = self.spill.len();
            let mut count = 0;
            while let Some(p) = self
                .pending
                .get(i)
                .filter(|p| p.host == host && p.severity == severity)
            {
                let mut header = [0u8; HEADER];
                header[0..4].copy_from_slice(&p.port.to_le_bytes());
                header[4..8].copy_from_slice(&p.plugin.to_le_bytes());
                header[8..12].copy_from_slice(&p.len.to_le_bytes());
                header[12..16].copy_from_slice(&p.expanded.to_le_bytes());
                self.spill.write_all(&header)?;
                let at = p.start as usize;
                self.spill.write_all(&self.buf[at..at + p.len as usize])?;
                count += 1;
                i += 1;
            }
            self.runs.push(Run {
                severity,
                host,
                part: 0,
                start,
                end: self.spill.len(),
                count,
            });
        }
        self.pending.clear();
        self.buf.clear();
        if self.buf.capacity() > self.limits.run_bytes * 2 {
            // One huge line grew the buffer: do not keep it.
            self.buf = Vec::new();
        }
        Ok(())
    }

    /// Takes over the runs of `later`, which sorted the lines of a later part of the same
    /// document; `host_map` maps its host ids to this sorter's. Its runs come after ours,
    /// so on equal keys its lines come after ours: document order. No line can be pushed
    /// afterwards.
    pub(crate) fn append(&mut self, mut later: RunSorter, host_map: &[u32]) -> io::Result<()> {
        self.flush()?;
        later.flush()?;
        let base = 1 + self.more.len() as u32;
        for mut run in later.runs {
            run.host = *host_map
                .get(run.host as usize)
                .ok_or_else(|| io::Error::other("a run of an unknown host"))?;
            run.part += base;
            self.runs.push(run);
        }
        self.more.push(later.spill);
        self.more.extend(later.more);
        self.count += later.count;
        Ok(())
    }

    /// Drops every line of the hosts `keep` refuses (runs hold one host each, so whole
    /// runs go). No line can be pushed afterwards.
    pub(crate) fn retain_hosts(&mut self, keep: impl Fn(u32) -> bool) -> io::Result<()> {
        if self.runs.is_empty() && self.more.is_empty() {
            // Still all in the buffer (read in place by `finish`).
            self.pending.retain(|p| keep(p.host));
            self.count = self.pending.len() as u64;
            return Ok(());
        }
        self.flush()?;
        self.runs.retain(|r| keep(r.host));
        self.count = self.runs.iter().map(|r| r.count).sum();
        Ok(())
    }

    /// Ends the input; `rank` gives each host's position in the default order.
    pub(crate) fn finish(mut self, rank: &[u32]) -> io::Result<SortedLines> {
        let rank_of = |h: u32| rank.get(h as usize).copied().unwrap_or(u32::MAX);
        if self.runs.is_empty() && self.more.is_empty() {
            // Everything is still in the buffer: sort it in the final order and read it in
            // place. Stable: equal keys keep document order, as the merge does.
            self.pending.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(rank_of(a.host).cmp(&rank_of(b.host)))
                    .then(a.port.cmp(&b.port))
                    .then(a.plugin.cmp(&b.plugin))
            });
            return Ok(SortedLines(Sorted::InPlace {
                buf: self.buf,
                order: self.pending,
            }));
        }
        self.flush()?;
        // Stable: runs of one host and severity stay in creation (document) order.
        self.runs.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(rank_of(a.host).cmp(&rank_of(b.host)))
        });
        // Runs that never left memory are read in place: no copy into read buffers.
        let sources = std::iter::once(self.spill)
            .chain(self.more)
            .map(|spill| {
                Ok(match spill.finish()? {
                    SpillReader::Memory(m) => Source {
                        src: SpillReader::Memory(Vec::new()),
                        memory: Some(Arc::new(m)),
                    },
                    file => Source {
                        src: file,
                        memory: None,
                    },
                })
            })
            .collect::<io::Result<_>>()?;
        Ok(SortedLines(Sorted::Merged(Merge {
            sources,
            runs: self.runs,
            next_run: 0,
            group: Vec::new(),
            pos: 0,
            read_bytes: self.limits.read_bytes,
            spare: Vec::new(),
        })))
    }
}

/// One part's spilled runs.
#[derive(Debug)]
struct Source {
    src: SpillReader,
    /// The spilled bytes when they stayed in memory (then `src` is empty).
    memory: Option<Arc<Vec<u8>>>,
}

/// The lines in the default order.
#[derive(Debug)]
pub(crate) struct SortedLines(Sorted);

#[derive(Debug)]
enum Sorted {
    /// Nothing was spilled: the sort buffer, with its lines' index in the final order.
    InPlace { buf: Vec<u8>, order: Vec<Pending> },
    /// Spilled runs, merged as they are read.
    Merged(Merge),
}

/// The merge of spilled runs, read forwards.
#[derive(Debug)]
struct Merge {
    /// Indexed by [`Run::part`].
    sources: Vec<Source>,
    runs: Vec<Run>,
    /// First run not yet opened.
    next_run: usize,
    /// Open runs of the current (severity, host) group, in creation order.
    group: Vec<RunCursor>,
    /// Position of the next line.
    pos: u64,
    read_bytes: usize,
    /// Buffers of finished runs, reused by the next ones (no zero-filling per group).
    spare: Vec<Vec<u8>>,
}

/// A stored line: its bytes (with references) and its expanded length.
pub(crate) struct StoredLine<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) expanded: u64,
    /// The part (sorter) it came from: its shared-value references are that part's.
    pub(crate) part: usize,
}

impl SortedLines {
    /// The line at position `pos` (positions are asked for in increasing order).
    pub(crate) fn line(&mut self, pos: u64) -> io::Result<StoredLine<'_>> {
        match &mut self.0 {
            Sorted::InPlace { buf, order } => {
                let p = usize::try_from(pos)
                    .ok()
                    .and_then(|i| order.get(i))
                    .ok_or_else(|| io::Error::other("no more lines"))?;
                let at = p.start as usize;
                Ok(StoredLine {
                    bytes: &buf[at..at + p.len as usize],
                    expanded: u64::from(p.expanded),
                    part: 0,
                })
            }
            Sorted::Merged(merge) => merge.line(pos),
        }
    }
}

impl Merge {
    fn line(&mut self, pos: u64) -> io::Result<StoredLine<'_>> {
        if pos < self.pos {
            return Err(io::Error::other("lines are read forwards only"));
        }
        loop {
            self.refresh()?;
            if self.group.is_empty() {
                let (end, count) = self.group_end();
                if end == self.next_run {
                    return Err(io::Error::other("no more lines"));
                }
                if self.pos + count <= pos {
                    // Skip a whole group without reading it.
                    self.pos += count;
                    self.next_run = end;
                    continue;
                }
                self.open_group(end)?;
                if self.group.is_empty() {
                    continue;
                }
            }
            let i = self.best();
            self.pos += 1;
            if self.pos > pos {
                return Ok(self.group[i].take());
            }
            self.group[i].stale = true;
        }
    }

    /// Moves past consumed heads and drops finished runs.
    fn refresh(&mut self) -> io::Result<()> {
        for c in &mut self.group {
            if c.stale {
                c.load_head(&mut self.sources[c.part].src)?;
            }
        }
        let spare = &mut self.spare;
        self.group.retain_mut(|c| {
            if c.is_done()
                && let Bytes::Owned(buf) = &mut c.buf
            {
                spare.push(std::mem::take(buf));
            }
            !c.is_done()
        });
        Ok(())
    }

    /// End (exclusive run index) and line count of the group starting at `next_run`.
    fn group_end(&self) -> (usize, u64) {
        let Some(first) = self.runs.get(self.next_run) else {
            return (self.next_run, 0);
        };
        let mut end = self.next_run;
        let mut count = 0;
        while let Some(r) = self
            .runs
            .get(end)
            .filter(|r| r.severity == first.severity && r.host == first.host)
        {
            count += r.count;
            end += 1;
        }
        (end, count)
    }

    fn open_group(&mut self, end: usize) -> io::Result<()> {
        let share = (self.read_bytes / (end - self.next_run)).max(4096);
        for run in &self.runs[self.next_run..end] {
            let source = self
                .sources
                .get_mut(run.part as usize)
                .ok_or_else(|| io::Error::other("a run of an unknown part"))?;
            let mut c = match &source.memory {
                Some(memory) => RunCursor::in_memory(run, memory.clone())?,
                None => RunCursor::new(run, share, self.spare.pop().unwrap_or_default()),
            };
            c.load_head(&mut source.src)?;
            if !c.is_done() {
                self.group.push(c);
            }
        }
        self.next_run = end;
        Ok(())
    }

    /// The cursor whose head comes next.
    fn best(&self) -> usize {
        let mut best = 0;
        for (i, c) in self.group.iter().enumerate().skip(1) {
            // Strictly smaller: on ties the earlier run wins (document order).
            if c.key() < self.group[best].key() {
                best = i;
            }
        }
        best
    }
}

/// Reads one run forwards through a buffer. Its head line is always loaded (unless the
/// run is done), so the merge can compare keys.
#[derive(Debug)]
struct RunCursor {
    /// Spill offset of the next byte to read into `buf`.
    next: u64,
    end: u64,
    left: u64,
    buf: Bytes,
    /// Start of the head line's header in `buf`.
    at: usize,
    /// Bytes of `buf` that are filled.
    filled: usize,
    chunk: usize,
    /// Whether `take` consumed the head and the next one must be loaded.
    stale: bool,
    part: usize,
}

impl RunCursor {
    fn new(run: &Run, chunk: usize, buf: Vec<u8>) -> RunCursor {
        RunCursor {
            next: run.start,
            end: run.end,
            left: run.count,
            buf: Bytes::Owned(buf),
            at: 0,
            filled: 0,
            chunk,
            stale: false,
            part: run.part as usize,
        }
    }

    /// A cursor over a run of an in-memory spill: the whole run is "filled" already.
    fn in_memory(run: &Run, memory: Arc<Vec<u8>>) -> io::Result<RunCursor> {
        let range = usize::try_from(run.start)
            .ok()
            .zip(usize::try_from(run.end).ok())
            .filter(|&(start, end)| start <= end && end <= memory.len())
            .ok_or_else(|| io::Error::other("a run past the end of a spill"))?;
        Ok(RunCursor {
            next: run.end,
            end: run.end,
            left: run.count,
            buf: Bytes::Shared(memory),
            at: range.0,
            filled: range.1,
            chunk: 0,
            stale: false,
            part: run.part as usize,
        })
    }

    fn is_done(&self) -> bool {
        self.left == 0
    }

    fn u32_at(&self, i: usize) -> u32 {
        let b = &self.buf.as_slice()[self.at + i..self.at + i + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn key(&self) -> (u32, u32) {
        (self.u32_at(0), self.u32_at(4))
    }

    /// Ensures `need` bytes from `at` are in the buffer.
    fn ensure(&mut self, src: &mut SpillReader, need: usize) -> io::Result<()> {
        let have = self.filled - self.at;
        if have >= need {
            return Ok(());
        }
        let missing = (need - have) as u64;
        let remaining = self.end - self.next;
        let Bytes::Owned(buf) = &mut self.buf else {
            return Err(io::Error::other("a spilled run is shorter than recorded"));
        };
        if missing > remaining {
            return Err(io::Error::other("a spilled run is shorter than recorded"));
        }
        buf.copy_within(self.at..self.filled, 0);
        self.filled = have;
        self.at = 0;
        let want = remaining.min(missing.max(self.chunk as u64)) as usize;
        if buf.len() < self.filled + want {
            buf.resize(self.filled + want, 0);
        }
        src.read_at(self.next, &mut buf[self.filled..self.filled + want])?;
        self.next += want as u64;
        self.filled += want;
        Ok(())
    }

    /// Loads the head line (header and bytes).
    fn load_head(&mut self, src: &mut SpillReader) -> io::Result<()> {
        if self.stale {
            let len = self.u32_at(8) as usize;
            self.at += HEADER + len;
            self.stale = false;
            self.left -= 1;
        }
        if self.left == 0 {
            return Ok(());
        }
        self.ensure(src, HEADER)?;
        let len = self.u32_at(8) as usize;
        self.ensure(src, HEADER + len)
    }

    /// The head line; the next call to `load_head` moves past it.
    fn take(&mut self) -> StoredLine<'_> {
        let len = self.u32_at(8) as usize;
        let expanded = u64::from(self.u32_at(12));
        self.stale = true;
        StoredLine {
            bytes: &self.buf.as_slice()[self.at + HEADER..self.at + HEADER + len],
            expanded,
            part: self.part,
        }
    }
}

/// A cursor's bytes: its own read buffer, or the whole in-memory spill it reads in place
/// (shared, not borrowed: the cursors live in the same struct as the spilled bytes).
#[derive(Debug)]
enum Bytes {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            Bytes::Owned(v) => v,
            Bytes::Shared(m) => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A line: (host, severity, port, plugin); its text is its document position.
    type Key = (u32, i16, u32, u32);

    fn sorted(lines: &[Key], rank: &[u32], limits: RunLimits) -> Vec<u64> {
        let mut sorter = RunSorter::new(limits);
        for (i, &(host, severity, port, plugin)) in lines.iter().enumerate() {
            let text = format!("{i:>width$}", width = 1 + i % 40);
            sorter
                .push(host, severity, port, plugin, text.as_bytes(), 0)
                .unwrap();
        }
        let mut out = sorter.finish(rank).unwrap();
        (0..lines.len() as u64)
            .map(|pos| {
                let line = out.line(pos).unwrap();
                std::str::from_utf8(line.bytes)
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap()
            })
            .collect()
    }

    proptest! {
        /// In-place (everything fits), spilled to memory and spilled to a file in tiny
        /// runs: all three give the stable default order, whatever the host order in the
        /// document (hosts may come back after another one).
        #[test]
        fn every_buffer_size_gives_the_stable_default_order(
            lines in prop::collection::vec((0u32..4, -1i16..5, 0u32..3, 0u32..3), 0..200),
            rank in Just(vec![0u32, 1, 2, 3]).prop_shuffle(),
        ) {
            let mut want: Vec<u64> = (0..lines.len() as u64).collect();
            let key = |i: &u64| {
                let (host, severity, port, plugin) = lines[*i as usize];
                (std::cmp::Reverse(severity), rank[host as usize], port, plugin)
            };
            want.sort_by_key(key);
            let roomy = RunLimits::default();
            let tiny_in_memory = RunLimits { run_bytes: 64, memory_bytes: 1 << 20, read_bytes: 1 };
            let tiny_on_disk = RunLimits { run_bytes: 64, memory_bytes: 0, read_bytes: 1 };
            for limits in [roomy, tiny_in_memory, tiny_on_disk] {
                prop_assert_eq!(&sorted(&lines, &rank, limits), &want, "{:?}", limits);
            }
        }
    }
}
