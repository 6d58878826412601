//! Portable tool schemas: one pass over the generated JSON Schemas so every
//! client parses them (issue 13, item 5).
//!
//! schemars writes constructs that are legal but break or warn in real
//! clients: non-standard `format`s (`uint64`, `double`, …; the TypeScript SDK's
//! ajv warns "unknown format"), nullable `type` arrays (the MCP Inspector's
//! `--strict` lint warns; single-`type` dialects such as Gemini's reject them)
//! and bare `true` schemas (fastmcp 2.13 cannot parse them). The pass rewrites
//! the first two losslessly (ranges stay as `minimum`/`maximum`); bare schemas
//! are avoided at the source by typing the DTOs, and [`findings`] (run by a
//! unit test over every tool) fails on anything left.

use serde_json::{Map, Value};

/// The `format`s JSON Schema 2020-12 defines; anything else is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Keywords that describe rather than constrain: they stay on the `anyOf`
/// wrapper when a nullable `type` array is split.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
];

/// Keywords whose value is a map of subschemas.
const MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];
/// Keywords whose value is a list of subschemas.
const LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];
/// Keywords whose value is one subschema.
const ONE_KEYWORDS: &[&str] = &[
    "items",
    "contains",
    "not",
    "propertyNames",
    "if",
    "then",
    "else",
    "additionalProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Where a boolean is an ordinary value rather than a schema (as the Inspector lints).
#[cfg(test)]
const BOOLEAN_OK: &[&str] = &[
    "additionalProperties",
    "unevaluatedProperties",
    "additionalItems",
    "unevaluatedItems",
];
/// Keywords that constrain an instance; a subschema with none accepts anything.
#[cfg(test)]
const CONSTRAINING: &[&str] = &[
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "format",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxProperties",
    "minProperties",
    "required",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "items",
    "prefixItems",
    "contains",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "$ref",
];

/// Rewrites one schema in place.
pub(crate) fn make_portable(schema: &mut Map<String, Value>) {
    rewrite(schema);
}

fn rewrite(node: &mut Map<String, Value>) {
    if let Some(Value::String(f)) = node.get("format")
        && !STANDARD_FORMATS.contains(&f.as_str())
    {
        node.remove("format");
    }
    for_each_child(node, &mut |child| {
        if let Value::Object(m) = child {
            rewrite(m);
        }
    });
    split_type_array(node);
}

/// `{"type": ["integer", "null"], "minimum": 0}` becomes
/// `{"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}`.
fn split_type_array(node: &mut Map<String, Value>) {
    let Some(Value::Array(types)) = node.get("type") else {
        return;
    };
    let types: Vec<Value> = types.clone();
    node.remove("type");
    let (annotations, rest): (Map<String, Value>, Map<String, Value>) = std::mem::take(node)
        .into_iter()
        .partition(|(k, _)| ANNOTATIONS.contains(&k.as_str()));
    let branches: Vec<Value> = types
        .into_iter()
        .map(|t| {
            let mut b = Map::new();
            if t != "null" {
                b.extend(rest.clone());
            }
            b.insert("type".to_owned(), t);
            Value::Object(b)
        })
        .collect();
    *node = annotations;
    node.insert("anyOf".to_owned(), Value::Array(branches));
}

fn for_each_child(node: &mut Map<String, Value>, f: &mut dyn FnMut(&mut Value)) {
    for (k, v) in node.iter_mut() {
        let k = k.as_str();
        if MAP_KEYWORDS.contains(&k) {
            if let Value::Object(m) = v {
                m.values_mut().for_each(&mut *f);
            }
        } else if LIST_KEYWORDS.contains(&k) {
            if let Value::Array(a) = v {
                a.iter_mut().for_each(&mut *f);
            }
        } else if ONE_KEYWORDS.contains(&k) {
            f(v);
        }
    }
}

/// Every non-portable construct in `schema`, as `path: problem` lines (empty
/// when portable). Mirrors the Inspector's `--strict` lint plus the formats
/// ajv knows. Test-only: the schemas are fixed at build time, so a unit test
/// over every tool is where a regression shows.
#[cfg(test)]
pub(crate) fn findings(schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(schema, "", None, &mut out);
    out
}

#[cfg(test)]
fn walk(node: &Value, path: &str, keyword: Option<&str>, out: &mut Vec<String>) {
    let m = match node {
        Value::Bool(_) => {
            if !keyword.is_some_and(|k| BOOLEAN_OK.contains(&k)) {
                out.push(format!("{path}: bare boolean schema"));
            }
            return;
        }
        Value::Object(m) => m,
        other => {
            out.push(format!("{path}: not a schema: {other}"));
            return;
        }
    };
    if m.get("type").is_some_and(Value::is_array) {
        out.push(format!("{path}: type array"));
    }
    if let Some(f) = m.get("format")
        && !f.as_str().is_some_and(|f| STANDARD_FORMATS.contains(&f))
    {
        out.push(format!("{path}: non-standard format {f}"));
    }
    if let Some(r) = m.get("$ref")
        && !r.as_str().is_some_and(|r| r.starts_with('#'))
    {
        out.push(format!("{path}: remote $ref {r}"));
    }
    let is_defs = keyword.is_some_and(|k| k == "$defs" || k == "definitions");
    if !is_defs && keyword != Some("not") && !m.keys().any(|k| CONSTRAINING.contains(&k.as_str())) {
        out.push(format!("{path}: untyped schema (accepts anything)"));
    }
    for (k, v) in m {
        let k = k.as_str();
        if MAP_KEYWORDS.contains(&k) {
            if let Value::Object(children) = v {
                for (name, c) in children {
                    // Names under properties are fields, under $defs definitions.
                    walk(c, &format!("{path}.{k}.{name}"), Some(k), out);
                }
            }
        } else if LIST_KEYWORDS.contains(&k) {
            if let Value::Array(a) = v {
                for (i, c) in a.iter().enumerate() {
                    walk(c, &format!("{path}.{k}[{i}]"), Some(k), out);
                }
            }
        } else if ONE_KEYWORDS.contains(&k) {
            walk(v, &format!("{path}.{k}"), Some(k), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn portable(v: Value) -> Value {
        let Value::Object(mut m) = v else {
            panic!("object")
        };
        make_portable(&mut m);
        Value::Object(m)
    }

    #[test]
    fn rewrites_are_lossless_and_leave_nothing_to_find() {
        for (input, want) in [
            (
                json!({"type": "integer", "format": "uint64", "minimum": 0}),
                json!({"type": "integer", "minimum": 0}),
            ),
            (
                json!({"type": "string", "format": "date-time"}),
                json!({"type": "string", "format": "date-time"}),
            ),
            (
                json!({"description": "d", "type": ["integer", "null"], "format": "uint8", "minimum": 0, "maximum": 255}),
                json!({"description": "d", "anyOf": [{"type": "integer", "minimum": 0, "maximum": 255}, {"type": "null"}]}),
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": ["array", "null"], "items": {"type": "number", "format": "double"}}}}),
                json!({"type": "object", "properties": {"a": {"anyOf": [{"type": "array", "items": {"type": "number"}}, {"type": "null"}]}}}),
            ),
            (
                json!({"$defs": {"X": {"type": "integer", "format": "int64"}}, "anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}),
                json!({"$defs": {"X": {"type": "integer"}}, "anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}),
            ),
        ] {
            let got = portable(input.clone());
            assert_eq!(got, want, "{input}");
            assert!(findings(&got).is_empty(), "{got}: {:?}", findings(&got));
        }
    }

    #[test]
    fn findings_name_each_unportable_construct() {
        for (schema, needle) in [
            (
                json!({"type": "array", "items": true}),
                ".items: bare boolean",
            ),
            (json!({"type": ["string", "null"]}), ": type array"),
            (
                json!({"type": "integer", "format": "uint32"}),
                "non-standard format",
            ),
            (
                json!({"type": "object", "properties": {"x": {"description": "any"}}}),
                ".properties.x: untyped",
            ),
            (json!({"$ref": "https://example.com/s.json"}), "remote $ref"),
        ] {
            let f = findings(&schema).join("\n");
            assert!(f.contains(needle), "{schema}: {f}");
        }
        assert!(findings(&json!({"type": "object", "additionalProperties": true})).is_empty());
    }
}
