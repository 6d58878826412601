//! `nessus-cli scanners list|check`: the scanners of the config, and whether each one
//! answers.

use std::time::Duration;

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use nessus_core::{Config, InstanceConfig, ScannerProbe, tls_setting};
use serde_json::json;
use tokio::task::JoinSet;

use crate::cli::{GlobalArgs, ScannersCommand};
use crate::commands::{backend, config, print_json, print_text};
use crate::exit::CliError;
use crate::progress;
use crate::terminal::safe;

pub(crate) fn run(global: &GlobalArgs, cmd: &ScannersCommand) -> anyhow::Result<()> {
    let config = config::require(global, "scanners")?;
    match cmd {
        ScannersCommand::List => list(global, &config),
        ScannersCommand::Check { timeout } => check(global, config, Duration::from_secs(*timeout)),
    }
}

fn list(global: &GlobalArgs, config: &Config) -> anyhow::Result<()> {
    if global.json {
        let pools: Vec<_> = config
            .pools()
            .iter()
            .map(|pool| {
                let instances: Vec<_> = pool
                    .instances()
                    .iter()
                    .map(|i| {
                        json!({
                            "instance_id": i.instance_id(),
                            "name": i.name(),
                            "url": i.display_url(),
                            "auth": i.auth().mode().as_str(),
                            "max_concurrent_scans": i.max_concurrent_scans(),
                            "tls": tls_setting(i),
                        })
                    })
                    .collect();
                json!({
                    "pool": pool.name(),
                    "scanner_type": pool.scanner_type(),
                    "capacity": pool.capacity(),
                    "instances": instances,
                    "disabled_instances": pool.disabled_instances(),
                })
            })
            .collect();
        return print_json(&pools);
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "pool",
        "instance",
        "url",
        "auth",
        "max scans",
        "tls",
    ]);
    for pool in config.pools() {
        if pool.instances().is_empty() {
            table.add_row([pool.name(), "(none)", "", "", "0", ""]);
        }
        for i in pool.instances() {
            table.add_row([
                pool.name().to_owned(),
                i.instance_id().to_owned(),
                i.display_url(),
                i.auth().mode().to_string(),
                i.max_concurrent_scans().to_string(),
                tls_setting(i).to_owned(),
            ]);
        }
    }
    let mut text = format!("{table}\n");
    for pool in config.pools() {
        text.push_str(&format!(
            "pool {}: capacity {} scan(s) at once\n",
            pool.name(),
            pool.capacity()
        ));
    }
    print_text(&text)
}

/// How an instance's TLS is configured.
fn check(global: &GlobalArgs, config: Config, timeout: Duration) -> anyhow::Result<()> {
    let instances: Vec<InstanceConfig> = config.instances().cloned().collect();
    if instances.is_empty() {
        return Err(CliError::Input("the config has no scanner instances".to_owned()).into());
    }
    let rt = backend::current_thread()?;
    let bar = progress::count_bar(instances.len() as u64, "checking scanners");
    let mut results = rt.block_on(async {
        let mut set = JoinSet::new();
        for instance in instances {
            set.spawn(async move { nessus_core::probe(&instance, timeout).await });
        }
        let mut results = Vec::new();
        while let Some(done) = set.join_next().await {
            bar.inc(1);
            results.push(done?);
        }
        anyhow::Ok(results)
    })?;
    bar.finish_and_clear();
    results.sort_by(|a, b| (&a.pool, &a.instance).cmp(&(&b.pool, &b.instance)));
    let unreachable = results.iter().filter(|r| !r.reachable).count();
    if global.json {
        print_json(&results)?;
    } else {
        print_text(&check_table(&results))?;
    }
    if unreachable > 0 {
        return Err(CliError::Unavailable(format!(
            "{unreachable} of {} scanner(s) did not answer",
            results.len()
        ))
        .into());
    }
    Ok(())
}

fn check_table(results: &[ScannerProbe]) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "pool",
        "instance",
        "reachable",
        "status",
        "version",
        "license",
        "scan api",
        "tls",
        "clock skew",
        "error",
    ]);
    for r in results {
        let scan_api = match r.scan_api {
            Some(true) => "yes",
            Some(false) => "NO (web_token auth needed)",
            None => "unknown",
        };
        table.add_row(
            [
                r.pool.clone(),
                r.instance.clone(),
                if r.reachable { "yes" } else { "NO" }.to_owned(),
                r.status.clone().unwrap_or_default(),
                [r.nessus_type.as_deref(), r.version.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(" "),
                match (&r.license, &r.license_expires) {
                    (Some(l), Some(e)) => format!("{l} (expires {e})"),
                    (Some(l), None) => l.clone(),
                    _ => String::new(),
                },
                scan_api.to_owned(),
                r.tls.clone(),
                clock_cell(r),
                r.error.as_deref().map(short).unwrap_or_default(),
            ]
            .map(|cell| safe(&cell).into_owned()),
        );
    }
    let mut text = format!("{table}\n");
    for r in results {
        if let Some(warning) = &r.clock_skew_warning {
            text.push_str(&format!("warning: {}/{}: {warning}\n", r.pool, r.instance));
        }
    }
    text
}

/// `+3 s`, `-3600 s (WARNING)`, `unknown` (`--json` has the reason), or empty when the
/// scanner did not answer.
fn clock_cell(r: &ScannerProbe) -> String {
    match (r.clock_skew_seconds, &r.clock_error) {
        (Some(skew), _) if r.clock_skew_warning.is_some() => format!("{skew:+} s (WARNING)"),
        (Some(skew), _) => format!("{skew:+} s"),
        (None, Some(_)) => "unknown".to_owned(),
        (None, None) => String::new(),
    }
}

/// Keeps a table cell readable; `--json` has the whole message.
fn short(message: &str) -> String {
    const MAX: usize = 100;
    if message.chars().count() <= MAX {
        return message.to_owned();
    }
    let mut cut: String = message.chars().take(MAX - 1).collect();
    cut.push('…');
    cut
}
