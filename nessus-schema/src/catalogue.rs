//! The field catalogue: which fields exist, how they are typed, and the output profiles.

use crate::error::{Error, Result};

/// How a finding field is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldKind {
    /// Integer (plugin_id, severity, port).
    Int,
    /// Floating-point score.
    Float,
    /// `true`/`false` flag.
    Bool,
    /// Free text.
    Text,
    /// Repeated element, always a list.
    List,
}

/// Children that Nessus repeats within one `ReportItem`; they are always lists, even with a
/// single occurrence, so a consumer sees one shape. The set was taken from the corpus
/// (cve, bid, xref, see_also, cwe, osvdb, edb-id, iava, iavt, cert repeat there) plus the
/// other cross-reference kinds Nessus emits. Any other child that repeats also becomes a
/// list rather than losing values.
const LIST_FIELDS: &[&str] = &[
    "apple-sa",
    "attachment",
    "bid",
    "cea-id",
    "cert",
    "cisa-ncas",
    "cpe",
    "cve",
    "cwe",
    "dsa",
    "edb-id",
    "glsa",
    "iava",
    "iavb",
    "iavt",
    "icsa",
    "msft",
    "mskb",
    "osvdb",
    "owasp",
    "rhsa",
    "secunia",
    "see_also",
    "stig",
    "tra",
    "usn",
    "vmsa",
    "xref",
    "zdi",
];

/// Children whose text is `true`/`false`.
const BOOL_FIELDS: &[&str] = &[
    "default_account",
    "enable_cgi_scanning",
    "exploit_available",
    "exploited_by_malware",
    "exploited_by_nessus",
    "in_the_news",
    "potential_vulnerability",
    "thorough_tests",
    "unsupported_by_vendor",
];

/// The severity scale, highest first: the one table filter errors, tool descriptions, the
/// field catalogue resource and aggregation labels read.
pub const SEVERITY_NAMES: [(&str, u8); 5] = [
    ("critical", 4),
    ("high", 3),
    ("medium", 2),
    ("low", 1),
    ("info", 0),
];

/// The severity a name stands for (case-insensitive, surrounding space ignored); also
/// accepts `informational` and `none` for 0, the words Nessus itself uses for risk factor.
pub fn severity_from_name(name: &str) -> Option<u8> {
    let name = name.trim();
    SEVERITY_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, s)| *s)
        .or_else(|| {
            ["informational", "none"]
                .iter()
                .any(|n| n.eq_ignore_ascii_case(name))
                .then_some(0)
        })
}

/// The name of a severity (`"unknown"` outside 0-4).
pub fn severity_name(severity: u8) -> &'static str {
    SEVERITY_NAMES
        .iter()
        .find(|(_, s)| *s == severity)
        .map_or("unknown", |(n, _)| n)
}

/// The scale as written in error messages and descriptions:
/// `4 critical, 3 high, 2 medium, 1 low, 0 info`.
pub fn severity_scale() -> String {
    SEVERITY_NAMES
        .iter()
        .map(|(n, s)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The typed properties of the host a finding belongs to. Their values come from the
/// host table (a host's `HostProperties`), never from the finding's own record; they are
/// filterable, projectable and (`host_ip`) usable with `cidr`. `credentialed_scan` is a
/// boolean, the others are text (see [`field_kind`]).
pub const HOST_FIELDS: [&str; 8] = [
    "host_ip",
    "host_fqdn",
    "netbios_name",
    "mac_address",
    "operating_system",
    "host_start",
    "host_end",
    "credentialed_scan",
];

/// Whether `name` is one of [`HOST_FIELDS`].
pub fn is_host_field(name: &str) -> bool {
    HOST_FIELDS.contains(&name)
}

/// How a child element named `name` is typed.
pub fn field_kind(name: &str) -> FieldKind {
    match name {
        "plugin_id" | "severity" | "port" => return FieldKind::Int,
        "vpr_score" | "epss_score" | "cvss_score" => return FieldKind::Float,
        "credentialed_scan" => return FieldKind::Bool,
        _ => {}
    }
    if LIST_FIELDS.binary_search(&name).is_ok() {
        return FieldKind::List;
    }
    if BOOL_FIELDS.binary_search(&name).is_ok() || name.starts_with("exploit_framework_") {
        return FieldKind::Bool;
    }
    // Every CVSS score variant Nessus has used: cvss_base_score, cvss3_temporal_score,
    // cvss4_threat_score, cvssV3_impactScore, ...
    let lower_has_score = name
        .as_bytes()
        .windows(5)
        .any(|w| w.eq_ignore_ascii_case(b"score"));
    if name.starts_with("cvss") && lower_has_score {
        return FieldKind::Float;
    }
    FieldKind::Text
}

/// Fields every finding has or can have: the standard attributes, the computed
/// `cvss_score`, and the children Nessus commonly emits. Used to validate filter and
/// field names (a store adds every field it actually saw).
pub const KNOWN_FIELDS: &[&str] = &[
    "host",
    "plugin_id",
    "plugin_name",
    "plugin_family",
    "severity",
    "port",
    "svc_name",
    "protocol",
    "cvss_score",
    "host_ip",
    "host_fqdn",
    "netbios_name",
    "mac_address",
    "operating_system",
    "host_start",
    "host_end",
    "credentialed_scan",
    "agent",
    "age_of_vuln",
    "always_run",
    "bid",
    "cert",
    "cisa-known-exploited",
    "cpe",
    "cve",
    "cvss3_base_score",
    "cvss3_temporal_score",
    "cvss3_temporal_vector",
    "cvss3_vector",
    "cvss4_base_score",
    "cvss4_threat_score",
    "cvss4_vector",
    "cvss_base_score",
    "cvss_temporal_score",
    "cvss_temporal_vector",
    "cvss_vector",
    "cwe",
    "description",
    "edb-id",
    "epss_score",
    "exploit_available",
    "exploit_code_maturity",
    "exploit_framework_canvas",
    "exploit_framework_core",
    "exploit_framework_metasploit",
    "exploitability_ease",
    "exploited_by_malware",
    "exploited_by_nessus",
    "fname",
    "iava",
    "iavb",
    "iavt",
    "in_the_news",
    "metasploit_name",
    "msft",
    "mskb",
    "osvdb",
    "patch_publication_date",
    "plugin_modification_date",
    "plugin_output",
    "plugin_publication_date",
    "plugin_type",
    "product_coverage",
    "risk_factor",
    "script_version",
    "see_also",
    "solution",
    "stig_severity",
    "synopsis",
    "threat_intensity_last_28",
    "threat_recency",
    "threat_sources_last_28",
    "unsupported_by_vendor",
    "vpr_score",
    "vuln_publication_date",
    "xref",
];

/// A named output profile (seed-spec §9.2 field lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Profile {
    /// `host, plugin_id, severity, cve, cvss_score, exploit_available, plugin_name, port,
    /// host_ip`.
    Minimal,
    /// minimal + `protocol, cvss3_base_score, synopsis`.
    Summary,
    /// summary + `description, solution` (the default).
    #[default]
    Brief,
    /// Every field of the record, plus the host fields that are known.
    Full,
}

// The predecessor's lists are kept as prefixes (clients that read the first fields by
// position keep working); `plugin_name` moved up to minimal so that minimal says what a
// finding is, `port` and `host_ip` so that it says where.
const MINIMAL: &[&str] = &[
    "host",
    "plugin_id",
    "severity",
    "cve",
    "cvss_score",
    "exploit_available",
    "plugin_name",
    "port",
    "host_ip",
];
const SUMMARY: &[&str] = &["protocol", "cvss3_base_score", "synopsis"];
const BRIEF: &[&str] = &["description", "solution"];

impl Profile {
    /// Every profile, in the order documentation and error messages list them. The one
    /// list the MCP server's argument check, completions and field resource read.
    pub const ALL: [Profile; 4] = [
        Profile::Minimal,
        Profile::Summary,
        Profile::Brief,
        Profile::Full,
    ];

    /// The names of [`Profile::ALL`], as used on the wire.
    pub fn names() -> impl Iterator<Item = &'static str> {
        Profile::ALL.into_iter().map(Profile::name)
    }

    /// Parses a profile name, with the predecessor's error message
    /// (`Invalid schema profile: X. Must be one of: ['minimal', 'summary', 'brief', 'full']`).
    pub fn parse(name: &str) -> Result<Profile> {
        if let Some(profile) = Profile::ALL.into_iter().find(|p| p.name() == name) {
            return Ok(profile);
        }
        let choices: Vec<String> = Profile::names().map(|n| format!("'{n}'")).collect();
        Err(Error::query(format!(
            "Invalid schema profile: {name}. Must be one of: [{}]",
            choices.join(", ")
        )))
    }

    /// The profile's name as used on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Minimal => "minimal",
            Profile::Summary => "summary",
            Profile::Brief => "brief",
            Profile::Full => "full",
        }
    }

    /// The profile's fields in output order; `None` for `full` (all fields).
    pub fn fields(self) -> Option<Vec<&'static str>> {
        let lists: &[&[&str]] = match self {
            Profile::Minimal => &[MINIMAL],
            Profile::Summary => &[MINIMAL, SUMMARY],
            Profile::Brief => &[MINIMAL, SUMMARY, BRIEF],
            Profile::Full => return None,
        };
        Some(lists.iter().flat_map(|l| l.iter().copied()).collect())
    }
}

/// Which fields of a finding are written, and in which order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    /// `minimal`/`summary`/`brief`/`full`, or `custom`.
    profile_name: &'static str,
    /// `None` = every field.
    fields: Option<Vec<String>>,
}

impl Default for Projection {
    fn default() -> Self {
        Projection::profile(Profile::Brief)
    }
}

impl Projection {
    /// The projection of a named profile.
    pub fn profile(profile: Profile) -> Projection {
        Projection {
            profile_name: profile.name(),
            fields: profile
                .fields()
                .map(|f| f.into_iter().map(str::to_owned).collect()),
        }
    }

    /// A custom field list (reported as profile `custom`).
    pub fn custom(fields: Vec<String>) -> Projection {
        Projection {
            profile_name: "custom",
            fields: Some(fields),
        }
    }

    /// Resolves the predecessor's `schema_profile` + `custom_fields` pair, keeping its
    /// rules: a non-`brief` profile together with `custom_fields` (even empty) is an error;
    /// a non-empty `custom_fields` wins (profile `custom`); an empty list means `brief`.
    pub fn resolve(profile: Option<&str>, custom_fields: Option<&[String]>) -> Result<Projection> {
        let profile_name = profile.unwrap_or("brief");
        if profile_name != "brief" && custom_fields.is_some() {
            return Err(Error::query(
                "Cannot specify both schema_profile and custom_fields",
            ));
        }
        let parsed = Profile::parse(profile_name)?;
        match custom_fields {
            Some(fields) if !fields.is_empty() => Ok(Projection::custom(fields.to_vec())),
            _ => Ok(Projection::profile(parsed)),
        }
    }

    /// `minimal`, `summary`, `brief`, `full` or `custom`.
    pub fn profile_name(&self) -> &'static str {
        self.profile_name
    }

    /// The requested fields in order, or `None` for all fields.
    pub fn fields(&self) -> Option<&[String]> {
        self.fields.as_deref()
    }
}

/// The known field closest to `name` (by edit distance), if it is close enough to be a
/// plausible typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let lname = name.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = edit_distance(&lname, &c.to_ascii_lowercase());
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    // Allow roughly one edit per three characters: "severty" -> "severity", but not
    // "foo" -> "port".
    (d <= (name.len() / 3).max(2)).then(|| c.to_owned())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_for_binary_search() {
        assert!(LIST_FIELDS.windows(2).all(|w| w[0] < w[1]));
        assert!(BOOL_FIELDS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn kinds() {
        assert_eq!(field_kind("cvss3_base_score"), FieldKind::Float);
        assert_eq!(field_kind("cvssV3_impactScore"), FieldKind::Float);
        assert_eq!(field_kind("cvss_vector"), FieldKind::Text);
        assert_eq!(field_kind("cve"), FieldKind::List);
        assert_eq!(field_kind("exploit_framework_core"), FieldKind::Bool);
        assert_eq!(field_kind("plugin_output"), FieldKind::Text);
    }

    #[test]
    fn severity_names() {
        let cases: &[(&str, Option<u8>)] = &[
            ("critical", Some(4)),
            ("CRITICAL", Some(4)),
            (" High ", Some(3)),
            ("medium", Some(2)),
            ("Low", Some(1)),
            ("info", Some(0)),
            ("informational", Some(0)),
            ("None", Some(0)),
            ("crit", None),
            ("hihg", None),
            ("", None),
            ("4", None),
        ];
        for (name, want) in cases {
            assert_eq!(severity_from_name(name), *want, "{name:?}");
        }
        for (name, s) in SEVERITY_NAMES {
            assert_eq!(severity_name(s), name);
        }
        assert_eq!(severity_name(9), "unknown");
        assert_eq!(
            severity_scale(),
            "4 critical, 3 high, 2 medium, 1 low, 0 info"
        );
    }

    #[test]
    fn host_fields_are_known_and_typed() {
        for f in HOST_FIELDS {
            assert!(KNOWN_FIELDS.contains(&f), "{f}");
        }
        assert_eq!(field_kind("credentialed_scan"), FieldKind::Bool);
        assert_eq!(field_kind("host_ip"), FieldKind::Text);
    }

    #[test]
    fn profile_fields() {
        // The contract's lists, typed out again here on purpose.
        let minimal = [
            "host",
            "plugin_id",
            "severity",
            "cve",
            "cvss_score",
            "exploit_available",
            "plugin_name",
            "port",
            "host_ip",
        ];
        let summary: Vec<&str> = minimal
            .iter()
            .copied()
            .chain(["protocol", "cvss3_base_score", "synopsis"])
            .collect();
        let brief: Vec<&str> = summary
            .iter()
            .copied()
            .chain(["description", "solution"])
            .collect();
        assert_eq!(Profile::Minimal.fields().unwrap(), minimal);
        assert_eq!(Profile::Summary.fields().unwrap(), summary);
        assert_eq!(Profile::Brief.fields().unwrap(), brief);
        assert_eq!(Profile::Full.fields(), None);
        // The predecessor's minimal list is a prefix of every list.
        let old = [
            "host",
            "plugin_id",
            "severity",
            "cve",
            "cvss_score",
            "exploit_available",
        ];
        for p in [Profile::Minimal, Profile::Summary, Profile::Brief] {
            assert_eq!(&p.fields().unwrap()[..6], old);
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            closest("severty", KNOWN_FIELDS.iter().copied()).as_deref(),
            Some("severity")
        );
        assert_eq!(closest("zzzzzzzzzzzz", KNOWN_FIELDS.iter().copied()), None);
    }
}
