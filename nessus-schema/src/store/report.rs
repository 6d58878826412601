//! Report documents: SARIF 2.1.0 and a self-contained HTML report of a (filtered,
//! sorted) result set, each one document (not parts).
//!
//! - A report holds at most [`REPORT_MAX_FINDINGS`] findings and [`REPORT_MAX_BYTES`]
//!   bytes; past either the export is refused with an error that names `filters` (or
//!   the jsonl/csv parts) as the way out. These are the only two report caps.
//! - SARIF: one run, `tool.driver.name` "Nessus", one rule per plugin (id = plugin id),
//!   one result per finding with `level` from the severity, the host as
//!   `physicalLocation.artifactLocation.uri` `host/<address>` (the form code-scanning
//!   tools accept: every result has a physical location) plus a logical location
//!   `<address>:<port>/<protocol>`, port/protocol in `properties`, and
//!   `partialFingerprints["nessusFinding/v1"]` = `<asset>|<plugin>|<port>/<protocol>`
//!   (never `plugin_output`, which changes between scans of the same finding).
//! - HTML: one page with inline CSS and an inline SVG severity chart; no script, no
//!   external asset (a Content-Security-Policy of `default-src 'none'` says so to the
//!   browser too), every value from the scan HTML-escaped. Summary, chart, then the
//!   findings grouped by host in the order of the selection.
//!
//! The projection of the query is not used: a report always carries the fields it
//! needs (name, synopsis, description, solution, output, CVSS).

use std::fmt::Write as _;

use serde_json::{Map, Value as Json, json};

use super::Store;
use crate::catalogue::severity_name;
use crate::error::{Error, Result};
use crate::query::Query;
use crate::record::Finding;
use crate::value::ValueRef;

/// Most findings in one report document (SARIF or HTML).
pub const REPORT_MAX_FINDINGS: u32 = 5_000;
/// Most bytes in one report document.
pub const REPORT_MAX_BYTES: usize = 8 * 1024 * 1024;

/// The SARIF version written.
pub const SARIF_VERSION: &str = "2.1.0";
/// The `$schema` a SARIF document names.
pub(crate) const SARIF_SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// A report document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Document {
    Sarif,
    Html,
}

impl Document {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Document::Sarif => "sarif",
            Document::Html => "html",
        }
    }
}

/// The refusal of a report past a cap: the way out is filters (or parts).
fn too_large(doc: Document, what: String) -> Error {
    Error::query(format!(
        "a {} report is one document of at most {REPORT_MAX_FINDINGS} findings and \
         {REPORT_MAX_BYTES} bytes, and this one {what}: narrow it with filters (for example \
         {{\"severity\": \">=medium\"}} or {{\"host\": \"10.0.0.0/24\"}}), or export jsonl or \
         csv, which come in parts",
        doc.name()
    ))
}

/// A field as display text (lists joined with `, `), `None` when absent or empty.
fn text(f: &Finding, name: &str) -> Option<String> {
    let s = match f.get(name)? {
        ValueRef::Null => return None,
        ValueRef::Bool(b) => b.to_string(),
        ValueRef::Int(i) => i.to_string(),
        ValueRef::Float(x) if x.is_finite() => x.to_string(),
        ValueRef::Float(_) => return None,
        ValueRef::Text(s) => s.trim().to_owned(),
        ValueRef::List(l) => l.iter().collect::<Vec<_>>().join(", "),
    };
    (!s.is_empty()).then_some(s)
}

/// The asset a finding is on: the host's address when known, else its name.
fn asset(f: &Finding) -> String {
    f.host_ip
        .map_or_else(|| f.host.clone(), |ip| ip.to_string())
}

fn port_protocol(f: &Finding) -> String {
    format!(
        "{}/{}",
        f.port.unwrap_or(0),
        f.protocol.as_deref().unwrap_or("tcp")
    )
}

/// `host/<asset>` with every byte outside the URI unreserved set (and `:`) escaped.
fn host_uri(asset: &str) -> String {
    let mut out = String::from("host/");
    for b in asset.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn sarif_level(severity: Option<u8>) -> &'static str {
    match severity {
        Some(3..) => "error",
        Some(2) => "warning",
        Some(1) => "note",
        _ => "none",
    }
}

impl Store {
    /// The findings a report of `query` holds, refused past [`REPORT_MAX_FINDINGS`].
    fn report_findings(&self, query: &Query, doc: Document) -> Result<Vec<Finding>> {
        self.check_fields(query)?;
        let matched = self.select(&query.filter, &query.sort)?;
        if matched.len() > REPORT_MAX_FINDINGS as usize {
            return Err(too_large(
                doc,
                format!("matches {} findings", matched.len()),
            ));
        }
        let mut out = Vec::with_capacity(matched.len());
        self.each_finding(&matched, |f| {
            out.push(f.clone());
            Ok(())
        })?;
        Ok(out)
    }

    /// The whole report document of `query` and its number of findings, refused past
    /// either cap.
    pub(crate) fn report(&self, query: &Query, doc: Document) -> Result<(Vec<u8>, u64)> {
        let findings = self.report_findings(query, doc)?;
        let body = match doc {
            Document::Sarif => sarif(&findings),
            Document::Html => html(self, &findings),
        };
        if body.len() > REPORT_MAX_BYTES {
            return Err(too_large(
                doc,
                format!("is {} bytes ({} findings)", body.len(), findings.len()),
            ));
        }
        Ok((body, findings.len() as u64))
    }
}

/// A SARIF 2.1.0 log with one run.
fn sarif(findings: &[Finding]) -> Vec<u8> {
    let mut rules: Vec<Json> = Vec::new();
    let mut rule_index: std::collections::HashMap<String, usize> = Default::default();
    let mut results = Vec::with_capacity(findings.len());
    for f in findings {
        let rule_id = f
            .plugin_id
            .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
        let name = f
            .plugin_name
            .clone()
            .unwrap_or_else(|| format!("Nessus plugin {rule_id}"));
        let index = *rule_index.entry(rule_id.clone()).or_insert_with(|| {
            let mut rule = Map::new();
            rule.insert("id".into(), json!(rule_id));
            rule.insert("name".into(), json!(name));
            let short = text(f, "synopsis").unwrap_or_else(|| name.clone());
            rule.insert("shortDescription".into(), json!({ "text": short }));
            if let Some(d) = text(f, "description") {
                rule.insert("fullDescription".into(), json!({ "text": d }));
            }
            if let Some(s) = text(f, "solution") {
                rule.insert("help".into(), json!({ "text": s }));
            }
            rule.insert(
                "defaultConfiguration".into(),
                json!({ "level": sarif_level(f.severity) }),
            );
            let mut props = Map::new();
            if let Some(s) = f.severity {
                props.insert("severity".into(), json!(s));
                props.insert("severity_name".into(), json!(severity_name(s)));
            }
            if let Some(c) = f.cvss_score() {
                props.insert("cvss".into(), json!(c));
                // GitHub code scanning ranks security results by this string.
                props.insert("security-severity".into(), json!(format!("{c:.1}")));
            }
            if let Some(fam) = &f.plugin_family {
                props.insert("plugin_family".into(), json!(fam));
            }
            let mut tags = vec![json!("security")];
            if let Some(fam) = &f.plugin_family {
                tags.push(json!(fam));
            }
            props.insert("tags".into(), Json::Array(tags));
            rule.insert("properties".into(), Json::Object(props));
            rules.push(Json::Object(rule));
            rules.len() - 1
        });
        let asset = asset(f);
        let pp = port_protocol(f);
        let mut message = format!("{name} on {asset} port {pp}");
        if let Some(s) = text(f, "synopsis") {
            message.push_str(": ");
            message.push_str(&s);
        }
        let mut props = Map::new();
        props.insert("host".into(), json!(f.host));
        if let Some(ip) = f.host_ip {
            props.insert("host_ip".into(), json!(ip.to_string()));
        }
        props.insert("port".into(), json!(f.port.unwrap_or(0)));
        props.insert(
            "protocol".into(),
            json!(f.protocol.as_deref().unwrap_or("tcp")),
        );
        if let Some(s) = &f.svc_name {
            props.insert("svc_name".into(), json!(s));
        }
        if let Some(s) = f.severity {
            props.insert("severity".into(), json!(s));
        }
        if let Some(c) = text(f, "cve") {
            props.insert("cve".into(), json!(c));
        }
        results.push(json!({
            "ruleId": rule_id,
            "ruleIndex": index,
            "level": sarif_level(f.severity),
            "message": { "text": message },
            "locations": [{
                "physicalLocation": {
                    "artifactLocation": { "uri": host_uri(&asset) },
                    "region": { "startLine": 1 }
                },
                "logicalLocations": [{
                    "name": format!("{asset}:{pp}"),
                    "fullyQualifiedName": format!("{}:{pp}", f.host),
                    "kind": "resource"
                }]
            }],
            "partialFingerprints": {
                "nessusFinding/v1": format!("{asset}|{rule_id}|{pp}")
            },
            "properties": props,
        }));
    }
    let log = json!({
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": { "driver": {
                "name": "Nessus",
                "informationUri": "https://www.tenable.com/products/nessus",
                "rules": rules,
            }},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }]
    });
    let mut out = serde_json::to_vec_pretty(&log).unwrap_or_default();
    out.push(b'\n');
    out
}

/// `s` with `&`, `<`, `>`, `"` and `'` escaped, for text and attribute values alike.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colours of severities 0 (info) to 4 (critical).
const SEVERITY_COLOURS: [&str; 5] = ["#3b82c4", "#2e9d4f", "#e0a100", "#e0611a", "#c0262d"];

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;\
color:#1c1c1c;padding:0 1em}h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;\
border-bottom:1px solid #ccc}table{border-collapse:collapse;width:100%;margin:.5em 0}\
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.sev{color:#fff;font-weight:600;border-radius:3px;padding:0 .4em;\
white-space:nowrap}pre{white-space:pre-wrap;word-break:break-word;background:#f7f7f7;\
padding:.5em;margin:.3em 0;max-height:24em;overflow:auto}.meta{color:#555}\
details summary{cursor:pointer;color:#335}";

fn severity_badge(out: &mut String, severity: Option<u8>) {
    let s = severity.unwrap_or(0).min(4);
    let _ = write!(
        out,
        "<span class=\"sev\" style=\"background:{}\">{}</span>",
        SEVERITY_COLOURS[s as usize],
        severity_name(s)
    );
}

/// An inline SVG bar chart of the findings per severity (critical first).
fn severity_chart(out: &mut String, counts: &[u64; 5]) {
    let max = counts.iter().copied().max().unwrap_or(0).max(1);
    let (bar_w, label_w, row_h) = (400u64, 80u64, 26u64);
    let h = row_h * 5 + 10;
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{h}\" role=\"img\" \
         aria-label=\"findings per severity\">",
        label_w + bar_w + 80
    );
    for (row, s) in (0..5u8).rev().enumerate() {
        let n = counts[s as usize];
        let y = row as u64 * row_h + 5;
        let w = if n == 0 { 0 } else { (n * bar_w / max).max(2) };
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{}\" font-size=\"13\">{}</text>\
             <rect x=\"{label_w}\" y=\"{y}\" width=\"{w}\" height=\"{}\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"13\">{n}</text>",
            y + 15,
            severity_name(s),
            row_h - 6,
            SEVERITY_COLOURS[s as usize],
            label_w + w + 6,
            y + 15,
        );
    }
    out.push_str("</svg>");
}

/// The HTML report page.
fn html(store: &Store, findings: &[Finding]) -> Vec<u8> {
    let e = escape_html;
    let scan = &store.summary().scan;
    let title = scan.report_name.as_deref().unwrap_or("Nessus scan");
    let mut counts = [0u64; 5];
    // Hosts in the order of the selection, each with its findings.
    let mut hosts: Vec<(&str, Vec<&Finding>)> = Vec::new();
    for f in findings {
        counts[f.severity.unwrap_or(0).min(4) as usize] += 1;
        match hosts.iter_mut().find(|(h, _)| *h == f.host) {
            Some((_, list)) => list.push(f),
            None => hosts.push((&f.host, vec![f])),
        }
    }
    let mut o = String::with_capacity(4096 + findings.len() * 1024);
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} - Nessus report</title><style>{STYLE}</style></head><body>\n\
         <h1>{}</h1>",
        e(title),
        e(title)
    );
    o.push_str("<p class=\"meta\">");
    if let Some(p) = &scan.policy_name {
        let _ = write!(o, "Policy: {} &middot; ", e(p));
    }
    if let (Some(a), Some(b)) = (&scan.scan_start, &scan.scan_end) {
        let _ = write!(o, "Scanned {} to {} &middot; ", e(a), e(b));
    }
    let _ = write!(
        o,
        "{} finding(s) on {} host(s) in this report</p>\n<h2>Summary</h2><table><tr><th>Severity</th>\
         <th>Findings</th></tr>",
        findings.len(),
        hosts.len()
    );
    for s in (0..5u8).rev() {
        o.push_str("<tr><td>");
        severity_badge(&mut o, Some(s));
        let _ = write!(o, "</td><td>{}</td></tr>", counts[s as usize]);
    }
    o.push_str("</table>\n<h2>Findings per severity</h2>");
    severity_chart(&mut o, &counts);
    o.push_str(
        "\n<h2>Hosts</h2><table><tr><th>Host</th><th>Findings</th><th>Critical</th>\
                <th>High</th><th>Medium</th><th>Low</th><th>Info</th></tr>",
    );
    for (host, list) in &hosts {
        let mut c = [0u64; 5];
        for f in list {
            c[f.severity.unwrap_or(0).min(4) as usize] += 1;
        }
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e(host),
            list.len(),
            c[4],
            c[3],
            c[2],
            c[1],
            c[0]
        );
    }
    o.push_str("</table>\n");
    if findings.is_empty() {
        o.push_str("<p>No findings match this report's filters.</p>\n");
    }
    for (host, list) in &hosts {
        let ip = list[0]
            .host_ip
            .map(|ip| ip.to_string())
            .filter(|ip| ip != host);
        let _ = write!(o, "<h2>{}", e(host));
        if let Some(ip) = ip {
            let _ = write!(o, " <span class=\"meta\">({})</span>", e(&ip));
        }
        o.push_str(
            "</h2><table><tr><th>Severity</th><th>Plugin</th><th>Name</th>\
                    <th>Port</th><th>Details</th></tr>\n",
        );
        for f in list {
            o.push_str("<tr><td>");
            severity_badge(&mut o, f.severity);
            let name = f.plugin_name.as_deref().unwrap_or("");
            let _ = write!(
                o,
                "</td><td>{}</td><td>{}</td><td>{}</td><td>",
                f.plugin_id.map(|p| p.to_string()).unwrap_or_default(),
                e(name),
                e(&port_protocol(f))
            );
            if let Some(s) = text(f, "synopsis") {
                let _ = write!(o, "<div>{}</div>", e(&s));
            }
            if let Some(c) = f.cvss_score() {
                let _ = write!(o, "<div class=\"meta\">CVSS {c:.1}</div>");
            }
            if let Some(c) = text(f, "cve") {
                let _ = write!(o, "<div class=\"meta\">{}</div>", e(&c));
            }
            for (field, label) in [
                ("description", "Description"),
                ("solution", "Solution"),
                ("plugin_output", "Plugin output"),
            ] {
                if let Some(v) = text(f, field) {
                    let _ = write!(
                        o,
                        "<details><summary>{label}</summary><pre>{}</pre></details>",
                        e(&v)
                    );
                }
            }
            o.push_str("</td></tr>\n");
        }
        o.push_str("</table>\n");
    }
    o.push_str("</body></html>\n");
    o.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_and_host_uris() {
        let cases = [
            (
                "<script>alert(1)</script>",
                "&lt;script&gt;alert(1)&lt;/script&gt;",
            ),
            (
                "\"><img src=x onerror='a()'>",
                "&quot;&gt;&lt;img src=x onerror=&#39;a()&#39;&gt;",
            ),
            ("a & b", "a &amp; b"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_html(raw), want);
        }
        assert_eq!(host_uri("10.0.0.1"), "host/10.0.0.1");
        assert_eq!(host_uri("fe80::1"), "host/fe80::1");
        assert_eq!(host_uri("a b/c"), "host/a%20b%2Fc");
    }
}
