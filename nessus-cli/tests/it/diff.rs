//! `nessus-cli diff`: new, fixed, severity-changed and unchanged findings.

use super::*;

/// Writes a copy of the fixture with the first `ReportItem` removed and the first
/// severity-4 item lowered to 3: against the original that is 1 fixed, 1 severity changed.
fn edited_fixture(dir: &std::path::Path) -> PathBuf {
    let text = std::fs::read_to_string(corpus(FIXTURE)).unwrap();
    let start = text.find("<ReportItem ").unwrap();
    let end = start + text[start..].find("</ReportItem>").unwrap() + "</ReportItem>".len();
    let mut edited = format!("{}{}", &text[..start], &text[end..]);
    let critical = edited.find("severity=\"4\"").unwrap();
    edited.replace_range(critical..critical + 12, "severity=\"3\"");
    let path = dir.join("edited.nessus");
    std::fs::write(&path, edited).unwrap();
    path
}

#[test]
fn diff_of_files_in_json_and_human_form() {
    let dir = tempfile::tempdir().unwrap();
    let old = corpus(FIXTURE);
    let new = edited_fixture(dir.path());
    let (old, new) = (old.to_str().unwrap(), new.to_str().unwrap());

    let json: serde_json::Value =
        serde_json::from_slice(&check(&["diff", old, new, "--json"], OK).stdout).unwrap();
    assert_eq!(
        json["counts"],
        serde_json::json!({"new": 0, "fixed": 1, "unchanged": 38, "severity_changed": 1})
    );
    assert_eq!(json["severity_changed"][0]["old_severity"], 4);
    assert_eq!(json["severity_changed"][0]["new_severity"], 3);

    // Swapping the scans turns "fixed" into "new".
    let swapped: serde_json::Value =
        serde_json::from_slice(&check(&["--json", "diff", new, old], OK).stdout).unwrap();
    assert_eq!(swapped["counts"]["new"], 1);
    assert_eq!(swapped["counts"]["fixed"], 0);

    let human = stdout(&check(&["diff", old, new], OK));
    assert!(
        human.contains("new: 0  fixed: 1  severity changed: 1  unchanged: 38"),
        "{human}"
    );
    assert!(human.contains("critical -> high"), "{human}");
}

#[test]
fn diff_accepts_findings_stores() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let reader = std::io::BufReader::new(std::fs::File::open(corpus(FIXTURE)).unwrap());
    nessus_schema::Store::ingest(reader, &store).unwrap();
    let file = corpus(FIXTURE);
    let out = check(
        &[
            "diff",
            "--json",
            store.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        OK,
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["counts"]["unchanged"], 40);
}

#[test]
fn diff_input_errors() {
    let file = corpus(FIXTURE);
    let file = file.to_str().unwrap();
    let out = check(&["diff", file, "/nonexistent/new.nessus"], INPUT);
    assert!(stderr(&out).contains("/nonexistent/new.nessus"));
    let bad = corpus("ruby-nessus__spec_example_v2.nessus");
    let out = check(&["diff", bad.to_str().unwrap(), file], INPUT);
    assert!(stderr(&out).contains("malformed XML"), "{}", stderr(&out));
}
