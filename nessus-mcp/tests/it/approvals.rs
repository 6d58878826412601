//! Approvals through the real server: a pool's `approval` rules hold a scan in
//! pending_approval with its reason visible to the submitter; only an admin may
//! review_scan it; an approved scan is queued and runs; a rejected one is cancelled.

use std::time::Duration;

use serde_json::json;

use crate::support::{Harness, OTHER_TOKEN, TOKEN, business_error, call, call_ok};

/// bob is the admin; `nessus` (the default pool, with the simulator) holds scans of
/// targets outside 192.0.2.0/28 for approval.
const TOP: &str = "principals:\n  bob:\n    admin: true\n";
const POOL: &str = "  approval:\n    auto_approve: [192.0.2.0/28]\n    expires_after: 1h\n";

#[tokio::test]
async fn held_scans_wait_for_an_admin_and_show_why() {
    let h = Harness::start_pool(
        1,
        Duration::from_millis(300),
        None,
        "",
        TOP,
        POOL,
        |_, _| {},
    )
    .await;
    let alice = h.client(TOKEN).await;
    let bob = h.client(OTHER_TOKEN).await;
    // (targets, held)
    let cases = [
        ("192.0.2.3", false),
        ("192.0.2.77", true),
        ("192.0.2.78", true),
    ];
    let mut held = Vec::new();
    for (targets, want_held) in cases {
        let s = call_ok(
            &alice,
            "run_untrusted_scan",
            json!({"targets": targets, "name": format!("s {targets}")}),
        )
        .await;
        let status = s["status"].as_str().unwrap();
        assert_eq!(status == "pending_approval", want_held, "{s}");
        if want_held {
            assert!(
                s["approval_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains(targets)),
                "{s}"
            );
            assert_eq!(s["queue_position"], 0);
            held.push(s["task_id"].as_str().unwrap().to_owned());
        } else {
            assert!(s.get("approval_reason").is_none(), "only additive: {s}");
        }
    }
    let st = call_ok(&alice, "get_scan_status", json!({"task_id": held[0]})).await;
    assert_eq!(st["status"], "pending_approval");
    assert!(st["approval_reason"].is_string(), "{st}");
    assert!(st["approval_expires_at"].is_string(), "{st}");
    assert!(
        st["next_step"].as_str().unwrap().contains("approval"),
        "{st}"
    );
    let q = call_ok(&alice, "get_queue_status", json!({})).await;
    assert_eq!(q["pending_approval"], 2, "{q}");

    // Not an admin: refused, and nothing changes.
    let r = call(
        &alice,
        "review_scan",
        json!({"task_id": held[0], "decision": "approve", "reason": "mine"}),
    )
    .await;
    let e = business_error("review_scan", &r);
    assert_eq!(e["error_code"], "forbidden", "{e}");
    let r = call(
        &bob,
        "review_scan",
        json!({"task_id": held[0], "decision": "maybe", "reason": "x"}),
    )
    .await;
    assert_eq!(
        business_error("review_scan", &r)["error_code"],
        "invalid_argument"
    );

    let ok = call_ok(
        &bob,
        "review_scan",
        json!({"task_id": held[0], "decision": "approve", "reason": "ticket 7"}),
    )
    .await;
    assert_eq!(ok["status"], "queued", "{ok}");
    assert_eq!(ok["decision"], "approved");
    assert_eq!(ok["reviewed_by"], "bob");
    let no = call_ok(
        &bob,
        "review_scan",
        json!({"task_id": held[1], "decision": "reject", "reason": "out of scope"}),
    )
    .await;
    assert_eq!(no["status"], "cancelled", "{no}");
    let st = call_ok(&alice, "get_scan_status", json!({"task_id": held[1]})).await;
    assert_eq!(st["error_code"], "approval_rejected", "{st}");
    assert_eq!(st["review"]["reason"], "out of scope", "{st}");
    // The approved one runs like any other scan.
    for _ in 0..100 {
        let st = call_ok(&alice, "get_scan_status", json!({"task_id": held[0]})).await;
        if st["status"] == "completed" {
            assert_eq!(st["review"]["decision"], "approved");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the approved scan never completed");
}
