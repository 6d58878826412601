//! Documents in a character encoding other than UTF-8.
//!
//! Nessus writes UTF-8, but files that went through other tools turn up as UTF-16 (with a
//! byte order mark, as Windows editors save "Unicode"), or with a declared single-byte
//! encoding such as ISO-8859-1. The XML reader reads UTF-8 only, so such a document is
//! decoded to UTF-8 (`encoding_rs`, streaming, in bounded buffers) before it reaches the
//! reader. Detection looks at the first bytes only: a byte order mark, the UTF-16 shape of
//! `<?`, else the `encoding` of the XML declaration. UTF-8 input costs one look at its
//! first buffer and nothing after.
//!
//! Byte offsets in errors about a decoded document count bytes of its UTF-8 decoding.

use std::io::{self, Read};

use encoding_rs::{Decoder, DecoderResult, Encoding, REPLACEMENT, UTF_8, UTF_16BE, UTF_16LE};

/// Leading bytes detection may look at (an XML declaration is far shorter).
pub(crate) const HEAD_BYTES: usize = 1024;

/// Undecoded bytes read from the input at once.
const RAW_BYTES: usize = 64 * 1024;

/// What the first bytes of a document say about its encoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Detected {
    /// UTF-8 (or ASCII): read as is.
    Utf8,
    /// To be decoded from this encoding.
    Decode(&'static Encoding),
    /// The declaration names an encoding that cannot be read (the label as written).
    Unsupported(String),
}

/// Whether [`detect`] would decide differently with more than `head` (which is not the
/// whole input): a shorter head than the smallest signature, or an XML declaration that
/// has not ended yet.
pub(crate) fn needs_more(head: &[u8]) -> bool {
    if head.len() >= HEAD_BYTES {
        return false;
    }
    if head.len() < 4 {
        return true;
    }
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    head.starts_with(b"<?xml") && !head.windows(2).any(|w| w == b"?>")
}

/// The encoding of a document that starts with `head`.
pub(crate) fn detect(head: &[u8]) -> Detected {
    if let Some((encoding, _)) = Encoding::for_bom(head) {
        return if encoding == UTF_8 {
            Detected::Utf8
        } else {
            Detected::Decode(encoding)
        };
    }
    // `<?` in UTF-16 without a byte order mark.
    if head.starts_with(b"<\0?\0") {
        return Detected::Decode(UTF_16LE);
    }
    if head.starts_with(b"\0<\0?") {
        return Detected::Decode(UTF_16BE);
    }
    let Some(label) = declared_encoding(head) else {
        return Detected::Utf8;
    };
    // ASCII is UTF-8's subset: reading it as UTF-8 changes nothing for a true ASCII
    // document and reads a mislabelled UTF-8 one right (WHATWG maps these labels to
    // windows-1252, which would garble it).
    if ["us-ascii", "ascii", "ansi_x3.4-1968"]
        .iter()
        .any(|ascii| label.eq_ignore_ascii_case(ascii.as_bytes()))
    {
        return Detected::Utf8;
    }
    match Encoding::for_label(label) {
        // The bytes are 8-bit here (the UTF-16 shapes are above): a document labelled
        // UTF-16 but written as UTF-8, as .NET writers do, is read as what it is.
        Some(encoding) if encoding == UTF_8 || encoding == UTF_16LE || encoding == UTF_16BE => {
            Detected::Utf8
        }
        Some(encoding) if encoding != REPLACEMENT => Detected::Decode(encoding),
        _ => Detected::Unsupported(String::from_utf8_lossy(label).into_owned()),
    }
}

/// The `encoding` pseudo-attribute of an ASCII-compatible XML declaration.
fn declared_encoding(head: &[u8]) -> Option<&[u8]> {
    let rest = head.strip_prefix(b"<?xml")?;
    if !rest.first().is_some_and(u8::is_ascii_whitespace) {
        return None;
    }
    let decl = &rest[..rest.windows(2).position(|w| w == b"?>")?];
    let at = decl.windows(8).position(|w| w == b"encoding")?;
    let value = decl[at + 8..]
        .trim_ascii_start()
        .strip_prefix(b"=")?
        .trim_ascii_start();
    let (&quote, value) = value.split_first()?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    Some(&value[..value.iter().position(|&b| b == quote)?])
}

/// A document being decoded to UTF-8.
#[derive(Debug)]
pub(crate) struct Decoding {
    decoder: Decoder,
    encoding: &'static Encoding,
    /// Undecoded input: `raw[start..end]` is pending.
    raw: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    finished: bool,
}

impl Decoding {
    /// Decodes `head` (the bytes already read) and then the rest of the input.
    pub(crate) fn new(encoding: &'static Encoding, head: &[u8]) -> Decoding {
        let mut raw = vec![0u8; RAW_BYTES.max(head.len())].into_boxed_slice();
        raw[..head.len()].copy_from_slice(head);
        Decoding {
            // A byte order mark of the detected encoding is not part of the text.
            decoder: encoding.new_decoder_with_bom_removal(),
            encoding,
            raw,
            start: 0,
            end: head.len(),
            eof: false,
            finished: false,
        }
    }

    /// The encoding's name, for messages.
    pub(crate) fn name(&self) -> &'static str {
        self.encoding.name()
    }

    /// Fills `out` (at least 4 bytes) with UTF-8 decoded from `inner`; 0 at the end. A
    /// byte sequence that is invalid in the encoding is an [`io::ErrorKind::InvalidData`]
    /// error.
    pub(crate) fn read<R: Read>(&mut self, inner: &mut R, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.finished {
                return Ok(0);
            }
            if self.start == self.end && !self.eof {
                let n = read_retrying(inner, &mut self.raw)?;
                (self.start, self.end) = (0, n);
                self.eof = n == 0;
            }
            let (result, read, written) = self.decoder.decode_to_utf8_without_replacement(
                &self.raw[self.start..self.end],
                out,
                self.eof,
            );
            self.start += read;
            match result {
                DecoderResult::Malformed(..) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("invalid byte sequence for the encoding {}", self.name()),
                    ));
                }
                DecoderResult::InputEmpty if self.eof => self.finished = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
            }
            if written > 0 {
                return Ok(written);
            }
        }
    }
}

/// `read`, retried when interrupted.
pub(crate) fn read_retrying<R: Read>(inner: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match inner.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection() {
        let latin = Encoding::for_label(b"latin1").unwrap();
        let cases: &[(&[u8], Detected)] = &[
            (b"<NessusClientData_v2>", Detected::Utf8),
            (b"<?xml version=\"1.0\" ?><a/>", Detected::Utf8),
            (b"\xEF\xBB\xBF<?xml version=\"1.0\"?>", Detected::Utf8),
            (
                b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
                Detected::Decode(latin),
            ),
            (
                b"<?xml version='1.0' encoding = 'windows-1252' ?>",
                Detected::Decode(latin),
            ),
            (b"<?xml version='1.0' encoding='us-ascii'?>", Detected::Utf8),
            (
                b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                Detected::Utf8,
            ),
            (
                b"<?xml version=\"1.0\" encoding=\"utf-16\"?>",
                Detected::Utf8,
            ),
            (b"\xFF\xFE<\0?\0", Detected::Decode(UTF_16LE)),
            (b"\xFE\xFF\0<\0?", Detected::Decode(UTF_16BE)),
            (b"<\0?\0x\0m\0l\0", Detected::Decode(UTF_16LE)),
            (b"\0<\0?\0x\0m\0l", Detected::Decode(UTF_16BE)),
            (
                b"<?xml version=\"1.0\" encoding=\"klingon\"?>",
                Detected::Unsupported("klingon".into()),
            ),
            (
                b"<?xml version=\"1.0\" encoding=\"ISO-2022-KR\"?>",
                Detected::Unsupported("ISO-2022-KR".into()),
            ),
            // Not a declaration: no encoding to read.
            (b"<?xml-stylesheet encoding=\"latin1\"?>", Detected::Utf8),
            (b"<?xml version=\"1.0\" encoding=latin1?>", Detected::Utf8),
        ];
        for (head, want) in cases {
            assert_eq!(&detect(head), want, "{}", String::from_utf8_lossy(head));
        }
        assert!(needs_more(b"<?x"));
        assert!(needs_more(b"<?xml version=\"1.0\""));
        assert!(!needs_more(b"<?xml version=\"1.0\"?>"));
        assert!(!needs_more(b"<Nessus"));
    }

    /// Decoding through buffers of every small size gives the whole text, and a byte
    /// sequence the encoding does not have is an error.
    #[test]
    fn decodes_in_pieces() {
        let text = "<a>caf\u{e9} \u{4e2d}\u{6587} \u{1F600}</a>".repeat(50);
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        for out_len in [4, 5, 7, 64, 4096] {
            for head_len in [0, 1, 3, 10] {
                let mut d = Decoding::new(UTF_16LE, &utf16[..head_len]);
                let mut rest = &utf16[head_len..];
                let mut decoded = Vec::new();
                let mut out = vec![0u8; out_len];
                loop {
                    let n = d.read(&mut rest, &mut out).unwrap();
                    if n == 0 {
                        break;
                    }
                    decoded.extend_from_slice(&out[..n]);
                }
                assert_eq!(
                    String::from_utf8(decoded).unwrap(),
                    text,
                    "{out_len} {head_len}"
                );
            }
        }
        // A lone surrogate is not UTF-16.
        let mut d = Decoding::new(UTF_16LE, b"<\0\x00\xD8a\0");
        let mut out = [0u8; 64];
        let mut input: &[u8] = b"";
        let err = (0..4)
            .find_map(|_| d.read(&mut input, &mut out).err())
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
