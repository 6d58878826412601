//! Auth and Host/Origin matrix over real HTTP.

use std::time::Duration;

use crate::support::{Harness, TOKEN};

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

struct Case {
    name: &'static str,
    auth: Option<&'static str>,
    host: Option<&'static str>,
    origin: Option<&'static str>,
    want: u16,
}

async fn check(h: &Harness, c: &Case) {
    let client = reqwest::Client::new();
    let mut req = client
        .post(h.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(INIT);
    if let Some(a) = c.auth {
        req = req.header("authorization", a);
    }
    if let Some(host) = c.host {
        req = req.header("host", host);
    }
    if let Some(o) = c.origin {
        req = req.header("origin", o);
    }
    let status = req.send().await.expect("request").status().as_u16();
    assert_eq!(status, c.want, "case {}", c.name);
}

#[tokio::test]
async fn auth_host_and_origin_matrix() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let good = format!("Bearer {TOKEN}");
    let good: &'static str = Box::leak(good.into_boxed_str());
    let cases = [
        Case {
            name: "no token",
            auth: None,
            host: None,
            origin: None,
            want: 401,
        },
        Case {
            name: "wrong token",
            auth: Some("Bearer nope-nope-nope-nope-nope"),
            host: None,
            origin: None,
            want: 401,
        },
        Case {
            name: "prefix of the token",
            auth: Some("Bearer test-token-alice"),
            host: None,
            origin: None,
            want: 401,
        },
        Case {
            name: "basic auth",
            auth: Some("Basic dXNlcjpwYXNz"),
            host: None,
            origin: None,
            want: 401,
        },
        Case {
            name: "good token",
            auth: Some(good),
            host: None,
            origin: None,
            want: 200,
        },
        Case {
            name: "foreign host",
            auth: Some(good),
            host: Some("evil.example"),
            origin: None,
            want: 403,
        },
        Case {
            name: "foreign host, no token",
            auth: None,
            host: Some("evil.example:80"),
            origin: None,
            want: 403,
        },
        Case {
            name: "foreign origin",
            auth: Some(good),
            host: None,
            origin: Some("https://evil.example"),
            want: 403,
        },
        Case {
            name: "null origin",
            auth: Some(good),
            host: None,
            origin: Some("null"),
            want: 403,
        },
        Case {
            name: "loopback origin",
            auth: Some(good),
            host: None,
            origin: Some("http://localhost:3000"),
            want: 200,
        },
    ];
    for c in &cases {
        check(&h, c).await;
    }
    // Health stays open; metrics and ready answer without a token too.
    let base = format!("http://{}", h.addr);
    for path in ["/health", "/ready", "/metrics"] {
        let r = reqwest::get(format!("{base}{path}")).await.expect("get");
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("nessus_mcp_auth_failures_total"),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
    h.stop().await;
}

#[tokio::test]
async fn tokenless_mode_is_refused_off_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = crate::support::write_config(dir.path(), "https://192.0.2.1:8834");
    let config = nessus_core::Config::load(&path).expect("config");
    let app = std::sync::Arc::new(nessus_mcp::App::open(config).await.expect("app"));
    let opts = nessus_mcp::HttpOptions {
        bind: "0.0.0.0:0".parse().expect("addr"),
        ..nessus_mcp::HttpOptions::default()
    };
    let err = nessus_mcp::HttpServer::start(app, opts)
        .await
        .expect_err("must refuse");
    assert!(
        err.to_string()
            .contains("refusing to serve without a bearer token"),
        "{err}"
    );
}
