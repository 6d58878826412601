//! The same flow over stdio, against the real binary.

use rmcp::{ServiceExt, model::CallToolRequestParams, transport::TokioChildProcess};
use serde_json::json;

use crate::support::{TARGET, args, write_config};

#[tokio::test]
async fn stdio_submit_complete_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = nessus_core::sim::Simulator::builder()
        .scan_duration(std::time::Duration::from_millis(300))
        .start("127.0.0.1:0")
        .await
        .expect("simulator");
    let config = write_config(dir.path(), sim.base_url());
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_nessus-mcp"));
    cmd.arg("--stdio")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn");
    let client = ().serve(TokioChildProcess::new(cmd).expect("spawn")).await.expect("initialize");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(tools.len() >= 11);
    let sub = client
        .call_tool(
            CallToolRequestParams::new("run_untrusted_scan")
                .with_arguments(args(json!({"targets": TARGET, "name": "stdio"}))),
        )
        .await
        .expect("submit");
    let id = sub.structured_content.expect("structured")["task_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let st = client
            .call_tool(
                CallToolRequestParams::new("get_scan_status")
                    .with_arguments(args(json!({"task_id": id}))),
            )
            .await
            .expect("status")
            .structured_content
            .expect("structured");
        if st["status"] == "completed" {
            break;
        }
        assert!(
            !["failed", "timeout", "cancelled"].contains(&st["status"].as_str().unwrap_or("")),
            "{st}"
        );
        assert!(tokio::time::Instant::now() < deadline, "still {st}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let page = client
        .call_tool(
            CallToolRequestParams::new("get_scan_results")
                .with_arguments(args(json!({"task_id": id, "filters": {"severity": ">=2"}}))),
        )
        .await
        .expect("results");
    assert_ne!(page.is_error, Some(true));
    let text = page.content[0].as_text().expect("text").text.clone();
    assert!(
        text.lines()
            .next()
            .unwrap_or_default()
            .contains("\"schema\"")
    );
    client.cancel().await.expect("close");
    sim.shutdown().await;
}
