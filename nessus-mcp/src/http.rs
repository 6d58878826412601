//! The HTTP server: `/mcp` (streamable HTTP, stateless), `/health`, `/ready`,
//! `/metrics` (optionally on its own listener and/or behind the token), with
//! Host/Origin validation on every path, bearer auth, body limits and the
//! connection limits of [`crate::listener`].

use std::{net::SocketAddr, sync::Arc, time::Duration, time::Instant};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::never::NeverSessionManager,
};
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    app::App,
    auth::{AuthState, Principal, TokenSet, require_bearer},
    body::{BodyLimits, buffer_mcp_body},
    guard::{OriginPolicy, check_host_and_origin},
    listener::{self, ConnLimits},
    oauth::OAuthVerifier,
    server::NessusMcp,
    telemetry,
};

pub use crate::listener::{DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

/// RFC 9728's well-known path; the resource's own path follows it (`…/mcp`).
pub(crate) const PROTECTED_RESOURCE_PATH: &str = "/.well-known/oauth-protected-resource";

/// Default cap on a request body: tool arguments are small; an inline
/// `.nessus` import is the only big payload and has its own limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default time a request body has to arrive once its head has.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How the HTTP server listens and whom it lets in.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Address to bind; loopback by default.
    pub bind: SocketAddr,
    /// Accepted bearer tokens; empty (and no `oauth`) = token-less (loopback only).
    pub tokens: TokenSet,
    /// Accept the access tokens of an OAuth provider (`auth.oauth`), beside `tokens`.
    pub oauth: Option<Arc<OAuthVerifier>>,
    /// Host/Origin validation.
    pub origin_policy: OriginPolicy,
    /// Maximum request body in bytes.
    pub max_body_bytes: usize,
    /// Serve `/metrics` on this address only (not on `bind`).
    pub metrics_bind: Option<SocketAddr>,
    /// Require a bearer token on `/metrics`.
    pub metrics_auth: bool,
    /// Cap on concurrently open connections per listener; at the cap the oldest idle
    /// or still-sending connection makes room, else the new one is closed at once.
    pub max_connections: usize,
    /// Time a client has to send a complete request head; also the longest a
    /// keep-alive connection stays idle.
    pub header_read_timeout: Duration,
    /// Time a request body has to arrive (408 after it).
    pub body_read_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8836)),
            tokens: TokenSet::new(),
            oauth: None,
            origin_policy: OriginPolicy::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            metrics_bind: None,
            metrics_auth: false,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
        }
    }
}

/// A running HTTP server.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let to_err = |source: std::io::Error| Error::Bind {
        addr,
        source: Box::new(source),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(to_err)?;
    let local = listener.local_addr().map_err(to_err)?;
    Ok((listener, local))
}

impl HttpServer {
    /// Bind and start serving `app`. Refuses a token-less server on a
    /// non-loopback address.
    pub async fn start(app: Arc<App>, opts: HttpOptions) -> Result<Self, Error> {
        // Install the recorder before the first request so no early count is lost.
        telemetry::metrics_handle();
        let open = opts.tokens.is_empty() && opts.oauth.is_none();
        if open && !opts.bind.ip().is_loopback() {
            return Err(Error::TokenlessOnPublicAddress { bind: opts.bind });
        }
        if let Some(oauth) = opts.oauth.clone() {
            // Keys are fetched in the background so a slow provider does not delay start.
            tokio::spawn(async move { oauth.prefetch().await });
        }
        if open {
            tracing::warn!(
                bind = %opts.bind,
                "NO AUTHENTICATION: no bearer token configured, so any local process can \
                 run scans through this server. Set NESSUS_MCP_TOKENS=principal=token to require one."
            );
        }
        warn_if_unnamed_hosts(&opts, opts.bind);
        let (listener, addr) = bind(opts.bind).await?;
        let metrics_listener = match opts.metrics_bind {
            Some(m) => {
                warn_if_unnamed_hosts(&opts, m);
                Some(bind(m).await?)
            }
            None => None,
        };
        let shutdown = app.shutdown_token().child_token();
        let limits = ConnLimits {
            header_read_timeout: opts.header_read_timeout,
            max_connections: opts.max_connections,
        };
        let mut tasks = Vec::new();
        let mut metrics_addr = None;
        if let Some((ml, maddr)) = metrics_listener {
            let mut mopts = opts.clone();
            mopts.bind = maddr;
            let r = metrics_router(app.clone(), &mopts);
            tasks.push(tokio::spawn(listener::serve(
                ml,
                r,
                limits,
                shutdown.clone(),
            )));
            tracing::info!(addr = %maddr, "metrics listening at http://{maddr}/metrics");
            metrics_addr = Some(maddr);
        }
        let mut mopts = opts;
        mopts.bind = addr;
        // rmcp stops answering once its token fires (a request then gets 500
        // "no response message received from handler"), so it fires only after the
        // listener has drained: a request whose head arrived before shutdown is served.
        let rmcp_stop = CancellationToken::new();
        let r = router(app, &mopts, rmcp_stop.clone());
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            let served = listener::serve(listener, r, limits, stop).await;
            rmcp_stop.cancel();
            served
        }));
        tracing::info!(%addr, "MCP endpoint listening at http://{addr}/mcp");
        Ok(Self {
            addr,
            metrics_addr,
            shutdown,
            tasks,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address `/metrics` is served on when it has its own listener.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stop accepting requests and wait for in-flight ones to finish.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.wait().await
    }

    /// Wait until the server stops (after its app's shutdown token fires).
    pub async fn wait(self) -> Result<(), Error> {
        let mut first_err = None;
        for task in self.tasks {
            let r = match task.await {
                Ok(Ok(())) => continue,
                Ok(Err(e)) => Error::Serve(Box::new(e)),
                Err(e) => Error::Serve(Box::new(e)),
            };
            // One listener failing stops the others: a half-served node is worse.
            self.shutdown.cancel();
            first_err.get_or_insert(r);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// On `0.0.0.0`/`::` with the default (loopback) host list, remote clients and
/// probes get 403: say so at start rather than at the first refused request.
fn warn_if_unnamed_hosts(opts: &HttpOptions, bind: SocketAddr) {
    let defaults = OriginPolicy::default().allowed_hosts;
    if bind.ip().is_unspecified() && opts.origin_policy.allowed_hosts == defaults {
        tracing::warn!(
            %bind,
            "listening on all interfaces but only loopback Host names are allowed: remote clients \
             and probes get 403 until you name the hosts they use with --allowed-host \
             (NESSUS_MCP_ALLOWED_HOSTS), e.g. the pod IP or the service name"
        );
    }
}

/// `GET /metrics`, behind the token when `metrics_auth` is set.
fn metrics_route(opts: &HttpOptions) -> MethodRouter<Arc<App>> {
    let route = get(metrics_text);
    if opts.metrics_auth {
        route.route_layer(middleware::from_fn_with_state(
            auth_state(opts),
            require_bearer,
        ))
    } else {
        route
    }
}

/// The layers every listener shares, outside-in: tracing, request metrics
/// (so refusals are counted), then Host/Origin validation on every path.
fn edge_layers(inner: Router, opts: &HttpOptions) -> Router {
    let policy = Arc::new(opts.origin_policy.for_bind(opts.bind));
    inner
        .layer(middleware::from_fn_with_state(
            policy,
            check_host_and_origin,
        ))
        .layer(middleware::from_fn(record_http))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

fn auth_state(opts: &HttpOptions) -> Arc<AuthState> {
    Arc::new(AuthState {
        tokens: opts.tokens.clone(),
        oauth: opts.oauth.clone(),
    })
}

fn metrics_router(app: Arc<App>, opts: &HttpOptions) -> Router {
    let inner = Router::new()
        .route("/metrics", metrics_route(opts))
        .with_state(app);
    edge_layers(inner, opts)
}

/// Build the axum router (exposed for in-process tests).
pub fn router(app: Arc<App>, opts: &HttpOptions, shutdown: CancellationToken) -> Router {
    // Host validation is ours, on every path ([`edge_layers`]); rmcp's copy is off
    // so the rule has one owner.
    let mcp_cfg = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_max_request_body_bytes(opts.max_body_bytes)
        .with_cancellation_token(shutdown)
        .disable_allowed_hosts();
    let handler_app = app.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(NessusMcp::new(handler_app.clone(), Principal::anonymous())),
        Arc::new(NeverSessionManager::default()),
        mcp_cfg,
    );
    let tokens = auth_state(opts);
    let body_limits = Arc::new(BodyLimits {
        max_bytes: opts.max_body_bytes,
        read_timeout: opts.body_read_timeout,
    });
    // Inside the edge layers: auth (401), then the body read (413/408/400), then rmcp.
    let mcp_routes = Router::new()
        .nest_service("/mcp", mcp)
        .layer(middleware::from_fn_with_state(body_limits, buffer_mcp_body))
        .layer(middleware::from_fn_with_state(tokens, require_bearer));
    let mut inner = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready));
    if opts.metrics_bind.is_none() {
        inner = inner.route("/metrics", metrics_route(opts));
    }
    if let Some(oauth) = &opts.oauth {
        // RFC 9728 metadata, at the root and path-suffixed for the resource's path; no
        // token needed (a client reads it to learn where to sign in).
        let doc = Arc::new(crate::oauth::resource_metadata(oauth.settings()));
        let (_, path) = crate::oauth::split_origin(oauth.settings().audience());
        let serve = move || {
            let doc = doc.clone();
            get(move || async move { axum::Json((*doc).clone()) })
        };
        inner = inner.route(PROTECTED_RESOURCE_PATH, serve());
        if !path.is_empty() {
            inner = inner.route(&format!("{PROTECTED_RESOURCE_PATH}{path}"), serve());
        }
    }
    edge_layers(inner.with_state(app).merge(mcp_routes), opts)
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
        p if p.starts_with(PROTECTED_RESOURCE_PATH) => PROTECTED_RESOURCE_PATH.to_owned(),
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
