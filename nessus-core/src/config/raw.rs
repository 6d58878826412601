//! The file as written: serde shapes with source locations, before interpolation and
//! validation. Nothing here is public; `resolve` turns it into the public model.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub(crate) pools: Vec<(Spanned<String>, RawPool)>,
    pub(crate) server: Option<Spanned<RawServer>>,
    pub(crate) queue: Option<Spanned<RawQueue>>,
    pub(crate) credentials: BTreeMap<String, Spanned<RawCredential>>,
    pub(crate) principals: BTreeMap<String, Spanned<RawPrincipal>>,
    pub(crate) auth: Option<Spanned<RawAuth>>,
    pub(crate) webhooks: Vec<Spanned<RawWebhook>>,
}

/// One `webhooks` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub(crate) url: Spanned<String>,
    pub(crate) secret: Spanned<RawSecret>,
    pub(crate) events: Vec<Spanned<String>>,
    pub(crate) pool: Option<Spanned<String>>,
    pub(crate) principal: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawConfig {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawConfig;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a mapping of pool names (and optional server, queue, credentials, principals, auth)",
                )
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawConfig, E> {
                Ok(RawConfig::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<RawConfig, E> {
                Ok(RawConfig::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawConfig, A::Error> {
                let mut out = RawConfig::default();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    match key.value.as_str() {
                        "server" => out.server = Some(map.next_value()?),
                        "queue" => out.queue = Some(map.next_value()?),
                        "auth" => out.auth = map.next_value()?,
                        "webhooks" => {
                            let w: Option<Vec<Spanned<RawWebhook>>> = map.next_value()?;
                            out.webhooks = w.unwrap_or_default();
                        }
                        "principals" => {
                            let p: Option<BTreeMap<String, Spanned<RawPrincipal>>> =
                                map.next_value()?;
                            out.principals = p.unwrap_or_default();
                        }
                        "credentials" => {
                            let creds: Option<BTreeMap<String, Spanned<RawCredential>>> =
                                map.next_value()?;
                            out.credentials = creds.unwrap_or_default();
                        }
                        _ => {
                            let pool: RawPool = map.next_value()?;
                            out.pools.push((key, pool));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A pool: the predecessor's list of instances, the map form with a target policy, or
/// nothing (every instance commented out).
#[derive(Debug, Default)]
pub(crate) struct RawPool {
    pub(crate) instances: Vec<Spanned<RawInstance>>,
    pub(crate) target_policy: Option<Spanned<RawPolicy>>,
    pub(crate) approval: Option<Spanned<RawApproval>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoolMap {
    #[serde(default)]
    instances: Option<Vec<Spanned<RawInstance>>>,
    #[serde(default)]
    target_policy: Option<Spanned<RawPolicy>>,
    #[serde(default)]
    approval: Option<Spanned<RawApproval>>,
}

/// A pool's `approval:` section: which scans wait for an admin.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    pub(crate) auto_approve: Option<Vec<Spanned<Scalar>>>,
    pub(crate) authenticated: Option<bool>,
    pub(crate) max_hosts: Option<u64>,
    pub(crate) expires_after: Option<Spanned<String>>,
}

impl<'de> Deserialize<'de> for RawPool {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawPool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of scanner instances, or a mapping with `instances` and `target_policy`")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawPool, E> {
                Ok(RawPool::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<RawPool, E> {
                Ok(RawPool::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawPool, A::Error> {
                let mut instances = Vec::new();
                while let Some(inst) = seq.next_element()? {
                    instances.push(inst);
                }
                Ok(RawPool {
                    instances,
                    target_policy: None,
                    approval: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawPool, A::Error> {
                let m = RawPoolMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawPool {
                    instances: m.instances.unwrap_or_default(),
                    target_policy: m.target_policy,
                    approval: m.approval,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// One scanner instance. Unknown keys are collected (and reported as warnings) rather
/// than rejected, because the predecessor ignored them and its files must load.
#[derive(Debug, Deserialize)]
pub(crate) struct RawInstance {
    pub(crate) instance_id: Option<Spanned<Scalar>>,
    pub(crate) name: Option<Scalar>,
    pub(crate) url: Option<Spanned<String>>,
    pub(crate) username: Option<Spanned<String>>,
    pub(crate) password: Option<Spanned<RawSecret>>,
    pub(crate) access_key: Option<Spanned<RawSecret>>,
    pub(crate) secret_key: Option<Spanned<RawSecret>>,
    pub(crate) auth: Option<Spanned<String>>,
    pub(crate) tls: Option<Spanned<RawTls>>,
    pub(crate) enabled: Option<bool>,
    pub(crate) max_concurrent_scans: Option<Spanned<u32>>,
    pub(crate) timeout_secs: Option<Spanned<u64>>,
    #[serde(flatten)]
    pub(crate) unknown: BTreeMap<String, IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub(crate) ca_file: Option<Spanned<String>>,
    pub(crate) ca_merge_system: Option<bool>,
    pub(crate) insecure: Option<bool>,
    pub(crate) accept_invalid_hostnames: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub(crate) allow: Vec<Spanned<Scalar>>,
    #[serde(default)]
    pub(crate) deny: Vec<Spanned<Scalar>>,
    pub(crate) max_hosts: Option<u64>,
    pub(crate) builtin_deny: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) data_dir: Option<Spanned<String>>,
    pub(crate) results_dir: Option<Spanned<String>>,
    pub(crate) results_url: Option<Spanned<String>>,
    pub(crate) results_cache_dir: Option<Spanned<String>>,
    pub(crate) results_cache_max_bytes: Option<u64>,
    pub(crate) default_pool: Option<Spanned<String>>,
    pub(crate) default_scan_timeout_secs: Option<u64>,
    #[serde(default)]
    pub(crate) mcp_tokens: Vec<Spanned<RawSecret>>,
    pub(crate) tool_output: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    pub(crate) backend: Option<Spanned<String>>,
    pub(crate) sqlite_path: Option<Spanned<String>>,
    pub(crate) redis_url: Option<Spanned<RawSecret>>,
    pub(crate) redis_sentinels: Option<Spanned<Vec<Spanned<RawSecret>>>>,
    pub(crate) redis_sentinel_master: Option<Spanned<String>>,
    pub(crate) redis_sentinel_master_password: Option<Spanned<RawSecret>>,
    pub(crate) redis_cluster: Option<Spanned<Vec<Spanned<RawSecret>>>>,
    pub(crate) lease_secs: Option<u64>,
    pub(crate) completed_ttl_days: Option<u64>,
    pub(crate) failed_ttl_days: Option<u64>,
    pub(crate) idempotency_ttl_hours: Option<u64>,
    pub(crate) max_queued_per_principal: Option<u64>,
    pub(crate) findings_ttl_days: Option<u64>,
}

/// What one principal (a bearer-token name) may do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrincipal {
    pub(crate) pools: Option<Vec<Spanned<String>>>,
    pub(crate) authenticated_scans: Option<bool>,
    pub(crate) admin: Option<bool>,
    pub(crate) max_queued: Option<u64>,
}

/// `auth`: how the MCP server authenticates callers beyond static tokens.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub(crate) oauth: Option<Spanned<RawOAuth>>,
}

/// `auth.oauth`: the OAuth 2.1 resource-server settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOAuth {
    pub(crate) issuer: Spanned<String>,
    pub(crate) audience: Spanned<String>,
    pub(crate) jwks_uri: Option<Spanned<String>>,
    pub(crate) principal_claim: Option<Spanned<String>>,
    pub(crate) scopes: Option<Spanned<RawScopes>>,
    pub(crate) leeway_secs: Option<u64>,
    pub(crate) introspection: Option<Spanned<RawIntrospection>>,
}

/// `auth.oauth.scopes`: the scope string the provider issues for each capability.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScopes {
    pub(crate) read: Option<Spanned<String>>,
    pub(crate) scan: Option<Spanned<String>>,
    pub(crate) authenticated: Option<Spanned<String>>,
    pub(crate) admin: Option<Spanned<String>>,
}

/// `auth.oauth.introspection`: this server's client at the provider (RFC 7662).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIntrospection {
    pub(crate) client_id: Spanned<String>,
    pub(crate) client_secret: Spanned<RawSecret>,
    pub(crate) endpoint: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) username: Spanned<String>,
    pub(crate) password: Option<Spanned<RawSecret>>,
    pub(crate) private_key: Option<Spanned<RawSecret>>,
    pub(crate) private_key_passphrase: Option<Spanned<RawSecret>>,
    pub(crate) elevate_privileges_with: Option<Spanned<String>>,
    pub(crate) escalation_account: Option<String>,
    pub(crate) escalation_password: Option<Spanned<RawSecret>>,
}

/// A secret as written: a string (with `${VAR}` interpolation), `{env: NAME}` or
/// `{file: PATH}`.
#[derive(Debug)]
pub(crate) enum RawSecret {
    Literal(String),
    Env(String),
    File(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecretRef {
    env: Option<String>,
    file: Option<String>,
}

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSecret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, `{env: NAME}` or `{file: PATH}`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawSecret, E> {
                Ok(RawSecret::Literal(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSecret, A::Error> {
                let r = RawSecretRef::deserialize(MapAccessDeserializer::new(map))?;
                match (r.env, r.file) {
                    (Some(env), None) => Ok(RawSecret::Env(env)),
                    (None, Some(file)) => Ok(RawSecret::File(file)),
                    _ => Err(de::Error::custom(
                        "a secret needs exactly one of `env` or `file`",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Any scalar read as text (`instance_id: 1` and `instance_id: "1"` are the same).
#[derive(Debug, Clone)]
pub(crate) struct Scalar(pub(crate) String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}
