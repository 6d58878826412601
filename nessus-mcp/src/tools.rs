//! The agent-facing tools: thin adapters from MCP calls to [`crate::ops`].
//!
//! Each tool declares complete annotations. JSON results carry an
//! `outputSchema` and structured content (rmcp mirrors it as text);
//! `get_scan_results` keeps the predecessor's JSON-NL text.

use rmcp::{
    Json, RoleServer,
    handler::server::{router::tool::ToolRouter, tool::schema_for_output},
    model::{CallToolResponse, CallToolResult, ContentBlock, Resource},
    service::RequestContext,
    tool, tool_router,
};

use nessus_queue::service::Operation;

use crate::{
    args::Parameters,
    dto::{
        CancelResult, ChangesResult, CreateSchedule, DiffResult, DiffScans, ExportResult,
        ExportResults, FindingsChanges, GetScanResults, ImportResult, ImportScan, ListTasks,
        NoArgs, PoolList, PoolRef, PoolStatus, QueueStatus, ReviewResult, ReviewScan,
        RunAuthenticatedScan, RunUntrustedScan, ScanStatus, ScanSubmitted, ScannerList,
        ScheduleDeleted, ScheduleInfo, ScheduleList, ScheduleRef, SummarizeResults, SummaryResult,
        TaskList, TaskRef, TriageFinding, TriageResult,
    },
    errors::ToolError,
    ops,
    server::NessusMcp,
};

/// Every tool, in one router.
pub(crate) fn router() -> ToolRouter<NessusMcp> {
    NessusMcp::tool_router()
}

/// The service operation a tool calls, so the tool list can hide what a token's scopes
/// do not allow (the service refuses the call itself on every path).
pub(crate) fn operation(tool: &str) -> Operation {
    match tool {
        "run_untrusted_scan" => Operation::SubmitUntrusted,
        "run_authenticated_scan" => Operation::SubmitAuthenticated,
        "import_scan" => Operation::Import,
        "cancel_scan" => Operation::Cancel,
        "triage_finding" => Operation::Triage,
        "review_scan" => Operation::ReviewScan,
        "create_schedule" | "pause_schedule" | "resume_schedule" | "delete_schedule" => {
            Operation::ManageSchedule
        }
        _ => Operation::Read,
    }
}

impl NessusMcp {
    /// Answer a submission: a task handle when the client declared the Tasks
    /// extension, the predecessor's JSON otherwise.
    fn submission_response(
        ctx: &RequestContext<RoleServer>,
        submitted: ScanSubmitted,
    ) -> Result<CallToolResponse, ToolError> {
        let wants_task = ctx
            .client_capabilities()
            .is_some_and(|c| c.supports_tasks());
        if wants_task {
            return Ok(crate::mcp_tasks::handle(&submitted).into());
        }
        let value = serde_json::to_value(&submitted).map_err(ToolError::internal)?;
        Ok(CallToolResult::structured(value).into())
    }
}

#[tool_router]
impl NessusMcp {
    /// Queue a network (unauthenticated) Nessus scan. Returns at once with a
    /// task_id, queue_position and estimated_wait_minutes; the scan runs in the
    /// background. Targets outside the pool's target policy are refused.
    #[tool(
        output_schema = schema_for_output::<ScanSubmitted>(),
        annotations(
            title = "Run untrusted scan",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_untrusted_scan(
        &self,
        Parameters(p): Parameters<RunUntrustedScan>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ToolError> {
        let principal = self.principal(&ctx);
        let submitted = ops::submit_untrusted(&self.app, &principal, p).await?;
        Self::submission_response(&ctx, submitted)
    }

    /// Queue a credentialed (SSH) Nessus scan. Prefer credential_profile (a
    /// named profile configured on the server) over ssh_username/ssh_password.
    /// scan_type is "authenticated" or "authenticated_privileged" (then
    /// elevate_privileges_with must be sudo, su, ...). Returns at once with a task_id.
    #[tool(
        output_schema = schema_for_output::<ScanSubmitted>(),
        annotations(
            title = "Run authenticated scan",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    async fn run_authenticated_scan(
        &self,
        Parameters(p): Parameters<RunAuthenticatedScan>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ToolError> {
        let principal = self.principal(&ctx);
        let submitted = ops::submit_authenticated(&self.app, &principal, p).await?;
        Self::submission_response(&ctx, submitted)
    }

    /// Status of a scan task: queued (with queue position and ETA), running
    /// (with progress), completed (with a results summary), failed, timeout or
    /// cancelled. next_step says what to do.
    #[tool(annotations(
        title = "Get scan status",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_scan_status(
        &self,
        Parameters(p): Parameters<TaskRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScanStatus>, ToolError> {
        let principal = self.principal(&ctx);
        ops::scan_status(&self.app, &principal, &p.task_id)
            .await
            .map(Json)
    }

    /// Findings of a completed scan as JSON-NL: a schema line (its
    /// total_vulnerabilities counts the findings matching the filter, every
    /// severity including info), a scan_metadata line, one line per finding,
    /// then one closing line: pagination (next_page, next_cursor, returned,
    /// truncated, next, notices) for pages and cursors, or for page=0 an end
    /// or truncated line. Severity: {severity_scale}. Profiles: {profiles}; or
    /// an exact custom_fields list. Filters run before projection, e.g.
    /// {"severity": ">=3"} (or ">=high"), {"cvss_score": ">7.0"},
    /// {"exploit_available": true}, {"host": {"cidr": "10.0.0.0/24"}};
    /// operators: {operators}. sort: comma-separated fields from {sort_fields}.
    /// Every answer stays within byte_budget (default {default_budget}, about 4
    /// bytes per token). For counts and top-N by host, plugin, severity, CVE or
    /// port use summarize_results instead of paging.
    #[tool(annotations(
        title = "Get scan results",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_scan_results(
        &self,
        Parameters(p): Parameters<GetScanResults>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<String, ToolError> {
        let principal = self.principal(&ctx);
        ops::scan_results(&self.app, &principal, p).await
    }

    /// Recent scan tasks, newest first, optionally filtered by status, pool or
    /// target (CIDR-aware). Use next_cursor to page.
    #[tool(annotations(
        title = "List tasks",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_tasks(
        &self,
        Parameters(p): Parameters<ListTasks>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TaskList>, ToolError> {
        let principal = self.principal(&ctx);
        ops::list_tasks(&self.app, &principal, p).await.map(Json)
    }

    /// Configured scanner instances with their load. Filter with scanner_pool.
    #[tool(annotations(
        title = "List scanners",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_scanners(
        &self,
        Parameters(p): Parameters<PoolRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScannerList>, ToolError> {
        let principal = self.principal(&ctx);
        ops::list_scanners(&self.app, &principal, p.scanner_pool.as_deref())
            .await
            .map(Json)
    }

    /// Scanner pool names and the default pool.
    #[tool(annotations(
        title = "List pools",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_pools(
        &self,
        Parameters(_): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PoolList>, ToolError> {
        let principal = self.principal(&ctx);
        ops::list_pools(&self.app, &principal).map(Json)
    }

    /// Capacity and load of one pool (default: the default pool).
    #[tool(annotations(
        title = "Get pool status",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_pool_status(
        &self,
        Parameters(p): Parameters<PoolRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<PoolStatus>, ToolError> {
        let principal = self.principal(&ctx);
        ops::pool_status(&self.app, &principal, p.scanner_pool.as_deref())
            .await
            .map(Json)
    }

    /// Queue depth, running and dead-lettered counts and the next tasks of one
    /// pool (default: the default pool). Never shows credentials.
    #[tool(annotations(
        title = "Get queue status",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_queue_status(
        &self,
        Parameters(p): Parameters<PoolRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<QueueStatus>, ToolError> {
        let principal = self.principal(&ctx);
        ops::queue_status(&self.app, &principal, p.scanner_pool.as_deref())
            .await
            .map(Json)
    }

    /// Cancel a scan: a queued task is cancelled at once; a running one is
    /// stopped on the scanner by its worker (status shows cancel_requested
    /// until then). Cancelling a finished task changes nothing.
    #[tool(annotations(
        title = "Cancel scan",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    async fn cancel_scan(
        &self,
        Parameters(p): Parameters<TaskRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<CancelResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::cancel(&self.app, &principal, &p.task_id)
            .await
            .map(Json)
    }

    /// Counts and top-N of a completed scan's findings in one call, grouped by host,
    /// plugin, severity, cve, port or plugin_family, with filters applied first (the
    /// same filters as get_scan_results). Start here, then list one group's findings
    /// with get_scan_results. Examples: hosts ranked by critical and high findings
    /// with an exploit: group_by "host", filters {"severity": ">=high",
    /// "exploit_available": true}; most widespread plugins: group_by "plugin",
    /// rank_by "hosts"; severity counts: group_by "severity"; is a CVE present and
    /// where: group_by "host", filters {"cve": "CVE-2021-44228"}. Severity:
    /// {severity_scale}. Counts include info findings unless filtered out. An empty
    /// answer carries an explanation of what the scan holds.
    #[tool(annotations(
        title = "Summarize scan results",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn summarize_results(
        &self,
        Parameters(p): Parameters<SummarizeResults>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<SummaryResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::summarize(&self.app, &principal, p).await.map(Json)
    }

    /// Compare two completed scans: findings that are new, fixed, or changed
    /// severity between base_task_id (older) and compare_task_id (newer).
    #[tool(annotations(
        title = "Diff scans",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn diff_scans(
        &self,
        Parameters(p): Parameters<DiffScans>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<DiffResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::diff(&self.app, &principal, p).await.map(Json)
    }

    /// Export every finding of a completed scan that matches the filters
    /// (projected and sorted as in get_scan_results) as JSON-NL or CSV parts, or
    /// as one SARIF 2.1.0 or one self-contained HTML report document, by
    /// reference: the answer lists one nessus:// resource URI per part (also as
    /// resource_link content) to read with resources/read; nothing large is
    /// inlined. A part holds at most {export_part_findings} findings and
    /// {export_part_bytes}. JSON-NL parts hold only vulnerability lines; every CSV
    /// part starts with the header row, lists are joined with "; ", and cells a
    /// spreadsheet would run as a formula are prefixed with '. sarif (one result
    /// per finding, rules = plugins, for code-scanning tools) and html (summary,
    /// severity chart, findings by host; no script or external asset) are one
    /// document of at most {report_findings} findings and {report_bytes}: past
    /// that, narrow with filters. Severity: {severity_scale}.
    #[tool(
        output_schema = schema_for_output::<ExportResult>(),
        annotations(
            title = "Export results",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn export_results(
        &self,
        Parameters(p): Parameters<ExportResults>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ToolError> {
        let principal = self.principal(&ctx);
        let e = ops::export_results(&self.app, &principal, p, &ctx).await?;
        let links: Vec<ContentBlock> = e
            .uris
            .iter()
            .enumerate()
            .map(|(i, uri)| {
                ContentBlock::resource_link(
                    Resource::new(uri.clone(), format!("export-part-{}", i + 1))
                        .with_title(format!(
                            "{} export, part {} of {}",
                            e.format,
                            i + 1,
                            e.parts
                        ))
                        .with_mime_type(e.mime_type.clone()),
                )
            })
            .collect();
        let value = serde_json::to_value(&e).map_err(ToolError::internal)?;
        let mut r = CallToolResult::structured(value);
        r.content.extend(links);
        Ok(r)
    }

    /// Import an existing .nessus file as a completed task, so its findings
    /// can be read with get_scan_results and compared with diff_scans. Give
    /// path (a file in the server's import directory) or content (the XML,
    /// up to 4 MiB). Nothing is sent to a scanner.
    #[tool(annotations(
        title = "Import scan",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn import_scan(
        &self,
        Parameters(p): Parameters<ImportScan>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ImportResult>, ToolError> {
        let principal = self.principal(&ctx);
        crate::import::import_scan(&self.app, &principal, p, &ctx)
            .await
            .map(Json)
    }

    /// What changed on these targets since a date or a task, over every completed
    /// scan (worker or import) of the caller's tasks: each finding of an asset
    /// (host IP first, else FQDN, NetBIOS name or MAC) is new, persistent, fixed
    /// (seen before, absent from a later scan that covered the host) or reopened,
    /// with first_seen and last_seen; the fingerprint is sha256 of asset, plugin,
    /// port and protocol, never plugin_output. `changes` lists each finding
    /// (state since `since`, current_state, fingerprint, host, plugin_id,
    /// severity, port, protocol, first_seen, last_seen); `closing` comes last:
    /// end, or pagination with counts, next_cursor and what to do next. Every
    /// answer stays within byte_budget (default {default_budget}). Severity:
    /// {severity_scale}.
    #[tool(
        output_schema = schema_for_output::<ChangesResult>(),
        annotations(
            title = "Findings changes",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn findings_changes(
        &self,
        Parameters(p): Parameters<FindingsChanges>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ChangesResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::findings_changes(&self.app, &principal, p)
            .await
            .map(Json)
    }

    /// Admin only: approve or reject a scan waiting in pending_approval (a pool's
    /// approval rules held it: targets outside its auto_approve list, an
    /// authenticated scan, or more hosts than its limit). decision is "approve"
    /// (the scan is queued) or "reject" (it is cancelled); reason is required and
    /// recorded. An approval re-checks the targets against the pool's policy now.
    #[tool(annotations(
        title = "Review scan",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn review_scan(
        &self,
        Parameters(p): Parameters<ReviewScan>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ReviewResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::review_scan(&self.app, &principal, p).await.map(Json)
    }

    /// Create a recurring scan: cron (five fields, e.g. "0 2 * * *") in an IANA
    /// timezone (default UTC). Every slot submits an ordinary scan as you, with the
    /// same policy checks, quotas and approvals as run_untrusted_scan /
    /// run_authenticated_scan (credentials only as credential_profile). Each slot
    /// runs exactly once however many servers run; a slot missed while all were down
    /// runs once when they return.
    #[tool(annotations(
        title = "Create schedule",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn create_schedule(
        &self,
        Parameters(p): Parameters<CreateSchedule>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleInfo>, ToolError> {
        let principal = self.principal(&ctx);
        ops::create_schedule(&self.app, &principal, p)
            .await
            .map(Json)
    }

    /// Mark a finding (by the fingerprint findings_changes gives) false_positive
    /// or accepted_risk with a reason and an optional expires_at, or clear the
    /// mark. The mark applies to every later scan of the same host (the
    /// fingerprint does not change), shows with the finding, leaves it out of
    /// findings_changes unless include_triaged, and is recorded in the audit trail
    /// with who marked it.
    #[tool(
        output_schema = schema_for_output::<TriageResult>(),
        annotations(
            title = "Triage finding",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn triage_finding(
        &self,
        Parameters(p): Parameters<TriageFinding>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<TriageResult>, ToolError> {
        let principal = self.principal(&ctx);
        ops::triage_finding(&self.app, &principal, p)
            .await
            .map(Json)
    }

    /// Your schedules (an admin sees everyone's), with next_slot, the last run's
    /// task_id and last_error.
    #[tool(annotations(
        title = "List schedules",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_schedules(
        &self,
        Parameters(p): Parameters<NoArgs>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleList>, ToolError> {
        let principal = self.principal(&ctx);
        let _ = p;
        ops::list_schedules(&self.app, &principal).await.map(Json)
    }

    /// One schedule: cron, time zone, paused, next_slot, last_fired_slot,
    /// last_task_id (pass it to get_scan_status) and last_error.
    #[tool(annotations(
        title = "Get schedule",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn get_schedule(
        &self,
        Parameters(p): Parameters<ScheduleRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleInfo>, ToolError> {
        let principal = self.principal(&ctx);
        ops::schedule_action(
            &self.app,
            &principal,
            &p.schedule_id,
            ops::ScheduleAction::Get,
        )
        .await
        .map(Json)
    }

    /// Pause a schedule: nothing fires until resume_schedule.
    #[tool(annotations(
        title = "Pause schedule",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn pause_schedule(
        &self,
        Parameters(p): Parameters<ScheduleRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleInfo>, ToolError> {
        let principal = self.principal(&ctx);
        ops::schedule_action(
            &self.app,
            &principal,
            &p.schedule_id,
            ops::ScheduleAction::Pause,
        )
        .await
        .map(Json)
    }

    /// Resume a paused schedule; the next slot is the first after now (slots
    /// missed while paused are skipped).
    #[tool(annotations(
        title = "Resume schedule",
        read_only_hint = false,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn resume_schedule(
        &self,
        Parameters(p): Parameters<ScheduleRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleInfo>, ToolError> {
        let principal = self.principal(&ctx);
        ops::schedule_action(
            &self.app,
            &principal,
            &p.schedule_id,
            ops::ScheduleAction::Resume,
        )
        .await
        .map(Json)
    }

    /// Delete a schedule: no further runs; tasks it already created stay.
    #[tool(annotations(
        title = "Delete schedule",
        read_only_hint = false,
        destructive_hint = true,
        idempotent_hint = false,
        open_world_hint = false
    ))]
    async fn delete_schedule(
        &self,
        Parameters(p): Parameters<ScheduleRef>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<Json<ScheduleDeleted>, ToolError> {
        let principal = self.principal(&ctx);
        ops::delete_schedule(&self.app, &principal, &p.schedule_id)
            .await
            .map(Json)
    }
}
