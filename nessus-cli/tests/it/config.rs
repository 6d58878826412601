//! `config check` and the global `--config` flag.

use super::*;

fn check_file(yaml: &str, json: bool, expected_code: i32) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scanners.yaml");
    std::fs::write(&path, yaml).unwrap();
    let path = path.to_str().unwrap();
    let mut args = vec!["config", "check", path];
    if json {
        args.push("--json");
    }
    check(&args, expected_code)
}

const GOOD: &str = "nessus:\n  target_policy:\n    allow: [192.0.2.0/24]\n  instances:\n    \
    - instance_id: scanner1\n      url: https://nessus.example:8834\n      \
    access_key: visible-access-key\n      secret_key: very-secret-key-value\n";

#[test]
fn a_good_config_is_described_with_secrets_masked() {
    let out = check_file(GOOD, false, OK);
    let text = stdout(&out);
    assert!(text.contains("scanner1"), "{text}");
    assert!(text.contains("********"), "{text}");
    assert!(!text.contains("very-secret-key-value"), "{text}");
    assert!(text.trim_end().ends_with("OK"), "{text}");

    let out = check_file(GOOD, true, OK);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["pools"][0]["name"], "nessus");
    assert_eq!(v["pools"][0]["instances"][0], "scanner1");
    assert!(!stdout(&out).contains("very-secret-key-value"));
}

#[test]
fn a_broken_config_names_line_and_column() {
    // Line 3 has a bad indentation: a YAML syntax error.
    let broken = "nessus:\n  - instance_id: a\n   url: [unclosed\n";
    let out = check_file(broken, false, INPUT);
    let err = stderr(&out);
    assert!(err.contains(":3:") || err.contains("line 3"), "{err}");

    // A semantic error (bad CIDR) also points at its place.
    let bad_cidr = "nessus:\n  target_policy:\n    allow: [10.0.0.0/99]\n  instances: []\n";
    let out = check_file(bad_cidr, true, INPUT);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["line"], 3, "{v}");
    assert!(v["column"].as_u64().is_some(), "{v}");
    assert!(stderr(&out).contains("10.0.0.0/99"), "{}", stderr(&out));
}

#[test]
fn config_check_errors() {
    check(&["config", "check"], USAGE);
    let out = check(&["config", "check", "/nonexistent/scanners.yaml"], INPUT);
    assert!(stderr(&out).contains("/nonexistent/scanners.yaml"));
    // --config in any position, and from the environment.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.yaml");
    std::fs::write(&path, GOOD).unwrap();
    let path = path.to_str().unwrap();
    check(&["--config", path, "config", "check"], OK);
    check(&["config", "check", "--config", path], OK);
    cargo_bin_cmd!("nessus-cli")
        .args(["config", "check"])
        .env("NESSUS_CONFIG", path)
        .assert()
        .code(OK);
    // A broken --config fails the commands that use it, as an input error.
    check(
        &["--config", "/nonexistent.yaml", "scanners", "list"],
        INPUT,
    );
}
