//! Hostile and broken inputs: always a typed error or bounded output, never a panic.

use std::io::{BufReader, Cursor, Read};

use nessus_schema::{Error, Limits, NessusReader, Record};

fn parse_all<R: Read>(input: R, limits: Limits) -> Result<usize, Error> {
    let mut n = 0;
    for r in NessusReader::with_limits(BufReader::new(input), limits) {
        r?;
        n += 1;
    }
    Ok(n)
}

fn parse(input: &[u8]) -> Result<usize, Error> {
    parse_all(input, Limits::default())
}

/// One hostile input and the error it must produce.
fn check(name: &str, input: &[u8], expected: fn(&Error) -> bool) {
    match parse(input) {
        Ok(n) => panic!("{name}: parsed {n} records instead of failing"),
        Err(e) => assert!(expected(&e), "{name}: unexpected error {e:?}"),
    }
}

const ITEM: &str = r#"<ReportItem port="22" svc_name="ssh" protocol="tcp" severity="2" pluginID="1" pluginName="n" pluginFamily="f">"#;

#[test]
fn refused_constructs() {
    let laughs = format!(
        r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">{}]><NessusClientData_v2>&lol9;</NessusClientData_v2>"#,
        (1..10)
            .map(|i| format!(
                r#"<!ENTITY lol{i} "{}">"#,
                format!("&lol{};", i - 1).repeat(10)
            ))
            .collect::<String>()
    );
    check("billion laughs", laughs.as_bytes(), |e| {
        matches!(e, Error::Forbidden { .. })
    });
    check(
        "external entity",
        br#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><NessusClientData_v2><Report name="&xxe;"/></NessusClientData_v2>"#,
        |e| matches!(e, Error::Forbidden { .. }),
    );
    let undeclared = format!(
        "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">{ITEM}<plugin_output>&xxe;</plugin_output></ReportItem></ReportHost></Report></NessusClientData_v2>"
    );
    check("undeclared entity", undeclared.as_bytes(), |e| {
        matches!(e, Error::Forbidden { .. })
    });
    let deep = format!("<NessusClientData_v2>{}", "<a>".repeat(100_000));
    check("100k-deep nesting", deep.as_bytes(), |e| {
        matches!(e, Error::TooDeep { limit: 64, .. })
    });
}

#[test]
fn broken_documents() {
    check("empty", b"", |e| matches!(e, Error::Empty));
    check("whitespace and comment", b"  \n<!-- nothing -->\n", |e| {
        matches!(e, Error::Empty)
    });
    let mut bad_utf8 = format!(
        "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">{ITEM}<plugin_output>"
    )
    .into_bytes();
    bad_utf8.extend_from_slice(&[0xff, 0xfe, b'x']);
    bad_utf8.extend_from_slice(
        b"</plugin_output></ReportItem></ReportHost></Report></NessusClientData_v2>",
    );
    check("invalid UTF-8", &bad_utf8, |e| {
        matches!(e, Error::Malformed { .. })
    });
    check(
        "second root",
        b"<NessusClientData_v2/><NessusClientData_v2/>",
        |e| matches!(e, Error::Malformed { .. }),
    );
    check(
        "non-numeric severity",
        br#"<ReportItem port="1" severity="high" pluginID="1"/>"#,
        |e| matches!(e, Error::InvalidValue { field, .. } if field == "severity"),
    );
    check("unknown root", b"<html/>", |e| {
        matches!(e, Error::UnsupportedFormat { .. })
    });
}

/// An empty numeric attribute is a missing one (the finding is kept, the file is read),
/// while text that is not a number still names the field.
#[test]
fn empty_numeric_attributes_read_as_missing() {
    let doc = br#"<ReportItem port=" " severity="" pluginID="" pluginName="n"/>"#;
    let records: Vec<Record> = NessusReader::new(&doc[..])
        .collect::<Result<_, _>>()
        .unwrap();
    let finding = records
        .iter()
        .find_map(|r| match r {
            Record::Finding(f) => Some(f),
            _ => None,
        })
        .expect("the finding is kept");
    assert_eq!(
        (finding.port, finding.severity, finding.plugin_id),
        (None, None, None)
    );
    assert_eq!(finding.plugin_name.as_deref(), Some("n"));
    check(
        "non-numeric port",
        br#"<ReportItem port="ssh" severity="1" pluginID="1"/>"#,
        |e| matches!(e, Error::InvalidValue { field, value, .. } if field == "port" && value == "ssh"),
    );
}

#[test]
fn every_truncation_of_a_real_file_fails_cleanly() {
    let full = std::fs::read(crate::corpus("dradis-nessus__vpr_score.xml")).unwrap();
    let end_of_root = full
        .windows(b"</NessusClientData_v2>".len())
        .position(|w| w == b"</NessusClientData_v2>")
        .unwrap()
        + b"</NessusClientData_v2>".len();
    for cut in 1..end_of_root {
        match parse(&full[..cut]) {
            Err(Error::Truncated { .. } | Error::Malformed { .. }) => {}
            Err(e) if cut < 60 => assert!(matches!(e, Error::Empty), "cut {cut}: {e:?}"),
            other => panic!("cut at {cut}: expected a truncation error, got {other:?}"),
        }
    }
    assert!(parse(&full).is_ok());
    let half = &full[..full.len() / 2];
    assert!(matches!(parse(half), Err(Error::Truncated { .. })));
}

/// A reader that produces a document with a huge text node without holding it in memory.
fn huge_text(prefix: &str, size: u64, suffix: &str) -> impl Read {
    Cursor::new(prefix.as_bytes().to_vec())
        .chain(std::io::repeat(b'A').take(size))
        .chain(Cursor::new(suffix.as_bytes().to_vec()))
}

#[test]
fn a_64_mib_text_node_is_refused_by_the_record_limit() {
    let prefix = format!(
        "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">{ITEM}<plugin_output>"
    );
    let suffix = "</plugin_output></ReportItem></ReportHost></Report></NessusClientData_v2>";
    let err = parse_all(huge_text(&prefix, 64 << 20, suffix), Limits::default()).unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { limit, .. } if limit == 32 << 20),
        "{err:?}"
    );
    // Outside any record (a giant policy comment text), each event is bounded too.
    let small = Limits {
        max_record_bytes: 1 << 20,
        ..Limits::default()
    };
    let err = parse_all(
        huge_text(
            "<NessusClientData_v2><Policy><policyComments>",
            8 << 20,
            "</policyComments></Policy></NessusClientData_v2>",
        ),
        small,
    )
    .unwrap_err();
    assert!(matches!(err, Error::RecordTooLarge { .. }), "{err:?}");
    // Under the limit it parses, text intact.
    let ok = NessusReader::with_limits(
        BufReader::new(huge_text(&prefix, 3 << 20, suffix)),
        Limits {
            max_record_bytes: 4 << 20,
            ..Limits::default()
        },
    )
    .filter_map(|r| match r.unwrap() {
        Record::Finding(f) => Some(f),
        _ => None,
    })
    .next()
    .unwrap();
    assert!(
        matches!(ok.child("plugin_output"), Some(nessus_schema::ValueRef::Text(t)) if t.len() == 3 << 20)
    );
}

#[test]
fn text_with_entities_cdata_crlf_and_non_ascii_is_exact() {
    let doc = format!(
        "<NessusClientData_v2><Report name=\"r\"><ReportHost name=\"h\">{ITEM}<plugin_output>CN=a &amp; b &lt;x&gt; &#233;&#x4e2d; caf\u{e9}\r\nline2 <![CDATA[<raw> & ]]>end</plugin_output></ReportItem></ReportHost></Report></NessusClientData_v2>"
    );
    let f = NessusReader::new(doc.as_bytes())
        .filter_map(|r| match r.unwrap() {
            Record::Finding(f) => Some(f),
            _ => None,
        })
        .next()
        .unwrap();
    assert_eq!(
        f.child("plugin_output"),
        Some(nessus_schema::ValueRef::Text(
            "CN=a & b <x> é中 café\nline2 <raw> & end"
        ))
    );
}
