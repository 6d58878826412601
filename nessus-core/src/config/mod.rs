//! `scanners.yaml`: the predecessor's pool file, extended with auth modes, TLS options,
//! per-pool target policies, credential profiles and server/queue settings.
//!
//! The predecessor's files load unchanged: top-level keys are pool names whose values
//! are lists of instances. The new settings live under the reserved top-level keys
//! `server`, `queue`, `credentials`, `principals` and `auth`, and a pool may instead be written as a mapping
//! with `instances` and `target_policy`. The format reference is `scanners-yaml.md`,
//! rendered as the documentation of [`Config`].

mod describe;
mod env;
mod model;
mod raw;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use model::{
    ApprovalRules, AuthMode, AuthSettings, BackendConfig, ConfigSecret, CredentialProfile,
    DEFAULT_APPROVAL_EXPIRY, InstanceAuth, InstanceConfig, IntrospectionSettings, OAuthSettings,
    Pool, PrincipalSettings, ProfileAuth, QueueSettings, ScopeNames, SecretOrigin, ServerSettings,
    ToolOutput, WEBHOOK_EVENTS, WebhookConfig, display_url,
};

use crate::error::{Error, Result};
use raw::RawConfig;
use resolve::{Problem, Resolver};

/// Files larger than this are refused before parsing (a scanner file is a few KiB).
const MAX_CONFIG_BYTES: u64 = 4 * 1024 * 1024;

#[doc = include_str!("scanners-yaml.md")]
#[derive(Debug, Clone)]
pub struct Config {
    origin: Option<PathBuf>,
    pools: Vec<Pool>,
    server: ServerSettings,
    queue: QueueSettings,
    credentials: BTreeMap<String, CredentialProfile>,
    principals: BTreeMap<String, PrincipalSettings>,
    auth: AuthSettings,
    webhooks: Vec<WebhookConfig>,
    warnings: Vec<String>,
}

impl Config {
    /// Loads a file, interpolating `${VAR}` from the process environment. Relative
    /// paths in the file are relative to the file's directory.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        Self::load_with_env(path, &|name| std::env::var(name).ok())
    }

    /// Like [`load`](Self::load) with an explicit variable lookup (tests, layering).
    pub fn load_with_env(
        path: impl AsRef<Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        let path = path.as_ref();
        let read_error = |source| Error::ConfigRead {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(Error::Config {
                origin: path.display().to_string(),
                line: None,
                column: None,
                message: format!("file is larger than {MAX_CONFIG_BYTES} bytes"),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut config = Self::parse(&text, &path.display().to_string(), base, env)?;
        config.origin = Some(path.to_owned());
        Ok(config)
    }

    /// Parses YAML text with an explicit variable lookup; relative paths are relative
    /// to the current directory.
    pub fn from_yaml_with_env(yaml: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        Self::parse(yaml, "<config>", PathBuf::new(), env)
    }

    fn parse(
        yaml: &str,
        origin: &str,
        base_dir: PathBuf,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        // Snippets are off: a snippet could print a secret written on the failing line.
        let options = serde_saphyr::options! { with_snippet: false };
        let raw: RawConfig = serde_saphyr::from_str_with_options(yaml, options).map_err(|e| {
            let location = e.location();
            Error::Config {
                origin: origin.to_owned(),
                line: location.map(|l| l.line()),
                column: location.map(|l| l.column()),
                message: strip_location(&e.to_string()),
            }
        })?;
        let resolved = Resolver::new(env, base_dir)
            .resolve(raw)
            .map_err(|p: Problem| Error::Config {
                origin: origin.to_owned(),
                line: p.location.map(|l| l.line()),
                column: p.location.map(|l| l.column()),
                message: p.message,
            })?;
        Ok(Self {
            origin: None,
            pools: resolved.pools,
            server: resolved.server,
            queue: resolved.queue,
            credentials: resolved.credentials,
            principals: resolved.principals,
            auth: resolved.auth,
            webhooks: resolved.webhooks,
            warnings: resolved.warnings,
        })
    }

    /// The file it was loaded from, if any.
    pub fn origin(&self) -> Option<&Path> {
        self.origin.as_deref()
    }

    /// Pools in file order (including pools whose instances are all disabled).
    pub fn pools(&self) -> &[Pool] {
        &self.pools
    }

    /// One pool by name.
    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pools.iter().find(|p| p.name() == name)
    }

    /// Pool names, sorted (what `list_pools` returns).
    pub fn pool_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.pools.iter().map(Pool::name).collect();
        names.sort_unstable();
        names
    }

    /// Every enabled instance of every pool.
    pub fn instances(&self) -> impl Iterator<Item = &InstanceConfig> {
        self.pools.iter().flat_map(|p| p.instances().iter())
    }

    /// One instance by pool and id.
    pub fn instance(&self, pool: &str, instance_id: &str) -> Option<&InstanceConfig> {
        self.pool(pool)?.instance(instance_id)
    }

    /// Server settings.
    pub fn server(&self) -> &ServerSettings {
        &self.server
    }

    /// Queue settings.
    pub fn queue(&self) -> &QueueSettings {
        &self.queue
    }

    /// Named SSH credential profiles.
    pub fn credentials(&self) -> &BTreeMap<String, CredentialProfile> {
        &self.credentials
    }

    /// One credential profile by name.
    pub fn credential(&self, name: &str) -> Option<&CredentialProfile> {
        self.credentials.get(name)
    }

    /// The `webhooks` section.
    pub fn webhooks(&self) -> &[WebhookConfig] {
        &self.webhooks
    }

    /// The `principals` section: what each named principal may do.
    pub fn principals(&self) -> &BTreeMap<String, PrincipalSettings> {
        &self.principals
    }

    /// What `name` may do: its `principals` entry, else the defaults.
    pub fn principal(&self, name: &str) -> PrincipalSettings {
        self.principals.get(name).cloned().unwrap_or_default()
    }

    /// The `auth` section (OAuth resource-server mode).
    pub fn auth(&self) -> &AuthSettings {
        &self.auth
    }

    /// Things that loaded but deserve attention (unset variables, skipped instances,
    /// pools that refuse every target, …). Never contains secret values.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// A human-readable rendering of what was loaded, secrets masked (what
    /// `nessus-cli config check FILE` prints).
    pub fn describe(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Config {
    /// The same rendering as [`Config::describe`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        describe::render(self, f)
    }
}

impl FromStr for Config {
    type Err = Error;

    /// Parses YAML text, interpolating `${VAR}` from the process environment.
    fn from_str(yaml: &str) -> Result<Self> {
        Self::from_yaml_with_env(yaml, &|name| std::env::var(name).ok())
    }
}

/// serde-saphyr repeats the location inside some messages; ours is structured.
fn strip_location(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    let first = match first.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") && head.contains(" column ") => rest,
        _ => first,
    };
    match first.rfind(" at line ") {
        Some(i) if first[i..].contains(", column ") => first[..i].to_owned(),
        _ => first.to_owned(),
    }
}
