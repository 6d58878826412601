//! Runs the Nessus simulator in the foreground, e.g. for a third-party client.
//!
//! ```text
//! cargo run -p nessus-examples --example sim -- [127.0.0.1:8834] [--tls] [--scan-secs N]
//! ```
//!
//! Prints `listening on URL` (and the CA PEM path with `--tls`) once it accepts
//! connections. Any API keys and any username/password are accepted.

use std::time::Duration;

use anyhow::Context;
use nessus_core::sim::Simulator;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let mut listen = "127.0.0.1:8834".to_owned();
    let mut tls = false;
    let mut scan_secs = 3.0_f64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tls" => tls = true,
            "--scan-secs" => {
                scan_secs = args
                    .next()
                    .context("--scan-secs needs a value")?
                    .parse()
                    .context("--scan-secs must be a number")?;
            }
            other => listen = other.to_owned(),
        }
    }
    let sim = Simulator::builder()
        .scan_duration(Duration::from_secs_f64(scan_secs))
        .tls(tls)
        .start(&listen)
        .await?;
    if let Some(pem) = sim.ca_pem() {
        let path = std::env::temp_dir().join(format!("nessus-sim-ca-{}.pem", sim.addr().port()));
        std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
        println!("ca file {}", path.display());
    }
    println!("listening on {}", sim.base_url());
    tokio::select! {
        () = sim.wait() => {}
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
    }
    Ok(())
}
