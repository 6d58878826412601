//! Editor templates, policies, folders and scanners.

use serde::Deserialize;

use super::de;

/// One entry of `GET /editor/scan/templates` (or `/editor/policy/templates`).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Template {
    /// Template UUID (52 characters), the `uuid` of `POST /scans`.
    pub uuid: String,
    /// Short name: `basic`, `advanced`, `discovery`, …
    pub name: String,
    /// Display title, e.g. `Basic Network Scan`.
    #[serde(default)]
    pub title: Option<String>,
    /// Description (`desc`; `description` in some versions).
    #[serde(default, alias = "description")]
    pub desc: Option<String>,
    /// Only available on Tenable.io.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub cloud_only: Option<bool>,
    /// Only available on Nessus Manager.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub manager_only: Option<bool>,
    /// Needs a subscription.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub subscription_only: Option<bool>,
    /// Not supported by this licence.
    #[serde(default, deserialize_with = "de::lenient_bool")]
    pub unsupported: Option<bool>,
}

#[derive(Deserialize)]
pub(crate) struct TemplateList {
    #[serde(default, deserialize_with = "de::null_list")]
    pub(crate) templates: Vec<Template>,
}

/// One entry of `GET /policies`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Policy {
    /// Policy id (`settings.policy_id` of `POST /scans`).
    pub id: u64,
    /// Name.
    pub name: String,
    /// UUID of the template the policy is based on.
    #[serde(default)]
    pub template_uuid: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Owner's login.
    #[serde(default)]
    pub owner: Option<String>,
    /// Created, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub creation_date: Option<i64>,
    /// Last modified, epoch seconds.
    #[serde(default, deserialize_with = "de::lenient_i64")]
    pub last_modification_date: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct PolicyList {
    #[serde(default, deserialize_with = "de::null_list")]
    pub(crate) policies: Vec<Policy>,
}

/// A folder (from `GET /folders` or `GET /scans`).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct Folder {
    /// Folder id (per installation: never hard-code it).
    pub id: u64,
    /// Name.
    pub name: String,
    /// `main` (My Scans), `trash`, or `custom`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// 1 for the default folder.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub default_tag: Option<u64>,
    /// Unread results; may be `null`.
    #[serde(default, deserialize_with = "de::lenient_u64")]
    pub unread_count: Option<u64>,
}

impl Folder {
    /// The trash folder.
    pub fn is_trash(&self) -> bool {
        self.kind.as_deref() == Some("trash")
    }
    /// The user's main folder ("My Scans").
    pub fn is_main(&self) -> bool {
        self.kind.as_deref() == Some("main")
    }
}

#[derive(Deserialize)]
pub(crate) struct FolderList {
    #[serde(default, deserialize_with = "de::null_list")]
    pub(crate) folders: Vec<Folder>,
}

/// One entry of `GET /scanners`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ScannerInfo {
    /// Scanner id (`settings.scanner_id` of `POST /scans`).
    #[serde(deserialize_with = "de::lenient_u64")]
    pub id: Option<u64>,
    /// Scanner UUID.
    #[serde(default)]
    pub uuid: Option<String>,
    /// Name, e.g. `Local Scanner`.
    #[serde(default)]
    pub name: String,
    /// `local` for the built-in scanner.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// `on`, …
    #[serde(default)]
    pub status: Option<String>,
    /// Engine version.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// Platform.
    #[serde(default)]
    pub platform: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ScannerList {
    #[serde(default, deserialize_with = "de::null_list")]
    pub(crate) scanners: Vec<ScannerInfo>,
}
