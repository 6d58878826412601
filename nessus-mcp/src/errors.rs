//! Business errors shown to the agent as `isError` tool results.
//!
//! The text is a JSON object with the predecessor's `error` key plus a
//! machine-readable `error_code` and a `hint` that says what to do next.

use rmcp::model::{ContentBlock, IntoContents};
use serde::Serialize;

/// A failure the agent can act on.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ToolError {
    /// Human-readable reason (the predecessor's key).
    pub(crate) error: String,
    /// Stable machine-readable code.
    pub(crate) error_code: &'static str,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

impl ToolError {
    pub(crate) fn new(error_code: &'static str, error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            error_code,
            hint: None,
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn invalid(field: &str, why: impl std::fmt::Display) -> Self {
        Self::new("invalid_argument", format!("invalid {field}: {why}"))
    }

    /// An unexpected failure: the agent sees a generic message, the log has the detail.
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        let id = uuid::Uuid::new_v4();
        tracing::error!(error_id = %id, error = %err, "internal error in a tool call");
        Self::new(
            "internal_error",
            format!("internal server error (error_id {id})"),
        )
        .hint("retry in a moment; if it persists, give the error_id to the server's operator")
    }
}

impl IntoContents for ToolError {
    fn into_contents(self) -> Vec<ContentBlock> {
        let text = serde_json::to_string(&self).unwrap_or_else(|_| self.error.clone());
        vec![ContentBlock::text(text)]
    }
}
