//! Per-pool target policy: allow-list, deny-list, host cap. Deny by default.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use super::interval::Interval;
use super::parse::{InvalidTarget, Target, parse_hostname, parse_target, split_targets};

/// Default cap on the number of addresses one scan may cover (a `/16`).
pub const DEFAULT_MAX_HOSTS: u64 = 65_536;

/// Refusals listed in full by `Display`; the rest are counted.
const DISPLAYED_REFUSALS: usize = 10;

/// Networks no scan may touch unless the policy opts out with
/// [`TargetPolicy::with_builtin_deny`]: this-host, loopback, link-local (cloud metadata
/// at 169.254.169.254), multicast, reserved and broadcast, and the IPv6 blocks that embed
/// IPv4 addresses (so a wide IPv6 block cannot smuggle IPv4 loopback).
const BUILTIN_DENY: &[&str] = &[
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "::/96",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
    "localhost",
    "*.localhost",
    "localhost.localdomain",
    "metadata.google.internal",
];

/// One allow or deny entry: addresses (IP, CIDR or range), an exact hostname, or every
/// subdomain of a name (`*.lab.example.com`, which does not match the name itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRule {
    kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RuleKind {
    Addresses { text: String, interval: Interval },
    Hostname(String),
    Subdomains(String),
}

impl PolicyRule {
    fn matches_host(&self, host: &str) -> bool {
        match &self.kind {
            RuleKind::Hostname(name) => name == host,
            RuleKind::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            RuleKind::Addresses { .. } => false,
        }
    }

    fn interval(&self) -> Option<Interval> {
        match &self.kind {
            RuleKind::Addresses { interval, .. } => Some(*interval),
            _ => None,
        }
    }
}

impl FromStr for PolicyRule {
    type Err = InvalidTarget;

    /// Parses `10.0.0.0/8`, `192.0.2.7`, `10.0.0.1-10.0.0.50`, `scan-target.lab`,
    /// or `*.lab.example.com`, with the same strict rules as scan targets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_rule(s.trim()).map_err(InvalidTarget)
    }
}

fn parse_rule(s: &str) -> Result<PolicyRule, String> {
    if let Some(suffix) = s.strip_prefix("*.") {
        let suffix = parse_hostname(suffix)?;
        return Ok(PolicyRule {
            kind: RuleKind::Subdomains(suffix),
        });
    }
    if s.contains('*') {
        return Err(format!(
            "{s:?}: '*' is only accepted as a leading '*.' label (hostnames are not \
             resolved before the check, so 'any name' is never allowed)"
        ));
    }
    let kind = match parse_target(s)? {
        Target::Host(name) => RuleKind::Hostname(name),
        other => {
            let interval = other
                .interval()
                .ok_or_else(|| format!("{s:?} has no address interval"))?;
            RuleKind::Addresses {
                text: other.to_string(),
                interval,
            }
        }
    };
    Ok(PolicyRule { kind })
}

impl fmt::Display for PolicyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RuleKind::Addresses { text, .. } => f.write_str(text),
            RuleKind::Hostname(name) => f.write_str(name),
            RuleKind::Subdomains(suffix) => write!(f, "*.{suffix}"),
        }
    }
}

/// Which targets a pool may scan.
///
/// Deny by default: an empty allow-list refuses everything. A target passes only when
/// it is entirely inside the allow-list, shares no address with the deny-list (deny
/// wins) and the built-in deny-list, and the whole request stays under `max_hosts`.
/// Hostnames are matched by name only (never resolved here, because Nessus resolves
/// again later), so allow only names under zones you control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    allow: Vec<PolicyRule>,
    deny: Vec<PolicyRule>,
    max_hosts: u64,
    builtin_deny: bool,
    allow_merged: Vec<Interval>,
}

impl Default for TargetPolicy {
    /// The empty policy: denies every target.
    fn default() -> Self {
        Self::new(Vec::new(), Vec::new())
    }
}

impl TargetPolicy {
    /// A policy with these allow and deny rules, the built-in deny-list on, and
    /// [`DEFAULT_MAX_HOSTS`].
    pub fn new(allow: Vec<PolicyRule>, deny: Vec<PolicyRule>) -> Self {
        let allow_merged = Interval::merge(allow.iter().filter_map(PolicyRule::interval).collect());
        Self {
            allow,
            deny,
            max_hosts: DEFAULT_MAX_HOSTS,
            builtin_deny: true,
            allow_merged,
        }
    }

    /// Sets the maximum number of addresses (hostnames count one each) per scan.
    #[must_use]
    pub fn with_max_hosts(mut self, max_hosts: u64) -> Self {
        self.max_hosts = max_hosts;
        self
    }

    /// Turns the built-in deny-list (loopback, link-local, multicast, …) on or off.
    /// Turning it off is only meant for labs and simulators.
    #[must_use]
    pub fn with_builtin_deny(mut self, on: bool) -> Self {
        self.builtin_deny = on;
        self
    }

    /// Adds deny rules, e.g. the pool's own scanner addresses.
    #[must_use]
    pub fn with_extra_deny(mut self, rules: impl IntoIterator<Item = PolicyRule>) -> Self {
        self.deny.extend(rules);
        self
    }

    /// The allow rules.
    pub fn allow(&self) -> &[PolicyRule] {
        &self.allow
    }

    /// The deny rules (without the built-in ones).
    pub fn deny(&self) -> &[PolicyRule] {
        &self.deny
    }

    /// The maximum number of addresses per scan.
    pub fn max_hosts(&self) -> u64 {
        self.max_hosts
    }

    /// Whether the built-in deny-list applies.
    pub fn builtin_deny(&self) -> bool {
        self.builtin_deny
    }

    /// True when the allow-list is empty, so every target is refused.
    pub fn denies_everything(&self) -> bool {
        self.allow.is_empty()
    }

    /// Parses a target list (commas, spaces, newlines) and checks every target.
    ///
    /// On success the targets are returned canonicalised; send
    /// [`ApprovedTargets::to_nessus_text`] to Nessus, never the raw input. On failure
    /// every refused target is listed with its reason.
    pub fn check(&self, input: &str) -> Result<ApprovedTargets, TargetRefusal> {
        let mut refusals = Vec::new();
        let mut targets = Vec::new();
        for token in split_targets(input) {
            match parse_target(token) {
                Ok(target) => match self.check_one(&target) {
                    Ok(()) => targets.push(target),
                    Err(reason) => refusals.push(Refusal::target(token, reason)),
                },
                Err(detail) => {
                    refusals.push(Refusal::target(token, RefusalReason::Invalid(detail)))
                }
            }
        }
        if targets.is_empty() && refusals.is_empty() {
            refusals.push(Refusal::list(RefusalReason::NoTargets));
        }
        let approved = ApprovedTargets::new(targets);
        if approved.host_count() > u128::from(self.max_hosts) {
            refusals.push(Refusal::list(RefusalReason::TooManyHosts {
                count: approved.host_count(),
                max: self.max_hosts,
            }));
        }
        if refusals.is_empty() {
            Ok(approved)
        } else {
            Err(TargetRefusal { refusals })
        }
    }

    fn check_one(&self, target: &Target) -> Result<(), RefusalReason> {
        if self.builtin_deny
            && let Some(rule) = builtin_rules().iter().find(|r| hits(r, target))
        {
            return Err(RefusalReason::BuiltinDenied {
                rule: rule.to_string(),
            });
        }
        if let Some(rule) = self.deny.iter().find(|r| hits(r, target)) {
            return Err(RefusalReason::Denied {
                rule: rule.to_string(),
            });
        }
        if self.allow.is_empty() {
            return Err(RefusalReason::EmptyPolicy);
        }
        let allowed = match (target.as_host(), target.interval()) {
            (Some(host), _) => self.allow.iter().any(|r| r.matches_host(host)),
            (None, Some(interval)) => {
                if !interval.covered_by(&self.allow_merged)
                    && self.allow_merged.iter().any(|a| a.overlaps(&interval))
                {
                    return Err(RefusalReason::PartlyOutsideAllowList);
                }
                interval.covered_by(&self.allow_merged)
            }
            (None, None) => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(RefusalReason::NotAllowed)
        }
    }
}

/// Whether a deny rule touches the target: shares an address, or names it.
fn hits(rule: &PolicyRule, target: &Target) -> bool {
    match (target.as_host(), target.interval(), rule.interval()) {
        (Some(host), _, _) => rule.matches_host(host),
        (None, Some(t), Some(r)) => t.overlaps(&r),
        _ => false,
    }
}

fn builtin_rules() -> &'static [PolicyRule] {
    static RULES: std::sync::OnceLock<Vec<PolicyRule>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| BUILTIN_DENY.iter().filter_map(|s| s.parse().ok()).collect())
}

/// Targets that passed a [`TargetPolicy`], in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovedTargets {
    targets: Vec<Target>,
    host_count: u128,
}

impl ApprovedTargets {
    fn new(targets: Vec<Target>) -> Self {
        let merged = Interval::merge(targets.iter().filter_map(Target::interval).collect());
        let names: BTreeSet<&str> = targets.iter().filter_map(Target::as_host).collect();
        let host_count = merged
            .iter()
            .fold(names.len() as u128, |acc, i| acc.saturating_add(i.size()));
        Self {
            targets,
            host_count,
        }
    }

    /// The canonical targets, in request order.
    pub fn targets(&self) -> &[Target] {
        &self.targets
    }

    /// Distinct addresses covered (overlaps counted once), plus distinct hostnames.
    pub fn host_count(&self) -> u128 {
        self.host_count
    }

    /// The comma-separated canonical list for Nessus's `text_targets`.
    pub fn to_nessus_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for ApprovedTargets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, target) in self.targets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{target}")?;
        }
        Ok(())
    }
}

/// Why targets were refused: one entry per refused target, plus request-level reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRefusal {
    refusals: Vec<Refusal>,
}

impl TargetRefusal {
    /// Every refusal, in input order; request-level reasons come last.
    pub fn refusals(&self) -> &[Refusal] {
        &self.refusals
    }
}

impl fmt::Display for TargetRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.refusals.len();
        write!(
            f,
            "{n} target problem{} refused the scan: ",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, refusal) in self.refusals.iter().take(DISPLAYED_REFUSALS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{refusal}")?;
        }
        if n > DISPLAYED_REFUSALS {
            write!(f, "; and {} more", n - DISPLAYED_REFUSALS)?;
        }
        Ok(())
    }
}

impl std::error::Error for TargetRefusal {}

/// One refused target (or a request-level problem when [`Refusal::target_text`] is `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    target: Option<String>,
    reason: RefusalReason,
}

impl Refusal {
    fn target(raw: &str, reason: RefusalReason) -> Self {
        Self {
            target: Some(printable(raw)),
            reason,
        }
    }

    fn list(reason: RefusalReason) -> Self {
        Self {
            target: None,
            reason,
        }
    }

    /// The target as written (control and non-ASCII characters escaped, long input
    /// cut), or `None` when the reason concerns the whole request.
    pub fn target_text(&self) -> Option<&str> {
        self.target.as_deref()
    }

    /// Why it was refused.
    pub fn reason(&self) -> &RefusalReason {
        &self.reason
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Some(t) => write!(f, "target \"{t}\": {}", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Escapes what could forge log lines or hide characters, and caps the length.
fn printable(raw: &str) -> String {
    const MAX: usize = 80;
    let escaped: String = raw.chars().flat_map(char::escape_debug).collect();
    let escaped: String = escaped
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c]
            } else {
                c.escape_unicode().collect()
            }
        })
        .collect();
    if escaped.len() > MAX {
        format!("{}…", &escaped[..MAX])
    } else {
        escaped
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// Not a target we can check safely; the text says what is wrong.
    Invalid(String),
    /// The pool has no allow-list, so it refuses everything.
    EmptyPolicy,
    /// Not inside the pool's allow-list.
    NotAllowed,
    /// A range or CIDR that is only partly inside the allow-list.
    PartlyOutsideAllowList,
    /// Touches a deny rule of the pool.
    Denied {
        /// The matching rule.
        rule: String,
    },
    /// Touches the built-in deny-list (loopback, link-local, multicast, …).
    BuiltinDenied {
        /// The matching rule.
        rule: String,
    },
    /// The request covers more addresses than the pool allows per scan.
    TooManyHosts {
        /// Addresses requested (overlaps counted once).
        count: u128,
        /// The pool's maximum.
        max: u64,
    },
    /// The request contained no target at all.
    NoTargets,
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(detail) => write!(f, "invalid target: {detail}"),
            Self::EmptyPolicy => {
                f.write_str("the pool has no target allow-list, so every target is refused")
            }
            Self::NotAllowed => f.write_str("not inside the pool's allow-list"),
            Self::PartlyOutsideAllowList => f.write_str("only partly inside the pool's allow-list"),
            Self::Denied { rule } => write!(f, "matches the pool's deny rule {rule}"),
            Self::BuiltinDenied { rule } => write!(f, "matches the built-in deny rule {rule}"),
            Self::TooManyHosts { count, max } => {
                write!(
                    f,
                    "{count} addresses exceed the pool's maximum of {max} per scan"
                )
            }
            Self::NoTargets => f.write_str("no targets given"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allow: &[&str], deny: &[&str]) -> TargetPolicy {
        let rules = |v: &[&str]| v.iter().map(|s| s.parse().unwrap()).collect();
        TargetPolicy::new(rules(allow), rules(deny))
    }

    /// What the worker relies on: the text the service layer stores
    /// (`to_nessus_text`) checks again to the very same canonical targets, so the list
    /// approved at submit is the list sent at claim. Every whitespace byte either
    /// separates (space, TAB, CR, LF) or refuses its token; none reaches Nessus.
    #[test]
    fn canonical_targets_round_trip_and_whitespace_never_survives() {
        let p = policy(&["192.0.2.0/24", "2001:db8::/32", "*.lab.test"], &[]);
        for (input, canonical) in [
            ("192.0.2.10\t192.0.2.11", "192.0.2.10,192.0.2.11"),
            ("192.0.2.10\r\n192.0.2.11", "192.0.2.10,192.0.2.11"),
            (" 192.0.2.10 ,\n\n192.0.2.11\t", "192.0.2.10,192.0.2.11"),
            // IPv4-compatible, -mapped and NAT64 spellings are the IPv4 address they
            // reach, for the check and for Nessus alike.
            ("::c000:20a", "192.0.2.10"),
            ("::192.0.2.10", "192.0.2.10"),
            ("::ffff:c000:20a", "192.0.2.10"),
            ("[::ffff:192.0.2.10]", "192.0.2.10"),
            ("::c000:20a/128", "192.0.2.10"),
            ("192.0.2.1-20", "192.0.2.1-192.0.2.20"),
            ("192.0.2.7-192.0.2.7", "192.0.2.7"),
            ("192.0.2.5/24", "192.0.2.0/24"),
            ("2001:DB8:0::1", "2001:db8::1"),
            ("2001:db8::1-2001:db8::9", "2001:db8::1-2001:db8::9"),
            ("Host.LAB.test.", "host.lab.test"),
        ] {
            let approved = p.check(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            let text = approved.to_nessus_text();
            assert_eq!(text, canonical, "{input:?}");
            let again = p.check(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(again, approved, "{input:?} does not round-trip");
            assert!(
                text.bytes().all(|b| b.is_ascii_graphic()),
                "{input:?} leaves whitespace or control bytes: {text:?}"
            );
        }
        // Whitespace that is not a separator is refused with its token, never passed on.
        for input in [
            "192.0.2.10\u{b}192.0.2.11",
            "192.0.2.10\u{c}192.0.2.11",
            "192.0.2.10\u{a0}192.0.2.11",
            "192.0.2.10\u{2003}192.0.2.11",
            "192.0.2.10\u{85}192.0.2.11",
            "192.0.2.10\u{0}",
        ] {
            assert!(p.check(input).is_err(), "{input:?} must be refused");
        }
    }

    #[test]
    fn union_coverage_and_deny_wins() {
        let p = policy(
            &["10.0.0.0/25", "10.0.0.128/25", "*.lab.test"],
            &["10.0.0.7"],
        );
        assert!(p.check("10.0.0.8-10.0.0.200").is_ok());
        assert!(p.check("10.0.0.0/24").is_err());
        assert!(p.check("a.lab.test").is_ok());
        assert!(p.check("lab.test").is_err());
        assert!(p.check("xlab.test").is_err());
    }
}
