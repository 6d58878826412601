//! Real processes for the many-node test: the two binaries found next to the test
//! executable, a simulator process (`nessus-cli sim`), API nodes (`nessus-mcp --workers
//! 0`), worker processes (`nessus-cli worker`), and a small MCP client over HTTP.
//!
//! Every process writes its stderr to a log file in its data directory, so a failing run
//! can print what each node said (see [`Logs`]).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nessus_core::sim::Counters;
use nessus_queue::testkit::ChildGuard;
use serde_json::{Value, json};

/// The bearer token both API nodes accept (`server.mcp_tokens`; principal
/// `config-token-1` on both, so a task submitted on one is visible on the other).
pub(crate) const TOKEN: &str = "chaos-token-0123456789abcdef";

/// The two binaries under test, from the target directory the test itself was built in.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub(crate) mcp: PathBuf,
    pub(crate) cli: PathBuf,
}

impl Binaries {
    /// `target/<profile>/nessus-mcp` and `nessus-cli`: the test executable is
    /// `target/<profile>/deps/it-<hash>`. A package's integration tests only get its own
    /// binaries built, so these come from `cargo test --workspace` (whose nessus-mcp and
    /// nessus-cli integration tests build them first) or an explicit build.
    pub(crate) fn locate() -> Self {
        let exe = std::env::current_exe().expect("the test executable's path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable lives in target/<profile>/deps");
        let find = |name: &str| {
            let path = dir.join(name);
            assert!(
                path.is_file(),
                "{} is not built: the many-node test runs the real binaries; build them with \
                 `cargo build -p nessus-mcp -p nessus-cli` (`cargo test --workspace` builds them too)",
                path.display()
            );
            path
        };
        Self {
            mcp: find("nessus-mcp"),
            cli: find("nessus-cli"),
        }
    }
}

/// Environment every node shares (the ad-hoc credential key, object-store settings).
pub(crate) type Env = Vec<(String, String)>;

/// A command with the shared environment and none of a developer's nessus settings
/// that would override the test's config.
fn command(bin: &Path, env: &Env, log: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for var in [
        "NESSUS_CONFIG",
        "NESSUS_DATA_DIR",
        "NESSUS_REDIS_URL",
        "NESSUS_MCP_CONFIG",
        "NESSUS_MCP_TOKENS",
        "NESSUS_MCP_TOKENS_FILE",
        "NESSUS_MCP_WORKERS",
        "NESSUS_MCP_BIND",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RUST_LOG", "warn");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("open a node's log file");
    cmd.stdout(Stdio::null()).stderr(log);
    cmd
}

/// The Nessus simulator as its own process; its admin endpoints give the counters.
pub(crate) struct SimProcess {
    _process: ChildGuard,
    url: String,
}

impl SimProcess {
    /// `nessus-cli sim` on a free loopback port, scans taking `scan` each.
    pub(crate) fn start(bins: &Binaries, scan: Duration, log: &Path) -> Self {
        let mut cmd = command(&bins.cli, &Env::new(), log);
        cmd.args([
            "--json",
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--scan-duration",
        ])
        .arg(scan.as_secs_f64().to_string())
        .stdout(Stdio::piped());
        let mut process = ChildGuard::new(cmd.spawn().expect("spawn nessus-cli sim"));
        let stdout = process.child().stdout.take().expect("piped stdout");
        // The first line is `{"url": ...}`; the simulator writes nothing else to stdout.
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the simulator's URL");
        let url = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v["url"].as_str().map(str::to_owned))
            .unwrap_or_else(|| panic!("the simulator printed no URL: {line:?}"));
        Self {
            _process: process,
            url,
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `GET /_sim/counters`.
    pub(crate) async fn counters(&self, http: &reqwest::Client) -> Counters {
        http.get(format!("{}/_sim/counters", self.url))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("simulator counters")
            .json()
            .await
            .expect("counters JSON")
    }
}

/// One process of the deployment: how to start it, and the running child if any.
pub(crate) struct Node {
    pub(crate) name: String,
    cmd: Box<dyn Fn() -> Command + Send + Sync>,
    process: Option<ChildGuard>,
    pub(crate) log: PathBuf,
}

impl Node {
    /// An API node: `nessus-mcp --workers 0` on `port` (kept across restarts, as behind
    /// a load balancer).
    pub(crate) fn api(bins: &Binaries, name: &str, config: &Path, port: u16, env: &Env) -> Self {
        let (bin, config, env) = (bins.mcp.clone(), config.to_owned(), env.clone());
        let log = log_path(&config);
        let log2 = log.clone();
        Self::started(
            name,
            log,
            Box::new(move || {
                let mut cmd = command(&bin, &env, &log2);
                cmd.arg("--config")
                    .arg(&config)
                    .args(["--workers", "0", "--bind"])
                    .arg(format!("127.0.0.1:{port}"));
                cmd
            }),
        )
    }

    /// A worker process: `nessus-cli worker`; a restart gets a new `--id` (as a
    /// replacement pod would).
    pub(crate) fn worker(bins: &Binaries, name: &str, config: &Path, env: &Env) -> Self {
        let (bin, config, env) = (bins.cli.clone(), config.to_owned(), env.clone());
        let log = log_path(&config);
        let log2 = log.clone();
        let name2 = name.to_owned();
        let generation = AtomicU64::new(0);
        Self::started(
            name,
            log,
            Box::new(move || {
                let g = generation.fetch_add(1, Ordering::Relaxed);
                let mut cmd = command(&bin, &env, &log2);
                cmd.arg("--config")
                    .arg(&config)
                    .args(["worker", "--poll-interval", "0.2", "--id"])
                    .arg(format!("{name2}-{g}"));
                cmd
            }),
        )
    }

    fn started(name: &str, log: PathBuf, cmd: Box<dyn Fn() -> Command + Send + Sync>) -> Self {
        let mut node = Self {
            name: name.to_owned(),
            cmd,
            process: None,
            log,
        };
        node.start();
        node
    }

    /// Starts the process (again).
    pub(crate) fn start(&mut self) {
        assert!(self.process.is_none(), "{} is already running", self.name);
        let child = (self.cmd)()
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        self.process = Some(ChildGuard::new(child));
    }

    /// SIGKILL, as a crash or an OOM kill would.
    pub(crate) fn kill9(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Panics if the process exited on its own (a node must not die of the faults).
    pub(crate) fn assert_alive(&mut self) {
        if let Some(p) = &mut self.process
            && let Ok(Some(status)) = p.child().try_wait()
        {
            panic!(
                "{} exited by itself ({status}); its log:\n{}",
                self.name,
                tail(&self.log, 40)
            );
        }
    }
}

fn log_path(config: &Path) -> PathBuf {
    config.with_file_name("node.log")
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Prints every node's log tail when the test panics (the temp dirs go away with it).
pub(crate) struct Logs(pub(crate) Vec<(String, PathBuf)>);

impl Drop for Logs {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (name, path) in &self.0 {
                eprintln!(
                    "----- {name} ({}) -----\n{}",
                    path.display(),
                    tail(path, 30)
                );
            }
        }
    }
}

/// A minimal MCP client: JSON-RPC over stateless streamable HTTP with JSON answers.
pub(crate) struct Mcp {
    http: reqwest::Client,
    pub(crate) base: String,
    next_id: AtomicU64,
}

/// Why a tool call gave no result.
#[derive(Debug)]
pub(crate) enum CallError {
    /// No answer: connection refused or reset, a timeout, or a non-200 status.
    Transport(String),
    /// A JSON-RPC error, or a business error (`error_code`, message).
    Tool(String, String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "no answer: {e}"),
            Self::Tool(code, message) => write!(f, "{code}: {message}"),
        }
    }
}

impl Mcp {
    pub(crate) fn new(http: &reqwest::Client, port: u16) -> Self {
        Self {
            http: http.clone(),
            base: format!("http://127.0.0.1:{port}"),
            next_id: AtomicU64::new(1),
        }
    }

    async fn rpc(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self
            .http
            .post(format!("{}/mcp", self.base))
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(CallError::Transport(format!("HTTP {status}")));
        }
        let v: Value = resp
            .json()
            .await
            .map_err(|e| CallError::Transport(e.to_string()))?;
        if let Some(e) = v.get("error") {
            return Err(CallError::Tool("jsonrpc".to_owned(), e.to_string()));
        }
        Ok(v["result"].clone())
    }

    /// The MCP handshake (the server is stateless: it only proves the node answers MCP).
    pub(crate) async fn initialize(&self) -> Result<(), CallError> {
        let params = json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "chaos-test", "version": "1"},
        });
        let r = self.rpc("initialize", params).await?;
        assert_eq!(r["serverInfo"]["name"], "nessus-mcp", "initialize: {r}");
        Ok(())
    }

    /// `tools/call`; the structured content, or the business error it carries
    /// (the default, predecessor-compatible output answers errors as normal results).
    pub(crate) async fn call(&self, tool: &str, arguments: Value) -> Result<Value, CallError> {
        let r = self
            .rpc("tools/call", json!({"name": tool, "arguments": arguments}))
            .await?;
        let content = r["structuredContent"].clone();
        if r["isError"] == true || content.get("error").is_some() {
            return Err(CallError::Tool(
                content["error_code"].as_str().unwrap_or("?").to_owned(),
                content["error"]
                    .as_str()
                    .unwrap_or(&r.to_string())
                    .to_owned(),
            ));
        }
        Ok(content)
    }

    /// `GET /ready` answered 200.
    pub(crate) async fn ready(&self) -> bool {
        matches!(
            self.http.get(format!("{}/ready", self.base)).send().await,
            Ok(r) if r.status().is_success()
        )
    }

    /// Waits (at most `limit`) until the node is ready and answers `initialize`.
    pub(crate) async fn wait_ready(&self, limit: Duration) {
        let start = Instant::now();
        loop {
            if self.ready().await && self.initialize().await.is_ok() {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "{} not ready after {limit:?}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
