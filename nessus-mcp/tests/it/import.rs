//! import_scan: a .nessus file becomes a completed task that results and diff read.

use std::time::Duration;

use serde_json::json;

use crate::support::{Harness, OTHER_TOKEN, TOKEN, call, call_ok, text};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus");

fn corpus(name: &str) -> String {
    std::fs::read_to_string(format!("{CORPUS}/{name}")).expect("corpus file")
}

#[tokio::test]
async fn import_by_path_and_inline_then_read_and_diff() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let import_dir = h._dir.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("import dir");
    std::fs::copy(
        format!("{CORPUS}/auvap__ms2_scan.nessus"),
        import_dir.join("ms2.nessus"),
    )
    .expect("copy");

    let by_path = call_ok(&client, "import_scan", json!({"path": "ms2.nessus"})).await;
    assert_eq!(by_path["status"], "completed", "{by_path}");
    assert_eq!(by_path["scanner_pool"], "imported");
    // The scan's own name (`<Report name="ms2">`) wins over the file name, as in
    // `nessus-cli import`: one import lifecycle for both.
    assert_eq!(by_path["name"], "ms2");
    assert!(
        by_path["results_summary"]["total_vulnerabilities"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{by_path}"
    );
    let a = by_path["task_id"].as_str().expect("task_id").to_owned();

    let st = call_ok(&client, "get_scan_status", json!({"task_id": a})).await;
    assert_eq!(st["status"], "completed");
    let page = call(
        &client,
        "get_scan_results",
        json!({"task_id": a, "filters": {"severity": ">=3"}, "page_size": 5}),
    )
    .await;
    assert_ne!(page.is_error, Some(true), "{}", text(&page));
    assert!(text(&page).lines().any(|l| l.contains("\"vulnerability\"")));

    let inline = call_ok(
        &client,
        "import_scan",
        json!({"content": corpus("defectdojo__nessus_with_cvssv3.nessus"), "name": "other"}),
    )
    .await;
    assert_eq!(inline["name"], "other");
    let b = inline["task_id"].as_str().expect("task_id").to_owned();
    let diff = call_ok(
        &client,
        "diff_scans",
        json!({"base_task_id": a, "compare_task_id": b, "min_severity": 0}),
    )
    .await;
    assert!(
        diff["counts"]["new"].as_u64().is_some_and(|n| n > 0),
        "{diff}"
    );

    // Imports are the importer's: another principal does not see them.
    let bob = h.client(OTHER_TOKEN).await;
    let hidden = call(&bob, "get_scan_status", json!({"task_id": a})).await;
    crate::support::business_error("get_scan_status", &hidden);
}

#[tokio::test]
async fn import_refuses_bad_sources_with_business_errors() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let import_dir = h._dir.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("import dir");
    std::fs::write(import_dir.join("junk.nessus"), "not xml at all").expect("write");
    let outside = h._dir.path().join("scanners.yaml");
    let cases = [
        (
            json!({"path": outside.display().to_string()}),
            "path_not_allowed",
        ),
        (json!({"path": "../scanners.yaml"}), "path_not_allowed"),
        (json!({"path": "missing.nessus"}), "path_not_allowed"),
        (json!({"path": "junk.nessus"}), "invalid_nessus_file"),
        (
            json!({"content": "<NessusClientData_v2>"}),
            "invalid_nessus_file",
        ),
        (json!({"content": "x".repeat(5 << 20)}), "content_too_large"),
        (json!({}), "invalid_argument"),
        (
            json!({"path": "junk.nessus", "content": "x"}),
            "invalid_argument",
        ),
    ];
    for (args, code) in cases {
        let r = call(&client, "import_scan", args.clone()).await;
        assert_eq!(r.is_error, Some(true), "{args}");
        assert!(text(&r).contains(code), "{args}: {}", text(&r));
    }
    // Failed imports leave no task behind.
    let list = call_ok(&client, "list_tasks", json!({"limit": 50})).await;
    assert_eq!(list["total"], 0, "{list}");
}
