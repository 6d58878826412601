//! Creates a scan, launches it, waits for it to finish and exports the `.nessus` report,
//! driving the same `Scanner` trait the worker uses.
//!
//! ```text
//! cargo run -p nessus-examples --example create_launch_wait -- 192.0.2.10 192.0.2.11
//! ```
//!
//! Without `NESSUS_URL` it runs against an in-process simulator over TLS (trusting the
//! simulator's generated CA). Against a real server set `NESSUS_URL`,
//! `NESSUS_ACCESS_KEY`, `NESSUS_SECRET_KEY` and optionally `NESSUS_CA_FILE`; only scan
//! targets you are allowed to scan.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, bail};
use nessus_core::{
    Credentials, ExportFormat, NessusClient, ScanSpec, Scanner, TlsOptions, sim::Simulator,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut targets: Vec<String> = std::env::args().skip(1).collect();
    if targets.is_empty() {
        targets.push("192.0.2.10".into());
    }
    let (url, credentials, tls, _sim) = match std::env::var("NESSUS_URL") {
        Ok(url) => (
            url,
            Credentials::api_keys(
                std::env::var("NESSUS_ACCESS_KEY").context("NESSUS_ACCESS_KEY is not set")?,
                std::env::var("NESSUS_SECRET_KEY").context("NESSUS_SECRET_KEY is not set")?,
            ),
            std::env::var("NESSUS_CA_FILE")
                .map_or_else(|_| TlsOptions::default(), TlsOptions::ca_file),
            None,
        ),
        Err(_) => {
            let sim = Simulator::builder()
                .scan_duration(Duration::from_secs(2))
                .tls(true)
                .start("127.0.0.1:0")
                .await?;
            eprintln!(
                "NESSUS_URL not set: using a TLS simulator at {}",
                sim.base_url()
            );
            let ca = sim.ca_pem().context("the simulator has no CA")?.to_owned();
            (
                sim.base_url().to_owned(),
                Credentials::session("demo", "demo"),
                TlsOptions::ca_pem(ca),
                Some(sim),
            )
        }
    };
    let scanner: Arc<dyn Scanner> = Arc::new(
        NessusClient::builder()
            .base_url(url)
            .credentials(credentials)
            .tls(tls)
            .build()?,
    );

    let name = format!("example-{}", std::process::id());
    let spec = ScanSpec::new(&name, targets).template("basic");
    let id = match scanner.create_scan(&spec).await {
        Ok(id) => id,
        // The create may have happened even though the answer was lost: look it up by name
        // instead of creating a duplicate.
        Err(e) if e.outcome_unknown() => scanner
            .find_scan_by_name(&name)
            .await?
            .with_context(|| format!("create failed ({e}) and no scan named {name} exists"))?,
        Err(e) => return Err(e.into()),
    };
    println!("created scan {id} ({name})");
    let run = scanner.launch(id).await?;
    println!("launched run {run}");
    let state = loop {
        let state = scanner.status(id).await?;
        println!("  {:<10} {:>3}%", state.status, state.progress);
        if state.status.is_terminal() {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if !state.status.is_success() {
        bail!("scan ended {}", state.status);
    }
    let path = std::env::temp_dir().join(format!("{name}.nessus"));
    let bytes = scanner
        .export_to_file(id, ExportFormat::Nessus, &path, 512 << 20)
        .await?;
    println!("exported {bytes} bytes to {}", path.display());
    Ok(())
}
