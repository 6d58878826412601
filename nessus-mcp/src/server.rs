//! The MCP handler: server info, capabilities, and the dispatch of tools,
//! resources and tasks to the modules that implement them.

use std::sync::{Arc, OnceLock};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    handler::server::{router::tool::ToolRouter, tool::ToolCallContext},
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams,
        CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
        GetTaskParams, GetTaskResult, Implementation, ListPromptsResult,
        ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
        ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
        UpdateTaskParams,
    },
    service::RequestContext,
};

#[allow(
    deprecated,
    reason = "logging/setLevel is deprecated by SEP-2577; 2025-11-25 clients still send it"
)]
use rmcp::model::SetLevelRequestParams;

use rmcp::model::IntoContents;

use crate::{app::App, auth::Principal};

/// What an agent reads first: how the tools fit together.
pub(crate) const INSTRUCTIONS: &str = "\
Run Tenable Nessus vulnerability scans through a durable queue. Nothing here blocks on a scan.
1. Call list_pools / list_scanners to see where scans can run (each pool only admits targets \
inside its target policy).
2. Submit with run_untrusted_scan (network-only) or run_authenticated_scan (prefer a named \
credential_profile over passing passwords). You get a task_id, a queue_position and an ETA. \
Pass an idempotency_key so a retried submit returns the same task instead of a second scan.
3. Poll get_scan_status(task_id) until status is completed, failed, timeout or cancelled \
(clients that support MCP Tasks get a task handle instead and poll tasks/get).
4. Read findings with get_scan_results: JSON-NL (one schema line, one scan_metadata line, one \
line per record, one pagination line). Start with schema_profile=\"minimal\" or \"brief\", \
filters like {\"severity\": \">=3\"}, and page through results; never ask for everything at once.
5. cancel_scan stops a queued or running scan; diff_scans compares two completed scans; \
import_scan loads an existing .nessus export so it can be queried like a scan.
6. A scan may answer status pending_approval: a pool rule wants an admin's review_scan first; approval_reason says why. create_schedule runs a scan on a cron (list/get/pause/resume/delete_schedule); each run is an ordinary task (get_schedule's last_task_id).
list_tasks and get_queue_status show what is queued and running. Errors say what to do next.";

/// The MCP server handler. Cheap to clone: the streamable HTTP transport builds
/// one per request in stateless mode.
#[derive(Clone)]
pub struct NessusMcp {
    pub(crate) app: Arc<App>,
    /// The principal for transports without HTTP auth (stdio).
    pub(crate) default_principal: Principal,
}

impl NessusMcp {
    /// A handler serving `app`, attributing calls without an HTTP principal to
    /// `default_principal`.
    pub fn new(app: Arc<App>, default_principal: Principal) -> Self {
        Self {
            app,
            default_principal,
        }
    }

    /// The tool router, built once: building it generates every JSON Schema,
    /// which is too costly to repeat per request.
    /// Every schema is made portable here, once (see [`crate::portable`]).
    pub(crate) fn router() -> &'static ToolRouter<Self> {
        static ROUTER: OnceLock<ToolRouter<NessusMcp>> = OnceLock::new();
        ROUTER.get_or_init(|| {
            let mut router = crate::tools::router();
            for route in router.map.values_mut() {
                // Facts from the catalogue, one owner (crate::catalogue_text).
                if let Some(d) = route.attr.description.as_mut() {
                    *d = crate::catalogue_text::substitute(d).into();
                }
                let mut input = serde_json::Value::Object((*route.attr.input_schema).clone());
                crate::catalogue_text::substitute_schema(&mut input);
                if let serde_json::Value::Object(m) = input {
                    route.attr.input_schema = Arc::new(m);
                }
                crate::portable::make_portable(Arc::make_mut(&mut route.attr.input_schema));
                if let Some(o) = route.attr.output_schema.as_mut() {
                    crate::portable::make_portable(Arc::make_mut(o));
                }
            }
            router
        })
    }

    /// How tool results are shaped now (`server.tool_output`; follows a reload).
    pub(crate) fn tool_output(&self) -> nessus_core::ToolOutput {
        self.app.config().server().tool_output()
    }

    /// The principal a request runs as: the one the HTTP auth layer attached,
    /// else this handler's default.
    pub(crate) fn principal(&self, ctx: &RequestContext<RoleServer>) -> Principal {
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .unwrap_or_else(|| self.default_principal.clone())
    }
}

impl ServerHandler for NessusMcp {
    #[allow(
        deprecated,
        reason = "logging is deprecated by SEP-2577 but 2025-11-25 clients use it"
    )]
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_logging()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .enable_completions()
                .enable_tasks()
                .build(),
        )
        .with_server_info(
            Implementation::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
                .with_title("Nessus MCP server"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let tool = request.name.clone();
        // Label with the router's own name, never the client's string.
        let tool_label = Self::router().get(&tool).map_or(
            std::borrow::Cow::Borrowed(crate::telemetry::UNKNOWN_TOOL),
            |t| t.name.clone(),
        );
        let started = std::time::Instant::now();
        let trace_id = uuid::Uuid::new_v4().to_string();
        // The span (and so every log line inside it) names the tool the same bounded way.
        let span = tracing::info_span!("tool_call", tool = %tool_label, trace_id = %trace_id);
        let tcc = ToolCallContext::new(self, request, context);
        let result = tracing::Instrument::instrument(Self::router().call(tcc), span).await;
        // Argument errors are answered in the envelope, like business errors (crate::args).
        let result = result.or_else(|e| match crate::args::from_rpc_error(&e) {
            Some(te) => Ok(CallToolResult::error(te.into_contents()).into()),
            None => Err(e),
        });
        let outcome = match &result {
            Ok(CallToolResponse::Complete(r)) if r.is_error != Some(true) => "ok",
            Ok(CallToolResponse::Task(_)) => "ok",
            _ => "error",
        };
        let labels = [("tool", tool_label.clone())];
        metrics::counter!(crate::telemetry::TOOL_CALLS, "tool" => tool_label, "outcome" => outcome)
            .increment(1);
        metrics::histogram!(crate::telemetry::TOOL_DURATION, &labels)
            .record(started.elapsed().as_secs_f64());
        result.map(|r| crate::compat::shape(self.tool_output(), &tool, r))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        // An OAuth caller sees only the tools its scopes allow; everyone else sees all.
        let principal = self.principal(&context);
        let tools = crate::compat::tools(self.tool_output())
            .iter()
            .filter(|t| principal.may(crate::tools::operation(&t.name)))
            .cloned()
            .collect();
        Ok(ListToolsResult::with_all_items(tools))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        crate::compat::tools(self.tool_output())
            .iter()
            .find(|t| t.name == name)
            .cloned()
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(crate::prompts::list()))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        crate::prompts::get(&request.name, request.arguments.as_ref()).map(Into::into)
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(crate::resources::list(
            &self.app,
        )))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(
            crate::resources::templates(),
        ))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let principal = self.principal(&context);
        crate::resources::read(&self.app, &principal, &request.uri)
            .await
            .map(Into::into)
    }

    // Logging is accepted for 2025-11-25 clients; we send no log
    // notifications (operational logs go to our own log pipeline), which the
    // spec allows at any level.
    #[allow(deprecated, reason = "see the import of SetLevelRequestParams")]
    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        tracing::debug!(level = ?request.level, "client set its log level");
        Ok(())
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        let principal = self.principal(&context);
        crate::mcp_tasks::get(&self.app, &principal, &request.task_id).await
    }

    /// `tasks/update` delivers answers to a task's input requests. Our scans
    /// never ask for input, so a visible task's update is acknowledged (an
    /// empty result, as the extension defines) and an unknown one refused.
    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let principal = self.principal(&context);
        crate::mcp_tasks::update(&self.app, &principal, &request.task_id).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let principal = self.principal(&context);
        crate::mcp_tasks::cancel(&self.app, &principal, &request.task_id).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Ok(self
            .app
            .complete(&request.argument.name, &request.argument.value)
            .await)
    }
}
