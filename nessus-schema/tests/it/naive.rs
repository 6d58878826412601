//! A naive reader of `.nessus` XML for ground truth: regular expressions over the text,
//! nothing shared with the crate's parser.

use std::path::Path;

use regex::Regex;

/// One `ReportItem`, as the XML states it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Item {
    pub(crate) host: String,
    pub(crate) port: u32,
    pub(crate) protocol: String,
    pub(crate) severity: u8,
    pub(crate) plugin_id: u32,
    pub(crate) cves: Vec<String>,
    pub(crate) exploit: bool,
}

fn attr(attrs: &str, name: &str) -> Option<String> {
    let re = Regex::new(&format!(r#"(?:^|\s){name}="([^"]*)""#)).unwrap();
    re.captures(attrs).map(|c| c[1].to_owned())
}

/// Every `ReportItem` of the file, in document order.
pub(crate) fn items(path: &Path) -> Vec<Item> {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned();
    let host_re = Regex::new(r#"<ReportHost\s+name="([^"]*)""#).unwrap();
    let item_re = Regex::new(r"<ReportItem\b([^>]*?)(/?)>").unwrap();
    let cve_re = Regex::new(r"<cve>\s*([^<]*?)\s*</cve>").unwrap();
    let exploit_re = Regex::new(r"<exploit_available>\s*true\s*</exploit_available>").unwrap();
    let starts: Vec<(usize, String)> = host_re
        .captures_iter(&text)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_owned()))
        .collect();
    let mut out = Vec::new();
    for (i, (start, host)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(text.len(), |s| s.0);
        let seg = &text[*start..end];
        for m in item_re.captures_iter(seg) {
            let attrs = &m[1];
            let body = if &m[2] == "/" {
                ""
            } else {
                let from = m.get(0).unwrap().end();
                let to = seg[from..]
                    .find("</ReportItem>")
                    .map_or(seg.len(), |e| from + e);
                &seg[from..to]
            };
            let mut cves: Vec<String> = cve_re
                .captures_iter(body)
                .map(|c| c[1].to_owned())
                .filter(|c| !c.is_empty())
                .collect();
            cves.sort();
            cves.dedup();
            out.push(Item {
                host: host.clone(),
                port: attr(attrs, "port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                protocol: attr(attrs, "protocol").unwrap_or_default(),
                severity: attr(attrs, "severity")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                plugin_id: attr(attrs, "pluginID")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                cves,
                exploit: exploit_re.is_match(body),
            });
        }
    }
    out
}
