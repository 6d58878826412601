//! `server.tool_output`: how the predecessor's nine tools present their
//! results (issue 13, item 4; the decision is in ARCHITECTURE.md).
//!
//! fastmcp's `Client.call_tool` turns any `outputSchema` with `properties`
//! into a generated dataclass and raises `ToolError` on `isError`, so the
//! predecessor's own client (`result.data["task_id"]`, `"error" in data`)
//! only works when those tools publish the property-less object schema it
//! published and answer business errors as normal results. `compatible` (the
//! default) does that for the nine; the new tools keep typed schemas and
//! `isError` errors either way (a typed schema with required fields cannot
//! carry an error object). `typed` publishes every typed schema. The typed
//! schemas are always readable as the `nessus://schema/tools` resource.

use std::sync::OnceLock;

use nessus_core::ToolOutput;
use rmcp::model::{CallToolResponse, CallToolResult, JsonObject, Tool};
use serde_json::{Value, json};

/// The predecessor's tools (seed-spec §2.3).
pub(crate) const PREDECESSOR_TOOLS: [&str; 9] = [
    "run_untrusted_scan",
    "run_authenticated_scan",
    "get_scan_status",
    "get_scan_results",
    "list_scanners",
    "list_pools",
    "get_pool_status",
    "get_queue_status",
    "list_tasks",
];

/// The predecessor's text-returning tool: fastmcp wraps a `str` result as
/// `{"result": "..."}` and unwraps it again for `result.data`.
const TEXT_TOOL: &str = "get_scan_results";

fn is_predecessor(name: &str) -> bool {
    PREDECESSOR_TOOLS.contains(&name)
}

/// The `outputSchema` fastmcp 2.x published for a `dict` result.
fn dict_schema() -> JsonObject {
    rmcp::object!({"type": "object", "additionalProperties": true})
}

/// The `outputSchema` fastmcp 2.x published for a `str` result; its client
/// unwraps `structuredContent.result` so `result.data` is the string.
fn wrapped_text_schema() -> JsonObject {
    rmcp::object!({
        "type": "object",
        "properties": {"result": {"type": "string"}},
        "required": ["result"],
        "x-fastmcp-wrap-result": true
    })
}

/// The tools as `tools/list` shows them in `mode` (built once per mode).
pub(crate) fn tools(mode: ToolOutput) -> &'static [Tool] {
    static TYPED: OnceLock<Vec<Tool>> = OnceLock::new();
    static COMPATIBLE: OnceLock<Vec<Tool>> = OnceLock::new();
    let typed = || crate::server::NessusMcp::router().list_all();
    match mode {
        ToolOutput::Compatible => COMPATIBLE.get_or_init(|| {
            typed()
                .into_iter()
                .map(|mut t| {
                    if t.name == TEXT_TOOL {
                        t.output_schema = Some(wrapped_text_schema().into());
                    } else if is_predecessor(&t.name) {
                        t.output_schema = Some(dict_schema().into());
                    }
                    t
                })
                .collect()
        }),
        _ => TYPED.get_or_init(typed),
    }
}

/// Shapes a tool's answer for `mode`: in `compatible`, a predecessor tool's
/// business error becomes a normal result whose structured content is the
/// error object, and `get_scan_results` carries its text as fastmcp's
/// `{"result": ...}` wrap. Argument errors rmcp reports (not our JSON) stay
/// `isError`, as pydantic validation errors were for the predecessor.
pub(crate) fn shape(mode: ToolOutput, tool: &str, response: CallToolResponse) -> CallToolResponse {
    if mode != ToolOutput::Compatible || !is_predecessor(tool) {
        return response;
    }
    let mut r = match response {
        CallToolResponse::Complete(r) => r,
        other => return other,
    };
    let text = first_text(&r);
    if r.is_error == Some(true) {
        let Some(error) = text
            .as_deref()
            .and_then(|t| serde_json::from_str::<Value>(t).ok())
            .filter(|v| v.get("error").is_some() && v.get("error_code").is_some())
        else {
            return CallToolResponse::Complete(r);
        };
        r.is_error = Some(false);
        r.structured_content = Some(if tool == TEXT_TOOL {
            json!({ "result": text.unwrap_or_default() })
        } else {
            error
        });
    } else if tool == TEXT_TOOL {
        r.structured_content = Some(json!({ "result": text.unwrap_or_default() }));
    }
    CallToolResponse::Complete(r)
}

fn first_text(r: &CallToolResult) -> Option<String> {
    r.content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
}

/// The typed input and output schema of every tool, keyed by tool name: the
/// `nessus://schema/tools` resource, for clients that run in `compatible`
/// mode but want the full contract.
pub(crate) fn typed_schemas() -> Value {
    let mut by_name = serde_json::Map::new();
    for t in tools(ToolOutput::Typed) {
        let mut entry = serde_json::Map::new();
        entry.insert(
            "inputSchema".to_owned(),
            Value::Object((*t.input_schema).clone()),
        );
        // get_scan_results has none: its result is JSON-NL text.
        if let Some(o) = &t.output_schema {
            entry.insert("outputSchema".to_owned(), Value::Object((**o).clone()));
        }
        entry.insert(
            "predecessor".to_owned(),
            Value::Bool(is_predecessor(&t.name)),
        );
        by_name.insert(t.name.to_string(), Value::Object(entry));
    }
    json!({
        "description": "Typed input and output schema of every tool. With server.tool_output: compatible \
    (the default) the predecessor's nine tools publish {\"type\": \"object\", \"additionalProperties\": true} \
    in tools/list and answer business errors as results with error, error_code and hint; these are the shapes \
    their successful results follow.",
        "tools": by_name
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema a client can see, in both modes and in the resource, is portable.
    #[test]
    fn every_published_schema_is_portable() {
        let mut checked = 0;
        for mode in [ToolOutput::Compatible, ToolOutput::Typed] {
            for t in tools(mode) {
                let mut schemas = vec![("inputSchema", Value::Object((*t.input_schema).clone()))];
                if let Some(o) = &t.output_schema {
                    schemas.push(("outputSchema", Value::Object((**o).clone())));
                }
                for (kind, s) in schemas {
                    let f = crate::portable::findings(&s);
                    assert!(f.is_empty(), "{mode:?} {} {kind}: {f:#?}\n{s:#}", t.name);
                    checked += 1;
                }
            }
        }
        let resource = typed_schemas();
        for (name, entry) in resource["tools"].as_object().into_iter().flatten() {
            for kind in ["inputSchema", "outputSchema"] {
                if let Some(s) = entry.get(kind) {
                    let f = crate::portable::findings(s);
                    assert!(f.is_empty(), "resource {name} {kind}: {f:#?}");
                    checked += 1;
                }
            }
        }
        assert!(checked > 40, "only {checked} schemas checked");
    }

    #[test]
    fn compatible_mode_publishes_the_predecessor_schemas() {
        for t in tools(ToolOutput::Compatible) {
            let schema = t.output_schema.as_deref().map(|o| Value::Object(o.clone()));
            let name = t.name.as_ref();
            if name == TEXT_TOOL {
                assert_eq!(schema, Some(Value::Object(wrapped_text_schema())), "{name}");
            } else if is_predecessor(name) {
                assert_eq!(schema, Some(Value::Object(dict_schema())), "{name}");
            } else {
                assert!(
                    schema.is_some_and(|s| s.get("properties").is_some()),
                    "{name} keeps its typed schema"
                );
            }
        }
        for t in tools(ToolOutput::Typed) {
            if t.name != TEXT_TOOL {
                assert!(
                    t.output_schema
                        .as_ref()
                        .is_some_and(|s| s.contains_key("properties")),
                    "{} is typed",
                    t.name
                );
            }
        }
    }
}
