//! The HTTP edge under attack: metrics cardinality, slow and surplus
//! connections, body limits, and the exact status / JSON-RPC code of each error.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use nessus_mcp::{App, HttpOptions, HttpServer, Principal, TokenSet};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

use crate::support::TOKEN;

/// A server over a config whose scanner is never contacted (the tools used
/// here only read the queue), with `tweak` applied to its options.
pub(crate) struct Edge {
    pub(crate) server: HttpServer,
    _dir: tempfile::TempDir,
}

impl Edge {
    pub(crate) async fn start(tweak: impl FnOnce(&mut HttpOptions)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = crate::support::write_config(dir.path(), "https://192.0.2.1:8834");
        let config = nessus_core::Config::load(&path).expect("config");
        let app = Arc::new(App::open(config).await.expect("app"));
        let mut tokens = TokenSet::new();
        tokens
            .insert(Principal::new("alice"), SecretString::from(TOKEN))
            .expect("token");
        let mut opts = HttpOptions {
            bind: "127.0.0.1:0".parse().expect("addr"),
            tokens,
            ..HttpOptions::default()
        };
        tweak(&mut opts);
        let server = HttpServer::start(app, opts).await.expect("server");
        Self { server, _dir: dir }
    }

    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.server.local_addr())
    }
}

/// Lets this test process hold thousands of sockets (both ends are ours).
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

async fn post(client: &reqwest::Client, base: &str, body: String) -> reqwest::Response {
    client
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(body)
        .send()
        .await
        .expect("request")
}

async fn metrics_body(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body")
}

/// The tool-call series of the `unknown` label, digits removed (counts move).
fn unknown_series(metrics: &str) -> String {
    metrics
        .lines()
        .filter(|l| l.contains("tool=\"unknown\""))
        .map(|l| l.replace(|c: char| c.is_ascii_digit(), ""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn bogus_tool_names_do_not_grow_metrics() {
    let edge = Edge::start(|_| {}).await;
    let base = edge.base();
    let client = reqwest::Client::new();
    let call = |i: usize| {
        let name = format!("bogus-{i:05}-{}", "x".repeat(200));
        rpc(
            i as u64,
            "tools/call",
            json!({"name": name, "arguments": {}}),
        )
        .to_string()
    };
    // One call first, so the `unknown` series exist before the measurement.
    let first = post(&client, &base, call(0)).await;
    assert_eq!(first.status().as_u16(), 200);
    // A scrape records itself after rendering: scrape once so `before` has those series too.
    metrics_body(&base).await;
    let before = metrics_body(&base).await;
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(1..=10_000)
        .map(|i| {
            let client = client.clone();
            let base = base.clone();
            let body = call(i);
            async move { post(&client, &base, body).await.status().as_u16() }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 200), "every call answered");
    let after = metrics_body(&base).await;
    assert!(
        !after.contains("bogus-"),
        "a client-chosen name became a label"
    );
    assert_eq!(unknown_series(&before), unknown_series(&after));
    // Other tests in this process add their own (bounded) series meanwhile;
    // 10,000 names of 200+ bytes would add megabytes.
    let grown = after.len().saturating_sub(before.len());
    assert!(grown < 64 * 1024, "metrics grew by {grown} bytes");
    eprintln!(
        "10,000 bogus tool names in {:?}: /metrics {} -> {} bytes",
        started.elapsed(),
        before.len(),
        after.len()
    );
    edge.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn metrics_on_their_own_listener_and_behind_the_token() {
    let edge = Edge::start(|o| {
        o.metrics_bind = Some("127.0.0.1:0".parse().expect("addr"));
        o.metrics_auth = true;
    })
    .await;
    let maddr = edge.server.metrics_addr().expect("metrics listener");
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {TOKEN}");
    let cases: [(String, Option<&str>, Option<&str>, u16); 6] = [
        (format!("{}/metrics", edge.base()), Some(&bearer), None, 404),
        (format!("http://{maddr}/metrics"), None, None, 401),
        (
            format!("http://{maddr}/metrics"),
            Some("Bearer wrong-token-wrong-token"),
            None,
            401,
        ),
        (format!("http://{maddr}/metrics"), Some(&bearer), None, 200),
        (
            format!("http://{maddr}/metrics"),
            Some(&bearer),
            Some("evil.example"),
            403,
        ),
        (format!("http://{maddr}/mcp"), Some(&bearer), None, 404),
    ];
    for (url, auth, host, want) in cases {
        let mut req = client.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(h) = host {
            req = req.header("host", h);
        }
        let got = req.send().await.expect("get").status().as_u16();
        assert_eq!(got, want, "{url} auth={auth:?} host={host:?}");
    }
    edge.server.shutdown().await.expect("shutdown");

    // Token required on the main listener too.
    let edge = Edge::start(|o| o.metrics_auth = true).await;
    let url = format!("{}/metrics", edge.base());
    assert_eq!(
        reqwest::get(&url).await.expect("get").status().as_u16(),
        401
    );
    let ok = client
        .get(&url)
        .header("authorization", &bearer)
        .send()
        .await;
    assert_eq!(ok.expect("get").status().as_u16(), 200);
    edge.server.shutdown().await.expect("shutdown");
}

/// Opens `n` connections that each send half a request head.
async fn slow_connections(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"POST /mcp HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .await
            .expect("write");
        conns.push(s);
    }
    conns
}

/// Whether the server closed `s` within `within` (EOF or reset).
async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408/400 answer before the close is fine too; keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_header_connections_do_not_starve_real_requests() {
    raise_fd_limit();
    let header_timeout = Duration::from_secs(4);
    let edge = Edge::start(|o| {
        o.header_read_timeout = header_timeout;
        o.max_connections = 4000;
    })
    .await;
    let addr = edge.server.local_addr();
    let opened = Instant::now();
    let mut slow = slow_connections(addr, 2500).await;
    let open_took = opened.elapsed();
    let client = reqwest::Client::new();
    let base = edge.base();
    let t = Instant::now();
    let health = client
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("health");
    let health_took = t.elapsed();
    assert_eq!(health.status().as_u16(), 200);
    let t = Instant::now();
    let call = post(
        &client,
        &base,
        rpc(
            1,
            "tools/call",
            json!({"name": "list_tasks", "arguments": {}}),
        )
        .to_string(),
    )
    .await;
    let call_took = t.elapsed();
    assert_eq!(call.status().as_u16(), 200);
    let answer: Value = call.json().await.expect("json");
    assert!(answer["result"].is_object(), "{answer}");
    assert!(
        opened.elapsed() < header_timeout,
        "measured while the slow connections were still open ({:?})",
        opened.elapsed()
    );
    eprintln!(
        "2,500 slow connections opened in {open_took:?}; /health {health_took:?}, tools/call {call_took:?}"
    );
    assert!(health_took < Duration::from_secs(1), "{health_took:?}");
    assert!(call_took < Duration::from_secs(1), "{call_took:?}");
    // After the header timeout every slow connection is closed by the server.
    let deadline = header_timeout + Duration::from_secs(3);
    for (i, s) in slow.iter_mut().enumerate().step_by(50) {
        let left = deadline
            .saturating_sub(opened.elapsed())
            .max(Duration::from_millis(10));
        assert!(
            closed_within(s, left).await,
            "slow connection #{i} still open"
        );
    }
    edge.server.shutdown().await.expect("shutdown");
}

/// Opens `n` connections whose request head is complete but whose body never
/// arrives: each has a request in flight.
async fn busy_connections(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Length: 100\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).await.expect("write");
        conns.push(s);
    }
    conns
}

#[tokio::test]
async fn at_the_cap_slow_connections_make_room_and_busy_ones_do_not() {
    let edge = Edge::start(|o| {
        o.max_connections = 20;
        o.header_read_timeout = Duration::from_secs(30);
        o.body_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = edge.server.local_addr();
    let base = edge.base();
    let mut held = slow_connections(addr, 20).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The cap is full of slow heads: a real request evicts the oldest and is served.
    let t = Instant::now();
    let r = reqwest::get(format!("{base}/health"))
        .await
        .expect("health");
    assert_eq!(r.status().as_u16(), 200);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    // 30 more slow connections: the open count stays at the cap, the oldest go.
    let _newer = slow_connections(addr, 30).await;
    for (i, s) in held.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_millis(1000)).await,
            "old slow connection #{i} was kept beyond the cap"
        );
    }
    drop(_newer);
    drop(held);
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Connections with a request in flight are never evicted: at the cap, a
    // new connection is closed at once instead.
    let mut busy = busy_connections(addr, 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut surplus = slow_connections(addr, 5).await;
    for (i, s) in surplus.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_millis(1000)).await,
            "surplus connection #{i} was kept open"
        );
    }
    let mut buf = [0u8; 16];
    for s in &mut busy {
        let still_open = tokio::time::timeout(Duration::from_millis(20), s.read(&mut buf)).await;
        assert!(still_open.is_err(), "a busy connection was closed");
    }
    drop(busy);
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        match reqwest::get(format!("{base}/metrics")).await {
            Ok(r) if r.status().as_u16() == 200 => break r.text().await.expect("body"),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            other => panic!("metrics never came back: {other:?}"),
        }
    };
    for name in [
        "nessus_mcp_connections_refused_total",
        "nessus_mcp_connections_evicted_total",
    ] {
        assert!(metrics.contains(name), "{name} missing");
    }
    edge.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let edge = Edge::start(|o| o.header_read_timeout = Duration::from_secs(1)).await;
    let mut s = TcpStream::connect(edge.server.local_addr())
        .await
        .expect("connect");
    s.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).await.expect("read");
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let t = Instant::now();
    assert!(
        closed_within(&mut s, Duration::from_secs(3)).await,
        "idle connection kept"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "closed too early: {:?}",
        t.elapsed()
    );
    edge.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn shutdown_waits_for_in_flight_requests() {
    let edge = Edge::start(|o| o.body_read_timeout = Duration::from_secs(10)).await;
    let addr = edge.server.local_addr();
    // A request whose body is still arriving when shutdown starts.
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let body = rpc(
        1,
        "tools/call",
        json!({"name": "list_tasks", "arguments": {}}),
    )
    .to_string();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.expect("head");
    s.write_all(&body.as_bytes()[..10]).await.expect("part");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopping = tokio::spawn(edge.server.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown did not wait for the request"
    );
    s.write_all(&body.as_bytes()[10..]).await.expect("rest");
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.expect("response");
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    stopping.await.expect("join").expect("shutdown");
}

/// Sends raw bytes, returns the status code of the answer (0 if none).
async fn raw_status(addr: std::net::SocketAddr, request: &[u8]) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(request).await.expect("write");
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("answer in time")
        .unwrap_or(0);
    std::str::from_utf8(&buf[..n])
        .ok()
        .and_then(|t| t.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn body_limits_answer_413_and_408() {
    let edge = Edge::start(|o| {
        o.max_body_bytes = 1024;
        o.body_read_timeout = Duration::from_secs(1);
    })
    .await;
    let addr = edge.server.local_addr();
    let head = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n"
        )
    };
    let chunk = "x".repeat(600);
    let chunked = format!(
        "{}{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n"),
        chunk.len(),
        chunk.len()
    );
    let small_chunked = format!(
        "{}{:x}\r\n{{\"a\":1}}\r\n0\r\n\r\n",
        head("Transfer-Encoding: chunked\r\n"),
        7
    );
    let declared = head("Content-Length: 5000\r\n");
    let slow_body = format!("{}{{\"js", head("Content-Length: 100\r\n"));
    let bad_chunks = format!("{}zz\r\nabc\r\n", head("Transfer-Encoding: chunked\r\n"));
    let cases: [(&str, &str, u16); 5] = [
        ("chunked over the limit", &chunked, 413),
        ("chunked under the limit, not JSON-RPC", &small_chunked, 400),
        ("declared length over the limit", &declared, 413),
        ("body slower than the body timeout", &slow_body, 408),
        ("malformed chunk size", &bad_chunks, 400),
    ];
    for (name, req, want) in cases {
        assert_eq!(raw_status(addr, req.as_bytes()).await, want, "{name}");
    }
    // The same through a client that streams (chunked) a big body.
    let big = vec![b' '; 64 * 1024];
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(4096).map(|c| Ok(c.to_vec())).collect();
    let stream = futures::stream::iter(pieces);
    let r = reqwest::Client::new()
        .post(format!("{}/mcp", edge.base()))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 413);
    edge.server.shutdown().await.expect("shutdown");
}

struct ErrCase {
    name: &'static str,
    content_type: &'static str,
    accept: &'static str,
    body: &'static str,
    status: u16,
    /// The JSON-RPC error code in the body, when the body is a JSON-RPC error.
    code: Option<i64>,
}

#[tokio::test]
async fn each_error_has_the_right_status_and_code() {
    let edge = Edge::start(|_| {}).await;
    let both = "application/json, text/event-stream";
    let json_ct = "application/json";
    let cases = [
        ErrCase {
            name: "malformed JSON",
            content_type: json_ct,
            accept: both,
            body: r#"{"jsonrpc":"2.0","id":1,"method":"#,
            status: 400,
            code: Some(-32700),
        },
        ErrCase {
            name: "empty body",
            content_type: json_ct,
            accept: both,
            body: "",
            status: 400,
            code: Some(-32700),
        },
        ErrCase {
            name: "JSON but no JSON-RPC",
            content_type: "application/json; charset=utf-8",
            accept: both,
            body: r#"{"hello":"world"}"#,
            status: 400,
            code: Some(-32600),
        },
        ErrCase {
            name: "a batch",
            content_type: json_ct,
            accept: both,
            body: r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            status: 400,
            code: Some(-32600),
        },
        ErrCase {
            name: "wrong jsonrpc version",
            content_type: json_ct,
            accept: both,
            body: r#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#,
            status: 400,
            code: Some(-32600),
        },
        ErrCase {
            name: "params of the wrong type",
            content_type: json_ct,
            accept: both,
            body: r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":5}}"#,
            status: 200,
            code: Some(-32602),
        },
        ErrCase {
            name: "wrong content type",
            content_type: "text/plain",
            accept: both,
            body: r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            status: 415,
            code: None,
        },
        ErrCase {
            name: "wrong content type and malformed body",
            content_type: "text/plain",
            accept: both,
            body: "{{{",
            status: 415,
            code: None,
        },
        ErrCase {
            name: "wrong accept",
            content_type: json_ct,
            accept: "text/html",
            body: r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            status: 406,
            code: None,
        },
        ErrCase {
            name: "unknown method",
            content_type: json_ct,
            accept: both,
            body: r#"{"jsonrpc":"2.0","id":4,"method":"no/such/method"}"#,
            status: 200,
            code: Some(-32601),
        },
    ];
    let client = reqwest::Client::new();
    for c in &cases {
        let r = client
            .post(format!("{}/mcp", edge.base()))
            .header("content-type", c.content_type)
            .header("accept", c.accept)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(c.body)
            .send()
            .await
            .expect("send");
        let status = r.status().as_u16();
        let text = r.text().await.expect("body");
        assert_eq!(status, c.status, "{}: {text}", c.name);
        if let Some(code) = c.code {
            let v: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", c.name));
            assert_eq!(
                v["error"]["code"].as_i64(),
                Some(code),
                "{}: {text}",
                c.name
            );
            assert_eq!(v["jsonrpc"], "2.0", "{}", c.name);
        }
    }
    // Arguments that do not fit the tool's input schema are a tool error the
    // model can correct, not a protocol error: in the tool envelope, a normal
    // result for the predecessor's tools in compatible mode (issue 14).
    let bad_args = rpc(
        3,
        "tools/call",
        json!({"name": "get_scan_status", "arguments": {"task_id": 5}}),
    );
    let v: Value = post(&client, &edge.base(), bad_args.to_string())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        v["result"]["structuredContent"]["error_code"], "invalid_argument",
        "{v}"
    );
    edge.server.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn host_checks_cover_every_path_and_bearer_is_case_insensitive() {
    let edge = Edge::start(|_| {}).await;
    let client = reqwest::Client::new();
    for path in ["/health", "/ready", "/metrics", "/mcp", "/nope"] {
        for host in [
            "evil.example",
            "localhost:@evil.com",
            "[::1]@evil.com",
            "localhost:",
        ] {
            let r = client
                .get(format!("{}{path}", edge.base()))
                .header("host", host)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 403, "{path} Host {host}");
        }
        for origin in [
            "http://localhost:@evil.com",
            "http://[::1]@evil.com",
            "https://evil.example",
        ] {
            let r = client
                .get(format!("{}{path}", edge.base()))
                .header("origin", origin)
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 403, "{path} Origin {origin}");
        }
    }
    let init = rpc(1, "ping", json!({})).to_string();
    for (auth, want) in [
        (format!("Bearer {TOKEN}"), 200),
        (format!("BEARER {TOKEN}"), 200),
        (format!("bearer    {TOKEN}"), 200),
        (format!("  BeArEr {TOKEN}  "), 200),
        (format!("Bearer{TOKEN}"), 401),
        (format!("Basic {TOKEN}"), 401),
    ] {
        let r = client
            .post(format!("{}/mcp", edge.base()))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("authorization", &auth)
            .body(init.clone())
            .send()
            .await
            .expect("post");
        assert_eq!(
            r.status().as_u16(),
            want,
            "{}",
            auth.replace(TOKEN, "<token>")
        );
    }
    edge.server.shutdown().await.expect("shutdown");
}

/// The binary: `--demo` with configured tokens says a token is required (and
/// prints none); `NESSUS_MCP_METRICS_BIND` / `NESSUS_MCP_METRICS_AUTH` move
/// `/metrics` to its own token-guarded listener.
#[tokio::test]
async fn demo_banner_is_truthful_and_metrics_flags_work() {
    use nessus_queue::testkit::{ChildGuard, free_port};
    use std::io::BufRead as _;
    const OPS_TOKEN: &str = "ops-token-canary-0123456789";
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, mport) = (free_port().expect("port"), free_port().expect("port"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nessus-mcp"))
        .args(["--demo", "--workers", "0", "--log-format", "text"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .env("NESSUS_MCP_TOKENS", format!("ops={OPS_TOKEN}"))
        .env("NESSUS_MCP_METRICS_BIND", format!("127.0.0.1:{mport}"))
        .env("NESSUS_MCP_METRICS_AUTH", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let _guard = ChildGuard::new(child);
    let banner = tokio::task::spawn_blocking(move || {
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line.starts_with("demo targets: ");
            lines.push(line);
            if done {
                break;
            }
        }
        lines.join("\n")
    })
    .await
    .expect("banner");
    assert!(
        banner.contains(&format!("MCP URL: http://127.0.0.1:{port}/mcp")),
        "{banner}"
    );
    assert!(banner.contains("Authorization: required"), "{banner}");
    assert!(!banner.contains("Authorization: none"), "{banner}");
    assert!(!banner.contains("Bearer"), "{banner}");
    assert!(!banner.contains(OPS_TOKEN), "{banner}");
    let client = reqwest::Client::new();
    let get = |url: String, auth: Option<String>| {
        let mut r = client.get(url);
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        async move { r.send().await.expect("get").status().as_u16() }
    };
    let bearer = Some(format!("Bearer {OPS_TOKEN}"));
    let metrics = format!("http://127.0.0.1:{mport}/metrics");
    assert_eq!(get(metrics.clone(), None).await, 401);
    assert_eq!(get(metrics, bearer.clone()).await, 200);
    assert_eq!(
        get(format!("http://127.0.0.1:{port}/metrics"), bearer).await,
        404
    );
    assert_eq!(
        get(format!("http://127.0.0.1:{port}/health"), None).await,
        200
    );
}
