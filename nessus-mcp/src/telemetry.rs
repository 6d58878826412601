//! Logs (JSON by default, always on stderr) and Prometheus metrics.
//!
//! Metric names are constants here so the README table and the code cannot
//! drift apart silently.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Counter `{path, status}`: HTTP requests served.
pub(crate) const HTTP_REQUESTS: &str = "nessus_mcp_http_requests_total";
/// Histogram `{path}`: HTTP request duration in seconds.
pub(crate) const HTTP_DURATION: &str = "nessus_mcp_http_request_duration_seconds";
/// Counter `{tool, outcome}`: tool calls (`outcome` = `ok` | `error`).
pub(crate) const TOOL_CALLS: &str = "nessus_mcp_tool_calls_total";
/// Histogram `{tool}`: tool call duration in seconds.
pub(crate) const TOOL_DURATION: &str = "nessus_mcp_tool_call_duration_seconds";
/// Counter `{reason}`: requests refused for a missing or invalid token.
pub(crate) const AUTH_FAILURES: &str = "nessus_mcp_auth_failures_total";
/// Counter `{reason}`: requests refused by Host/Origin validation.
pub(crate) const REJECTED_REQUESTS: &str = "nessus_mcp_rejected_requests_total";

/// Gauge: open HTTP connections (bounded by `--max-connections`).
pub(crate) const HTTP_CONNECTIONS: &str = "nessus_mcp_http_connections";
/// Counter: idle or still-sending connections closed at the cap to admit a new one.
pub(crate) const CONNECTIONS_EVICTED: &str = "nessus_mcp_connections_evicted_total";
/// Counter: connections closed at once because `--max-connections` were open and busy.
pub(crate) const CONNECTIONS_REFUSED: &str = "nessus_mcp_connections_refused_total";
/// Counter: failed `accept` calls (EMFILE and the like).
pub(crate) const ACCEPT_ERRORS: &str = "nessus_mcp_accept_errors_total";
/// The `tool` label of a call naming no tool this server has: client-chosen
/// names must not become label values (20,000 bogus names made `/metrics` 343 MB).
pub(crate) const UNKNOWN_TOOL: &str = "unknown";

/// Counter `{scan_type, status}`: scan submissions (predecessor's name kept).
pub(crate) const SCANS: &str = "nessus_scans_total";
/// Gauge `{pool}`: queued tasks, refreshed at each scrape.
pub(crate) const POOL_QUEUE_DEPTH: &str = "nessus_pool_queue_depth";
/// Gauge `{pool}`: running tasks, refreshed at each scrape.
pub(crate) const POOL_RUNNING: &str = "nessus_pool_running";
/// Gauge `{pool}`: dead-letter entries, refreshed at each scrape.
pub(crate) const POOL_DLQ_DEPTH: &str = "nessus_pool_dlq_depth";
/// Gauge: 1 when the backend answered the last readiness probe.
pub(crate) const BACKEND_UP: &str = "nessus_mcp_backend_up";
/// Gauge: bytes of findings stores in this node's results cache (`server.results_url`).
pub(crate) const RESULTS_CACHE_BYTES: &str = "nessus_results_cache_bytes";
/// Gauge: findings stores in this node's results cache.
pub(crate) const RESULTS_CACHE_STORES: &str = "nessus_results_cache_stores";
/// Counter: stores downloaded into the results cache since start.
pub(crate) const RESULTS_CACHE_FETCHES: &str = "nessus_results_cache_fetches_total";
/// Counter: stores evicted from the results cache since start.
pub(crate) const RESULTS_CACHE_EVICTIONS: &str = "nessus_results_cache_evictions_total";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (default; what log pipelines want).
    #[default]
    Json,
    /// Human-readable text.
    Text,
}

/// Install the global tracing subscriber writing to stderr (stdout belongs to
/// the stdio transport). `RUST_LOG` overrides the default filter: `info`, except
/// rmcp's per-connection lifecycle lines, which in stateless HTTP mode would be two
/// lines per request and bury the lines an operator needs. Whatever `RUST_LOG`
/// says, [`nessus_core::log_filter`] holds every dependency at `info`: at `debug`
/// rmcp logs each request with its tool arguments, passwords included.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::{
        EnvFilter, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _,
    };
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rmcp=warn"));
    let (json, text) = match format {
        LogFormat::Json => (
            Some(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            ),
            None,
        ),
        // Colour codes only for a terminal: in a file or a pipeline they are noise.
        LogFormat::Text => (
            None,
            Some(
                fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            ),
        ),
    };
    // `try_init` so tests that start several servers in one process do not panic.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(nessus_core::log_filter())
        .with(json)
        .with(text)
        .try_init();
}

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("_seconds".into()),
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
                ],
            )
            .expect("bucket list is non-empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding
        // application); then our handle renders only what we register here.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
