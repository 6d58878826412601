//! `nessus-mcp-load`: a load generator for any MCP streamable-HTTP server.
//!
//! Opens N concurrent sessions (one HTTP client each) that call tools in a loop
//! for a fixed time and prints calls/s and p50/p99 latency per tool. Calls use
//! the stateless 2025-11-25 wire (`MCP-Protocol-Version` header, no session).
//!
//! ```text
//! # Throughput of each call on its own at 1, 10 and 50 sessions; `{task}` is a
//! # completed task made by --prepare (or given with --task).
//! nessus-mcp-load --url http://127.0.0.1:8836/mcp --token T --each \
//!     --prepare 'run_untrusted_scan={"targets":"192.0.2.10","name":"load"}' \
//!     --call 'get_scan_status={"task_id":"{task}"}' --call 'list_tasks={"limit":10}'
//! # Cold start and idle RSS: spawn the server, time the first successful call.
//! nessus-mcp-load --url http://127.0.0.1:8900/mcp -- \
//!     nessus-mcp --demo --no-auth --bind 127.0.0.1:8900
//! # Stall test: status latency alone, then while other sessions pull results.
//! nessus-mcp-load --url ... --task ID --stall
//! # Submit throughput below the per-principal queued quota: one principal per
//! # session (the server reads the same file with --tokens-file).
//! nessus-mcp-load --url ... --tokens-file tokens.txt \
//!     --call 'run_untrusted_scan={"targets":"192.0.2.10","name":"load"}'
//! ```
//!
//! A tool error (`isError` with an `error_code`, e.g. `quota_exceeded`) is a refusal,
//! counted apart from transport and JSON-RPC errors and never in calls/s: a submit
//! flood from one principal meets `max_queued_per_principal` (10 000 queued by
//! default) within seconds, and a fast refusal is not a submit.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;
use serde_json::Value;

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
    /// `principal=token` lines (the server's tokens-file format): each session of
    /// the run takes the next token, in turn across levels, so each principal carries
    /// one session's share of the load and no principal's queued quota is reached.
    /// --token (or none) still serves --prepare, so `{task}` belongs to that
    /// principal: use this for calls without `{task}`, such as submits.
    #[arg(long)]
    tokens_file: Option<std::path::PathBuf>,
    /// Concurrency levels to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,50")]
    sessions: Vec<usize>,
    /// Seconds per level (and per stall phase).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// `tool={json args}`; repeat to mix calls round-robin (default:
    /// get_queue_status). `{task}` in the arguments becomes the task id.
    #[arg(long = "call")]
    calls: Vec<String>,
    /// Measure each --call on its own instead of mixing them.
    #[arg(long)]
    each: bool,
    /// Task id substituted for `{task}`.
    #[arg(long)]
    task: Option<String>,
    /// `tool={json}` submitting a scan before the run; waits (up to 120 s)
    /// until it completes and uses its task id for `{task}`.
    #[arg(long)]
    prepare: Option<String>,
    /// Stall test: --probe latency alone, then while --stall-sessions sessions
    /// loop --heavy (both default to calls on `{task}`).
    #[arg(long)]
    stall: bool,
    /// The latency-sensitive call of the stall test.
    #[arg(long, default_value = r#"get_scan_status={"task_id":"{task}"}"#)]
    probe: String,
    /// The heavy call of the stall test.
    #[arg(
        long,
        default_value = r#"get_scan_results={"task_id":"{task}","page":0}"#
    )]
    heavy: String,
    /// Sessions looping the heavy call during the stall test.
    #[arg(long, default_value_t = 1)]
    stall_sessions: usize,
    /// A server command to spawn first (after `--`): reports the time from
    /// spawn to the first successful tool call and the idle RSS, and stops it at the end.
    #[arg(last = true, value_name = "SERVER_CMD")]
    spawn: Vec<String>,
}

/// One parsed `tool={json}` call.
#[derive(Debug, Clone)]
struct Call {
    tool: String,
    args: Value,
}

impl Call {
    fn parse(spec: &str, task: Option<&str>) -> anyhow::Result<Self> {
        let (name, args) = spec.split_once('=').unwrap_or((spec, "{}"));
        let args = match task {
            Some(t) => args.replace("{task}", t),
            None if args.contains("{task}") => {
                bail!("{name} uses {{task}}: give --task or --prepare")
            }
            None => args.to_owned(),
        };
        let args = serde_json::from_str(&args).with_context(|| format!("arguments of {name}"))?;
        Ok(Self {
            tool: name.to_owned(),
            args,
        })
    }
}

/// A tool call answered with `isError`: the server refused it (a business error such
/// as `quota_exceeded`), as opposed to a transport or protocol failure.
#[derive(Debug)]
struct Refused {
    code: String,
    content: Value,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "tool error {}: {}", self.code, self.content)
    }
}

impl std::error::Error for Refused {}

/// The `error_code` of a tool error's first text block (`"unknown"` when absent).
fn error_code(content: &Value) -> String {
    content
        .pointer("/0/text")
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str::<Value>(t).ok())
        .and_then(|v| {
            v.get("error_code")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The tokens of --tokens-file, handed out one per session in turn.
#[derive(Default)]
struct TokenRing {
    tokens: Vec<Arc<str>>,
    next: std::sync::atomic::AtomicUsize,
}

impl TokenRing {
    fn load(path: Option<&std::path::Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let tokens: Vec<Arc<str>> = text
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'))
            .map(|e| {
                e.split_once('=')
                    .map(|(_, t)| t.trim().into())
                    .with_context(|| format!("{}: not principal=token", path.display()))
            })
            .collect::<anyhow::Result<_>>()?;
        anyhow::ensure!(!tokens.is_empty(), "{}: no tokens", path.display());
        Ok(Self {
            tokens,
            next: Default::default(),
        })
    }

    /// The next session's token, or `None` (use --token) without a tokens file.
    fn take(&self) -> Option<Arc<str>> {
        if self.tokens.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Some(self.tokens[i % self.tokens.len()].clone())
    }
}

/// What one call returned.
struct Reply {
    bytes: usize,
    /// The parsed JSON-RPC response when it was small enough to parse cheaply.
    json: Option<Value>,
}

/// A reusable caller (one HTTP connection pool = one session).
#[derive(Clone)]
struct Session {
    http: reqwest::Client,
    url: Arc<str>,
    token: Option<Arc<str>>,
    ring: Arc<TokenRing>,
}

impl Session {
    fn new(cli: &Cli) -> anyhow::Result<Self> {
        let ring = TokenRing::load(cli.tokens_file.as_deref())?;
        // The start probe and --prepare need a token too when only a file gives them.
        let token = cli
            .token
            .as_deref()
            .map(Into::into)
            .or_else(|| ring.tokens.first().cloned());
        Ok(Self {
            http: reqwest::Client::new(),
            url: cli.url.as_str().into(),
            token,
            ring: Arc::new(ring),
        })
    }

    async fn call(&self, id: u64, c: &Call) -> anyhow::Result<Reply> {
        let body = serde_json::json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": c.tool, "arguments": c.args}
        });
        let mut req = self
            .http
            .post(&*self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await?;
        anyhow::ensure!(resp.status().is_success(), "HTTP {}", resp.status());
        let bytes = resp.bytes().await?;
        // Huge result pages are not parsed: that would measure this client.
        let json = if bytes.len() <= 256 * 1024 {
            let start = bytes.iter().position(|&b| b == b'{').unwrap_or(0);
            let end = bytes.iter().rposition(|&b| b == b'}').map_or(0, |e| e + 1);
            let v: Value = serde_json::from_slice(&bytes[start..end.max(start)])
                .context("response is not JSON")?;
            if let Some(e) = v.get("error") {
                bail!("JSON-RPC error: {e}");
            }
            if v.pointer("/result/isError") == Some(&Value::Bool(true)) {
                let content = v["result"]["content"].clone();
                return Err(Refused {
                    code: error_code(&content),
                    content,
                }
                .into());
            }
            Some(v)
        } else {
            None
        };
        Ok(Reply {
            bytes: bytes.len(),
            json,
        })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Per call index: latencies of successful calls, the error count (transport,
/// JSON-RPC), the largest reply, and refusals by error code.
type Samples = Vec<(Vec<Duration>, u64, usize, Refusals)>;
type Refusals = std::collections::BTreeMap<String, u64>;

/// How one call ended.
enum Outcome {
    Ok(usize),
    Refused(String),
    Failed,
}

/// `n` sessions loop over `calls` (round-robin) until `until`.
async fn drive(session: &Session, calls: &Arc<Vec<Call>>, n: usize, until: Instant) -> Samples {
    let mut tasks = Vec::new();
    for s in 0..n {
        let session = Session {
            http: reqwest::Client::new(),
            token: session.ring.take().or_else(|| session.token.clone()),
            ..session.clone()
        };
        let calls = calls.clone();
        tasks.push(tokio::spawn(async move {
            let mut out: Vec<(usize, Duration, Outcome)> = Vec::new();
            let mut i = s;
            while Instant::now() < until {
                let k = i % calls.len();
                let t = Instant::now();
                let r = session.call(i as u64, &calls[k]).await;
                let d = t.elapsed();
                let outcome = match r {
                    Ok(r) => Outcome::Ok(r.bytes),
                    Err(e) => match e.downcast::<Refused>() {
                        Ok(refused) => Outcome::Refused(refused.code),
                        Err(_) => Outcome::Failed,
                    },
                };
                out.push((k, d, outcome));
                i += 1;
            }
            out
        }));
    }
    let mut per: Samples = vec![(Vec::new(), 0, 0, Refusals::new()); calls.len()];
    for t in tasks {
        for (k, d, outcome) in t.await.unwrap_or_default() {
            match outcome {
                Outcome::Ok(bytes) => {
                    per[k].0.push(d);
                    per[k].2 = per[k].2.max(bytes);
                }
                Outcome::Refused(code) => *per[k].3.entry(code).or_insert(0) += 1,
                Outcome::Failed => per[k].1 += 1,
            }
        }
    }
    for p in &mut per {
        p.0.sort_unstable();
    }
    per
}

fn header() {
    println!(
        "{:>8} {:<22} {:>10} {:>9} {:>9} {:>9} {:>7} {:>8} {:>10}",
        "sessions", "tool", "calls/s", "p50 ms", "p99 ms", "max ms", "errors", "refused", "bytes"
    );
}

/// One result line: calls/s and latencies of the successful calls only; refusals
/// (tool errors) and failures are counted beside them, and any refusal is broken down
/// by error code on the next line, so a flood of fast refusals never reads as
/// throughput.
fn row(label: &str, tool: &str, s: &(Vec<Duration>, u64, usize, Refusals), secs: f64) {
    let (lat, errors, bytes, refusals) = s;
    let refused: u64 = refusals.values().sum();
    println!(
        "{:>8} {:<22} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>8} {:>10}",
        label,
        tool,
        lat.len() as f64 / secs,
        ms(percentile(lat, 0.50)),
        ms(percentile(lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        errors,
        refused,
        bytes
    );
    if refused > 0 {
        let total = lat.len() as u64 + errors + refused;
        let codes: Vec<String> = refusals.iter().map(|(c, n)| format!("{c}={n}")).collect();
        println!(
            "{:>8} refused {:.1}% of {total} calls: {} (not in calls/s)",
            "",
            refused as f64 * 100.0 / total as f64,
            codes.join(", ")
        );
    }
}

/// Spawn the server and wait for its first successful tool call.
async fn spawn_server(cli: &Cli, session: &Session) -> anyhow::Result<Child> {
    let (prog, args) = cli
        .spawn
        .split_first()
        .context("no server command after --")?;
    let probe = Call::parse("list_pools={}", None)?;
    let t0 = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("spawning {prog}"))?;
    let cold = loop {
        if session.call(0, &probe).await.is_ok() {
            break t0.elapsed();
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited during start: {status}");
        }
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(30), "no answer in 30 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    println!(
        "cold start (spawn -> first successful tools/call): {:.1} ms",
        ms(cold)
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, hwm) = rss_kib(child.id());
    println!(
        "idle RSS after 1 s: {:.1} MiB (peak so far {:.1} MiB)",
        rss / 1024.0,
        hwm / 1024.0
    );
    Ok(child)
}

/// VmRSS and VmHWM of a process in KiB (0 where /proc is unavailable).
fn rss_kib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Submit `spec` and wait until the task completes; returns its id.
async fn prepare(session: &Session, spec: &str) -> anyhow::Result<String> {
    let submit = Call::parse(spec, None)?;
    let reply = session.call(1, &submit).await.context("--prepare submit")?;
    let v = reply.json.context("submit reply too large")?;
    let task_id = v
        .pointer("/result/structuredContent/task_id")
        .and_then(Value::as_str)
        .context("submit reply has no structuredContent.task_id")?
        .to_owned();
    let status = Call::parse(r#"get_scan_status={"task_id":"{task}"}"#, Some(&task_id))?;
    let t0 = Instant::now();
    loop {
        let v = session.call(2, &status).await?.json.unwrap_or_default();
        match v
            .pointer("/result/structuredContent/status")
            .and_then(Value::as_str)
        {
            Some("completed") => break,
            Some("queued" | "running") => {}
            other => bail!("prepared task {task_id} ended as {other:?}"),
        }
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(120),
            "{task_id} not done in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "prepared task {task_id} (completed in {:.1} s)",
        t0.elapsed().as_secs_f64()
    );
    Ok(task_id)
}

async fn stall(cli: &Cli, session: &Session, task: Option<&str>) -> anyhow::Result<()> {
    let probe = Arc::new(vec![Call::parse(&cli.probe, task)?]);
    let heavy = Arc::new(vec![Call::parse(&cli.heavy, task)?]);
    let secs = cli.seconds;
    println!(
        "stall test: {} vs {} x {}",
        probe[0].tool, cli.stall_sessions, heavy[0].tool
    );
    header();
    let until = Instant::now() + Duration::from_secs(secs);
    let alone = drive(session, &probe, 1, until).await;
    row("alone", &probe[0].tool, &alone[0], secs as f64);
    let until = Instant::now() + Duration::from_secs(secs);
    let (loaded, heavy_out) = tokio::join!(
        drive(session, &probe, 1, until),
        drive(session, &heavy, cli.stall_sessions, until)
    );
    row("loaded", &probe[0].tool, &loaded[0], secs as f64);
    row(
        &format!("{}x", cli.stall_sessions),
        &heavy[0].tool,
        &heavy_out[0],
        secs as f64,
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let session = Session::new(&cli)?;
    let mut child = if cli.spawn.is_empty() {
        None
    } else {
        Some(spawn_server(&cli, &session).await?)
    };
    let result = run(&cli, &session).await;
    if let Some(c) = &mut child {
        let (rss, hwm) = rss_kib(c.id());
        println!(
            "server RSS at the end: {:.1} MiB (peak {:.1} MiB)",
            rss / 1024.0,
            hwm / 1024.0
        );
        // Best effort: the server may already have exited.
        let _ = c.kill();
        let _ = c.wait();
    }
    result
}

async fn run(cli: &Cli, session: &Session) -> anyhow::Result<()> {
    let task = match (&cli.task, &cli.prepare) {
        (Some(t), _) => Some(t.clone()),
        (None, Some(spec)) => Some(prepare(session, spec).await?),
        (None, None) => None,
    };
    if cli.stall {
        return stall(cli, session, task.as_deref()).await;
    }
    let calls: Vec<Call> = if cli.calls.is_empty() {
        vec![Call::parse("get_queue_status={}", None)?]
    } else {
        cli.calls
            .iter()
            .map(|c| Call::parse(c, task.as_deref()))
            .collect::<anyhow::Result<_>>()?
    };
    let groups: Vec<Vec<Call>> = if cli.each {
        calls.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![calls]
    };
    header();
    for group in groups {
        let group = Arc::new(group);
        for &n in &cli.sessions {
            let until = Instant::now() + Duration::from_secs(cli.seconds);
            let per = drive(session, &group, n, until).await;
            for (k, s) in per.iter().enumerate() {
                row(&n.to_string(), &group[k].tool, s, cli.seconds as f64);
            }
        }
    }
    Ok(())
}
