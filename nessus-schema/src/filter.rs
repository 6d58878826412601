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

use crate::catalogue::{FieldKind, closest, field_kind};
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
}

impl FieldSource for Finding {
    fn field(&self, name: &str) -> Option<ValueRef<'_>> {
        self.get(name)
    }
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

    /// Whether a parsed finding matches.
    pub fn matches(&self, finding: &Finding) -> bool {
        self.matches_source(finding)
    }

    pub(crate) fn matches_source(&self, src: &dyn FieldSource) -> bool {
        self.conditions.iter().all(|c| c.matches(src))
    }

    pub(crate) fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Condition {
    pub(crate) fn matches(&self, src: &dyn FieldSource) -> bool {
        let value = src.field(&self.field);
        eval(&self.test, &self.field, value, src)
    }
}

fn parse_entry(field: &str, v: &Json, out: &mut Vec<Condition>) -> Result<()> {
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

fn parse_num_text(field: &str, s: &str) -> Result<f64> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| Error::filter(field, format!("expected a number, got {s:?}")))
}

fn shorthand_numeric(field: &str, s: &str) -> Result<Test> {
    let s = s.trim();
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
            let ops = [
                "eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "regex", "cidr", "exists",
            ];
            let hint = closest(other, ops)
                .map(|c| format!(" (did you mean {c:?}?)"))
                .unwrap_or_default();
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

fn eval(test: &Test, field: &str, v: Option<ValueRef<'_>>, src: &dyn FieldSource) -> bool {
    match test {
        Test::Eq(o) => eq(v, o),
        Test::Ne(o) => !eq(v, o),
        Test::Cmp(ord, o) => cmp(v, *ord, o),
        Test::In(os) => os.iter().any(|o| eq(v, o)),
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
        assert!(m(r#"{"host":"10.0.0.1"}"#));
        assert!(m(r#"{"svc_name":null}"#));
        assert!(m(r#"{"severity":[3,4]}"#));
        assert!(Filter::from_json_str(r#"{"severity":"high"}"#).is_err());
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
