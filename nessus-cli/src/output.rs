//! Output adapters for `--format`.

use std::io::{self, Write};

/// Turns a JSON-NL stream into one JSON array of the same objects, in the same order,
/// without buffering more than the bytes passing through.
///
/// Record lines never contain a raw newline (JSON escapes it inside strings), so every
/// `\n` in the stream is a record boundary and becomes `,\n`.
pub(crate) struct JsonArrayWriter<W: Write> {
    inner: W,
    /// Whether anything but whitespace has been written (decides whether `[` is due).
    started: bool,
    /// A line break seen but not yet known to be followed by another record: the JSON-NL
    /// framing may or may not end with a newline.
    pending_separator: bool,
}

impl<W: Write> JsonArrayWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self {
            inner,
            started: false,
            pending_separator: false,
        }
    }

    /// Closes the array and returns the inner writer, flushed.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if !self.started {
            self.inner.write_all(b"[")?;
        }
        self.inner.write_all(b"]\n")?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for JsonArrayWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while !rest.is_empty() {
            if rest[0] == b'\n' {
                if self.started {
                    self.pending_separator = true;
                }
                rest = &rest[1..];
                continue;
            }
            if !self.started {
                self.inner.write_all(b"[")?;
                self.started = true;
            } else if self.pending_separator {
                self.inner.write_all(b",\n")?;
                self.pending_separator = false;
            }
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            self.inner.write_all(&rest[..end])?;
            rest = &rest[end..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Ends a JSON-NL stream with a newline when it does not already: the predecessor framing
/// has none after the last line, but a terminal or `wc -l` expects one.
pub(crate) struct TrailingNewline<W: Write> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> TrailingNewline<W> {
    pub(crate) fn new(inner: W) -> Self {
        Self { inner, last: None }
    }

    /// Writes the final newline if needed and flushes.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        if self.last.is_some_and(|b| b != b'\n') {
            self.inner.write_all(b"\n")?;
        }
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for TrailingNewline<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(chunks: &[&str]) -> String {
        let mut writer = JsonArrayWriter::new(Vec::new());
        for chunk in chunks {
            writer.write_all(chunk.as_bytes()).unwrap();
        }
        String::from_utf8(writer.finish().unwrap()).unwrap()
    }

    #[test]
    fn lines_become_array_elements_whatever_the_chunking() {
        let expected = "[{\"a\": 1},\n{\"b\": \"x\\ny\"},\n{\"c\": 3}]\n";
        assert_eq!(
            convert(&["{\"a\": 1}\n{\"b\": \"x\\ny\"}\n{\"c\": 3}"]),
            expected
        );
        assert_eq!(
            convert(&["{\"a\": 1}", "\n", "{\"b\": \"x\\ny\"}\n", "{\"c\": 3}\n"]),
            expected
        );
        assert_eq!(
            convert(&["{\"a\"", ": 1}\n{\"b\": \"x\\ny\"}\n{\"c\"", ": 3}"]),
            expected
        );
        let parsed: serde_json::Value = serde_json::from_str(expected).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn empty_stream_is_an_empty_array() {
        assert_eq!(convert(&[]), "[]\n");
    }
}
