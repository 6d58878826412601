//! `/server/status`, `/server/properties` and `/session`.

use serde::Deserialize;

use super::de;

/// `GET /server/status`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ServerStatus {
    /// `ready`, `loading`, `register`, …
    #[serde(default)]
    pub status: String,
    /// 200 when ready.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub code: Option<i64>,
    /// Loading progress in percent, when loading.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub progress: Option<u64>,
}

impl ServerStatus {
    /// The server accepts API calls.
    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// Licence feature switches (`license.features` and top-level `features`).
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct Features {
    /// The REST API is usable at all.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub api: Option<bool>,
    /// Scan control (create/launch/stop/delete) through the API is allowed.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub scan_api: Option<bool>,
}

/// The `license` block of `/server/properties`.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct License {
    /// `home` on Essentials; other values vary.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Licence name, e.g. `Nessus Essentials`.
    #[serde(default)]
    pub name: Option<String>,
    /// Whether the licence limits the number of IPs.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub restricted: Option<bool>,
    /// Licensed IP count (`-1` = unlimited).
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub ips: Option<i64>,
    /// Expiry, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub expiration_date: Option<i64>,
    /// Feature switches.
    #[serde(default)]
    pub features: Option<Features>,
}

/// `GET /server/properties` (the fields the client relies on; others are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct ServerProperties {
    /// `Nessus Professional`, `Nessus Essentials`, `Nessus Manager`, …
    #[serde(default)]
    pub nessus_type: Option<String>,
    /// Server version, e.g. `10.8.3`.
    #[serde(default)]
    pub server_version: Option<String>,
    /// Server build.
    #[serde(default, deserialize_with = "de::lenient_string")]
    pub server_build: Option<String>,
    /// UI version.
    #[serde(default)]
    pub nessus_ui_version: Option<String>,
    /// Plugin set loaded.
    #[serde(default, deserialize_with = "de::lenient_string")]
    pub loaded_plugin_set: Option<String>,
    /// Installation UUID.
    #[serde(default)]
    pub server_uuid: Option<String>,
    /// Platform, e.g. `LINUX`.
    #[serde(default)]
    pub platform: Option<String>,
    /// Session idle timeout in minutes (a string on the wire).
    #[serde(default, deserialize_with = "de::lenient_string")]
    pub idle_timeout: Option<String>,
    /// Licence.
    #[serde(default)]
    pub license: Option<License>,
    /// Top-level feature switches (same keys as `license.features`).
    #[serde(default)]
    pub features: Option<Features>,
}

impl ServerProperties {
    /// `scan_api` from `license.features`, then from the top-level `features`
    /// (nessus-api.md §5.2). `None` when neither is present (cloud, old versions).
    pub fn scan_api(&self) -> Option<bool> {
        self.license
            .as_ref()
            .and_then(|l| l.features.as_ref())
            .and_then(|f| f.scan_api)
            .or_else(|| self.features.as_ref().and_then(|f| f.scan_api))
    }
}

/// `GET /session`: the user behind the current credentials.
#[derive(Debug, Clone, Default, Deserialize)]
#[non_exhaustive]
pub struct SessionInfo {
    /// User id.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub id: Option<u64>,
    /// Login name.
    #[serde(default)]
    pub username: String,
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail.
    #[serde(default)]
    pub email: Option<String>,
    /// `local`, `ldap`, …
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Permission level (128 = administrator).
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub permissions: Option<u64>,
}

/// `POST /session` response.
#[derive(Deserialize)]
pub(crate) struct LoginResponse {
    #[serde(default, deserialize_with = "de::lenient_string")]
    pub(crate) token: Option<String>,
}
