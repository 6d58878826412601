//! A small CSV writer for exports (RFC 4180: comma-separated, CRLF line ends,
//! cells quoted when they hold a comma, quote, CR or LF, quotes doubled).
//!
//! Findings carry text from scanned hosts (banners, plugin output), so a cell
//! is a hostile input to a spreadsheet: a text cell starting with `=`, `+`, `-`,
//! `@`, tab or CR is neutralised with a leading `'` (OWASP "CSV injection").
//! Numbers and booleans are written by us and are never neutralised, so a
//! negative score stays a number. Lists (CVEs, references) are joined with `"; "`.

use crate::value::ValueRef;

/// What a list cell's items are joined with.
pub const LIST_SEPARATOR: &str = "; ";

/// Characters that make a spreadsheet read a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Appends one row and its CRLF.
pub(crate) fn row<'a>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = Cell<'a>>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match c {
            Cell::Header(s) => quoted(out, s),
            Cell::Value(v) => value(out, v),
            Cell::Empty => {}
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// One cell of a row.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Cell<'a> {
    /// A column name (ours; quoted when needed, never neutralised).
    Header(&'a str),
    /// A finding's value.
    Value(ValueRef<'a>),
    /// An absent value.
    Empty,
}

fn value(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => {}
        ValueRef::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        ValueRef::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        ValueRef::Float(f) if f.is_finite() => out.extend_from_slice(f.to_string().as_bytes()),
        ValueRef::Float(_) => {}
        ValueRef::Text(s) => text(out, s),
        ValueRef::List(l) => {
            let joined: Vec<&str> = l.iter().collect();
            text(out, &joined.join(LIST_SEPARATOR));
        }
    }
}

/// A text cell: neutralised, then quoted when needed.
fn text(out: &mut Vec<u8>, s: &str) {
    if s.starts_with(FORMULA_START) {
        let mut n = String::with_capacity(s.len() + 1);
        n.push('\'');
        n.push_str(s);
        quoted(out, &n);
    } else {
        quoted(out, s);
    }
}

fn quoted(out: &mut Vec<u8>, s: &str) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push(b'"');
        out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(s.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ListRef;

    #[test]
    fn cells_are_quoted_and_neutralised() {
        let list = ["CVE-1".to_owned(), "CVE-2".to_owned()];
        let cases: [(ValueRef<'_>, &str); 11] = [
            (ValueRef::Text("plain"), "plain"),
            (ValueRef::Text("a,b"), "\"a,b\""),
            (ValueRef::Text("say \"hi\""), "\"say \"\"hi\"\"\""),
            (
                ValueRef::Text("=HYPERLINK(\"x\")"),
                "\"'=HYPERLINK(\"\"x\"\")\"",
            ),
            (ValueRef::Text("+1"), "'+1"),
            (ValueRef::Text("-2+3"), "'-2+3"),
            (ValueRef::Text("@SUM(A1)"), "'@SUM(A1)"),
            (ValueRef::Text("\tx"), "'\tx"),
            (ValueRef::Text("\rx"), "\"'\rx\""),
            (ValueRef::Int(-5), "-5"),
            (ValueRef::List(ListRef::Owned(&list)), "CVE-1; CVE-2"),
        ];
        for (v, want) in cases {
            let mut out = Vec::new();
            row(&mut out, [Cell::Value(v)]);
            assert_eq!(
                String::from_utf8(out).unwrap_or_default(),
                format!("{want}\r\n"),
                "{v:?}"
            );
        }
    }
}
