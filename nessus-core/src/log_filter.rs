//! The ceiling on what any log line may carry, whatever `RUST_LOG` asks for.
//!
//! Scan passwords, API keys and bearer tokens pass through crates we do not write:
//! rmcp logs every JSON-RPC message it receives at `debug` and `trace` (tool
//! arguments, so `ssh_password` and `escalation_password`), and the HTTP stacks
//! (hyper, h2, reqwest, axum, tower-http) and the database clients may log what
//! they parse or send at those levels in any release. We read and test our own log
//! lines; we cannot review every dependency's. So our crates log at the level the
//! operator asks for, and every other target is held at [`DEPENDENCY_LOG_CEILING`].
//! The binaries add [`log_filter`] next to the operator's `EnvFilter` as a second,
//! independent filter: a line is written only when both allow it, so no `RUST_LOG`
//! spelling (a longer target, a span directive) can lift the ceiling.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;

/// The crates whose log lines are ours (reviewed, and checked for canaries by the
/// `RUST_LOG=trace` tests of `nessus-mcp` and `nessus-cli worker`).
pub const OWN_LOG_TARGETS: &[&str] = &[
    "nessus_core",
    "nessus_queue",
    "nessus_schema",
    "nessus_mcp",
    "nessus_cli",
];

/// The most verbose level at which a dependency may log. Measured with rmcp 3.9:
/// its `info`, `warn` and `error` lines carry ids, hosts and error texts, never a
/// message body; `debug` ("received request") and `trace` ("new event") carry
/// the whole request.
pub const DEPENDENCY_LOG_CEILING: LevelFilter = LevelFilter::INFO;

/// The filter that keeps secrets out of logs: [`OWN_LOG_TARGETS`] up to `trace`,
/// anything else up to [`DEPENDENCY_LOG_CEILING`]. Use it beside the operator's
/// filter, never instead of it: it only ever removes lines.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::EnvFilter::new("trace"))
///     .with(nessus_core::log_filter())
///     .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
/// # drop(subscriber);
/// ```
pub fn log_filter() -> Targets {
    OWN_LOG_TARGETS.iter().fold(
        Targets::new().with_default(DEPENDENCY_LOG_CEILING),
        |t, crate_name| t.with_target(*crate_name, LevelFilter::TRACE),
    )
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn own_crates_pass_at_trace_and_dependencies_stop_at_info() {
        let filter = log_filter();
        let cases: &[(&str, Level, bool)] = &[
            ("nessus_mcp::server", Level::TRACE, true),
            ("nessus_queue::worker", Level::DEBUG, true),
            ("nessus_cli::commands::worker", Level::TRACE, true),
            ("rmcp::service", Level::DEBUG, false),
            ("rmcp::service", Level::INFO, true),
            (
                "rmcp::transport::streamable_http_server::tower",
                Level::TRACE,
                false,
            ),
            ("hyper_util::client::legacy::pool", Level::DEBUG, false),
            ("h2::codec::framed_read", Level::TRACE, false),
            ("reqwest::connect", Level::DEBUG, false),
            ("tower_http::trace::on_request", Level::DEBUG, false),
            ("axum::serve", Level::WARN, true),
        ];
        for &(target, level, want) in cases {
            assert_eq!(
                filter.would_enable(target, &level),
                want,
                "{target} at {level}"
            );
        }
    }
}
