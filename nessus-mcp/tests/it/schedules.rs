//! The schedule tools through the real server: create, list, get, pause, resume,
//! delete; tenancy (another principal sees none of them); refusals in the envelope.

use std::time::Duration;

use serde_json::json;

use crate::support::{Harness, OTHER_TOKEN, TARGET, TOKEN, business_error, call, call_ok};

#[tokio::test]
async fn schedule_tools_create_list_pause_resume_delete() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let alice = h.client(TOKEN).await;
    let bob = h.client(OTHER_TOKEN).await;
    let s = call_ok(
        &alice,
        "create_schedule",
        json!({"cron": "0 2 * * *", "timezone": "Europe/Berlin", "targets": TARGET, "name": "nightly"}),
    )
    .await;
    let id = s["schedule_id"].as_str().unwrap().to_owned();
    assert_eq!(s["paused"], false);
    assert_eq!(s["principal"], "alice");
    assert!(
        s["next_slot"]
            .as_str()
            .is_some_and(|t| t.ends_with(":00:00Z")),
        "{s}"
    );
    // (arguments, error_code): refusals name what to fix.
    let bad = [
        (
            json!({"cron": "* * *", "targets": TARGET, "name": "x"}),
            "invalid_argument",
        ),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Base", "targets": TARGET, "name": "x"}),
            "invalid_argument",
        ),
        (
            json!({"cron": "* * * * *", "targets": "198.51.100.1", "name": "x"}),
            "target_not_allowed",
        ),
        (
            json!({"cron": "* * * * *", "targets": TARGET, "name": "x", "scan_type": "authenticated"}),
            "missing_credentials",
        ),
    ];
    for (args, code) in bad {
        let r = call(&alice, "create_schedule", args.clone()).await;
        assert_eq!(
            business_error("create_schedule", &r)["error_code"],
            code,
            "{args}"
        );
    }
    let list = call_ok(&alice, "list_schedules", json!({})).await;
    assert_eq!(list["total"], 1);
    assert_eq!(call_ok(&bob, "list_schedules", json!({})).await["total"], 0);
    let r = call(&bob, "pause_schedule", json!({"schedule_id": id})).await;
    assert_eq!(
        business_error("pause_schedule", &r)["error_code"],
        "schedule_not_found"
    );
    let p = call_ok(&alice, "pause_schedule", json!({"schedule_id": id})).await;
    assert_eq!(p["paused"], true);
    let g = call_ok(&alice, "get_schedule", json!({"schedule_id": id})).await;
    assert_eq!(g["paused"], true);
    let r = call_ok(&alice, "resume_schedule", json!({"schedule_id": id})).await;
    assert_eq!(r["paused"], false);
    let d = call_ok(&alice, "delete_schedule", json!({"schedule_id": id})).await;
    assert_eq!(d["deleted"], true);
    let r = call(&alice, "get_schedule", json!({"schedule_id": id})).await;
    assert_eq!(
        business_error("get_schedule", &r)["error_code"],
        "schedule_not_found"
    );
}
