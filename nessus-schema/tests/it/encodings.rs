//! Documents in another encoding than UTF-8 (UTF-16, a declared windows-1252 or ISO-8859-1)
//! read exactly like their UTF-8 text, through every entry point; an encoding that cannot
//! be read, or bytes the encoding does not have, are typed errors.

use std::io::BufReader;

use encoding_rs::WINDOWS_1252;
use nessus_schema::{Error, IngestOptions, NessusReader, PageInfo, Query, Record, Store};
use proptest::prelude::*;

use crate::split::queries;
use crate::{FIXTURE, corpus};

const UTF8_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

fn utf16(text: &str, bom: bool, big_endian: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in std::iter::once(0xFEFF)
        .filter(|_| bom)
        .chain(text.encode_utf16())
    {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

/// The fixture (UTF-8, with two non-ASCII quotes) in other encodings, each with the
/// declaration a writer of that encoding would put.
fn variants(text: &str) -> Vec<(&'static str, Vec<u8>)> {
    let body = text
        .strip_prefix(UTF8_DECLARATION)
        .expect("the fixture declares UTF-8");
    let declared = |encoding: &str| format!(r#"<?xml version="1.0" encoding="{encoding}"?>{body}"#);
    let single_byte = |label: &str| {
        let text = declared(label);
        let (bytes, _, unmappable) = WINDOWS_1252.encode(&text);
        assert!(!unmappable, "the fixture fits windows-1252");
        bytes.into_owned()
    };
    vec![
        ("UTF-16LE with BOM", utf16(&declared("UTF-16"), true, false)),
        ("UTF-16BE with BOM", utf16(&declared("UTF-16"), true, true)),
        (
            "UTF-16LE without BOM",
            utf16(&declared("UTF-16"), false, false),
        ),
        ("windows-1252", single_byte("windows-1252")),
        ("ISO-8859-1", single_byte("ISO-8859-1")),
        // .NET writers label UTF-8 text "utf-16": the bytes win.
        ("UTF-8 labelled utf-16", declared("utf-16").into_bytes()),
        // ASCII is read as UTF-8, so UTF-8 labelled ASCII reads right.
        ("UTF-8 labelled US-ASCII", declared("US-ASCII").into_bytes()),
    ]
}

/// Everything a document gives, for every query of the split tests: `convert`,
/// `convert_file` (told to split even small files) and a page of an ingested store, each
/// as its output or its error; a document that cannot be read fails the ingest.
fn outputs(bytes: &[u8]) -> Result<Vec<String>, Error> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("doc.nessus");
    std::fs::write(&file, bytes).unwrap();
    let split = IngestOptions {
        parallel_min_bytes: Some(0),
        ..IngestOptions::default()
    };
    let store = Store::ingest(BufReader::new(bytes), &dir.path().join("store"))?;
    let shown = |out: Vec<u8>, result: Result<PageInfo, Error>| match result {
        Ok(_) => String::from_utf8(out).unwrap(),
        Err(e) => format!("error: {e}"),
    };
    let mut all = Vec::new();
    for params in queries() {
        let q = Query::from_params(&params).unwrap();
        let mut out = Vec::new();
        let result = nessus_schema::convert(bytes, &mut out, &q);
        all.push(shown(out, result));
        let mut out = Vec::new();
        let result = nessus_schema::convert_file_with(&file, &mut out, &q, &split);
        all.push(shown(out, result));
        let mut out = Vec::new();
        let result = store.write_page(&q, &mut out);
        all.push(without_cursor(shown(out, result)));
    }
    Ok(all)
}

/// A store's cursors name the store (every ingest is a new one): compared without them.
fn without_cursor(mut page: String) -> String {
    const KEY: &str = "\"next_cursor\": \"";
    if let Some(at) = page.find(KEY).map(|i| i + KEY.len())
        && let Some(len) = page[at..].find('"')
    {
        page.replace_range(at..at + len, "");
    }
    page
}

#[test]
fn other_encodings_read_like_their_utf8_text() {
    let text = std::fs::read_to_string(corpus(FIXTURE)).unwrap();
    let want = outputs(text.as_bytes()).unwrap();
    assert!(want[0].contains("\"total_vulnerabilities\": 40"));
    for (name, bytes) in variants(&text) {
        let got = outputs(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for (i, (got, want)) in got.iter().zip(&want).enumerate() {
            // Not assert_eq: a difference would print two whole outputs.
            assert!(got == want, "{name}: output {i} differs");
        }
    }
}

/// One document that must fail, and how.
fn check(name: &str, bytes: &[u8], expected: fn(&Error) -> bool) {
    match outputs(bytes) {
        Ok(_) => panic!("{name}: read without an error"),
        Err(e) => assert!(expected(&e), "{name}: unexpected error {e:?}"),
    }
}

#[test]
fn unreadable_encodings_are_typed_errors() {
    let doc = r#"<NessusClientData_v2><Report name="r"><ReportHost name="h"><ReportItem pluginID="1" severity="2"/></ReportHost></Report></NessusClientData_v2>"#;
    check(
        "unknown encoding",
        format!(r#"<?xml version="1.0" encoding="klingon"?>{doc}"#).as_bytes(),
        |e| matches!(e, Error::UnsupportedEncoding { encoding } if encoding == "klingon"),
    );
    let mut lone_surrogate = utf16(&format!("<?xml version=\"1.0\"?>{doc}"), true, false);
    let at = lone_surrogate.len() - 20;
    lone_surrogate[at..at + 2].copy_from_slice(&0xD800u16.to_le_bytes());
    check(
        "UTF-16 lone surrogate",
        &lone_surrogate,
        |e| matches!(e, Error::Malformed { message, .. } if message.contains("UTF-16LE")),
    );
    // Cut inside a code unit (after the root ends, input is not read: cut before).
    let whole = utf16(doc, true, true);
    check(
        "UTF-16 cut inside a code unit",
        &whole[..whole.len() - 41],
        |e| matches!(e, Error::Malformed { message, .. } if message.contains("UTF-16BE")),
    );
    let message = Error::UnsupportedEncoding {
        encoding: "klingon".into(),
    }
    .to_string();
    assert!(message.contains("\"klingon\"") && message.contains("UTF-16"));
}

/// Every record, or the error, of a document (Debug form: records compare in full).
fn records(bytes: &[u8]) -> String {
    let all: Result<Vec<Record>, Error> = NessusReader::new(bytes).collect();
    format!("{all:?}")
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any text, in element content and attributes, reads the same from UTF-16 (either
    /// byte order, with a byte order mark) as from UTF-8.
    #[test]
    fn utf16_reads_like_utf8(texts in prop::collection::vec("\\PC{0,24}", 1..4)) {
        let items: String = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let t = escaped(t);
                format!(
                    "<ReportItem port=\"{i}\" pluginID=\"{i}\" pluginName=\"{t}\"><description>{t}</description><cve>{t}</cve></ReportItem>"
                )
            })
            .collect();
        let doc = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?><NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">{items}</ReportHost></Report></NessusClientData_v2>"
        );
        let want = records(doc.as_bytes());
        prop_assert!(!want.starts_with("Err"), "{want}");
        prop_assert_eq!(&records(&utf16(&doc, true, false)), &want);
        prop_assert_eq!(&records(&utf16(&doc, true, true)), &want);
    }

    /// Any bytes after an encoding's signature or declaration give records or a typed
    /// error, never a panic.
    #[test]
    fn any_bytes_in_any_encoding_never_panic(
        prefix in prop::sample::select(vec![
            &b"\xFF\xFE"[..],
            b"\xFE\xFF",
            b"<\0?\0",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>",
            b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>",
            b"<?xml version=\"1.0\" encoding=\"klingon\"?>",
        ]),
        bytes in prop::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut doc = prefix.to_vec();
        doc.extend_from_slice(&bytes);
        let _ = records(&doc);
        let mut out = Vec::new();
        let _ = nessus_schema::convert(&doc[..], &mut out, &Query::default());
    }
}
