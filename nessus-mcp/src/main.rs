//! `nessus-mcp`: the MCP server agents talk to.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::Parser;
use nessus_mcp::{App, HttpOptions, HttpServer, LogFormat, OriginPolicy, TokenSet};

/// Queue-backed Tenable Nessus scanning for AI agents (MCP server).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
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
    /// Maximum request body in bytes.
    #[arg(long, default_value_t = nessus_mcp::DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Log format.
    #[arg(
        long,
        value_enum,
        env = "NESSUS_MCP_LOG_FORMAT",
        default_value = "json"
    )]
    log_format: LogFormat,
}

fn load_tokens(cli: &Cli) -> anyhow::Result<TokenSet> {
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
    Ok(tokens)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    nessus_mcp::init_logging(cli.log_format);
    let app = Arc::new(App::new());
    spawn_signal_handlers(app.clone());
    if cli.stdio {
        nessus_mcp::serve_stdio(app).await?;
        return Ok(());
    }
    let mut origin_policy = OriginPolicy::default();
    if !cli.allowed_hosts.is_empty() {
        origin_policy.allowed_hosts = cli.allowed_hosts.clone();
    }
    origin_policy.allowed_origins = cli.allowed_origins.clone();
    let opts = HttpOptions {
        bind: cli.bind,
        tokens: load_tokens(&cli)?,
        origin_policy,
        max_body_bytes: cli.max_body_bytes,
    };
    let server = HttpServer::start(app, opts).await?;
    server.wait().await?;
    Ok(())
}

/// SIGTERM / ctrl-c: stop accepting work and drain.
fn spawn_signal_handlers(app: Arc<App>) {
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
