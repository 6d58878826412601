//! `nessus-mcp`: the MCP server agents talk to.
//!
//! Wiring only: parse arguments, load the config, open the queue, start the
//! embedded workers and serve HTTP or stdio. `--demo` adds an in-process
//! Nessus simulator and a generated config so everything runs with nothing
//! installed.

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use nessus_core::Config;
use nessus_mcp::{
    App, HttpOptions, HttpServer, LogFormat, OAuthVerifier, OriginPolicy, Principal, TokenSet,
};
use nessus_queue::{ConfigDirectory, SchemaIngest};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;

/// Queue-backed Tenable Nessus scanning for AI agents (MCP server).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// scanners.yaml: pools, instances, target policies, credential profiles, server and queue settings.
    #[arg(long, env = "NESSUS_MCP_CONFIG", default_value = "scanners.yaml")]
    config: PathBuf,
    /// Run a self-contained demo: an in-process Nessus simulator, SQLite under
    /// --data-dir and a pool that admits only the demo targets.
    #[arg(long)]
    demo: bool,
    /// Data directory for --demo (default: a directory under the system temp dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Embedded worker loops (each runs up to 16 scans at once); 0 = API-only node.
    #[arg(long, env = "NESSUS_MCP_WORKERS", default_value_t = 1)]
    workers: usize,
    /// Serve MCP on stdin/stdout instead of HTTP (logs go to stderr).
    #[arg(long)]
    stdio: bool,
    /// Address to listen on.
    #[arg(long, env = "NESSUS_MCP_BIND", default_value = "127.0.0.1:8836")]
    bind: SocketAddr,
    /// Bearer tokens as `principal=token[,principal=token...]`.
    #[arg(long, env = "NESSUS_MCP_TOKENS", hide_env_values = true)]
    tokens: Option<String>,
    /// File with one `principal=token` per line.
    #[arg(long, env = "NESSUS_MCP_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,
    /// Serve without a bearer token (refused unless bound to loopback).
    #[arg(long)]
    no_auth: bool,
    /// Host names accepted in the Host header (repeatable). Default: loopback names.
    #[arg(
        long = "allowed-host",
        env = "NESSUS_MCP_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    allowed_hosts: Vec<String>,
    /// Origins accepted in the Origin header (repeatable). Default: http(s) on an allowed host.
    #[arg(
        long = "allowed-origin",
        env = "NESSUS_MCP_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Maximum request body in bytes (413 above it, chunked bodies included).
    #[arg(long, env = "NESSUS_MCP_MAX_BODY_BYTES", default_value_t = nessus_mcp::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Serve /metrics on this address only, instead of on --bind.
    #[arg(long, env = "NESSUS_MCP_METRICS_BIND")]
    metrics_bind: Option<SocketAddr>,
    /// Require the bearer token on /metrics.
    #[arg(long, env = "NESSUS_MCP_METRICS_AUTH")]
    metrics_auth: bool,
    /// Cap on concurrently open connections per listener; at the cap the oldest idle
    /// or still-sending connection makes room, else the new one is closed at once.
    /// Default: 8192, lowered to fit the open-files limit.
    #[arg(long, env = "NESSUS_MCP_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Seconds a client has to send a complete request head (also the idle keep-alive limit).
    #[arg(long, env = "NESSUS_MCP_HEADER_READ_TIMEOUT_SECS", default_value_t = nessus_mcp::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    header_read_timeout_secs: u64,
    /// Seconds a request body has to arrive once its head has (408 after).
    #[arg(long, env = "NESSUS_MCP_BODY_READ_TIMEOUT_SECS", default_value_t = nessus_mcp::DEFAULT_BODY_READ_TIMEOUT.as_secs())]
    body_read_timeout_secs: u64,
    /// Log format.
    #[arg(
        long,
        value_enum,
        env = "NESSUS_MCP_LOG_FORMAT",
        default_value = "json"
    )]
    log_format: LogFormat,
    /// Directory `import_scan` may read .nessus files from (default: DATA_DIR/import).
    #[arg(long, env = "NESSUS_MCP_IMPORT_DIR")]
    import_dir: Option<PathBuf>,
    /// Demo: simulated scan duration in seconds.
    #[arg(long, default_value_t = 5, hide = true)]
    demo_scan_secs: u64,
}

/// Targets the demo pool admits (TEST-NET-1, never routed on the Internet).
const DEMO_TARGETS: &str = "192.0.2.10, 192.0.2.20, 192.0.2.32/29";

struct Demo {
    sim: nessus_core::sim::SimHandle,
    config_path: PathBuf,
}

async fn start_demo(cli: &Cli) -> anyhow::Result<Demo> {
    let data_dir = match &cli.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join("nessus-mcp-demo"),
    };
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating the demo data dir {}", data_dir.display()))?;
    let data_dir = data_dir.canonicalize().unwrap_or(data_dir);
    // import_scan reads files from here; created so the demo can import at once.
    std::fs::create_dir_all(data_dir.join("import"))
        .with_context(|| format!("creating {}/import", data_dir.display()))?;
    let sim = nessus_core::sim::Simulator::builder()
        .scan_duration(Duration::from_secs(cli.demo_scan_secs))
        .require_api_keys("demo-access-key", "demo-secret-key")
        .start("127.0.0.1:0")
        .await
        .context("starting the Nessus simulator")?;
    let yaml = format!(
        r#"# Generated by `nessus-mcp --demo`: one pool backed by the in-process simulator.
server:
  data_dir: "{data}"
  default_pool: nessus
queue:
  backend: sqlite
  sqlite_path: "{data}/queue.sqlite3"
nessus:
  target_policy:
    allow: [192.0.2.0/24]
  instances:
    - instance_id: sim1
      name: Nessus simulator
      url: "{url}"
      access_key: demo-access-key
      secret_key: demo-secret-key
      max_concurrent_scans: 4
"#,
        data = data_dir.display(),
        url = sim.base_url(),
    );
    let config_path = data_dir.join("scanners.yaml");
    std::fs::write(&config_path, yaml)
        .with_context(|| format!("writing {}", config_path.display()))?;
    Ok(Demo { sim, config_path })
}

fn load_tokens(cli: &Cli, config: &Config) -> anyhow::Result<TokenSet> {
    let mut tokens = TokenSet::new();
    if let Some(spec) = &cli.tokens {
        tokens
            .extend_from_spec(spec)
            .context("NESSUS_MCP_TOKENS / --tokens")?;
    }
    if let Some(path) = &cli.tokens_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading tokens file {}", path.display()))?;
        tokens
            .extend_from_spec(&text)
            .with_context(|| format!("tokens file {}", path.display()))?;
    }
    for (i, t) in config.server().mcp_tokens().iter().enumerate() {
        tokens
            .insert(
                Principal::new(format!("config-token-{}", i + 1)),
                t.secret().clone(),
            )
            .context("server.mcp_tokens in the config")?;
    }
    Ok(tokens)
}

fn random_token() -> SecretString {
    let bytes: [u8; 24] = rand::random();
    SecretString::from(hex::encode(bytes))
}

/// Blocking threads at most (tokio's default is 512). Database reads, results pages and
/// ingests run there; under 50 busy sessions the pool used to grow to ~100 threads
/// that mostly waited for one of the few SQLite read connections, each thread adding
/// its stack and malloc arena to the resident set. 32 still leaves room for several
/// long ingests beside the short reads.
const MAX_BLOCKING_THREADS: usize = 32;

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nessus_mcp::init_logging(cli.log_format);
    let demo = if cli.demo {
        Some(start_demo(&cli).await?)
    } else {
        None
    };
    let config_path = demo
        .as_ref()
        .map_or_else(|| cli.config.clone(), |d| d.config_path.clone());
    let config = Config::load(&config_path)
        .with_context(|| format!("loading config {}", config_path.display()))?;
    for w in config.warnings() {
        tracing::warn!(warning = %w, "config");
    }
    let mut app = App::open(config).await?;
    if let Some(dir) = &cli.import_dir {
        app = app.with_import_dir(dir);
    }
    let app = Arc::new(app);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every API node runs the scheduler (no leader: each slot is claimed atomically
    // in the queue backend, see nessus_queue::service::schedules).
    let scheduler = {
        let app = app.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move { app.service().run_scheduler(stop).await })
    };
    let (workers, directory) = start_workers(&app, &cli, demo.as_ref(), stop_rx)?;
    spawn_signal_handlers(app.clone(), config_path.clone(), directory);

    if cli.stdio {
        nessus_mcp::serve_stdio(app.clone()).await?;
    } else {
        let mut tokens = load_tokens(&cli, &app.config())?;
        let mut demo_token = None;
        if demo.is_some() && tokens.is_empty() && !cli.no_auth {
            let t = random_token();
            tokens.insert(Principal::new("demo"), t.clone())?;
            demo_token = Some(t);
        }
        // auth.oauth is read at start (a reload keeps the provider in force).
        let oauth = app
            .config()
            .auth()
            .oauth()
            .cloned()
            .map(|s| Arc::new(OAuthVerifier::new(s)));
        if let Some(o) = &oauth {
            tracing::info!(issuer = %o.settings().issuer(), audience = %o.settings().audience(),
                "accepting OAuth access tokens");
        }
        if tokens.is_empty() && oauth.is_none() && !cli.no_auth {
            anyhow::bail!(
                "no bearer token configured: set NESSUS_MCP_TOKENS=principal=token (or server.mcp_tokens \
                 in the config), or pass --no-auth to serve token-less on a loopback address"
            );
        }
        let mut origin_policy = OriginPolicy::default();
        if !cli.allowed_hosts.is_empty() {
            origin_policy.allowed_hosts = cli.allowed_hosts.clone();
        }
        origin_policy.allowed_origins = cli.allowed_origins.clone();
        let opts = HttpOptions {
            bind: cli.bind,
            tokens,
            oauth,
            origin_policy,
            max_body_bytes: cli.max_body_bytes,
            metrics_bind: cli.metrics_bind,
            metrics_auth: cli.metrics_auth,
            max_connections: nessus_mcp::connection_cap(cli.max_connections),
            header_read_timeout: Duration::from_secs(cli.header_read_timeout_secs.max(1)),
            body_read_timeout: Duration::from_secs(cli.body_read_timeout_secs.max(1)),
        };
        let auth = match (&demo_token, opts.tokens.is_empty() && opts.oauth.is_none()) {
            (Some(t), _) => BannerAuth::Demo(t.clone()),
            (None, true) => BannerAuth::None,
            (None, false) => BannerAuth::Configured,
        };
        let server = HttpServer::start(app.clone(), opts).await?;
        if demo.is_some() {
            print_banner(server.local_addr(), &auth);
        }
        server.wait().await?;
    }
    // Drain: workers stop claiming, finish their current step and release leases.
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    let _ = scheduler.await;
    if let Some(d) = demo {
        d.sim.shutdown().await;
    }
    Ok(())
}

/// Which credentials the demo banner describes.
enum BannerAuth {
    /// A token generated for this run (printed: it exists only for the demo).
    Demo(SecretString),
    /// Tokens from NESSUS_MCP_TOKENS, --tokens-file or the config: required, never printed.
    Configured,
    /// `--no-auth`.
    None,
}

/// `.ci/run` and `.ci/interop/run.sh` parse the `MCP URL: `, `demo targets: ` and
/// `Authorization: Bearer <token>` lines: keep their formats.
fn print_banner(addr: SocketAddr, auth: &BannerAuth) {
    let url = format!("http://{addr}/mcp");
    println!("nessus-mcp demo is running (Ctrl-C to stop)");
    println!("MCP URL: {url}");
    match auth {
        BannerAuth::Demo(t) => {
            let t = t.expose_secret();
            println!("Authorization: Bearer {t}");
            println!("demo targets: {DEMO_TARGETS}");
            println!(
                "claude mcp add --transport http nessus {url} --header \"Authorization: Bearer {t}\""
            );
        }
        BannerAuth::Configured => {
            println!(
                "Authorization: required: send one of the tokens configured in NESSUS_MCP_TOKENS, \
                 --tokens-file or server.mcp_tokens (not shown)"
            );
            println!("demo targets: {DEMO_TARGETS}");
        }
        BannerAuth::None => {
            println!("Authorization: none (token-less loopback mode)");
            println!("demo targets: {DEMO_TARGETS}");
            println!("claude mcp add --transport http nessus {url}");
        }
    }
}

/// The embedded workers' tasks, and the directory they share (none with `--workers 0`).
type Workers = (
    Vec<tokio::task::JoinHandle<()>>,
    Option<Arc<ConfigDirectory>>,
);

/// Starts the embedded workers; returns them and their directory (which SIGHUP
/// reloads, so their claim-time target check sees the new policies too).
fn start_workers(
    app: &Arc<App>,
    cli: &Cli,
    demo: Option<&Demo>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Workers> {
    if cli.workers == 0 {
        tracing::info!("API-only node: no embedded workers (--workers 0)");
        return Ok((Vec::new(), None));
    }
    let config = app.config();
    let ca = demo.and_then(|d| d.sim.ca_pem()).map(str::as_bytes);
    let directory = Arc::new(
        ConfigDirectory::new(config.clone(), ca)
            .context("building scanner clients from the config")?,
    );
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    let mut handles = Vec::new();
    for i in 0..cli.workers {
        let cfg =
            ConfigDirectory::worker_config(&config, format!("{host}-{}-{i}", std::process::id()))
                .results_store(app.service().results_store());
        let worker = nessus_queue::Worker::new(
            app.queue().clone(),
            cfg,
            directory.clone(),
            Arc::new(SchemaIngest),
        );
        let stop = stop.clone();
        handles.push(tokio::spawn(async move {
            if let Err(e) = worker.run(stop).await {
                tracing::error!(error = %e, "embedded worker stopped with an error");
            }
        }));
    }
    tracing::info!(workers = cli.workers, "embedded workers started");
    Ok((handles, Some(directory)))
}

/// SIGTERM / ctrl-c: stop accepting work and drain. SIGHUP: reload the config.
fn spawn_signal_handlers(
    app: Arc<App>,
    config_path: PathBuf,
    directory: Option<Arc<ConfigDirectory>>,
) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let reload_app = app.clone();
        tokio::spawn(async move {
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            while hup.recv().await.is_some() {
                match Config::load(&config_path) {
                    Ok(c) => {
                        if let Some(d) = &directory {
                            d.reload(Arc::new(c.clone()));
                        }
                        reload_app.reload(c);
                        tracing::info!(config = %config_path.display(), "config reloaded (pools, policies, credential profiles); running scans keep their slots");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "config reload failed; keeping the previous config")
                    }
                }
            }
        });
    }
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut term) = signal(SignalKind::terminate()) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested: draining");
        app.shutdown_token().cancel();
    });
}
