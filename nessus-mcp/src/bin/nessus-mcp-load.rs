//! `nessus-mcp-load`: a load generator for any MCP streamable-HTTP server.
//!
//! Opens N concurrent sessions (one HTTP client each) that call tools in a loop
//! for a fixed time and prints calls/s and p50/p99 latency per tool. Calls use
//! the stateless 2025-11-25 wire (`MCP-Protocol-Version` header, no session).
//!
//! ```text
//! nessus-mcp-load --url http://127.0.0.1:8836/mcp --token T --sessions 1,10,50 \
//!     --call 'get_queue_status={}' --call 'list_tasks={"limit":10}'
//! ```

use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;

/// Drive an MCP HTTP server with concurrent tool calls.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// MCP endpoint.
    #[arg(long)]
    url: String,
    /// Bearer token (omit for token-less servers).
    #[arg(long, env = "NESSUS_MCP_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Concurrency levels to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    sessions: Vec<usize>,
    /// Seconds per level.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// `tool={json args}`; repeat to mix calls round-robin (default: get_queue_status).
    #[arg(long = "call")]
    calls: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn call(
    client: &reqwest::Client,
    cli: &Cli,
    id: u64,
    tool: &str,
    args: &serde_json::Value,
) -> anyhow::Result<()> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": args}
    });
    let mut req = client
        .post(&cli.url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(&body);
    if let Some(t) = &cli.token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await?;
    anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
    let text = resp.text().await?;
    anyhow::ensure!(!text.contains("\"error\":{"), "JSON-RPC error: {text}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = std::sync::Arc::new(Cli::parse());
    let calls: Vec<(String, serde_json::Value)> = if cli.calls.is_empty() {
        vec![("get_queue_status".to_owned(), serde_json::json!({}))]
    } else {
        cli.calls
            .iter()
            .map(|c| {
                let (name, args) = c.split_once('=').unwrap_or((c, "{}"));
                let args =
                    serde_json::from_str(args).with_context(|| format!("arguments of {name}"))?;
                Ok((name.to_owned(), args))
            })
            .collect::<anyhow::Result<_>>()?
    };
    let calls = std::sync::Arc::new(calls);
    println!(
        "{:>8} {:<22} {:>10} {:>10} {:>10} {:>8}",
        "sessions", "tool", "calls/s", "p50 ms", "p99 ms", "errors"
    );
    for &n in &cli.sessions {
        let deadline = Instant::now() + Duration::from_secs(cli.seconds);
        let mut tasks = Vec::new();
        for s in 0..n {
            let cli = cli.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut out: Vec<(usize, Duration, bool)> = Vec::new();
                let mut i = s;
                while Instant::now() < deadline {
                    let k = i % calls.len();
                    let (tool, args) = &calls[k];
                    let t = Instant::now();
                    let ok = call(&client, &cli, i as u64, tool, args).await.is_ok();
                    out.push((k, t.elapsed(), ok));
                    i += 1;
                }
                out
            }));
        }
        let mut per_tool: Vec<(Vec<Duration>, u64)> = vec![(Vec::new(), 0); calls.len()];
        for t in tasks {
            for (k, d, ok) in t.await? {
                if ok {
                    per_tool[k].0.push(d);
                } else {
                    per_tool[k].1 += 1;
                }
            }
        }
        for (k, (mut lat, errors)) in per_tool.into_iter().enumerate() {
            lat.sort_unstable();
            let rate = lat.len() as f64 / cli.seconds as f64;
            println!(
                "{:>8} {:<22} {:>10.0} {:>10.2} {:>10.2} {:>8}",
                n,
                calls[k].0,
                rate,
                percentile(&lat, 0.50).as_secs_f64() * 1000.0,
                percentile(&lat, 0.99).as_secs_f64() * 1000.0,
                errors
            );
        }
    }
    Ok(())
}
