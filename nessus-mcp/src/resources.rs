//! Read-only data as MCP resources: task summaries, findings pages and the
//! field catalogue.

use rmcp::{
    ErrorData,
    model::{ReadResourceResult, Resource, ResourceTemplate},
};
use serde_json::json;

use crate::app::App;

/// The URI scheme of every resource we serve.
pub(crate) const SCHEME: &str = "nessus://";

/// Resources with a fixed URI.
pub(crate) fn list(_app: &App) -> Vec<Resource> {
    Vec::new()
}

/// Parameterised resources.
pub(crate) fn templates() -> Vec<ResourceTemplate> {
    Vec::new()
}

/// The error for a URI we do not serve; names the URI as SEP-2164 asks.
pub(crate) fn not_found(uri: &str, why: &str) -> ErrorData {
    ErrorData::resource_not_found(
        format!("resource {uri} not found: {why}"),
        Some(json!({ "uri": uri })),
    )
}

/// Read one resource.
pub(crate) async fn read(
    _app: &App,
    _principal: &crate::auth::Principal,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    if !uri.starts_with(SCHEME) {
        return Err(not_found(uri, "this server only serves nessus:// URIs"));
    }
    Err(not_found(uri, "no such resource"))
}
