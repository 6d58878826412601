//! Webhooks against a real HTTP receiver on 127.0.0.1: signatures verified, retry
//! after a 500, a delivery loop killed mid-delivery loses nothing.
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use jiff::SignedDuration;
use nessus_queue::hooks::{DeliveryState, HookEvent, HookSettings, Webhook, Webhooks, signature};
use nessus_queue::{Completion, Queue, TaskStatus};
use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::conformance::{pool, req};
use crate::support::Harness;

const SECRET: &str = "whsec-test-0123456789";

/// What the receiver saw: (delivery id, body) of requests whose signature verified.
#[derive(Default)]
struct Seen {
    verified: Mutex<Vec<(String, serde_json::Value)>>,
    bad_signatures: AtomicUsize,
    requests: AtomicUsize,
}

/// Answers by request number: `plan[n]` = (status, stall). Past the plan: 200.
async fn receiver(plan: Vec<(u16, bool)>) -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let plan = Arc::new(plan);
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let s = s.clone();
            let plan = plan.clone();
            async move {
                let n = s.requests.fetch_add(1, Ordering::SeqCst);
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                let ts = h("x-nessus-timestamp");
                let ok = !ts.is_empty()
                    && h("x-nessus-signature") == signature(SECRET.as_bytes(), &ts, &body);
                if !ok {
                    s.bad_signatures.fetch_add(1, Ordering::SeqCst);
                    return StatusCode::UNAUTHORIZED;
                }
                let (code, stall) = plan.get(n).copied().unwrap_or((200, false));
                if stall {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                }
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                if code == 200 {
                    s.verified.lock().await.push((h("x-nessus-delivery"), v));
                }
                StatusCode::from_u16(code).unwrap()
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, seen)
}

fn hooked(h: &Harness, url: &str) -> Queue {
    let hook = Webhook::new(
        url,
        SecretString::from(SECRET),
        vec![HookEvent::TaskCompleted, HookEvent::TaskFailed],
        Some("nessus".into()),
        None,
    )
    .unwrap();
    let mut w = Webhooks::new(vec![hook]);
    w.settings = HookSettings {
        lease: SignedDuration::from_secs(2),
        base_backoff: SignedDuration::from_millis(100),
        max_backoff: SignedDuration::from_millis(400),
        max_attempts: 5,
        timeout: Duration::from_secs(30),
        poll: Duration::from_millis(50),
    };
    h.queue.clone().with_webhooks(w)
}

async fn complete_one(q: &Queue, name: &str) -> String {
    let pools = [pool("nessus", &[("s1", 4)])];
    let s = q
        .submit("p", req("10.0.0.1", name), None, None)
        .await
        .unwrap();
    let c = q.claim("w", &pools).await.unwrap().unwrap();
    let t = q
        .complete(&c.task.task_id, c.token, Completion::default())
        .await
        .unwrap();
    assert_eq!(t.status, TaskStatus::Completed);
    s.task.task_id
}

async fn wait_for(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 20 s");
}

pub(crate) async fn webhook_signed_and_retried_after_500(h: &Harness) {
    let (url, seen) = receiver(vec![(500, false)]).await;
    let q = hooked(h, &url);
    let task = complete_one(&q, "hook-retry").await;
    let ds = q.list_deliveries(10).await.unwrap();
    assert_eq!(ds.len(), 1, "one event for one hook");
    assert_eq!(ds[0].state, DeliveryState::Pending);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let q2 = q.clone();
    let lp = tokio::spawn(async move { q2.run_deliveries(rx).await });
    wait_for(async || q.list_deliveries(10).await.unwrap()[0].state == DeliveryState::Delivered)
        .await;
    tx.send(true).unwrap();
    lp.await.unwrap();
    let d = &q.list_deliveries(10).await.unwrap()[0];
    assert_eq!(d.attempts, 2, "a 500, then a 200");
    assert_eq!(d.last_status, Some(200));
    assert_eq!(seen.bad_signatures.load(Ordering::SeqCst), 0);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    let v = seen.verified.lock().await.clone();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].0, d.id);
    assert_eq!(v[0].1["id"], d.id.as_str());
    assert_eq!(v[0].1["event"], "task_completed");
    assert_eq!(v[0].1["task_id"], task.as_str());
    assert_eq!(v[0].1["pool"], "nessus");
    assert_eq!(v[0].1["principal"], "p");
    assert_eq!(v[0].1["status"], "completed");
    // Delivered is final: more passes send nothing.
    let client = reqwest::Client::new();
    assert_eq!(q.deliver_due(&client).await.unwrap(), 0);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    // A wrong secret does not verify at the receiver.
    assert_ne!(
        signature(b"other", "1", &d.body()),
        signature(SECRET.as_bytes(), "1", &d.body())
    );
}

pub(crate) async fn webhook_sender_killed_mid_delivery_loses_nothing(h: &Harness) {
    // The first request stalls; the loop sending it is killed; a new loop (another
    // node) takes the delivery over when the lease runs out.
    let (url, seen) = receiver(vec![(200, true)]).await;
    let q = hooked(h, &url);
    complete_one(&q, "hook-kill").await;
    let (_tx1, rx1) = tokio::sync::watch::channel(false);
    let q1 = q.clone();
    let first = tokio::spawn(async move { q1.run_deliveries(rx1).await });
    wait_for(async || seen.requests.load(Ordering::SeqCst) >= 1).await;
    first.abort();
    let _ = first.await;
    assert_eq!(
        q.list_deliveries(10).await.unwrap()[0].state,
        DeliveryState::Pending,
        "the killed attempt is not counted as delivered"
    );
    // A second node right away: the lease keeps it off until it expires.
    let (tx2, rx2) = tokio::sync::watch::channel(false);
    let q2 = q.clone();
    let second = tokio::spawn(async move { q2.run_deliveries(rx2).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        seen.requests.load(Ordering::SeqCst),
        1,
        "leased: not sent twice at once"
    );
    wait_for(async || q.list_deliveries(10).await.unwrap()[0].state == DeliveryState::Delivered)
        .await;
    tx2.send(true).unwrap();
    second.await.unwrap();
    let d = &q.list_deliveries(10).await.unwrap()[0];
    let v = seen.verified.lock().await.clone();
    assert_eq!(v.len(), 1, "delivered once after the takeover");
    assert_eq!(v[0].0, d.id, "same delivery id on the retry");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    assert_eq!(seen.bad_signatures.load(Ordering::SeqCst), 0);
}

pub(crate) async fn webhook_urls_and_approval_event(h: &Harness) {
    // approval_needed is raised when a task is created pending_approval; a hook
    // filtered to another pool or principal gets nothing.
    let mk = |events, pool: Option<&str>, principal: Option<&str>| {
        Webhook::new(
            "https://hooks.example/x",
            SecretString::from(SECRET),
            events,
            pool.map(str::to_owned),
            principal.map(str::to_owned),
        )
        .unwrap()
    };
    let q = h.queue.clone().with_webhooks(Webhooks::new(vec![
        mk(vec![HookEvent::ApprovalNeeded], None, Some("alice")),
        mk(vec![HookEvent::ApprovalNeeded], Some("other"), None),
        mk(vec![HookEvent::TaskCompleted], None, None),
    ]));
    let s = q
        .submit_held(
            "alice",
            req("10.9.0.9", "held-hook"),
            None,
            None,
            None,
            Some(nessus_queue::ApprovalHold {
                reason: "targets outside auto_approve".to_owned(),
                expires_after: SignedDuration::from_secs(3600),
            }),
        )
        .await
        .unwrap();
    assert_eq!(s.task.status, TaskStatus::PendingApproval);
    let ds = q.list_deliveries(10).await.unwrap();
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(ds[0].event, HookEvent::ApprovalNeeded);
    assert_eq!(ds[0].task_id, s.task.task_id);
    assert_eq!(ds[0].status, "pending_approval");
    // Approving (pending_approval → queued) raises nothing.
    q.approve(&s.task.task_id, "boss", "ok").await.unwrap();
    assert_eq!(q.list_deliveries(10).await.unwrap().len(), 1);

    let s = || SecretString::from(SECRET);
    for bad in [
        "http://example.com/x",
        "ftp://127.0.0.1/",
        "http://10.0.0.1/",
    ] {
        assert!(
            Webhook::new(bad, s(), vec![HookEvent::TaskFailed], None, None).is_err(),
            "{bad}"
        );
    }
    for good in [
        "https://example.com/x",
        "http://127.0.0.1:9/x",
        "http://[::1]/x",
        "http://localhost/x",
    ] {
        Webhook::new(good, s(), vec![HookEvent::TaskFailed], None, None).unwrap();
    }
    let w = Webhook::new("https://h/x", s(), vec![HookEvent::TaskFailed], None, None).unwrap();
    assert!(!format!("{w:?}").contains(SECRET), "secret never in Debug");
    // RFC 4231 test case 2.
    assert_eq!(
        nessus_queue::hooks::hmac_sha256_hex(b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}
