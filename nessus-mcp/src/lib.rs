//! `nessus-mcp`: the MCP server that lets AI agents run Tenable Nessus scans
//! through a durable queue.
//!
//! The binary is wiring; this thin library exposes the pieces so integration
//! tests can start a real server in-process:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use nessus_mcp::{App, HttpOptions, HttpServer, Principal, TokenSet};
//!
//! let dir = std::env::temp_dir().join(format!("nessus-mcp-doc-{}", std::process::id()));
//! let yaml = format!(
//!     "server:\n  data_dir: {dir:?}\nnessus:\n  target_policy:\n    allow: [192.0.2.0/24]\n  \
//!      instances:\n    - instance_id: s1\n      url: https://nessus.example:8834\n      \
//!      access_key: a\n      secret_key: b\n"
//! );
//! let config = nessus_core::Config::from_yaml_with_env(&yaml, &|_| None)?;
//! let app = Arc::new(App::open(config).await?);
//! let mut tokens = TokenSet::new();
//! tokens.insert(Principal::new("alice"), "a-long-random-token-0123".to_owned().into())?;
//! let opts = HttpOptions { bind: "127.0.0.1:0".parse()?, tokens, ..HttpOptions::default() };
//! let server = HttpServer::start(app, opts).await?;
//! println!("MCP at http://{}/mcp", server.local_addr());
//! server.shutdown().await?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

mod app;
mod args;
mod auth;
mod body;
mod catalogue_text;
mod compat;
mod dto;
mod errors;
mod guard;
mod http;
mod import;
mod listener;
mod mcp_tasks;
mod oauth;
mod ops;
mod portable;
mod progress;
mod prompts;
mod resources;
mod server;
mod stdio;
mod telemetry;
mod tools;

use std::net::SocketAddr;

pub use app::{App, Check, Readiness};
pub use auth::{MIN_TOKEN_LEN, Principal, TokenSet, TokenSpecError};
pub use guard::OriginPolicy;
pub use http::{
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS, HttpOptions, HttpServer, router,
};
pub use listener::{FD_RESERVE, connection_cap};
pub use oauth::{DEFAULT_MAX_KEY_AGE, DEFAULT_REFRESH_INTERVAL, OAuthVerifier, Rejection};
pub use server::NessusMcp;
pub use stdio::serve_stdio;
pub use telemetry::{LogFormat, init_logging, metrics_handle};

/// Errors from starting or running the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Token-less mode was requested on an address other hosts can reach.
    #[error(
        "refusing to serve without a bearer token on non-loopback address {bind}: \
         set NESSUS_MCP_TOKENS=principal=token or bind 127.0.0.1"
    )]
    TokenlessOnPublicAddress {
        /// The requested bind address.
        bind: SocketAddr,
    },
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The task queue could not be opened.
    #[error("cannot open the task queue")]
    Queue(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The server stopped with an error.
    #[error("the server stopped with an error")]
    Serve(#[source] Box<dyn std::error::Error + Send + Sync>),
}
