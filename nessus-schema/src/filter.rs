//! The filter language, evaluated on typed values before projection.
//!
//! A filter is a JSON object; every entry is one condition and all conditions must hold.
//!
//! **Shorthand (the predecessor's dict form, fixed):**
//!
//! | value | numeric field (severity, port, plugin_id, scores) | text field | list field (cve, xref, ...) | boolean field |
//! |---|---|---|---|---|
//! | `"4"` | equals 4 | case-insensitive substring | some item contains it | `"true"`/`"false"` |
//! | `">=3"`, `"<=3"`, `">3"`, `"<3"`, `"=3"`, `"!=3"` | numeric comparison | substring (literal) | substring | error |
//! | `4` (number) | equals 4 | substring of `"4"` | some item contains `"4"` | error |
//! | `true`/`false` | truthiness | truthiness | non-empty | equals |
//! | `null` | absent or null | absent or null | absent or null | absent or null |
//! | `[a, b]` | `in` | `in` | `in` | `in` |
//!
//! `severity` also takes the names of the scale (4 critical, 3 high, 2 medium, 1 low,
//! 0 info; case-insensitive, `informational`/`none` for 0) wherever it takes a number:
//! `"critical"`, `">=high"`, `"!=info"`, `["critical", "high"]`, `{"ge": "high"}`.
//!
//! **Hosts.** The `host` shorthand (a string) matches exactly the hosts it names when it
//! equals (case-insensitive, trimmed) some host's name, `host_ip`, `host_fqdn` or
//! `netbios_name`; a complete IP address that names no host matches nothing; any other
//! value is the predecessor's case-insensitive substring of the host name or `host_ip`
//! (`"192.168.2."`). Which rule applies depends on every host of the scan, so a store or
//! the converter resolves it against its host table ([`Filter::resolve_hosts`]); a lone
//! finding counts as the only host. `eq`/`ne`/`in` on `host` are exact on the same four
//! names. Conditions on `host` and on the host fields (`host_ip`, `host_fqdn`, ...) are
//! per host, so they are evaluated once per host, never per record.
//!
//! **Explicit operators:** `{"field": {"op": operand, ...}}`, several operators AND-ed:
//! `eq`, `ne` (exact; case-insensitive on text; any item of a list), `lt`, `le`, `gt`, `ge`
//! (numbers compare numerically; a non-numeric string compares text lexicographically,
//! which suits Nessus's `YYYY/MM/DD` dates), `in` (array of operands), `contains`
//! (case-insensitive substring of text or of any list item), `regex` (Rust `regex`
//! syntax on text or any list item), `cidr` (an address or network; on `host` it uses the
//! host name when it is an address, else the host's `host-ip`), `exists` (`true`: present
//! and not null). `ne` is the negation of `eq`, so it also matches absent fields.
//!
//! Example: `{"severity": {"ge": 3}, "host": {"cidr": "10.0.0.0/8"}, "cve": "CVE-2021"}`.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;
use serde_json::{Map, Value as Json};

use crate::catalogue::{
    FieldKind, closest, field_kind, is_host_field, severity_from_name, severity_scale,
};
use crate::error::{Error, Result};
use crate::record::Finding;
use crate::value::ValueRef;

/// Something filters can look fields up in (a parsed finding, a stored record, an index
/// row).
pub(crate) trait FieldSource {
    /// The field's value; `None` when absent.
    fn field(&self, name: &str) -> Option<ValueRef<'_>>;
    /// The host's `host-ip`, for `cidr` on `host` when the host name is not an address.
    fn host_ip(&self) -> Option<IpAddr> {
        None
    }
    /// Whether the host's fields are known here; when not, the converter leaves the host
    /// conditions to the end, when it knows every host.
    fn host_known(&self) -> bool {
        true
    }
}

impl FieldSource for Finding {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        self.get(name)
    }

    fn host_ip(&self) -> Option<IpAddr> {
        self.host_ip
    }

    fn host_known(&self) -> bool {
        self.host_fields.is_some()
    }
}

/// Whether conditions on `field` are per host (`host` and the host fields).
pub(crate) fn is_host_level(field: &str) -> bool {
    field == "host" || is_host_field(field)
}

/// A parsed filter: conditions combined with AND.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    conditions: Vec<Condition>,
    raw: Map<String, Json>,
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) field: String,
    test: Test,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Num(f64),
    /// Lower-cased for case-insensitive comparison; `orig` keeps case for ordering.
    Text {
        lower: String,
        orig: String,
    },
    Bool(bool),
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ord4 {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone)]
enum Test {
    Eq(Operand),
    Ne(Operand),
    Cmp(Ord4, Operand),
    In(Vec<Operand>),
    Contains(String),
    Regex(Regex),
    Cidr(IpNet),
    Exists(bool),
    Truthy(bool),
    /// The `host` shorthand (lower-cased, trimmed); see the module documentation.
    Host {
        lower: String,
        is_ip: bool,
        rule: HostRule,
    },
}

/// Which `host` rule a shorthand follows, once the hosts of the scan are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HostRule {
    /// Not resolved: this host is taken as the only one (exact, else substring unless the
    /// value is an address). Matches a superset of every resolved rule.
    Alone,
    /// Some host is named by the value: exactly those hosts.
    Exact,
    /// A complete address that names no host.
    Nothing,
    /// Substring of the host name or `host_ip`.
    Substring,
}

impl Filter {
    /// No conditions: everything matches.
    pub fn none() -> Filter {
        Filter::default()
    }

    /// Parses a filter object. Field names are checked later, against the fields a store
    /// actually has (see [`Filter::check_fields`]).
    pub fn from_json(value: &Json) -> Result<Filter> {
        match value {
            Json::Null => Ok(Filter::none()),
            Json::Object(map) => {
                let mut conditions = Vec::new();
                for (field, v) in map {
                    parse_entry(field, v, &mut conditions)?;
                }
                Ok(Filter {
                    conditions,
                    raw: map.clone(),
                })
            }
            other => Err(Error::filter(
                "(filter)",
                format!("a filter must be a JSON object of field: condition, got {other}"),
            )),
        }
    }

    /// Parses a filter from JSON text.
    pub fn from_json_str(text: &str) -> Result<Filter> {
        let value: Json = serde_json::from_str(text)
            .map_err(|e| Error::filter("(filter)", format!("not valid JSON: {e}")))?;
        Filter::from_json(&value)
    }

    /// The filter as given, for echoing in the schema line's `filters_applied`.
    pub fn as_json(&self) -> &Map<String, Json> {
        &self.raw
    }

    /// Whether there are no conditions.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Every field name must be one of `known`; otherwise the error names the closest.
    pub fn check_fields<'a, F>(
        &self,
        is_known: F,
        candidates: impl Iterator<Item = &'a str>,
    ) -> Result<()>
    where
        F: Fn(&str) -> bool,
    {
        match self.conditions.iter().find(|c| !is_known(&c.field)) {
            Some(c) => Err(Error::UnknownField {
                field: c.field.clone(),
                suggestion: closest(&c.field, candidates),
            }),
            None => Ok(()),
        }
    }

    /// Whether a parsed finding matches, its host taken as the only host there is (a
    /// `host` shorthand naming another host would fall back to a substring here; a store
    /// and the converter resolve it against every host of the scan).
    pub fn matches(&self, finding: &Finding) -> bool {
        self.matches_source(finding)
    }

    pub(crate) fn matches_source(&self, src: &dyn FieldSource) -> bool {
        self.conditions.iter().all(|c| c.matches(src))
    }

    pub(crate) fn conditions(&self) -> &[Condition] {
        &self.conditions
    }

    /// Whether some condition is per host (see [`is_host_level`]).
    pub(crate) fn has_host_conditions(&self) -> bool {
        self.conditions.iter().any(Condition::is_host_level)
    }

    /// Whether the per-host conditions hold for `src`'s host.
    pub(crate) fn host_conditions_match(&self, src: &dyn FieldSource) -> bool {
        self.conditions
            .iter()
            .filter(|c| c.is_host_level())
            .all(|c| c.matches(src))
    }

    /// Every condition but the per-host ones when `src` does not know its host yet (the
    /// converter evaluates those at the end, per host).
    pub(crate) fn matches_deferring_hosts(&self, src: &dyn FieldSource) -> bool {
        let known = src.host_known();
        self.conditions
            .iter()
            .all(|c| (!known && c.is_host_level()) || c.matches(src))
    }

    /// This filter with every `host` shorthand resolved against the scan's hosts (rule 1,
    /// 2 or 3 of the module documentation). `hosts` holds one field source per host.
    pub(crate) fn resolve_hosts(&self, hosts: &[&dyn FieldSource]) -> Filter {
        let mut resolved = self.clone();
        for c in &mut resolved.conditions {
            if let Test::Host { lower, is_ip, rule } = &mut c.test {
                *rule = if hosts.iter().any(|h| host_named(*h, lower)) {
                    HostRule::Exact
                } else if *is_ip {
                    HostRule::Nothing
                } else {
                    HostRule::Substring
                };
            }
        }
        resolved
    }
}

/// Whether `lower` (lower-cased, trimmed) is the host's name, `host_ip`, `host_fqdn` or
/// `netbios_name` (case-insensitive, trimmed).
fn host_named(src: &dyn FieldSource, lower: &str) -> bool {
    ["host", "host_ip", "host_fqdn", "netbios_name"]
        .iter()
        .any(|n| matches!(src.field(n), Some(ValueRef::Text(s)) if text_eq(s.trim(), lower)))
}

/// The predecessor's substring rule, widened to `host_ip`.
fn host_contains(src: &dyn FieldSource, lower: &str) -> bool {
    contains(src.field("host"), lower) || contains(src.field("host_ip"), lower)
}

impl Condition {
    fn is_host_level(&self) -> bool {
        is_host_level(&self.field)
    }

    pub(crate) fn matches(&self, src: &dyn FieldSource) -> bool {
        let value = src.field(&self.field);
        eval(&self.test, &self.field, value, src)
    }
}

fn parse_entry(field: &str, v: &Json, out: &mut Vec<Condition>) -> Result<()> {
    // The parser stores `<vulnerability_priority_rating>` as `vpr_score`.
    let field = match field {
        "vulnerability_priority_rating" => "vpr_score",
        f => f,
    };
    let kind = field_kind(field);
    let push = |out: &mut Vec<Condition>, test| {
        out.push(Condition {
            field: field.to_owned(),
            test,
        })
    };
    match v {
        Json::Object(ops) => {
            if ops.is_empty() {
                return Err(Error::filter(field, "empty operator object"));
            }
            for (op, arg) in ops {
                let test = parse_op(field, kind, op, arg)?;
                push(out, test);
            }
        }
        Json::Null => push(out, Test::Exists(false)),
        Json::Bool(b) => push(
            out,
            if kind == FieldKind::Bool {
                Test::Eq(Operand::Bool(*b))
            } else {
                Test::Truthy(*b)
            },
        ),
        Json::Array(items) => {
            let ops = items
                .iter()
                .map(|i| operand(field, kind, i))
                .collect::<Result<Vec<_>>>()?;
            push(out, Test::In(ops));
        }
        Json::Number(n) => {
            let test = match kind {
                FieldKind::Int | FieldKind::Float => Test::Eq(Operand::Num(number(field, n)?)),
                FieldKind::Bool => {
                    return Err(Error::filter(field, "a boolean field takes true or false"));
                }
                FieldKind::Text | FieldKind::List => Test::Contains(n.to_string()),
            };
            push(out, test);
        }
        Json::String(s) => {
            let test = match kind {
                FieldKind::Int | FieldKind::Float => shorthand_numeric(field, s)?,
                FieldKind::Bool => match s.trim() {
                    t if t.eq_ignore_ascii_case("true") => Test::Eq(Operand::Bool(true)),
                    t if t.eq_ignore_ascii_case("false") => Test::Eq(Operand::Bool(false)),
                    _ => {
                        return Err(Error::filter(
                            field,
                            format!("a boolean field takes true or false, got {s:?}"),
                        ));
                    }
                },
                FieldKind::Text if field == "host" => {
                    let lower = s.trim().to_lowercase();
                    Test::Host {
                        is_ip: lower.parse::<IpAddr>().is_ok(),
                        lower,
                        rule: HostRule::Alone,
                    }
                }
                FieldKind::Text | FieldKind::List => Test::Contains(s.to_lowercase()),
            };
            push(out, test);
        }
    }
    Ok(())
}

fn number(field: &str, n: &serde_json::Number) -> Result<f64> {
    n.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| Error::filter(field, format!("{n} is not a usable number")))
}

/// A number written as text; on `severity` also a severity name.
fn parse_num_text(field: &str, s: &str) -> Result<f64> {
    let t = s.trim();
    if let Some(n) = t.parse::<f64>().ok().filter(|f| f.is_finite()) {
        return Ok(n);
    }
    if field == "severity"
        && let Some(sev) = severity_from_name(t)
    {
        return Ok(f64::from(sev));
    }
    Err(Error::filter(field, expected_number(field, s)))
}

/// What a numeric field accepts, for its error messages.
fn expected_number(field: &str, got: &str) -> String {
    if field == "severity" {
        format!(
            "expected a number or a severity name ({}), got {got:?}",
            severity_scale()
        )
    } else {
        format!(
            "expected a number, got {got:?} ({field} takes a number such as 7, a comparison \
             such as \">=7\", a list of numbers, or operators such as {{\"ge\": 7}})"
        )
    }
}

/// Comparison prefixes written the other way round, and what was meant.
const REVERSED_COMPARISONS: [(&str, &str); 3] = [("=>", ">="), ("=<", "<="), ("<>", "!=")];

fn shorthand_numeric(field: &str, s: &str) -> Result<Test> {
    let s = s.trim();
    for (wrong, right) in REVERSED_COMPARISONS {
        if let Some(rest) = s.strip_prefix(wrong) {
            return Err(Error::filter(
                field,
                format!(
                    "{s:?} is not a comparison (did you mean \"{right}{rest}\"?); comparisons are \
                     >=, <=, >, <, =, !="
                ),
            ));
        }
    }
    // Longest operators first, as the predecessor did.
    for (prefix, make) in [
        (">=", Some(Ord4::Ge)),
        ("<=", Some(Ord4::Le)),
        ("!=", None),
        (">", Some(Ord4::Gt)),
        ("<", Some(Ord4::Lt)),
        ("==", None),
        ("=", None),
    ] {
        if let Some(rest) = s.strip_prefix(prefix) {
            let n = Operand::Num(parse_num_text(field, rest)?);
            return Ok(match (prefix, make) {
                (_, Some(ord)) => Test::Cmp(ord, n),
                ("!=", None) => Test::Ne(n),
                _ => Test::Eq(n),
            });
        }
    }
    Ok(Test::Eq(Operand::Num(parse_num_text(field, s)?)))
}

fn operand(field: &str, kind: FieldKind, v: &Json) -> Result<Operand> {
    Ok(match v {
        Json::Null => Operand::Null,
        Json::Bool(b) => Operand::Bool(*b),
        Json::Number(n) => Operand::Num(number(field, n)?),
        Json::String(s) => match kind {
            FieldKind::Int | FieldKind::Float => Operand::Num(parse_num_text(field, s)?),
            _ => Operand::Text {
                lower: s.to_lowercase(),
                orig: s.clone(),
            },
        },
        other => {
            return Err(Error::filter(
                field,
                format!("operands must be strings, numbers, booleans or null, got {other}"),
            ));
        }
    })
}

fn parse_op(field: &str, kind: FieldKind, op: &str, arg: &Json) -> Result<Test> {
    let text_arg = || {
        arg.as_str()
            .ok_or_else(|| Error::filter(field, format!("operator {op:?} takes a string")))
    };
    Ok(match op {
        "eq" => Test::Eq(operand(field, kind, arg)?),
        "ne" => Test::Ne(operand(field, kind, arg)?),
        "lt" | "le" | "gt" | "ge" => {
            let ord = match op {
                "lt" => Ord4::Lt,
                "le" => Ord4::Le,
                "gt" => Ord4::Gt,
                _ => Ord4::Ge,
            };
            let o = operand(field, kind, arg)?;
            if matches!(o, Operand::Null | Operand::Bool(_)) {
                return Err(Error::filter(
                    field,
                    format!("operator {op:?} takes a number or a string"),
                ));
            }
            Test::Cmp(ord, o)
        }
        "in" => {
            let items = arg
                .as_array()
                .ok_or_else(|| Error::filter(field, "operator \"in\" takes an array"))?;
            Test::In(
                items
                    .iter()
                    .map(|i| operand(field, kind, i))
                    .collect::<Result<_>>()?,
            )
        }
        "contains" => Test::Contains(match arg {
            Json::Number(n) => n.to_string(),
            _ => text_arg()?.to_lowercase(),
        }),
        "regex" => {
            let re = regex::RegexBuilder::new(text_arg()?)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| Error::filter(field, format!("bad regex: {e}")))?;
            Test::Regex(re)
        }
        "cidr" => {
            let s = text_arg()?.trim();
            let net = s
                .parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    Error::filter(field, format!("{s:?} is not an address or CIDR network"))
                })?;
            Test::Cidr(net)
        }
        "exists" => Test::Exists(
            arg.as_bool()
                .ok_or_else(|| Error::filter(field, "operator \"exists\" takes true or false"))?,
        ),
        other => {
            let hint = operator_suggestion(other)
                .map(|c| format!(" (did you mean {c}?)"))
                .unwrap_or_default();
            let ops = OPERATORS;
            return Err(Error::filter(
                field,
                format!(
                    "unknown operator {other:?}{hint}; operators are {}",
                    ops.join(", ")
                ),
            ));
        }
    })
}

/// The explicit operators, as documented (the field catalogue and tool descriptions read
/// this list).
pub const OPERATORS: [&str; 11] = [
    "eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "regex", "cidr", "exists",
];

/// Operator names from other query languages and what they are here; looked up before
/// edit distance, which would turn `gte` into `gt`.
const OPERATOR_ALIASES: &[(&str, &str)] = &[
    ("gte", "ge"),
    ("gt=", "ge"),
    (">=", "ge"),
    ("=>", "ge"),
    ("lte", "le"),
    ("lt=", "le"),
    ("<=", "le"),
    ("=<", "le"),
    (">", "gt"),
    ("<", "lt"),
    ("neq", "ne"),
    ("not", "ne"),
    ("!=", "ne"),
    ("<>", "ne"),
    ("not_equals", "ne"),
    ("equals", "eq"),
    ("equal", "eq"),
    ("eq=", "eq"),
    ("is", "eq"),
    ("=", "eq"),
    ("==", "eq"),
    ("like", "contains"),
    ("has", "contains"),
    ("includes", "contains"),
    ("include", "contains"),
    ("contain", "contains"),
    ("match", "regex"),
    ("matches", "regex"),
    ("regexp", "regex"),
    ("subnet", "cidr"),
    ("network", "cidr"),
    ("exist", "exists"),
];

/// What an unknown operator most likely meant, quoted (`"ge"`, or `"ge" and "le"`).
fn operator_suggestion(op: &str) -> Option<String> {
    let lower = op.trim().to_ascii_lowercase();
    if lower == "between" || lower == "range" {
        return Some(r#""ge" and "le" together, as in {"ge": 3, "le": 4}"#.to_owned());
    }
    if OPERATORS.contains(&lower.as_str()) {
        return Some(format!("{lower:?}"));
    }
    OPERATOR_ALIASES
        .iter()
        .find(|(alias, _)| *alias == lower)
        .map(|(_, op)| (*op).to_owned())
        .or_else(|| closest(&lower, OPERATORS))
        .map(|op| format!("{op:?}"))
}

fn truthy(v: Option<ValueRef<'_>>) -> bool {
    match v {
        None | Some(ValueRef::Null) => false,
        Some(ValueRef::Bool(b)) => b,
        Some(ValueRef::Int(i)) => i != 0,
        Some(ValueRef::Float(f)) => f != 0.0,
        Some(ValueRef::Text(s)) => !s.is_empty(),
        Some(ValueRef::List(l)) => !l.is_empty(),
    }
}

fn text_eq(s: &str, lower: &str) -> bool {
    if s.is_ascii() && lower.is_ascii() {
        s.eq_ignore_ascii_case(lower)
    } else {
        s.to_lowercase() == lower
    }
}

fn eq(v: Option<ValueRef<'_>>, o: &Operand) -> bool {
    match (v, o) {
        (None | Some(ValueRef::Null), Operand::Null) => true,
        (None | Some(ValueRef::Null), _) => false,
        (Some(ValueRef::Bool(b)), Operand::Bool(x)) => b == *x,
        (Some(v @ (ValueRef::Int(_) | ValueRef::Float(_))), Operand::Num(n)) => {
            v.as_f64() == Some(*n)
        }
        (Some(v @ (ValueRef::Int(_) | ValueRef::Float(_))), Operand::Text { lower, .. }) => {
            lower.trim().parse::<f64>().ok() == v.as_f64()
        }
        (Some(ValueRef::Text(s)), Operand::Text { lower, .. }) => text_eq(s, lower),
        (Some(ValueRef::Text(s)), Operand::Num(n)) => s.trim().parse::<f64>().ok() == Some(*n),
        (Some(ValueRef::List(l)), Operand::Text { lower, .. }) => {
            l.iter().any(|i| text_eq(i, lower))
        }
        (Some(ValueRef::List(l)), Operand::Num(n)) => {
            l.iter().any(|i| i.trim().parse::<f64>().ok() == Some(*n))
        }
        _ => false,
    }
}

fn cmp(v: Option<ValueRef<'_>>, ord: Ord4, o: &Operand) -> bool {
    let ordering = match (v, o) {
        (Some(v @ (ValueRef::Int(_) | ValueRef::Float(_))), Operand::Num(n)) => {
            v.as_f64().and_then(|x| x.partial_cmp(n))
        }
        (Some(ValueRef::Text(s)), Operand::Num(n)) => {
            s.trim().parse::<f64>().ok().and_then(|x| x.partial_cmp(n))
        }
        (Some(ValueRef::Text(s)), Operand::Text { orig, .. }) => Some(s.cmp(orig.as_str())),
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match ord {
        Ord4::Lt => ordering.is_lt(),
        Ord4::Le => ordering.is_le(),
        Ord4::Gt => ordering.is_gt(),
        Ord4::Ge => ordering.is_ge(),
    }
}

fn contains(v: Option<ValueRef<'_>>, needle: &str) -> bool {
    let has = |s: &str| {
        if s.is_ascii() && needle.is_ascii() {
            // Fast path without allocating: ASCII case-insensitive search.
            let (h, n) = (s.as_bytes(), needle.as_bytes());
            n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
        } else {
            s.to_lowercase().contains(needle)
        }
    };
    match v {
        Some(ValueRef::Text(s)) => has(s),
        Some(ValueRef::List(l)) => l.iter().any(has),
        Some(v @ (ValueRef::Int(_) | ValueRef::Float(_))) => {
            v.as_f64().is_some_and(|f| has(&format_number(f)))
        }
        _ => false,
    }
}

fn format_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// `eq` on `host`: exact on the host's name, `host_ip`, `host_fqdn` or `netbios_name`.
fn host_eq(src: &dyn FieldSource, v: Option<ValueRef<'_>>, o: &Operand) -> bool {
    match o {
        Operand::Text { lower, .. } => host_named(src, lower.trim()),
        _ => eq(v, o),
    }
}

fn eval(test: &Test, field: &str, v: Option<ValueRef<'_>>, src: &dyn FieldSource) -> bool {
    let on_host = field == "host";
    match test {
        Test::Eq(o) if on_host => host_eq(src, v, o),
        Test::Ne(o) if on_host => !host_eq(src, v, o),
        Test::In(os) if on_host => os.iter().any(|o| host_eq(src, v, o)),
        Test::Eq(o) => eq(v, o),
        Test::Ne(o) => !eq(v, o),
        Test::Cmp(ord, o) => cmp(v, *ord, o),
        Test::In(os) => os.iter().any(|o| eq(v, o)),
        Test::Host { lower, is_ip, rule } => match rule {
            HostRule::Alone => host_named(src, lower) || (!is_ip && host_contains(src, lower)),
            HostRule::Exact => host_named(src, lower),
            HostRule::Nothing => false,
            HostRule::Substring => host_contains(src, lower),
        },
        Test::Contains(n) => contains(v, n),
        Test::Regex(re) => match v {
            Some(ValueRef::Text(s)) => re.is_match(s),
            Some(ValueRef::List(l)) => l.iter().any(|i| re.is_match(i)),
            Some(v @ (ValueRef::Int(_) | ValueRef::Float(_))) => {
                v.as_f64().is_some_and(|f| re.is_match(&format_number(f)))
            }
            _ => false,
        },
        Test::Cidr(net) => {
            let direct = match v {
                Some(ValueRef::Text(s)) => s.trim().parse::<IpAddr>().ok(),
                _ => None,
            };
            let addr = direct.or_else(|| if field == "host" { src.host_ip() } else { None });
            addr.is_some_and(|a| net.contains(&a))
        }
        Test::Exists(want) => v.is_some_and(|v| v != ValueRef::Null) == *want,
        Test::Truthy(want) => truthy(v) == *want,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    fn finding() -> Finding {
        Finding {
            host: "10.0.0.10".into(),
            plugin_id: Some(150280),
            severity: Some(4),
            port: Some(22),
            protocol: Some("tcp".into()),
            plugin_name: Some("Apache 2.4.x < 2.4.47".into()),
            fields: vec![
                (
                    "cve".into(),
                    Value::List(vec!["CVE-2021-1".into(), "CVE-2019-2".into()]),
                ),
                ("cvss3_base_score".into(), Value::Float(9.8)),
                ("exploit_available".into(), Value::Bool(true)),
                (
                    "plugin_publication_date".into(),
                    Value::Text("2021/06/10".into()),
                ),
            ],
            ..Finding::default()
        }
    }

    fn m(json: &str) -> bool {
        Filter::from_json_str(json).unwrap().matches(&finding())
    }

    #[test]
    fn shorthand() {
        assert!(m(r#"{"severity":"4"}"#));
        assert!(m(r#"{"severity":">=3"}"#));
        assert!(!m(r#"{"severity":"<4"}"#));
        assert!(m(r#"{"cvss_score":">9"}"#));
        assert!(m(r#"{"cve":"cve-2021"}"#));
        assert!(m(r#"{"cve":2021}"#));
        assert!(m(r#"{"exploit_available":true}"#));
        // Issue 14: a complete address is exact (it used to be a substring of 10.0.0.10);
        // a partial one keeps the substring meaning.
        assert!(!m(r#"{"host":"10.0.0.1"}"#));
        assert!(m(r#"{"host":"10.0.0.10"}"#));
        assert!(m(r#"{"host":"10.0.0."}"#));
        assert!(m(r#"{"svc_name":null}"#));
        assert!(m(r#"{"severity":[3,4]}"#));
        assert!(!m(r#"{"vulnerability_priority_rating":{"exists":true}}"#));
        // Issue 14: severity names are valid now; misspelt ones are still errors.
        assert!(m(r#"{"severity":"critical"}"#));
        assert!(Filter::from_json_str(r#"{"severity":"crit"}"#).is_err());
        assert!(Filter::from_json_str(r#"{"severity":"hihg"}"#).is_err());
    }

    /// Every form a severity name is accepted in, against a critical (4) finding; the
    /// expected answers are the numeric filters' (written out by hand).
    #[test]
    fn severity_names_in_every_form() {
        let cases: &[(&str, bool)] = &[
            (r#"{"severity":"critical"}"#, true),
            (r#"{"severity":"Critical"}"#, true),
            (r#"{"severity":" CRITICAL "}"#, true),
            (r#"{"severity":"high"}"#, false),
            (r#"{"severity":">=high"}"#, true),
            (r#"{"severity":">high"}"#, true),
            (r#"{"severity":"<medium"}"#, false),
            (r#"{"severity":"<=critical"}"#, true),
            (r#"{"severity":"!=info"}"#, true),
            (r#"{"severity":"!=critical"}"#, false),
            (r#"{"severity":"=critical"}"#, true),
            (r#"{"severity":"==critical"}"#, true),
            (r#"{"severity":["critical","high"]}"#, true),
            (r#"{"severity":["medium","low"]}"#, false),
            (r#"{"severity":["informational", 4]}"#, true),
            (r#"{"severity":{"ge":"high"}}"#, true),
            (r#"{"severity":{"gt":"critical"}}"#, false),
            (r#"{"severity":{"lt":"high"}}"#, false),
            (r#"{"severity":{"eq":"critical"}}"#, true),
            (r#"{"severity":{"ne":"none"}}"#, true),
            (r#"{"severity":{"in":["high", 4]}}"#, true),
            (r#"{"severity":{"in":["high", "medium"]}}"#, false),
            (r#"{"severity":{"ge":"medium","le":"critical"}}"#, true),
        ];
        for (json, want) in cases {
            assert_eq!(m(json), *want, "{json}");
        }
    }

    /// What is refused, and what the error says.
    #[test]
    fn errors_say_what_is_accepted() {
        let scale = "expected a number or a severity name (4 critical, 3 high, 2 medium, 1 low, 0 info), got \"crit\"";
        let cases: &[(&str, &str)] = &[
            (r#"{"severity":"crit"}"#, scale),
            (r#"{"severity":">=crit"}"#, "got \"crit\""),
            (r#"{"severity":{"ge":"crit"}}"#, scale),
            (r#"{"severity":["critical","crit"]}"#, scale),
            (r#"{"severity":"hihg"}"#, "severity name (4 critical"),
            (r#"{"port":"https"}"#, "port takes a number such as 7"),
            (
                r#"{"cvss_score":{"ge":"high"}}"#,
                "expected a number, got \"high\"",
            ),
            (r#"{"severity":"=>3"}"#, "did you mean \">=3\"?"),
            (r#"{"severity":"=<3"}"#, "did you mean \"<=3\"?"),
            (r#"{"severity":"<>3"}"#, "did you mean \"!=3\"?"),
            (r#"{"cvss_score":"=>7.5"}"#, "did you mean \">=7.5\"?"),
            (r#"{"severity":"=>high"}"#, "did you mean \">=high\"?"),
        ];
        for (json, want) in cases {
            let err = Filter::from_json_str(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        // Port is not on the severity scale: names are not numbers there.
        let err = Filter::from_json_str(r#"{"port":"high"}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("critical"), "{err}");
    }

    #[test]
    fn operator_suggestions() {
        let cases: &[(&str, &str)] = &[
            ("gte", r#"did you mean "ge"?"#),
            ("lte", r#"did you mean "le"?"#),
            ("neq", r#"did you mean "ne"?"#),
            ("not", r#"did you mean "ne"?"#),
            ("equals", r#"did you mean "eq"?"#),
            ("eq=", r#"did you mean "eq"?"#),
            ("gt=", r#"did you mean "ge"?"#),
            ("GTE", r#"did you mean "ge"?"#),
            ("GE", r#"did you mean "ge"?"#),
            ("between", r#"did you mean "ge" and "le" together"#),
            ("like", r#"did you mean "contains"?"#),
            ("has", r#"did you mean "contains"?"#),
            ("includes", r#"did you mean "contains"?"#),
            ("match", r#"did you mean "regex"?"#),
            ("matches", r#"did you mean "regex"?"#),
            ("subnet", r#"did you mean "cidr"?"#),
            ("network", r#"did you mean "cidr"?"#),
            (">=", r#"did you mean "ge"?"#),
            ("regx", r#"did you mean "regex"?"#),
            ("exist", r#"did you mean "exists"?"#),
        ];
        for (op, want) in cases {
            let json = format!(r#"{{"severity":{{"{op}":3}}}}"#);
            let err = Filter::from_json_str(&json).unwrap_err().to_string();
            assert!(err.contains(want), "{op}: {err}");
            assert!(err.contains("operators are eq, ne"), "{op}: {err}");
        }
        let err = Filter::from_json_str(r#"{"severity":{"zzzzzzzz":3}}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
    }

    /// A finding of a host named by a host name, with its properties.
    fn named_host_finding() -> Finding {
        let fields = crate::record::HostFields::of(&crate::record::Host {
            name: "qa3app01".into(),
            ip: Some("192.168.2.10".parse().unwrap()),
            fqdn: Some("qa3app01.corp.example".into()),
            netbios: Some("QA3APP01".into()),
            os: Some("Linux Kernel 5.4".into()),
            credentialed: Some(true),
            ..crate::record::Host::default()
        });
        Finding {
            host: "qa3app01".into(),
            severity: Some(2),
            host_ip: Some("192.168.2.10".parse().unwrap()),
            host_fields: Some(std::sync::Arc::new(fields)),
            ..Finding::default()
        }
    }

    #[test]
    fn host_fields_and_rules_on_a_lone_finding() {
        let f = named_host_finding();
        let cases: &[(&str, bool)] = &[
            (r#"{"host":"qa3app01"}"#, true),
            (r#"{"host":"QA3APP01 "}"#, true),
            (r#"{"host":"192.168.2.10"}"#, true),
            (r#"{"host":"192.168.2.1"}"#, false),
            (r#"{"host":"192.168.2."}"#, true),
            (r#"{"host":"qa3app01.corp.example"}"#, true),
            (r#"{"host":"qa3"}"#, true),
            (r#"{"host":"corp"}"#, false),
            (r#"{"host":{"eq":"192.168.2.10"}}"#, true),
            (r#"{"host":{"eq":"qa3"}}"#, false),
            (r#"{"host":{"ne":"qa3app01.corp.example"}}"#, false),
            (r#"{"host":["other","192.168.2.10"]}"#, true),
            (r#"{"host":{"cidr":"192.168.2.0/24"}}"#, true),
            (r#"{"host_ip":{"cidr":"192.168.2.0/24"}}"#, true),
            (r#"{"host_ip":{"cidr":"10.0.0.0/8"}}"#, false),
            (r#"{"host_ip":"192.168.2.10"}"#, true),
            (r#"{"host_fqdn":"corp.example"}"#, true),
            (r#"{"netbios_name":{"eq":"qa3app01"}}"#, true),
            (r#"{"operating_system":"linux"}"#, true),
            (r#"{"credentialed_scan":true}"#, true),
            (r#"{"credentialed_scan":false}"#, false),
            (r#"{"mac_address":{"exists":true}}"#, false),
        ];
        for (json, want) in cases {
            let filter = Filter::from_json_str(json).unwrap();
            assert_eq!(filter.matches(&f), *want, "{json}");
        }
    }

    #[test]
    fn operators() {
        assert!(m(r#"{"severity":{"ge":3,"le":4}}"#));
        assert!(m(r#"{"host":{"cidr":"10.0.0.0/24"}}"#));
        assert!(!m(r#"{"host":{"eq":"10.0.0.1"}}"#));
        assert!(m(r#"{"plugin_name":{"regex":"^Apache"}}"#));
        assert!(m(r#"{"plugin_publication_date":{"ge":"2021/01/01"}}"#));
        assert!(m(r#"{"cwe":{"exists":false}}"#));
        assert!(m(r#"{"protocol":{"in":["udp","TCP"]}}"#));
        assert!(m(r#"{"port":{"ne":80}}"#));
        let err = Filter::from_json_str(r#"{"port":{"gte":80}}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean"), "{err}");
    }
}
