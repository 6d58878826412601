//! DNS-rebinding protection: `Host` and `Origin` validation.
//!
//! A browser tricked into talking to a loopback server sends a foreign `Host`
//! (after DNS rebinding) or a foreign `Origin` (cross-site request). Both are
//! refused with 403 before authentication, so a stolen-cookie style attack
//! never reaches a tool.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// Which `Host` and `Origin` values the HTTP server accepts.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    /// Host names (or `host:port` authorities) accepted in the `Host` header.
    /// Empty means any host (only sensible behind a reverse proxy that checks).
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) accepted in the `Origin` header. When
    /// empty, an origin is accepted if its host is one of `allowed_hosts`.
    pub allowed_origins: Vec<String>,
}

impl Default for OriginPolicy {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: Vec::new(),
        }
    }
}

/// Split an authority (`host`, `host:port`, `[v6]:port`) into host and port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

impl OriginPolicy {
    /// Whether a `Host` header value is allowed.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let (host, port) = split_authority(host_header.trim());
        self.allowed_hosts.iter().any(|allowed| {
            let (a_host, a_port) = split_authority(allowed);
            a_host.eq_ignore_ascii_case(host) && (a_port.is_none() || a_port == port)
        })
    }

    /// Whether an `Origin` header value is allowed.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim();
        if !self.allowed_origins.is_empty() {
            return self
                .allowed_origins
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin));
        }
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            // `null` and non-web schemes are never a legitimate MCP web client.
            return false;
        };
        self.host_allowed(authority)
    }
}

/// Axum middleware enforcing [`OriginPolicy`].
pub(crate) async fn check_host_and_origin(
    State(policy): State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.as_str().to_owned()));
    match host {
        Some(h) if policy.host_allowed(&h) => {}
        _ => {
            metrics::counter!(crate::telemetry::REJECTED_REQUESTS, "reason" => "host").increment(1);
            return (StatusCode::FORBIDDEN, "Host header is not allowed").into_response();
        }
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let ok = origin.to_str().is_ok_and(|o| policy.origin_allowed(o));
        if !ok {
            metrics::counter!(crate::telemetry::REJECTED_REQUESTS, "reason" => "origin")
                .increment(1);
            return (StatusCode::FORBIDDEN, "Origin header is not allowed").into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        let p = OriginPolicy::default();
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:1",
            "[::1]:9",
            "::1",
            "LOCALHOST",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "127.0.0.2",
            "localhost.evil",
        ] {
            assert!(!p.host_allowed(bad), "{bad}");
        }
        assert!(p.origin_allowed("http://localhost:3000"));
        assert!(!p.origin_allowed("https://evil.example"));
        assert!(!p.origin_allowed("null"));
        let pinned = OriginPolicy {
            allowed_hosts: vec!["scan.corp:8443".into()],
            allowed_origins: vec!["https://ui.corp".into()],
        };
        assert!(pinned.host_allowed("scan.corp:8443"));
        assert!(!pinned.host_allowed("scan.corp:80"));
        assert!(pinned.origin_allowed("https://ui.corp"));
        assert!(!pinned.origin_allowed("https://scan.corp:8443"));
    }
}
