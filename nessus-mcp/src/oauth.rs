//! OAuth 2.1 resource server: verify an access token an identity provider issued for
//! this server, and map it to a [`Principal`] carrying the token's scopes.
//!
//! - **JWT access tokens** are verified locally with `jsonwebtoken` (no crypto here):
//!   RS256, ES256 or EdDSA only (never `none`, never an HMAC algorithm), the key chosen
//!   by `kid` from the provider's JWKS, then `iss`, `aud` (the configured audience, the
//!   RFC 8707 resource), `exp` and `nbf` with the configured leeway.
//! - **Keys** come from discovery (`{issuer}/.well-known/openid-configuration`, else
//!   RFC 8414's `oauth-authorization-server`) or `auth.oauth.jwks_uri`, and are cached.
//!   An unknown `kid` refreshes them, at most once per [`DEFAULT_REFRESH_INTERVAL`] (every
//!   5 s while no key is cached); an unreachable provider leaves the cached keys working
//!   and fails closed on new ones. Keys older than [`DEFAULT_MAX_KEY_AGE`] are refetched by
//!   the next token, so a withdrawn key stops verifying without a new `kid`.
//! - **Opaque tokens** go to the provider's RFC 7662 introspection endpoint when
//!   `auth.oauth.introspection` is configured.
//!
//! No token, client secret or claim value other than the principal name reaches a log
//! line, an answer or a `Debug` rendering.

use std::{
    fmt,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm},
};
use nessus_core::{OAuthSettings, ScopeNames};
use nessus_queue::service::{Scope, Scopes};
use secrecy::ExposeSecret;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use crate::auth::Principal;

/// The shortest time between two JWKS fetches caused by unknown `kid`s.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// How old cached keys may grow before the next token refetches them, so a key the
/// provider withdrew (rotated out, or compromised) stops verifying within this time even
/// when no new `kid` appears. A failed refetch keeps the cached keys.
pub const DEFAULT_MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// The shortest time between two key fetches while no key is cached.
const EMPTY_RETRY_INTERVAL: Duration = Duration::from_secs(5);
/// How long one request to the provider may take.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest principal name a claim may give (the queue's principal limit).
const MAX_PRINCIPAL_LEN: usize = nessus_queue::AUDIT_MAX_PRINCIPAL;
/// The only signature algorithms accepted.
const ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Why a token was refused. The text is safe to send to the caller and to log: it never
/// holds the token or a claim value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// Not a token this server accepts (malformed, bad signature, wrong algorithm,
    /// wrong issuer or audience, expired, inactive, no principal).
    #[error("{0}")]
    Invalid(&'static str),
    /// The provider could not be asked (keys, discovery or introspection): fail closed.
    #[error("{0}")]
    Unavailable(&'static str),
}

impl Rejection {
    /// The metric label.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Unavailable(_) => "provider_unavailable",
        }
    }
}

/// The provider's endpoints, from discovery.
#[derive(Debug, Clone, Default)]
struct Endpoints {
    jwks_uri: Option<String>,
    introspection_endpoint: Option<String>,
}

#[derive(Default)]
struct KeyCache {
    endpoints: Option<Endpoints>,
    keys: Vec<Jwk>,
    /// The last fetch attempt (the refresh bound counts failures too).
    last_fetch: Option<Instant>,
    /// The last fetch that succeeded (how old the cached keys are).
    last_success: Option<Instant>,
}

/// Verifies access tokens for one configured provider. Cheap to share (`Arc`).
pub struct OAuthVerifier {
    settings: OAuthSettings,
    http: reqwest::Client,
    refresh_interval: Duration,
    max_key_age: Duration,
    cache: RwLock<KeyCache>,
    /// One fetch at a time; later callers find the fresh keys.
    fetching: Mutex<()>,
}

impl fmt::Debug for OAuthVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthVerifier")
            .field("issuer", &self.settings.issuer())
            .field("audience", &self.settings.audience())
            .finish_non_exhaustive()
    }
}

impl OAuthVerifier {
    /// A verifier for `settings` (nothing is fetched until [`prefetch`](Self::prefetch)
    /// or the first token).
    pub fn new(settings: OAuthSettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            settings,
            http,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            max_key_age: DEFAULT_MAX_KEY_AGE,
            cache: RwLock::default(),
            fetching: Mutex::new(()),
        }
    }

    /// Change the shortest time between two key fetches (tests use a short one).
    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Change how old cached keys may grow before a token triggers a refetch (tests use a
    /// short age).
    pub fn with_max_key_age(mut self, age: Duration) -> Self {
        self.max_key_age = age;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// Discover the endpoints and fetch the keys now, so the first caller does not wait
    /// and a misconfiguration shows at start. A failure is logged, not fatal: the
    /// provider may come up later.
    pub async fn prefetch(&self) {
        let _guard = self.fetching.lock().await;
        if let Err(e) = self.fetch_keys().await {
            tracing::warn!(issuer = %self.settings.issuer(), error = %e,
                "OAuth provider not reachable at start; tokens are refused until it answers");
        }
    }

    /// The principal a token names, with its scopes, or why it is refused.
    pub async fn verify(&self, token: &str) -> Result<Principal, Rejection> {
        if token.len() > 16 * 1024 {
            return Err(Rejection::Invalid("the access token is too long"));
        }
        if token.split('.').count() == 3 {
            return self.verify_jwt(token).await;
        }
        if self.settings.introspection().is_some() {
            return self.introspect(token).await;
        }
        Err(Rejection::Invalid(
            "the access token is not a JWT this server can verify",
        ))
    }

    async fn verify_jwt(&self, token: &str) -> Result<Principal, Rejection> {
        // An unknown or unsupported `alg` (including `none`) fails to parse here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Rejection::Invalid("the access token's header is not valid"))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(Rejection::Invalid(
                "the access token's algorithm is not accepted (RS256, ES256 or EdDSA)",
            ));
        }
        let stale_refetch_failed = self.refresh_if_stale().await.is_err();
        let key = match self.key_for(header.kid.as_deref(), header.alg).await {
            Some(k) => k,
            None => {
                if stale_refetch_failed {
                    return Err(Rejection::Unavailable(
                        "the identity provider's keys could not be fetched",
                    ));
                }
                self.refresh_for_unknown_kid().await?;
                self.key_for(header.kid.as_deref(), header.alg)
                    .await
                    .ok_or(Rejection::Invalid(
                        "the access token is signed with a key the provider does not publish",
                    ))?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.leeway = self.settings.leeway().as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[self.settings.issuer()]);
        validation.set_audience(&[self.settings.audience()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, &key, &validation)
            .map_err(|e| Rejection::Invalid(jwt_reason(e.kind())))?;
        self.principal_from(&data.claims)
    }

    /// The decoding key for `kid` and `alg` among the cached keys: the JWK's type and
    /// curve must fit the algorithm, and its `alg`, when given, must be it.
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
        let cache = self.cache.read().await;
        let fits = |jwk: &&Jwk| {
            let kid_ok = match kid {
                Some(k) => jwk.common.key_id.as_deref() == Some(k),
                None => true,
            };
            kid_ok && key_fits(jwk, alg)
        };
        let mut candidates = cache.keys.iter().filter(fits);
        let first = candidates.next()?;
        // Without a `kid` the key must be unambiguous.
        if kid.is_none() && candidates.next().is_some() {
            return None;
        }
        DecodingKey::from_jwk(first).ok()
    }

    /// Fetch the keys again after an unknown `kid`, unless a fetch happened within the
    /// refresh interval (then the keys are as fresh as they may be).
    async fn refresh_for_unknown_kid(&self) -> Result<(), Rejection> {
        let _guard = self.fetching.lock().await;
        let recent = {
            let cache = self.cache.read().await;
            // With no key at all (the provider was down at start) retry sooner: nothing
            // can be verified until a fetch succeeds.
            let interval = if cache.keys.is_empty() {
                self.refresh_interval.min(EMPTY_RETRY_INTERVAL)
            } else {
                self.refresh_interval
            };
            cache.last_fetch.is_some_and(|t| t.elapsed() < interval)
        };
        if recent {
            return Ok(());
        }
        self.fetch_keys().await.map_err(|e| {
            tracing::warn!(issuer = %self.settings.issuer(), error = %e, "could not refresh the OAuth signing keys");
            Rejection::Unavailable("the identity provider's keys could not be fetched")
        })
    }

    /// Refetch keys older than the maximum age (within the refresh bound); a failure is
    /// logged, the cached keys stay in force, and `Err` tells the caller the provider did
    /// not answer just now.
    async fn refresh_if_stale(&self) -> Result<(), ()> {
        let stale = |c: &KeyCache| {
            c.last_success
                .is_some_and(|t| t.elapsed() >= self.max_key_age)
                && c.last_fetch
                    .is_some_and(|t| t.elapsed() >= self.refresh_interval)
        };
        if !stale(&*self.cache.read().await) {
            return Ok(());
        }
        let _guard = self.fetching.lock().await;
        if !stale(&*self.cache.read().await) {
            return Ok(());
        }
        self.fetch_keys().await.map_err(|e| {
            tracing::warn!(issuer = %self.settings.issuer(), error = %e,
                "could not refetch the OAuth signing keys; the cached ones stay in force");
        })
    }

    /// Discover (once) and fetch the JWKS. The time of the attempt is recorded even when
    /// it fails, so an unreachable provider is not asked more often than the interval.
    async fn fetch_keys(&self) -> Result<(), String> {
        self.cache.write().await.last_fetch = Some(Instant::now());
        let endpoints = self.endpoints().await?;
        let uri = endpoints
            .jwks_uri
            .ok_or("the provider's metadata names no jwks_uri")?;
        let body: Value = self.get_json(&uri).await?;
        let keys: Vec<Jwk> = body
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no keys array")?
            .iter()
            .filter(|k| k.get("use").is_none_or(|u| u == "sig"))
            .filter_map(|k| serde_json::from_value::<Jwk>(k.clone()).ok())
            .filter(|k| ALGORITHMS.iter().any(|a| key_fits(k, *a)))
            .collect();
        tracing::info!(issuer = %self.settings.issuer(), keys = keys.len(), "fetched the OAuth signing keys");
        let mut cache = self.cache.write().await;
        cache.keys = keys;
        cache.last_success = Some(Instant::now());
        Ok(())
    }

    /// The endpoints: discovered once, with the file's `jwks_uri` and introspection
    /// endpoint taking precedence.
    async fn endpoints(&self) -> Result<Endpoints, String> {
        if let Some(e) = self.cache.read().await.endpoints.clone() {
            return Ok(e);
        }
        let configured_introspection = self
            .settings
            .introspection()
            .and_then(|i| i.endpoint())
            .map(str::to_owned);
        let need_discovery = self.settings.jwks_uri().is_none()
            || (self.settings.introspection().is_some() && configured_introspection.is_none());
        let discovered = if need_discovery {
            self.discover().await?
        } else {
            Endpoints::default()
        };
        let endpoints = Endpoints {
            jwks_uri: self
                .settings
                .jwks_uri()
                .map(str::to_owned)
                .or(discovered.jwks_uri),
            introspection_endpoint: configured_introspection.or(discovered.introspection_endpoint),
        };
        self.cache.write().await.endpoints = Some(endpoints.clone());
        Ok(endpoints)
    }

    /// OpenID Connect discovery, else RFC 8414. The metadata's `issuer` must be the
    /// configured one (a mix-up defence).
    async fn discover(&self) -> Result<Endpoints, String> {
        let issuer = self.settings.issuer().trim_end_matches('/');
        let mut last = String::new();
        for url in discovery_urls(issuer) {
            match self.get_json(&url).await {
                Ok(meta) => {
                    let named = meta.get("issuer").and_then(Value::as_str).unwrap_or("");
                    if named.trim_end_matches('/') != issuer {
                        return Err(format!(
                            "the metadata at {url} names another issuer; check auth.oauth.issuer"
                        ));
                    }
                    let text = |k: &str| meta.get(k).and_then(Value::as_str).map(str::to_owned);
                    return Ok(Endpoints {
                        jwks_uri: text("jwks_uri"),
                        introspection_endpoint: text("introspection_endpoint"),
                    });
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", transport_reason(&e)))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status().as_u16()));
        }
        resp.json()
            .await
            .map_err(|_| format!("GET {url}: not a JSON document"))
    }

    /// RFC 7662: ask the provider whether an opaque token is active, then apply the same
    /// issuer, audience and expiry rules as for a JWT.
    async fn introspect(&self, token: &str) -> Result<Principal, Rejection> {
        let unavailable = Rejection::Unavailable("the identity provider could not be asked");
        let Some(client) = self.settings.introspection() else {
            return Err(Rejection::Invalid("opaque tokens are not accepted"));
        };
        let endpoint = self
            .endpoints()
            .await
            .map_err(|_| unavailable.clone())?
            .introspection_endpoint
            .ok_or(Rejection::Invalid(
                "the provider offers no introspection endpoint",
            ))?;
        let resp = self
            .http
            .post(&endpoint)
            .basic_auth(
                client.client_id(),
                Some(client.client_secret().secret().expose_secret()),
            )
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|_| unavailable.clone())?;
        if !resp.status().is_success() {
            tracing::warn!(
                status = resp.status().as_u16(),
                "token introspection failed"
            );
            return Err(unavailable);
        }
        let claims: serde_json::Map<String, Value> =
            resp.json().await.map_err(|_| unavailable.clone())?;
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(Rejection::Invalid("the access token is not active"));
        }
        if let Some(iss) = claims.get("iss")
            && iss.as_str() != Some(self.settings.issuer())
        {
            return Err(Rejection::Invalid(
                "the access token is from another issuer",
            ));
        }
        if !audience_holds(claims.get("aud"), self.settings.audience()) {
            return Err(Rejection::Invalid(
                "the access token is for another audience",
            ));
        }
        let now = jsonwebtoken::get_current_timestamp();
        let leeway = self.settings.leeway().as_secs();
        match claims.get("exp").and_then(Value::as_u64) {
            Some(exp) if exp + leeway >= now => {}
            _ => return Err(Rejection::Invalid("the access token has expired")),
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_u64)
            && nbf > now + leeway
        {
            return Err(Rejection::Invalid("the access token is not valid yet"));
        }
        self.principal_from(&claims)
    }

    /// The principal from verified claims: the configured claim names it (for `sub`,
    /// an introspection answer without one falls back to `client_id`: a
    /// client-credentials token's subject is its client, RFC 9068 §2.2), `scope`
    /// (space-separated, RFC 9068) or `scp` (a list or a string, Entra ID and Okta)
    /// grants the capabilities.
    fn principal_from(
        &self,
        claims: &serde_json::Map<String, Value>,
    ) -> Result<Principal, Rejection> {
        let claim = self.settings.principal_claim();
        let name = claims
            .get(claim)
            .or_else(|| (claim == "sub").then(|| claims.get("client_id")).flatten())
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or(Rejection::Invalid(
                "the access token lacks the claim that names the principal",
            ))?;
        if name.len() > MAX_PRINCIPAL_LEN || name.chars().any(char::is_control) {
            return Err(Rejection::Invalid(
                "the access token's principal claim is not a usable name",
            ));
        }
        if Principal::is_reserved(name) {
            return Err(Rejection::Invalid(
                "the access token names a reserved principal",
            ));
        }
        let granted = granted_scopes(claims);
        let scopes = scopes_of(self.settings.scopes(), granted.iter().map(String::as_str));
        Ok(Principal::with_scopes(name, scopes))
    }
}

/// RFC 9728's metadata address for `audience` (the resource): the well-known path
/// inserted before the resource's path, `https://host/.well-known/oauth-protected-resource/mcp`
/// for `https://host/mcp`.
pub(crate) fn resource_metadata_url(audience: &str) -> String {
    let (origin, path) = split_origin(audience);
    format!("{origin}{}{path}", crate::http::PROTECTED_RESOURCE_PATH)
}

/// `scheme://authority` and the path (empty, or starting with `/`, no trailing `/`).
pub(crate) fn split_origin(url: &str) -> (&str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let path_at = url[start..].find('/').map_or(url.len(), |i| start + i);
    (&url[..path_at], url[path_at..].trim_end_matches('/'))
}

/// The RFC 9728 document for these settings.
pub(crate) fn resource_metadata(settings: &OAuthSettings) -> Value {
    serde_json::json!({
        "resource": settings.audience(),
        "authorization_servers": [settings.issuer()],
        "scopes_supported": settings.scopes().all(),
        "bearer_methods_supported": ["header"],
        "resource_name": "Nessus MCP server",
    })
}

/// The scope strings a token grants.
fn granted_scopes(claims: &serde_json::Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["scope", "scp"] {
        match claims.get(key) {
            Some(Value::String(s)) => out.extend(s.split_whitespace().map(str::to_owned)),
            Some(Value::Array(a)) => {
                out.extend(a.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    out
}

/// The capabilities the granted scope strings map to under `names`.
pub(crate) fn scopes_of<'a>(names: &ScopeNames, granted: impl Iterator<Item = &'a str>) -> Scopes {
    let mut scopes = Scopes::empty();
    for g in granted {
        for s in Scope::ALL {
            if scope_name(names, s) == g {
                scopes = scopes.with(s);
            }
        }
    }
    scopes
}

/// The configured scope string of a capability.
pub(crate) fn scope_name(names: &ScopeNames, scope: Scope) -> &str {
    match scope {
        Scope::Read => names.read(),
        Scope::Scan => names.scan(),
        Scope::Authenticated => names.authenticated(),
        _ => names.admin(),
    }
}

/// Whether an `aud` value (a string or a list) holds `audience`.
fn audience_holds(aud: Option<&Value>, audience: &str) -> bool {
    match aud {
        Some(Value::String(s)) => s == audience,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(audience)),
        _ => false,
    }
}

/// Whether a JWK can verify `alg`: RSA for RS256, EC P-256 for ES256, OKP Ed25519 for
/// EdDSA, and its `alg` (when given) is that algorithm. Symmetric keys never fit.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let kind_ok = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        _ => false,
    };
    let alg_ok = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => alg == Algorithm::RS256,
        Some(KeyAlgorithm::ES256) => alg == Algorithm::ES256,
        Some(KeyAlgorithm::EdDSA) => alg == Algorithm::EdDSA,
        Some(_) => false,
    };
    kind_ok && alg_ok
}

/// Discovery addresses for `issuer`: OpenID Connect's (appended), then RFC 8414's
/// (inserted before the issuer's path).
fn discovery_urls(issuer: &str) -> Vec<String> {
    let mut urls = vec![format!("{issuer}/.well-known/openid-configuration")];
    let (scheme, rest) = issuer.split_once("://").unwrap_or(("https", issuer));
    let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
    let path = if path.is_empty() {
        String::new()
    } else {
        format!("/{path}")
    };
    urls.push(format!(
        "{scheme}://{host}/.well-known/oauth-authorization-server{path}"
    ));
    urls
}

fn jwt_reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::ExpiredSignature => "the access token has expired",
        K::ImmatureSignature => "the access token is not valid yet",
        K::InvalidIssuer => "the access token is from another issuer",
        K::InvalidAudience => "the access token is for another audience",
        K::InvalidSignature => "the access token's signature does not verify",
        K::InvalidAlgorithm => "the access token's algorithm does not fit its key",
        K::MissingRequiredClaim(_) => "the access token lacks exp, iss or aud",
        _ => "the access token is not valid",
    }
}

/// A transport failure, without the URL's query (none here) or any body.
fn transport_reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or unreachable"
    } else {
        "request failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_urls_follow_oidc_and_rfc8414() {
        assert_eq!(
            discovery_urls("https://idp.example/realms/sec"),
            [
                "https://idp.example/realms/sec/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/sec"
            ]
        );
        assert_eq!(
            discovery_urls("http://127.0.0.1:9"),
            [
                "http://127.0.0.1:9/.well-known/openid-configuration",
                "http://127.0.0.1:9/.well-known/oauth-authorization-server"
            ]
        );
    }

    #[test]
    fn scopes_map_from_scope_and_scp() {
        let names = ScopeNames::default();
        let cases: [(Value, Scopes); 4] = [
            (
                serde_json::json!({"scope": "openid nessus:read nessus:scan"}),
                Scopes::empty().with(Scope::Read).with(Scope::Scan),
            ),
            (
                serde_json::json!({"scp": ["nessus:admin", "nessus:scan:authenticated"]}),
                Scopes::empty()
                    .with(Scope::Admin)
                    .with(Scope::Authenticated),
            ),
            (
                serde_json::json!({"scp": "nessus:read"}),
                Scopes::empty().with(Scope::Read),
            ),
            (
                serde_json::json!({"scope": "nessus:readx admin"}),
                Scopes::empty(),
            ),
        ];
        for (claims, want) in cases {
            let Value::Object(m) = claims else {
                unreachable!()
            };
            let granted = granted_scopes(&m);
            assert_eq!(
                scopes_of(&names, granted.iter().map(String::as_str)),
                want,
                "{m:?}"
            );
        }
    }

    #[test]
    fn metadata_url_inserts_the_well_known_path() {
        for (aud, want) in [
            (
                "https://mcp.example/mcp",
                "https://mcp.example/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://mcp.example/",
                "https://mcp.example/.well-known/oauth-protected-resource",
            ),
            (
                "http://127.0.0.1:8/a/mcp",
                "http://127.0.0.1:8/.well-known/oauth-protected-resource/a/mcp",
            ),
        ] {
            assert_eq!(resource_metadata_url(aud), want);
        }
    }

    #[test]
    fn audience_must_be_held() {
        let aud = "https://mcp.example/mcp";
        assert!(audience_holds(Some(&Value::from(aud)), aud));
        assert!(audience_holds(Some(&serde_json::json!(["x", aud])), aud));
        assert!(!audience_holds(
            Some(&Value::from("https://mcp.example")),
            aud
        ));
        assert!(!audience_holds(None, aud));
    }
}
