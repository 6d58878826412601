//! `server.tool_output`: the predecessor's clients work unchanged by default
//! (`compatible`), `typed` publishes typed schemas and `isError` errors.

use std::time::Duration;

use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::{Value, json};

use crate::schema_check::violations;
use crate::support::{
    Harness, PREDECESSOR_TOOLS, TARGET, TOKEN, business_error, call, call_ok, text, wait_status,
};

fn output_schemas(tools: &[rmcp::model::Tool]) -> Vec<(String, Option<Value>)> {
    tools
        .iter()
        .map(|t| {
            (
                t.name.to_string(),
                t.output_schema.as_deref().map(|o| Value::Object(o.clone())),
            )
        })
        .collect()
}

#[tokio::test]
async fn compatible_is_the_default_and_matches_the_predecessor() {
    let h = Harness::start(1, Duration::from_millis(300)).await;
    let client = h.client(TOKEN).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    for (name, schema) in output_schemas(&tools) {
        let want = match name.as_str() {
            "get_scan_results" => Some(json!({
                "type": "object",
                "properties": {"result": {"type": "string"}},
                "required": ["result"],
                "x-fastmcp-wrap-result": true
            })),
            n if PREDECESSOR_TOOLS.contains(&n) => {
                Some(json!({"type": "object", "additionalProperties": true}))
            }
            _ => {
                assert!(
                    schema.as_ref().is_some_and(|s| s["properties"].is_object()),
                    "{name} keeps its typed schema: {schema:?}"
                );
                continue;
            }
        };
        assert_eq!(schema, want, "{name}");
    }

    // Business errors: normal results for the nine, isError for the new tools.
    let missing = call(
        &client,
        "get_scan_status",
        json!({"task_id": "ness_un_20250101_000000_deadbeef"}),
    )
    .await;
    assert_eq!(
        business_error("get_scan_status", &missing)["error_code"],
        "task_not_found"
    );
    let cancel = call(
        &client,
        "cancel_scan",
        json!({"task_id": "ness_un_20250101_000000_deadbeef"}),
    )
    .await;
    business_error("cancel_scan", &cancel);
    // Argument errors are in the same envelope as business errors (issue 14).
    let bad_args = call(&client, "get_scan_status", json!({"task": 1})).await;
    assert_eq!(
        business_error("get_scan_status", &bad_args)["error_code"],
        "invalid_argument"
    );

    // get_scan_results carries its JSON-NL as fastmcp's {"result": text}.
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "c"}),
    )
    .await;
    let id = sub["task_id"].as_str().expect("id").to_owned();
    wait_status(&client, &id, &["completed"]).await;
    let page = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "page_size": 10}),
    )
    .await;
    assert_ne!(page.is_error, Some(true));
    let first: Value =
        serde_json::from_str(text(&page).lines().next().unwrap_or_default()).expect("JSON-NL");
    assert_eq!(first["type"], "schema", "{}", text(&page));
    assert_eq!(
        page.structured_content,
        Some(json!({"result": text(&page)}))
    );

    // The typed contract is a resource, listed.
    let listed = client.list_all_resources().await.expect("resources/list");
    assert!(
        listed.iter().any(|r| r.uri == "nessus://schema/tools"),
        "{listed:?}"
    );
    let r = client
        .read_resource(ReadResourceRequestParams::new("nessus://schema/tools"))
        .await
        .expect("resources/read");
    let ResourceContents::TextResourceContents { text: body, .. } = &r.contents[0] else {
        panic!("text")
    };
    let all: Value = serde_json::from_str(body).expect("JSON");
    assert_eq!(all["tools"].as_object().map(|m| m.len()), Some(tools.len()));
    assert!(
        all["tools"]["get_scan_status"]["outputSchema"]["required"]
            .as_array()
            .is_some_and(|r| r.contains(&json!("next_step"))),
        "{}",
        all["tools"]["get_scan_status"]
    );
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn typed_publishes_typed_schemas_and_is_error_errors() {
    let h = Harness::start_typed(1, Duration::from_millis(300)).await;
    let client = h.client(TOKEN).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    for (name, schema) in output_schemas(&tools) {
        if name == "get_scan_results" {
            assert_eq!(schema, None, "JSON-NL text");
        } else {
            assert!(
                schema.as_ref().is_some_and(|s| s["properties"].is_object()),
                "{name}: {schema:?}"
            );
        }
    }
    for (tool, args) in [
        (
            "get_scan_status",
            json!({"task_id": "ness_un_20250101_000000_deadbeef"}),
        ),
        (
            "get_scan_results",
            json!({"task_id": "ness_un_20250101_000000_deadbeef"}),
        ),
        (
            "run_untrusted_scan",
            json!({"targets": "8.8.8.8", "name": "x"}),
        ),
    ] {
        let r = call(&client, tool, args).await;
        assert_eq!(r.is_error, Some(true), "{tool}: {}", text(&r));
        let body: Value = serde_json::from_str(&text(&r)).expect("envelope");
        assert!(body["error_code"].is_string(), "{tool}: {body}");
    }
    // Every tool's real answer conforms to its typed outputSchema, as a
    // validating client (the Python SDK) checks.
    let schemas: std::collections::HashMap<String, Value> = output_schemas(&tools)
        .into_iter()
        .filter_map(|(n, s)| s.map(|s| (n, s)))
        .collect();
    let conforms = |tool: &str, v: &Value| {
        let found = violations(&schemas[tool], v);
        assert!(found.is_empty(), "{tool}: {found:#?}\n{v:#}");
    };
    let sub = call_ok(
        &client,
        "run_untrusted_scan",
        json!({"targets": TARGET, "name": "t"}),
    )
    .await;
    conforms("run_untrusted_scan", &sub);
    let id = sub["task_id"].as_str().expect("id").to_owned();
    let done = wait_status(&client, &id, &["completed"]).await;
    conforms("get_scan_status", &done);
    for (tool, args) in [
        ("get_scan_status", json!({"task_id": id})),
        ("list_tasks", json!({})),
        ("list_scanners", json!({})),
        ("list_pools", json!({})),
        ("get_pool_status", json!({})),
        ("get_queue_status", json!({})),
        (
            "diff_scans",
            json!({"base_task_id": id, "compare_task_id": id, "min_severity": 0}),
        ),
        ("cancel_scan", json!({"task_id": id})),
    ] {
        let v = call_ok(&client, tool, args).await;
        conforms(tool, &v);
    }
    client.cancel().await.expect("close");
    h.stop().await;
}
