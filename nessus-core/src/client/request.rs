//! Sending one call: authentication headers, single-flight re-login on 401, web-UI token
//! refresh on 412, retries of idempotent calls, and mapping of error answers.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{
    NessusClient,
    auth::{SessionToken, TokenResult, api_token_missing, extract_api_token},
    retry::parse_retry_after,
};
use crate::{
    error::{Error, Result, TransportKind},
    models::LoginResponse,
};

/// One API call.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: Vec<(&'static str, String)>,
    pub(crate) body: Option<Value>,
    /// Safe to repeat: retried on 429, 5xx, timeouts and broken connections.
    pub(crate) idempotent: bool,
    /// Overrides the client's whole-request timeout (downloads).
    pub(crate) timeout: Option<Duration>,
}

impl Call {
    pub(crate) fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path, true)
    }

    /// A state-changing POST: never retried after it may have reached Nessus.
    pub(crate) fn post(path: impl Into<String>, body: Value) -> Self {
        let mut c = Self::new(Method::POST, path, false);
        c.body = Some(body);
        c
    }

    pub(crate) fn delete(path: impl Into<String>) -> Self {
        Self::new(Method::DELETE, path, true)
    }

    fn new(method: Method, path: impl Into<String>, idempotent: bool) -> Self {
        Self {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotent,
            timeout: None,
        }
    }

    pub(crate) fn query(mut self, key: &'static str, value: impl ToString) -> Self {
        self.query.push((key, value.to_string()));
        self
    }

    /// Marks a POST as safe to repeat (export requests create nothing that matters).
    pub(crate) fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

impl NessusClient {
    /// Sends `call` and decodes a JSON answer.
    pub(crate) async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T> {
        let endpoint = call.endpoint();
        let body = self.bytes(call).await?;
        serde_json::from_slice(&body).map_err(|e| Error::decode(&endpoint, e.to_string()))
    }

    /// Sends `call` and reads the whole body, retrying idempotent calls whose body was
    /// cut off.
    pub(crate) async fn bytes(&self, call: Call) -> Result<Bytes> {
        let mut retry = 0;
        loop {
            let resp = self.send(&call).await?;
            match resp.bytes().await {
                Ok(b) => return Ok(b),
                Err(e) => {
                    let err = transport_error(&call.endpoint(), e);
                    match self.next_delay(&call, &err, retry) {
                        Some(d) => {
                            retry += 1;
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(err),
                    }
                }
            }
        }
    }

    fn next_delay(&self, call: &Call, err: &Error, retry: u32) -> Option<Duration> {
        if !call.idempotent || !err.is_retryable() || retry >= self.inner.retry.max_retries {
            return None;
        }
        self.inner.retry.delay(retry, err.retry_after())
    }

    /// Sends `call` until it succeeds, returning the (2xx) response with its body unread.
    pub(crate) async fn send(&self, call: &Call) -> Result<reqwest::Response> {
        let endpoint = call.endpoint();
        let mut retry = 0;
        let mut relogged = false;
        let mut token_refreshed = false;
        loop {
            let session = self.ensure_session().await?;
            if self.inner.auth.is_web_ui() && self.inner.auth.api_token().is_none() {
                self.refresh_api_token(None).await?;
            }
            let url = format!("{}{}", self.inner.base_url, call.path);
            let mut rb = self.inner.http.request(call.method.clone(), url);
            if !call.query.is_empty() {
                rb = rb.query(&call.query);
            }
            if let Some(body) = &call.body {
                rb = rb.json(body);
            }
            if let Some(t) = call.timeout {
                rb = rb.timeout(t);
            }
            rb = self.inner.auth.apply(rb, session.as_ref());
            let started = std::time::Instant::now();
            let sent = rb.send().await;
            tracing::debug!(
                endpoint,
                status = sent.as_ref().map_or(0, |r| r.status().as_u16()),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "Nessus call"
            );
            let err = match sent {
                Err(e) => transport_error(&endpoint, e),
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED
                        && self.inner.auth.uses_session()
                        && !relogged
                    {
                        // The session expired: log in again (once for all concurrent
                        // callers) and repeat. A 401 means the call was not executed, so
                        // repeating is safe even for a create.
                        relogged = true;
                        self.relogin(session.as_ref().map(|s| s.generation)).await?;
                        continue;
                    }
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    // The body may never arrive (Nessus drops the connection after a 412
                    // header); the status alone is enough to classify the error.
                    let body = resp.bytes().await.unwrap_or_default();
                    let err = api_error(status.as_u16(), &endpoint, &body, retry_after);
                    if matches!(err, Error::ScanApiDisabled { .. })
                        && self.fetches_api_token()
                        && !token_refreshed
                    {
                        // A stale web-UI token also shows up as 412: refetch it once.
                        token_refreshed = true;
                        let stale = self.inner.auth.api_token();
                        self.refresh_api_token(stale).await?;
                        continue;
                    }
                    err
                }
            };
            match self.next_delay(call, &err, retry) {
                Some(d) => {
                    tracing::debug!(endpoint, retry, delay_ms = d.as_millis() as u64, error = %err, "retrying Nessus call");
                    retry += 1;
                    tokio::time::sleep(d).await;
                }
                None => return Err(err),
            }
        }
    }

    fn fetches_api_token(&self) -> bool {
        matches!(
            &self.inner.auth.credentials,
            super::Credentials::WebUi {
                api_token: None,
                ..
            }
        )
    }

    /// The current session token, logging in first if there is none (API keys: `None`).
    async fn ensure_session(&self) -> Result<Option<SessionToken>> {
        if !self.inner.auth.uses_session() {
            return Ok(None);
        }
        if let Some(s) = self.inner.auth.session() {
            return Ok(Some(s));
        }
        self.relogin(None).await.map(Some)
    }

    /// Logs in unless someone else already replaced the token of generation `stale`
    /// while we waited for the lock: twenty calls failing with the same expired token
    /// cause exactly one `POST /session`.
    async fn relogin(&self, stale: Option<u64>) -> Result<SessionToken> {
        let _guard = self.inner.auth.login_lock.lock().await;
        if let Some(s) = self.inner.auth.session()
            && Some(s.generation) != stale
        {
            return Ok(s);
        }
        self.inner.auth.clear_session();
        let token = self.login().await?;
        Ok(self.inner.auth.store_session(token))
    }

    /// `POST /session`, retried like an idempotent call on 429/5xx/transport errors.
    async fn login(&self) -> Result<SecretString> {
        let Some((username, password)) = self.inner.auth.credentials.login() else {
            return Err(Error::client_config("login needs a username and password"));
        };
        let endpoint = "POST /session";
        let body = serde_json::json!({"username": username, "password": password.expose_secret()});
        let mut retry = 0;
        loop {
            let mut rb = self
                .inner
                .http
                .post(format!("{}/session", self.inner.base_url))
                .json(&body);
            rb = self.inner.auth.apply(rb, None);
            let err = match rb.send().await {
                Err(e) => transport_error(endpoint, e),
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    match resp.bytes().await {
                        Ok(b) if status.is_success() => {
                            let parsed: LoginResponse = serde_json::from_slice(&b)
                                .map_err(|e| Error::decode(endpoint, e.to_string()))?;
                            return parsed
                                .token
                                .filter(|t| !t.is_empty())
                                .map(SecretString::from)
                                .ok_or_else(|| {
                                    Error::decode(endpoint, "no token in the login response")
                                });
                        }
                        Ok(b) => api_error(status.as_u16(), endpoint, &b, retry_after),
                        Err(e) => transport_error(endpoint, e),
                    }
                }
            };
            if !err.is_retryable() || retry >= self.inner.retry.max_retries {
                return Err(err);
            }
            let Some(d) = self.inner.retry.delay(retry, err.retry_after()) else {
                return Err(err);
            };
            retry += 1;
            tokio::time::sleep(d).await;
        }
    }

    /// Fetches the web-UI token from `/nessus6.js` unless someone already replaced
    /// `stale`.
    async fn refresh_api_token(&self, stale: Option<SecretString>) -> Result<()> {
        let _guard = self.inner.auth.token_lock.lock().await;
        let current = self.inner.auth.api_token();
        let changed = match (&current, &stale) {
            (Some(c), Some(s)) => c.expose_secret() != s.expose_secret(),
            (Some(_), None) => true,
            _ => false,
        };
        if changed {
            return Ok(());
        }
        let token = self.fetch_api_token().await?;
        self.inner.auth.store_api_token(Some(token));
        Ok(())
    }

    async fn fetch_api_token(&self) -> TokenResult {
        let endpoint = "GET /nessus6.js";
        let resp = self
            .inner
            .http
            .get(format!("{}/nessus6.js", self.inner.base_url))
            .send()
            .await
            .map_err(|e| transport_error(endpoint, e))?;
        if !resp.status().is_success() {
            return Err(api_token_missing(&format!(
                "HTTP {}",
                resp.status().as_u16()
            )));
        }
        let js = resp
            .text()
            .await
            .map_err(|e| transport_error(endpoint, e))?;
        extract_api_token(&js)
            .map(SecretString::from)
            .ok_or_else(|| api_token_missing("no getApiToken function in the UI bundle"))
    }
}

/// Classifies a reqwest failure without leaking its type.
pub(crate) fn transport_error(endpoint: &str, e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        TransportKind::Timeout
    } else if e.is_connect() {
        TransportKind::Connect
    } else {
        TransportKind::Interrupted
    };
    Error::Transport {
        endpoint: endpoint.to_owned(),
        kind,
        source: Box::new(e.without_url()),
    }
}

/// Maps an error answer to a typed error, keeping Nessus's own message.
pub(crate) fn api_error(
    status: u16,
    endpoint: &str,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Error {
    let message = nessus_message(body).unwrap_or_else(|| {
        StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("error")
            .to_owned()
    });
    match status {
        401 => Error::Unauthorized {
            endpoint: endpoint.to_owned(),
            message,
        },
        // The licence gate; an empty body is the connection-drop variant of the same 412.
        412 if body.is_empty() || message.contains("API is not available") => {
            Error::ScanApiDisabled {
                endpoint: endpoint.to_owned(),
            }
        }
        _ => Error::Api {
            status,
            endpoint: endpoint.to_owned(),
            message,
            retry_after,
        },
    }
}

/// Nessus's `{"error": "..."}` (on-prem) or `{"message": "..."}` (Tenable.io) text, or a
/// short prefix of a non-JSON body.
fn nessus_message(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
        for key in ["message", "error"] {
            if let Some(Value::String(s)) = map.get(key)
                && !s.is_empty()
            {
                return Some(s.clone());
            }
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: u16, body: &str, expect: &str) {
        let e = api_error(status, "GET /x", body.as_bytes(), None);
        assert_eq!(e.to_string(), expect);
    }

    #[test]
    fn error_bodies() {
        check(
            404,
            r#"{"error":"Scan not found"}"#,
            "Nessus returned HTTP 404 for GET /x: Scan not found",
        );
        check(
            403,
            r#"{"statusCode":403,"error":"Forbidden","message":"Insufficient scope"}"#,
            "Nessus returned HTTP 403 for GET /x: Insufficient scope",
        );
        check(
            500,
            "",
            "Nessus returned HTTP 500 for GET /x: Internal Server Error",
        );
        assert!(matches!(
            api_error(
                412,
                "POST /scans",
                br#"{"error":"API is not available"}"#,
                None
            ),
            Error::ScanApiDisabled { .. }
        ));
        assert!(matches!(
            api_error(412, "POST /scans", b"", None),
            Error::ScanApiDisabled { .. }
        ));
    }
}
