//! Scan results built from real `.nessus` files: the scan's targets are substituted for
//! the recorded hosts, and CSV/HTML renderings are derived from the same items.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, LazyLock, Mutex},
};

use regex::Regex;

/// Small real export compiled in, so the simulator works outside the repository.
const EMBEDDED: &[u8] =
    include_bytes!("../../../corpus/nessus/eafonin-nessus-api__sample_scan.nessus");
const EMBEDDED_NAME: &str = "eafonin-nessus-api__sample_scan.nessus";

/// Beyond this many bytes, hosts are no longer replicated for extra targets.
const MAX_REPORT_BYTES: usize = 32 << 20;
/// At most this many hosts appear in one simulated report.
const MAX_HOSTS: usize = 256;

/// One finding of a host, enough for scan details and CSV.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub(crate) plugin_id: u64,
    pub(crate) plugin_name: String,
    pub(crate) plugin_family: String,
    pub(crate) severity: u8,
    pub(crate) port: String,
    pub(crate) protocol: String,
    fields: HashMap<&'static str, String>,
}

/// One recorded host: its XML block and the names to replace in it.
#[derive(Debug)]
pub(crate) struct HostBlock {
    xml: String,
    names: Vec<String>,
    pub(crate) items: Vec<Item>,
}

/// A parsed corpus file, split so hosts can be replaced and replicated.
#[derive(Debug)]
pub(crate) struct CorpusFile {
    pub(crate) name: String,
    prefix: String,
    pub(crate) hosts: Vec<HostBlock>,
    suffix: String,
}

static RE_HOST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?s)<ReportHost\s+name="([^"]*)"\s*>.*?</ReportHost>"#).expect("static regex")
});
static RE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"<tag name="(host-ip|host-fqdn|hostname|netbios-name)">([^<]*)</tag>"#)
        .expect("static regex")
});
static RE_ITEM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?s)<ReportItem\s([^>]*?)(?:/>|>(.*?)</ReportItem>)"#).expect("static regex")
});
static RE_ATTR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([A-Za-z_]+)="([^"]*)""#).expect("static regex"));
static RE_CHILD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?s)<(cve|cvss_base_score|cvss3_base_score|risk_factor|synopsis|description|solution|see_also|plugin_output)>(.*?)</(?:cve|cvss_base_score|cvss3_base_score|risk_factor|synopsis|description|solution|see_also|plugin_output)>"#,
    )
    .expect("static regex")
});
static RE_TARGET_PREF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?s)(<name>TARGET</name>\s*<value>)[^<]*(</value>)"#).expect("static regex")
});
static RE_REPORT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<Report name="[^"]*""#).expect("static regex"));

impl CorpusFile {
    /// Parses a `.nessus` v2 file; `None` unless it is well-formed and has hosts.
    pub(crate) fn parse(name: &str, bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        if !text.contains("<NessusClientData_v2") || !well_formed(text) {
            return None;
        }
        let mut hosts = Vec::new();
        let (mut first, mut last) = (None, 0);
        for m in RE_HOST.captures_iter(text) {
            let whole = m.get(0)?;
            first.get_or_insert(whole.start());
            last = whole.end();
            let xml = whole.as_str().to_owned();
            let mut names = vec![m[1].to_owned()];
            for t in RE_TAG.captures_iter(&xml) {
                let v = t[2].trim().to_owned();
                if !v.is_empty() && !names.contains(&v) {
                    names.push(v);
                }
            }
            let items = RE_ITEM.captures_iter(&xml).filter_map(parse_item).collect();
            hosts.push(HostBlock { xml, names, items });
        }
        let first = first?;
        Some(Self {
            name: name.to_owned(),
            prefix: text[..first].to_owned(),
            hosts,
            suffix: text[last..].to_owned(),
        })
    }

    /// The `.nessus` export for a scan named `scan_name` of `targets`: every target gets
    /// a recorded host (replicated round-robin when there are more targets than hosts).
    pub(crate) fn render_nessus(
        &self,
        scan_name: &str,
        targets: &[String],
        text_targets: &str,
    ) -> Vec<u8> {
        let mut prefix = RE_TARGET_PREF
            .replace(&self.prefix, |c: &regex::Captures<'_>| {
                format!("{}{}{}", &c[1], xml_escape(text_targets), &c[2])
            })
            .into_owned();
        prefix = RE_REPORT_NAME
            .replace(
                &prefix,
                format!("<Report name=\"{}\"", xml_escape(scan_name)).as_str(),
            )
            .into_owned();
        let shown = host_targets(self.hosts.len(), targets);
        // The policy block repeats the recorded hosts (target lists, scan names).
        for (block, target) in self.hosts.iter().zip(&shown) {
            for name in &block.names {
                prefix = prefix.replace(name.as_str(), &xml_escape(target));
            }
        }
        let mut out = prefix.into_bytes();
        for (i, target) in shown.iter().enumerate() {
            if i >= self.hosts.len() && out.len() > MAX_REPORT_BYTES {
                break;
            }
            let block = &self.hosts[i % self.hosts.len()];
            out.extend_from_slice(block.substitute(target).as_bytes());
            out.push(b'\n');
        }
        out.extend_from_slice(self.suffix.as_bytes());
        out
    }

    /// Host names for a scan: one per recorded host or target, whichever is more.
    pub(crate) fn host_names(&self, targets: &[String]) -> Vec<String> {
        host_targets(self.hosts.len(), targets)
    }

    /// CSV with the on-prem 13-column header.
    pub(crate) fn render_csv(&self, targets: &[String]) -> Vec<u8> {
        let mut out = String::from(
            "Plugin ID,CVE,CVSS,Risk,Host,Protocol,Port,Name,Synopsis,Description,Solution,See Also,Plugin Output\n",
        );
        for (i, host) in host_targets(self.hosts.len(), targets).iter().enumerate() {
            for item in &self.hosts[i % self.hosts.len()].items {
                let f = |k| item.fields.get(k).map(String::as_str).unwrap_or("");
                let risk = match f("risk_factor") {
                    "" => "None",
                    r => r,
                };
                let cvss = match f("cvss3_base_score") {
                    "" => f("cvss_base_score"),
                    s => s,
                };
                let row = [
                    item.plugin_id.to_string().as_str(),
                    f("cve"),
                    cvss,
                    risk,
                    host,
                    &item.protocol,
                    &item.port,
                    &item.plugin_name,
                    f("synopsis"),
                    f("description"),
                    f("solution"),
                    f("see_also"),
                    f("plugin_output"),
                ]
                .map(csv_field);
                out.push_str(&row.join(","));
                out.push('\n');
            }
        }
        out.into_bytes()
    }

    /// A small HTML report with the requested chapters.
    pub(crate) fn render_html(
        &self,
        scan_name: &str,
        targets: &[String],
        chapters: &str,
    ) -> Vec<u8> {
        let mut out = format!(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{0}</title></head><body><h1>{0}</h1>\n",
            xml_escape(scan_name)
        );
        if !chapters.is_empty() {
            for (i, host) in host_targets(self.hosts.len(), targets).iter().enumerate() {
                out.push_str(&format!("<h2>{}</h2><table>\n", xml_escape(host)));
                for item in &self.hosts[i % self.hosts.len()].items {
                    out.push_str(&format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                        item.severity,
                        item.plugin_id,
                        xml_escape(&item.plugin_name)
                    ));
                }
                out.push_str("</table>\n");
            }
        }
        out.push_str("</body></html>\n");
        out.into_bytes()
    }
}

impl HostBlock {
    fn substitute(&self, target: &str) -> String {
        let t = xml_escape(target);
        let mut xml = self.xml.clone();
        // Every mention (attributes, tags, plugin output such as URLs) becomes the target.
        for name in &self.names {
            xml = xml.replace(&xml_escape(name), &t);
        }
        xml
    }
}

/// The host name of each reported host: targets round-robin over the recorded hosts,
/// with extra targets getting replicated hosts (up to `MAX_HOSTS`).
fn host_targets(recorded: usize, targets: &[String]) -> Vec<String> {
    let expanded = expand_targets(targets);
    let n = recorded.max(expanded.len().min(MAX_HOSTS));
    if expanded.is_empty() {
        return Vec::new();
    }
    (0..n)
        .map(|i| expanded[i % expanded.len()].clone())
        .collect()
}

/// Turns CIDRs and ranges into concrete addresses (bounded), keeps names as they are.
pub(crate) fn expand_targets(targets: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for t in targets.iter().flat_map(|t| t.split([',', ' ', '\n', '\t'])) {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if let Ok(net) = t.parse::<ipnet::IpNet>() {
            out.extend(net.hosts().take(MAX_HOSTS).map(|a| a.to_string()));
        } else if let Some((a, _)) = t.split_once('-')
            && a.parse::<std::net::IpAddr>().is_ok()
        {
            out.push(a.to_owned());
        } else {
            out.push(t.to_owned());
        }
        if out.len() >= MAX_HOSTS {
            out.truncate(MAX_HOSTS);
            break;
        }
    }
    out
}

fn parse_item(c: regex::Captures<'_>) -> Option<Item> {
    let mut attrs: HashMap<&str, &str> = HashMap::new();
    for a in RE_ATTR.captures_iter(c.get(1)?.as_str()) {
        let (k, v) = (a.get(1)?.as_str(), a.get(2)?.as_str());
        attrs.insert(k, v);
    }
    let mut fields = HashMap::new();
    if let Some(body) = c.get(2) {
        for ch in RE_CHILD.captures_iter(body.as_str()) {
            let key: &'static str = match &ch[1] {
                "cve" => "cve",
                "cvss_base_score" => "cvss_base_score",
                "cvss3_base_score" => "cvss3_base_score",
                "risk_factor" => "risk_factor",
                "synopsis" => "synopsis",
                "description" => "description",
                "solution" => "solution",
                "see_also" => "see_also",
                _ => "plugin_output",
            };
            fields
                .entry(key)
                .or_insert_with(|| xml_unescape(ch[2].trim()));
        }
    }
    Some(Item {
        plugin_id: attrs.get("pluginID")?.parse().ok()?,
        plugin_name: xml_unescape(attrs.get("pluginName").copied().unwrap_or("")),
        plugin_family: xml_unescape(attrs.get("pluginFamily").copied().unwrap_or("")),
        severity: attrs
            .get("severity")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        port: attrs.get("port").copied().unwrap_or("0").to_owned(),
        protocol: attrs.get("protocol").copied().unwrap_or("tcp").to_owned(),
        fields,
    })
}

fn well_formed(text: &str) -> bool {
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn xml_unescape(s: &str) -> String {
    let s = s
        .strip_prefix("<![CDATA[")
        .and_then(|x| x.strip_suffix("]]>"))
        .unwrap_or(s);
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The results the simulator draws from.
#[derive(Debug)]
pub(crate) struct Corpus {
    pub(crate) files: Vec<Arc<CorpusFile>>,
}

static CACHE: LazyLock<Mutex<HashMap<PathBuf, Arc<Corpus>>>> = LazyLock::new(Mutex::default);

impl Corpus {
    /// The default directory: the repository's `corpus/nessus`.
    pub(crate) fn default_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus"))
    }

    /// Loads every usable file of `dir` (cached per directory), or a single file; falls
    /// back to the embedded sample when nothing usable is found.
    pub(crate) fn load(source: &Path) -> Arc<Corpus> {
        let mut cache = CACHE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.get(source) {
            return c.clone();
        }
        let mut paths: Vec<PathBuf> = if source.is_file() {
            vec![source.to_owned()]
        } else {
            std::fs::read_dir(source)
                .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default()
        };
        paths.sort();
        let mut files: Vec<Arc<CorpusFile>> = paths
            .iter()
            .filter_map(|p| {
                let bytes = std::fs::read(p).ok()?;
                let name = p.file_name()?.to_string_lossy().into_owned();
                CorpusFile::parse(&name, &bytes).map(Arc::new)
            })
            .collect();
        if files.is_empty() {
            files.push(Arc::new(Self::embedded()));
        }
        let corpus = Arc::new(Corpus { files });
        cache.insert(source.to_owned(), corpus.clone());
        corpus
    }

    fn embedded() -> CorpusFile {
        CorpusFile::parse(EMBEDDED_NAME, EMBEDDED)
            .expect("the embedded sample is a well-formed .nessus file with one host")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_sample_substitutes_targets() {
        let f = Corpus::embedded();
        assert_eq!(f.hosts.len(), 1);
        assert_eq!(f.hosts[0].items.len(), 40);
        let targets = vec!["192.0.2.7".to_owned(), "db.example".to_owned()];
        let xml =
            String::from_utf8(f.render_nessus("mcp-1", &targets, "192.0.2.7, db.example")).unwrap();
        assert!(!xml.contains("172.32.0.215"), "original host leaked");
        assert_eq!(xml.matches("<ReportHost name=").count(), 2);
        assert!(xml.contains(r#"<ReportHost name="192.0.2.7""#));
        assert!(xml.contains(r#"<ReportHost name="db.example""#));
        assert!(xml.contains(r#"<Report name="mcp-1""#));
        assert!(well_formed(&xml));
        let csv = String::from_utf8(f.render_csv(&targets)).unwrap();
        assert!(csv.starts_with("Plugin ID,CVE,CVSS,Risk,Host,"));
        assert!(csv.matches(",\"db.example\",").count() >= 40);
    }

    #[test]
    fn cidr_targets_expand() {
        let t = expand_targets(&["10.0.0.0/30, host.example".to_owned()]);
        assert_eq!(t, ["10.0.0.1", "10.0.0.2", "host.example"]);
    }
}
