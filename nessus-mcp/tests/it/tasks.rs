//! MCP Tasks: a client that declares the extension gets a task handle backed
//! by the queue task; tasks/get follows it to completion with the original
//! call's result shape; tasks/update is acknowledged; tasks/cancel cancels.

use std::time::Duration;

use rmcp::{
    RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        ClientConfig, GetTaskParams, Implementation, ProtocolVersion, ReadResourceRequestParams,
        ResourceContents, TaskPayload, TaskStatus, UpdateTaskParams,
    },
    service::{ClientLifecycleMode, ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::{Value, json};

use crate::schema_check::violations;
use crate::support::{Harness, TARGET, TOKEN, args};

async fn tasks_client(h: &Harness) -> RunningService<RoleClient, ClientConfig> {
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "1"),
    );
    let cfg = StreamableHttpClientTransportConfig::with_uri(h.url()).auth_header(TOKEN);
    info.serve_with_lifecycle(
        StreamableHttpClientTransport::from_config(cfg),
        ClientLifecycleMode::Discover {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        },
    )
    .await
    .expect("connect")
}

fn submit(name: &str) -> CallToolRequestParams {
    CallToolRequestParams::new("run_untrusted_scan")
        .with_arguments(args(json!({"targets": TARGET, "name": name})))
}

/// run_untrusted_scan's typed outputSchema, from the nessus://schema/tools resource.
async fn typed_output_schema(client: &RunningService<RoleClient, ClientConfig>) -> Value {
    let r = client
        .read_resource(ReadResourceRequestParams::new("nessus://schema/tools"))
        .await
        .expect("resources/read");
    let ResourceContents::TextResourceContents { text, .. } = &r.contents[0] else {
        panic!("text resource")
    };
    let all: Value = serde_json::from_str(text).expect("JSON");
    all["tools"]["run_untrusted_scan"]["outputSchema"].clone()
}

#[tokio::test]
async fn task_augmented_submission_completes_with_the_submission_shape() {
    let h = Harness::start(1, Duration::from_millis(300)).await;
    let client = tasks_client(&h).await;
    let CallToolResponse::Task(created) = client
        .call_tool_once(submit("as a task"))
        .await
        .expect("call")
    else {
        panic!(
            "a tasks-capable client must get a task handle; protocol {:?}",
            client.peer_info().map(|i| i.protocol_version.clone())
        );
    };
    let id = created.task.task_id.clone();
    assert!(
        id.starts_with("ness_"),
        "the MCP task id is the queue task id: {id}"
    );
    let msg = created.task.status_message.clone().unwrap_or_default();
    assert!(
        msg.contains("tasks/get") && !msg.contains("get_scan_status"),
        "task-mode advice: {msg}"
    );
    // The handle's timestamps are the queue task's, as tasks/get shows them.
    let first = client
        .get_task(GetTaskParams::new(id.clone()))
        .await
        .expect("tasks/get");
    assert_eq!(created.task.created_at, first.task.task.created_at);
    // tasks/update is acknowledged (our scans request no input).
    client
        .update_task(UpdateTaskParams::new(id.clone(), Default::default()))
        .await
        .expect("tasks/update acknowledged");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let result = loop {
        let t = client
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .expect("tasks/get");
        assert_eq!(t.task.task.created_at, created.task.created_at);
        if let TaskPayload::Completed { result } = &t.task.payload {
            break Value::Object(result.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {:?}",
            t.task.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(result["isError"], true, "{result}");
    let structured = &result["structuredContent"];
    assert_eq!(structured["status"], "completed", "{result}");
    assert_eq!(structured["task_id"], id.as_str());
    // What the Python SDK checks: the result conforms to the tool's outputSchema.
    let schema = typed_output_schema(&client).await;
    assert!(
        schema["required"].as_array().is_some_and(|r| r.len() > 5),
        "{schema}"
    );
    let v = violations(&schema, structured);
    assert!(v.is_empty(), "{v:#?}\n{structured:#}");
    // Unknown tasks are refused, not acknowledged.
    let unknown = client
        .update_task(UpdateTaskParams::new(
            "ness_un_20250101_000000_deadbeef",
            Default::default(),
        ))
        .await;
    assert!(unknown.is_err(), "{unknown:?}");
    h.stop().await;
}

#[tokio::test]
async fn tasks_cancel_cancels_the_scan() {
    // No workers: the task stays queued until cancelled.
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = tasks_client(&h).await;
    let CallToolResponse::Task(created) = client
        .call_tool_once(submit("cancel me"))
        .await
        .expect("call")
    else {
        panic!("expected a task handle");
    };
    let id = created.task.task_id.clone();
    let t = client
        .get_task(GetTaskParams::new(id.clone()))
        .await
        .expect("tasks/get");
    assert_eq!(t.task.status(), TaskStatus::Working);
    assert_eq!(t.task.task.created_at, created.task.created_at);
    assert_eq!(t.task.task.last_updated_at, created.task.last_updated_at);
    let msg = t.task.task.status_message.clone().unwrap_or_default();
    assert!(msg.starts_with("queued at position 1"), "{msg}");
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("tasks/cancel");
    let t = client
        .get_task(GetTaskParams::new(id.clone()))
        .await
        .expect("tasks/get");
    assert_eq!(t.task.status(), TaskStatus::Cancelled);
    client
        .update_task(UpdateTaskParams::new(id, Default::default()))
        .await
        .expect("tasks/update on a finished task is acknowledged too");
    h.stop().await;
}

/// The 2026-07-28 wire as any client sends it (no rmcp client): the handle,
/// `tasks/update`'s empty result and `tasks/get` agree on the queue task.
#[tokio::test]
async fn raw_wire_handle_update_and_get() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {
            "extensions": {"io.modelcontextprotocol/tasks": {}}
        }
    });
    let rpc = |method: &'static str, name: String, params: Value| {
        let mut params = params;
        params["_meta"] = meta.clone();
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let req = http
            .post(h.url())
            .bearer_auth(TOKEN)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2026-07-28")
            .header("Mcp-Method", method)
            .header("Mcp-Name", name)
            .json(&body);
        async move {
            let r = req.send().await.expect("POST");
            assert!(r.status().is_success(), "{method}: {}", r.status());
            r.json::<Value>().await.expect("JSON-RPC answer")
        }
    };
    let created = rpc(
        "tools/call",
        "run_untrusted_scan".to_owned(),
        json!({"name": "run_untrusted_scan", "arguments": {"targets": TARGET, "name": "raw"}}),
    )
    .await;
    let handle = &created["result"];
    assert_eq!(handle["resultType"], "task", "{created}");
    let id = handle["taskId"].as_str().expect("taskId").to_owned();
    let updated = rpc(
        "tasks/update",
        id.clone(),
        json!({"taskId": id, "inputResponses": {}}),
    )
    .await;
    assert_eq!(
        updated,
        json!({"jsonrpc": "2.0", "id": 1, "result": {"resultType": "complete"}})
    );
    let got = rpc("tasks/get", id.clone(), json!({"taskId": id})).await;
    let task = &got["result"];
    assert_eq!(task["status"], "working", "{got}");
    assert_eq!(task["createdAt"], handle["createdAt"], "{got}");
    assert_eq!(task["lastUpdatedAt"], handle["lastUpdatedAt"], "{got}");
    h.stop().await;
}

/// A scan that fails completes its task with an `isError` result whose text
/// is the error envelope (what happened, a code, what to do).
#[tokio::test]
async fn a_failed_scan_completes_the_task_with_a_readable_error() {
    let h = Harness::start(1, Duration::from_millis(300)).await;
    if let Some(sim) = &h.sim {
        sim.update_faults(|f| f.scan_api_disabled = true);
    }
    let client = tasks_client(&h).await;
    let CallToolResponse::Task(created) =
        client.call_tool_once(submit("fails")).await.expect("call")
    else {
        panic!("expected a task handle");
    };
    let id = created.task.task_id.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let result = loop {
        let t = client
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .expect("tasks/get");
        if let TaskPayload::Completed { result } = &t.task.payload {
            break Value::Object(result.clone());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {:?}: {:?}",
            t.task.status(),
            t.task.task.status_message
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(result["isError"], true, "{result}");
    let text = result["content"][0]["text"].as_str().expect("text");
    let envelope: Value = serde_json::from_str(text).expect("the text is the error envelope");
    assert!(
        envelope["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("failed")),
        "{envelope}"
    );
    assert!(envelope["error_code"].is_string(), "{envelope}");
    assert!(envelope["hint"].is_string(), "{envelope}");
    assert_eq!(result["structuredContent"]["status"], "failed", "{result}");
    h.stop().await;
}

/// `ping` answers an empty result on the legacy wire and 404 + -32601 on 2026-07-28,
/// which removed it (conformance `sep-2575-http-server-method-not-found-404-ping`; the
/// -32601 → -32602 rewrite for bad params must not touch it).
#[tokio::test]
async fn ping_is_legacy_only() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    for version in ["2026-07-28", "2025-11-25"] {
        let mut body = json!({"jsonrpc": "2.0", "id": 9, "method": "ping"});
        if version == "2026-07-28" {
            body["params"] = json!({"_meta": {
                "io.modelcontextprotocol/protocolVersion": version,
                "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {}
            }});
        }
        let r = http
            .post(h.url())
            .bearer_auth(TOKEN)
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", version)
            .header("Mcp-Method", "ping")
            .json(&body)
            .send()
            .await
            .expect("POST");
        let status = r.status().as_u16();
        let answer: Value = r.json().await.expect("JSON-RPC answer");
        if version == "2026-07-28" {
            assert_eq!(status, 404, "{version}: {answer}");
            assert_eq!(answer["error"]["code"], -32601, "{version}: {answer}");
        } else {
            assert_eq!(status, 200, "{version}: {answer}");
            assert_eq!(answer["result"], json!({}), "{version}: {answer}");
        }
    }
    h.stop().await;
}
