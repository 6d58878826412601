//! The `Scanner` trait end to end, as the worker drives it.

use std::{sync::Arc, time::Duration};

use nessus_core::{
    Error, EscalationMethod, ExportFormat, ScanSpec, ScanStatus, Scanner, SshCredentials,
};

use crate::support::{client, sim};

async fn wait_terminal(s: &dyn Scanner, id: nessus_core::ScanId) -> ScanStatus {
    let mut last = 0;
    loop {
        let st = s.status(id).await.unwrap();
        assert!(st.progress >= last, "progress went backwards");
        last = st.progress;
        if st.status.is_terminal() {
            return st.status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn create_launch_wait_export_delete() {
    let sim = sim().await;
    let scanner: Arc<dyn Scanner> = Arc::new(client(&sim));
    let canary = "canary-Zq8#pw";
    let creds = SshCredentials::password("root", canary).escalate(
        EscalationMethod::SuSudo,
        Some("admin".into()),
        Some("canary-escalation".into()),
    );
    let spec = ScanSpec::new("mcp-task-1", ["192.0.2.20", "192.0.2.21"])
        .template("basic")
        .description("worker test")
        .credentials(creds);
    let id = scanner.create_scan(&spec).await.unwrap();
    assert_eq!(sim.secret_seen_count(canary), 1);
    assert_eq!(sim.secret_seen_count("canary-escalation"), 1);
    assert_eq!(sim.counters().credentials_received, 1);
    assert_eq!(
        scanner.find_scan_by_name("mcp-task-1").await.unwrap(),
        Some(id)
    );
    assert!(!format!("{spec:?}").contains(canary));

    let state = scanner.status(id).await.unwrap();
    assert_eq!(
        (state.status, state.progress, state.uuid),
        (ScanStatus::Empty, 0, None)
    );
    let run = scanner.launch(id).await.unwrap();
    assert_eq!(
        wait_terminal(scanner.as_ref(), id).await,
        ScanStatus::Completed
    );
    let done = scanner.status(id).await.unwrap();
    assert_eq!((done.progress, done.host_count), (100, 2));
    assert_eq!(done.uuid.as_deref(), Some(run.as_str()));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.nessus");
    let n = scanner
        .export_to_file(id, ExportFormat::Nessus, &path, 64 << 20)
        .await
        .unwrap();
    let xml = std::fs::read_to_string(&path).unwrap();
    assert_eq!(n as usize, xml.len());
    assert!(xml.contains(r#"<ReportHost name="192.0.2.20""#));
    assert!(xml.contains(r#"<ReportHost name="192.0.2.21""#));
    assert!(!xml.contains("172.32.0.215"));
    assert_eq!(xml.matches("<ReportItem ").count(), 80);

    // Size cap: typed error and no file left behind.
    let capped = dir.path().join("capped.nessus");
    let err = scanner
        .export_to_file(id, ExportFormat::Nessus, &capped, 1024)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ExportTooLarge { limit: 1024 }),
        "{err:?}"
    );
    assert!(!capped.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // Stop on a finished scan is fine; delete twice is fine.
    scanner.stop(id).await.unwrap();
    scanner.delete(id).await.unwrap();
    scanner.delete(id).await.unwrap();
    assert_eq!(scanner.find_scan_by_name("mcp-task-1").await.unwrap(), None);
    let c = sim.counters();
    assert_eq!(
        (c.scans_created, c.scans_launched, c.scans_deleted),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn stop_cancels_a_running_scan() {
    let sim = crate::support::sim_builder()
        .scan_duration(Duration::from_secs(30))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let scanner = client(&sim);
    let id = scanner
        .create_scan(&ScanSpec::new("mcp-stop", ["192.0.2.30"]))
        .await
        .unwrap()
        .id;
    let id = nessus_core::ScanId(id);
    Scanner::launch(&scanner, id).await.unwrap();
    // A running scan cannot be deleted.
    assert!(Scanner::delete(&scanner, id).await.is_err());
    Scanner::stop(&scanner, id).await.unwrap();
    assert_eq!(wait_terminal(&scanner, id).await, ScanStatus::Canceled);
    Scanner::delete(&scanner, id).await.unwrap();
    assert_eq!(sim.counters().by_name["mcp-stop"].stopped, 1);
}

#[tokio::test]
async fn bad_specs_are_refused_before_any_request() {
    let sim = sim().await;
    let c = client(&sim);
    let no_targets = ScanSpec::new("x", Vec::<String>::new());
    assert!(Scanner::create_scan(&c, &no_targets).await.is_err());
    let bad_creds =
        ScanSpec::new("x", ["192.0.2.1"]).credentials(SshCredentials::password("", "pw"));
    assert!(matches!(
        Scanner::create_scan(&c, &bad_creds).await,
        Err(Error::InvalidCredentials { .. })
    ));
    assert_eq!(sim.counters().requests, 0);
}
