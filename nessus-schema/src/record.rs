//! The typed records a `.nessus` file is made of.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::value::{Value, ValueRef};

/// One item produced by [`NessusReader`](crate::NessusReader), in document order.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    /// Scan-level metadata, emitted once when `<Report>` starts.
    Scan(ScanMetadata),
    /// A host, emitted when its `<HostProperties>` block ends (before its findings).
    Host(Host),
    /// A `ReportItem`.
    Finding(Finding),
    /// The compliance result carried by the `ReportItem` emitted just before it.
    Compliance(ComplianceResult),
}

/// Scan-level metadata.
///
/// The parser fills `report_name` and `policy_name`; `scan_start`/`scan_end` are derived
/// from the hosts' `HOST_START`/`HOST_END` by [`Store`](crate::Store) and
/// [`Summary`](crate::Summary), because Nessus writes no scan-level times.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScanMetadata {
    /// `Report@name`.
    pub report_name: Option<String>,
    /// `Policy/policyName`.
    pub policy_name: Option<String>,
    /// Earliest host start (`HOST_START`), as written by Nessus.
    pub scan_start: Option<String>,
    /// Latest host end (`HOST_END`), as written by Nessus.
    pub scan_end: Option<String>,
}

/// A scanned host with every `HostProperties` tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Host {
    /// `ReportHost@name` (an address, a host name, or a URL for WAS scans).
    pub name: String,
    /// `host-ip`, when it is a valid address.
    pub ip: Option<IpAddr>,
    /// `host-fqdn`.
    pub fqdn: Option<String>,
    /// `netbios-name`.
    pub netbios: Option<String>,
    /// `mac-address` (may hold several addresses separated by newlines).
    pub mac: Option<String>,
    /// `operating-system` (or `os` when that is all there is).
    pub os: Option<String>,
    /// `Credentialed_Scan` as a boolean.
    pub credentialed: Option<bool>,
    /// `HOST_START` as written by Nessus (e.g. `Thu Mar 20 00:30:57 2014`).
    pub start: Option<String>,
    /// `HOST_END` as written by Nessus.
    pub end: Option<String>,
    /// `HOST_START_TIMESTAMP` (Unix seconds), when present.
    pub start_timestamp: Option<i64>,
    /// `HOST_END_TIMESTAMP` (Unix seconds), when present.
    pub end_timestamp: Option<i64>,
    /// Every `<tag name=...>` in document order, including the typed ones above.
    pub properties: Vec<(String, String)>,
}

impl Host {
    /// Value of a host property by tag name.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The values of a host's [`HOST_FIELDS`](crate::HOST_FIELDS), as the store's host table
/// keeps them and as a [`Finding`] sees its host's.
///
/// Serialized into the store's `meta.json` (every field defaults, so stores written before
/// these fields existed still open). `ip` is not serialized: the host table keeps the
/// address itself, and the text is derived from it on open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HostFields {
    /// `host_ip`: the valid `host-ip` as text.
    #[serde(skip)]
    pub ip: Option<String>,
    /// `host_fqdn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fqdn: Option<String>,
    /// `netbios_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netbios: Option<String>,
    /// `mac_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// `operating_system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// `host_start`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// `host_end`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// `credentialed_scan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentialed: Option<bool>,
}

impl HostFields {
    /// The host fields of a parsed host.
    pub fn of(h: &Host) -> HostFields {
        HostFields {
            ip: h.ip.map(|ip| ip.to_string()),
            fqdn: h.fqdn.clone(),
            netbios: h.netbios.clone(),
            mac: h.mac.clone(),
            os: h.os.clone(),
            start: h.start.clone(),
            end: h.end.clone(),
            credentialed: h.credentialed,
        }
    }

    /// A host field by name (one of [`HOST_FIELDS`](crate::HOST_FIELDS)); `None` when the
    /// host does not have it or `name` is not a host field.
    pub fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        fn text(s: &Option<String>) -> Option<ValueRef<'_>> {
            s.as_deref().map(ValueRef::Text)
        }
        match name {
            "host_ip" => text(&self.ip),
            "host_fqdn" => text(&self.fqdn),
            "netbios_name" => text(&self.netbios),
            "mac_address" => text(&self.mac),
            "operating_system" => text(&self.os),
            "host_start" => text(&self.start),
            "host_end" => text(&self.end),
            "credentialed_scan" => self.credentialed.map(ValueRef::Bool),
            _ => None,
        }
    }

    /// Whether `host_ip` only repeats the host name (an IP-named host): profiles then do
    /// not write it.
    pub fn ip_repeats_name(&self, name: &str) -> bool {
        match &self.ip {
            None => true,
            Some(ip) => {
                let name = name.trim();
                name.eq_ignore_ascii_case(ip)
                    || name
                        .parse::<IpAddr>()
                        .is_ok_and(|n| ip.parse::<IpAddr>().is_ok_and(|i| i == n))
            }
        }
    }
}

/// One `ReportItem`: every attribute and every child element, typed.
///
/// The seven standard attributes are typed fields; every child element (and any other
/// attribute) is kept in `fields` in document order under its element name, typed by the
/// field catalogue. Repeated children are lists. The `<vulnerability_priority_rating>`
/// element is stored as `vpr_score`, and a `<plugin_name>` child overrides the attribute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    /// `ReportHost@name` of the enclosing host (empty for a bare `ReportItem` fragment).
    pub host: String,
    /// `pluginID`.
    pub plugin_id: Option<u32>,
    /// `pluginName` (or the `<plugin_name>` child).
    pub plugin_name: Option<String>,
    /// `pluginFamily`.
    pub plugin_family: Option<String>,
    /// `severity` (0 info ... 4 critical).
    pub severity: Option<u8>,
    /// `port`.
    pub port: Option<u32>,
    /// `svc_name`.
    pub svc_name: Option<String>,
    /// `protocol`.
    pub protocol: Option<String>,
    /// Every child element (and extra attribute) in document order.
    pub fields: Vec<(FieldName, Value)>,
    /// The enclosing host's `host-ip` (not written as a field; lets `cidr` filters on
    /// `host` work when the host name is not an address).
    pub host_ip: Option<IpAddr>,
    /// The enclosing host's [`HostFields`] (not part of the record; shared by every
    /// finding of the host). `None` when the finding was read before its host's
    /// properties, or without a host.
    pub host_fields: Option<Arc<HostFields>>,
}

/// A field name. Names are interned by the parser, so the thousands of findings of a
/// file share one allocation per distinct name.
pub type FieldName = Arc<str>;

/// The standard attribute-derived keys of a finding, in output order.
pub(crate) const ATTRIBUTE_FIELDS: [&str; 8] = [
    "host",
    "plugin_id",
    "plugin_name",
    "plugin_family",
    "severity",
    "port",
    "svc_name",
    "protocol",
];

impl Finding {
    /// Looks a field up by name: a standard attribute, a child element, or the computed
    /// `cvss_score`. `None` means the field is absent; a standard attribute that is
    /// missing from the file is present as [`ValueRef::Null`].
    pub fn get(&self, name: &str) -> Option<ValueRef<'_>> {
        if crate::catalogue::is_host_field(name) {
            // Host data, never the record's: a child of the same name is not consulted.
            return self.host_fields.as_deref().and_then(|h| h.get(name));
        }
        fn text(s: &Option<String>) -> ValueRef<'_> {
            s.as_deref().map_or(ValueRef::Null, ValueRef::Text)
        }
        fn int<T: Into<i64> + Copy>(v: Option<T>) -> ValueRef<'static> {
            v.map_or(ValueRef::Null, |v| ValueRef::Int(v.into()))
        }
        Some(match name {
            "host" => ValueRef::Text(&self.host),
            "plugin_id" => int(self.plugin_id),
            "plugin_name" => text(&self.plugin_name),
            "plugin_family" => text(&self.plugin_family),
            "severity" => int(self.severity),
            "port" => int(self.port),
            "svc_name" => text(&self.svc_name),
            "protocol" => text(&self.protocol),
            _ => {
                if let Some(v) = self.child(name) {
                    return Some(v);
                }
                if name == "cvss_score" {
                    return self.cvss_score().map(ValueRef::Float);
                }
                return None;
            }
        })
    }

    /// A child element by name.
    pub fn child(&self, name: &str) -> Option<ValueRef<'_>> {
        self.fields
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// `cvss3_base_score` if present and numeric, else `cvss_base_score`.
    pub fn cvss_score(&self) -> Option<f64> {
        let num = |n| self.child(n).and_then(|v| v.as_f64());
        num("cvss3_base_score").or_else(|| num("cvss_base_score"))
    }

    /// The identity used to compare scans: host, port, protocol, plugin id.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            host: self.host.clone(),
            port: self.port,
            protocol: self.protocol.clone(),
            plugin_id: self.plugin_id,
        }
    }
}

/// The identity of a finding across two scans of the same targets.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Host name.
    pub host: String,
    /// Port.
    pub port: Option<u32>,
    /// Protocol.
    pub protocol: Option<String>,
    /// Plugin id.
    pub plugin_id: Option<u32>,
}

/// A compliance check result (`cm:compliance-*` children of a `ReportItem`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ComplianceResult {
    /// Host name.
    pub host: String,
    /// Plugin id of the carrying `ReportItem`.
    pub plugin_id: Option<u32>,
    /// Plugin name of the carrying `ReportItem`.
    pub plugin_name: Option<String>,
    /// `cm:compliance-check-name`.
    pub check_name: Option<String>,
    /// `cm:compliance-result` (PASSED, FAILED, WARNING, ERROR, ...).
    pub result: Option<String>,
    /// Every `cm:compliance-*` child in document order, keyed by the part after
    /// `compliance-` with `-` turned into `_` (`actual_value`, `reference`, ...).
    pub fields: Vec<(String, String)>,
}

impl ComplianceResult {
    /// A compliance field by its short name (`actual_value`, `reference`, ...).
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}
