//! Starts a complete server for one test.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use nessus_core::{Config, sim::SimHandle};
use nessus_mcp::{App, HttpOptions, HttpServer, Principal, TokenSet};
use nessus_queue::{ConfigDirectory, SchemaIngest};
use rmcp::{
    RoleClient, ServiceExt,
    model::{CallToolRequestParams, CallToolResult},
    service::RunningService,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use secrecy::SecretString;
use serde_json::{Map, Value};
use tokio::sync::watch;

/// The bearer token every harness accepts (principal `alice`).
pub(crate) const TOKEN: &str = "test-token-alice-0123456789";
/// A second principal's token.
pub(crate) const OTHER_TOKEN: &str = "test-token-bob-0123456789ab";
/// Targets inside the test pool's policy.
pub(crate) const TARGET: &str = "192.0.2.10";

pub(crate) struct Harness {
    pub(crate) addr: SocketAddr,
    pub(crate) sim: Option<SimHandle>,
    pub(crate) _dir: tempfile::TempDir,
    server: Option<HttpServer>,
    stop: watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

/// Writes a config for a simulator at `url` into `dir`.
pub(crate) fn write_config(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    write_config_with(dir, url, None)
}

/// Writes a config for a simulator at `url` into `dir`, with a Redis queue if given.
pub(crate) fn write_config_with(
    dir: &std::path::Path,
    url: &str,
    redis: Option<&str>,
) -> std::path::PathBuf {
    write_config_opts(dir, url, redis, "")
}

/// `server_extra`: more `server:` lines, each indented by two spaces.
pub(crate) fn write_config_opts(
    dir: &std::path::Path,
    url: &str,
    redis: Option<&str>,
    server_extra: &str,
) -> std::path::PathBuf {
    let data = dir.display();
    let queue = redis
        .map(|r| format!("queue:\n  backend: redis\n  redis_url: \"{r}\"\n"))
        .unwrap_or_default();
    let yaml = format!(
        r#"server:
  data_dir: "{data}"
  default_pool: nessus
{server_extra}{queue}nessus:
  target_policy:
    allow: [192.0.2.0/24]
  instances:
    - instance_id: sim1
      url: "{url}"
      access_key: k-access
      secret_key: k-secret
      max_concurrent_scans: 2
"#
    );
    let path = dir.join("scanners.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

impl Harness {
    /// A server with `workers` embedded workers over a simulator whose scans take `scan`.
    pub(crate) async fn start(workers: usize, scan: Duration) -> Self {
        Self::start_with(workers, scan, None).await
    }

    /// As [`Harness::start`], with the queue on Redis at `redis` when given.
    pub(crate) async fn start_with(workers: usize, scan: Duration, redis: Option<&str>) -> Self {
        Self::start_opts(workers, scan, redis, "").await
    }

    /// With `server.tool_output: typed`.
    pub(crate) async fn start_typed(workers: usize, scan: Duration) -> Self {
        Self::start_opts(workers, scan, None, "  tool_output: typed\n").await
    }

    pub(crate) async fn start_opts(
        workers: usize,
        scan: Duration,
        redis: Option<&str>,
        server_extra: &str,
    ) -> Self {
        Self::start_custom(workers, scan, redis, server_extra, "", |_, _| {}).await
    }

    /// The general form: `top_extra` is appended to the config file (top-level
    /// sections), and `customize` adjusts the HTTP options once the config is loaded.
    pub(crate) async fn start_custom(
        workers: usize,
        scan: Duration,
        redis: Option<&str>,
        server_extra: &str,
        top_extra: &str,
        customize: impl FnOnce(&Config, &mut HttpOptions),
    ) -> Self {
        Self::start_pool(workers, scan, redis, server_extra, top_extra, "", customize).await
    }

    /// As [`Harness::start_custom`], with `pool_extra` added to the `nessus` pool's
    /// section (lines indented by two spaces, e.g. an `approval:` block).
    pub(crate) async fn start_pool(
        workers: usize,
        scan: Duration,
        redis: Option<&str>,
        server_extra: &str,
        top_extra: &str,
        pool_extra: &str,
        customize: impl FnOnce(&Config, &mut HttpOptions),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let sim = nessus_core::sim::Simulator::builder()
            .scan_duration(scan)
            .start("127.0.0.1:0")
            .await
            .expect("simulator");
        let config_path = write_config_opts(dir.path(), sim.base_url(), redis, server_extra);
        if !top_extra.is_empty() || !pool_extra.is_empty() {
            let mut text = std::fs::read_to_string(&config_path).expect("read config");
            text = text.replacen(
                "nessus:\n  target_policy:",
                &format!("nessus:\n{pool_extra}  target_policy:"),
                1,
            );
            text.push_str(top_extra);
            std::fs::write(&config_path, text).expect("write config");
        }
        let config = Config::load(&config_path).expect("config");
        let app = Arc::new(App::open(config).await.expect("app"));
        let (stop, rx) = watch::channel(false);
        let mut handles = Vec::new();
        if workers > 0 {
            let cfg = app.config();
            let directory = Arc::new(ConfigDirectory::new(cfg.clone(), None).expect("directory"));
            for i in 0..workers {
                let mut wc = ConfigDirectory::worker_config(&cfg, format!("test-{i}"));
                wc = wc.polling(Duration::from_millis(100), Duration::from_millis(300));
                let w = nessus_queue::Worker::new(
                    app.queue().clone(),
                    wc,
                    directory.clone(),
                    Arc::new(SchemaIngest),
                );
                let rx = rx.clone();
                handles.push(tokio::spawn(async move {
                    let _ = w.run(rx).await;
                }));
            }
        }
        let mut tokens = TokenSet::new();
        tokens
            .insert(Principal::new("alice"), SecretString::from(TOKEN))
            .expect("token");
        tokens
            .insert(Principal::new("bob"), SecretString::from(OTHER_TOKEN))
            .expect("token");
        let mut opts = HttpOptions {
            bind: "127.0.0.1:0".parse().expect("addr"),
            tokens,
            ..HttpOptions::default()
        };
        customize(&app.config(), &mut opts);
        let server = HttpServer::start(app, opts).await.expect("server");
        Self {
            addr: server.local_addr(),
            sim: Some(sim),
            _dir: dir,
            server: Some(server),
            stop,
            workers: handles,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// An rmcp client authenticated as `token`.
    pub(crate) async fn client(&self, token: &str) -> RunningService<RoleClient, ()> {
        let cfg = StreamableHttpClientTransportConfig::with_uri(self.url()).auth_header(token);
        ().serve(StreamableHttpClientTransport::from_config(cfg))
            .await
            .expect("client connects")
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.stop.send(true);
        for w in self.workers.drain(..) {
            let _ = w.await;
        }
        if let Some(s) = self.server.take() {
            let _ = s.shutdown().await;
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
    }
}

pub(crate) fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Calls a tool and returns the raw result.
pub(crate) async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    arguments: Value,
) -> CallToolResult {
    client
        .call_tool(CallToolRequestParams::new(name).with_arguments(args(arguments)))
        .await
        .expect("tools/call answered")
}

/// Calls a tool that must succeed and returns its structured content.
pub(crate) async fn call_ok(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    arguments: Value,
) -> Value {
    let r = call(client, name, arguments).await;
    assert_ne!(r.is_error, Some(true), "{name} failed: {:?}", r.content);
    let structured = r.structured_content.expect("structured content");
    // In `compatible` mode a business error is a normal result with an `error` key.
    assert!(
        structured.get("error").is_none(),
        "{name} answered an error: {structured}"
    );
    structured
}

/// The predecessor's nine tools (seed-spec §2.3), written out here rather than read from
/// the server so the tests state the contract independently.
pub(crate) const PREDECESSOR_TOOLS: [&str; 9] = [
    "run_untrusted_scan",
    "run_authenticated_scan",
    "get_scan_status",
    "get_scan_results",
    "list_scanners",
    "list_pools",
    "get_pool_status",
    "get_queue_status",
    "list_tasks",
];

/// The error envelope (`error`, `error_code`, `hint`) of a business error in
/// the default `server.tool_output: compatible`: the predecessor's tools
/// answer it as a normal result (structured content, or fastmcp's
/// `{"result": text}` wrap for get_scan_results), the new tools as `isError`.
pub(crate) fn business_error(tool: &str, r: &CallToolResult) -> Value {
    let body: Value = serde_json::from_str(&text(r)).expect("the text is the error envelope");
    assert!(
        body["error"].is_string() && body["error_code"].is_string(),
        "{tool}: {body}"
    );
    if PREDECESSOR_TOOLS.contains(&tool) {
        assert_ne!(r.is_error, Some(true), "{tool}: a normal result");
        let structured = r.structured_content.clone().expect("structured content");
        if tool == "get_scan_results" {
            assert_eq!(structured, serde_json::json!({"result": text(r)}), "{tool}");
        } else {
            assert_eq!(structured, body, "{tool}");
        }
    } else {
        assert_eq!(r.is_error, Some(true), "{tool}: {body}");
    }
    body
}

/// The text of the first content block.
pub(crate) fn text(r: &CallToolResult) -> String {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// Polls get_scan_status until the status is one of `want` (or 60 s pass).
pub(crate) async fn wait_status(
    client: &RunningService<RoleClient, ()>,
    task_id: &str,
    want: &[&str],
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let st = call_ok(
            client,
            "get_scan_status",
            serde_json::json!({ "task_id": task_id }),
        )
        .await;
        let s = st["status"].as_str().unwrap_or_default().to_owned();
        if want.contains(&s.as_str()) {
            return st;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task {task_id} still {s}, wanted {want:?}: {st}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
