//! `POST /mcp` bodies: read with a size and time limit before rmcp sees them,
//! and JSON-RPC's own error codes for bodies rmcp cannot parse.
//!
//! Two wrong answers this fixes: tower-http's body limit only fails when rmcp
//! reads the body, and rmcp turns a body read error into 500, so a chunked body
//! over the limit answered 500 instead of 413; and rmcp answers 415 for a body
//! that is not a JSON-RPC message (its deserialisation error), where JSON-RPC
//! over HTTP wants 400 with `-32700` (not JSON) or `-32600` (not a request).

use std::{sync::Arc, time::Duration};

use axum::{
    body::{Body, HttpBody as _},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};

/// Limits on a request body.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimits {
    pub(crate) max_bytes: usize,
    /// The whole body must arrive within this (a slow-body client holds a
    /// connection past the header timeout otherwise).
    pub(crate) read_timeout: Duration,
}

/// Axum middleware for the `/mcp` route.
pub(crate) async fn buffer_mcp_body(
    State(limits): State<Arc<BodyLimits>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return too_large(limits.max_bytes);
    }
    let (parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        limits.read_timeout,
        Limited::new(body, limits.max_bytes).collect(),
    )
    .await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(limits.max_bytes);
        }
        Ok(Err(_)) => {
            return (
                StatusCode::BAD_REQUEST,
                "Bad Request: the request body could not be read (malformed chunked encoding or \
                 the connection closed early)",
            )
                .into_response();
        }
        Err(_) => {
            return (
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "Request Timeout: the body did not arrive within {} s",
                    limits.read_timeout.as_secs()
                ),
            )
                .into_response();
        }
    };
    let json_content = content_type_is_json(&parts.headers);
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    // With a JSON content type, rmcp's only 415 is "could not deserialise".
    if resp.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE && json_content {
        return not_a_jsonrpc_message(&bytes);
    }
    params_not_method(resp).await
}

/// Methods this server implements. rmcp parses a known method whose params do
/// not fit as a custom request and answers `-32601` with the method as message;
/// for these methods that can only mean bad params.
const SERVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/cancel",
    "tasks/update",
];

/// Error answers are small; bigger bodies (results) are passed on unread.
const SMALL_ANSWER: u64 = 4096;

/// Turns rmcp's `-32601` for a served method into `-32602`.
async fn params_not_method(resp: Response) -> Response {
    // A 404 is rmcp saying the method does not exist in the negotiated revision
    // (2026-07-28 removed initialize, ping and logging/setLevel and wants 404 + -32601,
    // conformance `sep-2575-http-server-method-not-found-404-*`): that answer stays.
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let small = resp
        .body()
        .size_hint()
        .upper()
        .is_some_and(|n| n <= SMALL_ANSWER);
    if !small {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(collected) = Limited::new(body, SMALL_ANSWER as usize).collect().await else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "response could not be read",
        )
            .into_response();
    };
    let bytes = collected.to_bytes();
    // Nearly every small answer is a result: a byte scan spares them a JSON parse.
    if !bytes.windows(b"-32601".len()).any(|w| w == b"-32601") {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let refused = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .filter(|v| v["error"]["code"].as_i64() == Some(-32601))
        .and_then(|v| {
            let method = v["error"]["message"].as_str()?.to_owned();
            SERVED_METHODS
                .contains(&method.as_str())
                .then(|| (v["id"].clone(), method))
        });
    match refused {
        Some((id, method)) => {
            let msg = format!("Invalid params: the params of '{method}' do not match its schema");
            // In-band (200), as rmcp answers the -32602s of well-formed requests.
            let mut r = jsonrpc_error(id, -32602, &msg);
            *r.status_mut() = StatusCode::OK;
            r
        }
        None => Response::from_parts(parts, Body::from(bytes)),
    }
}

fn too_large(max: usize) -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload Too Large: request body exceeds {max} bytes"),
    )
        .into_response()
}

/// rmcp's own Content-Type test (essence before `;`, case-insensitive).
fn content_type_is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
}

/// 400 with a JSON-RPC error object: `-32700` when the body is not JSON;
/// `-32602` when it is a JSON-RPC 2.0 request whose method rmcp knows but whose
/// params do not fit (rmcp maps unknown methods to a custom request, so a
/// well-formed envelope only fails on its params); `-32600` for anything else.
fn not_a_jsonrpc_message(body: &[u8]) -> Response {
    let value = match serde_json::from_slice::<serde_json::Value>(body) {
        Err(e) => {
            let msg = format!("Parse error: the body is not JSON ({e})");
            return jsonrpc_error(serde_json::Value::Null, -32700, &msg);
        }
        Ok(v) => v,
    };
    let envelope = value.as_object().filter(|o| {
        o.get("jsonrpc").and_then(|v| v.as_str()) == Some("2.0")
            && o.get("id")
                .is_none_or(|id| id.is_string() || id.is_i64() || id.is_u64())
    });
    let method = envelope
        .and_then(|o| o.get("method"))
        .and_then(|m| m.as_str());
    match (envelope, method) {
        (Some(o), Some(method)) => {
            let id = o.get("id").cloned().unwrap_or(serde_json::Value::Null);
            let msg = format!("Invalid params: the params of '{method}' do not match its schema");
            jsonrpc_error(id, -32602, &msg)
        }
        _ => jsonrpc_error(
            serde_json::Value::Null,
            -32600,
            "Invalid Request: the body is JSON but not a JSON-RPC 2.0 message (one object with \
             \"jsonrpc\": \"2.0\", a string or integer \"id\" and a \"method\"; batches are \
             not supported)",
        ),
    }
}

fn jsonrpc_error(id: serde_json::Value, code: i64, message: &str) -> Response {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "error": { "code": code, "message": message },
    });
    (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
}
