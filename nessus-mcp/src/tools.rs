//! The agent-facing tools.

use rmcp::handler::server::router::tool::ToolRouter;

use crate::server::NessusMcp;

/// Every tool, in one router.
pub(crate) fn router() -> ToolRouter<NessusMcp> {
    ToolRouter::new()
}
