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

/// A parsed authority: the host (an IPv6 address without its brackets) and the port.
#[derive(Debug, PartialEq, Eq)]
struct Authority<'a> {
    host: &'a str,
    port: Option<u16>,
}

/// Parse a `Host` header or the authority of an `Origin`, strictly: a reg-name
/// or IPv4 address, or a bracketed IPv6 address, then an optional non-empty
/// numeric port. Userinfo (`localhost:@evil.com`, `[::1]@evil.com`), paths,
/// queries, fragments, percent-escapes, whitespace and empty ports are refused:
/// each is a way to make a naive split see an allowed host in a foreign authority.
fn parse_authority(s: &str) -> Option<Authority<'_>> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, tail) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match tail {
            "" => None,
            t => Some(t.strip_prefix(':')?),
        };
        (v6, port)
    } else {
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        let name_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_');
        if host.is_empty() || !host.chars().all(name_char) {
            return None;
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            Some(p.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some(Authority { host, port })
}

/// Parse an operator's allowed-host entry: a strict authority, or a bare IPv6
/// address (`::1`, as the default list has it).
fn parse_allowed(entry: &str) -> Option<Authority<'_>> {
    let entry = entry.trim();
    if entry.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some(Authority {
            host: entry,
            port: None,
        });
    }
    parse_authority(entry)
}

fn same_host(a: &str, b: &str) -> bool {
    match (
        a.parse::<std::net::Ipv6Addr>(),
        b.parse::<std::net::Ipv6Addr>(),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.eq_ignore_ascii_case(b),
    }
}

impl OriginPolicy {
    /// The policy a listener on `bind` enforces: when bound to one specific
    /// non-loopback address, that address is an allowed host too (on any port),
    /// so probes that send `Host: <pod IP>:<port>` (Kubernetes) pass. An IP
    /// literal cannot be a DNS-rebinding name, so this admits no rebinding page.
    /// On `0.0.0.0`/`::` the operator must name the hosts (`--allowed-host`).
    pub fn for_bind(&self, bind: std::net::SocketAddr) -> Self {
        let mut p = self.clone();
        let ip = bind.ip();
        if !p.allowed_hosts.is_empty() && !ip.is_loopback() && !ip.is_unspecified() {
            p.allowed_hosts.push(ip.to_string());
        }
        p
    }

    /// Whether a `Host` header value is allowed.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        let Some(presented) = parse_authority(host_header) else {
            return false;
        };
        if self.allowed_hosts.is_empty() {
            return true;
        }
        self.allowed_hosts.iter().any(|allowed| {
            parse_allowed(allowed).is_some_and(|a| {
                same_host(a.host, presented.host) && (a.port.is_none() || a.port == presented.port)
            })
        })
    }

    /// Whether an `Origin` header value is allowed: exactly `http(s)://authority`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let lower = origin
            .get(..8)
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let authority = if lower.starts_with("http://") {
            &origin[7..]
        } else if lower.starts_with("https://") {
            &origin[8..]
        } else {
            // `null` and non-web schemes are never a legitimate MCP web client.
            return false;
        };
        if parse_authority(authority).is_none() {
            return false;
        }
        if !self.allowed_origins.is_empty() {
            return self
                .allowed_origins
                .iter()
                .any(|a| a.trim().trim_end_matches('/').eq_ignore_ascii_case(origin));
        }
        self.host_allowed(authority)
    }
}

/// Axum middleware enforcing [`OriginPolicy`].
pub(crate) async fn check_host_and_origin(
    State(policy): State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    // HTTP/1.1 requires Host; an absolute-form request target must name an
    // allowed authority too, so the two cannot disagree to our cost.
    let host_ok = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| policy.host_allowed(h))
        && req
            .uri()
            .authority()
            .is_none_or(|a| policy.host_allowed(a.as_str()));
    if !host_ok {
        metrics::counter!(crate::telemetry::REJECTED_REQUESTS, "reason" => "host").increment(1);
        return (StatusCode::FORBIDDEN, "Host header is not allowed").into_response();
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
            "[::1]",
            "[0:0::1]:9",
            "LOCALHOST",
        ] {
            assert!(p.host_allowed(ok), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:80",
            "127.0.0.2",
            "localhost.evil",
            "localhost:@evil.com",
            "localhost@evil.com",
            "[::1]@evil.com",
            "evil.com#@localhost",
            "localhost/evil",
            "localhost?x",
            "localhost:",
            "localhost:80:80",
            "localhost:99999",
            "localhost:8a",
            " localhost",
            "localhost ",
            "local host",
            "localhost%40evil.com",
            "::1",
            "[::1",
            "[::1]x",
            "[::1]:",
            "",
        ] {
            assert!(!p.host_allowed(bad), "{bad:?}");
        }
        for ok in [
            "http://localhost:3000",
            "http://localhost",
            "HTTPS://127.0.0.1:1",
            "http://[::1]:9",
        ] {
            assert!(p.origin_allowed(ok), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "null",
            "http://localhost:@evil.com",
            "http://[::1]@evil.com",
            "http://localhost@evil.com",
            "http://localhost/",
            "http://localhost/path",
            "http://localhost?q",
            "http://localhost:",
            "http:// localhost",
            "ftp://localhost",
            "localhost",
            "http://",
        ] {
            assert!(!p.origin_allowed(bad), "{bad:?}");
        }
        let pinned = OriginPolicy {
            allowed_hosts: vec!["scan.corp:8443".into()],
            allowed_origins: vec!["https://ui.corp".into()],
        };
        assert!(pinned.host_allowed("scan.corp:8443"));
        assert!(!pinned.host_allowed("scan.corp:80"));
        assert!(pinned.origin_allowed("https://ui.corp"));
        assert!(!pinned.origin_allowed("https://ui.corp@evil.com"));
        assert!(!pinned.origin_allowed("https://scan.corp:8443"));
    }

    #[test]
    fn the_bind_ip_is_allowed_only_when_specific() {
        let p = OriginPolicy::default();
        let cases = [
            ("10.1.2.3:8836", "10.1.2.3:8836", true),
            ("10.1.2.3:8836", "10.1.2.3", true),
            ("10.1.2.3:8836", "10.1.2.4:8836", false),
            ("[fd00::5]:8836", "[fd00::5]:8836", true),
            ("0.0.0.0:8836", "10.1.2.3:8836", false),
            ("[::]:8836", "[fd00::5]:8836", false),
            ("127.0.0.1:8836", "localhost:8836", true),
        ];
        for (bind, host, want) in cases {
            let policy = p.for_bind(bind.parse().expect("addr"));
            assert_eq!(policy.host_allowed(host), want, "bind {bind}, Host {host}");
        }
        let any = OriginPolicy {
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        };
        let any = any.for_bind("10.1.2.3:1".parse().expect("addr"));
        assert!(any.allowed_hosts.is_empty(), "an open policy stays open");
        assert!(any.host_allowed("whatever:1"));
        assert!(
            !any.host_allowed("user@whatever"),
            "even open, a Host must parse"
        );
    }
}
