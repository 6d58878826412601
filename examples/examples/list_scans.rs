//! Lists the scans of a Nessus server.
//!
//! ```text
//! cargo run -p nessus-examples --example list_scans
//! ```
//!
//! Without `NESSUS_URL` it starts an in-process simulator with one finished scan, so the
//! command works anywhere. Against a real server set `NESSUS_URL`, `NESSUS_ACCESS_KEY`,
//! `NESSUS_SECRET_KEY` and, for a self-signed certificate, `NESSUS_CA_FILE`.

use std::time::Duration;

use anyhow::Context;
use nessus_core::{Credentials, NessusClient, ScanSpec, Scanner, TlsOptions, sim::Simulator};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let (client, _sim) = match std::env::var("NESSUS_URL") {
        Ok(url) => (connect(&url)?, None),
        Err(_) => {
            let sim = Simulator::builder()
                .scan_duration(Duration::from_millis(300))
                .start("127.0.0.1:0")
                .await?;
            eprintln!(
                "NESSUS_URL not set: using a simulator at {}",
                sim.base_url()
            );
            let client = NessusClient::builder()
                .base_url(sim.base_url())
                .credentials(Credentials::api_keys("demo", "demo"))
                .build()?;
            let id = client
                .create_scan(&ScanSpec::new("demo-scan", ["192.0.2.10"]).template("basic"))
                .await?
                .id;
            Scanner::launch(&client, nessus_core::ScanId(id)).await?;
            (client, Some(sim))
        }
    };
    let props = client.server_properties().await?;
    println!(
        "{} {} (scan_api: {})",
        props.nessus_type.as_deref().unwrap_or("Nessus"),
        props.server_version.as_deref().unwrap_or("?"),
        props
            .scan_api()
            .map_or("unknown".to_owned(), |b| b.to_string()),
    );
    let list = client.list_scans(None).await?;
    println!("{:>6}  {:<10}  {:<8}  NAME", "ID", "STATUS", "FOLDER");
    for scan in &list.scans {
        let folder = list
            .folders
            .iter()
            .find(|f| Some(f.id) == scan.folder_id)
            .map_or("-", |f| f.name.as_str());
        println!(
            "{:>6}  {:<10}  {:<8}  {}",
            scan.id, scan.status, folder, scan.name
        );
    }
    Ok(())
}

fn connect(url: &str) -> anyhow::Result<NessusClient> {
    let access = std::env::var("NESSUS_ACCESS_KEY").context("NESSUS_ACCESS_KEY is not set")?;
    let secret = std::env::var("NESSUS_SECRET_KEY").context("NESSUS_SECRET_KEY is not set")?;
    let tls =
        std::env::var("NESSUS_CA_FILE").map_or_else(|_| TlsOptions::default(), TlsOptions::ca_file);
    Ok(NessusClient::builder()
        .base_url(url)
        .credentials(Credentials::api_keys(access, secret))
        .tls(tls)
        .build()?)
}
