//! Credentials and the session state shared by every call of one client.

use std::sync::{
    RwLock,
    atomic::{AtomicU64, Ordering},
};

use secrecy::{ExposeSecret, SecretString};

use crate::error::{Error, Result};

/// How the client authenticates to Nessus.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// `X-ApiKeys: accessKey=…; secretKey=…` (stateless; preferred).
    ApiKeys {
        /// Access key.
        access_key: SecretString,
        /// Secret key.
        secret_key: SecretString,
    },
    /// `POST /session` login, then `X-Cookie: token=…`; re-login on 401.
    Session {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
    },
    /// Session login plus the web UI's `X-API-Token` (seed-spec §6.3), which Nessus
    /// editions with `scan_api: false` require for scan control. Unsupported by Tenable;
    /// use only when configured.
    WebUi {
        /// User name.
        username: String,
        /// Password.
        password: SecretString,
        /// The UI token; `None` fetches it from `/nessus6.js` (and again after a 412).
        api_token: Option<SecretString>,
    },
}

impl Credentials {
    /// API keys.
    pub fn api_keys(
        access_key: impl Into<SecretString>,
        secret_key: impl Into<SecretString>,
    ) -> Self {
        Self::ApiKeys {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
        }
    }

    /// Username and password session.
    pub fn session(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self::Session {
            username: username.into(),
            password: password.into(),
        }
    }

    /// Session plus web-UI token, fetched from `/nessus6.js`.
    pub fn web_ui(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self::WebUi {
            username: username.into(),
            password: password.into(),
            api_token: None,
        }
    }

    pub(crate) fn login(&self) -> Option<(&str, &SecretString)> {
        match self {
            Self::ApiKeys { .. } => None,
            Self::Session { username, password }
            | Self::WebUi {
                username, password, ..
            } => Some((username, password)),
        }
    }
}

/// A session token with the generation it was issued in, so that a caller that saw a
/// 401 with generation `g` can tell whether someone else already logged in again.
#[derive(Clone)]
pub(crate) struct SessionToken {
    pub(crate) token: SecretString,
    pub(crate) generation: u64,
}

/// Mutable authentication state: the current session token and the web-UI token.
pub(crate) struct AuthState {
    pub(crate) credentials: Credentials,
    session: RwLock<Option<SessionToken>>,
    api_token: RwLock<Option<SecretString>>,
    generation: AtomicU64,
    /// Held while logging in, so concurrent 401s cause one login (single flight).
    pub(crate) login_lock: tokio::sync::Mutex<()>,
    /// Held while fetching `/nessus6.js`.
    pub(crate) token_lock: tokio::sync::Mutex<()>,
}

impl AuthState {
    pub(crate) fn new(credentials: Credentials) -> Self {
        let api_token = match &credentials {
            Credentials::WebUi { api_token, .. } => api_token.clone(),
            _ => None,
        };
        Self {
            credentials,
            session: RwLock::new(None),
            api_token: RwLock::new(api_token),
            generation: AtomicU64::new(0),
            login_lock: tokio::sync::Mutex::new(()),
            token_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn uses_session(&self) -> bool {
        self.credentials.login().is_some()
    }

    pub(crate) fn is_web_ui(&self) -> bool {
        matches!(self.credentials, Credentials::WebUi { .. })
    }

    pub(crate) fn session(&self) -> Option<SessionToken> {
        self.session
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn store_session(&self, token: SecretString) -> SessionToken {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let s = SessionToken { token, generation };
        *self
            .session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(s.clone());
        s
    }

    pub(crate) fn clear_session(&self) {
        *self
            .session
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(crate) fn api_token(&self) -> Option<SecretString> {
        self.api_token
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn store_api_token(&self, token: Option<SecretString>) {
        *self
            .api_token
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = token;
    }

    /// Adds the authentication headers for one request.
    pub(crate) fn apply(
        &self,
        mut rb: reqwest::RequestBuilder,
        session: Option<&SessionToken>,
    ) -> reqwest::RequestBuilder {
        if let Credentials::ApiKeys {
            access_key,
            secret_key,
        } = &self.credentials
        {
            rb = rb.header(
                "X-ApiKeys",
                sensitive(format!(
                    "accessKey={}; secretKey={}",
                    access_key.expose_secret(),
                    secret_key.expose_secret()
                )),
            );
        }
        if let Some(s) = session {
            rb = rb.header(
                "X-Cookie",
                sensitive(format!("token={}", s.token.expose_secret())),
            );
        }
        if self.is_web_ui()
            && let Some(t) = self.api_token()
        {
            rb = rb.header("X-API-Token", sensitive(t.expose_secret().to_owned()));
        }
        rb
    }
}

/// A header value marked sensitive so that it is never printed by HTTP-level debugging.
fn sensitive(value: String) -> reqwest::header::HeaderValue {
    match reqwest::header::HeaderValue::try_from(value) {
        Ok(mut v) => {
            v.set_sensitive(true);
            v
        }
        // A secret with control characters cannot be a header; send an empty value, which
        // Nessus rejects with 401 (reported as an authentication error).
        Err(_) => reqwest::header::HeaderValue::from_static(""),
    }
}

/// Extracts the web-UI token from the `/nessus6.js` bundle: after the identifier
/// `getApiToken`, within the same object entry (no `}` in between), the first `return`
/// followed by a quoted run of hex digits and hyphens.
pub(crate) fn extract_api_token(js: &str) -> Option<String> {
    let mut rest = js;
    while let Some(pos) = rest.find("getApiToken") {
        let after = &rest[pos + "getApiToken".len()..];
        let scope = &after[..after.find('}').unwrap_or(after.len())];
        if let Some(ret) = scope.find("return") {
            let tail = scope[ret + "return".len()..].trim_start();
            let mut chars = tail.chars();
            if let Some(q @ ('"' | '\'')) = chars.next() {
                let body = &tail[1..];
                let end = body
                    .find(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
                    .unwrap_or(body.len());
                if end > 0 && body[end..].starts_with(q) {
                    return Some(body[..end].to_owned());
                }
            }
        }
        rest = after;
    }
    None
}

/// Error for a web-UI token that cannot be found.
pub(crate) fn api_token_missing(reason: &str) -> Error {
    Error::Unauthorized {
        endpoint: "GET /nessus6.js".into(),
        message: format!("could not obtain the web-UI X-API-Token: {reason}"),
    }
}

/// Error type alias used by the token fetcher.
pub(crate) type TokenResult = Result<SecretString>;

#[cfg(test)]
mod tests {
    use super::extract_api_token;

    #[test]
    fn token_extraction() {
        let js = r#"x={a:1},{key:"getApiToken",value:function(){return"778F4A9C-D797-4817-B110-EC427B724486"}}"#;
        assert_eq!(
            extract_api_token(js).as_deref(),
            Some("778F4A9C-D797-4817-B110-EC427B724486")
        );
        let js = "getApiToken: function() { return 'af824aba-e642-4e63-a49b-0810542ad8a5'; }";
        assert_eq!(
            extract_api_token(js).as_deref(),
            Some("af824aba-e642-4e63-a49b-0810542ad8a5")
        );
        assert_eq!(extract_api_token("getApiToken(){} return \"abc\""), None);
        assert_eq!(extract_api_token("nothing here"), None);
    }
}
