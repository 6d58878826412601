//! `scanners list|check` against simulators started in the test.

use std::time::Duration;

use super::support::{Sim, dead_url, write_config};
use super::*;

const RUNTIME: i32 = 1;

#[test]
fn scanners_list_shows_pools_instances_and_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("scanner1", "https://a.example:8834"),
            ("scanner2", "http://b.example:8834"),
        ],
    );
    let config = config.to_str().unwrap();
    let out = check(&["scanners", "list", "--config", config], OK);
    let text = stdout(&out);
    for expected in [
        "scanner1",
        "scanner2",
        "https://a.example:8834",
        "capacity 4",
    ] {
        assert!(text.contains(expected), "{expected} missing from\n{text}");
    }
    assert!(!text.contains("test-secret-value"));

    let out = check(&["--json", "--config", config, "scanners", "list"], OK);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["pool"], "nessus");
    assert_eq!(v[0]["capacity"], 4);
    assert_eq!(v[0]["instances"][1]["instance_id"], "scanner2");
    assert_eq!(v[0]["instances"][1]["tls"], "none (http)");
    assert_eq!(v[0]["instances"][0]["max_concurrent_scans"], 2);

    // Without a config there is nothing to list.
    check(&["scanners", "list"], USAGE);
}

#[test]
fn scanners_check_reports_version_licence_and_unreachable_instances() {
    let sim = Sim::start(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("up", &sim.url())]);
    let config = config.to_str().unwrap();
    let out = check(&["scanners", "check", "--json", "--config", config], OK);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let up = &v[0];
    assert_eq!(up["instance"], "up");
    assert_eq!(up["reachable"], true, "{up}");
    assert_eq!(up["status"], "ready", "{up}");
    assert!(
        up["version"].as_str().is_some_and(|s| !s.is_empty()),
        "{up}"
    );
    assert!(up["scan_api"].is_boolean(), "{up}");
    assert_eq!(up["tls"], "none (http)");

    let out = check(&["scanners", "check", "--config", config], OK);
    assert!(stdout(&out).contains("up"), "{}", stdout(&out));

    // One instance down: the table shows both, and the exit code says something is wrong.
    let dead = dead_url();
    let config = write_config(dir.path(), &[("up", &sim.url()), ("down", &dead)]);
    let config = config.to_str().unwrap();
    let out = check(
        &[
            "scanners",
            "check",
            "--json",
            "--timeout",
            "3",
            "--config",
            config,
        ],
        RUNTIME,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let down = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["instance"] == "down")
        .expect("down is reported");
    assert_eq!(down["reachable"], false);
    assert!(down["error"].as_str().is_some(), "{down}");
    assert!(stderr(&out).contains("1 of 2"), "{}", stderr(&out));
}

#[test]
fn scanners_check_reports_clock_skew() {
    let sim = Sim::start(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("up", &sim.url())]);
    let config = config.to_str().unwrap();
    // (fault in seconds, the warning's direction when it deserves one)
    for (skew, warning) in [
        (0_i64, None),
        (30, None),
        (3600, Some("ahead of ours")),
        (-120, Some("behind ours")),
    ] {
        sim.handle
            .as_ref()
            .unwrap()
            .update_faults(|f| f.clock_skew_secs = skew);
        let out = check(&["scanners", "check", "--json", "--config", config], OK);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let up = &v[0];
        let measured = up["clock_skew_seconds"].as_i64().expect("a skew");
        assert!((measured - skew).abs() <= 1, "fault {skew}: {up}");
        assert!(up["clock_error"].is_null(), "{up}");
        match warning {
            Some(direction) => assert!(
                up["clock_skew_warning"]
                    .as_str()
                    .is_some_and(|w| w.contains(direction)),
                "{up}"
            ),
            None => assert!(up["clock_skew_warning"].is_null(), "{up}"),
        }
        let warned = warning.is_some();

        let text = stdout(&check(&["scanners", "check", "--config", config], OK));
        assert!(text.contains("clock skew"), "{text}");
        assert_eq!(text.contains("(WARNING)"), warned, "{text}");
        assert_eq!(text.contains("warning: nessus/up:"), warned, "{text}");
    }
}
