//! tools/list: names, annotations, schemas.

use std::time::Duration;

use crate::support::{Harness, TOKEN};

#[tokio::test]
async fn every_tool_is_named_annotated_and_schematised() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let info = client
        .peer_info()
        .and_then(|i| i.server_info.clone())
        .expect("server info");
    assert_eq!(info.name, "nessus-mcp");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in [
        "run_untrusted_scan",
        "run_authenticated_scan",
        "get_scan_status",
        "get_scan_results",
        "list_tasks",
        "list_scanners",
        "list_pools",
        "get_pool_status",
        "get_queue_status",
        "cancel_scan",
        "diff_scans",
        "import_scan",
        "findings_changes",
        "triage_finding",
        "review_scan",
        "create_schedule",
        "list_schedules",
        "get_schedule",
        "pause_schedule",
        "resume_schedule",
        "delete_schedule",
    ] {
        assert!(names.contains(&want), "missing tool {want}: {names:?}");
    }
    for t in &tools {
        let name = t.name.as_ref();
        assert!(
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b)),
            "invalid tool name {name}"
        );
        let a = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no annotations"));
        assert!(a.read_only_hint.is_some(), "{name}: readOnlyHint");
        assert!(a.destructive_hint.is_some(), "{name}: destructiveHint");
        assert!(a.idempotent_hint.is_some(), "{name}: idempotentHint");
        assert!(a.open_world_hint.is_some(), "{name}: openWorldHint");
        assert_eq!(
            t.input_schema.get("type").and_then(|v| v.as_str()),
            Some("object"),
            "{name}"
        );
        if name != "get_scan_results" {
            assert!(t.output_schema.is_some(), "{name} has no outputSchema");
        }
        assert!(
            t.description.as_ref().is_some_and(|d| d.len() > 20),
            "{name}: description"
        );
    }
    // Portable on the wire (the unit test in compat.rs lints every schema in
    // both modes; this is what a client receives).
    let wire = serde_json::to_string(&tools).expect("JSON");
    for bad in [
        "\"format\":\"uint",
        "\"format\":\"int",
        "\"format\":\"double",
        "\"format\":\"float",
        "\"type\":[",
        "\"items\":true",
    ] {
        assert!(!wire.contains(bad), "tools/list contains {bad}");
    }
    let submit = tools
        .iter()
        .find(|t| t.name == "run_authenticated_scan")
        .expect("tool");
    let props = submit.input_schema.get("properties").expect("properties");
    assert!(props.get("credential_profile").is_some());
    let ro = tools
        .iter()
        .find(|t| t.name == "get_scan_status")
        .expect("tool");
    assert_eq!(
        ro.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    let cancel = tools
        .iter()
        .find(|t| t.name == "cancel_scan")
        .expect("tool");
    assert_eq!(
        cancel.annotations.as_ref().and_then(|a| a.destructive_hint),
        Some(true)
    );
    client.cancel().await.expect("close");
    h.stop().await;
}
