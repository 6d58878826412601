//! Cuts a corpus document into host templates: the raw bytes of each `ReportHost`, with the
//! spans that carry the host's identity marked for replacement.

use std::net::IpAddr;
use std::ops::Range;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

/// One piece of a host template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    /// Bytes copied as they are.
    Literal(Range<usize>),
    /// The `<ReportHost name="...">` start tag.
    ReportHostOpen,
    /// Text of `<tag name="host-ip">`.
    HostIp,
    /// Text of `<tag name="host-fqdn">` or `<tag name="host-rdns">`.
    HostFqdn,
    /// Text of `<tag name="netbios-name">`.
    NetbiosName,
}

/// A real host, ready to be written again under a new identity.
#[derive(Debug)]
pub(super) struct HostTemplate {
    pub(super) bytes: Vec<u8>,
    pub(super) segments: Vec<Segment>,
    /// Whether the original `ReportHost@name` was an address (else a host name).
    pub(super) named_by_ip: bool,
    pub(super) report_items: u64,
}

/// A parsed corpus document.
pub(super) struct Document {
    /// Offset of the `<Report` start tag: everything before it is the reusable header.
    pub(super) report_start: usize,
    pub(super) hosts: Vec<HostTemplate>,
}

/// Host being collected: file offsets of its start, its start tag's end, and its holes.
struct OpenHost {
    start: usize,
    open_end: usize,
    named_by_ip: bool,
    holes: Vec<(Range<usize>, Segment)>,
    report_items: u64,
}

/// Parses a whole document; any XML error, a root other than `NessusClientData_v2`, invalid
/// UTF-8 or unbalanced tags reject the file (the reason is returned for diagnostics).
pub(super) fn parse_document(bytes: &[u8]) -> Result<Document, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("invalid UTF-8: {e}"))?;
    let mut reader = Reader::from_reader(bytes);
    let mut buf = Vec::new();
    let mut depth = 0usize;
    let mut report_start = None;
    let mut hosts = Vec::new();
    let mut host: Option<OpenHost> = None;
    let mut in_properties = false;
    // A host-identity tag whose text is being read: where its text starts, and its kind.
    let mut pending_tag: Option<(usize, Segment)> = None;

    loop {
        let before = offset(&reader)?;
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        let after = offset(&reader)?;
        match event {
            Event::Start(e) => {
                let name = e.name();
                if depth == 0 && name.as_ref() != "NessusClientData_v2" {
                    return Err(format!("root is <{}>", name.as_ref()));
                }
                depth += 1;
                match name.as_ref() {
                    "Report" if report_start.is_none() => report_start = Some(before),
                    "ReportHost" => {
                        let named_by_ip = attribute(&e, "name")
                            .is_some_and(|n| n.trim().parse::<IpAddr>().is_ok());
                        host = Some(OpenHost {
                            start: before,
                            open_end: after,
                            named_by_ip,
                            holes: Vec::new(),
                            report_items: 0,
                        });
                    }
                    "HostProperties" => in_properties = host.is_some(),
                    "ReportItem" => count_item(host.as_mut()),
                    "tag" if in_properties => {
                        pending_tag = identity_segment(&e).map(|segment| (after, segment));
                    }
                    _ => {}
                }
            }
            Event::Empty(e) => {
                if depth == 0 {
                    return Err("the root element is empty".to_owned());
                }
                if e.name().as_ref() == "ReportItem" {
                    count_item(host.as_mut());
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                match e.name().as_ref() {
                    "tag" => {
                        if let (Some((text_start, segment)), Some(open)) =
                            (pending_tag.take(), host.as_mut())
                        {
                            open.holes.push((text_start..before, segment));
                        }
                    }
                    "HostProperties" => in_properties = false,
                    "ReportHost" => {
                        if let Some(open) = host.take() {
                            hosts.push(finish_host(bytes, open, after));
                        }
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if depth != 0 {
        return Err("truncated document: unclosed elements at end of file".to_owned());
    }
    let report_start = report_start.ok_or_else(|| "no <Report> element".to_owned())?;
    Ok(Document {
        report_start,
        hosts,
    })
}

fn offset<R>(reader: &Reader<R>) -> Result<usize, String> {
    usize::try_from(reader.buffer_position()).map_err(|_| "document too large".to_owned())
}

fn count_item(host: Option<&mut OpenHost>) {
    if let Some(open) = host {
        open.report_items += 1;
    }
}

fn attribute(e: &BytesStart<'_>, key: &str) -> Option<String> {
    e.try_get_attribute(key)
        .ok()
        .flatten()
        .map(|a| a.value.into_owned())
}

fn identity_segment(e: &BytesStart<'_>) -> Option<Segment> {
    match attribute(e, "name")?.as_str() {
        "host-ip" => Some(Segment::HostIp),
        "host-fqdn" | "host-rdns" => Some(Segment::HostFqdn),
        "netbios-name" => Some(Segment::NetbiosName),
        _ => None,
    }
}

/// Turns file offsets into a template over a copy of the host's bytes.
fn finish_host(bytes: &[u8], open: OpenHost, end: usize) -> HostTemplate {
    let base = open.start;
    let mut segments = vec![Segment::ReportHostOpen];
    let mut cursor = open.open_end - base;
    for (range, segment) in open.holes {
        let (start, stop) = (range.start - base, range.end - base);
        if start > cursor {
            segments.push(Segment::Literal(cursor..start));
        }
        segments.push(segment);
        cursor = stop;
    }
    let len = end - base;
    if len > cursor {
        segments.push(Segment::Literal(cursor..len));
    }
    HostTemplate {
        bytes: bytes[base..end].to_vec(),
        segments,
        named_by_ip: open.named_by_ip,
        report_items: open.report_items,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_identity_spans_are_found() {
        let doc = br#"<?xml version="1.0"?>
<NessusClientData_v2><Report name="r"><ReportHost name="192.0.2.1"><HostProperties>
<tag name="host-ip">192.0.2.1</tag><tag name="host-fqdn">a&amp;b.example</tag><tag name="os">x</tag>
</HostProperties><ReportItem pluginID="1"/><ReportItem pluginID="2"></ReportItem></ReportHost></Report></NessusClientData_v2>"#;
        let parsed = parse_document(doc).unwrap();
        assert_eq!(
            &doc[..parsed.report_start],
            br#"<?xml version="1.0"?>
<NessusClientData_v2>"#
        );
        let [host] = parsed.hosts.as_slice() else {
            panic!("one host expected")
        };
        assert!(host.named_by_ip);
        assert_eq!(host.report_items, 2);
        let kinds: Vec<_> = host
            .segments
            .iter()
            .filter(|s| !matches!(s, Segment::Literal(_)))
            .collect();
        assert_eq!(
            kinds,
            [
                &Segment::ReportHostOpen,
                &Segment::HostIp,
                &Segment::HostFqdn
            ]
        );
        assert!(host.bytes.ends_with(b"</ReportHost>"));
    }

    #[test]
    fn broken_documents_are_rejected() {
        for doc in [
            &b""[..],
            b"<NessusClientData><Report/></NessusClientData>",
            b"<NessusClientData_v2><Report>",
            b"<NessusClientData_v2><Report></Oops></NessusClientData_v2>",
        ] {
            assert!(parse_document(doc).is_err());
        }
    }
}
