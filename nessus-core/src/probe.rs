//! Probing a scanner: does it answer, what is it, is its clock and TLS right. One
//! attempt per call: a probe reports what it sees now, it does not wait out outages
//! like the worker does.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::{InstanceConfig, RetryPolicy};

/// How TLS is configured for an instance, in words.
pub fn tls_setting(instance: &InstanceConfig) -> &'static str {
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

/// What one instance answered to a probe (`nessus-cli scanners check`, `/ready`).
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct ScannerProbe {
    /// Pool.
    pub pool: String,
    /// Instance id.
    pub instance: String,
    /// URL as configured, credentials masked.
    pub url: String,
    /// Whether it answered `GET /server/status`.
    pub reachable: bool,
    /// `ready`, `loading`, … from `GET /server/status`.
    pub status: Option<String>,
    /// `nessus_type` from `GET /server/properties`.
    pub nessus_type: Option<String>,
    /// Server version.
    pub version: Option<String>,
    /// Licence kind.
    pub license: Option<String>,
    /// Licence expiry date.
    pub license_expires: Option<String>,
    /// Whether the scan API is enabled.
    pub scan_api: Option<bool>,
    /// `verified`, `failed`, `not verified (insecure)` or `none (http)`.
    pub tls: String,
    /// Scanner clock minus ours (from its `Date` header); positive when it is ahead.
    pub clock_skew_seconds: Option<i64>,
    /// Set when the skew is over [`CLOCK_SKEW_LIMIT_SECS`].
    pub clock_skew_warning: Option<String>,
    /// Why the scanner's clock could not be read.
    pub clock_error: Option<String>,
    /// How long the probe took.
    pub elapsed_ms: u128,
    /// What went wrong, if anything (never a secret).
    pub error: Option<String>,
}

/// Beyond this the scanner's scan times and history disagree with ours enough to matter.
pub const CLOCK_SKEW_LIMIT_SECS: i64 = 60;

/// Probes one instance: status, properties and clock, within `timeout` in all.
pub async fn probe(instance: &InstanceConfig, timeout: Duration) -> ScannerProbe {
    let started = Instant::now();
    let mut out = ScannerProbe {
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
        tls: tls_setting(instance).to_owned(),
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
        Ok::<_, crate::Error>((status, properties, clock))
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
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
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

fn is_certificate_error(error: &crate::Error) -> bool {
    let text = chain(error).to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}
