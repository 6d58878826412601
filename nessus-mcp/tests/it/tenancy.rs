//! Tenancy and limits through the real server: principal B sees none of A's tasks in
//! any tool, page, cursor, queue view or resource, and oversized fields are refused at
//! submit with the limit named.

use std::collections::BTreeSet;
use std::time::Duration;

use rmcp::model::ReadResourceRequestParams;
use serde_json::json;

use crate::support::{Harness, OTHER_TOKEN, TARGET, TOKEN, business_error, call, call_ok};

/// Every task id bob can reach through `list_tasks`, following cursors, with the size
/// of each page.
async fn walk(
    client: &rmcp::service::RunningService<rmcp::RoleClient, ()>,
    limit: u64,
) -> (Vec<String>, Vec<usize>, Vec<String>) {
    let (mut ids, mut sizes, mut cursors) = (Vec::new(), Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut a = json!({ "limit": limit });
        if let Some(c) = &cursor {
            a["cursor"] = json!(c);
        }
        let page = call_ok(client, "list_tasks", a).await;
        let tasks = page["tasks"].as_array().cloned().unwrap_or_default();
        sizes.push(tasks.len());
        ids.extend(
            tasks
                .iter()
                .filter_map(|t| t["task_id"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(c) if !tasks.is_empty() => {
                cursors.push(c.to_owned());
                cursor = Some(c.to_owned());
            }
            _ => break,
        }
    }
    (ids, sizes, cursors)
}

#[tokio::test]
async fn principal_b_sees_none_of_a_s_tasks_with_full_pages() {
    // No workers: everything stays queued, so the queue view has something to hide.
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let alice = h.client(TOKEN).await;
    let bob = h.client(OTHER_TOKEN).await;
    let mut alice_ids = BTreeSet::new();
    let mut bob_ids = BTreeSet::new();
    // Interleaved, so a principal filter applied after paging returns short pages.
    for i in 0..12 {
        let who = if i % 4 == 3 { &bob } else { &alice };
        let r = call_ok(
            who,
            "run_untrusted_scan",
            json!({"targets": TARGET, "name": format!("scan {i}")}),
        )
        .await;
        let id = r["task_id"].as_str().expect("task_id").to_owned();
        if i % 4 == 3 {
            bob_ids.insert(id);
        } else {
            alice_ids.insert(id);
        }
    }

    let (ids, sizes, cursors) = walk(&bob, 2).await;
    let seen: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(seen, bob_ids, "bob lists exactly his own tasks");
    // Full pages: 3 tasks at 2 a page are pages of 2 and 1.
    assert_eq!(&sizes[..2], &[2, 1], "pages {sizes:?}");
    for c in &cursors {
        for a in &alice_ids {
            assert!(!c.contains(a.as_str()), "cursor {c} carries alice's {a}");
        }
    }

    // Queue status: counts include everyone, next tasks are bob's own.
    let q = call_ok(&bob, "get_queue_status", json!({})).await;
    assert_eq!(q["queue_depth"], 12, "{q}");
    for t in q["next_tasks"].as_array().expect("next_tasks") {
        let id = t["task_id"].as_str().unwrap_or_default();
        assert!(bob_ids.contains(id), "bob sees alice's queued {id}: {q}");
    }

    // Every tool that takes a task id answers "not found" for alice's task.
    let a = alice_ids.iter().next().expect("one").clone();
    for (tool, args) in [
        ("get_scan_status", json!({"task_id": a})),
        ("get_scan_results", json!({"task_id": a})),
        ("cancel_scan", json!({"task_id": a})),
        (
            "diff_scans",
            json!({"base_task_id": a, "compare_task_id": a}),
        ),
    ] {
        let r = call(&bob, tool, args).await;
        let body = business_error(tool, &r);
        assert_eq!(body["error_code"], "task_not_found", "{tool}: {body}");
    }
    // Alice's task was not cancelled by bob's attempt.
    let st = call_ok(&alice, "get_scan_status", json!({"task_id": a})).await;
    assert_eq!(st["status"], "queued", "{st}");

    // Resources too.
    let read = bob
        .read_resource(ReadResourceRequestParams::new(format!(
            "nessus://tasks/{a}"
        )))
        .await;
    assert!(read.is_err(), "bob read alice's task resource: {read:?}");
    h.stop().await;
}

#[tokio::test]
async fn oversized_fields_are_refused_at_submit_naming_the_limit() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let alice = h.client(TOKEN).await;
    let huge = "n".repeat(7 << 20);
    for (field, args) in [
        ("name", json!({"targets": TARGET, "name": huge})),
        (
            "description",
            json!({"targets": TARGET, "name": "x", "description": "d".repeat(9000)}),
        ),
        (
            "targets",
            json!({"targets": format!("{TARGET},").repeat(20_000), "name": "x"}),
        ),
    ] {
        let r = call(&alice, "run_untrusted_scan", args).await;
        let body = business_error("run_untrusted_scan", &r);
        assert_eq!(body["error_code"], "field_too_long", "{field}: {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(msg.contains(field) && msg.contains("limit"), "{msg}");
    }
    let list = call_ok(&alice, "list_tasks", json!({})).await;
    assert_eq!(list["total"], 0, "nothing was queued: {list}");
    h.stop().await;
}

#[test]
fn a_token_may_not_claim_a_reserved_principal_name() {
    for spec in [
        "local=0123456789abcdef0123",
        "anonymous=0123456789abcdef0123",
        "alice=0123456789abcdef0123,Local=0123456789abcdef9999",
    ] {
        let err = nessus_mcp::TokenSet::parse_spec(spec).expect_err(spec);
        assert!(err.to_string().contains("reserved"), "{spec}: {err}");
    }
}

/// The audit trail through the real server: submit, a policy refusal, a results read
/// attempt and a cancel are each recorded with principal, task, pool and canonical
/// targets, and the ad-hoc password reaches no event.
#[tokio::test]
async fn agent_actions_land_on_the_audit_trail_without_credentials() {
    use nessus_queue::{AuditAction, AuditQuery, Queue, QueueConfig};
    const CANARY: &str = "canary-pw-9f3e1d7c";
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let alice = h.client(TOKEN).await;
    // TAB-separated targets: the trail records the canonical list, not the raw text.
    let ok = call_ok(
        &alice,
        "run_authenticated_scan",
        json!({"targets": "192.0.2.10\t192.0.2.11", "name": "audited", "scan_type": "authenticated",
               "ssh_username": "scanner", "ssh_password": CANARY}),
    )
    .await;
    let task_id = ok["task_id"].as_str().expect("task_id").to_owned();
    let refused = call(
        &alice,
        "run_untrusted_scan",
        json!({"targets": "10.0.0.1", "name": "outside"}),
    )
    .await;
    business_error("run_untrusted_scan", &refused);
    let _ = call(&alice, "get_scan_results", json!({"task_id": task_id})).await;
    call_ok(&alice, "cancel_scan", json!({"task_id": task_id})).await;

    let queue = Queue::sqlite(h._dir.path().join("queue.sqlite3"), QueueConfig::default())
        .expect("the server's queue");
    let page = queue
        .audit_list(AuditQuery::new(100))
        .await
        .expect("audit list");
    let actions: Vec<AuditAction> = page.events.iter().map(|e| e.action).collect();
    for want in [
        AuditAction::Submit,
        AuditAction::PolicyRefused,
        AuditAction::Cancel,
    ] {
        assert!(actions.contains(&want), "{want:?} missing from {actions:?}");
    }
    let submit = page
        .events
        .iter()
        .find(|e| e.action == AuditAction::Submit)
        .expect("submit event");
    assert_eq!(submit.principal, "alice");
    assert_eq!(submit.task_id.as_deref(), Some(task_id.as_str()));
    assert_eq!(submit.pool.as_deref(), Some("nessus"));
    assert_eq!(submit.targets.as_deref(), Some("192.0.2.10,192.0.2.11"));
    assert!(!submit.trace_id.is_empty());
    let refusal = page
        .events
        .iter()
        .find(|e| e.action == AuditAction::PolicyRefused)
        .expect("refusal event");
    assert_eq!(refusal.targets.as_deref(), Some("10.0.0.1"));
    let all = serde_json::to_string(&page.events).expect("json");
    assert!(!all.contains(CANARY), "a password reached the audit trail");
    h.stop().await;
}
