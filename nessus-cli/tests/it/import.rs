//! `nessus-cli import`: a .nessus file becomes a completed task with its findings store.

use super::*;

#[test]
fn import_creates_a_completed_task_with_a_findings_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let fixture = corpus(FIXTURE);
    let fixture = fixture.to_str().unwrap();
    let out = check(
        &[
            "import",
            fixture,
            "--data-dir",
            data,
            "--principal",
            "alice",
            "--json",
        ],
        OK,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task_id = v["task_id"].as_str().expect("a task id").to_owned();
    assert_eq!(v["status"], "completed");
    assert_eq!(v["principal"], "alice");
    assert_eq!(v["results_summary"]["hosts_scanned"], 1, "{v}");
    let store = dir.path().join("results").join(&task_id).join("store");
    assert!(store.join("meta.json").is_file());

    // The queue serves it like any finished scan.
    let out = check(
        &["tasks", "show", &task_id, "--data-dir", data, "--json"],
        OK,
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["task"]["status"], "completed", "{shown}");
    // In the reserved pool no worker serves, as the server's import_scan does it.
    assert_eq!(shown["task"]["pool"], "imported", "{shown}");
    assert_eq!(v["pool"], "imported");
    assert_eq!(
        shown["task"]["description"], "imported from eafonin-nessus-api__sample_scan.nessus",
        "{shown}"
    );
    // And its store converts to the fixture's 40 findings.
    let out = check(&["convert", store.to_str().unwrap()], OK);
    assert_eq!(
        json_lines(&out)
            .iter()
            .filter(|l| l.get("plugin_id").is_some())
            .count(),
        40
    );

    // Another pool is refused before anything is read or recorded.
    let out = check(
        &["import", fixture, "--data-dir", data, "--pool", "nessus"],
        USAGE,
    );
    assert!(
        stderr(&out).contains("--pool nessus") && stderr(&out).contains("'imported'"),
        "{}",
        stderr(&out)
    );
    // Human output names the task and the counts.
    let out = check(
        &[
            "import",
            fixture,
            "--data-dir",
            data,
            "--name",
            "again",
            "--pool",
            "imported",
            "--authenticated",
        ],
        OK,
    );
    let text = stdout(&out);
    assert!(
        text.contains("imported") && text.contains("1 host(s)"),
        "{text}"
    );
    let out = check(
        &[
            "tasks",
            "list",
            "--data-dir",
            data,
            "--status",
            "completed",
            "--json",
        ],
        OK,
    );
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let again = page["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "again")
        .expect("the second import is listed");
    assert_eq!(again["pool"], "imported", "{again}");
    assert_ne!(
        again["authentication_status"], v["authentication_status"],
        "{again}"
    );
}

#[test]
fn import_errors_create_no_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    check(
        &["import", "/nonexistent.nessus", "--data-dir", data],
        INPUT,
    );
    let bad = dir.path().join("bad.nessus");
    std::fs::write(&bad, "<NessusClientData_v2><Report name='x'><ReportHost").unwrap();
    check(
        &["import", bad.to_str().unwrap(), "--data-dir", data],
        INPUT,
    );
    // Nothing was recorded: the queue (opened as the server opens it) holds no task.
    let out = check(&["tasks", "list", "--data-dir", data, "--json"], OK);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(0), "{page}");
    // Nowhere to put the results.
    let out = check(&["import", corpus(FIXTURE).to_str().unwrap()], USAGE);
    assert!(stderr(&out).contains("--data-dir"), "{}", stderr(&out));

    // With a queue in place, a bad file still adds no task and leaves no staging dir.
    check(
        &[
            "import",
            corpus(FIXTURE).to_str().unwrap(),
            "--data-dir",
            data,
        ],
        OK,
    );
    let out = check(
        &["import", bad.to_str().unwrap(), "--data-dir", data],
        INPUT,
    );
    assert!(
        stderr(&out).contains("cannot import") && stderr(&out).contains("bad.nessus"),
        "{}",
        stderr(&out)
    );
    let out = check(&["tasks", "list", "--data-dir", data, "--json"], OK);
    let page: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1), "{page}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("results"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn housekeeping_uses_the_config_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "server:\n  data_dir: {:?}\nqueue:\n  completed_ttl_days: 0\nnessus: []\n",
        dir.path()
    );
    let config = dir.path().join("scanners.yaml");
    std::fs::write(&config, yaml).unwrap();
    let config = config.to_str().unwrap();
    let fixture = corpus(FIXTURE);
    let out = check(
        &[
            "import",
            fixture.to_str().unwrap(),
            "--config",
            config,
            "--json",
        ],
        OK,
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let task_id = v["task_id"].as_str().unwrap().to_owned();
    let task_dir = dir.path().join("results").join(&task_id);
    assert!(task_dir.is_dir());

    // The default retention (7 days) keeps it...
    let data = dir.path().to_str().unwrap();
    let out = check(&["housekeeping", "run", "--data-dir", data, "--json"], OK);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["tasks"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    // ...the config's (0 days) deletes it and its results.
    let out = check(&["housekeeping", "run", "--config", config, "--json"], OK);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["tasks"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert!(!task_dir.exists());
}

/// `nessus-cli import` and the server's `import_scan` (a file in the import directory)
/// are one function: the same file makes the same task.
#[test]
fn cli_import_and_import_scan_make_the_same_task() {
    use nessus_queue::service::{ImportRequest, ImportSource, OpenOptions, Principal, Service};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let fixture = corpus(FIXTURE);
    let out = check(
        &[
            "import",
            fixture.to_str().unwrap(),
            "--data-dir",
            data,
            "--principal",
            "alice",
            "--json",
        ],
        OK,
    );
    let by_cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let by_server = rt.block_on(async {
        let config: nessus_core::Config = "".parse().unwrap();
        let service = Service::open(
            config,
            OpenOptions::new().data_dir(Some(dir.path().to_owned())),
        )
        .await
        .unwrap();
        let source = ImportSource::Confined {
            dir: fixture.parent().unwrap().to_owned(),
            requested: FIXTURE.to_owned(),
        };
        service
            .import(&Principal::new("alice"), ImportRequest::new(source))
            .await
            .unwrap()
            .task
    });
    for (key, server) in [
        ("name", serde_json::json!(by_server.name)),
        ("pool", serde_json::json!(by_server.pool)),
        ("principal", serde_json::json!(by_server.principal)),
        (
            "results_summary",
            serde_json::json!(by_server.results_summary),
        ),
        (
            "authentication_status",
            serde_json::json!(by_server.authentication_status),
        ),
    ] {
        assert_eq!(by_cli[key], server, "{key}");
    }
    let shown = check(
        &[
            "tasks",
            "show",
            by_cli["task_id"].as_str().unwrap(),
            "--data-dir",
            data,
            "--json",
        ],
        OK,
    );
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["task"]["targets"], by_server.targets.as_str());
    assert_eq!(shown["task"]["description"], by_server.description.as_str());
}

/// `findings changes`: two imports of the same host, one item removed in the second;
/// the command names it fixed since the first (the same service call as the tool).
#[test]
fn findings_changes_names_what_the_second_import_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let xml = std::fs::read_to_string(corpus(FIXTURE)).unwrap();
    let start = xml.find("<ReportItem ").unwrap();
    let second_at = xml[start + 1..].find("<ReportItem ").unwrap() + start + 1;
    let end = xml[second_at..].find("</ReportItem>").unwrap() + second_at + "</ReportItem>".len();
    let removed = &xml[second_at..end];
    let pid = removed
        .split("pluginID=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let edited = dir.path().join("second.nessus");
    std::fs::write(&edited, xml.replacen(removed, "", 1)).unwrap();
    let fixture = corpus(FIXTURE);
    let first = check(
        &[
            "import",
            fixture.to_str().unwrap(),
            "--data-dir",
            data,
            "--json",
        ],
        OK,
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    let t1 = v["task_id"].as_str().unwrap().to_owned();
    check(
        &["import", edited.to_str().unwrap(), "--data-dir", data],
        OK,
    );
    let out = check(
        &[
            "findings",
            "changes",
            "172.32.0.0/24",
            "--since",
            &t1,
            "--data-dir",
            data,
            "--json",
        ],
        OK,
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 2, "one change and the closing line: {lines:?}");
    assert_eq!(lines[0]["state"], "fixed");
    assert_eq!(lines[0]["plugin_id"].to_string(), pid);
    assert_eq!(lines[1]["type"], "end");
    // Text output names it too; a bad --since is a usage error.
    let out = check(
        &[
            "findings",
            "changes",
            "172.32.0.215",
            "--since",
            &t1,
            "--data-dir",
            data,
        ],
        OK,
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fixed"));
    check(
        &[
            "findings",
            "changes",
            "172.32.0.215",
            "--since",
            "not a date",
            "--data-dir",
            data,
        ],
        USAGE,
    );
}
