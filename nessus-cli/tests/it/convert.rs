//! `nessus-cli convert`: the predecessor's golden values, framing, formats, stores, errors.

use super::*;

/// Converts the fixture with `extra` flags; returns the JSON-NL lines.
fn convert_fixture(extra: &[&str]) -> Vec<serde_json::Value> {
    let file = corpus(FIXTURE);
    let mut args = vec!["convert", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    json_lines(&check(&args, OK))
}

fn vulnerabilities(lines: &[serde_json::Value]) -> usize {
    lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .count()
}

#[test]
fn golden_filter_totals_of_the_fixture() {
    for (filter, expected) in [
        (r#"{"severity":"4"}"#, 11),
        (r#"{"severity":">=3"}"#, 20),
        (r#"{"cvss3_base_score":">=9"}"#, 11),
        (r#"{"port":"22"}"#, 8),
    ] {
        for profile in ["minimal", "summary", "brief", "full"] {
            let lines = convert_fixture(&["--profile", profile, "--filter", filter]);
            assert_eq!(
                lines[0]["total_vulnerabilities"], expected,
                "{filter} {profile}"
            );
            assert_eq!(vulnerabilities(&lines), expected, "{filter} {profile}");
        }
    }
}

#[test]
fn whole_file_without_page_and_framing_order() {
    let lines = convert_fixture(&[]);
    assert_eq!(lines[0]["type"], "schema");
    assert_eq!(lines[0]["profile"], "brief");
    assert_eq!(lines[1]["type"], "scan_metadata");
    assert_eq!(
        lines[1]["scan_name"],
        "Integration Test - Complete Scan 172.32.0.215"
    );
    assert_eq!(vulnerabilities(&lines), 40);
    assert!(lines.iter().all(|l| l["type"] != "pagination"));
    // One closing line, last: everything, uncut (the command line has no budget).
    let end = lines.last().unwrap();
    assert_eq!(end["type"], "end");
    assert_eq!(end["returned"], 40);
    assert_eq!(end["total_vulnerabilities"], 40);
    assert_eq!(end["truncated"], false);
    assert_eq!(lines.iter().filter(|l| l["type"] == "end").count(), 1);
}

fn ingest_fixture(dir: &std::path::Path) -> PathBuf {
    let store = dir.join("store");
    let reader = std::io::BufReader::new(std::fs::File::open(corpus(FIXTURE)).unwrap());
    nessus_schema::Store::ingest(reader, &store).unwrap();
    store
}

fn records(lines: &[serde_json::Value]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .cloned()
        .collect()
}

#[test]
fn pages_and_cursor_walk_the_same_findings() {
    let first = convert_fixture(&["--page", "1", "--page-size", "10"]);
    let pagination = first.last().unwrap();
    assert_eq!(pagination["type"], "pagination");
    assert_eq!(pagination["total_pages"], 4);
    assert_eq!(pagination["has_next"], true);
    assert_eq!(vulnerabilities(&first), 10);
    let second = convert_fixture(&["--page", "2", "--page-size", "10"]);
    assert_ne!(records(&first), records(&second));

    // Cursors belong to one store: page 1 of the store hands out the cursor of page 2.
    let dir = tempfile::tempdir().unwrap();
    let store = ingest_fixture(dir.path());
    let store = store.to_str().unwrap();
    let first = json_lines(&check(
        &["convert", store, "--page", "1", "--page-size", "10"],
        OK,
    ));
    let cursor = first.last().unwrap()["next_cursor"]
        .as_str()
        .expect("a next cursor")
        .to_owned();
    let by_cursor = json_lines(&check(&["convert", store, "--cursor", &cursor], OK));
    assert_eq!(records(&second), records(&by_cursor));
    let out = check(&["convert", store, "--cursor", "not-a-cursor"], USAGE);
    assert!(stderr(&out).contains("invalid cursor"), "{}", stderr(&out));

    // A file is re-ingested on every call, so a cursor can never apply to it.
    let file = corpus(FIXTURE);
    let out = check(
        &["convert", file.to_str().unwrap(), "--cursor", &cursor],
        USAGE,
    );
    assert!(stderr(&out).contains("findings store"), "{}", stderr(&out));

    // page_size is clamped to 10..=100 as in the predecessor.
    let clamped = convert_fixture(&["--page", "1", "--page-size", "1"]);
    assert_eq!(clamped.last().unwrap()["page_size"], 10);
}

#[test]
fn custom_fields_sort_and_includes() {
    let lines = convert_fixture(&["--fields", "host,plugin_id,port", "--sort", "port"]);
    assert_eq!(lines[0]["profile"], "custom");
    let ports: Vec<i64> = lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .map(|l| l["port"].as_i64().unwrap())
        .collect();
    assert!(
        ports.windows(2).all(|w| w[0] <= w[1]),
        "sorted by port: {ports:?}"
    );

    let lines = convert_fixture(&["--include", "hosts"]);
    assert!(lines.iter().any(|l| l["type"] == "host"));

    let file = corpus("hdf-libs__compliance.nessus");
    let out = check(
        &[
            "convert",
            file.to_str().unwrap(),
            "--include",
            "hosts,compliance",
        ],
        OK,
    );
    let lines = json_lines(&out);
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "compliance").count(),
        5
    );
}

#[test]
fn json_format_is_one_array_of_the_same_records() {
    let file = corpus(FIXTURE);
    let file = file.to_str().unwrap();
    let jsonl = json_lines(&check(&["convert", file, "--page", "1"], OK));
    let json: serde_json::Value = serde_json::from_slice(
        &check(&["convert", file, "--page", "1", "--format", "json"], OK).stdout,
    )
    .expect("one JSON document");
    assert_eq!(json.as_array().unwrap(), &jsonl);
}

#[test]
fn a_findings_store_serves_the_same_pages_as_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = ingest_fixture(dir.path());
    let args = [
        "--filter",
        r#"{"severity":">=3"}"#,
        "--page",
        "2",
        "--page-size",
        "10",
    ];
    let from_store = {
        let mut all = vec!["convert", store.to_str().unwrap()];
        all.extend_from_slice(&args);
        json_lines(&check(&all, OK))
    };
    assert_eq!(from_store, convert_fixture(&args));
}

#[test]
fn bad_inputs_exit_with_input_error_and_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.nessus");
    let fixture = std::fs::read(corpus(FIXTURE)).unwrap();
    std::fs::write(&truncated, &fixture[..fixture.len() / 2]).unwrap();
    let not_a_store = dir.path().join("empty-dir");
    std::fs::create_dir(&not_a_store).unwrap();
    let unknown_encoding = dir.path().join("klingon.nessus");
    std::fs::write(
        &unknown_encoding,
        r#"<?xml version="1.0" encoding="klingon"?><NessusClientData_v2/>"#,
    )
    .unwrap();

    for (path, message) in [
        (
            corpus("ruby-nessus__spec_example_v2.nessus"),
            "malformed XML",
        ),
        (corpus("libnessus__xxxxxxxx.nessus"), "empty"),
        (
            corpus("ruby-nessus__example_v_wrong.nessus"),
            "NessusClientData_vwrong",
        ),
        (
            corpus("libnessus__nessus_report_test_local.nessus.v1"),
            "NessusClientData",
        ),
        (truncated, "truncated"),
        (
            unknown_encoding,
            "unsupported character encoding \"klingon\"",
        ),
        (dir.path().join("missing.nessus"), "cannot open"),
        (not_a_store, "not a findings store"),
    ] {
        let out = check(&["convert", path.to_str().unwrap()], INPUT);
        let err = stderr(&out);
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(message), "{} -> {err}", path.display());
    }
}

#[test]
fn bad_queries_exit_with_usage_error_and_say_why() {
    let file = corpus(FIXTURE);
    let file = file.to_str().unwrap();
    for (args, message) in [
        (vec!["--filter", "{not json"], "not valid JSON"),
        (
            vec!["--filter", r#"{"sevrity":"4"}"#],
            "did you mean \"severity\"",
        ),
        (vec!["--profile", "everything"], "everything"),
        (vec!["--sort", "nonsense_field"], "nonsense_field"),
    ] {
        let mut all = vec!["convert", file];
        all.extend_from_slice(&args);
        let out = check(&all, USAGE);
        assert!(
            stderr(&out).contains(message),
            "{args:?} -> {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
    }
}
