//! Faults the simulator injects on demand, and the counters it keeps.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a 412 "API is not available" is delivered (Nessus 10 often breaks the
/// connection instead of sending the body; nessus-api.md §2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GateMode {
    /// A complete 412 response.
    #[default]
    Clean,
    /// The 412 status line and headers (`Content-Length: 32`), then the connection drops.
    DropAfterHeaders,
    /// The connection drops without any response.
    DropNoResponse,
}

/// Faults to inject. All default to "off"; the admin endpoint `PUT /_sim/faults` replaces
/// them at runtime with the same JSON shape. Not `#[non_exhaustive]` on purpose: build it
/// with `Faults { field: value, ..Default::default() }`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Only requests matching this `METHOD /path` pattern are affected (`*` as method
    /// matches any; a trailing `*` on the path matches a prefix). `None` = all API calls.
    pub only: Option<String>,
    /// Added latency per request, milliseconds.
    pub latency_ms: u64,
    /// Random extra latency, uniform in `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Licence `scan_api: false`: gated writes answer 412 unless made with a session and
    /// the right web-UI token.
    pub scan_api_disabled: bool,
    /// How a 412 is delivered.
    pub gate_mode: GateMode,
    /// The next N matching requests answer 429 with `Retry-After: retry_after_secs`.
    pub rate_limit_next: u32,
    /// `Retry-After` seconds sent with 429 (and with 503 from `fail_next`).
    pub retry_after_secs: Option<u64>,
    /// The next N matching requests answer `fail_status`.
    pub fail_next: u32,
    /// Status for `fail_next` and `error_rate` (default 503).
    pub fail_status: Option<u16>,
    /// Probability (0.0–1.0) that a matching request answers `fail_status`.
    pub error_rate: f64,
    /// The next N matching requests lose their connection without a response.
    pub drop_next: u32,
    /// Every new connection is closed right after it is accepted.
    pub drop_connections: bool,
    /// Exports end in status `error`.
    pub export_fail: bool,
    /// Exports stay `loading` this long (milliseconds) before `ready`.
    pub export_delay_ms: Option<u64>,
    /// Downloads are throttled to this many bytes per second (0 = unlimited).
    pub download_bytes_per_sec: u64,
    /// The simulator's clock runs this many seconds ahead (negative: behind), as its
    /// `Date` header shows. A property of the whole server: `only` does not scope it.
    pub clock_skew_secs: i64,
}

impl Faults {
    /// Whether a fault applies to this request.
    pub(crate) fn applies(&self, method: &str, path: &str) -> bool {
        let Some(pattern) = self.only.as_deref() else {
            return true;
        };
        let (m, p) = pattern.trim().split_once(' ').unwrap_or(("*", pattern));
        let method_ok = m == "*" || m.eq_ignore_ascii_case(method);
        let path_ok = match p.trim().strip_suffix('*') {
            Some(prefix) => path.starts_with(prefix),
            None => path == p.trim(),
        };
        method_ok && path_ok
    }
}

/// Per-scan-name counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NameCounters {
    /// Scans created with this name.
    pub created: u64,
    /// Launches of scans with this name.
    pub launched: u64,
    /// Stops.
    pub stopped: u64,
    /// Deletes.
    pub deleted: u64,
}

/// What the simulator has seen, for tests that prove "no duplicate scans" and "exactly
/// one login". Also served at `GET /_sim/counters`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Counters {
    /// API requests received (admin calls excluded).
    pub requests: u64,
    /// Successful `POST /session` logins.
    pub logins: u64,
    /// Scans created.
    pub scans_created: u64,
    /// Launches.
    pub scans_launched: u64,
    /// Stops.
    pub scans_stopped: u64,
    /// Pauses.
    pub scans_paused: u64,
    /// Resumes.
    pub scans_resumed: u64,
    /// Deletes.
    pub scans_deleted: u64,
    /// Export requests.
    pub exports_requested: u64,
    /// Completed downloads.
    pub downloads: u64,
    /// Created scans that carried credentials.
    pub credentials_received: u64,
    /// 401 answers.
    pub unauthorized: u64,
    /// 412 answers (or their dropped variants).
    pub gated: u64,
    /// Injected 429s.
    pub rate_limited: u64,
    /// Injected 5xx.
    pub injected_errors: u64,
    /// Injected connection drops.
    pub dropped: u64,
    /// Per scan name.
    pub by_name: BTreeMap<String, NameCounters>,
}

/// One scan as the simulator holds it, for tests that check what a client actually
/// sent (`text_targets` byte for byte) and when it stopped a scan. Also served at
/// `GET /_sim/scans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ScanRecord {
    /// Scan id.
    pub id: u64,
    /// Scan name.
    pub name: String,
    /// `settings.text_targets` exactly as received at create.
    pub text_targets: String,
    /// Status of the latest run now (`empty` when never launched).
    pub status: String,
    /// When the first stop request was accepted, in milliseconds since the Unix epoch.
    pub stop_requested_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn scoping_patterns() {
        let f = |p: &str| Faults {
            only: Some(p.to_owned()),
            ..Faults::default()
        };
        assert!(Faults::default().applies("GET", "/scans"));
        assert!(f("POST /scans").applies("POST", "/scans"));
        assert!(!f("POST /scans").applies("GET", "/scans"));
        assert!(!f("POST /scans").applies("POST", "/scans/5/launch"));
        assert!(f("* /scans/*").applies("DELETE", "/scans/5"));
        assert!(f("/server/status").applies("GET", "/server/status"));
        let json: Faults =
            serde_json::from_str(r#"{"gate_mode":"drop_after_headers","fail_next":2}"#).unwrap();
        assert_eq!(json.gate_mode, super::GateMode::DropAfterHeaders);
        assert_eq!(json.fail_next, 2);
    }
}
