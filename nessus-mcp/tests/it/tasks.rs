//! MCP Tasks: a client that declares the extension gets a task handle backed
//! by the queue task; tasks/get follows it to completion; tasks/cancel cancels.

use std::time::Duration;

use rmcp::{
    model::{
        CallToolRequestParams, CallToolResponse, CancelTaskParams, ClientCapabilities,
        ClientConfig, GetTaskParams, Implementation, ProtocolVersion, TaskStatus,
    },
    service::{ClientLifecycleMode, ClientServiceExt},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use serde_json::json;

use crate::support::{Harness, TARGET, TOKEN, args};

#[tokio::test]
async fn task_augmented_submission_follows_the_queue_task() {
    let h = Harness::start(1, Duration::from_millis(300)).await;
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "1"),
    );
    let cfg = StreamableHttpClientTransportConfig::with_uri(h.url()).auth_header(TOKEN);
    let client = info
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(cfg),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("connect");
    let submit = |name: &'static str| {
        CallToolRequestParams::new("run_untrusted_scan")
            .with_arguments(args(json!({"targets": TARGET, "name": name})))
    };
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let t = client
            .get_task(GetTaskParams::new(id.clone()))
            .await
            .expect("tasks/get");
        if t.task.status() == TaskStatus::Completed {
            let body = serde_json::to_string(&t).expect("json");
            assert!(body.contains("\"completed\""), "{body}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {:?}",
            t.task.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.stop().await;
}

#[tokio::test]
async fn tasks_cancel_cancels_the_scan() {
    // No workers: the task stays queued until cancelled.
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let info = ClientConfig::new(
        ClientCapabilities::builder().enable_tasks().build(),
        Implementation::new("tasks-test", "1"),
    );
    let cfg = StreamableHttpClientTransportConfig::with_uri(h.url()).auth_header(TOKEN);
    let client = info
        .serve_with_lifecycle(
            StreamableHttpClientTransport::from_config(cfg),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("connect");
    let req = CallToolRequestParams::new("run_untrusted_scan")
        .with_arguments(args(json!({"targets": TARGET, "name": "cancel me"})));
    let CallToolResponse::Task(created) = client.call_tool_once(req).await.expect("call") else {
        panic!("expected a task handle");
    };
    let id = created.task.task_id.clone();
    let t = client
        .get_task(GetTaskParams::new(id.clone()))
        .await
        .expect("tasks/get");
    assert_eq!(t.task.status(), TaskStatus::Working);
    client
        .cancel_task(CancelTaskParams::new(id.clone()))
        .await
        .expect("tasks/cancel");
    let t = client
        .get_task(GetTaskParams::new(id))
        .await
        .expect("tasks/get");
    assert_eq!(t.task.status(), TaskStatus::Cancelled);
    h.stop().await;
}
