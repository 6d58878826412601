//! Raw file shapes → validated public model: interpolation, secrets, defaults, checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::env::{EnvLookup, expand};
use super::model::{
    ApprovalRules, AuthMode, AuthSettings, BackendConfig, ConfigSecret, CredentialProfile,
    InstanceAuth, InstanceConfig, IntrospectionSettings, OAuthSettings, Pool, PrincipalSettings,
    ProfileAuth, QueueSettings, ScopeNames, SecretOrigin, ServerSettings, ToolOutput,
};
use super::raw::{
    RawApproval, RawConfig, RawCredential, RawInstance, RawPolicy, RawSecret, RawTls,
};
use crate::client::TlsOptions;
use crate::models::EscalationMethod;
use crate::targets::{PolicyRule, Target, TargetPolicy};

/// Default `max_concurrent_scans` (the predecessor's code default).
const DEFAULT_MAX_CONCURRENT: u32 = 2;
/// Default per-request timeout (the predecessor's httpx timeout).
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DAY: u64 = 24 * 3600;
/// `server.results_cache_max_bytes` when unset: 2 GiB.
const DEFAULT_RESULTS_CACHE_MAX_BYTES: u64 = 2 << 30;

/// A validation error before it gets the file name.
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) location: Option<Location>,
    pub(crate) message: String,
}

type Res<T> = Result<T, Problem>;

fn at<T>(span: &Spanned<T>, message: impl Into<String>) -> Problem {
    Problem {
        location: Some(span.referenced),
        message: message.into(),
    }
}

pub(crate) struct Resolved {
    pub(crate) pools: Vec<Pool>,
    pub(crate) server: ServerSettings,
    pub(crate) queue: QueueSettings,
    pub(crate) credentials: BTreeMap<String, CredentialProfile>,
    pub(crate) principals: BTreeMap<String, PrincipalSettings>,
    pub(crate) auth: AuthSettings,
    pub(crate) webhooks: Vec<super::WebhookConfig>,
    pub(crate) warnings: Vec<String>,
}

pub(crate) struct Resolver<'a> {
    env: EnvLookup<'a>,
    base_dir: PathBuf,
    warnings: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub(crate) fn new(env: EnvLookup<'a>, base_dir: PathBuf) -> Self {
        Self {
            env,
            base_dir,
            warnings: Vec::new(),
        }
    }

    pub(crate) fn resolve(mut self, raw: RawConfig) -> Res<Resolved> {
        let mut pools = Vec::new();
        let mut names = BTreeSet::new();
        for (name, raw_pool) in raw.pools {
            check_pool_name(&name)?;
            if !names.insert(name.value.clone()) {
                return Err(at(&name, format!("pool {:?} is defined twice", name.value)));
            }
            pools.push(self.pool(&name.value, raw_pool)?);
        }
        let server = self.server(raw.server)?;
        let queue = self.queue(raw.queue, &server)?;
        let mut credentials = BTreeMap::new();
        for (name, cred) in raw.credentials {
            let profile = self.credential(&name, cred)?;
            credentials.insert(name, profile);
        }
        let mut principals = BTreeMap::new();
        for (name, p) in raw.principals {
            let settings = principal(&name, &p, &pools)?;
            principals.insert(name, settings);
        }
        let auth = self.oauth(raw.auth)?;
        let mut webhooks = Vec::new();
        for w in &raw.webhooks {
            webhooks.push(self.webhook(w, &pools)?);
        }
        if !pools.iter().any(|p: &Pool| p.name == server.default_pool) {
            self.warnings.push(format!(
                "the default pool {:?} is not defined in the config",
                server.default_pool
            ));
        }
        Ok(Resolved {
            pools,
            server,
            queue,
            credentials,
            principals,
            auth,
            webhooks,
            warnings: self.warnings,
        })
    }

    /// One `webhooks` entry: https (or loopback http), known events, an existing pool.
    fn webhook(
        &mut self,
        raw: &Spanned<super::raw::RawWebhook>,
        pools: &[Pool],
    ) -> Res<super::WebhookConfig> {
        let ctx = "webhooks";
        let w = &raw.value;
        let url = self.text(ctx, "url", &w.url.value);
        if !url.starts_with("https://") && !url.starts_with("http://") {
            return Err(at(
                &w.url,
                format!("{ctx}.url: {url:?} must be https (or http to a loopback host)"),
            ));
        }
        check_oauth_url(&url).map_err(|why| at(&w.url, format!("{ctx}.url: {why}")))?;
        let secret = self.secret(ctx, "secret", &w.secret)?;
        if secrecy::ExposeSecret::expose_secret(secret.secret()).is_empty() {
            return Err(at(&w.secret, "webhooks.secret must not be empty"));
        }
        if w.events.is_empty() {
            return Err(at(raw, "webhooks.events must name at least one event"));
        }
        let mut events = Vec::new();
        for e in &w.events {
            if !super::WEBHOOK_EVENTS.contains(&e.value.as_str()) {
                return Err(at(
                    e,
                    format!(
                        "webhooks.events: {:?} is not one of {}",
                        e.value,
                        super::WEBHOOK_EVENTS.join(", ")
                    ),
                ));
            }
            events.push(e.value.clone());
        }
        if let Some(p) = &w.pool
            && !pools.iter().any(|q| q.name == p.value)
        {
            return Err(at(
                p,
                format!("webhooks.pool {:?} is not a pool of this config", p.value),
            ));
        }
        Ok(super::WebhookConfig {
            url,
            secret,
            events,
            pool: w.pool.as_ref().map(|p| p.value.clone()),
            principal: w.principal.as_ref().map(|p| p.value.clone()),
        })
    }

    /// `auth`: the OAuth resource-server settings. URLs must be https, except on a
    /// loopback host (a provider started on this machine, as the tests do).
    fn oauth(&mut self, raw: Option<Spanned<super::raw::RawAuth>>) -> Res<AuthSettings> {
        let Some(oauth) = raw.and_then(|a| a.value.oauth) else {
            return Ok(AuthSettings::default());
        };
        let ctx = "auth.oauth";
        let o = oauth.value;
        let url = |this: &mut Self, field: &str, v: &Spanned<String>| -> Res<String> {
            let text = this.text(ctx, field, &v.value);
            check_oauth_url(&text).map_err(|why| at(v, format!("{ctx}.{field}: {why}")))?;
            Ok(text)
        };
        let issuer = url(self, "issuer", &o.issuer)?;
        let audience = self.text(ctx, "audience", &o.audience.value);
        if audience.trim().is_empty() {
            return Err(at(&o.audience, "auth.oauth.audience must not be empty"));
        }
        let jwks_uri = match &o.jwks_uri {
            Some(u) => Some(url(self, "jwks_uri", u)?),
            None => None,
        };
        let principal_claim = match &o.principal_claim {
            Some(c) if c.value.trim().is_empty() => {
                return Err(at(c, "auth.oauth.principal_claim must not be empty"));
            }
            Some(c) => self.text(ctx, "principal_claim", c.value.trim()),
            None => "sub".to_owned(),
        };
        let mut scopes = ScopeNames::default();
        if let Some(raw) = &o.scopes {
            let fields = [
                ("read", &raw.value.read, &mut scopes.read),
                ("scan", &raw.value.scan, &mut scopes.scan),
                (
                    "authenticated",
                    &raw.value.authenticated,
                    &mut scopes.authenticated,
                ),
                ("admin", &raw.value.admin, &mut scopes.admin),
            ];
            for (field, value, slot) in fields {
                let Some(v) = value else { continue };
                let text = v.value.trim();
                if text.is_empty() || text.contains(char::is_whitespace) || text.contains('"') {
                    return Err(at(
                        v,
                        format!(
                            "auth.oauth.scopes.{field} must be one scope token (no spaces or quotes)"
                        ),
                    ));
                }
                *slot = text.to_owned();
            }
            let all = scopes.all();
            if (1..all.len()).any(|i| all[..i].contains(&all[i])) {
                return Err(at(
                    raw,
                    "auth.oauth.scopes: each capability needs its own scope",
                ));
            }
        }
        let introspection = match o.introspection {
            Some(i) => {
                let endpoint = match &i.value.endpoint {
                    Some(e) => Some(url(self, "introspection.endpoint", e)?),
                    None => None,
                };
                Some(IntrospectionSettings {
                    client_id: self.text(ctx, "introspection.client_id", &i.value.client_id.value),
                    client_secret: self.secret(
                        ctx,
                        "introspection.client_secret",
                        &i.value.client_secret,
                    )?,
                    endpoint,
                })
            }
            None => None,
        };
        Ok(AuthSettings {
            oauth: Some(OAuthSettings {
                issuer,
                audience,
                jwks_uri,
                principal_claim,
                scopes,
                leeway: Duration::from_secs(o.leeway_secs.unwrap_or(60).min(600)),
                introspection,
            }),
        })
    }

    fn pool(&mut self, name: &str, raw: super::raw::RawPool) -> Res<Pool> {
        let nessus = name.starts_with("nessus");
        let mut instances: Vec<InstanceConfig> = Vec::new();
        let mut disabled = Vec::new();
        for inst in raw.instances {
            let Some(id) = inst.value.instance_id.as_ref() else {
                self.warnings.push(format!(
                    "pool {name}: an instance without instance_id (line {}) was skipped",
                    inst.referenced.line()
                ));
                continue;
            };
            let id_text = id.value.0.trim().to_owned();
            if id_text.is_empty() || id_text.contains(':') || id_text.chars().any(char::is_control)
            {
                return Err(at(
                    id,
                    "instance_id must be non-empty, without ':' or control characters",
                ));
            }
            if instances.iter().any(|i| i.instance_id == id_text) || disabled.contains(&id_text) {
                return Err(at(
                    id,
                    format!("instance_id {id_text:?} is used twice in pool {name}"),
                ));
            }
            if !inst.value.enabled.unwrap_or(true) {
                disabled.push(id_text);
                continue;
            }
            if !nessus {
                self.warnings.push(format!(
                    "pool {name}: unknown scanner type (pool names must start with \"nessus\"); \
                     instance {id_text} skipped"
                ));
                continue;
            }
            let config = self.instance(name, &id_text, &inst)?;
            instances.push(config);
        }
        let policy = self.policy(name, raw.target_policy.as_ref(), &instances)?;
        if policy.denies_everything() {
            self.warnings.push(format!(
                "pool {name}: no target_policy allow-list, so every scan target is refused"
            ));
        }
        let approval = match &raw.approval {
            Some(a) => Some(self.approval(name, a, &policy)?),
            None => None,
        };
        Ok(Pool {
            name: name.to_owned(),
            instances,
            disabled,
            policy,
            approval,
        })
    }

    fn instance(
        &mut self,
        pool: &str,
        id: &str,
        inst: &Spanned<RawInstance>,
    ) -> Res<InstanceConfig> {
        let raw = &inst.value;
        let ctx = format!("pool {pool}, instance {id}");
        for key in raw.unknown.keys() {
            self.warnings
                .push(format!("{ctx}: unknown field {key:?} ignored"));
        }
        let url_field = raw
            .url
            .as_ref()
            .ok_or_else(|| at(inst, format!("{ctx}: `url` is required")))?;
        let url = self.text(&ctx, "url", &url_field.value);
        let url = url.trim().trim_end_matches('/').to_owned();
        if url.is_empty() {
            return Err(at(url_field, format!("{ctx}: url is empty")));
        }
        url_host(&url).ok_or_else(|| {
            at(
                url_field,
                format!("{ctx}: url {url:?} is not an http(s)://host[:port] URL"),
            )
        })?;
        let auth = self.auth(&ctx, inst)?;
        let tls = match &raw.tls {
            Some(t) => self.tls(&ctx, t)?,
            None => TlsOptions::default(),
        };
        if tls.insecure && url.starts_with("http://") {
            self.warnings
                .push(format!("{ctx}: `insecure` has no effect on an http:// URL"));
        }
        let max_concurrent_scans = raw
            .max_concurrent_scans
            .as_ref()
            .map_or(DEFAULT_MAX_CONCURRENT, |m| m.value);
        if max_concurrent_scans == 0 {
            self.warnings.push(format!(
                "{ctx}: max_concurrent_scans is 0, it never receives scans"
            ));
        }
        let timeout_secs = match &raw.timeout_secs {
            Some(t) if t.value == 0 => {
                return Err(at(t, format!("{ctx}: timeout_secs must be positive")));
            }
            Some(t) => t.value,
            None => DEFAULT_TIMEOUT_SECS,
        };
        Ok(InstanceConfig {
            pool: pool.to_owned(),
            instance_id: id.to_owned(),
            name: raw
                .name
                .as_ref()
                .map_or_else(|| id.to_owned(), |n| n.0.clone()),
            url,
            raw_url: url_field.value.clone(),
            auth,
            tls,
            max_concurrent_scans,
            timeout: Duration::from_secs(timeout_secs),
        })
    }

    fn auth(&mut self, ctx: &str, inst: &Spanned<RawInstance>) -> Res<InstanceAuth> {
        let raw = &inst.value;
        let mode = match &raw.auth {
            None => None,
            Some(m) => Some(match m.value.as_str() {
                "api_keys" => AuthMode::ApiKeys,
                "password" => AuthMode::Password,
                "web_token" => AuthMode::WebToken,
                other => {
                    return Err(at(
                        m,
                        format!(
                            "{ctx}: auth {other:?} is not one of api_keys, password, web_token"
                        ),
                    ));
                }
            }),
        };
        let has_keys = raw.access_key.is_some() || raw.secret_key.is_some();
        let mode = mode.unwrap_or(if has_keys {
            AuthMode::ApiKeys
        } else {
            AuthMode::Password
        });
        if mode == AuthMode::ApiKeys {
            let (Some(access), Some(secret)) = (&raw.access_key, &raw.secret_key) else {
                return Err(at(
                    inst,
                    format!("{ctx}: auth api_keys needs both access_key and secret_key"),
                ));
            };
            return Ok(InstanceAuth::ApiKeys {
                access_key: self.secret(ctx, "access_key", access)?,
                secret_key: self.secret(ctx, "secret_key", secret)?,
            });
        }
        let (Some(user), Some(password)) = (&raw.username, &raw.password) else {
            return Err(at(
                inst,
                format!(
                    "{ctx}: auth {mode} needs username and password (or set access_key and secret_key)"
                ),
            ));
        };
        let username = self.text(ctx, "username", &user.value);
        let password = self.secret(ctx, "password", password)?;
        if username.is_empty() {
            self.warnings
                .push(format!("{ctx}: username is empty, login will fail"));
        }
        if password.secret().expose_len() == 0 {
            self.warnings
                .push(format!("{ctx}: password is empty, login will fail"));
        }
        Ok(InstanceAuth::Session {
            mode,
            username,
            password,
        })
    }

    fn tls(&mut self, ctx: &str, raw: &Spanned<RawTls>) -> Res<TlsOptions> {
        let t = &raw.value;
        let ca_file = match &t.ca_file {
            Some(p) => {
                let path = self.path(ctx, "ca_file", &p.value);
                if !path.is_file() {
                    return Err(at(
                        p,
                        format!("{ctx}: ca_file {} does not exist", path.display()),
                    ));
                }
                Some(path)
            }
            None => None,
        };
        let opts = TlsOptions {
            ca_file,
            merge_system_roots: t.ca_merge_system.unwrap_or(false),
            insecure: t.insecure.unwrap_or(false),
            accept_invalid_hostnames: t.accept_invalid_hostnames.unwrap_or(false),
            ..TlsOptions::default()
        };
        if opts.insecure && (opts.ca_file.is_some() || opts.accept_invalid_hostnames) {
            return Err(at(
                raw,
                format!(
                    "{ctx}: tls.insecure turns verification off, so ca_file and \
                 accept_invalid_hostnames make no sense with it"
                ),
            ));
        }
        if opts.accept_invalid_hostnames && opts.ca_file.is_none() {
            return Err(at(
                raw,
                format!(
                    "{ctx}: tls.accept_invalid_hostnames is only allowed together with ca_file"
                ),
            ));
        }
        if opts.merge_system_roots && opts.ca_file.is_none() {
            return Err(at(raw, format!("{ctx}: tls.ca_merge_system needs ca_file")));
        }
        Ok(opts)
    }

    fn policy(
        &mut self,
        pool: &str,
        raw: Option<&Spanned<RawPolicy>>,
        instances: &[InstanceConfig],
    ) -> Res<TargetPolicy> {
        // The scanners' own management addresses are never valid targets.
        let own: Vec<PolicyRule> = instances
            .iter()
            .filter_map(|i| url_host(&i.url))
            .filter_map(|h| h.parse().ok())
            .collect();
        let Some(raw) = raw else {
            return Ok(TargetPolicy::default().with_extra_deny(own));
        };
        let rules = |list: &[Spanned<super::raw::Scalar>], what: &str| -> Res<Vec<PolicyRule>> {
            list.iter()
                .map(|r| {
                    r.value.0.parse::<PolicyRule>().map_err(|e| {
                        at(
                            r,
                            format!(
                                "pool {pool}: target_policy.{what} entry {:?}: {e}",
                                r.value.0
                            ),
                        )
                    })
                })
                .collect()
        };
        let allow = rules(&raw.value.allow, "allow")?;
        let deny = rules(&raw.value.deny, "deny")?;
        let mut policy = TargetPolicy::new(allow, deny).with_extra_deny(own);
        if let Some(max) = raw.value.max_hosts {
            policy = policy.with_max_hosts(max);
        }
        if let Some(builtin) = raw.value.builtin_deny {
            if !builtin {
                self.warnings.push(format!(
                    "pool {pool}: builtin_deny is off, loopback and link-local targets are possible"
                ));
            }
            policy = policy.with_builtin_deny(builtin);
        }
        Ok(policy)
    }

    /// A pool's `approval:` section. Every `auto_approve` address entry must lie
    /// inside the pool's allow-list (it is a part of it); hostnames are matched
    /// by name, like the allow-list's.
    fn approval(
        &mut self,
        pool: &str,
        raw: &Spanned<RawApproval>,
        policy: &TargetPolicy,
    ) -> Res<ApprovalRules> {
        let a = &raw.value;
        let mut text = Vec::new();
        let auto_approve = match &a.auto_approve {
            None => None,
            Some(list) => {
                let mut rules = Vec::new();
                for r in list {
                    let entry = r.value.0.trim();
                    let rule: PolicyRule = entry.parse().map_err(|e| {
                        at(
                            r,
                            format!("pool {pool}: approval.auto_approve entry {entry:?}: {e}"),
                        )
                    })?;
                    if !entry.starts_with("*.") && policy.check(entry).is_err() {
                        return Err(at(
                            r,
                            format!(
                                "pool {pool}: approval.auto_approve entry {entry:?} is not inside the pool's target_policy allow-list"
                            ),
                        ));
                    }
                    text.push(entry.to_owned());
                    rules.push(rule);
                }
                Some(
                    TargetPolicy::new(rules, Vec::new())
                        .with_builtin_deny(false)
                        .with_max_hosts(u64::MAX),
                )
            }
        };
        let expires_after = match &a.expires_after {
            None => super::model::DEFAULT_APPROVAL_EXPIRY,
            Some(s) => {
                let d: jiff::SignedDuration = s.value.trim().parse().map_err(|e| {
                    at(
                        s,
                        format!(
                            "pool {pool}: approval.expires_after {:?} is not a duration like 24h or 90m: {e}",
                            s.value
                        ),
                    )
                })?;
                if d <= jiff::SignedDuration::ZERO {
                    return Err(at(
                        s,
                        format!("pool {pool}: approval.expires_after must be positive"),
                    ));
                }
                Duration::from_secs(d.as_secs() as u64)
            }
        };
        Ok(ApprovalRules {
            auto_approve,
            auto_approve_text: text,
            authenticated: a.authenticated.unwrap_or(false),
            max_hosts: a.max_hosts,
            expires_after,
        })
    }

    fn server(&mut self, raw: Option<Spanned<super::raw::RawServer>>) -> Res<ServerSettings> {
        let raw = raw.map(|s| s.value).unwrap_or_default();
        let ctx = "server";
        let data_dir = match &raw.data_dir {
            Some(d) => self.path(ctx, "data_dir", &d.value),
            None => self.base_dir.join("data"),
        };
        let results_dir = match &raw.results_dir {
            Some(d) => self.path(ctx, "results_dir", &d.value),
            None => data_dir.join("results"),
        };
        let results_url = match &raw.results_url {
            Some(u) => {
                let url = self.text(ctx, "results_url", &u.value);
                // Credentials come from the environment only, so the URL (printed by
                // `config check`, logged at start) never carries one.
                let authority = url
                    .split_once("://")
                    .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
                if authority.contains('@') {
                    return Err(at(
                        u,
                        "server.results_url must not carry credentials; set them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...)",
                    ));
                }
                let scheme = url.split_once("://").map(|(s, _)| s);
                if !matches!(
                    scheme,
                    Some("s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "file")
                ) {
                    return Err(at(
                        u,
                        format!(
                            "server.results_url {url:?} is not s3://bucket/prefix, gs://bucket/prefix, az://container/prefix or file:///absolute/dir"
                        ),
                    ));
                }
                Some(url)
            }
            None => None,
        };
        let results_cache_dir = match &raw.results_cache_dir {
            Some(d) => self.path(ctx, "results_cache_dir", &d.value),
            None => data_dir.join("results-cache"),
        };
        let results_cache_max_bytes = raw
            .results_cache_max_bytes
            .unwrap_or(DEFAULT_RESULTS_CACHE_MAX_BYTES);
        let default_pool = match &raw.default_pool {
            Some(p) => self.text(ctx, "default_pool", &p.value),
            None => "nessus".to_owned(),
        };
        let mut mcp_tokens = Vec::new();
        for token in &raw.mcp_tokens {
            let secret = self.secret(ctx, "mcp_tokens", token)?;
            if secret.secret().expose_len() < 16 {
                return Err(at(
                    token,
                    "server.mcp_tokens: each token needs at least 16 characters",
                ));
            }
            mcp_tokens.push(secret);
        }
        let tool_output = match &raw.tool_output {
            Some(t) => self
                .text(ctx, "tool_output", &t.value)
                .parse::<ToolOutput>()
                .map_err(|e| at(t, e))?,
            None => ToolOutput::default(),
        };
        Ok(ServerSettings {
            data_dir,
            results_dir,
            results_url,
            results_cache_dir,
            results_cache_max_bytes,
            default_pool,
            default_scan_timeout: Duration::from_secs(raw.default_scan_timeout_secs.unwrap_or(DAY)),
            mcp_tokens,
            tool_output,
        })
    }

    fn queue(
        &mut self,
        raw: Option<Spanned<super::raw::RawQueue>>,
        server: &ServerSettings,
    ) -> Res<QueueSettings> {
        let raw = raw.map(|q| q.value).unwrap_or_default();
        let ctx = "queue";
        let backend_name = raw
            .backend
            .as_ref()
            .map(|b| (b, self.text(ctx, "backend", &b.value)));
        let backend = match backend_name {
            None => self.sqlite_backend(&raw, server),
            Some((_, name)) if name == "sqlite" => self.sqlite_backend(&raw, server),
            Some((span, name)) if name == "redis" => self.redis_backend(&raw, span)?,
            Some((span, name)) => {
                return Err(at(
                    span,
                    format!("queue.backend {name:?} is not sqlite or redis"),
                ));
            }
        };
        Ok(QueueSettings {
            backend,
            lease: Duration::from_secs(raw.lease_secs.unwrap_or(60).max(1)),
            completed_ttl: Duration::from_secs(raw.completed_ttl_days.unwrap_or(7) * DAY),
            failed_ttl: Duration::from_secs(raw.failed_ttl_days.unwrap_or(30) * DAY),
            idempotency_ttl: Duration::from_secs(raw.idempotency_ttl_hours.unwrap_or(48) * 3600),
            max_queued_per_principal: raw.max_queued_per_principal.map(|n| n.max(1)),
            findings_ttl: Duration::from_secs(raw.findings_ttl_days.unwrap_or(180).max(1) * DAY),
        })
    }

    /// Exactly one of `redis_url`, `redis_sentinels` (+ `redis_sentinel_master`),
    /// `redis_cluster`.
    fn redis_backend(
        &mut self,
        raw: &super::raw::RawQueue,
        backend: &Spanned<String>,
    ) -> Res<BackendConfig> {
        let ctx = "queue";
        let given: Vec<&str> = [
            raw.redis_url.as_ref().map(|_| "queue.redis_url"),
            raw.redis_sentinels
                .as_ref()
                .map(|_| "queue.redis_sentinels"),
            raw.redis_cluster.as_ref().map(|_| "queue.redis_cluster"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.len() != 1 {
            let found = if given.is_empty() {
                "none is set".to_owned()
            } else {
                format!("found {}", given.join(" and "))
            };
            return Err(at(
                backend,
                format!(
                    "queue.backend redis needs exactly one of queue.redis_url, \
                     queue.redis_sentinels (with queue.redis_sentinel_master) or \
                     queue.redis_cluster; {found}"
                ),
            ));
        }
        if raw.redis_sentinels.is_none() {
            let stray = raw
                .redis_sentinel_master
                .as_ref()
                .map(|m| at(m, "queue.redis_sentinel_master is only for queue.redis_sentinels"))
                .or_else(|| {
                    raw.redis_sentinel_master_password.as_ref().map(|m| {
                        at(
                            m,
                            "queue.redis_sentinel_master_password is only for queue.redis_sentinels",
                        )
                    })
                });
            if let Some(e) = stray {
                return Err(e);
            }
        }
        if let Some(url) = &raw.redis_url {
            return Ok(BackendConfig::Redis {
                url: self.secret(ctx, "redis_url", url)?,
            });
        }
        if let Some(list) = &raw.redis_sentinels {
            let sentinels = self.secret_list(ctx, "redis_sentinels", list)?;
            let master = raw.redis_sentinel_master.as_ref().ok_or_else(|| {
                at(
                    list,
                    "queue.redis_sentinels needs queue.redis_sentinel_master (the master's name)",
                )
            })?;
            let name = self.text(ctx, "redis_sentinel_master", &master.value);
            if name.trim().is_empty() {
                return Err(at(master, "queue.redis_sentinel_master is empty"));
            }
            let master_password = raw
                .redis_sentinel_master_password
                .as_ref()
                .map(|p| self.secret(ctx, "redis_sentinel_master_password", p))
                .transpose()?;
            return Ok(BackendConfig::RedisSentinel {
                sentinels,
                master: name,
                master_password,
            });
        }
        let list = raw
            .redis_cluster
            .as_ref()
            .ok_or_else(|| at(backend, "queue.backend redis needs queue.redis_url"))?;
        Ok(BackendConfig::RedisCluster {
            nodes: self.secret_list(ctx, "redis_cluster", list)?,
        })
    }

    fn secret_list(
        &mut self,
        ctx: &str,
        field: &str,
        list: &Spanned<Vec<Spanned<RawSecret>>>,
    ) -> Res<Vec<ConfigSecret>> {
        if list.value.is_empty() {
            return Err(at(list, format!("{ctx}.{field} lists no URL")));
        }
        list.value
            .iter()
            .map(|u| self.secret(ctx, field, u))
            .collect()
    }

    fn sqlite_backend(
        &mut self,
        raw: &super::raw::RawQueue,
        server: &ServerSettings,
    ) -> BackendConfig {
        let path = match &raw.sqlite_path {
            Some(p) => self.path("queue", "sqlite_path", &p.value),
            None => server.data_dir.join("queue.sqlite3"),
        };
        BackendConfig::Sqlite { path }
    }

    fn credential(&mut self, name: &str, raw: Spanned<RawCredential>) -> Res<CredentialProfile> {
        let ctx = format!("credentials.{name}");
        let c = &raw.value;
        if let Some(kind) = &c.kind
            && kind != "ssh"
        {
            return Err(at(
                &raw,
                format!("{ctx}: type {kind:?} is not supported (only ssh)"),
            ));
        }
        let username = self.text(&ctx, "username", &c.username.value);
        if username.is_empty() {
            return Err(at(&c.username, format!("{ctx}: username is empty")));
        }
        let auth = match (&c.password, &c.private_key) {
            (Some(p), None) => ProfileAuth::Password(self.secret(&ctx, "password", p)?),
            (None, Some(k)) => ProfileAuth::PrivateKey {
                key: self.secret(&ctx, "private_key", k)?,
                passphrase: match &c.private_key_passphrase {
                    Some(p) => Some(self.secret(&ctx, "private_key_passphrase", p)?),
                    None => None,
                },
            },
            _ => {
                return Err(at(
                    &raw,
                    format!("{ctx}: set exactly one of password or private_key"),
                ));
            }
        };
        let escalation = match &c.elevate_privileges_with {
            Some(m) => m
                .value
                .parse::<EscalationMethod>()
                .map_err(|e| at(m, format!("{ctx}: {e}")))?,
            None => EscalationMethod::Nothing,
        };
        Ok(CredentialProfile {
            name: name.to_owned(),
            username,
            auth,
            escalation,
            escalation_account: c.escalation_account.clone(),
            escalation_password: match &c.escalation_password {
                Some(p) => Some(self.secret(&ctx, "escalation_password", p)?),
                None => None,
            },
        })
    }

    /// Interpolates a plain value, warning (by variable name only) about unset variables.
    fn text(&mut self, ctx: &str, field: &str, raw: &str) -> String {
        let e = expand(raw, self.env);
        for var in &e.unset {
            self.warnings.push(format!(
                "{ctx}: {field} uses ${{{var}}}, which is not set; using \"\""
            ));
        }
        e.value
    }

    fn path(&mut self, ctx: &str, field: &str, raw: &str) -> PathBuf {
        let p = PathBuf::from(self.text(ctx, field, raw));
        if p.is_absolute() {
            p
        } else {
            self.base_dir.join(p)
        }
    }

    fn secret(&mut self, ctx: &str, field: &str, raw: &Spanned<RawSecret>) -> Res<ConfigSecret> {
        match &raw.value {
            RawSecret::Literal(text) => {
                let e = expand(text, self.env);
                for var in &e.unset {
                    self.warnings.push(format!(
                        "{ctx}: {field} uses ${{{var}}}, which is not set; using \"\""
                    ));
                }
                for var in &e.defaulted {
                    self.warnings.push(format!(
                        "{ctx}: {field} uses the default written in the file because {var} is \
                         not set; set {var} in production"
                    ));
                }
                // Only variables that were actually set supplied part of the value.
                let from_env: Vec<String> = e
                    .vars
                    .into_iter()
                    .filter(|v| !e.defaulted.contains(v) && !e.unset.contains(v))
                    .collect();
                let origin = if from_env.is_empty() {
                    SecretOrigin::Literal
                } else {
                    SecretOrigin::Env(from_env)
                };
                Ok(ConfigSecret::new(e.value, origin))
            }
            RawSecret::Env(var) => match (self.env)(var) {
                Some(v) => Ok(ConfigSecret::new(v, SecretOrigin::Env(vec![var.clone()]))),
                None => Err(at(
                    raw,
                    format!("{ctx}: {field} comes from env {var}, which is not set"),
                )),
            },
            RawSecret::File(path) => {
                let path = self.path(ctx, field, path);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    at(
                        raw,
                        format!("{ctx}: {field} file {} cannot be read: {e}", path.display()),
                    )
                })?;
                // Secret files conventionally end with one newline that is not part of it.
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value).to_owned();
                Ok(ConfigSecret::new(value, SecretOrigin::File(path)))
            }
        }
    }
}

fn check_pool_name(name: &Spanned<String>) -> Res<()> {
    let ok = !name.value.is_empty()
        && name.value.len() <= 64
        && name
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(at(
            name,
            format!(
                "pool name {:?} must be 1-64 ASCII letters, digits, '_' or '-'",
                name.value
            ),
        ))
    }
}

/// The host of an `http(s)://[user@]host[:port][/path]` URL, as a policy rule text.
pub(crate) fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split_once(']')?.0
    } else {
        host_port.split(':').next()?
    };
    host.parse::<Target>().ok().map(|t| t.to_string())
}

/// Helps `expose_len` read nicely at call sites without exposing the value.
trait ExposeLen {
    fn expose_len(&self) -> usize;
}

impl ExposeLen for secrecy::SecretString {
    fn expose_len(&self) -> usize {
        use secrecy::ExposeSecret;
        self.expose_secret().len()
    }
}

/// An OAuth URL: `https://`, or `http://` to a loopback host only (tokens and keys must
/// not travel in clear over a network).
fn check_oauth_url(text: &str) -> Result<(), String> {
    let rest = if let Some(r) = text.strip_prefix("https://") {
        r
    } else if let Some(r) = text.strip_prefix("http://") {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        let host = match host.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        if !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(format!(
                "{text:?} must use https (http only for a loopback host)"
            ));
        }
        r
    } else {
        return Err(format!("{text:?} is not an https URL"));
    };
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("{text:?} has no host"));
    }
    Ok(())
}

/// One `principals` entry: its pools must exist, so a typo never silently grants
/// nothing (or, worse, is read as "all pools").
fn principal(
    name: &str,
    raw: &Spanned<super::raw::RawPrincipal>,
    pools: &[Pool],
) -> Res<PrincipalSettings> {
    if name.trim().is_empty() {
        return Err(at(raw, "a principal name must not be empty"));
    }
    let r = &raw.value;
    let pool_list = match &r.pools {
        None => None,
        Some(list) => {
            let mut out = Vec::with_capacity(list.len());
            for p in list {
                if !pools.iter().any(|q| q.name == p.value) {
                    return Err(at(
                        p,
                        format!(
                            "principals.{name}.pools names {:?}, which is not a pool of this config",
                            p.value
                        ),
                    ));
                }
                out.push(p.value.clone());
            }
            Some(out)
        }
    };
    if r.max_queued == Some(0) {
        return Err(at(
            raw,
            format!("principals.{name}.max_queued must be at least 1"),
        ));
    }
    Ok(PrincipalSettings {
        pools: pool_list,
        authenticated_scans: r.authenticated_scans.unwrap_or(true),
        admin: r.admin.unwrap_or(false),
        max_queued: r.max_queued,
    })
}
