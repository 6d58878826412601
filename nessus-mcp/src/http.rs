//! The HTTP server: `/mcp` (streamable HTTP, stateless), `/health`, `/ready`,
//! `/metrics`, with Host/Origin validation, bearer auth and a body limit.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    app::App,
    auth::{Principal, TokenSet, require_bearer},
    guard::{OriginPolicy, check_host_and_origin},
    server::NessusMcp,
    telemetry,
};

/// Default cap on a request body: tool arguments are small; an inline
/// `.nessus` import is the only big payload and has its own limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How the HTTP server listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to bind; loopback by default.
    pub bind: SocketAddr,
    /// Accepted bearer tokens; empty = token-less (loopback only).
    pub tokens: TokenSet,
    /// Host/Origin validation.
    pub origin_policy: OriginPolicy,
    /// Maximum request body in bytes.
    pub max_body_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8836)),
            tokens: TokenSet::new(),
            origin_policy: OriginPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// A running HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Bind and start serving `app`. Refuses a token-less server on a
    /// non-loopback address.
    pub async fn start(app: Arc<App>, opts: HttpOptions) -> Result<Self, Error> {
        // Install the recorder before the first request so no early count is lost.
        telemetry::metrics_handle();
        if opts.tokens.is_empty() && !opts.bind.ip().is_loopback() {
            return Err(Error::TokenlessOnPublicAddress { bind: opts.bind });
        }
        if opts.tokens.is_empty() {
            tracing::warn!(
                bind = %opts.bind,
                "NO AUTHENTICATION: no bearer token configured, so any local process can \
                 run scans through this server. Set NESSUS_MCP_TOKENS=principal=token to require one."
            );
        }
        let listener = tokio::net::TcpListener::bind(opts.bind)
            .await
            .map_err(|source| Error::Bind {
                addr: opts.bind,
                source: Box::new(source),
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: opts.bind,
            source: Box::new(source),
        })?;
        let shutdown = app.shutdown_token().child_token();
        let router = router(app, &opts, shutdown.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        tracing::info!(%addr, "MCP endpoint listening at http://{addr}/mcp");
        Ok(Self {
            addr,
            shutdown,
            task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting requests and wait for in-flight ones to finish.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Wait until the server stops (after its app's shutdown token fires).
    pub async fn wait(self) -> Result<(), Error> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::Serve(Box::new(e))),
            Err(e) => Err(Error::Serve(Box::new(e))),
        }
    }
}

/// Build the axum router (exposed for in-process tests).
pub fn router(app: Arc<App>, opts: &HttpOptions, shutdown: CancellationToken) -> Router {
    let mcp_cfg = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_allowed_hosts(opts.origin_policy.allowed_hosts.clone())
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_cancellation_token(shutdown);
    let mcp_cfg = if opts.origin_policy.allowed_hosts.is_empty() {
        mcp_cfg.disable_allowed_hosts()
    } else {
        mcp_cfg
    };
    let handler_app = app.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(NessusMcp::new(handler_app.clone(), Principal::anonymous())),
        Arc::new(NeverSessionManager::default()),
        mcp_cfg,
    );
    let tokens = Arc::new(opts.tokens.clone());
    let policy = Arc::new(opts.origin_policy.clone());
    // Layers run outside-in: Host/Origin first (403), then auth (401), then
    // the body limit, then rmcp.
    let mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            opts.max_body_bytes,
        ))
        .layer(middleware::from_fn_with_state(tokens, require_bearer))
        .layer(middleware::from_fn_with_state(
            policy,
            check_host_and_origin,
        ));
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics_text))
        .with_state(app)
        .merge(mcp_routes)
        .layer(middleware::from_fn(record_http))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

async fn record_http(req: Request, next: Next) -> Response {
    let path = req.extensions().get::<MatchedPath>().map_or_else(
        || normalize_path(req.uri().path()),
        |p| p.as_str().to_owned(),
    );
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(telemetry::HTTP_REQUESTS, "path" => path.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(telemetry::HTTP_DURATION, "path" => path)
        .record(started.elapsed().as_secs_f64());
    resp
}

/// Keep label cardinality bounded: unknown paths collapse to `other`.
fn normalize_path(path: &str) -> String {
    match path {
        "/mcp" | "/mcp/" => "/mcp".to_owned(),
        "/health" | "/ready" | "/metrics" => path.to_owned(),
        _ => "other".to_owned(),
    }
}

async fn health(State(app): State<Arc<App>>) -> Response {
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": app.uptime().as_secs(),
    });
    axum::Json(body).into_response()
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    let report = app.readiness().await;
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(report)).into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    app.refresh_gauges().await;
    let body = telemetry::metrics_handle().render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
