//! Authentication: API keys, sessions with single-flight re-login, and the web-UI token.

use std::sync::Arc;

use nessus_core::{Credentials, Error, ScanSpec, Scanner};

use crate::support::{client_with, sim, sim_builder};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_session_causes_exactly_one_relogin_for_20_concurrent_calls() {
    let sim = sim().await;
    let c = client_with(&sim, Credentials::session("admin", "pw"));
    c.list_scans(None).await.unwrap();
    assert_eq!(sim.counters().logins, 1);
    assert_eq!(sim.expire_sessions(), 1);

    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = c.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                if i % 2 == 0 {
                    c.list_scans(None).await.map(drop)
                } else {
                    c.server_properties().await.map(drop)
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let counters = sim.counters();
    assert_eq!(
        counters.logins, 2,
        "one initial login plus exactly one re-login"
    );
    assert!(counters.unauthorized >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn session_expiring_while_20_calls_are_in_flight_causes_one_relogin() {
    let sim = sim().await;
    let c = client_with(&sim, Credentials::session("admin", "pw"));
    c.session().await.unwrap();
    // Requests wait 100 ms in the server before their token is checked; the sessions
    // expire while all twenty are inside.
    sim.update_faults(|f| f.latency_ms = 100);
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.list_scans(None).await.map(drop) })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(40)).await;
    assert_eq!(sim.expire_sessions(), 1);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let counters = sim.counters();
    assert_eq!(counters.logins, 2);
    assert_eq!(counters.unauthorized, 20);
}

#[tokio::test]
async fn idle_sessions_expire_and_logout_ends_the_session() {
    let sim = sim_builder()
        .session_idle_timeout(std::time::Duration::from_millis(50))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let c = client_with(&sim, Credentials::session("admin", "pw"));
    c.list_scans(None).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(80)).await;
    c.list_scans(None).await.unwrap();
    assert_eq!(sim.counters().logins, 2);
    c.logout().await.unwrap();
    c.list_scans(None).await.unwrap();
    assert_eq!(sim.counters().logins, 3);
}

#[tokio::test]
async fn api_keys_are_checked_when_required() {
    let sim = sim_builder()
        .require_api_keys("good-access", "good-secret")
        .require_login("admin", "right")
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let good = client_with(&sim, Credentials::api_keys("good-access", "good-secret"));
    good.list_scans(None).await.unwrap();
    let bad = client_with(&sim, Credentials::api_keys("good-access", "wrong"));
    match bad.list_scans(None).await.unwrap_err() {
        Error::Unauthorized { message, .. } => assert_eq!(message, "Invalid Credentials"),
        other => panic!("{other:?}"),
    }
    let wrong_pw = client_with(&sim, Credentials::session("admin", "wrong"));
    let err = wrong_pw.list_scans(None).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    // The error never shows the secret.
    assert!(!format!("{err:?}{err}").contains("wrong"));
}

#[tokio::test]
async fn scan_api_off_gives_a_capability_error_and_web_ui_mode_works() {
    let sim = sim_builder()
        .faults(nessus_core::sim::Faults {
            scan_api_disabled: true,
            ..Default::default()
        })
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let keys = client_with(&sim, Credentials::api_keys("a", "b"));
    assert_eq!(
        keys.server_properties().await.unwrap().scan_api(),
        Some(false)
    );
    let err = Scanner::create_scan(&keys, &ScanSpec::new("gated", ["192.0.2.1"]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ScanApiDisabled { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("the scan API is disabled on this Nessus license")
    );
    assert!(!err.is_retryable());

    // Session + the UI token from /nessus6.js passes the gate.
    let ui = client_with(&sim, Credentials::web_ui("admin", "pw"));
    ui.ensure_scan_control().await.unwrap();
    let id = Scanner::create_scan(&ui, &ScanSpec::new("via-ui", ["192.0.2.1"]))
        .await
        .unwrap();
    Scanner::launch(&ui, id).await.unwrap();
    // A rotated token (Nessus reinstalled) is refetched after the first 412.
    sim.set_ui_token("0A1B2C3D-0000-4000-8000-00000000ABCD");
    Scanner::stop(&ui, id).await.unwrap();
    assert_eq!(sim.counters().scans_stopped, 1);
    assert_eq!(
        sim.counters().gated,
        2,
        "one for the API-key create, one for the stale token"
    );
}
