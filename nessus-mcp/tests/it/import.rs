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

/// A real rmcp client that records the progress notifications it receives, with the time
/// each arrived.
#[derive(Clone, Default)]
struct ProgressLog(
    std::sync::Arc<
        std::sync::Mutex<Vec<(std::time::Instant, rmcp::model::ProgressNotificationParam)>>,
    >,
);

impl rmcp::ClientHandler for ProgressLog {
    async fn on_progress(
        &self,
        params: rmcp::model::ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0
            .lock()
            .expect("log lock")
            .push((std::time::Instant::now(), params));
    }
}

/// A multi-MB `.nessus` made of real hosts: the corpus file `name` with its one
/// `ReportHost` repeated `copies` times under other names.
fn replicated(name: &str, copies: usize) -> String {
    let text = corpus(name);
    let start = text.find("<ReportHost ").expect("a host");
    let end = text.rfind("</ReportHost>").expect("host end") + "</ReportHost>".len();
    let host = &text[start..end];
    let name_attr = &host[..host.find('>').expect("tag end")];
    let mut out = text[..start].to_owned();
    for i in 0..copies {
        out.push_str(&host.replacen(name_attr, &format!("<ReportHost name=\"10.9.0.{i}\""), 1));
        out.push('\n');
    }
    out.push_str(&text[end..]);
    out
}

/// `import_scan` with `_meta.progressToken` sends `notifications/progress` (bytes read of
/// the file size, a message) at most every 250 ms while it ingests. (rmcp's client
/// puts a token on every call; without one there is nothing to address a notification to,
/// and the tool takes the plain path.) `.ci/answers` imports through the Python SDK with a
/// progress callback too. The summary's counts are checked against a naive count of the file:
/// `total_findings` every `<ReportItem>`, `total_vulnerabilities` those above info.
#[tokio::test]
async fn import_reports_progress_when_asked_and_counts_every_finding() {
    use rmcp::model::{CallToolRequestParams, NumberOrString, ProgressToken, RequestParamsMeta};
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::{ServiceExt, transport::StreamableHttpClientTransport};

    let h = Harness::start(0, Duration::from_secs(1)).await;
    let import_dir = h._dir.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("import dir");
    let big = replicated("auvap__ms2_scan.nessus", 25);
    std::fs::write(import_dir.join("big.nessus"), &big).expect("write");
    let size = big.len() as f64;
    let items = big.matches("<ReportItem ").count() as u64;
    let above_info = items - big.matches(" severity=\"0\"").count() as u64;

    let log = ProgressLog::default();
    let cfg = StreamableHttpClientTransportConfig::with_uri(h.url()).auth_header(TOKEN);
    let client = log
        .clone()
        .serve(StreamableHttpClientTransport::from_config(cfg))
        .await
        .expect("client connects");
    let token = ProgressToken(NumberOrString::String("import-1".into()));
    let mut params = CallToolRequestParams::new("import_scan")
        .with_arguments(crate::support::args(json!({"path": "big.nessus"})));
    params.set_progress_token(token);
    let r = client.call_tool(params).await.expect("tools/call answered");
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let done = r.structured_content.expect("structured result");
    assert_eq!(done["status"], "completed", "{done}");
    let summary = &done["results_summary"];
    assert_eq!(summary["total_findings"], json!(items), "{summary}");
    assert_eq!(
        summary["total_vulnerabilities"],
        json!(above_info),
        "{summary}"
    );

    let seen = log.0.lock().expect("log lock").clone();
    assert!(
        !seen.is_empty(),
        "no progress notification for a {size} byte import"
    );
    let mut last = 0.0;
    for (i, (at, p)) in seen.iter().enumerate() {
        // rmcp's client puts its own token on the request; the server echoes that one.
        assert_eq!(p.progress_token, seen[0].1.progress_token);
        assert_eq!(p.total, Some(size), "total is the file size");
        assert!(p.progress > last && p.progress <= size, "{:?}", p.progress);
        assert!(p.message.as_deref().is_some_and(|m| m.contains("bytes")));
        last = p.progress;
        if i > 0 {
            // Sent on a 250 ms clock; delivery may bunch a little.
            let gap = at.duration_since(seen[i - 1].0);
            assert!(
                gap >= Duration::from_millis(150),
                "notifications {gap:?} apart"
            );
        }
    }

    // The export plan of the same scan measures every finding: it reports too, in
    // findings, ending at the number the plan answers.
    log.0.lock().expect("log lock").clear();
    let task_id = done["task_id"].as_str().expect("task id");
    let mut params =
        CallToolRequestParams::new("export_results").with_arguments(crate::support::args(
            json!({"task_id": task_id, "format": "csv", "schema_profile": "full"}),
        ));
    params.set_progress_token(ProgressToken(NumberOrString::String("export-1".into())));
    let r = client.call_tool(params).await.expect("tools/call answered");
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let plan = r.structured_content.expect("structured result");
    assert_eq!(plan["findings"], json!(items), "{plan}");
    let seen = log.0.lock().expect("log lock").clone();
    assert!(
        !seen.is_empty(),
        "no progress notification for a {items}-finding export plan"
    );
    let mut last = -1.0;
    for (_, p) in &seen {
        assert_eq!(
            p.total,
            Some(items as f64),
            "total is the findings to measure"
        );
        assert!(
            p.progress > last && p.progress <= items as f64,
            "{:?}",
            p.progress
        );
        assert!(p.message.as_deref().is_some_and(|m| m.contains("findings")));
        last = p.progress;
    }
}
