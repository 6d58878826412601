//! Read-only data as MCP resources: task summaries, findings pages and the
//! field catalogue (as JSON Schema).
//!
//! URIs:
//! - `nessus://schema/fields`: every finding field with its JSON type, the
//!   profiles and the filter operators.
//! - `nessus://schema/tools`: every tool's typed input and output schema (the
//!   contract behind `server.tool_output: compatible`, see [`crate::compat`]).
//! - `nessus://tasks/{task_id}`: the task's status (same JSON as get_scan_status).
//! - `nessus://tasks/{task_id}/findings/{page}`: one page (40 findings, brief
//!   profile, default order) of a completed scan, as JSON-NL.

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate},
};
use serde_json::{Map, Value, json};

use crate::{app::App, auth::Principal, dto::GetScanResults, errors::ToolError};

const FIELDS_URI: &str = "nessus://schema/fields";

const TOOLS_URI: &str = "nessus://schema/tools";
const TASK_PREFIX: &str = "nessus://tasks/";

/// Resources with a fixed URI.
pub(crate) fn list(_app: &App) -> Vec<Resource> {
    vec![
        Resource::new(FIELDS_URI, "finding-fields")
            .with_title("Finding fields (JSON Schema)")
            .with_description(
                "Every field a finding can carry, with its JSON type; the severity scale, each profile's \
                 fields, host fields, sort fields, filter operators, the answer budget and the closing-line types.",
            )
            .with_mime_type("application/schema+json"),
        Resource::new(TOOLS_URI, "tool-schemas")
            .with_title("Tool schemas (typed)")
            .with_description(
                "Typed input and output JSON Schema of every tool, including the predecessor's nine \
                 whose tools/list outputSchema is a plain object in compatible mode.",
            )
            .with_mime_type("application/json"),
    ]
}

/// Parameterised resources.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new("nessus://tasks/{task_id}", "task")
            .with_title("Scan task status")
            .with_description("Status of one scan task (as get_scan_status).")
            .with_mime_type("application/json"),
        ResourceTemplate::new("nessus://tasks/{task_id}/findings/{page}", "findings-page")
            .with_title("Findings page")
            .with_description(
                "One page (40 findings, brief profile, severity first) of a completed scan, as JSON-NL.",
            )
            .with_mime_type("application/x-ndjson"),
        ResourceTemplate::new(
            "nessus://tasks/{task_id}/export/{format}/{part}",
            "export-part",
        )
        .with_title("Export part")
        .with_description(
            "One part of an export_results export (format jsonl or csv, part from 1), with the \
             query in the URI (?profile=…&fields=…&filters=<url-encoded JSON>&sort=…&size=…): \
             use the URIs export_results returns.",
        ),
    ]
}

/// The error for a URI we do not serve; names the URI as SEP-2164 asks.
pub(crate) fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("resource {uri} not found: {why}"),
        Some(json!({ "uri": uri })),
    )
}

fn tool_error(uri: &str, e: ToolError) -> ErrorData {
    if e.error_code == "task_not_found" || e.error_code == "results_not_found" {
        not_found(uri, &e.error)
    } else {
        ErrorData::invalid_params(
            e.error,
            Some(json!({ "uri": uri, "error_code": e.error_code })),
        )
    }
}

/// The field catalogue as a JSON Schema of one finding line.
pub(crate) fn field_catalogue() -> Value {
    use nessus_schema::{FieldKind, KNOWN_FIELDS, field_kind};
    let mut props = Map::new();
    for name in KNOWN_FIELDS {
        let schema = match field_kind(name) {
            FieldKind::Int => json!({"type": "integer"}),
            FieldKind::Float => json!({"type": "number"}),
            FieldKind::Bool => json!({"type": "boolean"}),
            FieldKind::List => json!({"type": "array", "items": {"type": "string"}}),
            _ => json!({"type": "string"}),
        };
        props.insert((*name).to_owned(), schema);
    }
    let profile_fields: Map<String, Value> = nessus_schema::Profile::ALL
        .iter()
        .map(|p| {
            let fields = p.fields().map_or_else(
                || json!("every field of the finding, plus the known host fields"),
                |f| json!(f),
            );
            (p.name().to_owned(), fields)
        })
        .collect();
    let severity: Map<String, Value> = nessus_schema::SEVERITY_NAMES
        .iter()
        .map(|(n, v)| (v.to_string(), json!(n)))
        .collect();
    let [budget_default, budget_min, budget_max] = crate::catalogue_text::ANSWER_BUDGET;
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": FIELDS_URI,
        "title": "A vulnerability line of get_scan_results",
        "type": "object",
        "properties": props,
        "additionalProperties": {"description": "plugin-specific children Nessus emitted"},
        "x-profiles": nessus_schema::Profile::names().collect::<Vec<_>>(),
        "x-profile-fields": profile_fields,
        "x-default-profile": nessus_schema::Profile::default().name(),
        "x-severity-scale": severity,
        "x-host-fields": nessus_schema::HOST_FIELDS,
        "x-sort-fields": nessus_schema::SORT_FIELDS,
        "x-sort-syntax": "comma-separated fields, each optionally :asc or :desc (or -field for descending), e.g. \"severity:desc,host\"",
        "x-filter-syntax": {
            "dict": "{\"severity\": \">=3\", \"plugin_name\": \"ssl\", \"exploit_available\": true, \"cve\": \"CVE-2021-44228\"}",
            "operators": nessus_schema::OPERATORS,
            "example": "{\"host\": {\"cidr\": \"10.0.0.0/24\"}, \"cvss_score\": {\"ge\": 7}}",
            "as_text": "filters may also be sent as a JSON string holding the object"
        },
        "x-answer-budget": {
            "argument": "byte_budget",
            "default": budget_default,
            "min": budget_min,
            "max": budget_max,
            "unit": "bytes of the whole answer, about 4 bytes per token"
        },
        "x-closing-line": {
            "pagination": "pages and cursors: page, page_size, total_pages, has_next, next_page, next_cursor, returned, truncated, next, notices",
            "end": "page=0 not cut: returned, total_vulnerabilities, truncated (false), next, notices",
            "truncated": "page=0 cut by the budget: the truncated line with truncated (true), next, notices"
        },
        "x-counts": "total_vulnerabilities in the schema line counts the findings matching the filter, every severity including info; results_summary.total_vulnerabilities (get_scan_status) counts low to critical, total_findings every severity"
    })
}

fn text(uri: &str, mime: &str, body: String) -> ReadResourceResult {
    ReadResourceResult::new(vec![ResourceContents::text(body, uri).with_mime_type(mime)])
}

/// Read one resource.
pub(crate) async fn read(
    app: &App,
    principal: &Principal,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    if uri == FIELDS_URI {
        let body = serde_json::to_string_pretty(&field_catalogue())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(text(uri, "application/schema+json", body));
    }
    if uri == TOOLS_URI {
        let body = serde_json::to_string_pretty(&crate::compat::typed_schemas())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(text(uri, "application/json", body));
    }
    let Some(rest) = uri.strip_prefix(TASK_PREFIX) else {
        return Err(not_found(
            uri,
            "this server serves nessus://schema/fields, nessus://schema/tools and nessus://tasks/...",
        ));
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        [task_id, "export", format, part] => {
            let format = nessus_queue::service::ExportFormat::parse(format)
                .map_err(|e| not_found(uri, &e.to_string()))?;
            let part: u32 = part
                .parse()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| not_found(uri, "the part must be a number from 1"))?;
            let (params, size) =
                crate::ops::export_uri::parse(query).map_err(|e| tool_error(uri, e))?;
            let body = app
                .service()
                .export_part(principal, task_id, &params, format, size, part)
                .await
                .map_err(|e| tool_error(uri, crate::ops::service_error(e)))?;
            // The writers emit UTF-8 only.
            let body = String::from_utf8(body)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(text(uri, format.mime_type(), body))
        }
        [task_id] if !task_id.is_empty() => {
            let status = crate::ops::scan_status(app, principal, task_id)
                .await
                .map_err(|e| tool_error(uri, e))?;
            let body = serde_json::to_string(&status)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            Ok(text(uri, "application/json", body))
        }
        [task_id, "findings", page] => {
            let page: i64 = page
                .parse()
                .ok()
                .filter(|p| *p >= 1)
                .ok_or_else(|| not_found(uri, "the page must be a number from 1"))?;
            let p = GetScanResults {
                task_id: (*task_id).to_owned(),
                page,
                page_size: 40,
                schema_profile: "brief".to_owned(),
                custom_fields: None,
                filters: None,
                cursor: None,
                sort: None,
                byte_budget: None,
                notices: Vec::new(),
            };
            let body = crate::ops::scan_results(app, principal, p)
                .await
                .map_err(|e| tool_error(uri, e))?;
            Ok(text(uri, "application/x-ndjson", body))
        }
        _ => Err(not_found(uri, "unknown nessus://tasks/ path")),
    }
}
