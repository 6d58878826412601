//! Submit → completed → filtered results, idempotency, visibility, cancel.

use std::time::Duration;

use nessus_queue::testkit::RedisServer;
use serde_json::json;

use crate::support::{
    Harness, OTHER_TOKEN, TARGET, TOKEN, business_error, call, call_ok, text, wait_status,
};

#[tokio::test]
async fn submit_complete_and_read_a_filtered_page() {
    let h = Harness::start(1, Duration::from_millis(500)).await;
    full_flow(h).await;
}

#[tokio::test]
async fn the_same_flow_on_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let h = Harness::start_with(1, Duration::from_millis(500), Some(redis.url())).await;
    full_flow(h).await;
}

async fn full_flow(h: Harness) {
    let client = h.client(TOKEN).await;
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "it flow", "idempotency_key": "k1"}),
    )
    .await;
    // The worker may claim it before the answer is built: then the answer
    // says so (running, position 0) instead of queued with null position.
    match sub["status"].as_str() {
        Some("queued") => assert!(sub["queue_position"].as_u64() >= Some(1), "{sub}"),
        Some("running") => assert_eq!(sub["queue_position"], 0, "{sub}"),
        _ => panic!("{sub}"),
    }
    assert_eq!(sub["scanner_pool"], "nessus");
    assert_eq!(sub["idempotent"], false);
    let task_id = sub["task_id"].as_str().expect("task_id").to_owned();

    // Same key, same request: the same task. Same key, other request: a conflict.
    let again = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "it flow", "idempotency_key": "k1"}),
    )
    .await;
    assert_eq!(again["task_id"], task_id.as_str());
    assert_eq!(again["idempotent"], true);
    let conflict = call(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "other", "idempotency_key": "k1"}),
    )
    .await;
    assert_eq!(
        business_error("run_untrusted_scan", &conflict)["error_code"],
        "idempotency_conflict"
    );
    assert!(
        text(&conflict).contains("idempotency_conflict"),
        "{}",
        text(&conflict)
    );

    let st = wait_status(&client, &task_id, &["completed", "failed", "timeout"]).await;
    assert_eq!(st["status"], "completed", "{st}");
    assert!(
        st["results_summary"]["severity_breakdown"].is_object(),
        "{st}"
    );

    let page = call(
        &client,
        "get_scan_results",
        json!({"task_id": task_id, "filters": {"severity": ">=1"}, "page_size": 10, "schema_profile": "minimal"}),
    )
    .await;
    assert_ne!(page.is_error, Some(true), "{}", text(&page));
    let lines: Vec<serde_json::Value> = text(&page)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines[0]["type"], "schema");
    assert_eq!(lines.last().expect("last")["type"], "pagination");
    let vulns: Vec<_> = lines
        .iter()
        .filter(|l| l["type"] == "vulnerability")
        .collect();
    assert!(
        vulns
            .iter()
            .all(|v| v["severity"].as_u64().unwrap_or(0) >= 1)
    );
    // The closing line counts what this answer returned and says whether it was cut.
    let closing = lines.last().expect("last");
    assert_eq!(closing["returned"], vulns.len());
    assert_eq!(closing["truncated"], false);
    assert!(closing["next"].is_string(), "{closing}");

    // Business errors say what to do; the predecessor's tools answer them as
    // normal results with an "error" key (server.tool_output: compatible).
    let bad = call(
        &client,
        "get_scan_results",
        json!({"task_id": task_id, "filters": {"severty": ">=3"}}),
    )
    .await;
    business_error("get_scan_results", &bad);
    assert!(
        text(&bad).contains("severity"),
        "names the closest field: {}",
        text(&bad)
    );
    let missing = call(
        &client,
        "get_scan_status",
        json!({"task_id": "ness_un_20250101_000000_000000000000000000000000deadbeef"}),
    )
    .await;
    business_error("get_scan_status", &missing);
    assert!(text(&missing).contains("list_tasks"));
    let outside = call(
        &client,
        "run_untrusted_scan",
        json!({"targets": "8.8.8.8", "name": "x"}),
    )
    .await;
    business_error("run_untrusted_scan", &outside);
    assert!(
        text(&outside).contains("target_not_allowed"),
        "{}",
        text(&outside)
    );

    // Another principal sees nothing of alice's task.
    let bob = h.client(OTHER_TOKEN).await;
    let hidden = call(&bob, "get_scan_status", json!({"task_id": task_id})).await;
    business_error("get_scan_status", &hidden);
    let listed = call_ok(&bob, "list_tasks", json!({})).await;
    assert_eq!(listed["total"], 0, "{listed}");
    let mine = call_ok(&client, "list_tasks", json!({"limit": 5})).await;
    assert_eq!(mine["tasks"][0]["task_id"], task_id.as_str());

    // Resources: the task summary and the field catalogue.
    let r = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(format!(
            "nessus://tasks/{task_id}"
        )))
        .await
        .expect("resources/read");
    assert!(format!("{r:?}").contains("completed"));
    let fields = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            "nessus://schema/fields",
        ))
        .await
        .expect("resources/read");
    assert!(format!("{fields:?}").contains("plugin_id"));
    // The profile names come from nessus_schema::Profile::ALL; the wire shows them as before.
    let catalogue: serde_json::Value = match &fields.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => {
            serde_json::from_str(text).expect("the catalogue is JSON")
        }
        other => serde_json::Value::String(format!("{other:?}")),
    };
    assert_eq!(
        catalogue["x-profiles"],
        json!(["minimal", "summary", "brief", "full"]),
        "{catalogue}"
    );
    let bad = call(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "bad profile", "schema_profile": "xyz"}),
    )
    .await;
    let bad = business_error("run_untrusted_scan", &bad);
    assert_eq!(bad["error_code"], "invalid_profile", "{bad}");
    assert_eq!(
        bad["error"],
        "Invalid schema profile: xyz. Must be one of: ['minimal', 'summary', 'brief', 'full']"
    );

    // Pools, scanners, queue.
    let pools = call_ok(&client, "list_pools", json!({})).await;
    assert_eq!(
        pools,
        json!({"pools": ["nessus"], "default_pool": "nessus"})
    );
    let scanners = call_ok(&client, "list_scanners", json!({})).await;
    assert_eq!(scanners["total"], 1);
    let pool = call_ok(&client, "get_pool_status", json!({})).await;
    assert_eq!(pool["total_capacity"], 2);
    let queue = call_ok(&client, "get_queue_status", json!({})).await;
    assert_eq!(queue["pool"], "nessus");

    bob.cancel().await.expect("close");
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn cancel_a_queued_scan() {
    // No workers: the task stays queued.
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "queued"}),
    )
    .await;
    let id = sub["task_id"].as_str().expect("id").to_owned();
    let c = call_ok(&client, "cancel_scan", json!({"task_id": id})).await;
    assert_eq!(c["status"], "cancelled", "{c}");
    let st = call_ok(&client, "get_scan_status", json!({"task_id": id})).await;
    assert_eq!(st["status"], "cancelled");
    // Idempotent: a second cancel changes nothing.
    let c2 = call_ok(&client, "cancel_scan", json!({"task_id": id})).await;
    assert_eq!(c2["status"], "cancelled");
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn cancel_a_running_scan() {
    let h = Harness::start(1, Duration::from_secs(60)).await;
    let client = h.client(TOKEN).await;
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "long"}),
    )
    .await;
    let id = sub["task_id"].as_str().expect("id").to_owned();
    wait_status(&client, &id, &["running"]).await;
    let c = call_ok(&client, "cancel_scan", json!({"task_id": id})).await;
    assert!(
        c["status"] == "running" || c["status"] == "cancelled",
        "{c}"
    );
    let st = wait_status(&client, &id, &["cancelled", "failed", "completed"]).await;
    assert_eq!(st["status"], "cancelled", "{st}");
    client.cancel().await.expect("close");
    h.stop().await;
}

/// A submission always answers integer `queue_position` and
/// `estimated_wait_minutes` with its real status: here an idempotent resubmit
/// of a finished task (the path a worker claiming the task before the
/// position read takes too) answers its status with 0, not `queued` with nulls.
#[tokio::test]
async fn submissions_answer_integer_positions_in_every_state() {
    let h = Harness::start(1, Duration::from_millis(300)).await;
    let client = h.client(TOKEN).await;
    let args = json!({"targets": TARGET, "name": "positions", "idempotency_key": "pos"});
    let sub = call_ok(&client, "run_untrusted_scan", args.clone()).await;
    let id = sub["task_id"].as_str().expect("id").to_owned();
    for key in ["queue_position", "estimated_wait_minutes"] {
        assert!(sub[key].is_u64(), "{key}: {sub}");
    }
    if sub["status"] == "queued" {
        assert!(sub["queue_position"].as_u64() >= Some(1), "{sub}");
    }
    wait_status(&client, &id, &["completed"]).await;
    let again = call_ok(&client, "run_untrusted_scan", args).await;
    assert_eq!(again["task_id"], id.as_str());
    assert_eq!(again["status"], "completed", "{again}");
    assert_eq!(again["queue_position"], 0, "{again}");
    assert_eq!(again["estimated_wait_minutes"], 0, "{again}");
    client.cancel().await.expect("close");
    h.stop().await;
}
