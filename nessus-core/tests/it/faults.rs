//! Connection-level faults: the 412 connection-drop bug, dropped requests, refused
//! connections, failing and slow exports, latency, and the admin endpoint.

use std::time::{Duration, Instant};

use nessus_core::{
    Error, ExportFormat, ScanSpec, Scanner, TransportKind,
    sim::{Counters, Faults, GateMode},
};

use crate::support::{client, sim};

#[tokio::test]
async fn gate_412_variants() {
    let sim = sim().await;
    let c = client(&sim);
    let spec = ScanSpec::new("gate", ["192.0.2.1"]);
    // Warm the discovery caches so only the create itself meets the gate.
    c.template_uuid("advanced").await.unwrap();
    c.folder_id(None).await.unwrap();
    for (mode, check) in [
        (
            GateMode::Clean,
            (|e: &Error| matches!(e, Error::ScanApiDisabled { .. })) as fn(&Error) -> bool,
        ),
        (GateMode::DropAfterHeaders, |e| {
            matches!(e, Error::ScanApiDisabled { .. })
        }),
        (GateMode::DropNoResponse, |e| {
            matches!(e, Error::Transport { .. }) && e.outcome_unknown()
        }),
    ] {
        sim.set_faults(Faults {
            scan_api_disabled: true,
            gate_mode: mode,
            ..Default::default()
        });
        let err = Scanner::create_scan(&c, &spec).await.unwrap_err();
        assert!(check(&err), "{mode:?}: {err:?}");
    }
    assert_eq!(sim.counters().scans_created, 0);
}

#[tokio::test]
async fn dropped_create_is_verified_by_name_not_retried() {
    let sim = sim().await;
    let c = client(&sim);
    c.template_uuid("advanced").await.unwrap();
    c.folder_id(None).await.unwrap();
    sim.set_faults(Faults {
        drop_next: 1,
        only: Some("POST /scans".into()),
        ..Default::default()
    });
    let err = Scanner::create_scan(&c, &ScanSpec::new("mcp-drop", ["192.0.2.1"]))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Interrupted,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.outcome_unknown());
    let counters = sim.counters();
    assert_eq!((counters.scans_created, counters.dropped), (0, 1));
    // Reads are retried through the same kind of drop.
    sim.set_faults(Faults {
        drop_next: 2,
        only: Some("GET /scans".into()),
        ..Default::default()
    });
    assert!(c.list_scans(None).await.unwrap().scans.is_empty());
}

#[tokio::test]
async fn refused_connections_and_latency() {
    let sim = sim().await;
    let c = client(&sim);
    sim.update_faults(|f| f.drop_connections = true);
    let err = c.server_status().await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    sim.update_faults(|f| {
        f.drop_connections = false;
        f.latency_ms = 150;
        f.jitter_ms = 20;
    });
    let started = Instant::now();
    c.server_status().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn failing_and_slow_exports() {
    let sim = sim().await;
    let c = client(&sim);
    let id = Scanner::create_scan(&c, &ScanSpec::new("exp", ["192.0.2.1"]))
        .await
        .unwrap();
    Scanner::launch(&c, id).await.unwrap();
    while Scanner::status(&c, id).await.unwrap().status.is_active() {
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.nessus");
    sim.update_faults(|f| f.export_fail = true);
    let err = Scanner::export_to_file(&c, id, ExportFormat::Nessus, &path, u64::MAX)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExportFailed { .. }), "{err:?}");
    sim.update_faults(|f| {
        f.export_fail = false;
        f.export_delay_ms = Some(200);
        f.download_bytes_per_sec = 4 << 20;
    });
    let started = Instant::now();
    let n = Scanner::export_to_file(&c, id, ExportFormat::Nessus, &path, u64::MAX)
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(std::fs::metadata(&path).unwrap().len(), n);
}

#[tokio::test]
async fn admin_endpoint_sets_faults_and_reports_counters() {
    let sim = sim().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", sim.base_url());
    let faults: Faults = http
        .put(url("/_sim/faults"))
        .json(&serde_json::json!({"fail_next": 1, "fail_status": 500}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(faults.fail_next, 1);
    let r = http.get(url("/server/status")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 500);
    let counters: Counters = http
        .get(url("/_sim/counters"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counters.injected_errors, 1);
    assert_eq!(counters, sim.counters());
    let r = http
        .post(url("/_sim/expire-sessions"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Unauthenticated API calls get Nessus's own message.
    let body: serde_json::Value = http
        .get(url("/scans"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"], "You need to log in to perform this request");
}
