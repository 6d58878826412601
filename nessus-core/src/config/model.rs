//! The loaded configuration: plain types with getters, secrets in `secrecy` wrappers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::client::TlsOptions;
use crate::error::Error;
use crate::models::{EscalationMethod, SshAuth, SshCredentials};
use crate::targets::{ApprovedTargets, TargetPolicy};

/// A secret from the config and where it came from (never its value).
#[derive(Clone)]
pub struct ConfigSecret {
    value: SecretString,
    origin: SecretOrigin,
}

impl ConfigSecret {
    pub(crate) fn new(value: String, origin: SecretOrigin) -> Self {
        Self {
            value: SecretString::from(value),
            origin,
        }
    }

    /// The secret; call `secrecy::ExposeSecret::expose_secret` at the point of use.
    pub fn secret(&self) -> &SecretString {
        &self.value
    }

    /// Where the value came from.
    pub fn origin(&self) -> &SecretOrigin {
        &self.origin
    }
}

/// One `webhooks` entry: where task events are POSTed, signed with `secret`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// https, or http to a loopback host.
    pub url: String,
    /// The HMAC-SHA256 key (never logged).
    pub secret: ConfigSecret,
    /// Event names: task_completed, task_failed, task_timeout, approval_needed.
    pub events: Vec<String>,
    /// Only tasks of this pool.
    pub pool: Option<String>,
    /// Only tasks of this principal.
    pub principal: Option<String>,
}

/// The event names a webhook may subscribe to.
pub const WEBHOOK_EVENTS: [&str; 4] = [
    "task_completed",
    "task_failed",
    "task_timeout",
    "approval_needed",
];

impl fmt::Debug for ConfigSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConfigSecret([redacted], {})", self.origin)
    }
}

/// Where a secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretOrigin {
    /// Written in the file.
    Literal,
    /// From environment variables (`${VAR}` interpolation or `{env: VAR}`).
    Env(Vec<String>),
    /// Read from a file (`{file: PATH}`).
    File(PathBuf),
}

impl fmt::Display for SecretOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Literal => f.write_str("written in the config file"),
            Self::Env(vars) => write!(f, "from env {}", vars.join(", ")),
            Self::File(path) => write!(f, "from file {}", path.display()),
        }
    }
}

/// How a scanner instance authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMode {
    /// `X-ApiKeys: accessKey=…; secretKey=…` (preferred).
    ApiKeys,
    /// `POST /session` with username and password, `X-Cookie: token=…`.
    Password,
    /// The predecessor's web-UI mode: session plus the `X-API-Token` scraped from
    /// `/nessus6.js`, needed by editions whose `scan_api` is off. Only when configured.
    WebToken,
}

impl AuthMode {
    /// `api_keys`, `password` or `web_token`, as written in the config.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::ApiKeys => "api_keys",
            Self::Password => "password",
            Self::WebToken => "web_token",
        }
    }
}

impl fmt::Display for AuthMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials of a scanner instance.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum InstanceAuth {
    /// API keys.
    ApiKeys {
        /// The access key.
        access_key: ConfigSecret,
        /// The secret key.
        secret_key: ConfigSecret,
    },
    /// Username and password, in [`AuthMode::Password`] or [`AuthMode::WebToken`] mode.
    Session {
        /// Which session flavour.
        mode: AuthMode,
        /// The Nessus user.
        username: String,
        /// Its password.
        password: ConfigSecret,
    },
}

impl InstanceAuth {
    /// The auth mode.
    pub fn mode(&self) -> AuthMode {
        match self {
            Self::ApiKeys { .. } => AuthMode::ApiKeys,
            Self::Session { mode, .. } => *mode,
        }
    }
}

/// One enabled scanner instance.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub(crate) pool: String,
    pub(crate) instance_id: String,
    pub(crate) name: String,
    pub(crate) url: String,
    pub(crate) raw_url: String,
    pub(crate) auth: InstanceAuth,
    pub(crate) tls: TlsOptions,
    pub(crate) max_concurrent_scans: u32,
    pub(crate) timeout: Duration,
}

impl InstanceConfig {
    /// The pool it belongs to.
    pub fn pool(&self) -> &str {
        &self.pool
    }

    /// Its id within the pool.
    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    /// `{pool}:{instance_id}`, the predecessor's instance key.
    pub fn key(&self) -> String {
        format!("{}:{}", self.pool, self.instance_id)
    }

    /// Display name (defaults to the instance id).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL after `${VAR}` interpolation, without trailing `/`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as written in the file (e.g. `${NESSUS_URL:-https://…}`), with any
    /// `user:password@` masked: what `list_scanners` shows.
    pub fn display_url(&self) -> String {
        mask_userinfo(&self.raw_url)
    }

    /// Credentials.
    pub fn auth(&self) -> &InstanceAuth {
        &self.auth
    }

    /// TLS settings.
    pub fn tls(&self) -> &TlsOptions {
        &self.tls
    }

    /// Maximum scans running at once on this instance.
    pub fn max_concurrent_scans(&self) -> u32 {
        self.max_concurrent_scans
    }

    /// Per-request HTTP timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// A pool of interchangeable scanner instances with one target policy.
#[derive(Debug, Clone)]
pub struct Pool {
    pub(crate) name: String,
    pub(crate) instances: Vec<InstanceConfig>,
    pub(crate) disabled: Vec<String>,
    pub(crate) policy: TargetPolicy,
    pub(crate) approval: Option<ApprovalRules>,
}

/// A pool's `approval:` rules: which scans wait in `pending_approval` until an admin
/// decides. Absent: no scan of the pool needs approval.
#[derive(Debug, Clone)]
pub struct ApprovalRules {
    /// Targets inside this part of the allow-list need no approval; `None`: the
    /// targets alone never ask for one.
    pub(crate) auto_approve: Option<TargetPolicy>,
    /// The `auto_approve` entries as written (for `describe`).
    pub(crate) auto_approve_text: Vec<String>,
    /// Authenticated scans need approval.
    pub(crate) authenticated: bool,
    /// Scans of more hosts than this need approval.
    pub(crate) max_hosts: Option<u64>,
    /// How long a request waits before it expires (default 24 h).
    pub(crate) expires_after: Duration,
}

/// Default of `approval.expires_after`.
pub const DEFAULT_APPROVAL_EXPIRY: Duration = Duration::from_secs(24 * 3600);

impl ApprovalRules {
    /// How long a request may wait for a decision.
    pub fn expires_after(&self) -> Duration {
        self.expires_after
    }

    /// The `auto_approve` entries as configured (`None`: not set).
    pub fn auto_approve(&self) -> Option<&[String]> {
        self.auto_approve
            .as_ref()
            .map(|_| self.auto_approve_text.as_slice())
    }

    /// Whether authenticated scans need approval.
    pub fn authenticated(&self) -> bool {
        self.authenticated
    }

    /// Host count above which a scan needs approval.
    pub fn max_hosts(&self) -> Option<u64> {
        self.max_hosts
    }

    /// The one approval rule: why a scan of `approved` targets (already inside the
    /// pool's target policy), authenticated or not, must wait for an admin; `None`
    /// when it may be queued at once. Every reason that applies is named.
    pub fn reason(&self, approved: &ApprovedTargets, authenticated: bool) -> Option<String> {
        let mut why = Vec::new();
        if authenticated && self.authenticated {
            why.push("authenticated scans in this pool need an admin's approval".to_owned());
        }
        if let Some(max) = self.max_hosts
            && approved.host_count() > u128::from(max)
        {
            why.push(format!(
                "{} hosts is more than the {max} this pool runs without approval",
                approved.host_count()
            ));
        }
        if let Some(auto) = &self.auto_approve
            && let Err(refusal) = auto.check(&approved.to_nessus_text())
        {
            let outside: Vec<&str> = refusal
                .refusals()
                .iter()
                .filter_map(|r| r.target_text())
                .collect();
            why.push(format!(
                "targets outside the pool's auto_approve list: {}",
                if outside.is_empty() {
                    "(the list as a whole)".to_owned()
                } else {
                    outside.join(", ")
                }
            ));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

impl Pool {
    /// The pool name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `pool.split("_")[0]`, as the predecessor reported it.
    pub fn scanner_type(&self) -> &str {
        self.name.split('_').next().unwrap_or(&self.name)
    }

    /// Enabled instances, in file order.
    pub fn instances(&self) -> &[InstanceConfig] {
        &self.instances
    }

    /// One instance by id.
    pub fn instance(&self, instance_id: &str) -> Option<&InstanceConfig> {
        self.instances.iter().find(|i| i.instance_id == instance_id)
    }

    /// Ids of instances present but `enabled: false`.
    pub fn disabled_instances(&self) -> &[String] {
        &self.disabled
    }

    /// Sum of the instances' `max_concurrent_scans`.
    pub fn capacity(&self) -> u32 {
        self.instances.iter().map(|i| i.max_concurrent_scans).sum()
    }

    /// The target policy (deny-by-default).
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// The pool's approval rules, if it has an `approval:` section.
    pub fn approval(&self) -> Option<&ApprovalRules> {
        self.approval.as_ref()
    }

    /// Checks a target list against this pool's policy.
    pub fn check_targets(&self, targets: &str) -> Result<ApprovedTargets, Error> {
        self.policy
            .check(targets)
            .map_err(|refusal| Error::TargetsRefused {
                pool: self.name.clone(),
                refusal,
            })
    }
}

/// Settings of the MCP server process.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub(crate) data_dir: PathBuf,
    pub(crate) results_dir: PathBuf,
    pub(crate) results_url: Option<String>,
    pub(crate) results_cache_dir: PathBuf,
    pub(crate) results_cache_max_bytes: u64,
    pub(crate) default_pool: String,
    pub(crate) default_scan_timeout: Duration,
    pub(crate) mcp_tokens: Vec<ConfigSecret>,
    pub(crate) tool_output: ToolOutput,
}

/// How the MCP server shapes the results of the predecessor's nine tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolOutput {
    /// As the predecessor: a property-less object `outputSchema` and business
    /// errors as normal results with an `error` key, so clients that read
    /// fastmcp's `result.data` as a dict keep working (the default).
    #[default]
    Compatible,
    /// Typed `outputSchema`s on every tool and business errors as `isError` results.
    Typed,
}

impl ToolOutput {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compatible => "compatible",
            Self::Typed => "typed",
        }
    }
}

impl std::str::FromStr for ToolOutput {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "compatible" => Ok(Self::Compatible),
            "typed" => Ok(Self::Typed),
            other => Err(format!(
                "server.tool_output {other:?} is not compatible or typed"
            )),
        }
    }
}

impl ServerSettings {
    /// Where state lives (default `data` next to the config file).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Where exports and findings stores live (default `{data_dir}/results`).
    pub fn results_dir(&self) -> &Path {
        &self.results_dir
    }

    /// Where results live when not on local disk: `s3://bucket/prefix`, `gs://…`,
    /// `az://…` or `file:///abs/dir` (default none: `results_dir` on local disk).
    /// Credentials and endpoints come from the object store's standard environment
    /// variables (`AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, …), never from this file.
    pub fn results_url(&self) -> Option<&str> {
        self.results_url.as_deref()
    }

    /// Where an API node keeps the stores it fetched from `results_url`
    /// (default `{data_dir}/results-cache`).
    pub fn results_cache_dir(&self) -> &Path {
        &self.results_cache_dir
    }

    /// The size cap of that cache in bytes (default 2 GiB); least recently used stores
    /// are evicted past it.
    pub fn results_cache_max_bytes(&self) -> u64 {
        self.results_cache_max_bytes
    }

    /// Pool used when a request names none (default `nessus`).
    pub fn default_pool(&self) -> &str {
        &self.default_pool
    }

    /// Wall-clock limit of one scan (default 24 h, as the predecessor).
    pub fn default_scan_timeout(&self) -> Duration {
        self.default_scan_timeout
    }

    /// Bearer tokens accepted on `/mcp` (empty: no token configured).
    pub fn mcp_tokens(&self) -> &[ConfigSecret] {
        &self.mcp_tokens
    }

    /// How tool results and schemas are shaped (default `compatible`).
    pub fn tool_output(&self) -> ToolOutput {
        self.tool_output
    }
}

/// Where the task queue lives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BackendConfig {
    /// Embedded SQLite file (the default).
    Sqlite {
        /// Database file (default `{data_dir}/queue.sqlite3`).
        path: PathBuf,
    },
    /// Redis, for many processes on many hosts. The URL may hold a password.
    Redis {
        /// `redis://…` URL.
        url: ConfigSecret,
    },
    /// Redis behind Sentinel: the master is asked of the sentinels, and asked again
    /// after a failover.
    RedisSentinel {
        /// The sentinels' URLs (`redis://host:port`, `rediss://`, may hold passwords).
        sentinels: Vec<ConfigSecret>,
        /// The master's name in the sentinels' configuration.
        master: String,
        /// The data nodes' password, when it is not the sentinel URLs'.
        master_password: Option<ConfigSecret>,
    },
    /// A Redis Cluster, reached through these seed nodes.
    RedisCluster {
        /// Seed node URLs (`redis://host:port`, `rediss://`, may hold passwords).
        nodes: Vec<ConfigSecret>,
    },
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub(crate) backend: BackendConfig,
    pub(crate) lease: Duration,
    pub(crate) completed_ttl: Duration,
    pub(crate) failed_ttl: Duration,
    pub(crate) idempotency_ttl: Duration,
    pub(crate) max_queued_per_principal: Option<u64>,
    pub(crate) findings_ttl: Duration,
}

impl QueueSettings {
    /// The backend.
    pub fn backend(&self) -> &BackendConfig {
        &self.backend
    }

    /// Worker lease length (default 60 s).
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// How long completed tasks are kept (default 7 days).
    pub fn completed_ttl(&self) -> Duration {
        self.completed_ttl
    }

    /// How long failed tasks are kept (default 30 days).
    pub fn failed_ttl(&self) -> Duration {
        self.failed_ttl
    }

    /// How long idempotency keys are kept (default 48 h).
    pub fn idempotency_ttl(&self) -> Duration {
        self.idempotency_ttl
    }

    /// `queue.findings_ttl_days`: how long a fixed finding, and an asset no scan
    /// covers, stays in the findings-over-time store (default 180 days).
    pub fn findings_ttl(&self) -> Duration {
        self.findings_ttl
    }

    /// `queue.max_queued_per_principal`: the most queued tasks one principal may
    /// hold in one pool, if set (the queue's default applies otherwise).
    pub fn max_queued_per_principal(&self) -> Option<u64> {
        self.max_queued_per_principal
    }
}

/// How an SSH credential profile logs in.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProfileAuth {
    /// Password login.
    Password(ConfigSecret),
    /// Public-key login.
    PrivateKey {
        /// PEM private key.
        key: ConfigSecret,
        /// Its passphrase, if any.
        passphrase: Option<ConfigSecret>,
    },
}

/// A named SSH credential that scans may reference instead of sending secrets.
#[derive(Debug, Clone)]
pub struct CredentialProfile {
    pub(crate) name: String,
    pub(crate) username: String,
    pub(crate) auth: ProfileAuth,
    pub(crate) escalation: EscalationMethod,
    pub(crate) escalation_account: Option<String>,
    pub(crate) escalation_password: Option<ConfigSecret>,
}

impl CredentialProfile {
    /// Profile name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SSH user.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// Password or key.
    pub fn auth(&self) -> &ProfileAuth {
        &self.auth
    }

    /// The privilege escalation method (default `Nothing`).
    pub fn escalation(&self) -> EscalationMethod {
        self.escalation
    }

    /// Account to escalate to.
    pub fn escalation_account(&self) -> Option<&str> {
        self.escalation_account.as_deref()
    }

    /// Password for the escalation.
    pub fn escalation_password(&self) -> Option<&ConfigSecret> {
        self.escalation_password.as_ref()
    }

    /// The credentials in the shape the scanner sends to Nessus.
    pub fn to_ssh_credentials(&self) -> SshCredentials {
        let auth = match &self.auth {
            ProfileAuth::Password(p) => SshAuth::Password(p.secret().clone()),
            ProfileAuth::PrivateKey { key, passphrase } => SshAuth::PublicKey {
                private_key: key.secret().expose_secret().to_owned(),
                passphrase: passphrase.as_ref().map(|p| p.secret().clone()),
            },
        };
        SshCredentials::new(self.username.clone(), auth).escalate(
            self.escalation,
            self.escalation_account.clone(),
            self.escalation_password
                .as_ref()
                .map(|p| p.secret().clone()),
        )
    }
}

/// Replaces `user:password@` in a URL with `***@`.
pub(crate) fn mask_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    match url[scheme_end..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &url[..scheme_end], &url[scheme_end + at..]),
        None => url.to_owned(),
    }
}

/// A URL as it may be shown (CLI listings, logs): `user:password@` masked and the
/// query string replaced by `?…`, where receivers often keep a token.
pub fn display_url(url: &str) -> String {
    let masked = mask_userinfo(url);
    match masked.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => masked,
    }
}

/// What one principal (the name a bearer token carries) may do, from the config's
/// `principals` section. A principal the section does not name gets
/// [`PrincipalSettings::default`]: every pool, authenticated scans allowed, no admin
/// role, the queue's default cap, which is what the predecessor allowed every token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalSettings {
    pub(crate) pools: Option<Vec<String>>,
    pub(crate) authenticated_scans: bool,
    pub(crate) admin: bool,
    pub(crate) max_queued: Option<u64>,
}

impl Default for PrincipalSettings {
    fn default() -> Self {
        Self {
            pools: None,
            authenticated_scans: true,
            admin: false,
            max_queued: None,
        }
    }
}

impl PrincipalSettings {
    /// An admin: sees and cancels every principal's tasks, may use every pool.
    pub fn admin() -> Self {
        Self {
            admin: true,
            ..Self::default()
        }
    }

    /// These settings with the admin role set or cleared (an OAuth caller's role comes
    /// from its token's admin scope).
    pub fn with_admin(mut self, admin: bool) -> Self {
        self.admin = admin;
        self
    }

    /// The pools it may submit to (`None`: all).
    pub fn pools(&self) -> Option<&[String]> {
        self.pools.as_deref()
    }

    /// Whether it may submit to `pool`.
    pub fn may_use_pool(&self, pool: &str) -> bool {
        self.admin
            || self
                .pools
                .as_ref()
                .is_none_or(|p| p.iter().any(|n| n == pool))
    }

    /// Whether it may run authenticated (credentialed) scans.
    pub fn authenticated_scans(&self) -> bool {
        self.authenticated_scans
    }

    /// Whether it has the admin role.
    pub fn is_admin(&self) -> bool {
        self.admin
    }

    /// Its own cap on queued tasks, if the config sets one.
    pub fn max_queued(&self) -> Option<u64> {
        self.max_queued
    }
}

/// The config's `auth` section: how the MCP server authenticates callers beyond the
/// static bearer tokens.
#[derive(Debug, Clone, Default)]
pub struct AuthSettings {
    pub(crate) oauth: Option<OAuthSettings>,
}

impl AuthSettings {
    /// The OAuth 2.1 resource-server settings, when `auth.oauth` is set.
    pub fn oauth(&self) -> Option<&OAuthSettings> {
        self.oauth.as_ref()
    }
}

/// `auth.oauth`: accept access tokens an identity provider issued for this server.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) principal_claim: String,
    pub(crate) scopes: ScopeNames,
    pub(crate) leeway: Duration,
    pub(crate) introspection: Option<IntrospectionSettings>,
}

impl OAuthSettings {
    /// The provider's issuer identifier (`iss` of its tokens; discovery starts here).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// This server's canonical URI (RFC 8707 resource): the `aud` tokens must carry.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The JWKS address, when the file names one (else discovery's `jwks_uri`).
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// The claim whose value names the principal (default `sub`).
    pub fn principal_claim(&self) -> &str {
        &self.principal_claim
    }

    /// The scope strings of the four capabilities.
    pub fn scopes(&self) -> &ScopeNames {
        &self.scopes
    }

    /// Clock leeway for `exp` and `nbf` (default 60 s).
    pub fn leeway(&self) -> Duration {
        self.leeway
    }

    /// Introspection of opaque tokens (RFC 7662), when configured.
    pub fn introspection(&self) -> Option<&IntrospectionSettings> {
        self.introspection.as_ref()
    }
}

/// The scope string the provider issues for each capability (`auth.oauth.scopes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeNames {
    pub(crate) read: String,
    pub(crate) scan: String,
    pub(crate) authenticated: String,
    pub(crate) admin: String,
}

impl Default for ScopeNames {
    fn default() -> Self {
        Self {
            read: "nessus:read".to_owned(),
            scan: "nessus:scan".to_owned(),
            authenticated: "nessus:scan:authenticated".to_owned(),
            admin: "nessus:admin".to_owned(),
        }
    }
}

impl ScopeNames {
    /// Status, results and listings (default `nessus:read`).
    pub fn read(&self) -> &str {
        &self.read
    }

    /// Untrusted (network) scans (default `nessus:scan`).
    pub fn scan(&self) -> &str {
        &self.scan
    }

    /// Credentialed scans (default `nessus:scan:authenticated`).
    pub fn authenticated(&self) -> &str {
        &self.authenticated
    }

    /// Everyone's tasks and the dead-letter queue (default `nessus:admin`).
    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// The four scope strings, in the order read, scan, authenticated, admin.
    pub fn all(&self) -> [&str; 4] {
        [&self.read, &self.scan, &self.authenticated, &self.admin]
    }
}

/// `auth.oauth.introspection`: how this server authenticates to the provider's RFC 7662
/// endpoint (client secret, HTTP Basic).
#[derive(Debug, Clone)]
pub struct IntrospectionSettings {
    pub(crate) client_id: String,
    pub(crate) client_secret: ConfigSecret,
    pub(crate) endpoint: Option<String>,
}

impl IntrospectionSettings {
    /// This server's client id at the provider.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Its client secret.
    pub fn client_secret(&self) -> &ConfigSecret {
        &self.client_secret
    }

    /// The endpoint, when the file names one (else discovery's `introspection_endpoint`).
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }
}

#[cfg(test)]
mod approval_tests {
    use crate::Config;

    fn pool_yaml(approval: &str) -> String {
        format!(
            "nessus:\n  target_policy:\n    allow: [192.0.2.0/24, \"*.lab.example\"]\n  approval:\n{approval}  instances: []\n"
        )
    }

    #[test]
    fn display_url_hides_userinfo_and_query() {
        for (url, shown) in [
            ("https://h.example/hook", "https://h.example/hook"),
            (
                "https://u:pw@h.example/p?token=s3cret",
                "https://***@h.example/p?…",
            ),
            ("http://127.0.0.1:9/x?a=1#f", "http://127.0.0.1:9/x?…"),
        ] {
            assert_eq!(super::display_url(url), shown);
        }
    }

    #[test]
    fn approval_section_parses_checks_and_decides() {
        // (approval body, Ok(expiry secs) or Err(message part))
        let cases: [(&str, Result<u64, &str>); 6] = [
            ("    authenticated: true\n", Ok(86_400)),
            (
                "    auto_approve: [192.0.2.0/28, \"*.lab.example\"]\n    expires_after: 90m\n",
                Ok(5_400),
            ),
            (
                "    auto_approve: [198.51.100.0/24]\n",
                Err("not inside the pool's target_policy allow-list"),
            ),
            ("    expires_after: soon\n", Err("is not a duration")),
            ("    expires_after: 0s\n", Err("must be positive")),
            ("    bogus: 1\n", Err("bogus")),
        ];
        for (body, want) in cases {
            let got = pool_yaml(body).parse::<Config>();
            match (got, want) {
                (Ok(c), Ok(secs)) => {
                    let a = c.pool("nessus").unwrap().approval().unwrap();
                    assert_eq!(a.expires_after().as_secs(), secs, "{body}");
                }
                (Err(e), Err(part)) => assert!(e.to_string().contains(part), "{body}: {e}"),
                (got, want) => panic!("{body}: got {got:?}, want {want:?}"),
            }
        }
        let c: Config = pool_yaml(
            "    auto_approve: [192.0.2.0/28]\n    max_hosts: 4\n    authenticated: true\n",
        )
        .parse()
        .unwrap();
        let pool = c.pool("nessus").unwrap();
        let rules = pool.approval().unwrap();
        // (targets, authenticated, reason contains or None)
        let decide: [(&str, bool, Option<&str>); 5] = [
            ("192.0.2.1", false, None),
            ("192.0.2.1", true, Some("authenticated")),
            ("192.0.2.99", false, Some("auto_approve list: 192.0.2.99")),
            ("192.0.2.0/29", false, Some("8 hosts")),
            ("host.lab.example", false, Some("host.lab.example")),
        ];
        for (targets, auth, want) in decide {
            let approved = pool.check_targets(targets).unwrap();
            let got = rules.reason(&approved, auth);
            match want {
                None => assert!(got.is_none(), "{targets}: {got:?}"),
                Some(part) => assert!(
                    got.as_deref().is_some_and(|r| r.contains(part)),
                    "{targets}: {got:?}"
                ),
            }
        }
        assert!(
            "nessus:\n  instances: []\n"
                .parse::<Config>()
                .unwrap()
                .pool("nessus")
                .unwrap()
                .approval()
                .is_none()
        );
    }
}
