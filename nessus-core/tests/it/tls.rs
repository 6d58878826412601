//! TLS matrix against the simulator's generated CA.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use nessus_core::{Credentials, Error, NessusClient, TlsOptions, TransportKind};

use crate::support::{fast, sim_builder};

fn build(url: &str, tls: TlsOptions) -> nessus_core::Result<NessusClient> {
    fast(NessusClient::builder())
        .base_url(url)
        .credentials(Credentials::api_keys("a", "b"))
        .retry(nessus_core::RetryPolicy::none())
        .tls(tls)
        .build()
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn verifies_with_ca_refuses_without_and_insecure_warns() {
    let sim = sim_builder().tls(true).start("127.0.0.1:0").await.unwrap();
    assert!(sim.base_url().starts_with("https://"));
    let ca = sim.ca_pem().unwrap().to_owned();

    // Trusting the CA (in memory, and from a file).
    build(sim.base_url(), TlsOptions::ca_pem(ca.clone()))
        .unwrap()
        .server_status()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca).unwrap();
    build(sim.base_url(), TlsOptions::ca_file(&ca_file))
        .unwrap()
        .list_scans(None)
        .await
        .unwrap();
    // Also through `localhost` (the certificate names it too) with system roots merged.
    let localhost = sim.base_url().replace("127.0.0.1", "localhost");
    let mut merged = TlsOptions::ca_file(&ca_file);
    merged.merge_system_roots = true;
    build(&localhost, merged)
        .unwrap()
        .server_status()
        .await
        .unwrap();

    // Default verification refuses the self-signed chain.
    let err = build(sim.base_url(), TlsOptions::default())
        .unwrap()
        .server_status()
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Transport {
                kind: TransportKind::Connect,
                ..
            }
        ),
        "{err:?}"
    );

    // insecure works and logs a warning at every build.
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let insecure = tracing::subscriber::with_default(subscriber, || {
        let first = build(sim.base_url(), TlsOptions::insecure()).unwrap();
        build(sim.base_url(), TlsOptions::insecure()).unwrap();
        first
    });
    insecure.server_status().await.unwrap();
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert_eq!(log.matches("WARN").count(), 2, "{log}");
    assert!(
        log.contains("TLS certificate verification is DISABLED"),
        "{log}"
    );
}

#[tokio::test]
async fn bad_tls_settings_are_reported() {
    let err = build(
        "https://127.0.0.1:1",
        TlsOptions::ca_file("/nonexistent/ca.pem"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    let err = build("https://127.0.0.1:1", TlsOptions::ca_pem("not a pem")).unwrap_err();
    assert!(matches!(err, Error::ClientConfig { .. }), "{err:?}");
    let mut hostnames = TlsOptions::default();
    hostnames.accept_invalid_hostnames = true;
    assert!(build("https://127.0.0.1:1", hostnames).is_err());
    assert!(build("ftp://x", TlsOptions::default()).is_err());
    assert!(build("not a url", TlsOptions::default()).is_err());
}
