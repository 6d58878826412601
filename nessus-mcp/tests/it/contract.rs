//! The contract's refusals and timings through the MCP edge: unknown pools on every
//! pool-taking tool, garbage `list_tasks` cursors, and how fast a cancel of a running
//! scan reaches Nessus.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Harness, TARGET, TOKEN, business_error, call, call_ok, text, wait_status};

/// The error object of a refused call, in the envelope its tool uses.
fn refusal(tool: &str, r: &rmcp::model::CallToolResult) -> Value {
    business_error(tool, r)
}

#[tokio::test]
async fn unknown_pools_are_refused_by_every_pool_taking_tool() {
    let h = Harness::start(0, Duration::from_secs(60)).await;
    let client = h.client(TOKEN).await;
    // A task to list, so "refused" cannot be confused with "nothing there".
    call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "contract"}),
    )
    .await;
    let tools = [
        "get_pool_status",
        "get_queue_status",
        "list_scanners",
        "list_tasks",
    ];
    for tool in tools {
        for bogus in ["no-such-pool", "NESSUS", "nessus ", "imported-"] {
            let r = call(&client, tool, json!({"scanner_pool": bogus})).await;
            let e = refusal(tool, &r);
            assert_eq!(e["error_code"], "unknown_pool", "{tool}({bogus:?}): {e}");
            assert!(
                e["error"].as_str().unwrap_or_default().contains(bogus),
                "{tool}: names the pool asked for: {e}"
            );
            assert!(
                e["hint"].as_str().unwrap_or_default().contains("nessus"),
                "{tool}: lists the known pools: {e}"
            );
        }
        // The configured pool answers.
        let ok = call(&client, tool, json!({"scanner_pool": "nessus"})).await;
        assert!(
            ok.is_error != Some(true) && !text(&ok).contains("\"error_code\""),
            "{tool}(nessus): {}",
            text(&ok)
        );
    }
    let listed = call_ok(&client, "list_tasks", json!({"scanner_pool": "nessus"})).await;
    assert_eq!(
        listed["tasks"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    // Imported scans live in their own pool, which the task listing accepts.
    let imported = call_ok(&client, "list_tasks", json!({"scanner_pool": "imported"})).await;
    assert_eq!(imported["tasks"], json!([]), "{imported}");
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn garbage_list_tasks_cursors_are_refused_and_real_ones_page() {
    let h = Harness::start(0, Duration::from_secs(60)).await;
    let client = h.client(TOKEN).await;
    for i in 0..3 {
        call_ok(
            &client,
            "run_untrusted_scan",
            json!({"targets": TARGET, "name": format!("page {i}")}),
        )
        .await;
        // Distinct creation milliseconds keep the order unambiguous.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for garbage in [
        "garbage",
        "~",
        "9999999999999",
        "1:ness_un_x",
        "9999999999999:../../etc",
        "9999999999999:x' OR '1'='1",
    ] {
        for extra in [json!({}), json!({"target_filter": TARGET})] {
            let mut a = json!({"cursor": garbage, "limit": 2});
            a.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            let r = call(&client, "list_tasks", a.clone()).await;
            let e = refusal("list_tasks", &r);
            assert_eq!(e["error_code"], "invalid_argument", "{a}: {e}");
            let msg = e["error"].as_str().unwrap_or_default();
            assert!(msg.contains("cursor"), "{a}: {e}");
            assert!(
                msg.contains("pass next_cursor exactly as returned, or omit it"),
                "{a}: {e}"
            );
        }
    }
    let first = call_ok(&client, "list_tasks", json!({"limit": 2})).await;
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = call_ok(&client, "list_tasks", json!({"limit": 2, "cursor": cursor})).await;
    assert_eq!(
        second["tasks"].as_array().map(Vec::len),
        Some(1),
        "{second}"
    );
    client.cancel().await.expect("close");
    h.stop().await;
}

/// `cancel_scan` on a running task stops the Nessus scan and ends `cancelled` within
/// two seconds, not at the worker's next heartbeat (a third of the 60 s lease).
#[tokio::test]
async fn cancelling_a_running_scan_reaches_nessus_within_two_seconds() {
    let h = Harness::start(1, Duration::from_secs(60)).await;
    let client = h.client(TOKEN).await;
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "cancel latency"}),
    )
    .await;
    let id = sub["task_id"].as_str().expect("id").to_owned();
    wait_status(&client, &id, &["running"]).await;
    let sim = h.sim.as_ref().expect("simulator");
    let name = format!("mcp-{id}");
    let launched = Instant::now();
    while !sim
        .scans()
        .iter()
        .any(|s| s.name == name && matches!(s.status.as_str(), "pending" | "running"))
    {
        assert!(
            launched.elapsed() < Duration::from_secs(20),
            "never launched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Past the first status polls, so only the cancel path can wake the worker.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled = Instant::now();
    call_ok(&client, "cancel_scan", json!({"task_id": id})).await;
    let st = loop {
        let st = call_ok(&client, "get_scan_status", json!({"task_id": id})).await;
        if st["status"] != "running" {
            break st;
        }
        assert!(
            cancelled.elapsed() < Duration::from_secs(2),
            "still running {:?} after the cancel: {st}",
            cancelled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let latency = cancelled.elapsed();
    println!("cancel_scan to cancelled: {} ms", latency.as_millis());
    assert_eq!(st["status"], "cancelled", "{st}");
    assert!(latency < Duration::from_secs(2), "{latency:?}");
    let scan = sim
        .scans()
        .into_iter()
        .find(|s| s.name == name)
        .expect("the scan");
    assert!(
        scan.stop_requested_ms.is_some(),
        "Nessus was told: {scan:?}"
    );
    assert_eq!(sim.counters().scans_stopped, 1);
    client.cancel().await.expect("close");
    h.stop().await;
}
