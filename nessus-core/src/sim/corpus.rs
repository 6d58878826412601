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

static RE_TARGET_PREF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?s)(<name>TARGET</name>\s*<value>)[^<]*(</value>)"#).expect("static regex")
});
static RE_REPORT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"<Report name="[^"]*""#).expect("static regex"));

impl CorpusFile {
    /// Parses a `.nessus` v2 file; `None` unless it is well-formed and has hosts.
    pub(crate) fn parse(name: &str, bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        if !text.contains("<NessusClientData_v2") {
            return None;
        }
        let hosts = scan_hosts(text)?;
        let first = hosts.first()?.span.0;
        let last = hosts.last()?.span.1;
        Some(Self {
            name: name.to_owned(),
            prefix: text[..first].to_owned(),
            suffix: text[last..].to_owned(),
            hosts: hosts.into_iter().map(|h| h.block).collect(),
        })
    }

    /// Whether any recorded finding is low, medium, high or critical.
    pub(crate) fn has_findings_above_info(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.items.iter().any(|i| i.severity > 0))
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

struct ScannedHost {
    span: (usize, usize),
    block: HostBlock,
}

/// Item children kept for CSV.
const FIELDS: [&str; 9] = [
    "cve",
    "cvss_base_score",
    "cvss3_base_score",
    "risk_factor",
    "synopsis",
    "description",
    "solution",
    "see_also",
    "plugin_output",
];

/// One pass of a streaming XML reader over the whole file (which also proves it is
/// well-formed): the byte span of every `ReportHost`, its names, and its items.
fn scan_hosts(text: &str) -> Option<Vec<ScannedHost>> {
    use quick_xml::events::{BytesStart, Event};

    fn attrs(e: &BytesStart<'_>) -> HashMap<String, String> {
        e.attributes()
            .filter_map(Result::ok)
            .filter_map(|a| {
                let key = a.key.as_ref().to_owned();
                let value = a
                    .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                    .ok()?
                    .into_owned();
                Some((key, value))
            })
            .collect()
    }
    fn item(a: &HashMap<String, String>) -> Option<Item> {
        let get = |k: &str| a.get(k).cloned().unwrap_or_default();
        Some(Item {
            plugin_id: a.get("pluginID")?.parse().ok()?,
            plugin_name: get("pluginName"),
            plugin_family: get("pluginFamily"),
            severity: a.get("severity").and_then(|s| s.parse().ok()).unwrap_or(0),
            port: a.get("port").cloned().unwrap_or_else(|| "0".into()),
            protocol: a.get("protocol").cloned().unwrap_or_else(|| "tcp".into()),
            fields: HashMap::new(),
        })
    }

    let mut reader = quick_xml::Reader::from_str(text);
    let mut hosts = Vec::new();
    let mut host: Option<(usize, Vec<String>, Vec<Item>)> = None;
    let mut current: Option<Item> = None;
    // The element whose text is being collected: a host tag name or an item field.
    let mut capture: Option<String> = None;
    let mut buf = String::new();
    loop {
        let before = usize::try_from(reader.buffer_position()).ok()?;
        match reader.read_event().ok()? {
            Event::Eof => break,
            Event::Start(e) => match e.name().as_ref() {
                "ReportHost" => {
                    let name = attrs(&e).remove("name").unwrap_or_default();
                    host = Some((before, vec![name], Vec::new()));
                }
                "ReportItem" => current = item(&attrs(&e)),
                "tag" if host.is_some() => {
                    let n = attrs(&e).remove("name").unwrap_or_default();
                    if matches!(
                        n.as_str(),
                        "host-ip" | "host-fqdn" | "hostname" | "netbios-name"
                    ) {
                        capture = Some(n);
                        buf.clear();
                    }
                }
                other if current.is_some() && FIELDS.contains(&other) => {
                    capture = Some(other.to_owned());
                    buf.clear();
                }
                _ => {}
            },
            Event::Empty(e) if e.name().as_ref() == "ReportItem" => {
                if let (Some(h), Some(i)) = (host.as_mut(), item(&attrs(&e))) {
                    h.2.push(i);
                }
            }
            Event::Text(t) if capture.is_some() => buf.push_str(&t.xml10_content()),
            Event::CData(t) if capture.is_some() => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if capture.is_some() => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    buf.push(c);
                } else {
                    buf.push_str(match r.xml10_content().as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    });
                }
            }
            Event::End(e) => match e.name().as_ref() {
                "ReportHost" => {
                    let end = usize::try_from(reader.buffer_position()).ok()?;
                    if let Some((start, names, items)) = host.take() {
                        let names = names.into_iter().filter(|n| !n.trim().is_empty()).collect();
                        hosts.push(ScannedHost {
                            span: (start, end),
                            block: HostBlock {
                                xml: text[start..end].to_owned(),
                                names,
                                items,
                            },
                        });
                    }
                }
                "ReportItem" => {
                    if let (Some(h), Some(i)) = (host.as_mut(), current.take()) {
                        h.2.push(i);
                    }
                }
                _ => {
                    if let Some(c) = capture.take() {
                        let value = buf.trim().to_owned();
                        if let Some(i) = current.as_mut() {
                            if let Some(k) = FIELDS.iter().find(|f| **f == c) {
                                i.fields.entry(k).or_insert(value);
                            }
                        } else if let Some(h) = host.as_mut()
                            && !value.is_empty()
                            && !h.1.contains(&value)
                        {
                            h.1.push(value);
                        }
                    }
                }
            },
            _ => {}
        }
    }
    Some(hosts)
}

pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The results the simulator draws from: the `.nessus` files of a directory (or one
/// file), each parsed on first use and cached for the life of the process.
#[derive(Debug)]
pub(crate) struct Corpus {
    paths: Vec<PathBuf>,
}

type Parsed = Mutex<HashMap<PathBuf, Option<Arc<CorpusFile>>>>;

static PARSED: LazyLock<Parsed> = LazyLock::new(Mutex::default);
static EMBEDDED_FILE: LazyLock<Arc<CorpusFile>> = LazyLock::new(|| {
    Arc::new(
        CorpusFile::parse(EMBEDDED_NAME, EMBEDDED)
            .expect("the embedded sample is a well-formed .nessus file with one host"),
    )
});

impl Corpus {
    /// The default directory: the repository's `corpus/nessus`.
    pub(crate) fn default_dir() -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus"))
    }

    /// Lists the candidate files of `source` (a directory, or a single file).
    pub(crate) fn load(source: &Path) -> Arc<Corpus> {
        let mut paths: Vec<PathBuf> = if source.is_file() {
            vec![source.to_owned()]
        } else {
            std::fs::read_dir(source)
                .map(|rd| {
                    rd.filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|p| p.is_file())
                        .collect()
                })
                .unwrap_or_default()
        };
        paths.sort();
        Arc::new(Corpus { paths })
    }

    /// The file for a scan of `targets`: chosen by a stable hash of the targets (see
    /// [`targets_key`]), so the same targets get the same file on every scan and across
    /// restarts (demos and walkthroughs are repeatable). From the hashed position the
    /// files are tried in order: the first usable one with a finding above info wins (a
    /// demo target should have something to triage); if none has one, the first usable
    /// one; the embedded sample when none is usable.
    pub(crate) fn pick_for(&self, targets: &str) -> Arc<CorpusFile> {
        let len = self.paths.len();
        if len == 0 {
            return EMBEDDED_FILE.clone();
        }
        // The remainder is below `len`, a usize.
        let start =
            usize::try_from(fnv1a64(targets_key(targets).as_bytes()) % len as u64).unwrap_or(0);
        let usable = (0..len).filter_map(|k| Self::parsed(&self.paths[(start + k) % len]));
        let mut first = None;
        for f in usable {
            if f.has_findings_above_info() {
                return f;
            }
            first.get_or_insert(f);
        }
        first.unwrap_or_else(|| EMBEDDED_FILE.clone())
    }

    fn parsed(path: &Path) -> Option<Arc<CorpusFile>> {
        if let Some(hit) = PARSED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(path)
        {
            return hit.clone();
        }
        // Parsed outside the lock: other scans need not wait for a big file.
        let parsed = std::fs::read(path).ok().and_then(|bytes| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            CorpusFile::parse(&name, &bytes).map(Arc::new)
        });
        PARSED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(path.to_owned(), parsed.clone());
        parsed
    }

    #[cfg(test)]
    fn embedded() -> Arc<CorpusFile> {
        EMBEDDED_FILE.clone()
    }
}

/// The normalised form of a scan's target list: split on the separators Nessus accepts,
/// trimmed, lower-cased, de-duplicated and sorted, joined with `,`. `"B, a"` and `"a,b"`
/// are the same scan target for the simulator.
pub(crate) fn targets_key(text_targets: &str) -> String {
    let mut targets: Vec<String> = text_targets
        .split([',', '\n', ' ', '\t', '\r'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    targets.sort();
    targets.dedup();
    targets.join(",")
}

/// 64-bit FNV-1a: fixed constants, so the value is the same on every run and platform
/// (std's `RandomState` is seeded per process and would not be).
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
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
        assert_eq!(scan_hosts(&xml).unwrap().len(), 2, "output is well-formed");
        let csv = String::from_utf8(f.render_csv(&targets)).unwrap();
        assert!(csv.starts_with("Plugin ID,CVE,CVSS,Risk,Host,"));
        assert!(csv.matches(",\"db.example\",").count() >= 40);
    }

    #[test]
    fn unusable_files_are_rejected() {
        assert!(CorpusFile::parse("empty", b"").is_none());
        assert!(
            CorpusFile::parse("v1", b"<NessusClientData><Report/></NessusClientData>").is_none()
        );
        let broken = b"<NessusClientData_v2><Report><ReportHost name=\"a\"></Report>";
        assert!(CorpusFile::parse("broken", broken).is_none());
    }

    #[test]
    fn target_key_is_order_case_and_separator_blind() {
        // FNV-1a's published test vectors: the hash is fixed, not seeded per process.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        for (a, b) in [
            ("192.0.2.10", " 192.0.2.10 "),
            ("b.example, 192.0.2.1", "192.0.2.1\nB.EXAMPLE"),
            ("a,a,b", "b a"),
        ] {
            assert_eq!(targets_key(a), targets_key(b), "{a:?} vs {b:?}");
        }
        assert_ne!(targets_key("192.0.2.1"), targets_key("192.0.2.10"));
    }

    #[test]
    fn cidr_targets_expand() {
        let t = expand_targets(&["10.0.0.0/30, host.example".to_owned()]);
        assert_eq!(t, ["10.0.0.1", "10.0.0.2", "host.example"]);
    }
}
