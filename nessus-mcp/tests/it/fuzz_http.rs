//! Property test over the HTTP/JSON-RPC layer: random bodies, headers and sizes
//! never panic the server and never answer 5xx.
//!
//! Two drivers: the in-process router (a panic fails the test directly), and raw
//! bytes over a real socket to a started server, where `Content-Length` and
//! `Transfer-Encoding` mean what they say to hyper.

use std::{sync::Arc, time::Duration};

use axum::body::Body;
use proptest::{prelude::*, test_runner::TestRunner};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower::ServiceExt as _;

use crate::{edge::Edge, support::TOKEN};

const PATHS: &[&str] = &[
    "/mcp", "/mcp", "/mcp", "/mcp/", "/health", "/metrics", "/x", "/mcp?a=b",
];
const METHODS: &[&str] = &[
    "POST", "POST", "POST", "POST", "POST", "GET", "DELETE", "PUT", "OPTIONS",
];
/// Bodies a client might plausibly send, mutated by the strategy below.
const TEMPLATES: &[&str] = &[
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}"#,
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_tasks","arguments":{"limit":5}}}"#,
    r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"get_scan_status","arguments":{"task_id":"x"}}}"#,
    r#"{"jsonrpc":"2.0","id":"s","method":"resources/list"}"#,
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    r#"{"jsonrpc":"2.0","id":5,"method":"ping","params":{"_meta":{"progressToken":1}}}"#,
    r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
];

/// A header that is usually right (so requests get past the guards and reach
/// rmcp), sometimes absent, wrong or random.
fn header_value(
    good: &'static [&'static str],
    bad: &'static [&'static str],
) -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        12 => proptest::sample::select(good).prop_map(|s| Some(s.to_owned())),
        1 => Just(None),
        2 => proptest::sample::select(bad).prop_map(|s| Some(s.to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => (proptest::sample::select(TEMPLATES), any::<usize>(), any::<u8>(), 0usize..3).prop_map(
            |(t, at, byte, how)| {
                let mut b = t.as_bytes().to_vec();
                let at = at % (b.len() + 1);
                match how {
                    0 => {}
                    1 => b.truncate(at),
                    _ => b.insert(at, byte),
                }
                b
            }
        ),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => (0usize..20_000).prop_map(|n| {
            let mut b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_tasks","arguments":{"cursor":""#.to_vec();
            b.extend(std::iter::repeat_n(b'a', n));
            b.extend_from_slice(br#""}}}"#);
            b
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    path: &'static str,
    content_type: Option<String>,
    accept: Option<String>,
    authorization: Option<String>,
    host: Option<String>,
    origin: Option<String>,
    body: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    let leak = |v: Vec<String>| -> &'static [&'static str] {
        Box::leak(
            v.into_iter()
                .map(|s| &*Box::leak(s.into_boxed_str()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    };
    let good_auth = leak(vec![format!("Bearer {TOKEN}"), format!("bearer {TOKEN}")]);
    let bad_auth = leak(vec!["Bearer nope".to_owned(), "Basic abc".to_owned()]);
    (
        proptest::sample::select(METHODS),
        proptest::sample::select(PATHS),
        header_value(
            &["application/json", "application/json; charset=utf-8"],
            &["text/plain", "", "application/json;;"],
        ),
        header_value(
            &["application/json, text/event-stream"],
            &["*/*", "text/event-stream", "application/json"],
        ),
        header_value(good_auth, bad_auth),
        header_value(
            &["localhost", "127.0.0.1:1", "[::1]:9"],
            &["evil.example", "localhost:@evil.com", ""],
        ),
        // Most clients send no Origin.
        prop_oneof![
            4 => Just(None),
            1 => header_value(&["http://localhost:3000"], &["null", "http://[::1]@evil.com", "https://evil.example"]),
        ],
        body(),
    )
        .prop_map(
            |(method, path, content_type, accept, authorization, host, origin, body)| Case {
                method,
                path,
                content_type,
                accept,
                authorization,
                host,
                origin,
                body,
            },
        )
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

#[test]
fn router_never_panics_or_answers_5xx() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let router = rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = crate::support::write_config(dir.path(), "https://192.0.2.1:8834");
        let config = nessus_core::Config::load(&path).expect("config");
        let app = Arc::new(nessus_mcp::App::open(config).await.expect("app"));
        let mut tokens = nessus_mcp::TokenSet::new();
        tokens
            .insert(nessus_mcp::Principal::new("alice"), TOKEN.to_owned().into())
            .expect("token");
        let opts = nessus_mcp::HttpOptions {
            bind: "127.0.0.1:0".parse().expect("addr"),
            tokens,
            max_body_bytes: 16 * 1024,
            ..nessus_mcp::HttpOptions::default()
        };
        (
            nessus_mcp::router(app, &opts, tokio_util::sync::CancellationToken::new()),
            dir,
        )
    });
    let (router, _dir) = router;
    // Statuses seen, so the property cannot pass vacuously (say, all 403).
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    runner(1500)
        .run(&case(), |c| {
            let mut req = http::Request::builder().method(c.method).uri(c.path);
            for (name, value) in [
                ("content-type", &c.content_type),
                ("accept", &c.accept),
                ("authorization", &c.authorization),
                ("host", &c.host),
                ("origin", &c.origin),
            ] {
                if let Some(v) = value {
                    req = req.header(name, v.as_str());
                }
            }
            let Ok(req) = req.body(Body::from(c.body.clone())) else {
                return Ok(()); // not representable as a request (bad header bytes)
            };
            let resp = rt
                .block_on(router.clone().oneshot(req))
                .expect("infallible");
            let status = resp.status().as_u16();
            *seen.lock().expect("lock").entry(status).or_default() += 1;
            prop_assert!(status < 500, "{} for {c:?}", resp.status());
            Ok(())
        })
        .expect("property");
    let seen = seen.into_inner().expect("lock");
    eprintln!("statuses seen: {seen:?}");
    for want in [200, 400, 401, 403, 406, 415] {
        assert!(seen.contains_key(&want), "no {want} among {seen:?}");
    }
}

/// Raw request bytes with lying or odd framing headers.
fn raw_case() -> impl Strategy<Value = Vec<u8>> {
    (
        case(),
        prop_oneof![Just(None), (0usize..40_000).prop_map(Some),],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(c, declared, chunked, both)| {
            let mut head = format!("{} {} HTTP/1.1\r\n", c.method, c.path);
            head.push_str(&format!(
                "Host: {}\r\n",
                c.host.as_deref().unwrap_or("localhost")
            ));
            for (name, value) in [
                ("Content-Type", &c.content_type),
                ("Accept", &c.accept),
                ("Authorization", &c.authorization),
                ("Origin", &c.origin),
            ] {
                if let Some(v) = value {
                    head.push_str(&format!("{name}: {v}\r\n"));
                }
            }
            let mut out = Vec::new();
            if chunked {
                head.push_str("Transfer-Encoding: chunked\r\n");
                if both {
                    head.push_str(&format!("Content-Length: {}\r\n", c.body.len()));
                }
                head.push_str("\r\n");
                out.extend_from_slice(head.as_bytes());
                for piece in c.body.chunks(1000) {
                    out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                    out.extend_from_slice(piece);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
            } else {
                let n = declared.unwrap_or(c.body.len());
                head.push_str(&format!("Content-Length: {n}\r\nConnection: close\r\n\r\n"));
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(&c.body);
            }
            out
        })
}

#[test]
fn real_server_never_answers_5xx_to_raw_requests() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let edge = rt.block_on(Edge::start(|o| {
        o.max_body_bytes = 16 * 1024;
        o.body_read_timeout = Duration::from_millis(300);
    }));
    let addr = edge.server.local_addr();
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<u16, u32>::new());
    runner(300)
        .run(&raw_case(), |bytes| {
            let status = rt.block_on(async {
                let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
                // A body shorter than declared ends with the (short) body timeout.
                let _ = s.write_all(&bytes).await;
                let mut buf = vec![0u8; 64];
                let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                    .await
                    .expect("an answer or a close in time")
                    .unwrap_or(0);
                std::str::from_utf8(&buf[..n])
                    .ok()
                    .and_then(|t| t.split(' ').nth(1))
                    .and_then(|c| c.parse::<u16>().ok())
            });
            // No status at all (hyper closing a connection it could not parse) is fine.
            *seen
                .lock()
                .expect("lock")
                .entry(status.unwrap_or(0))
                .or_default() += 1;
            prop_assert!(status.is_none_or(|s| s < 500), "{status:?}");
            Ok(())
        })
        .expect("property");
    let seen = seen.into_inner().expect("lock");
    eprintln!("raw statuses seen (0 = closed without an answer): {seen:?}");
    assert!(seen.contains_key(&200), "no 200 among {seen:?}");
    // Still healthy afterwards.
    let ok = rt.block_on(async {
        reqwest::get(format!("http://{addr}/health"))
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(ok.ok(), Some(200));
    rt.block_on(edge.server.shutdown()).expect("shutdown");
}
