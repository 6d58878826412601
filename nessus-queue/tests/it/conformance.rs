//! The backend conformance suite. Every function runs against SQLite and Redis.

use std::collections::HashSet;

use jiff::SignedDuration;
use nessus_queue::{
    AUDIT_MAX_DETAIL, AUDIT_MAX_ID, AUDIT_MAX_OUTCOME, AUDIT_MAX_PRINCIPAL, AUDIT_MAX_TARGETS,
    AdhocCredentials, AuditAction, AuditEvent, AuditQuery, CancelOutcome, Completion, DlqPurge,
    Error, Failure, IMPORT_POOL, InstanceCapacity, ListTasks, NewTask, QueueConfig, ScanType,
    TaskStatus,
};
use secrecy::SecretString;

use crate::support::Harness;
pub(crate) use crate::webhooks::{
    webhook_sender_killed_mid_delivery_loses_nothing, webhook_signed_and_retried_after_500,
    webhook_urls_and_approval_event,
};

pub(crate) fn req(targets: &str, name: &str) -> NewTask {
    NewTask::new(ScanType::Untrusted, "nessus", targets, name)
}

pub(crate) fn pool(name: &str, instances: &[(&str, u32)]) -> (String, Vec<InstanceCapacity>) {
    (
        name.to_owned(),
        instances
            .iter()
            .map(|(i, m)| InstanceCapacity::new(*i, *m))
            .collect(),
    )
}

pub(crate) async fn submit_get_and_position(h: &Harness) {
    let q = &h.queue;
    let a = q
        .submit("p", req("10.0.0.1", "a"), None, None)
        .await
        .unwrap();
    let b = q
        .submit("p", req("10.0.0.2", "b"), None, None)
        .await
        .unwrap();
    assert_eq!(a.queue_position, Some(1));
    assert_eq!(b.queue_position, Some(2));
    assert!(!a.idempotent);
    // One free slot by default: the first starts now, the second waits one scan
    // of the default 15 minutes.
    assert_eq!(a.estimated_wait_minutes, Some(0));
    assert_eq!(b.estimated_wait_minutes, Some(15));
    let got = q.get(&a.task.task_id).await.unwrap().unwrap();
    assert_eq!(got.task.status, TaskStatus::Queued);
    assert_eq!(got.task.targets, "10.0.0.1");
    assert_eq!(got.task.trace_id, a.task.trace_id);
    assert!(
        q.get("ness_un_20200101_000000_00000000000000000000000000000000")
            .await
            .unwrap()
            .is_none()
    );
    assert!(q.get("../../etc/passwd").await.unwrap().is_none());
    let bad = q.submit("p", req("", "x"), None, None).await;
    assert!(matches!(
        bad,
        Err(Error::Invalid {
            field: "targets",
            ..
        })
    ));
    let bad_pool = q
        .submit(
            "p",
            NewTask::new(ScanType::Untrusted, "a b", "1.2.3.4", "x"),
            None,
            None,
        )
        .await;
    assert!(matches!(
        bad_pool,
        Err(Error::Invalid {
            field: "scanner_pool",
            ..
        })
    ));
}

pub(crate) async fn idempotency_same_and_conflicting_requests(h: &Harness) {
    let q = &h.queue;
    let first = q
        .submit("alice", req("10.0.0.1", "s"), None, Some("k1"))
        .await
        .unwrap();
    let again = q
        .submit("alice", req("10.0.0.1", "s"), None, Some("k1"))
        .await
        .unwrap();
    assert!(again.idempotent);
    assert_eq!(again.task.task_id, first.task.task_id);
    let conflict = q
        .submit("alice", req("10.0.0.9", "s"), None, Some("k1"))
        .await;
    assert!(matches!(conflict, Err(Error::IdempotencyConflict { ref key }) if key == "k1"));
    // Keys are scoped per principal.
    let bob = q
        .submit("bob", req("10.0.0.9", "s"), None, Some("k1"))
        .await
        .unwrap();
    assert!(!bob.idempotent);
    assert_ne!(bob.task.task_id, first.task.task_id);
    // The hash covers what the caller sent: an explicit pin is a different request.
    let pinned = q
        .submit(
            "alice",
            req("10.0.0.1", "s").scanner_instance("scanner2"),
            None,
            Some("k1"),
        )
        .await;
    assert!(matches!(pinned, Err(Error::IdempotencyConflict { .. })));
}

pub(crate) async fn idempotency_key_is_scoped_per_caller_not_per_pool(h: &Harness) {
    let q = &h.queue;
    let on = |pool: &str| NewTask::new(ScanType::Untrusted, pool, "10.0.0.1", "s");
    let first = q
        .submit("alice", on("nessus"), None, Some("k"))
        .await
        .unwrap();
    // The same key for another pool is another request, not a second reservation.
    let other_pool = q.submit("alice", on("dmz"), None, Some("k")).await;
    assert!(
        matches!(other_pool, Err(Error::IdempotencyConflict { ref key }) if key == "k"),
        "{other_pool:?}"
    );
    let again = q
        .submit("alice", on("nessus"), None, Some("k"))
        .await
        .unwrap();
    assert!(again.idempotent);
    assert_eq!(again.task.task_id, first.task.task_id);
    // Another caller may use the same key for either pool.
    let bob = q.submit("bob", on("dmz"), None, Some("k")).await.unwrap();
    assert!(!bob.idempotent);
    let dmz = q.list(ListTasks::new(10).pool("dmz")).await.unwrap();
    assert_eq!(dmz.tasks.len(), 1, "only bob's task is in dmz");
    // Concurrent first uses of one key for two pools: exactly one wins.
    let (a, b) = tokio::join!(
        q.submit("carol", on("nessus"), None, Some("race")),
        q.submit("carol", on("dmz"), None, Some("race")),
    );
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "{a:?} / {b:?}"
    );
}

pub(crate) async fn hundred_concurrent_identical_submits_make_one_task(h: &Harness) {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let q = h.queue.clone();
        set.spawn(async move {
            q.submit("p", req("10.1.1.1", "same"), None, Some("same-key"))
                .await
        });
    }
    let mut ids = HashSet::new();
    let mut fresh = 0;
    while let Some(r) = set.join_next().await {
        let s = r.unwrap().unwrap();
        ids.insert(s.task.task_id);
        fresh += usize::from(!s.idempotent);
    }
    assert_eq!(ids.len(), 1, "all submits must return the same task");
    assert_eq!(fresh, 1, "exactly one submit creates the task");
    let all = h.queue.list(ListTasks::new(1000)).await.unwrap();
    assert_eq!(all.tasks.len(), 1);
}

pub(crate) async fn claim_complete_and_eta_history(h: &Harness) {
    let q = &h.queue;
    let pools = [pool("nessus", &[("s1", 1)])];
    assert!(q.claim("w", &pools).await.unwrap().is_none(), "empty queue");
    let a = q
        .submit("p", req("10.0.0.1", "a"), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, a.task.task_id);
    assert_eq!(c.task.status, TaskStatus::Running);
    assert_eq!(c.task.instance.as_deref(), Some("s1"));
    assert_eq!(c.task.attempts, 1);
    let t = q.record_scan(&c.task.task_id, c.token, 42).await.unwrap();
    assert_eq!(t.nessus_scan_id, Some(42));
    q.progress(&c.task.task_id, c.token, 55).await.unwrap();
    let done = q
        .complete(&c.task.task_id, c.token, Completion::default())
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert!(done.completed_at.is_some());
    // Terminal is final.
    let again = q
        .fail(&c.task.task_id, c.token, Failure::plain("x", "y"))
        .await;
    assert!(matches!(again, Err(Error::InvalidTransition { .. })));
    // History now drives the ETA: a scan took ~0 s, so waiting costs ~0 minutes.
    q.submit("p", req("10.0.0.2", "b"), None, None)
        .await
        .unwrap();
    let c2 = q
        .submit("p", req("10.0.0.3", "c"), None, None)
        .await
        .unwrap();
    assert_eq!(c2.queue_position, Some(2));
    assert!(c2.estimated_wait_minutes.unwrap() <= 1);
}

pub(crate) async fn capacity_and_pins_across_claimers(h: &Harness) {
    let q = &h.queue;
    for i in 0..10 {
        q.submit("p", req(&format!("10.0.0.{i}"), "x"), None, None)
            .await
            .unwrap();
    }
    let pinned = q
        .submit(
            "p",
            req("10.9.9.9", "pinned").scanner_instance("s2"),
            None,
            None,
        )
        .await
        .unwrap();
    let pools = [pool("nessus", &[("s1", 2), ("s2", 1)])];
    // 8 concurrent claimers (as separate handles, like separate processes).
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let q = h.with_config(QueueConfig::default());
        let pools = pools.clone();
        set.spawn(async move { q.claim(&format!("w{w}"), &pools).await.unwrap() });
    }
    let mut per_instance = std::collections::HashMap::<String, u32>::new();
    let mut got = 0;
    while let Some(r) = set.join_next().await {
        if let Some(c) = r.unwrap() {
            got += 1;
            *per_instance
                .entry(c.task.instance.clone().unwrap())
                .or_default() += 1;
            assert!(c.task.pinned_instance.is_none() || c.task.instance.as_deref() == Some("s2"));
        }
    }
    assert_eq!(got, 3, "total capacity is 3");
    assert_eq!(per_instance.get("s1"), Some(&2));
    assert_eq!(per_instance.get("s2"), Some(&1));
    assert!(
        q.claim("late", &pools).await.unwrap().is_none(),
        "all slots busy"
    );
    // The pinned task waits for s2 even though it is not at the head.
    let v = q.get(&pinned.task.task_id).await.unwrap().unwrap();
    assert_eq!(v.task.status, TaskStatus::Queued);
    // Free s2 by completing its task; the pinned task can then be claimed on s2 only.
    let running = q
        .list(ListTasks::new(100).status(TaskStatus::Running))
        .await
        .unwrap();
    let on_s2 = running
        .tasks
        .iter()
        .find(|t| t.instance.as_deref() == Some("s2"))
        .unwrap();
    let tok = on_s2.lease.as_ref().unwrap().token;
    q.complete(&on_s2.task_id, tok, Completion::default())
        .await
        .unwrap();
    let only_s2 = [pool("nessus", &[("s2", 1)])];
    let mut claimed_pinned = false;
    while let Some(c) = q.claim("w", &only_s2).await.unwrap() {
        claimed_pinned |= c.task.task_id == pinned.task.task_id;
        q.complete(&c.task.task_id, c.token, Completion::default())
            .await
            .unwrap();
        if claimed_pinned {
            break;
        }
    }
    assert!(claimed_pinned);
}

pub(crate) async fn lease_expiry_requeues_and_fences_stale_writers(h: &Harness) {
    let q = h.with_config(QueueConfig::default().lease_ttl(SignedDuration::from_millis(300)));
    let pools = [pool("nessus", &[("s1", 1)])];
    let s = q
        .submit("p", req("10.0.0.1", "a"), None, None)
        .await
        .unwrap();
    let c1 = q.claim("w1", &pools).await.unwrap().unwrap();
    // Heartbeats keep it.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        q.heartbeat(&s.task.task_id, c1.token).await.unwrap();
        assert!(q.reap().await.unwrap().requeued.is_empty());
    }
    // The worker "dies": the lease lapses, the slot frees, the reaper requeues.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let rep = q.reap().await.unwrap();
    assert_eq!(rep.requeued, vec![s.task.task_id.clone()]);
    let c2 = q.claim("w2", &pools).await.unwrap().unwrap();
    assert_eq!(c2.task.task_id, s.task.task_id);
    assert!(c2.token > c1.token);
    assert_eq!(c2.task.attempts, 2);
    // The zombie's writes are rejected.
    let stale = q.record_scan(&s.task.task_id, c1.token, 9).await;
    assert!(matches!(stale, Err(Error::LeaseLost { .. })), "{stale:?}");
    let stale = q
        .complete(&s.task.task_id, c1.token, Completion::default())
        .await;
    assert!(matches!(stale, Err(Error::LeaseLost { .. })));
    q.complete(&s.task.task_id, c2.token, Completion::default())
        .await
        .unwrap();
    // Graceful release gives the task back without counting an attempt.
    let s2 = q
        .submit("p", req("10.0.0.2", "b"), None, None)
        .await
        .unwrap();
    let c3 = q.claim("w3", &pools).await.unwrap().unwrap();
    let back = q.release(&s2.task.task_id, c3.token).await.unwrap();
    assert_eq!((back.status, back.attempts), (TaskStatus::Queued, 0));
}

pub(crate) async fn poison_task_goes_to_dlq_and_retry_succeeds(h: &Harness) {
    let q = h.with_config(
        QueueConfig::default()
            .lease_ttl(SignedDuration::from_millis(100))
            .max_attempts(2),
    );
    let pools = [pool("nessus", &[("s1", 1)])];
    let s = q
        .submit("p", req("10.0.0.1", "poison"), None, None)
        .await
        .unwrap();
    for _ in 0..2 {
        q.claim("w", &pools).await.unwrap().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        q.reap().await.unwrap();
    }
    let t = q.get(&s.task.task_id).await.unwrap().unwrap().task;
    assert_eq!(t.status, TaskStatus::Failed);
    assert_eq!(t.error_code.as_deref(), Some("lease_expired_max_attempts"));
    assert!(t.error_message.unwrap().contains("2 attempts"));
    let dlq = q.dlq_list(None, 10, None).await.unwrap();
    assert_eq!(dlq.tasks.len(), 1);
    assert!(q.dlq_get(&s.task.task_id).await.unwrap().is_some());
    assert_eq!(q.queue_status("nessus").await.unwrap().dlq_size, 1);
    // Retry is a fresh attempt that can succeed.
    let r = q.dlq_retry(&s.task.task_id).await.unwrap();
    assert_eq!((r.status, r.attempts), (TaskStatus::Queued, 0));
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    q.complete(&c.task.task_id, c.token, Completion::default())
        .await
        .unwrap();
    assert!(q.dlq_list(None, 10, None).await.unwrap().tasks.is_empty());
    // A permanent failure dead-letters at once with its code.
    let p = q
        .submit("p", req("10.0.0.2", "perm"), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    q.fail(
        &c.task.task_id,
        c.token,
        Failure::dead_letter("nessus_rejected", "400 bad"),
    )
    .await
    .unwrap();
    let d = q.dlq_get(&p.task.task_id).await.unwrap().unwrap();
    assert_eq!(d.error_code.as_deref(), Some("nessus_rejected"));
    // Completed tasks cannot be "retried".
    assert!(q.dlq_retry(&c.task.task_id).await.is_ok());
    assert!(q.dlq_retry(&s.task.task_id).await.is_err());
}

pub(crate) async fn cancel_queued_and_running(h: &Harness) {
    let q = &h.queue;
    let pools = [pool("nessus", &[("s1", 1)])];
    let a = q
        .submit("p", req("10.0.0.1", "a"), None, None)
        .await
        .unwrap();
    let b = q
        .submit("p", req("10.0.0.2", "b"), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, a.task.task_id);
    assert_eq!(
        q.cancel(&b.task.task_id).await.unwrap(),
        CancelOutcome::Cancelled
    );
    assert_eq!(
        q.get(&b.task.task_id).await.unwrap().unwrap().task.status,
        TaskStatus::Cancelled
    );
    assert_eq!(q.queue_status("nessus").await.unwrap().queue_depth, 0);
    assert_eq!(
        q.cancel(&a.task.task_id).await.unwrap(),
        CancelOutcome::CancelRequested
    );
    let hb = q.heartbeat(&a.task.task_id, c.token).await.unwrap();
    assert!(
        hb.cancel_requested,
        "the worker learns about the cancel on heartbeat"
    );
    q.confirm_cancel(&a.task.task_id, c.token).await.unwrap();
    assert_eq!(
        q.cancel(&a.task.task_id).await.unwrap(),
        CancelOutcome::AlreadyFinished
    );
    assert!(matches!(
        q.cancel("ness_un_20200101_000000_00000000000000000000000000000000")
            .await,
        Err(Error::NotFound { .. })
    ));
}

pub(crate) async fn list_filters_and_pagination(h: &Harness) {
    let q = &h.queue;
    let mut ids = Vec::new();
    for i in 0..25 {
        let pool_name = if i % 5 == 0 { "dmz" } else { "nessus" };
        let r = NewTask::new(
            ScanType::Untrusted,
            pool_name,
            format!("10.0.{i}.0/24"),
            "n",
        );
        ids.push(q.submit("p", r, None, None).await.unwrap().task.task_id);
        // Distinct creation milliseconds keep "newest first" unambiguous.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let pools = [pool("nessus", &[("s1", 3)])];
    for _ in 0..3 {
        q.claim("w", &pools).await.unwrap().unwrap();
    }
    // Pagination covers everything once, newest first.
    let mut seen = Vec::new();
    let mut page = q.list(ListTasks::new(7)).await.unwrap();
    loop {
        assert!(page.tasks.len() <= 7);
        seen.extend(page.tasks.iter().map(|t| t.task_id.clone()));
        match page.next_cursor.clone() {
            Some(c) => page = q.list(ListTasks::new(7).cursor(c)).await.unwrap(),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let dmz = q.list(ListTasks::new(100).pool("dmz")).await.unwrap();
    assert_eq!(dmz.tasks.len(), 5);
    assert!(dmz.tasks.iter().all(|t| t.pool == "dmz"));
    let running = q
        .list(ListTasks::new(100).status(TaskStatus::Running))
        .await
        .unwrap();
    assert_eq!(running.tasks.len(), 3);
    let queued_nessus = q
        .list(
            ListTasks::new(100)
                .status(TaskStatus::Queued)
                .pool("nessus"),
        )
        .await
        .unwrap();
    assert_eq!(queued_nessus.tasks.len(), 17);
    // CIDR-aware target filter: an address inside one stored /24.
    let hit = q
        .list(ListTasks::new(10).target("10.0.7.33"))
        .await
        .unwrap();
    assert_eq!(hit.tasks.len(), 1);
    assert_eq!(hit.tasks[0].task_id, ids[7]);
    let wide = q
        .list(ListTasks::new(100).target("10.0.0.0/16"))
        .await
        .unwrap();
    assert_eq!(wide.tasks.len(), 25);
    let none = q
        .list(ListTasks::new(10).target("192.168.0.1"))
        .await
        .unwrap();
    assert!(none.tasks.is_empty());
}

pub(crate) async fn queue_position_never_rises(h: &Harness) {
    let q = h.with_config(QueueConfig::default().lease_ttl(SignedDuration::from_millis(100)));
    let pools = [pool("nessus", &[("s1", 2)])];
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            q.submit("p", req(&format!("10.0.0.{i}"), "x"), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    let mut last: Vec<u64> = Vec::new();
    for id in &ids {
        last.push(q.get(id).await.unwrap().unwrap().queue_position.unwrap());
    }
    assert_eq!(last, vec![1, 2, 3, 4, 5, 6]);
    // Claims, new submissions and a crashed worker's requeue must not move any waiting task back.
    q.claim("w", &pools).await.unwrap().unwrap();
    q.claim("w", &pools).await.unwrap().unwrap();
    q.submit("p", req("10.0.1.1", "later"), None, None)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(q.reap().await.unwrap().requeued.len(), 2);
    // The two claimed tasks left the queue and re-entered at its tail; the four that
    // waited throughout only moved forward.
    for (id, prev) in ids.iter().zip(&last).skip(2) {
        let p = q.get(id).await.unwrap().unwrap().queue_position.unwrap();
        assert!(p <= *prev, "{id}: position rose from {prev} to {p}");
    }
    let requeued = q.get(&ids[0]).await.unwrap().unwrap();
    assert_eq!(requeued.task.status, TaskStatus::Queued);
    assert!(requeued.queue_position.unwrap() > 4);
}

pub(crate) async fn housekeeping_ttls_and_dry_run(h: &Harness) {
    let q = h.with_config(QueueConfig::default().ttls(
        SignedDuration::from_millis(100),
        SignedDuration::from_secs(3600),
    ));
    let pools = [pool("nessus", &[("s1", 5)])];
    let done = q
        .submit("p", req("10.0.0.1", "done"), None, None)
        .await
        .unwrap();
    let failed = q
        .submit("p", req("10.0.0.2", "failed"), None, None)
        .await
        .unwrap();
    let waiting = q
        .submit("p", req("10.0.0.3", "waiting"), None, None)
        .await
        .unwrap();
    let c1 = q.claim("w", &pools).await.unwrap().unwrap();
    let c2 = q.claim("w", &pools).await.unwrap().unwrap();
    q.complete(&c1.task.task_id, c1.token, Completion::default())
        .await
        .unwrap();
    q.fail(&c2.task.task_id, c2.token, Failure::plain("x", "y"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let dry = q
        .housekeep(true, |_| panic!("dry run deletes nothing"))
        .await
        .unwrap();
    assert_eq!(
        dry.tasks,
        vec![(done.task.task_id.clone(), TaskStatus::Completed)]
    );
    assert!(q.get(&done.task.task_id).await.unwrap().is_some());
    let mut removed = Vec::new();
    let rep = q
        .housekeep(false, |t| removed.push(t.task_id.clone()))
        .await
        .unwrap();
    assert_eq!(rep.tasks.len(), 1);
    assert_eq!(removed, vec![done.task.task_id.clone()]);
    assert!(q.get(&done.task.task_id).await.unwrap().is_none());
    assert!(
        q.get(&failed.task.task_id).await.unwrap().is_some(),
        "30-day class kept"
    );
    assert!(
        q.get(&waiting.task.task_id).await.unwrap().is_some(),
        "live tasks never go"
    );
    let all = q.list(ListTasks::new(100)).await.unwrap();
    assert_eq!(all.tasks.len(), 2);
}

pub(crate) async fn sealed_credentials_never_stored_in_plaintext(h: &Harness) {
    let q = &h.queue;
    let canary = format!("CANARY-{}", uuid::Uuid::new_v4());
    let creds = AdhocCredentials::ssh("root", SecretString::from(canary.clone()));
    let r = NewTask::new(ScanType::Authenticated, "nessus", "10.0.0.1", "auth");
    let s = q
        .submit("p", r.clone(), Some(creds.clone()), Some("auth-key"))
        .await
        .unwrap();
    assert!(s.task.has_adhoc_credentials);
    // An identical retry with the same password is idempotent.
    let again = q
        .submit("p", r, Some(creds), Some("auth-key"))
        .await
        .unwrap();
    assert!(again.idempotent);
    let stored = h.all_stored_bytes().await;
    assert!(
        !contains(&stored, canary.as_bytes()),
        "canary found in the store"
    );
    let status = serde_json::to_string(&q.queue_status("nessus").await.unwrap()).unwrap();
    assert!(!status.contains(&canary));
    // Only the worker can open them, and they go once the scan exists.
    let pools = [pool("nessus", &[("s1", 1)])];
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    let opened = q.open_credentials(&c.task.task_id).await.unwrap().unwrap();
    use secrecy::ExposeSecret;
    assert_eq!(opened.password.expose_secret(), canary);
    q.record_scan(&c.task.task_id, c.token, 5).await.unwrap();
    assert!(q.open_credentials(&c.task.task_id).await.unwrap().is_none());
    // A task that fails before creating its scan drops them too.
    let s2 = q
        .submit(
            "p",
            NewTask::new(ScanType::Authenticated, "nessus", "10.0.0.2", "auth2"),
            Some(AdhocCredentials::ssh(
                "root",
                SecretString::from(canary.clone()),
            )),
            None,
        )
        .await
        .unwrap();
    q.complete(&c.task.task_id, c.token, Completion::default())
        .await
        .unwrap();
    let c2 = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c2.task.task_id, s2.task.task_id);
    q.fail(
        &c2.task.task_id,
        c2.token,
        Failure::dead_letter("nessus_error", "500"),
    )
    .await
    .unwrap();
    assert!(
        q.open_credentials(&s2.task.task_id)
            .await
            .unwrap()
            .is_none()
    );
    let dlq = serde_json::to_string(&q.dlq_list(None, 10, None).await.unwrap()).unwrap();
    assert!(!dlq.contains(&canary));
    // Untrusted scans take no credentials; authenticated ones need some.
    let bad = q
        .submit(
            "p",
            NewTask::new(ScanType::Authenticated, "nessus", "10.0.0.3", "x"),
            None,
            None,
        )
        .await;
    assert!(matches!(
        bad,
        Err(Error::Invalid {
            field: "credentials",
            ..
        })
    ));
}

pub(crate) async fn dlq_purge_modes(h: &Harness) {
    let q = &h.queue;
    let pools = [pool("nessus", &[("s1", 10)])];
    let mut ids = Vec::new();
    for i in 0..4 {
        q.submit("p", req(&format!("10.0.0.{i}"), "x"), None, None)
            .await
            .unwrap();
        let c = q.claim("w", &pools).await.unwrap().unwrap();
        q.fail(&c.task.task_id, c.token, Failure::dead_letter("e", "m"))
            .await
            .unwrap();
        ids.push(c.task.task_id);
    }
    let gone = q.dlq_purge(DlqPurge::Id(ids[0].clone())).await.unwrap();
    assert_eq!(
        gone.iter().map(|t| t.task_id.clone()).collect::<Vec<_>>(),
        vec![ids[0].clone()],
        "the purge returns what it deleted"
    );
    // What it returns is what the caller audits.
    for t in &gone {
        q.audit(AuditEvent::for_task(AuditAction::DlqPurge, "admin", t).build())
            .await
            .unwrap();
    }
    let trail = q
        .audit_list(AuditQuery::new(10).action(AuditAction::DlqPurge))
        .await
        .unwrap();
    assert_eq!(trail.events.len(), 1);
    assert_eq!(trail.events[0].task_id.as_deref(), Some(ids[0].as_str()));
    assert_eq!(trail.events[0].pool.as_deref(), Some("nessus"));
    assert_eq!(trail.events[0].targets.as_deref(), Some("10.0.0.0"));
    assert!(
        q.dlq_purge(DlqPurge::Id(ids[0].clone()))
            .await
            .unwrap()
            .is_empty()
    );
    let future = jiff::Timestamp::now() + SignedDuration::from_secs(60);
    let past = jiff::Timestamp::now() - SignedDuration::from_secs(3600);
    // The trail lives apart from the tasks: deleting a task keeps its events.
    let submitted = q.get(&ids[1]).await.unwrap().unwrap().task;
    q.audit(AuditEvent::for_task(AuditAction::Submit, "p", &submitted).build())
        .await
        .unwrap();
    assert_eq!(q.dlq_purge(DlqPurge::Before(past)).await.unwrap().len(), 0);
    assert_eq!(
        q.dlq_purge(DlqPurge::Before(future)).await.unwrap().len(),
        3
    );
    q.submit("p", req("10.0.0.9", "x"), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    q.fail(&c.task.task_id, c.token, Failure::dead_letter("e", "m"))
        .await
        .unwrap();
    assert_eq!(q.dlq_purge(DlqPurge::All).await.unwrap().len(), 1);
    let kept = q
        .audit_list(AuditQuery::new(10).task_id(ids[1].clone()))
        .await
        .unwrap();
    assert_eq!(kept.events.len(), 1, "{kept:?}");
    assert!(q.get(&ids[1]).await.unwrap().is_none());
    assert_eq!(q.queue_status("nessus").await.unwrap().dlq_size, 0);
}

pub(crate) async fn import_lifecycle(h: &Harness) {
    let q = &h.queue;
    let imported = |targets: &str, name: &str| {
        NewTask::new(ScanType::Untrusted, IMPORT_POOL, targets, name)
            .description("imported from old.nessus")
    };
    let t = q
        .begin_import_with("alice", imported("10.0.0.1,10.0.0.2", "old scan"))
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    assert_eq!(t.description, "imported from old.nessus");
    // Workers only claim the pools they serve, and no scanner pool is `imported`.
    assert!(
        q.claim("w", &[pool("nessus", &[("s1", 4)])])
            .await
            .unwrap()
            .is_none()
    );
    let mut completion = Completion::default();
    completion.results_summary = Some(serde_json::json!({ "hosts_scanned": 2 }));
    let done = q
        .finish_import(&t.task_id, completion.clone())
        .await
        .unwrap();
    assert_eq!(done.status, TaskStatus::Completed);
    assert!(done.lease.is_none());
    let view = q.get(&t.task_id).await.unwrap().unwrap();
    assert_eq!(view.task, done);
    assert_eq!(view.queue_position, None);
    let st = q.queue_status(IMPORT_POOL).await.unwrap();
    assert_eq!((st.queue_depth, st.running), (0, 0));
    let listed = q.list(ListTasks::new(10).target("10.0.0.2")).await.unwrap();
    assert_eq!(listed.tasks.len(), 1);
    let again = q.finish_import(&t.task_id, completion.clone()).await;
    assert!(
        matches!(again, Err(Error::InvalidTransition { .. })),
        "{again:?}"
    );

    // A failed import ends `failed`, not queued forever.
    let broken = q
        .begin_import("alice", "10.0.0.3", "broken", "brief")
        .await
        .unwrap();
    let failed = q
        .abort_import(&broken.task_id, "import_failed", "disk full")
        .await
        .unwrap();
    assert_eq!(failed.status, TaskStatus::Failed);
    assert_eq!(failed.error_code.as_deref(), Some("import_failed"));
    assert_eq!(
        q.get(&broken.task_id).await.unwrap().unwrap().task.status,
        TaskStatus::Failed
    );

    // Only imports go through this door, and only into the reserved pool.
    let real = q
        .submit("alice", req("10.0.0.4", "real"), None, None)
        .await
        .unwrap()
        .task;
    let r = q.finish_import(&real.task_id, completion).await;
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    let r = q.abort_import(&real.task_id, "import_failed", "x").await;
    assert!(matches!(r, Err(Error::Invalid { .. })), "{r:?}");
    let wrong_pool = q.begin_import_with("alice", req("10.0.0.5", "x")).await;
    assert!(
        matches!(wrong_pool, Err(Error::Invalid { field: "pool", .. })),
        "{wrong_pool:?}"
    );
    let pinned = q
        .begin_import_with("alice", imported("10.0.0.6", "x").scanner_instance("s1"))
        .await;
    assert!(
        matches!(
            pinned,
            Err(Error::Invalid {
                field: "scanner_instance",
                ..
            })
        ),
        "{pinned:?}"
    );
    let profiled = q
        .begin_import_with(
            "alice",
            imported("10.0.0.7", "x").credential_profile("linux-ssh"),
        )
        .await;
    assert!(
        matches!(
            profiled,
            Err(Error::Invalid {
                field: "credential_profile",
                ..
            })
        ),
        "{profiled:?}"
    );
    let missing = q
        .finish_import(
            "impo_un_20250101_000000_00000000000000000000000000000000",
            Completion::default(),
        )
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One audit event of the listing model: `i` picks principal, action, task, pool and
/// time deterministically; several events share a millisecond so ties are exercised.
fn audit_event(base: jiff::Timestamp, i: i64) -> AuditEvent {
    let principals = ["alice", "bob", "carol"];
    let actions = [
        AuditAction::Submit,
        AuditAction::Cancel,
        AuditAction::ResultsRead,
        AuditAction::PolicyRefused,
    ];
    let mut b = AuditEvent::builder(actions[(i % 4) as usize], principals[(i % 3) as usize])
        .at(base + SignedDuration::from_millis((i / 3) * 1000))
        .trace_id(format!("trace-{i}"));
    if i % 5 != 0 {
        b = b.task_id(format!("task-{}", i % 7));
    }
    if i % 2 == 0 {
        b = b.pool(if i % 4 == 0 { "dmz" } else { "nessus" });
    }
    b.targets(format!("10.0.0.{i}")).build()
}

/// Reads every page of `query` at `limit` per page; asserts that every page but the
/// last is full and that the last one has no cursor. Returns the event ids in order.
async fn audit_all_pages(q: &nessus_queue::Queue, query: AuditQuery, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut page_query = query.clone();
        page_query.limit = limit;
        page_query.cursor = cursor.clone();
        let page = q.audit_list(page_query).await.unwrap();
        ids.extend(page.events.iter().map(|e| e.id.clone()));
        match page.next_cursor {
            Some(c) => {
                assert_eq!(page.events.len(), limit, "a page before the last is full");
                cursor = Some(c);
            }
            None => return ids,
        }
    }
    panic!("paging did not end");
}

/// The model's version of a query's filters.
type Keep = Box<dyn Fn(&AuditEvent) -> bool>;

pub(crate) async fn audit_append_list_filter_and_cursor_paging(h: &Harness) {
    let q = &h.queue;
    let base = jiff::Timestamp::now() - SignedDuration::from_hours(1);
    let mut model = Vec::new();
    for i in 0..61 {
        let e = audit_event(base, i);
        q.audit(e.clone()).await.unwrap();
        model.push(e);
    }
    // The model: newest first, ties in one millisecond by id, descending.
    model.sort_by(|a, b| (b.at, &b.id).cmp(&(a.at, &a.id)));
    let t = move |secs: i64| base + SignedDuration::from_secs(secs);
    let cases: Vec<(&str, AuditQuery, Keep)> = vec![
        ("all", AuditQuery::default(), Box::new(|_| true)),
        (
            "principal",
            AuditQuery::default().principal("alice"),
            Box::new(|e| e.principal == "alice"),
        ),
        (
            "action",
            AuditQuery::default().action(AuditAction::Cancel),
            Box::new(|e| e.action == AuditAction::Cancel),
        ),
        (
            "task",
            AuditQuery::default().task_id("task-3"),
            Box::new(|e| e.task_id.as_deref() == Some("task-3")),
        ),
        (
            "pool",
            AuditQuery::default().pool("dmz"),
            Box::new(|e| e.pool.as_deref() == Some("dmz")),
        ),
        (
            "since and until",
            AuditQuery::default().since(t(4)).until(t(15)),
            Box::new(move |e| e.at >= t(4) && e.at < t(15)),
        ),
        (
            "principal and action (one index, one check)",
            AuditQuery::default()
                .principal("bob")
                .action(AuditAction::Submit),
            Box::new(|e| e.principal == "bob" && e.action == AuditAction::Submit),
        ),
        (
            "principal, pool and time",
            AuditQuery::default()
                .principal("carol")
                .pool("nessus")
                .since(t(2)),
            Box::new(move |e| {
                e.principal == "carol" && e.pool.as_deref() == Some("nessus") && e.at >= t(2)
            }),
        ),
        (
            "nobody",
            AuditQuery::default().principal("mallory"),
            Box::new(|_| false),
        ),
    ];
    for (name, query, keep) in cases {
        let expected: Vec<String> = model
            .iter()
            .filter(|e| keep(e))
            .map(|e| e.id.clone())
            .collect();
        for limit in [1, 4, 7, 1000] {
            let got = audit_all_pages(q, query.clone(), limit).await;
            assert_eq!(got, expected, "{name}, limit {limit}");
        }
    }
    // Stored as recorded.
    let first = q.audit_list(AuditQuery::new(1)).await.unwrap();
    assert_eq!(first.events, vec![model[0].clone()]);
    let bad = q
        .audit_list(AuditQuery::new(5).cursor("not-a-cursor"))
        .await;
    assert!(
        matches!(
            bad,
            Err(Error::Invalid {
                field: "cursor",
                ..
            })
        ),
        "{bad:?}"
    );
    let nobody = q
        .audit(AuditEvent::builder(AuditAction::Submit, " ").build())
        .await;
    assert!(matches!(
        nobody,
        Err(Error::Invalid {
            field: "principal",
            ..
        })
    ));
}

pub(crate) async fn audit_fields_are_capped(h: &Harness) {
    let q = &h.queue;
    let long = |c: &str, n: usize| c.repeat(n);
    let e = AuditEvent::builder(AuditAction::Submit, long("p", 10_000))
        .trace_id(long("t", 1_000))
        .task_id(long("k", 1_000))
        .pool(long("o", 1_000))
        .targets(long("10.0.0.1,", 100_000))
        .outcome(long("x", 1_000))
        .detail(long("é\u{1b}", 10_000))
        .build();
    q.audit(e.clone()).await.unwrap();
    let got = q.audit_list(AuditQuery::new(10)).await.unwrap().events;
    assert_eq!(got.len(), 1);
    let g = &got[0];
    let fields = [
        (
            "principal",
            e.principal.as_str(),
            g.principal.as_str(),
            AUDIT_MAX_PRINCIPAL,
        ),
        ("trace_id", &e.trace_id, &g.trace_id, AUDIT_MAX_ID),
        (
            "task_id",
            e.task_id.as_deref().unwrap(),
            g.task_id.as_deref().unwrap(),
            AUDIT_MAX_ID,
        ),
        (
            "pool",
            e.pool.as_deref().unwrap(),
            g.pool.as_deref().unwrap(),
            AUDIT_MAX_ID,
        ),
        (
            "targets",
            e.targets.as_deref().unwrap(),
            g.targets.as_deref().unwrap(),
            AUDIT_MAX_TARGETS,
        ),
        ("outcome", &e.outcome, &g.outcome, AUDIT_MAX_OUTCOME),
        (
            "detail",
            e.detail.as_deref().unwrap(),
            g.detail.as_deref().unwrap(),
            AUDIT_MAX_DETAIL,
        ),
    ];
    for (name, sent, stored, max) in fields {
        assert!(stored.len() <= max, "{name}: {} > {max}", stored.len());
        let kept = stored
            .strip_suffix('…')
            .unwrap_or_else(|| panic!("{name} marks the cut"));
        assert!(sent.starts_with(kept), "{name} keeps a prefix");
        assert!(
            kept.len() + 3 > max - 4,
            "{name} keeps nearly all it may: {}",
            kept.len()
        );
    }
    // Short fields are stored untouched, and the principal still filters.
    let short = AuditEvent::builder(AuditAction::Cancel, "alice")
        .detail("ok")
        .build();
    q.audit(short.clone()).await.unwrap();
    let alice = q
        .audit_list(AuditQuery::new(10).principal("alice"))
        .await
        .unwrap();
    assert_eq!(alice.events, vec![short]);
}

pub(crate) async fn audit_ttl_purged_by_housekeeping(h: &Harness) {
    let q = h.with_config(QueueConfig::default().audit_ttl(SignedDuration::from_hours(1)));
    let now = jiff::Timestamp::now();
    let mut kept = Vec::new();
    for i in 0..5 {
        let old = i < 3;
        let at = if old {
            now - SignedDuration::from_mins(120 + i)
        } else {
            now - SignedDuration::from_mins(30 + i)
        };
        let principal = if old { "gone-principal" } else { "alice" };
        let mut b = AuditEvent::builder(AuditAction::Submit, principal).at(at);
        if old {
            b = b.task_id(format!("gone-task-{i}")).pool("gone-pool");
        }
        let e = b.build();
        q.audit(e.clone()).await.unwrap();
        if !old {
            kept.push(e.id);
        }
    }
    let dry = q.housekeep(true, |_| {}).await.unwrap();
    assert_eq!(dry.audit_events, 3, "dry run counts what would go");
    assert_eq!(
        q.audit_list(AuditQuery::new(100))
            .await
            .unwrap()
            .events
            .len(),
        5
    );
    let rep = q.housekeep(false, |_| {}).await.unwrap();
    assert_eq!(rep.audit_events, 3);
    let left: Vec<String> = q
        .audit_list(AuditQuery::new(100))
        .await
        .unwrap()
        .events
        .into_iter()
        .map(|e| e.id)
        .collect();
    kept.sort_by(|a, b| b.cmp(a));
    let mut left_sorted = left.clone();
    left_sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(left_sorted, kept);
    assert!(
        q.audit_list(AuditQuery::new(10).principal("gone-principal"))
            .await
            .unwrap()
            .events
            .is_empty()
    );
    assert_eq!(q.housekeep(false, |_| {}).await.unwrap().audit_events, 0);
    // The default keeps them for 90 days.
    assert_eq!(
        h.queue.housekeep(true, |_| {}).await.unwrap().audit_events,
        0
    );
    // On Redis the purged events' index keys are gone too: the keyspace does not grow.
    if let Some(urls) = h.primary_urls() {
        let (mut keys, mut docs) = (Vec::<String>::new(), 0u64);
        // On a Cluster every primary answers for its own slots.
        for url in urls {
            let client = redis::Client::open(url).unwrap();
            let mut c = client.get_multiplexed_async_connection().await.unwrap();
            let mut k: Vec<String> = redis::cmd("KEYS")
                .arg("nq:{audit}:*")
                .query_async(&mut c)
                .await
                .unwrap();
            keys.append(&mut k);
            // A Cluster primary that does not own the slot redirects: not its key.
            match redis::cmd("HLEN")
                .arg("nq:{audit}:doc")
                .query_async::<u64>(&mut c)
                .await
            {
                Ok(n) => docs += n,
                Err(e) if e.redirect_node().is_some() => {}
                Err(e) => panic!("HLEN: {e}"),
            }
        }
        assert!(
            keys.iter().all(|k| !k.contains("gone-")),
            "purged index keys left: {keys:?}"
        );
        assert_eq!(docs, 2);
    }
}

/// The task id inside a listing cursor (`{created_ms:013}:{task_id}`), so a test
/// can check whose task a cursor points at.
fn cursor_task_id(cursor: &str) -> &str {
    cursor.split_once(':').map_or(cursor, |(_, id)| id)
}

pub(crate) async fn principal_pages_are_full_and_cursors_private(h: &Harness) {
    let q = &h.queue;
    let mut mine = Vec::new();
    let mut theirs = HashSet::new();
    // A's tasks outnumber B's 4:1 and interleave with them, so a filter applied
    // after paging would return short pages and cursors pointing at A's tasks.
    for i in 0..35 {
        let pool_name = if i % 2 == 0 { "nessus" } else { "dmz" };
        let r = NewTask::new(ScanType::Untrusted, pool_name, format!("10.1.{i}.1"), "n");
        if i % 5 == 4 {
            mine.push(q.submit("bob", r, None, None).await.unwrap().task.task_id);
        } else {
            theirs.insert(q.submit("alice", r, None, None).await.unwrap().task.task_id);
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    assert_eq!(mine.len(), 7);
    // Claim two of bob's and three of alice's nessus tasks, for the status filter.
    let pools = [pool("nessus", &[("s1", 100)])];
    for _ in 0..5 {
        q.claim("w", &pools).await.unwrap().unwrap();
    }
    let cases: Vec<(ListTasks, usize)> = vec![
        (ListTasks::new(3).principal("bob"), 7),
        (ListTasks::new(2).principal("bob").pool("dmz"), 3),
        (ListTasks::new(1).principal("bob").pool("nessus"), 4),
        (
            ListTasks::new(2)
                .principal("bob")
                .status(TaskStatus::Queued),
            5,
        ),
        (
            ListTasks::new(1)
                .principal("bob")
                .pool("nessus")
                .status(TaskStatus::Running),
            2,
        ),
    ];
    for (base, expected) in cases {
        let limit = base.limit;
        let mut seen = Vec::new();
        let mut page = q.list(base.clone()).await.unwrap();
        loop {
            assert!(
                page.tasks.iter().all(|t| t.principal == "bob"),
                "{base:?}: another principal's task"
            );
            seen.extend(page.tasks.iter().map(|t| t.task_id.clone()));
            match page.next_cursor.clone() {
                Some(c) => {
                    // Full page, and the cursor is one of bob's own tasks.
                    assert_eq!(page.tasks.len(), limit, "{base:?}: short page");
                    let id = cursor_task_id(&c);
                    assert!(mine.iter().any(|m| m == id), "{base:?}: cursor {c}");
                    assert!(!theirs.contains(id));
                    page = q.list(base.clone().cursor(c)).await.unwrap();
                }
                None => break,
            }
        }
        assert_eq!(seen.len(), expected, "{base:?}");
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), expected, "{base:?}: duplicates");
    }
    // Newest first, the same order as the unfiltered listing.
    let all = q.list(ListTasks::new(3).principal("bob")).await.unwrap();
    let mut newest: Vec<_> = mine.iter().rev().take(3).cloned().collect();
    newest.truncate(3);
    let got: Vec<_> = all.tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(got, newest);
    // Nobody's tasks for a principal without any.
    let none = q.list(ListTasks::new(10).principal("carol")).await.unwrap();
    assert!(none.tasks.is_empty() && none.next_cursor.is_none());
}

pub(crate) async fn queue_status_for_shows_others_as_counts(h: &Harness) {
    let q = &h.queue;
    let mut bob = Vec::new();
    for i in 0..4 {
        q.submit("alice", req(&format!("10.2.0.{i}"), "a"), None, None)
            .await
            .unwrap();
    }
    for i in 0..3 {
        bob.push(
            q.submit("bob", req(&format!("10.2.1.{i}"), "b"), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    // Two claims: alice's oldest (older head), then bob's (fewer running).
    let pools = [pool("nessus", &[("s1", 5)])];
    let first = q.claim("w", &pools).await.unwrap().unwrap();
    let second = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(first.task.principal, "alice");
    assert_eq!(second.task.principal, "bob");
    let s = q.queue_status_for("nessus", Some("bob")).await.unwrap();
    let counts = s.principal.unwrap();
    assert_eq!((counts.queued, counts.running), (2, 1));
    assert_eq!((counts.others_queued, counts.others_running), (3, 1));
    let next: Vec<_> = s.next_tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(next, bob[1..].to_vec(), "only bob's own next tasks");
    assert_eq!((s.queue_depth, s.running), (5, 2));
    // The admin view shows everyone's next tasks and no per-principal split.
    let admin = q.queue_status_for("nessus", None).await.unwrap();
    assert!(admin.principal.is_none());
    assert_eq!(admin.next_tasks.len(), 3);
    assert!(admin.next_tasks.iter().any(|t| t.principal == "alice"));
    // A principal with nothing queued sees only counts of the others.
    let carol = q.queue_status_for("nessus", Some("carol")).await.unwrap();
    assert!(carol.next_tasks.is_empty());
    let c = carol.principal.unwrap();
    assert_eq!(
        (c.queued, c.running, c.others_queued, c.others_running),
        (0, 0, 5, 2)
    );
    let json = serde_json::to_string(&carol).unwrap();
    assert!(
        !json.contains("10.2."),
        "no other principal's targets: {json}"
    );
}

/// Reference model of the fair order, written independently of the backends: each
/// claim goes to the principal with the fewest running tasks (its running count plus
/// the claims it has had so far), ties to the one whose next task was submitted
/// first. `queued` is every queued task as (submission index, principal) in
/// submission order; returns the submission indexes in claim order.
fn reference_claim_order(queued: &[(usize, String)], running: &[(&str, u64)]) -> Vec<usize> {
    let mut level: std::collections::HashMap<String, u64> =
        running.iter().map(|(p, n)| ((*p).to_owned(), *n)).collect();
    let mut left: Vec<(usize, String)> = queued.to_vec();
    let mut order = Vec::new();
    while !left.is_empty() {
        // Each principal's head is its first remaining task in submission order.
        let mut best: Option<(u64, usize, usize)> = None; // (level, submit idx, pos in left)
        for (pos, (idx, p)) in left.iter().enumerate() {
            if left[..pos].iter().any(|(_, q)| q == p) {
                continue;
            }
            let l = level.get(p).copied().unwrap_or(0);
            if best.is_none_or(|(bl, bi, _)| (l, *idx) < (bl, bi)) {
                best = Some((l, *idx, pos));
            }
        }
        let (_, idx, pos) = best.expect("a head");
        let (_, p) = left.remove(pos);
        *level.entry(p).or_default() += 1;
        order.push(idx);
    }
    order
}

pub(crate) async fn fair_claims_and_positions_follow_the_reference_model(h: &Harness) {
    let q = &h.queue;
    // Submission order: alice floods first, bob and carol arrive later, alice again.
    let plan = [
        "alice", "alice", "alice", "alice", "alice", "bob", "alice", "bob", "carol", "bob",
        "alice", "carol", "dave",
    ];
    let mut ids = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        ids.push(
            q.submit(p, req(&format!("10.3.0.{i}"), "f"), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    let queued: Vec<(usize, String)> = plan
        .iter()
        .enumerate()
        .map(|(i, p)| (i, (*p).to_owned()))
        .collect();
    let expected = reference_claim_order(&queued, &[]);
    let pools = [pool("nessus", &[("s1", 100)])];
    // Positions before any claim are the reference order.
    for (rank, idx) in expected.iter().enumerate() {
        let v = q.get(&ids[*idx]).await.unwrap().unwrap();
        assert_eq!(
            v.queue_position,
            Some(rank as u64 + 1),
            "task {idx} ({})",
            plan[*idx]
        );
    }
    // Three claims follow it; then positions follow the model with those running.
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let c = q.claim("w", &pools).await.unwrap().unwrap();
        claimed.push(ids.iter().position(|i| *i == c.task.task_id).unwrap());
    }
    assert_eq!(claimed, expected[..3].to_vec());
    let mut running: Vec<(&str, u64)> = Vec::new();
    for idx in &claimed {
        match running.iter_mut().find(|(p, _)| *p == plan[*idx]) {
            Some(r) => r.1 += 1,
            None => running.push((plan[*idx], 1)),
        }
    }
    let left: Vec<(usize, String)> = queued
        .iter()
        .filter(|(i, _)| !claimed.contains(i))
        .cloned()
        .collect();
    let expected_rest = reference_claim_order(&left, &running);
    for (rank, idx) in expected_rest.iter().enumerate() {
        let v = q.get(&ids[*idx]).await.unwrap().unwrap();
        assert_eq!(
            v.queue_position,
            Some(rank as u64 + 1),
            "task {idx} ({})",
            plan[*idx]
        );
    }
    let mut rest = Vec::new();
    while let Some(c) = q.claim("w", &pools).await.unwrap() {
        rest.push(ids.iter().position(|i| *i == c.task.task_id).unwrap());
    }
    assert_eq!(rest, expected_rest);
}

/// Many principals at once: the Redis backend reads every other principal's counts
/// in one pipeline for a position and for a claim (it was a round trip each), so
/// each principal's figures must still land on that principal. 30 principals with
/// uneven loads (1–3 tasks, in an interleaved order), two of them running work.
pub(crate) async fn positions_and_claims_with_many_principals(h: &Harness) {
    let q = &h.queue;
    let mut plan: Vec<String> = Vec::new();
    for round in 0..3 {
        for p in 0..30 {
            if p % 3 >= round {
                plan.push(format!("tenant-{:02}", (p * 7) % 30));
            }
        }
    }
    let mut ids = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let t = q
            .submit(
                p,
                req(&format!("10.4.{}.{}", i / 256, i % 256), "m"),
                None,
                None,
            )
            .await
            .unwrap();
        ids.push(t.task.task_id);
    }
    let queued: Vec<(usize, String)> = plan.iter().cloned().enumerate().collect();
    let expected = reference_claim_order(&queued, &[]);
    let pools = [pool("nessus", &[("s1", 1000)])];
    // Two claims: the first two of the reference order run.
    let mut claimed = Vec::new();
    for _ in 0..2 {
        let c = q.claim("w", &pools).await.unwrap().unwrap();
        claimed.push(ids.iter().position(|i| *i == c.task.task_id).unwrap());
    }
    assert_eq!(claimed, expected[..2].to_vec());
    let running: Vec<(&str, u64)> = claimed.iter().map(|i| (plan[*i].as_str(), 1)).collect();
    let left: Vec<(usize, String)> = queued
        .iter()
        .filter(|(i, _)| !claimed.contains(i))
        .cloned()
        .collect();
    let expected_rest = reference_claim_order(&left, &running);
    for (rank, idx) in expected_rest.iter().enumerate() {
        let v = q.get(&ids[*idx]).await.unwrap().unwrap();
        assert_eq!(
            v.queue_position,
            Some(rank as u64 + 1),
            "task {idx} ({})",
            plan[*idx]
        );
    }
    let mut rest = Vec::new();
    while let Some(c) = q.claim("w", &pools).await.unwrap() {
        rest.push(ids.iter().position(|i| *i == c.task.task_id).unwrap());
    }
    assert_eq!(rest, expected_rest);
}

pub(crate) async fn one_scan_is_not_stuck_behind_five_hundred(h: &Harness) {
    let q = &h.queue;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..10 {
        let q = q.clone();
        set.spawn(async move {
            for i in 0..50 {
                q.submit("alice", req(&format!("10.4.{w}.{i}"), "flood"), None, None)
                    .await
                    .unwrap();
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    let b = q
        .submit("bob", req("10.5.0.1", "mine"), None, None)
        .await
        .unwrap();
    let pos = b.queue_position.unwrap();
    assert!(pos <= 2, "bob's first scan is at position {pos}");
    assert_eq!(
        q.get(&b.task.task_id)
            .await
            .unwrap()
            .unwrap()
            .queue_position,
        Some(pos)
    );
    let pools = [pool("nessus", &[("s1", 10)])];
    let mut got = Vec::new();
    for _ in 0..2 {
        got.push(q.claim("w", &pools).await.unwrap().unwrap().task.task_id);
    }
    assert!(
        got.contains(&b.task.task_id),
        "bob's scan in the next two claims"
    );
    assert_eq!(q.queue_status("nessus").await.unwrap().queue_depth, 499);
}

pub(crate) async fn quota_exceeded_and_idempotent_replay(h: &Harness) {
    let q = h.with_config(QueueConfig::default().max_queued_per_principal(3));
    let mut first = None;
    for i in 0..3 {
        let s = q
            .submit(
                "alice",
                req(&format!("10.6.0.{i}"), "q"),
                None,
                Some(&format!("k{i}")),
            )
            .await
            .unwrap();
        first.get_or_insert(s.task.task_id);
    }
    let over = q
        .submit("alice", req("10.6.0.9", "q"), None, Some("k9"))
        .await;
    assert!(
        matches!(over, Err(Error::QuotaExceeded { ref principal, limit: 3 }) if principal == "alice"),
        "{over:?}"
    );
    // A replay of an existing task is not new work.
    let replay = q
        .submit("alice", req("10.6.0.0", "q"), None, Some("k0"))
        .await
        .unwrap();
    assert!(replay.idempotent);
    assert_eq!(Some(replay.task.task_id), first);
    // The refused submit left nothing behind: its key is free for another request.
    let page = q.list(ListTasks::new(10).principal("alice")).await.unwrap();
    assert_eq!(page.tasks.len(), 3);
    // Other principals and other pools have their own allowance.
    q.submit("bob", req("10.6.1.1", "q"), None, None)
        .await
        .unwrap();
    q.submit(
        "alice",
        NewTask::new(ScanType::Untrusted, "dmz", "10.6.2.1", "q"),
        None,
        None,
    )
    .await
    .unwrap();
    // Once one of alice's tasks starts, she may queue another.
    let pools = [pool("nessus", &[("s1", 1)])];
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.principal, "alice");
    q.submit("alice", req("10.6.0.9", "q"), None, Some("k9"))
        .await
        .unwrap();
    // Concurrent submits cannot overshoot it.
    let q2 = h.with_config(QueueConfig::default().max_queued_per_principal(5));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let q2 = q2.clone();
        set.spawn(async move {
            q2.submit("carol", req(&format!("10.6.3.{i}"), "q"), None, None)
                .await
        });
    }
    let mut ok = 0;
    while let Some(r) = set.join_next().await {
        match r.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::QuotaExceeded { limit: 5, .. }) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(ok, 5);
}

pub(crate) async fn breaker_open_instance_is_skipped(h: &Harness) {
    let q = &h.queue;
    let pinned = q
        .submit(
            "p",
            req("10.7.0.1", "pinned").scanner_instance("s1"),
            None,
            None,
        )
        .await
        .unwrap();
    for i in 0..3 {
        q.submit("p", req(&format!("10.7.1.{i}"), "free"), None, None)
            .await
            .unwrap();
    }
    let caps = |s1_up: bool, s2_up: bool| {
        vec![(
            "nessus".to_owned(),
            vec![
                InstanceCapacity::new("s1", 5).with_available(s1_up),
                InstanceCapacity::new("s2", 5).with_available(s2_up),
            ],
        )]
    };
    // s1's breaker is open: unpinned tasks go to s2, the pinned one waits, queued.
    for _ in 0..3 {
        let c = q.claim("w", &caps(false, true)).await.unwrap().unwrap();
        assert_eq!(c.task.instance.as_deref(), Some("s2"));
        assert_ne!(c.task.task_id, pinned.task.task_id);
    }
    assert!(q.claim("w", &caps(false, true)).await.unwrap().is_none());
    let v = q.get(&pinned.task.task_id).await.unwrap().unwrap();
    assert_eq!(v.task.status, TaskStatus::Queued, "not failed");
    assert!(q.claim("w", &caps(false, false)).await.unwrap().is_none());
    // Least loaded among available ones: s1 (0 of 5) beats s2 (3 of 5) once it is back.
    let c = q.claim("w", &caps(true, true)).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, pinned.task.task_id);
    assert_eq!(c.task.instance.as_deref(), Some("s1"));
    let free = q
        .submit("p", req("10.7.2.1", "x"), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &caps(true, true)).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, free.task.task_id);
    assert_eq!(c.task.instance.as_deref(), Some("s1"), "1/5 beats 3/5");
}

/// A SQLite file written before principals were indexed: the principal column, its
/// indexes, the per-principal counts and the migration marker are absent. Opening it
/// migrates in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_from_before_principals_migrates() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let mut ids = Vec::new();
    {
        let q = nessus_queue::Queue::sqlite(&path, QueueConfig::default()).unwrap();
        for (i, p) in ["alice", "alice", "bob", "alice", "bob"].iter().enumerate() {
            ids.push(
                q.submit(p, req(&format!("10.8.0.{i}"), "old"), None, None)
                    .await
                    .unwrap()
                    .task
                    .task_id,
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }
    // Wait for the writer thread to let go of the file, then take it back to the
    // old schema.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "DROP INDEX tasks_principal_order; DROP INDEX tasks_principal_pool_order;
             DROP INDEX tasks_principal_status_order; DROP INDEX tasks_principal_pool_status_order;
             DROP INDEX tasks_principal_queue; DROP INDEX tasks_principal_slot;
             ALTER TABLE tasks DROP COLUMN principal;
             DROP TABLE principal_queued;
             DELETE FROM counters WHERE name = 'principal_v1';",
        )
        .unwrap();
        let cols: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name='principal'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(cols, 0, "old schema has no principal column");
    }
    let backend = nessus_queue::SqliteBackend::open(&path).unwrap();
    let q = nessus_queue::Queue::new(
        Arc::new(backend),
        QueueConfig::default().max_queued_per_principal(3),
    );
    let bob = q.list(ListTasks::new(1).principal("bob")).await.unwrap();
    assert_eq!(bob.tasks[0].task_id, ids[4]);
    let next = q
        .list(
            ListTasks::new(1)
                .principal("bob")
                .cursor(bob.next_cursor.unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(next.tasks[0].task_id, ids[2]);
    assert!(next.next_cursor.is_none());
    // Fair positions from the backfilled counts: alice 0, bob 2, alice 1, bob 4, alice 3.
    let pos = q.get(&ids[2]).await.unwrap().unwrap().queue_position;
    assert_eq!(pos, Some(2));
    let s = q.queue_status_for("nessus", Some("bob")).await.unwrap();
    let c = s.principal.unwrap();
    assert_eq!((c.queued, c.others_queued), (2, 3));
    // The backfilled count drives the quota: alice has 3 of 3.
    let over = q.submit("alice", req("10.8.1.1", "new"), None, None).await;
    assert!(matches!(over, Err(Error::QuotaExceeded { .. })), "{over:?}");
    let pools = [pool("nessus", &[("s1", 10)])];
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, ids[0]);
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, ids[2]);
    // Opening again (already migrated) changes nothing.
    drop(q);
    let again = nessus_queue::SqliteBackend::open(&path).unwrap();
    let q = nessus_queue::Queue::new(Arc::new(again), QueueConfig::default());
    assert_eq!(
        q.list(ListTasks::new(10).principal("alice"))
            .await
            .unwrap()
            .tasks
            .len(),
        3
    );
}

/// Redis data written before the per-principal indexes: connecting builds them from
/// the stored tasks, so old queued tasks are still claimed, listed and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_data_from_before_principals_is_backfilled() {
    use std::sync::Arc;
    let server = nessus_queue::testkit::RedisServer::start().expect("redis-server");
    let backend = nessus_queue::RedisBackend::connect(server.url())
        .await
        .unwrap();
    let q = nessus_queue::Queue::new(Arc::new(backend), QueueConfig::default());
    let mut ids = Vec::new();
    for (i, p) in ["alice", "alice", "bob", "alice", "bob"].iter().enumerate() {
        ids.push(
            q.submit(p, req(&format!("10.9.0.{i}"), "old"), None, None)
                .await
                .unwrap()
                .task
                .task_id,
        );
    }
    let pools = [pool("nessus", &[("s1", 10)])];
    let running = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(running.task.task_id, ids[0]);
    // Take the data back to the old layout: no per-principal keys, no marker.
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg("nq:{nessus}:p:*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    keys.push("nq:{nessus}:principals".to_owned());
    keys.push("nq:{nessus}:pidx-v1".to_owned());
    redis::cmd("DEL")
        .arg(&keys)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    let backend = nessus_queue::RedisBackend::connect(server.url())
        .await
        .unwrap();
    let q = nessus_queue::Queue::new(Arc::new(backend), QueueConfig::default());
    let bob = q.list(ListTasks::new(10).principal("bob")).await.unwrap();
    let got: Vec<_> = bob.tasks.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(got, vec![ids[4].clone(), ids[2].clone()]);
    let s = q.queue_status_for("nessus", Some("alice")).await.unwrap();
    let counts = s.principal.unwrap();
    assert_eq!(
        (counts.queued, counts.running, counts.others_queued),
        (2, 1, 2)
    );
    // alice has one running, so bob's oldest goes next.
    assert_eq!(
        q.get(&ids[2]).await.unwrap().unwrap().queue_position,
        Some(1)
    );
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    assert_eq!(c.task.task_id, ids[2]);
}

/// Cursors are order keys (`{13-digit ms}:{id}`); anything else is refused as an invalid
/// `cursor` with the same advice on every listing (tasks, target-filtered tasks, DLQ,
/// audit), before a backend compares it, instead of a silently wrong page.
pub(crate) async fn garbage_cursors_are_refused_on_every_listing(h: &Harness) {
    let q = &h.queue;
    for i in 0..3 {
        q.submit("p", req(&format!("10.0.0.{i}"), "n"), None, None)
            .await
            .unwrap();
        q.audit(AuditEvent::builder(AuditAction::Submit, "p").build())
            .await
            .unwrap();
    }
    let page = q.list(ListTasks::new(1)).await.unwrap();
    let good = page.next_cursor.clone().expect("a second page");
    let audit_good = q
        .audit_list(AuditQuery::new(1))
        .await
        .unwrap()
        .next_cursor
        .expect("a second audit page");
    let long_id = "a".repeat(nessus_queue::limits::CURSOR_MAX);
    let garbage: &[&str] = &[
        "",
        "garbage",
        "~",
        "zzzz",
        ":",
        "9999999999999",
        "9999999999999:",
        "999999999999:ness_un_x",
        "99999999999999:ness_un_x",
        "9999999999x99:ness_un_x",
        "9999999999999:NESS_UN_X",
        "9999999999999:ness un",
        "9999999999999:../../etc/passwd",
        "9999999999999:ness_un_x\0",
        "0000000000000:ness_un_x' OR '1'='1",
        &format!("9999999999999:{long_id}"),
    ];
    for c in garbage {
        for (what, res) in [
            ("list", q.list(ListTasks::new(5).cursor(*c)).await.err()),
            (
                "list by target",
                q.list(ListTasks::new(5).target("10.0.0.1").cursor(*c))
                    .await
                    .err(),
            ),
            (
                "dlq",
                q.dlq_list(None, 5, Some((*c).to_owned())).await.err(),
            ),
        ] {
            match res {
                Some(
                    e @ Error::Invalid {
                        field: "cursor", ..
                    },
                ) => {
                    assert_eq!(e.code(), "invalid_argument");
                    assert!(
                        e.to_string()
                            .contains("pass next_cursor exactly as returned, or omit it"),
                        "{e}"
                    );
                }
                other => panic!("{what} with cursor {c:?}: {other:?}"),
            }
        }
        let audit = q.audit_list(AuditQuery::new(5).cursor(*c)).await;
        assert!(
            matches!(
                audit,
                Err(Error::Invalid {
                    field: "cursor",
                    ..
                })
            ),
            "audit with cursor {c:?}: {audit:?}"
        );
    }
    // What the server issued still pages, on both listings.
    let second = q.list(ListTasks::new(5).cursor(good)).await.unwrap();
    assert_eq!(second.tasks.len(), 2);
    assert!(
        q.audit_list(AuditQuery::new(5).cursor(audit_good))
            .await
            .is_ok()
    );
    // A well-formed key for a task that does not exist is a position, not an error.
    let far = q
        .list(ListTasks::new(5).cursor("0000000000001:ness_un_00000000_000000_0"))
        .await
        .unwrap();
    assert!(far.tasks.is_empty());
}

/// Every transition out of (and into) `pending_approval`, on this backend: approve →
/// queued (then claimable), reject / owner cancel / expiry → cancelled; a pending task
/// is never claimed, never in the queue's counts or positions, but is listed and
/// counted as pending; a decided task cannot be decided again; two admins racing on
/// one task: exactly one wins.
pub(crate) async fn approval_transitions(h: &Harness) {
    use nessus_queue::{ApprovalHold, ReviewDecision};
    let q = &h.queue;
    let hold = |secs: i64| ApprovalHold {
        reason: "targets outside auto_approve".to_owned(),
        expires_after: SignedDuration::from_secs(secs),
    };
    let nessus = [pool("nessus", &[("s1", 5)])];
    enum Act {
        Approve,
        Reject,
        OwnerCancel,
        Expire,
    }
    // (action, status after, error_code after, review decision, claimable after)
    let cases = [
        (
            Act::Approve,
            TaskStatus::Queued,
            None,
            Some(ReviewDecision::Approved),
            true,
        ),
        (
            Act::Reject,
            TaskStatus::Cancelled,
            Some("approval_rejected"),
            Some(ReviewDecision::Rejected),
            false,
        ),
        (
            Act::OwnerCancel,
            TaskStatus::Cancelled,
            Some("cancelled"),
            None,
            false,
        ),
        (
            Act::Expire,
            TaskStatus::Cancelled,
            Some("approval_expired"),
            Some(ReviewDecision::Expired),
            false,
        ),
    ];
    for (i, (act, want, code, decision, claimable)) in cases.into_iter().enumerate() {
        let s = q
            .submit_held(
                "alice",
                req("10.9.0.1", &format!("held-{i}")),
                None,
                None,
                None,
                Some(hold(3600)),
            )
            .await
            .unwrap();
        let id = s.task.task_id.clone();
        assert_eq!(s.task.status, TaskStatus::PendingApproval);
        assert_eq!(
            s.task.approval_reason.as_deref(),
            Some("targets outside auto_approve")
        );
        assert!(s.task.approval_expires_at.is_some());
        assert_eq!(s.queue_position, None, "a pending task has no position");
        let st = q.queue_status("nessus").await.unwrap();
        assert_eq!((st.queue_depth, st.pending_approval), (0, 1), "case {i}");
        assert!(
            q.claim("w", &nessus).await.unwrap().is_none(),
            "a worker never claims a pending task"
        );
        let listed = q
            .list(ListTasks::new(10).status(TaskStatus::PendingApproval))
            .await
            .unwrap();
        assert_eq!(listed.tasks.len(), 1);
        let mine = q
            .pending_approvals(Some("nessus"), Some("alice"), 10, None)
            .await
            .unwrap();
        assert_eq!(mine.tasks[0].task_id, id);
        assert!(
            q.pending_approvals(None, Some("bob"), 10, None)
                .await
                .unwrap()
                .tasks
                .is_empty()
        );
        match act {
            Act::Approve => {
                q.approve(&id, "boss", "ok").await.unwrap();
            }
            Act::Reject => {
                q.reject(&id, "boss", "no").await.unwrap();
            }
            Act::OwnerCancel => {
                assert_eq!(q.cancel(&id).await.unwrap(), CancelOutcome::Cancelled);
            }
            Act::Expire => {
                let later = jiff::Timestamp::now() + SignedDuration::from_hours(2);
                // Not yet: nothing changes.
                assert!(
                    q.expire_approvals(jiff::Timestamp::now(), false)
                        .await
                        .unwrap()
                        .is_empty()
                );
                // Dry run lists, changes nothing.
                let dry = q.expire_approvals(later, true).await.unwrap();
                assert_eq!(dry.len(), 1);
                assert_eq!(
                    q.get(&id).await.unwrap().unwrap().task.status,
                    TaskStatus::PendingApproval
                );
                let gone = q.expire_approvals(later, false).await.unwrap();
                assert_eq!(gone.len(), 1);
            }
        }
        let t = q.get(&id).await.unwrap().unwrap();
        assert_eq!(t.task.status, want, "case {i}");
        assert_eq!(t.task.error_code.as_deref(), code, "case {i}");
        assert_eq!(t.task.review.as_ref().map(|r| r.decision), decision);
        assert_eq!(
            t.task.approval_reason.as_deref(),
            Some("targets outside auto_approve"),
            "the reason stays visible after the decision"
        );
        let st = q.queue_status("nessus").await.unwrap();
        assert_eq!(st.pending_approval, 0, "case {i}");
        assert_eq!(st.queue_depth, u64::from(claimable), "case {i}");
        if claimable {
            assert_eq!(t.queue_position, Some(1));
            let c = q
                .claim("w", &nessus)
                .await
                .unwrap()
                .expect("approved is claimable");
            assert_eq!(c.task.task_id, id);
            q.complete(&id, c.token, Completion::default())
                .await
                .unwrap();
        } else {
            assert!(q.claim("w", &nessus).await.unwrap().is_none());
        }
        // Decided: no second decision, whichever it would be.
        assert!(matches!(
            q.approve(&id, "boss", "again").await,
            Err(Error::InvalidTransition { .. })
        ));
        assert!(matches!(
            q.reject(&id, "boss", "again").await,
            Err(Error::InvalidTransition { .. })
        ));
    }

    // Two admins racing to approve one task: one wins, the other sees the decision.
    let s = q
        .submit_held(
            "alice",
            req("10.9.0.2", "race"),
            None,
            None,
            None,
            Some(hold(3600)),
        )
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        q.approve(&s.task.task_id, "boss1", "a"),
        q.reject(&s.task.task_id, "boss2", "b")
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");

    // An idempotent replay of a held submission answers the pending task, and
    // housekeeping expires pending approvals (reporting them).
    let first = q
        .submit_held(
            "carol",
            req("10.9.0.3", "k"),
            None,
            Some("hk"),
            None,
            Some(hold(0)),
        )
        .await
        .unwrap();
    let again = q
        .submit_held(
            "carol",
            req("10.9.0.3", "k"),
            None,
            Some("hk"),
            None,
            Some(hold(0)),
        )
        .await
        .unwrap();
    assert!(again.idempotent);
    assert_eq!(again.task.task_id, first.task.task_id);
    assert_eq!(again.task.status, TaskStatus::PendingApproval);
    let rep = q.housekeep(false, |_| {}).await.unwrap();
    assert_eq!(rep.approvals_expired, vec![first.task.task_id.clone()]);
    assert_eq!(
        q.get(&first.task.task_id)
            .await
            .unwrap()
            .unwrap()
            .task
            .status,
        TaskStatus::Cancelled
    );
}

/// The service decides at submit (the pool's `approval` rules), records the reason,
/// lets only an admin review, re-checks the policy at approval, and audits each step.
pub(crate) async fn approval_rules_at_submit_and_review(h: &Harness) {
    use nessus_queue::service::{Decision, Principal, ScanCredentials, ScanRequest, Service};
    let yaml = "server:\n  default_pool: nessus\nprincipals:\n  boss:\n    admin: true\n\
        credentials:\n  lab:\n    username: scan\n    password: pw\n\
        nessus:\n  target_policy:\n    allow: [192.0.2.0/24]\n  approval:\n    \
        auto_approve: [192.0.2.0/28]\n    authenticated: true\n    max_hosts: 4\n    \
        expires_after: 2h\n  instances: []\n";
    let config: nessus_core::Config = yaml.parse().expect("config");
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::new(
        config,
        h.queue.clone(),
        nessus_queue::ResultsDir::new(dir.path()),
    );
    let alice = Principal::new("alice");
    let boss = Principal::new("boss");
    // (targets, authenticated, held, reason contains)
    let cases: [(&str, bool, bool, &str); 5] = [
        ("192.0.2.1", false, false, ""),
        ("192.0.2.1-192.0.2.4", false, false, ""),
        (
            "192.0.2.200",
            false,
            true,
            "outside the pool's auto_approve list: 192.0.2.200",
        ),
        ("192.0.2.0/29", false, true, "8 hosts is more than the 4"),
        ("192.0.2.2", true, true, "authenticated scans"),
    ];
    let mut held = Vec::new();
    for (targets, auth, want_held, why) in cases {
        let mut r = ScanRequest::untrusted(targets, format!("s {targets}"));
        if auth {
            r = r.authenticated(
                ScanType::Authenticated,
                ScanCredentials::Profile("lab".to_owned()),
            );
        }
        let s = svc.submit(&alice, r).await.unwrap();
        let t = &s.submitted.task;
        assert_eq!(
            t.status == TaskStatus::PendingApproval,
            want_held,
            "{targets} auth={auth}: {:?}",
            t.approval_reason
        );
        if want_held {
            let reason = t.approval_reason.as_deref().unwrap();
            assert!(reason.contains(why), "{targets}: {reason}");
            let exp = t.approval_expires_at.unwrap();
            assert_eq!(
                exp.duration_since(t.created_at),
                SignedDuration::from_hours(2)
            );
            assert_eq!(s.queue_position, 0);
            held.push(t.task_id.clone());
        } else {
            assert!(t.approval_reason.is_none());
        }
    }
    // The submitter sees why it waits.
    let view = svc.task(&alice, &held[0]).await.unwrap();
    assert!(view.task.approval_reason.is_some());
    // Only an admin lists and reviews.
    assert!(matches!(
        svc.approvals(&alice, None, 10, None).await,
        Err(Error::Forbidden { .. })
    ));
    assert!(matches!(
        svc.review(&alice, &held[0], Decision::Approve, "mine")
            .await,
        Err(Error::Forbidden { .. })
    ));
    let listed = svc
        .approvals(&boss, Some("nessus"), 10, None)
        .await
        .unwrap();
    assert_eq!(listed.tasks.len(), 3);
    assert!(matches!(
        svc.review(&boss, &held[0], Decision::Approve, "  ").await,
        Err(Error::Invalid {
            field: "reason",
            ..
        })
    ));
    let t = svc
        .review(&boss, &held[0], Decision::Approve, "change ticket 42")
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Queued);
    let t = svc
        .review(&boss, &held[1], Decision::Reject, "too wide")
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    // A queued task is not reviewable.
    assert!(matches!(
        svc.review(&boss, &held[0], Decision::Reject, "late").await,
        Err(Error::InvalidTransition { .. })
    ));
    // Approval re-checks the policy in force now: a reload that narrowed it refuses.
    svc.reload(
        yaml.replace("allow: [192.0.2.0/24]", "allow: [192.0.2.128/25]")
            .replace(
                "auto_approve: [192.0.2.0/28]",
                "auto_approve: [192.0.2.128/30]",
            )
            .parse()
            .unwrap(),
    );
    assert!(matches!(
        svc.review(&boss, &held[2], Decision::Approve, "ok").await,
        Err(Error::TargetsNotAllowed { .. })
    ));
    let view = svc.task(&alice, &held[2]).await.unwrap();
    assert_eq!(view.task.status, TaskStatus::PendingApproval);
    // Audited: the submit says it waits, and each decision is an event.
    let audit = |a| h.queue.audit_list(AuditQuery::new(50).action(a));
    let submits = audit(AuditAction::Submit).await.unwrap();
    assert!(submits.events.iter().any(|e| {
        e.detail
            .as_deref()
            .is_some_and(|d| d.starts_with("pending approval:"))
    }));
    let approve = audit(AuditAction::Approve).await.unwrap();
    assert_eq!(approve.events.len(), 1);
    assert_eq!(approve.events[0].principal, "boss");
    assert_eq!(
        approve.events[0].detail.as_deref(),
        Some("change ticket 42")
    );
    assert_eq!(audit(AuditAction::Reject).await.unwrap().events.len(), 1);
}

/// Two schedulers (two nodes: separate connections to one store) over a fake clock:
/// every slot fires exactly once, a crash between submit and claim neither loses nor
/// doubles its slot, downtime across many slots gives one catch-up run, approvals
/// apply to scheduled runs, pause stops firing, delete removes.
pub(crate) async fn schedules_fire_each_slot_once_across_nodes(h: &Harness) {
    use nessus_queue::service::{Principal, ScanRequest, ScheduleSpec, Service};
    let yaml = "server:\n  default_pool: nessus\nnessus:\n  target_policy:\n    allow: [10.0.0.0/8]\n  \
        approval:\n    auto_approve: [10.0.0.0/16]\n  instances: []\n";
    let config: nessus_core::Config = yaml.parse().expect("config");
    let dir = tempfile::tempdir().unwrap();
    let node_a = Service::new(
        config.clone(),
        h.queue.clone(),
        nessus_queue::ResultsDir::new(dir.path()),
    );
    let node_b = Service::new(
        config,
        h.second_node().await,
        nessus_queue::ResultsDir::new(dir.path()),
    );
    let alice = Principal::new("alice");
    let every_minute = |targets: &str, name: &str| {
        ScheduleSpec::new(
            ScanRequest::untrusted(targets, name),
            "* * * * *",
            "Europe/Berlin",
        )
    };
    // Created on the real clock: two creations must not straddle a minute boundary
    // (their next slots would differ), so start clear of one.
    let second = jiff::Timestamp::now().as_second().rem_euclid(60);
    if second >= 55 {
        tokio::time::sleep(std::time::Duration::from_secs((61 - second) as u64)).await;
    }
    let s = node_a
        .create_schedule(&alice, every_minute("10.0.0.1", "nightly"))
        .await
        .unwrap();
    let held = node_b
        .create_schedule(&alice, every_minute("10.1.0.1", "held"))
        .await
        .unwrap();
    assert_eq!(s.next_slot, held.next_slot);
    let t0 = s.next_slot;
    let minute = |k: i64| t0 + SignedDuration::from_mins(k) + SignedDuration::from_secs(1);
    // Both nodes tick at the same fake instants; (tick, slots that must fire).
    let ticks: [(i64, &[i64]); 5] = [(-1, &[]), (0, &[0]), (0, &[]), (1, &[1]), (2, &[2])];
    let mut fired_slots: Vec<(String, jiff::Timestamp, String)> = Vec::new();
    for (k, want) in ticks {
        let now = minute(k) - SignedDuration::from_secs(if k < 0 { 2 } else { 0 });
        let (a, b) = tokio::join!(node_a.run_due_schedules(now), node_b.run_due_schedules(now));
        let all: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
        let claimed: Vec<_> = all.iter().filter(|f| f.claimed).collect();
        assert_eq!(claimed.len(), want.len() * 2, "tick {k}: {all:?}");
        for f in &all {
            // Whoever raced, both nodes name the same task for a slot.
            let task = f.task_id.clone().expect("a task");
            if let Some((_, _, t)) = fired_slots
                .iter()
                .find(|(id, slot, _)| *id == f.schedule_id && *slot == f.slot)
            {
                assert_eq!(*t, task, "one task per slot");
            } else {
                fired_slots.push((f.schedule_id.clone(), f.slot, task));
            }
        }
        for w in want {
            assert!(
                claimed.iter().any(|f| f.schedule_id == s.schedule_id
                    && f.slot == t0 + SignedDuration::from_mins(*w)),
                "slot {w} at tick {k}"
            );
        }
    }
    // A node died after its submit, before its claim: the slot stays due, and the
    // next tick's submit is an idempotent replay of the same task.
    let slot3 = t0 + SignedDuration::from_mins(3);
    let early = node_a
        .submit(
            &alice,
            ScanRequest::untrusted("10.0.0.1", "nightly")
                .pool(Some("nessus".to_owned()))
                .idempotency_key(Some(format!(
                    "schedule:{}:{}",
                    s.schedule_id,
                    slot3.as_millisecond()
                ))),
        )
        .await
        .unwrap();
    let f = node_b.run_due_schedules(minute(3)).await.unwrap();
    let mine = f.iter().find(|f| f.schedule_id == s.schedule_id).unwrap();
    assert!(mine.claimed);
    assert_eq!(
        mine.task_id.as_deref().ok(),
        Some(early.submitted.task.task_id.as_str())
    );
    // Downtime: nobody ticks for slots 4..=10; on return one catch-up run each.
    let back = minute(10) + SignedDuration::from_secs(20);
    let (a, b) = tokio::join!(
        node_a.run_due_schedules(back),
        node_b.run_due_schedules(back)
    );
    let all: Vec<_> = a.unwrap().into_iter().chain(b.unwrap()).collect();
    assert_eq!(all.iter().filter(|f| f.claimed).count(), 2, "{all:?}");
    assert!(node_a.run_due_schedules(back).await.unwrap().is_empty());
    let now_s = node_a.schedule(&alice, &s.schedule_id).await.unwrap();
    assert_eq!(now_s.next_slot, t0 + SignedDuration::from_mins(11));
    assert_eq!(
        now_s.last_fired_slot,
        Some(t0 + SignedDuration::from_mins(4))
    );
    // Tasks: slots 0, 1, 2, 3 and one catch-up, per schedule; approvals applied.
    let tasks = h
        .queue
        .list(ListTasks::new(100).principal("alice"))
        .await
        .unwrap()
        .tasks;
    for (name, status) in [
        ("nightly", TaskStatus::Queued),
        ("held", TaskStatus::PendingApproval),
    ] {
        let runs: Vec<_> = tasks.iter().filter(|t| t.name == name).collect();
        assert_eq!(runs.len(), 5, "{name}: {runs:?}");
        assert!(runs.iter().all(|t| t.status == status), "{name}");
    }
    // Pause stops firing; resume picks the first slot after now (no burst).
    node_b
        .pause_schedule(&alice, &held.schedule_id)
        .await
        .unwrap();
    let later = minute(20);
    let f = node_a.run_due_schedules(later).await.unwrap();
    assert_eq!(
        f.iter().map(|f| f.schedule_id.as_str()).collect::<Vec<_>>(),
        vec![s.schedule_id.as_str()]
    );
    // Another principal sees nothing of alice's schedules.
    let bob = Principal::new("bob");
    assert!(node_a.list_schedules(&bob).await.unwrap().is_empty());
    assert!(matches!(
        node_a.pause_schedule(&bob, &s.schedule_id).await,
        Err(Error::ScheduleNotFound { .. })
    ));
    let r = node_b
        .resume_schedule(&alice, &held.schedule_id)
        .await
        .unwrap();
    assert!(!r.paused && r.next_slot > jiff::Timestamp::now());
    // Delete removes: not listed, not found, never fires again.
    node_a
        .delete_schedule(&alice, &s.schedule_id)
        .await
        .unwrap();
    node_a
        .delete_schedule(&alice, &held.schedule_id)
        .await
        .unwrap();
    assert!(node_b.list_schedules(&alice).await.unwrap().is_empty());
    assert!(matches!(
        node_b.schedule(&alice, &s.schedule_id).await,
        Err(Error::ScheduleNotFound { .. })
    ));
    assert!(
        node_b
            .run_due_schedules(later + SignedDuration::from_hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    // Audited: creation, every fire, pause, resume, delete.
    let count = |a| async move {
        h.queue
            .audit_list(AuditQuery::new(200).action(a))
            .await
            .unwrap()
            .events
            .len()
    };
    assert_eq!(count(AuditAction::ScheduleCreate).await, 2);
    assert_eq!(count(AuditAction::ScheduleFire).await, 11);
    assert_eq!(count(AuditAction::SchedulePause).await, 1);
    assert_eq!(count(AuditAction::ScheduleDelete).await, 2);
    // Bad specs are refused with the field named.
    for (cron, tz, field) in [
        ("* * *", "UTC", "cron"),
        ("* * * * *", "Nowhere/Land", "timezone"),
    ] {
        let e = node_a
            .create_schedule(
                &alice,
                ScheduleSpec::new(ScanRequest::untrusted("10.0.0.1", "x"), cron, tz),
            )
            .await;
        assert!(
            matches!(e, Err(Error::Invalid { field: f, .. }) if f == field),
            "{e:?}"
        );
    }
}
