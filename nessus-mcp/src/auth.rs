//! Bearer-token authentication: several tokens, each naming a principal.
//!
//! Tokens are compared in constant time (`subtle`) so response timing does not
//! reveal how much of a guess was right. The principal a token names is put
//! into the request's extensions; tools read it to scope idempotency keys and
//! task visibility.

use std::{fmt, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Who is calling: the library's principal (the name a token carries, or the implicit
/// admin of stdio and of a token-less loopback server).
pub use nessus_queue::service::Principal;

use crate::oauth::{OAuthVerifier, Rejection};
use nessus_queue::service::Scope;

/// The set of accepted bearer tokens. Debug output never shows a token.
#[derive(Clone, Default)]
pub struct TokenSet {
    entries: Vec<(Principal, SecretString)>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(p, _)| p.as_str()))
            .finish()
    }
}

/// Why a token specification could not be parsed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenSpecError {
    /// An entry was not of the form `principal=token`.
    #[error("token entry #{index} is not of the form principal=token")]
    Malformed {
        /// 1-based position of the entry.
        index: usize,
    },
    /// A token claimed a name reserved for the implicit admins (`local`, `anonymous`).
    #[error(
        "principal name '{principal}' is reserved (for stdio and the token-less loopback server); give the token another name"
    )]
    Reserved {
        /// The name.
        principal: String,
    },
    /// A token was shorter than the minimum length.
    #[error("the token of principal '{principal}' is shorter than {min} characters")]
    TooShort {
        /// The principal whose token is too short.
        principal: String,
        /// The minimum length.
        min: usize,
    },
}

/// Tokens shorter than this are refused: they could be guessed.
pub const MIN_TOKEN_LEN: usize = 16;

impl TokenSet {
    /// An empty set (token-less mode).
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a token for `principal`.
    pub fn insert(
        &mut self,
        principal: Principal,
        token: SecretString,
    ) -> Result<(), TokenSpecError> {
        if Principal::is_reserved(principal.as_str()) {
            return Err(TokenSpecError::Reserved {
                principal: principal.as_str().to_owned(),
            });
        }
        if token.expose_secret().len() < MIN_TOKEN_LEN {
            return Err(TokenSpecError::TooShort {
                principal: principal.as_str().to_owned(),
                min: MIN_TOKEN_LEN,
            });
        }
        self.entries.push((principal, token));
        Ok(())
    }

    /// Parse `alice=tok1,bob=tok2` (commas or newlines separate entries; a
    /// line starting with `#` is a comment), as found in `NESSUS_MCP_TOKENS` or
    /// a tokens file.
    pub fn parse_spec(spec: &str) -> Result<Self, TokenSpecError> {
        let mut set = Self::new();
        set.extend_from_spec(spec)?;
        Ok(set)
    }

    /// Add the entries of a `principal=token` list to this set.
    pub fn extend_from_spec(&mut self, spec: &str) -> Result<(), TokenSpecError> {
        let entries = spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (i, entry) in entries.enumerate() {
            let (principal, token) = entry
                .split_once('=')
                .filter(|(p, t)| !p.trim().is_empty() && !t.trim().is_empty())
                .ok_or(TokenSpecError::Malformed { index: i + 1 })?;
            self.insert(
                Principal::new(principal.trim()),
                SecretString::from(token.trim().to_owned()),
            )?;
        }
        Ok(())
    }

    /// True when no token is configured.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The principal a presented token belongs to. Every configured token is
    /// compared (no early exit) so timing does not depend on which one matched.
    pub fn authenticate(&self, presented: &[u8]) -> Option<Principal> {
        let mut found = None;
        for (principal, token) in &self.entries {
            let equal: bool = token.expose_secret().as_bytes().ct_eq(presented).into();
            if equal && found.is_none() {
                found = Some(principal.clone());
            }
        }
        found
    }
}

/// Who may call over HTTP: the static tokens and/or the OAuth provider's tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct AuthState {
    pub(crate) tokens: TokenSet,
    pub(crate) oauth: Option<Arc<OAuthVerifier>>,
}

impl AuthState {
    /// The `resource_metadata` URL and the OAuth settings, when OAuth is on.
    fn oauth_challenge(&self) -> Option<(String, &nessus_core::OAuthSettings)> {
        let o = self.oauth.as_ref()?;
        Some((
            crate::oauth::resource_metadata_url(o.settings().audience()),
            o.settings(),
        ))
    }

    /// 401: without OAuth the static-token challenge as before; with it, RFC 9728's
    /// `resource_metadata` and the scopes a useful session starts with (RFC 6750 §3).
    fn unauthorized(&self, message: &'static str, invalid: bool) -> Response {
        let Some((metadata, settings)) = self.oauth_challenge() else {
            return unauthorized(message);
        };
        let scopes = settings.scopes();
        let value = if invalid {
            format!(
                "Bearer error=\"invalid_token\", error_description=\"{message}\", \
                 resource_metadata=\"{metadata}\""
            )
        } else {
            format!(
                "Bearer resource_metadata=\"{metadata}\", scope=\"{} {}\"",
                scopes.read(),
                scopes.scan()
            )
        };
        challenge(StatusCode::UNAUTHORIZED, message, &value)
    }

    /// 403 `insufficient_scope` (RFC 6750 §3.1, the MCP step-up flow): `scope` holds the
    /// scopes the token has plus the one the refused call needs, so a client that
    /// signs in again with it keeps what it could do.
    fn insufficient_scope(&self, principal: &Principal, needed: Scope, resp: Response) -> Response {
        let Some((metadata, settings)) = self.oauth_challenge() else {
            return resp;
        };
        let names = settings.scopes();
        let granted = principal.scopes().unwrap_or_default().with(needed);
        let scope: Vec<&str> = granted
            .iter()
            .map(|s| crate::oauth::scope_name(names, s))
            .collect();
        let needed_name = crate::oauth::scope_name(names, needed);
        let value = format!(
            "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{metadata}\", \
             error_description=\"this call needs the {needed_name} scope\"",
            scope.join(" ")
        );
        metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "insufficient_scope")
            .increment(1);
        let (mut parts, body) = resp.into_parts();
        parts.status = StatusCode::FORBIDDEN;
        if let Ok(v) = HeaderValue::from_str(&value) {
            parts.headers.insert(header::WWW_AUTHENTICATE, v);
        }
        Response::from_parts(parts, body)
    }
}

/// Axum middleware: require `Authorization: Bearer <token>` when tokens or OAuth are
/// configured; otherwise tag the request as [`Principal::anonymous`]. A static token
/// is tried first (constant time), then the OAuth provider's verification.
pub(crate) async fn require_bearer(
    State(auth): State<Arc<AuthState>>,
    mut req: Request,
    next: Next,
) -> Response {
    if auth.tokens.is_empty() && auth.oauth.is_none() {
        req.extensions_mut().insert(Principal::anonymous());
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    let Some(presented) = presented else {
        metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "missing").increment(1);
        return auth.unauthorized(
            "missing bearer token: send 'Authorization: Bearer <token>'",
            false,
        );
    };
    if let Some(principal) = auth.tokens.authenticate(presented.as_bytes()) {
        req.extensions_mut().insert(principal);
        return next.run(req).await;
    }
    let Some(oauth) = &auth.oauth else {
        metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => "invalid").increment(1);
        return unauthorized("invalid bearer token");
    };
    match oauth.verify(presented).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal.clone());
            let resp = next.run(req).await;
            match principal.refused_scope() {
                Some(needed) => auth.insufficient_scope(&principal, needed, resp),
                None => resp,
            }
        }
        Err(rejection) => {
            metrics::counter!(crate::telemetry::AUTH_FAILURES, "reason" => rejection.reason())
                .increment(1);
            tracing::info!(reason = %rejection, "refused an OAuth access token");
            let message = match rejection {
                Rejection::Invalid(m) | Rejection::Unavailable(m) => m,
            };
            auth.unauthorized(message, true)
        }
    }
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive and followed by one or more spaces (RFC 7235 §2.1,
/// RFC 6750 §2.1); surrounding whitespace is ignored.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim();
    (!token.is_empty()).then_some(token)
}

fn challenge(status: StatusCode, message: &'static str, value: &str) -> Response {
    let mut resp = (status, message).into_response();
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}

fn unauthorized(message: &'static str) -> Response {
    let mut resp = (StatusCode::UNAUTHORIZED, message).into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"nessus-mcp\""),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_authenticates() {
        let set =
            TokenSet::parse_spec("alice=aaaaaaaaaaaaaaaa1, bob=bbbbbbbbbbbbbbbb2\n# c\n").unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.authenticate(b"bbbbbbbbbbbbbbbb2").unwrap().as_str(),
            "bob"
        );
        assert!(set.authenticate(b"bbbbbbbbbbbbbbbb").is_none());
        assert!(set.authenticate(b"").is_none());
        assert!(!format!("{set:?}").contains("aaaa"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        let cases = [
            ("Bearer tok", Some("tok")),
            ("bearer tok", Some("tok")),
            ("BEARER tok", Some("tok")),
            ("BeArEr    tok  ", Some("tok")),
            ("  Bearer\ttok", Some("tok")),
            ("Bearer", None),
            ("Bearer   ", None),
            ("Bearertok", None),
            ("Basic dXNlcjpwYXNz", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(bearer_credentials(value), want, "{value:?}");
        }
    }

    #[test]
    fn rejects_bad_specs() {
        assert!(matches!(
            TokenSet::parse_spec("nobody"),
            Err(TokenSpecError::Malformed { index: 1 })
        ));
        assert!(matches!(
            TokenSet::parse_spec("a=short"),
            Err(TokenSpecError::TooShort { .. })
        ));
    }
}
