//! The guard in front of every API route: injected faults, then authentication, then the
//! licence gate (412 for scan control on `scan_api: false`).

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use super::{S, Shared, error};
use crate::sim::{ConnMeta, faults::GateMode};
use axum::{
    body::{Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use rand::Rng;

/// Who made an authenticated request.
#[derive(Clone)]
pub(super) struct Principal {
    session: bool,
    ui_token_ok: bool,
}

/// What `authenticate` says when a request carries no credentials at all (Nessus's text).
const NOT_LOGGED_IN: &str = "You need to log in to perform this request";

/// Marks a `GET /server/properties` made without credentials: the handler answers the
/// public view (see `server::PUBLIC_PROPERTIES`).
#[derive(Clone, Copy)]
pub(super) struct PublicView;

pub(super) fn is_public(method: &Method, path: &str) -> bool {
    path == "/server/status"
        || path == "/nessus6.js"
        || (method == Method::POST && path == "/session")
}

/// Scan-control calls refused with 412 on `scan_api: false` licences.
pub(super) fn is_gated(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["scans"]) => true,
        (&Method::PUT | &Method::DELETE, ["scans", _]) => true,
        (&Method::POST, ["scans", _, action]) => {
            matches!(*action, "launch" | "stop" | "pause" | "resume" | "kill")
        }
        _ => false,
    }
}

// ----- the guard: faults, then auth, then the licence gate -----

pub(super) enum Injected {
    Drop,
    Status(StatusCode, Option<u64>),
}

pub(super) async fn guard(State(shared): S, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnectInfo<ConnMeta>>().cloned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (delay, injected) = {
        let mut st = shared.lock();
        st.counters.requests += 1;
        let f = &mut st.faults;
        let applies = f.applies(method.as_str(), &path);
        let mut delay = Duration::ZERO;
        let mut injected = None;
        if applies {
            delay = Duration::from_millis(f.latency_ms);
            if f.jitter_ms > 0 {
                delay += Duration::from_millis(rand::rng().random_range(0..=f.jitter_ms));
            }
            let fail_status = StatusCode::from_u16(f.fail_status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            if f.drop_next > 0 {
                f.drop_next -= 1;
                injected = Some(Injected::Drop);
            } else if f.rate_limit_next > 0 {
                f.rate_limit_next -= 1;
                injected = Some(Injected::Status(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(f.retry_after_secs.unwrap_or(1)),
                ));
            } else if f.fail_next > 0 {
                f.fail_next -= 1;
                injected = Some(Injected::Status(fail_status, f.retry_after_secs));
            } else if f.error_rate > 0.0 && rand::rng().random_bool(f.error_rate.clamp(0.0, 1.0)) {
                injected = Some(Injected::Status(fail_status, f.retry_after_secs));
            }
        }
        match &injected {
            Some(Injected::Drop) => st.counters.dropped += 1,
            Some(Injected::Status(s, _)) if *s == StatusCode::TOO_MANY_REQUESTS => {
                st.counters.rate_limited += 1
            }
            Some(Injected::Status(..)) => st.counters.injected_errors += 1,
            None => {}
        }
        (delay, injected)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match injected {
        Some(Injected::Drop) => return drop_connection(conn),
        Some(Injected::Status(status, retry_after)) => {
            let mut resp = error(status, "Simulated failure");
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        None => {}
    }
    if is_public(&method, &path) {
        return next.run(req).await;
    }
    let principal = match authenticate(&shared, req.headers()) {
        Ok(p) => p,
        // Real Nessus serves its login page a public subset of the properties; wrong or
        // expired credentials still get a 401, so a client's re-login keeps working.
        Err(NOT_LOGGED_IN) if method == Method::GET && path == "/server/properties" => {
            let mut req = req;
            req.extensions_mut().insert(PublicView);
            return next.run(req).await;
        }
        Err(message) => {
            shared.lock().counters.unauthorized += 1;
            return error(StatusCode::UNAUTHORIZED, message);
        }
    };
    let gate = {
        let st = shared.lock();
        (st.faults.scan_api_disabled
            && is_gated(&method, &path)
            && !(principal.session && principal.ui_token_ok))
            .then_some(st.faults.gate_mode)
    };
    if let Some(mode) = gate {
        shared.lock().counters.gated += 1;
        return match mode {
            GateMode::Clean => error(StatusCode::PRECONDITION_FAILED, "API is not available"),
            GateMode::DropAfterHeaders => headers_then_drop(),
            GateMode::DropNoResponse => drop_connection(conn),
        };
    }
    next.run(req).await
}

pub(super) fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
) -> Result<Principal, &'static str> {
    let mut st = shared.lock();
    let ui_token_ok = headers
        .get("x-api-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case(&st.settings.ui_token));
    if let Some(keys) = headers.get("x-apikeys").and_then(|v| v.to_str().ok()) {
        let mut access = None;
        let mut secret = None;
        for part in keys.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                match k.trim() {
                    "accessKey" => access = Some(v.trim().to_owned()),
                    "secretKey" => secret = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let ok = match (&st.settings.api_keys, access, secret) {
            (_, None, _) | (_, _, None) => false,
            (Some((a, s)), Some(ga), Some(gs)) => &ga == a && &gs == s,
            (None, Some(ga), Some(gs)) => !ga.is_empty() && !gs.is_empty(),
        };
        return if ok {
            Ok(Principal {
                session: false,
                ui_token_ok,
            })
        } else {
            Err("Invalid Credentials")
        };
    }
    if let Some(cookie) = headers.get("x-cookie").and_then(|v| v.to_str().ok()) {
        let token = cookie
            .trim()
            .strip_prefix("token=")
            .unwrap_or("")
            .trim()
            .to_owned();
        let idle = st.settings.idle_timeout;
        let now = Instant::now();
        return match st.sessions.get_mut(&token) {
            Some(s) if idle.is_none_or(|i| now - s.last_used <= i) => {
                s.last_used = now;
                Ok(Principal {
                    session: true,
                    ui_token_ok,
                })
            }
            Some(_) => {
                st.sessions.remove(&token);
                Err("Invalid Credentials")
            }
            None => Err("Invalid Credentials"),
        };
    }
    Err(NOT_LOGGED_IN)
}

/// Closes the request's connection without answering.
pub(super) fn drop_connection(conn: Option<ConnectInfo<ConnMeta>>) -> Response {
    if let Some(ConnectInfo(meta)) = conn {
        meta.kill.store(true, Ordering::SeqCst);
    }
    // The response is never delivered: the connection fails on its first write.
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// A 412 status line and headers announcing a 32-byte body, then a broken connection.
pub(super) fn headers_then_drop() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated drop after the 412 headers",
        ))
    }));
    Response::builder()
        .status(StatusCode::PRECONDITION_FAILED)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "32")
        .header(header::CONNECTION, "close")
        .body(body)
        .unwrap_or_else(|_| StatusCode::PRECONDITION_FAILED.into_response())
}
