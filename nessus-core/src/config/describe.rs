//! Human-readable rendering of a loaded config. Secrets appear only as `********`
//! followed by where they came from.

use std::fmt;

use super::Config;
use super::model::{BackendConfig, ConfigSecret, InstanceAuth, ProfileAuth, mask_userinfo};

pub(crate) fn render(config: &Config, w: &mut dyn fmt::Write) -> fmt::Result {
    match config.origin() {
        Some(path) => {
            writeln!(w, "config: {}", path.display())?;
        }
        None => {
            writeln!(w, "config: <text>")?;
        }
    }
    let s = config.server();
    writeln!(w, "server:")?;
    writeln!(w, "  data_dir: {}", s.data_dir().display())?;
    writeln!(w, "  results_dir: {}", s.results_dir().display())?;
    match s.results_url() {
        Some(url) => {
            writeln!(w, "  results_url: {url}")?;
            writeln!(
                w,
                "  results_cache_dir: {} (max {} bytes)",
                s.results_cache_dir().display(),
                s.results_cache_max_bytes()
            )?;
        }
        None => writeln!(w, "  results_url: none (results on local disk)")?,
    }
    writeln!(w, "  default_pool: {}", s.default_pool())?;
    writeln!(
        w,
        "  default_scan_timeout: {}s",
        s.default_scan_timeout().as_secs()
    )?;
    writeln!(w, "  mcp_tokens: {}", secrets(s.mcp_tokens()))?;
    writeln!(w, "  tool_output: {}", s.tool_output().as_str())?;
    let q = config.queue();
    writeln!(w, "queue:")?;
    match q.backend() {
        BackendConfig::Sqlite { path } => {
            writeln!(w, "  backend: sqlite {}", path.display())?;
        }
        BackendConfig::Redis { url } => {
            use secrecy::ExposeSecret;
            writeln!(
                w,
                "  backend: redis {} ({})",
                mask_userinfo(url.secret().expose_secret()),
                url.origin()
            )?;
        }
        BackendConfig::RedisSentinel {
            sentinels,
            master,
            master_password,
        } => {
            writeln!(
                w,
                "  backend: redis sentinel, master {master}, sentinels {}{}",
                urls(sentinels),
                if master_password.is_some() {
                    ", master password set"
                } else {
                    ""
                }
            )?;
        }
        BackendConfig::RedisCluster { nodes } => {
            writeln!(w, "  backend: redis cluster, seed nodes {}", urls(nodes))?;
        }
    }
    writeln!(
        w,
        "  lease: {}s, ttl completed {}d / failed {}d, idempotency {}h",
        q.lease().as_secs(),
        q.completed_ttl().as_secs() / 86_400,
        q.failed_ttl().as_secs() / 86_400,
        q.idempotency_ttl().as_secs() / 3600
    )?;
    writeln!(w, "pools:")?;
    for pool in config.pools() {
        writeln!(
            w,
            "  {} (type {}, {} instance(s), capacity {})",
            pool.name(),
            pool.scanner_type(),
            pool.instances().len(),
            pool.capacity()
        )?;
        let p = pool.policy();
        let list = |rules: &[crate::targets::PolicyRule]| {
            rules
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if p.denies_everything() {
            writeln!(w, "    target policy: allow nothing (deny by default)")?;
        } else {
            writeln!(w, "    target policy: allow [{}]", list(p.allow()))?;
        }
        writeln!(
            w,
            "      deny [{}]; built-in deny {}; max {} hosts per scan",
            list(p.deny()),
            if p.builtin_deny() { "on" } else { "OFF" },
            p.max_hosts()
        )?;
        if let Some(a) = pool.approval() {
            writeln!(
                w,
                "    approval: auto_approve [{}]; authenticated scans {}; above {} hosts; expires after {}s",
                a.auto_approve()
                    .map_or_else(|| "any allowed target".to_owned(), |l| l.join(", ")),
                if a.authenticated() {
                    "need approval"
                } else {
                    "run at once"
                },
                a.max_hosts()
                    .map_or_else(|| "no limit".to_owned(), |m| m.to_string()),
                a.expires_after().as_secs()
            )?;
        }
        for inst in pool.instances() {
            writeln!(w, "    - {} \"{}\"", inst.key(), inst.name())?;
            writeln!(
                w,
                "        url: {} -> {}",
                inst.display_url(),
                mask_userinfo(inst.url())
            )?;
            match inst.auth() {
                InstanceAuth::ApiKeys {
                    access_key,
                    secret_key,
                } => {
                    writeln!(
                        w,
                        "        auth: api_keys (access_key {}, secret_key {})",
                        secret(access_key),
                        secret(secret_key)
                    )?;
                }
                InstanceAuth::Session {
                    mode,
                    username,
                    password,
                } => {
                    writeln!(
                        w,
                        "        auth: {mode} (username {username:?}, password {})",
                        secret(password)
                    )?;
                }
            }
            let t = inst.tls();
            let tls = if t.insecure {
                "INSECURE (certificate not verified)".to_owned()
            } else {
                match t.ca_file.as_deref() {
                    Some(ca) => format!(
                        "verify with CA {}{}{}",
                        ca.display(),
                        if t.merge_system_roots {
                            " + system roots"
                        } else {
                            ""
                        },
                        if t.accept_invalid_hostnames {
                            ", any hostname"
                        } else {
                            ""
                        }
                    ),
                    None => "verify with system roots".to_owned(),
                }
            };
            writeln!(w, "        tls: {tls}")?;
            writeln!(
                w,
                "        max_concurrent_scans: {}, timeout: {}s",
                inst.max_concurrent_scans(),
                inst.timeout().as_secs()
            )?;
        }
        for id in pool.disabled_instances() {
            writeln!(w, "    - {}:{id} (disabled, not loaded)", pool.name())?;
        }
    }
    if !config.credentials().is_empty() {
        writeln!(w, "credentials:")?;
        for c in config.credentials().values() {
            let how = match c.auth() {
                ProfileAuth::Password(p) => format!("password {}", secret(p)),
                ProfileAuth::PrivateKey { key, passphrase } => format!(
                    "private key {}{}",
                    secret(key),
                    passphrase
                        .as_ref()
                        .map(|p| format!(", passphrase {}", secret(p)))
                        .unwrap_or_default()
                ),
            };
            writeln!(
                w,
                "  {}: ssh user {:?}, {how}, escalation {}",
                c.name(),
                c.username(),
                c.escalation()
            )?;
        }
    }
    if let Some(o) = config.auth().oauth() {
        writeln!(w, "auth:")?;
        writeln!(
            w,
            "  oauth: issuer {}, audience {}",
            o.issuer(),
            o.audience()
        )?;
        writeln!(
            w,
            "    jwks: {}; principal claim {}; leeway {}s",
            o.jwks_uri().unwrap_or("from discovery"),
            o.principal_claim(),
            o.leeway().as_secs()
        )?;
        let s = o.scopes();
        writeln!(
            w,
            "    scopes: read {}, scan {}, authenticated {}, admin {}",
            s.read(),
            s.scan(),
            s.authenticated(),
            s.admin()
        )?;
        match o.introspection() {
            Some(i) => writeln!(
                w,
                "    introspection: client {:?}, secret {}, endpoint {}",
                i.client_id(),
                secret(i.client_secret()),
                i.endpoint().unwrap_or("from discovery")
            )?,
            None => writeln!(w, "    introspection: off (JWT access tokens only)")?,
        }
    }
    if !config.warnings().is_empty() {
        writeln!(w, "warnings:")?;
        for warning in config.warnings() {
            writeln!(w, "  - {warning}")?;
        }
    }
    Ok(())
}

fn secret(s: &ConfigSecret) -> String {
    format!("******** ({})", s.origin())
}

fn secrets(list: &[ConfigSecret]) -> String {
    if list.is_empty() {
        return "none".to_owned();
    }
    list.iter().map(secret).collect::<Vec<_>>().join(", ")
}

/// Each URL with its userinfo masked, and where it came from.
fn urls(list: &[ConfigSecret]) -> String {
    use secrecy::ExposeSecret;
    list.iter()
        .map(|u| {
            format!(
                "{} ({})",
                mask_userinfo(u.secret().expose_secret()),
                u.origin()
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}
