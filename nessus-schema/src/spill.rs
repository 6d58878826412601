//! Append-only scratch bytes for convert: kept in memory up to a limit, then moved to an
//! anonymous temporary file, so small inputs never touch the disk and large ones use a
//! bounded amount of memory.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Cursor, Seek, SeekFrom, Write};

use crate::store::read_at;

/// Bytes kept in memory before a spill moves to a temporary file.
pub(crate) const MEMORY_LIMIT: usize = 1024 * 1024;

/// The writing side. Implements [`Write`]; [`Spill::len`] is the next write's offset.
#[derive(Debug)]
pub(crate) struct Spill {
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
    limit: usize,
}

impl Spill {
    pub(crate) fn with_limit(limit: usize) -> Spill {
        Spill {
            memory: Vec::new(),
            file: None,
            len: 0,
            limit,
        }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Stops writing; the bytes can then be read back.
    pub(crate) fn finish(self) -> io::Result<SpillReader> {
        Ok(match self.file {
            None => SpillReader::Memory(self.memory),
            Some(w) => SpillReader::File(w.into_inner().map_err(|e| e.into_error())?),
        })
    }
}

impl Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > self.limit {
            let mut file = BufWriter::with_capacity(256 * 1024, tempfile::tempfile()?);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(f) => f.write_all(buf)?,
            None => {
                if self.memory.capacity() == 0 {
                    // Reserved once, up to the limit: growing by doubling would copy the
                    // bytes and touch fresh pages at every step, and a large reservation
                    // costs only the pages actually written.
                    self.memory
                        .reserve_exact(self.limit.min(MEMORY_LIMIT).max(buf.len()));
                }
                self.memory.extend_from_slice(buf)
            }
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reading side of a finished [`Spill`].
#[derive(Debug)]
pub(crate) enum SpillReader {
    Memory(Vec<u8>),
    File(File),
}

impl SpillReader {
    /// Fills `buf` from `offset`.
    pub(crate) fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        match self {
            SpillReader::Memory(m) => {
                let src = usize::try_from(offset)
                    .ok()
                    .and_then(|start| m.get(start..start.checked_add(buf.len())?))
                    .ok_or_else(|| io::Error::other("read past the end of a spill"))?;
                buf.copy_from_slice(src);
                Ok(())
            }
            SpillReader::File(f) => read_at(f, offset, buf),
        }
    }

    /// Everything, from the start, as a buffered reader.
    pub(crate) fn into_reader(self) -> io::Result<Box<dyn BufRead>> {
        Ok(match self {
            SpillReader::Memory(m) => Box::new(Cursor::new(m)),
            SpillReader::File(mut f) => {
                f.seek(SeekFrom::Start(0))?;
                Box::new(BufReader::new(f))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn moves_to_a_file_past_the_limit_and_reads_back() {
        for limit in [0, 5, 1000] {
            let mut s = Spill::with_limit(limit);
            s.write_all(b"hello ").unwrap();
            s.write_all(b"world").unwrap();
            assert_eq!(s.len(), 11);
            let mut r = s.finish().unwrap();
            assert_eq!(matches!(r, SpillReader::Memory(_)), limit >= 11);
            let mut buf = [0u8; 5];
            r.read_at(6, &mut buf).unwrap();
            assert_eq!(&buf, b"world");
            assert!(r.read_at(8, &mut buf).is_err());
            let mut all = String::new();
            r.into_reader().unwrap().read_to_string(&mut all).unwrap();
            assert_eq!(all, "hello world");
        }
    }
}
