//! A small JSON Schema check for the constructs our tool schemas use (`type`,
//! `anyOf`, local `$ref`, `properties`, `required`, `items`, `enum`,
//! `minimum`/`maximum`, `additionalProperties`): enough to show a result
//! conforms to a tool's `outputSchema` as a client's validator sees it.

use serde_json::Value;

/// Every violation of `schema` by `value` (empty when it conforms).
pub(crate) fn violations(schema: &Value, value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, value, "$", &mut out);
    out
}

fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        _ => false,
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let s = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            out.push(format!("{path}: schema false"));
            return;
        }
        Value::Object(s) => s,
        _ => return,
    };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        match resolve(root, r) {
            Some(target) => check(root, target, v, path, out),
            None => out.push(format!("{path}: unresolved $ref {r}")),
        }
    }
    if let Some(branches) = s.get("anyOf").and_then(Value::as_array)
        && !branches.iter().any(|b| {
            let mut e = Vec::new();
            check(root, b, v, path, &mut e);
            e.is_empty()
        })
    {
        out.push(format!("{path}: matches no anyOf branch: {v}"));
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => {
            out.push(format!("{path}: expected {t}, got {v}"));
            return;
        }
        Some(Value::Array(ts))
            if !ts
                .iter()
                .any(|t| t.as_str().is_some_and(|t| type_matches(t, v))) =>
        {
            out.push(format!("{path}: expected one of {ts:?}, got {v}"));
            return;
        }
        _ => {}
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        out.push(format!("{path}: {v} not in enum"));
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        out.push(format!("{path}: {n} < minimum {min}"));
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64())
        && n > max
    {
        out.push(format!("{path}: {n} > maximum {max}"));
    }
    if let Value::Object(obj) = v {
        for req in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(k) = req.as_str()
                && !obj.contains_key(k)
            {
                out.push(format!("{path}: '{k}' is a required property"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, child) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, child, &format!("{path}.{k}"), out),
                None => {
                    if let Some(extra) = s.get("additionalProperties") {
                        check(root, extra, child, &format!("{path}.{k}"), out);
                    }
                }
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (v, s.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(root, item_schema, item, &format!("{path}[{i}]"), out);
        }
    }
}

#[test]
fn the_check_finds_what_a_validator_finds() {
    use serde_json::json;
    let schema = json!({
        "type": "object",
        "required": ["a", "b"],
        "properties": {
            "a": {"type": "integer", "minimum": 0},
            "b": {"anyOf": [{"$ref": "#/$defs/S"}, {"type": "null"}]}
        },
        "$defs": {"S": {"type": "string"}}
    });
    for (value, want) in [
        (json!({"a": 1, "b": "x"}), ""),
        (json!({"a": 1, "b": null, "extra": true}), ""),
        (json!({"a": 1}), "'b' is a required property"),
        (json!({"a": -1, "b": null}), "minimum"),
        (json!({"a": 1, "b": 3}), "no anyOf branch"),
    ] {
        let got = violations(&schema, &value).join("\n");
        if want.is_empty() {
            assert!(got.is_empty(), "{value}: {got}");
        } else {
            assert!(got.contains(want), "{value}: {got}");
        }
    }
}
