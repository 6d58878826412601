//! `nessus-cli scanners list|check`: the scanners of the config, and whether each one
//! answers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use nessus_core::{Config, InstanceConfig, RetryPolicy};
use serde::Serialize;
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
fn tls_setting(instance: &InstanceConfig) -> &'static str {
    let tls = instance.tls();
    if !instance.url().starts_with("https:") {
        "none (http)"
    } else if tls.insecure {
        "NOT VERIFIED (insecure)"
    } else if tls.ca_file.is_some() || tls.ca_pem.is_some() {
        "verify (own CA)"
    } else {
        "verify (system roots)"
    }
}

/// What one instance answered.
#[derive(Debug, Serialize)]
struct InstanceCheck {
    pool: String,
    instance: String,
    url: String,
    reachable: bool,
    /// `ready`, `loading`, … from `GET /server/status`.
    status: Option<String>,
    nessus_type: Option<String>,
    version: Option<String>,
    license: Option<String>,
    license_expires: Option<String>,
    scan_api: Option<bool>,
    /// `verified`, `failed`, `not verified (insecure)` or `none (http)`.
    tls: String,
    /// Scanner clock minus ours (from its `Date` header); positive when it is ahead.
    clock_skew_seconds: Option<i64>,
    /// Set when the skew is over [`CLOCK_SKEW_LIMIT_SECS`].
    clock_skew_warning: Option<String>,
    /// Why the scanner's clock could not be read.
    clock_error: Option<String>,
    elapsed_ms: u128,
    error: Option<String>,
}

/// Beyond this the scanner's scan times and history disagree with ours enough to matter.
const CLOCK_SKEW_LIMIT_SECS: i64 = 60;

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
            set.spawn(check_one(Arc::new(instance), timeout));
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

async fn check_one(instance: Arc<InstanceConfig>, timeout: Duration) -> InstanceCheck {
    let started = Instant::now();
    let mut out = InstanceCheck {
        pool: instance.pool().to_owned(),
        instance: instance.instance_id().to_owned(),
        url: instance.display_url(),
        reachable: false,
        status: None,
        nessus_type: None,
        version: None,
        license: None,
        license_expires: None,
        scan_api: None,
        tls: tls_setting(&instance).to_owned(),
        clock_skew_seconds: None,
        clock_skew_warning: None,
        clock_error: None,
        elapsed_ms: 0,
        error: None,
    };
    // One attempt per call: a check reports what it sees now, it does not wait out
    // outages like the worker does.
    let client = match instance
        .client_builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .retry(RetryPolicy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            out.error = Some(format!("cannot build a client: {e}"));
            return out;
        }
    };
    let answered = async {
        let status = client.server_status().await?;
        let properties = client.server_properties().await;
        let clock = client.server_clock().await;
        Ok::<_, nessus_core::Error>((status, properties, clock))
    };
    match tokio::time::timeout(timeout, answered).await {
        Err(_) => out.error = Some(format!("no answer within {}s", timeout.as_secs())),
        Ok(Err(e)) => {
            if is_certificate_error(&e) {
                out.tls = "failed".to_owned();
            }
            out.error = Some(chain(&e));
        }
        Ok(Ok((status, properties, clock))) => {
            out.reachable = true;
            match clock {
                Ok(clock) => {
                    let skew = clock.skew_seconds();
                    out.clock_skew_seconds = Some(skew);
                    if skew.abs() > CLOCK_SKEW_LIMIT_SECS {
                        out.clock_skew_warning = Some(format!(
                            "the scanner's clock is {} s {} ours (more than {CLOCK_SKEW_LIMIT_SECS} s): \
                             scan times and history will be off; check NTP on both hosts",
                            skew.abs(),
                            if skew > 0 { "ahead of" } else { "behind" }
                        ));
                    }
                }
                Err(e) => out.clock_error = Some(chain(&e)),
            }
            out.status = Some(status.status);
            if instance.url().starts_with("https:") && !instance.tls().insecure {
                out.tls = "verified".to_owned();
            } else if instance.tls().insecure {
                out.tls = "not verified (insecure)".to_owned();
            }
            match properties {
                Ok(p) => {
                    out.scan_api = p.scan_api();
                    out.nessus_type = p.nessus_type;
                    out.version = p.server_version;
                    if let Some(license) = p.license {
                        out.license = license.kind.or(license.name);
                        out.license_expires = license
                            .expiration_date
                            .and_then(|secs| jiff::Timestamp::from_second(secs).ok())
                            .map(|t| t.strftime("%Y-%m-%d").to_string());
                    }
                }
                // Reachable but the credentials or the licence say no: still useful.
                Err(e) => out.error = Some(format!("server properties: {e}")),
            }
        }
    }
    out.elapsed_ms = started.elapsed().as_millis();
    out
}

/// The whole error chain on one line (the TLS reason is usually a few sources down).
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

fn is_certificate_error(error: &nessus_core::Error) -> bool {
    let text = chain(error).to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}

fn check_table(results: &[InstanceCheck]) -> String {
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
fn clock_cell(r: &InstanceCheck) -> String {
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
