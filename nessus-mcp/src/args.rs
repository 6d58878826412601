//! Tool arguments: the one place where a call's `arguments` become a DTO.
//!
//! rmcp's own `Parameters<T>` answers a wrong type or a missing argument with
//! serde's text ("invalid type: string ..., expected a map") outside our error
//! envelope. This extractor has the same name (the `#[tool]` macro finds the
//! input schema by the type's last path segment, `Parameters`), deserialises
//! with the path of the failing value, and answers with a [`ToolError`]
//! (`invalid_argument`, a hint naming the argument and what it takes, read from
//! the tool's published input schema). The router hands the error back to
//! [`NessusMcp::call_tool`](crate::server::NessusMcp), which turns it into a
//! normal tool answer ([`from_rpc_error`]) so `compat::shape` treats it like
//! every business error.

use rmcp::{
    ErrorData,
    handler::server::{common::FromContextPart, tool::ToolCallContext},
    model::JsonObject,
    schemars::{self, JsonSchema},
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::{errors::ToolError, server::NessusMcp};

/// Key of the [`ToolError`] inside the `data` of the extractor's [`ErrorData`].
const ARGUMENT_ERROR: &str = "nessus_argument_error";

/// A tool's arguments, deserialised into `P` (see the module documentation).
#[derive(Debug, Clone)]
pub(crate) struct Parameters<P>(pub(crate) P);

impl<P: JsonSchema> JsonSchema for Parameters<P> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        P::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        P::json_schema(generator)
    }
}

/// What a DTO does with arguments its schema does not name. The default
/// ignores them (the predecessor's behaviour); `get_scan_results` reports them
/// in its closing line.
pub(crate) trait ToolArgs: DeserializeOwned {
    /// `notices`: one `ignored unknown argument "x" (did you mean "y"?)` per argument.
    fn unknown_arguments(&mut self, _notices: Vec<String>) {}
}

impl<P: ToolArgs> FromContextPart<ToolCallContext<'_, NessusMcp>> for Parameters<P> {
    fn from_context_part(context: &mut ToolCallContext<'_, NessusMcp>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        let schema = NessusMcp::router()
            .get(&context.name)
            .map(|t| t.input_schema.clone());
        let schema = schema.as_deref();
        let unknown = schema.map(|s| unknown(&arguments, s)).unwrap_or_default();
        let value = Value::Object(arguments);
        match serde_path_to_error::deserialize::<_, P>(&value) {
            Ok(mut p) => {
                if !unknown.is_empty() {
                    p.unknown_arguments(unknown);
                }
                Ok(Parameters(p))
            }
            Err(e) => {
                let err = describe(&e, &value, schema);
                Err(ErrorData::invalid_params(
                    err.error.clone(),
                    Some(json!({ ARGUMENT_ERROR: err })),
                ))
            }
        }
    }
}

/// The argument error the extractor raised, if `e` is one.
pub(crate) fn from_rpc_error(e: &ErrorData) -> Option<ToolError> {
    let v = e.data.as_ref()?.get(ARGUMENT_ERROR)?;
    Some(ToolError {
        error: v.get("error")?.as_str()?.to_owned(),
        error_code: "invalid_argument",
        hint: v.get("hint").and_then(Value::as_str).map(str::to_owned),
    })
}

/// Notices for the arguments `schema` does not name.
fn unknown(arguments: &JsonObject, schema: &JsonObject) -> Vec<String> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    arguments
        .keys()
        .filter(|k| !props.contains_key(k.as_str()))
        .map(|k| {
            let known = props.keys().map(String::as_str);
            match nessus_schema::closest(k, known) {
                Some(s) => format!("ignored unknown argument \"{k}\" (did you mean \"{s}\"?)"),
                None => format!(
                    "ignored unknown argument \"{k}\" (arguments: {})",
                    props.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            }
        })
        .collect()
}

/// The envelope for a failed deserialisation: which argument, what was sent,
/// what it takes.
fn describe(
    e: &serde_path_to_error::Error<serde_json::Error>,
    args: &Value,
    schema: Option<&JsonObject>,
) -> ToolError {
    let inner = e.inner().to_string();
    // A missing field is reported at its parent's path, named only in the message.
    if let Some(name) = inner
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        let path = match e.path().to_string().as_str() {
            "." => name.to_owned(),
            parent => format!("{parent}.{name}"),
        };
        return ToolError::new(
            "invalid_argument",
            format!("missing required argument \"{path}\""),
        )
        .hint(format!(
            "\"{}\" is required: it {}",
            top(&path),
            takes(&path, schema)
        ));
    }
    let path = e.path().to_string();
    let sent = pointer(args, &path).map_or_else(|| "a value".to_owned(), kind_of);
    ToolError::new(
        "invalid_argument",
        format!("invalid argument \"{path}\": got {sent}"),
    )
    .hint(format!("\"{}\" {}", top(&path), takes(&path, schema)))
}

/// The argument a serde path is inside (`custom_fields[2]` -> `custom_fields`).
fn top(path: &str) -> &str {
    path.split(['.', '[']).next().unwrap_or(path)
}

/// The value at a serde path (`filters`, `custom_fields[2]`, `a.b`).
fn pointer<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = root;
    for seg in path.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, i)) => (n, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            v = v.get(name)?;
        }
        if let Some(i) = index {
            v = v.get(i)?;
        }
    }
    Some(v)
}

/// What was sent, by kind only: the value itself is never echoed (a secret such as a
/// password sent with the wrong type would otherwise come back in the answer and in any
/// log of it).
fn kind_of(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
    .to_owned()
}

/// "takes a string: The task_id returned by a scan submission." for the
/// top-level argument of `path`, from the published input schema.
fn takes(path: &str, schema: Option<&JsonObject>) -> String {
    let top = top(path);
    let Some(schema) = schema else {
        return "see the tool's inputSchema".to_owned();
    };
    let Some(prop) = schema
        .get("properties")
        .and_then(|p| p.get(top))
        .and_then(Value::as_object)
    else {
        return "see the tool's inputSchema".to_owned();
    };
    let what = phrase(prop, schema, 0);
    match prop
        .get("description")
        .and_then(Value::as_str)
        .map(first_sentence)
    {
        Some(d) => format!("takes {what} ({d})"),
        None => format!("takes {what}"),
    }
}

fn first_sentence(d: &str) -> String {
    let d = d.split("\n\n").next().unwrap_or(d).replace('\n', " ");
    match d.find(". ") {
        Some(i) => d[..=i].to_owned(),
        None => d,
    }
}

/// A JSON Schema as a phrase: "a string", "an integer from 1 to 1000",
/// "an object or a string".
fn phrase(s: &JsonObject, root: &JsonObject, depth: u8) -> String {
    if depth > 4 {
        return "a value".to_owned();
    }
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let def = r
            .strip_prefix("#/$defs/")
            .and_then(|n| root.get("$defs")?.get(n)?.as_object());
        return def.map_or_else(|| "a value".to_owned(), |d| phrase(d, root, depth + 1));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts
                .iter()
                .filter_map(Value::as_object)
                .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
                .map(|a| phrase(a, root, depth + 1))
                .collect();
            return parts.join(" or ");
        }
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values.iter().map(Value::to_string).collect();
        return format!("one of {}", names.join(", "));
    }
    let types: Vec<&str> = match s.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let parts: Vec<String> = types
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "string" => "a string".to_owned(),
            "integer" => {
                let (lo, hi) = (s.get("minimum"), s.get("maximum"));
                match (lo, hi) {
                    (Some(lo), Some(hi)) => format!("an integer from {lo} to {hi}"),
                    (Some(lo), None) => format!("an integer of at least {lo}"),
                    _ => "an integer".to_owned(),
                }
            }
            "number" => "a number".to_owned(),
            "boolean" => "true or false".to_owned(),
            "array" => match s.get("items").and_then(Value::as_object) {
                Some(items) => format!("a list of {}", plural(&phrase(items, root, depth + 1))),
                None => "a list".to_owned(),
            },
            "object" => "an object".to_owned(),
            other => format!("a {other}"),
        })
        .collect();
    if parts.is_empty() {
        "a value".to_owned()
    } else {
        parts.join(" or ")
    }
}

/// "a string" -> "strings" (good enough for list items).
fn plural(p: &str) -> String {
    let p = p
        .strip_prefix("a ")
        .or_else(|| p.strip_prefix("an "))
        .unwrap_or(p);
    format!("{p}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_read_like_the_schema() {
        let root = rmcp::object!({
            "$defs": {"F": {"anyOf": [{"type": "object"}, {"type": "string"}]}},
        });
        let cases = [
            (json!({"type": "string"}), "a string"),
            (json!({"type": ["integer", "null"]}), "an integer"),
            (
                json!({"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}]}),
                "a list of strings",
            ),
            (json!({"$ref": "#/$defs/F"}), "an object or a string"),
            (json!({"type": "boolean"}), "true or false"),
        ];
        for (schema, want) in cases {
            let Value::Object(s) = schema else {
                panic!("object")
            };
            assert_eq!(phrase(&s, &root, 0), want, "{s:?}");
        }
    }

    #[test]
    fn unknown_arguments_become_notices_with_suggestions() {
        let schema = rmcp::object!({"properties": {"page_size": {}, "task_id": {}}});
        let args = rmcp::object!({"task_id": "t", "page_sise": 10, "zzzzzz": 1});
        assert_eq!(
            unknown(&args, &schema),
            [
                "ignored unknown argument \"page_sise\" (did you mean \"page_size\"?)",
                "ignored unknown argument \"zzzzzz\" (arguments: page_size, task_id)",
            ]
        );
    }

    #[test]
    fn pointers_follow_serde_paths() {
        let v = json!({"a": {"b": [1, {"c": true}]}});
        assert_eq!(pointer(&v, "a.b[1].c"), Some(&json!(true)));
        assert_eq!(pointer(&v, "a.x"), None);
    }
}
