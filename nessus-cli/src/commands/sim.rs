//! `nessus-cli sim`: the Nessus simulator as a standalone server.

use std::io::Write;
use std::time::Duration;

use anyhow::Context;
use nessus_core::sim::Simulator;

use crate::cli::{GlobalArgs, SimArgs};
use crate::exit::CliError;

pub(crate) fn run(global: &GlobalArgs, args: &SimArgs) -> anyhow::Result<()> {
    if !(args.scan_duration.is_finite() && args.scan_duration >= 0.0) {
        return Err(CliError::Usage(format!(
            "--scan-duration must be a non-negative number of seconds, not {}",
            args.scan_duration
        ))
        .into());
    }
    let mut builder = Simulator::builder()
        .scan_duration(Duration::from_secs_f64(args.scan_duration))
        .tls(args.tls);
    if let Some(corpus) = &args.corpus {
        if !corpus.is_dir() {
            return Err(
                CliError::Input(format!("corpus {} is not a directory", corpus.display())).into(),
            );
        }
        builder = builder.corpus(corpus.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async {
        let handle = builder
            .start(&args.listen)
            .await
            .with_context(|| format!("cannot start the simulator on {}", args.listen))?;
        if let (Some(pem), Some(path)) = (handle.ca_pem(), &args.ca_out) {
            std::fs::write(path, pem).with_context(|| {
                format!("cannot write the CA certificate to {}", path.display())
            })?;
        }
        // The URL goes to stdout (scripts read it, even with --listen 127.0.0.1:0).
        let mut stdout = std::io::stdout().lock();
        if global.json {
            writeln!(
                stdout,
                "{}",
                serde_json::json!({ "url": handle.base_url() })
            )?;
        } else {
            writeln!(
                stdout,
                "Nessus simulator listening at {}",
                handle.base_url()
            )?;
        }
        stdout.flush()?;
        drop(stdout);
        tokio::signal::ctrl_c()
            .await
            .context("cannot wait for Ctrl-C")?;
        eprintln!("stopping the simulator");
        drop(handle);
        anyhow::Ok(())
    })
}
