//! Tool semantics: map DTOs to service calls and service answers to DTOs.
//!
//! Every rule (pools, policy, credentials, limits, quotas, tenancy) lives in
//! `nessus_queue::service`; this module only translates, and maps the service's
//! typed errors to [`ToolError`]s that tell the agent what to do.

use nessus_queue::service::{
    ChangesRequest, DiffOptions, QueryParams, ScanCredentials, ScanRequest, Submission,
    utilization_pct,
};
use nessus_queue::{ScanType, Task, TaskStatus};
use secrecy::SecretString;

use crate::{
    app::App,
    auth::Principal,
    dto::{
        CancelResult, ChangesClosing, ChangesResult, CreateSchedule, DiffCounts, DiffResult,
        DiffScans, ExportResult, ExportResults, FiltersArg, FindingChange, FindingsChanges,
        GetScanResults, ListTasks, PoolList, PoolScanner, PoolStatus, QueueStatus, QueuedTask,
        ReviewInfo, ReviewResult, ReviewScan, RunAuthenticatedScan, RunUntrustedScan, ScanStatus,
        ScanSubmitted, ScannerInfo, ScannerList, ScheduleDeleted, ScheduleInfo, ScheduleList,
        SeverityArg, SeverityBreakdown, SummarizeResults, SummaryGroup, SummaryOther,
        SummaryResult, TaskItem, TaskList, TriageFinding, TriageInfo, TriageResult,
        Troubleshooting,
    },
    errors::ToolError,
};

/// What the agent should do about a service error, by its code.
fn hint(e: &nessus_queue::Error) -> Option<String> {
    use nessus_queue::Error as E;
    Some(match e {
        E::NotFound { .. } => "check the task_id; list_tasks shows your recent tasks".to_owned(),
        E::ScheduleNotFound { .. } => {
            "check the schedule_id; list_schedules shows your schedules".to_owned()
        }
        E::IdempotencyConflict { .. } => {
            "use a new idempotency_key, or resend exactly the original arguments".to_owned()
        }
        E::Contention { .. } => "retry the call".to_owned(),
        E::UnknownPool { known, .. } => format!("known pools: {}", known.join(", ")),
        E::ScannerNotFound { .. } => "list_scanners shows the instances of each pool".to_owned(),
        E::TargetsNotAllowed { .. } => {
            "only scan targets inside the pool's target policy; nothing was \
             sent to Nessus. list_pools shows the pools; ask the operator to extend the policy \
             if needed"
                .to_owned()
        }
        E::UnknownCredentialProfile { known, .. } => format!("configured profiles: {known:?}"),
        E::InvalidCredentials { .. } => {
            "prefer credential_profile: ask the operator which profiles exist".to_owned()
        }
        E::TooLong {
            field: "content", ..
        } => "put the file in the server's import directory and pass path instead".to_owned(),
        E::TooLong { .. } => "shorten the value to the limit and send it again".to_owned(),
        E::Forbidden { .. } => {
            "ask the operator for access (the principals section of the config)".to_owned()
        }
        E::InsufficientScope { scope, .. } => format!(
            "sign in again asking for the {scope} scope (the server's              /.well-known/oauth-protected-resource lists the scope names)"
        ),
        E::QuotaExceeded { .. } => {
            "wait for some of your queued scans to start (list_tasks with status_filter \
             \"queued\"), or cancel ones you no longer need"
                .to_owned()
        }
        E::NotCompleted { .. } => "poll get_scan_status until status is completed".to_owned(),
        E::ResultsNotFound { .. } => {
            "the results were deleted by housekeeping or never ingested; resubmit the scan"
                .to_owned()
        }
        E::Query(_) => format!(
            "severity is {}; profiles: {}; sort fields: {}; operators: {}; the \
             nessus://schema/fields resource lists every field",
            nessus_schema::severity_scale(),
            nessus_schema::Profile::names()
                .collect::<Vec<_>>()
                .join(", "),
            nessus_schema::SORT_FIELDS.join(", "),
            nessus_schema::OPERATORS.join(", "),
        ),
        E::InvalidImport { .. } => "give a .nessus (XML v2) export from Nessus".to_owned(),
        E::ImportPathRefused { .. } => "ask the operator to put the .nessus file in the import \
             directory and pass its name, or send small files inline with content"
            .to_owned(),
        E::ImportDisabled => "ask the operator to create it (nessus-mcp --import-dir)".to_owned(),
        _ => return None,
    })
}

/// Map a service error to what the agent should read.
pub(crate) fn service_error(e: nessus_queue::Error) -> ToolError {
    let code = e.code();
    if code == "internal_error" {
        return ToolError::internal(e);
    }
    let mut t = ToolError::new(code, e.to_string());
    t.hint = hint(&e);
    t
}

fn submitted(s: Submission) -> ScanSubmitted {
    let Submission {
        submitted: s,
        scanner_url,
        queue_position,
        estimated_wait_minutes,
        ..
    } = s;
    let t = &s.task;
    let pending = t.status == TaskStatus::PendingApproval;
    let message = if s.idempotent {
        "Returning existing task (idempotency key matched)".to_owned()
    } else if pending {
        format!(
            "Scan accepted but waits for an admin's approval ({}); nothing runs until then. Poll get_scan_status.",
            t.approval_reason
                .as_deref()
                .unwrap_or("pool approval rules")
        )
    } else if t.scan_type == ScanType::Untrusted {
        "Scan enqueued successfully. Worker will process asynchronously. Poll get_scan_status."
            .to_owned()
    } else {
        let kind = match t.scan_type {
            ScanType::AuthenticatedPrivileged => "Authenticated Privileged",
            _ => "Authenticated",
        };
        format!("{kind} scan enqueued. Worker will process. Poll get_scan_status.")
    };
    record_submission(&s);
    ScanSubmitted {
        task_id: t.task_id.clone(),
        trace_id: t.trace_id.clone(),
        status: t.status.to_string(),
        scan_type: t.scan_type.to_string(),
        scanner_pool: t.pool.clone(),
        scanner_instance: t.pinned_instance.clone(),
        scanner_url,
        queue_position,
        estimated_wait_minutes,
        message,
        idempotent: s.idempotent,
        approval_reason: t.approval_reason.clone().filter(|_| pending),
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

fn record_submission(s: &nessus_queue::Submitted) {
    if !s.idempotent {
        metrics::counter!(
            crate::telemetry::SCANS,
            "scan_type" => s.task.scan_type.as_str(),
            "status" => "queued"
        )
        .increment(1);
    }
}

pub(crate) async fn submit_untrusted(
    app: &App,
    principal: &Principal,
    p: RunUntrustedScan,
) -> Result<ScanSubmitted, ToolError> {
    let req = ScanRequest::untrusted(p.targets, p.name)
        .description(p.description)
        .schema_profile(p.schema_profile)
        .pool(p.scanner_pool)
        .scanner_instance(p.scanner_instance)
        .idempotency_key(p.idempotency_key);
    app.service()
        .submit(principal, req)
        .await
        .map(submitted)
        .map_err(service_error)
}

pub(crate) async fn submit_authenticated(
    app: &App,
    principal: &Principal,
    p: RunAuthenticatedScan,
) -> Result<ScanSubmitted, ToolError> {
    let scan_type = match p.scan_type.as_str() {
        "authenticated" => ScanType::Authenticated,
        "authenticated_privileged" => ScanType::AuthenticatedPrivileged,
        other => {
            return Err(ToolError::new(
                "invalid_scan_type",
                format!(
                    "Invalid scan_type: {other}. Must be one of: ('authenticated', 'authenticated_privileged')"
                ),
            ));
        }
    };
    let credentials = match (p.credential_profile, p.ssh_username, p.ssh_password) {
        (Some(profile), None, None) => ScanCredentials::Profile(profile),
        (Some(_), _, _) => {
            return Err(ToolError::new(
                "invalid_argument",
                "give either credential_profile or ssh_username/ssh_password, not both",
            ));
        }
        (None, Some(user), Some(pass)) => ScanCredentials::ssh(
            user,
            SecretString::from(pass),
            &p.elevate_privileges_with,
            Some(p.escalation_account).filter(|a| !a.is_empty()),
            Some(p.escalation_password)
                .filter(|a| !a.is_empty())
                .map(SecretString::from),
        ),
        _ => ScanCredentials::None,
    };
    let req = ScanRequest::untrusted(p.targets, p.name)
        .authenticated(scan_type, credentials)
        .description(p.description)
        .schema_profile(p.schema_profile)
        .pool(p.scanner_pool)
        .scanner_instance(p.scanner_instance)
        .idempotency_key(p.idempotency_key);
    app.service()
        .submit(principal, req)
        .await
        .map(submitted)
        .map_err(service_error)
}

/// A task the principal may see, or "not found" (never reveals other principals' tasks).
pub(crate) async fn visible_task(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<nessus_queue::TaskView, ToolError> {
    app.service()
        .task(principal, task_id)
        .await
        .map_err(service_error)
}

fn ts(t: jiff::Timestamp) -> String {
    t.to_string()
}

fn scanner_type(pool: &str) -> String {
    pool.split('_').next().unwrap_or(pool).to_owned()
}

fn next_step(t: &Task) -> String {
    match t.status {
        TaskStatus::Queued => "Queued; poll get_scan_status again in a minute.".to_owned(),
        TaskStatus::Running => "Running; poll get_scan_status again in 30-60 seconds.".to_owned(),
        TaskStatus::Completed => format!(
            "Completed; call get_scan_results with task_id \"{}\" (start with filters {{\"severity\": \">=3\"}}).",
            t.task_id
        ),
        TaskStatus::Failed => {
            "Failed; read error_message. Resubmit once the cause is fixed.".to_owned()
        }
        TaskStatus::Timeout => {
            "Timed out on the scanner; narrow the targets or ask the operator to raise the scan timeout."
                .to_owned()
        }
        TaskStatus::Cancelled => "Cancelled; nothing more will happen.".to_owned(),
        TaskStatus::PendingApproval => format!(
            "Waiting for an admin's approval ({}); poll get_scan_status later, or cancel_scan it.",
            t.approval_reason.as_deref().unwrap_or("pool approval rules")
        ),
        _ => String::new(),
    }
}

pub(crate) fn status_of(view: nessus_queue::TaskView) -> ScanStatus {
    let t = view.task;
    let troubleshooting =
        (t.authentication_status.as_deref() == Some("failed")).then(|| Troubleshooting {
            likely_cause: "Credentials rejected or inaccessible target".to_owned(),
            next_steps: [
                "Verify credentials in scanner configuration",
                "Check target allows SSH/WinRM from scanner IP",
                "Verify target firewall rules",
                "Check credential permissions on target",
                "Review scan logs for specific error",
            ]
            .map(str::to_owned)
            .to_vec(),
        });
    let next = next_step(&t);
    let imported = t.is_imported();
    ScanStatus {
        imported,
        task_id: t.task_id,
        trace_id: t.trace_id,
        status: t.status.to_string(),
        scan_type: t.scan_type.to_string(),
        scanner_type: scanner_type(&t.pool),
        scanner_pool: t.pool,
        scanner_instance: t.instance,
        targets: t.targets,
        name: t.name,
        nessus_scan_id: t.nessus_scan_id,
        created_at: ts(t.created_at),
        started_at: t.started_at.map(ts),
        completed_at: t.completed_at.map(ts),
        error_message: t.error_message,
        error_code: t.error_code,
        authentication_status: t.authentication_status,
        validation_warnings: t.validation_warnings,
        progress: t.progress,
        queue_position: view.queue_position,
        estimated_wait_minutes: view.estimated_wait_minutes,
        cancel_requested: t.cancel_requested,
        results_summary: (t.status == TaskStatus::Completed)
            .then_some(t.results_summary)
            .flatten(),
        troubleshooting,
        next_step: next,
        approval_reason: t.approval_reason,
        approval_expires_at: t
            .approval_expires_at
            .filter(|_| t.status == TaskStatus::PendingApproval)
            .map(ts),
        review: t.review.map(|r| ReviewInfo {
            decision: r.decision.as_str().to_owned(),
            by: r.by,
            reason: r.reason,
            at: ts(r.at),
        }),
    }
}

pub(crate) async fn review_scan(
    app: &App,
    principal: &Principal,
    p: ReviewScan,
) -> Result<ReviewResult, ToolError> {
    let decision: nessus_queue::service::Decision = p.decision.parse().map_err(service_error)?;
    let t = app
        .service()
        .review(principal, &p.task_id, decision, &p.reason)
        .await
        .map_err(service_error)?;
    let message = match decision {
        nessus_queue::service::Decision::Approve => {
            "Approved; the scan is queued and runs like any other.".to_owned()
        }
        _ => "Rejected; the scan is cancelled and its submitter sees the reason.".to_owned(),
    };
    let review = t.review.as_ref();
    Ok(ReviewResult {
        task_id: t.task_id.clone(),
        status: t.status.to_string(),
        decision: review.map_or_else(String::new, |r| r.decision.as_str().to_owned()),
        reviewed_by: review.map_or_else(String::new, |r| r.by.clone()),
        message,
    })
}

pub(crate) async fn scan_status(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<ScanStatus, ToolError> {
    Ok(status_of(visible_task(app, principal, task_id).await?))
}

fn task_item(t: Task) -> TaskItem {
    TaskItem {
        imported: t.is_imported(),
        task_id: t.task_id,
        trace_id: t.trace_id,
        status: t.status.to_string(),
        scan_type: t.scan_type.to_string(),
        scanner_type: scanner_type(&t.pool),
        scanner_pool: t.pool,
        scanner_instance: t.instance,
        targets: t.targets,
        name: t.name,
        created_at: ts(t.created_at),
        started_at: t.started_at.map(ts),
        completed_at: t.completed_at.map(ts),
        nessus_scan_id: t.nessus_scan_id,
    }
}

pub(crate) async fn list_tasks(
    app: &App,
    principal: &Principal,
    p: ListTasks,
) -> Result<TaskList, ToolError> {
    // The predecessor answers an empty list for limit <= 0; the query still goes to the
    // service (with the smallest page) so an unknown pool or a bad cursor is refused.
    let empty = p.limit <= 0;
    let limit = usize::try_from(p.limit.clamp(1, 1000)).unwrap_or(1000);
    let mut q = nessus_queue::ListTasks::new(limit);
    if let Some(s) = p.status_filter.as_deref().filter(|s| !s.is_empty()) {
        q = q.status(s.parse().map_err(service_error)?);
    }
    if let Some(pool) = p.scanner_pool.filter(|s| !s.is_empty()) {
        q = q.pool(pool);
    }
    if let Some(t) = p.target_filter.filter(|s| !s.is_empty()) {
        q = q.target(t);
    }
    if let Some(c) = p.cursor.filter(|s| !s.is_empty()) {
        q = q.cursor(c);
    }
    let page = app
        .service()
        .list(principal, q)
        .await
        .map_err(service_error)?;
    if empty {
        return Ok(TaskList {
            tasks: Vec::new(),
            total: 0,
            next_cursor: None,
        });
    }
    let tasks: Vec<TaskItem> = page.tasks.into_iter().map(task_item).collect();
    Ok(TaskList {
        total: tasks.len(),
        tasks,
        next_cursor: page.next_cursor,
    })
}

pub(crate) async fn cancel(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<CancelResult, ToolError> {
    let done = app
        .service()
        .cancel(principal, task_id)
        .await
        .map_err(service_error)?;
    let message = match done.outcome {
        nessus_queue::CancelOutcome::Cancelled => "Cancelled before it started.".to_owned(),
        nessus_queue::CancelOutcome::CancelRequested => {
            "Cancel requested; the worker is stopping the scan. get_scan_status shows cancelled once it has."
                .to_owned()
        }
        nessus_queue::CancelOutcome::AlreadyFinished => format!(
            "Already finished ({}); nothing changed.",
            done.task.status
        ),
        _ => "Cancel recorded.".to_owned(),
    };
    Ok(CancelResult {
        task_id: task_id.to_owned(),
        status: done.task.status.to_string(),
        message,
    })
}

pub(crate) async fn list_scanners(
    app: &App,
    principal: &Principal,
    pool: Option<&str>,
) -> Result<ScannerList, ToolError> {
    let pool = pool.filter(|p| !p.is_empty());
    let load = app
        .service()
        .pool_load(principal, pool)
        .await
        .map_err(service_error)?;
    let scanners: Vec<ScannerInfo> = load
        .iter()
        .map(|l| {
            let i = &l.instance;
            ScannerInfo {
                scanner_type: scanner_type(i.pool()),
                pool: i.pool().to_owned(),
                instance_id: i.instance_id().to_owned(),
                instance_key: i.key(),
                name: i.name().to_owned(),
                url: i.display_url(),
                enabled: true,
                max_concurrent_scans: i.max_concurrent_scans(),
                active_scans: l.active,
                available_capacity: l.available(),
                utilization_pct: l.utilization_pct(),
            }
        })
        .collect();
    Ok(ScannerList {
        total: scanners.len(),
        scanners,
        pools: app
            .config()
            .pool_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

pub(crate) fn list_pools(app: &App, principal: &Principal) -> Result<PoolList, ToolError> {
    app.service()
        .authorize(principal, nessus_queue::service::Operation::Read)
        .map_err(service_error)?;
    let config = app.config();
    Ok(PoolList {
        pools: config.pool_names().into_iter().map(str::to_owned).collect(),
        default_pool: config.server().default_pool().to_owned(),
    })
}

pub(crate) async fn pool_status(
    app: &App,
    principal: &Principal,
    pool: Option<&str>,
) -> Result<PoolStatus, ToolError> {
    let name = pool
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| app.config().server().default_pool().to_owned());
    let load = app
        .service()
        .pool_load(principal, Some(&name))
        .await
        .map_err(service_error)?;
    let scanners: Vec<PoolScanner> = load
        .iter()
        .map(|l| PoolScanner {
            instance_key: l.instance.key(),
            active_scans: l.active,
            max_concurrent_scans: l.instance.max_concurrent_scans(),
            utilization_pct: l.utilization_pct(),
            available_capacity: l.available(),
        })
        .collect();
    let total_capacity: u64 = scanners
        .iter()
        .map(|s| u64::from(s.max_concurrent_scans))
        .sum();
    let total_active: u64 = scanners.iter().map(|s| s.active_scans).sum();
    Ok(PoolStatus {
        scanner_type: scanner_type(&name),
        pool: name,
        total_scanners: scanners.len(),
        total_capacity,
        total_active,
        available_capacity: total_capacity.saturating_sub(total_active),
        utilization_pct: utilization_pct(total_active, total_capacity),
        scanners,
    })
}

pub(crate) async fn queue_status(
    app: &App,
    principal: &Principal,
    pool: Option<&str>,
) -> Result<QueueStatus, ToolError> {
    let s = app
        .service()
        .queue_status(principal, pool)
        .await
        .map_err(service_error)?;
    Ok(QueueStatus {
        pool: s.pool,
        queue_depth: s.queue_depth,
        running: s.running,
        dlq_size: s.dlq_size,
        pending_approval: s.pending_approval,
        next_tasks: s
            .next_tasks
            .into_iter()
            .map(|t| QueuedTask {
                task_id: t.task_id,
                scan_type: t.scan_type.to_string(),
                name: t.name,
                targets: t.targets,
                created_at: ts(t.created_at),
            })
            .collect(),
        timestamp: ts(s.timestamp),
    })
}

pub(crate) async fn scan_results(
    app: &App,
    principal: &Principal,
    p: GetScanResults,
) -> Result<String, ToolError> {
    if p.page < 0 {
        return Err(ToolError::invalid(
            "page",
            "must be 0 (everything) or a page number from 1",
        ));
    }
    // The profile / custom_fields rule (either, not both) is the library's.
    let params = QueryParams {
        page: Some(u32::try_from(p.page).unwrap_or(u32::MAX)),
        page_size: Some(u32::try_from(p.page_size.max(0)).unwrap_or(u32::MAX)),
        cursor: p.cursor.filter(|c| !c.is_empty()),
        // The library owns the default and the clamp of the budget.
        byte_budget: p
            .byte_budget
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX)),
        notices: p.notices,
        ..selection(p.schema_profile, p.custom_fields, p.filters, p.sort)?
    };
    let (text, _) = app
        .service()
        .results_page(principal, &p.task_id, &params)
        .await
        .map_err(service_error)?;
    Ok(text)
}

/// Which findings and fields a results read selects (profile, custom fields, filters,
/// sort), as the query parameters results pages and exports share.
fn selection(
    schema_profile: String,
    custom_fields: Option<Vec<String>>,
    filters: Option<FiltersArg>,
    sort: Option<String>,
) -> Result<QueryParams, ToolError> {
    Ok(QueryParams {
        schema_profile: Some(schema_profile),
        custom_fields,
        filters: filters.map(filters_object).transpose()?,
        sort: sort.filter(|s| !s.trim().is_empty()),
        ..Default::default()
    })
}

/// `filters` as the object the query language takes: an object as sent, or a
/// JSON string holding one.
pub(crate) fn filters_object(f: FiltersArg) -> Result<serde_json::Value, ToolError> {
    const TAKES: &str = "filters takes an object (or a JSON string holding one) mapping field \
                         names to conditions, e.g. {\"severity\": \">=high\"}; see the \
                         nessus://schema/fields resource";
    match f {
        FiltersArg::Object(m) => Ok(serde_json::Value::Object(m)),
        FiltersArg::Text(t) if t.trim().is_empty() => {
            Ok(serde_json::Value::Object(serde_json::Map::new()))
        }
        FiltersArg::Text(t) => match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(v @ serde_json::Value::Object(_)) => Ok(v),
            Ok(_) => Err(ToolError::invalid(
                "filters",
                "the string holds JSON that is not an object",
            )
            .hint(TAKES)),
            Err(e) => Err(
                ToolError::invalid("filters", format!("the string is not JSON ({e})")).hint(TAKES),
            ),
        },
    }
}

pub(crate) async fn diff(
    app: &App,
    principal: &Principal,
    p: DiffScans,
) -> Result<DiffResult, ToolError> {
    let mut opts = DiffOptions::default();
    if let Some(m) = p.min_severity {
        opts = opts.min_severity(m);
    }
    if let Some(l) = p.limit {
        opts = opts.limit(l);
    }
    let d = app
        .service()
        .diff(principal, &p.base_task_id, &p.compare_task_id, opts)
        .await
        .map_err(service_error)?;
    let [new, fixed, severity_changed, unchanged] = d.counts;
    Ok(DiffResult {
        counts: DiffCounts {
            new,
            fixed,
            severity_changed,
            unchanged,
        },
        truncated: d.truncated,
        new: d.new.iter().map(Into::into).collect(),
        fixed: d.fixed.iter().map(Into::into).collect(),
        severity_changed: d.severity_changed.iter().map(Into::into).collect(),
        base_task_id: p.base_task_id,
        compare_task_id: p.compare_task_id,
        min_severity: opts.min_severity,
    })
}

/// `findings_changes`: the service's page, rendered within the answer budget.
pub(crate) async fn findings_changes(
    app: &App,
    principal: &Principal,
    p: FindingsChanges,
) -> Result<ChangesResult, ToolError> {
    let severity = p.severity.map(|s| match s {
        SeverityArg::Number(n) => n.to_string(),
        SeverityArg::Name(n) => n,
    });
    let req = ChangesRequest::new(p.targets, p.since)
        .states(p.states)
        .severity(severity)
        .limit(p.limit)
        .cursor(p.cursor.filter(|c| !c.is_empty()))
        .include_triaged(p.include_triaged);
    let page = app
        .service()
        .findings_changes(principal, &req)
        .await
        .map_err(service_error)?;
    let budget = nessus_queue::service::answer_budget(
        p.byte_budget
            .map(|b| usize::try_from(b).unwrap_or(usize::MAX - 1)),
    );
    let (n, next) = page.fit(budget);
    let ts = |t: jiff::Timestamp| t.to_string();
    let changes = page.changes[..n]
        .iter()
        .map(|c| FindingChange {
            fingerprint: c.fingerprint.clone(),
            asset_id: c.asset_id.clone(),
            host: c.host.clone(),
            host_ip: c.host_ip.map(|i| i.to_string()),
            plugin_id: c.plugin_id,
            plugin_name: c.plugin_name.clone(),
            severity: c.severity,
            port: c.port,
            protocol: c.protocol.clone(),
            state: c.state.as_str().to_owned(),
            current_state: c.current_state.as_str().to_owned(),
            first_seen: ts(c.first_seen),
            last_seen: ts(c.last_seen),
            fixed_at: c.fixed_at.map(ts),
            last_task: c.last_task.clone(),
            triage: c.triage.as_ref().map(TriageInfo::from),
        })
        .collect();
    let closing = page.closing(n, next.as_deref());
    let closing: ChangesClosing = ChangesClosing {
        kind: closing["type"].as_str().unwrap_or("end").to_owned(),
        returned: n as u64,
        total: page.counts.values().sum(),
        counts: page
            .counts
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        assets: page.assets as u64,
        next: next
            .is_some()
            .then(|| nessus_queue::findings::NEXT_PAGE.to_owned()),
        next_cursor: next,
    };
    Ok(ChangesResult { changes, closing })
}

/// `triage_finding`: the service marks (or clears) the finding.
pub(crate) async fn triage_finding(
    app: &App,
    principal: &Principal,
    p: TriageFinding,
) -> Result<TriageResult, ToolError> {
    let req = nessus_queue::service::TriageRequest::new(p.fingerprint, p.mark, p.reason)
        .expires_at(p.expires_at);
    let t = app
        .service()
        .triage_finding(principal, &req)
        .await
        .map_err(service_error)?;
    let triage = t.finding.triage.as_ref().map(TriageInfo::from);
    let message = match &triage {
        Some(m) => format!(
            "marked {}; later scans of {} keep the mark{}, and findings_changes leaves it out unless include_triaged",
            m.mark,
            t.host,
            m.expires_at
                .as_ref()
                .map(|e| format!(" until {e}"))
                .unwrap_or_default()
        ),
        None => "mark cleared; the finding needs attention again".to_owned(),
    };
    Ok(TriageResult {
        fingerprint: t.fingerprint,
        asset_id: t.asset_id,
        host: t.host,
        plugin_id: t.finding.plugin_id,
        plugin_name: t.finding.plugin_name.clone(),
        current_state: t.finding.state.as_str().to_owned(),
        triage,
        message,
    })
}

/// The one place a results query becomes URI query pairs and back (export parts).
pub(crate) mod export_uri {
    use nessus_queue::service::{ExportFormat, QueryParams};

    use crate::errors::ToolError;

    /// `nessus://tasks/{task_id}/export/{format}/{part}?profile=…&fields=…&filters=…&sort=…&size=…`.
    pub(crate) fn build(
        task_id: &str,
        format: ExportFormat,
        part: u32,
        params: &QueryParams,
        size: u32,
    ) -> String {
        build_part(task_id, format, &part.to_string(), params, size)
    }

    /// The same URI with the literal `{part}` in place of the part number.
    pub(crate) fn template(
        task_id: &str,
        format: ExportFormat,
        params: &QueryParams,
        size: u32,
    ) -> String {
        build_part(task_id, format, "{part}", params, size)
    }

    fn build_part(
        task_id: &str,
        format: ExportFormat,
        part: &str,
        params: &QueryParams,
        size: u32,
    ) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        match &params.custom_fields {
            Some(f) => {
                q.append_pair("fields", &f.join(","));
            }
            None => {
                q.append_pair(
                    "profile",
                    params.schema_profile.as_deref().unwrap_or("brief"),
                );
            }
        }
        if let Some(f) = &params.filters {
            q.append_pair("filters", &f.to_string());
        }
        if let Some(s) = &params.sort {
            q.append_pair("sort", s);
        }
        q.append_pair("size", &size.to_string());
        format!(
            "nessus://tasks/{task_id}/export/{}/{part}?{}",
            format.name(),
            q.finish()
        )
    }

    /// The query and part size of an export URI's query string.
    pub(crate) fn parse(query: &str) -> Result<(QueryParams, u32), ToolError> {
        let mut p = QueryParams::default();
        let mut size = nessus_schema::EXPORT_PART_MAX_FINDINGS;
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "profile" => p.schema_profile = Some(v.into_owned()),
                "fields" => {
                    p.custom_fields = Some(
                        v.split(',')
                            .map(str::trim)
                            .filter(|f| !f.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
                "filters" => {
                    p.filters = Some(super::filters_object(crate::dto::FiltersArg::Text(
                        v.into_owned(),
                    ))?);
                }
                "sort" => p.sort = Some(v.into_owned()).filter(|s| !s.trim().is_empty()),
                "size" => {
                    size = v.parse().map_err(|_| {
                        ToolError::invalid("size", "must be a number of findings per part")
                    })?;
                }
                other => {
                    return Err(ToolError::invalid(
                        "uri",
                        format!("unknown query parameter {other:?}"),
                    )
                    .hint("use the URIs export_results returned, unchanged"));
                }
            }
        }
        Ok((p, size))
    }
}

/// Parts an `export_results` answer lists by URI (and as resource links).
const EXPORT_URIS_LISTED: u32 = 20;

pub(crate) async fn export_results(
    app: &App,
    principal: &Principal,
    p: ExportResults,
    ctx: &rmcp::service::RequestContext<rmcp::RoleServer>,
) -> Result<ExportResult, ToolError> {
    use nessus_queue::service::ExportFormat;
    let format = ExportFormat::parse(&p.format).map_err(|_| {
        ToolError::invalid("format", format!("{:?} is not an export format", p.format))
            .hint(format!("format takes {}", ExportFormat::NAMES.join(", ")))
    })?;
    let params = selection(p.schema_profile, p.custom_fields, p.filters, p.sort)?;
    // The plan measures every matching finding once: report it when the client asks.
    let token = ctx.meta.get_progress_token();
    let progress = token
        .as_ref()
        .map(|_| nessus_queue::service::Progress::new());
    let planning =
        app.service()
            .export_plan(principal, &p.task_id, &params, format, progress.clone());
    let plan = match (token, progress) {
        (Some(token), Some(progress)) => {
            crate::progress::reporting(planning, &ctx.peer, token, &progress, "findings measured")
                .await
        }
        _ => planning.await,
    }
    .map_err(service_error)?;
    // An answer lists at most EXPORT_URIS_LISTED parts (it must stay small however large
    // the export); the template names every part.
    let uris: Vec<String> = (1..=plan.parts.min(EXPORT_URIS_LISTED))
        .map(|k| export_uri::build(&p.task_id, format, k, &params, plan.part_size))
        .collect();
    let uri_template = export_uri::template(&p.task_id, format, &params, plan.part_size);
    let message = if format.is_document() {
        format!(
            "{} findings in one {} document ({} bytes); read uris[0] with resources/read \
             (it stays valid while the task's results exist).",
            plan.findings,
            format.name(),
            plan.largest_part_bytes
        )
    } else if plan.parts == 0 {
        "No findings match these filters; nothing to export.".to_owned()
    } else {
        let listed = if plan.parts > EXPORT_URIS_LISTED {
            format!(
                "; uris lists the first {EXPORT_URIS_LISTED}, uri_template with {{part}} = \
                 1..{} names every part",
                plan.parts
            )
        } else {
            String::new()
        };
        format!(
            "{} findings in {} part(s) of up to {} findings; read each URI with resources/read \
             (the parts stay valid while the task's results exist){listed}.",
            plan.findings, plan.parts, plan.part_size
        )
    };
    Ok(ExportResult {
        task_id: p.task_id,
        format: format.name().to_owned(),
        findings: plan.findings,
        parts: plan.parts,
        part_size: plan.part_size,
        mime_type: format.mime_type().to_owned(),
        uris,
        uri_template,
        message,
    })
}

fn summary_group(g: nessus_queue::service::Group) -> SummaryGroup {
    use nessus_queue::service::GroupIdentity as I;
    let c = &g.severity_counts;
    let mut out = SummaryGroup {
        key: g.key,
        label: g.label,
        findings: g.findings,
        hosts: g.hosts,
        max_severity: g.max_severity,
        severity_counts: SeverityBreakdown {
            critical: c.critical,
            high: c.high,
            medium: c.medium,
            low: c.low,
            info: c.info,
        },
        exploitable: g.exploitable,
        host: None,
        host_ip: None,
        plugin_id: None,
        plugin_name: None,
        plugin_family: None,
        severity: None,
        severity_name: None,
        cve: None,
        port: None,
        protocol: None,
    };
    match g.identity {
        I::Host { host, host_ip } => {
            out.host = Some(host);
            out.host_ip = host_ip;
        }
        I::Plugin {
            plugin_id,
            plugin_name,
            plugin_family,
            severity,
        } => {
            out.plugin_id = plugin_id;
            out.plugin_name = plugin_name;
            out.plugin_family = plugin_family;
            out.severity = severity;
        }
        I::Cve { cve } => out.cve = Some(cve),
        I::Port { port, protocol } => {
            out.port = port;
            out.protocol = protocol;
        }
        I::Severity {
            severity,
            severity_name,
        } => {
            out.severity = Some(severity);
            out.severity_name = Some(severity_name.to_owned());
        }
        I::PluginFamily { plugin_family } => out.plugin_family = plugin_family,
        _ => {}
    }
    out
}

/// The filter that lists one group's findings with get_scan_results.
fn group_filter(group_by: nessus_queue::service::GroupBy) -> &'static str {
    use nessus_queue::service::GroupBy as G;
    match group_by {
        G::Host => "{\"host\": key}",
        G::Plugin => "{\"plugin_id\": key}",
        G::Severity => "{\"severity\": key}",
        G::Cve => "{\"cve\": key}",
        G::Port => "{\"port\": the port number}",
        _ => "{\"plugin_family\": key}",
    }
}

pub(crate) async fn summarize(
    app: &App,
    principal: &Principal,
    p: SummarizeResults,
) -> Result<SummaryResult, ToolError> {
    let filters = p.filters.map(filters_object).transpose()?;
    let req = nessus_queue::service::SummaryRequest::new(p.group_by)
        .filters(filters.clone())
        .top(p.top.map(|t| usize::try_from(t).unwrap_or(usize::MAX)))
        .rank_by(p.rank_by);
    let s = app
        .service()
        .summarize(principal, &p.task_id, &req)
        .await
        .map_err(service_error)?;
    let a = s.aggregation;
    let mut notices = p.notices;
    notices.extend(s.notices);
    let next = if a.matched == 0 {
        "Nothing matched: read explanation, then loosen the filters.".to_owned()
    } else {
        format!(
            "To list one group's findings call get_scan_results with these filters plus {} \
             (schema_profile \"minimal\" keeps it short).",
            group_filter(s.group_by)
        )
    };
    Ok(SummaryResult {
        task_id: p.task_id,
        group_by: s.group_by.as_str().to_owned(),
        rank_by: match s.rank {
            nessus_queue::service::Rank::Count => "count",
            nessus_queue::service::Rank::Hosts => "hosts",
            _ => "severity",
        }
        .to_owned(),
        filters_applied: match filters {
            Some(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        },
        matched_findings: a.matched,
        groups_total: a.groups_total,
        groups: a.groups.into_iter().map(summary_group).collect(),
        other: a.other.map(|o| SummaryOther {
            groups: o.groups,
            findings: o.findings,
        }),
        explanation: a.explanation,
        notices,
        next,
    })
}

fn schedule_info(s: nessus_queue::Schedule) -> ScheduleInfo {
    ScheduleInfo {
        schedule_id: s.schedule_id,
        principal: s.principal,
        scanner_pool: s.pool,
        scan_type: s.scan_type.to_string(),
        targets: s.targets,
        name: s.name,
        credential_profile: s.credential_profile,
        cron: s.cron,
        timezone: s.timezone,
        paused: s.paused,
        next_slot: ts(s.next_slot),
        last_fired_slot: s.last_fired_slot.map(ts),
        last_task_id: s.last_task_id,
        last_error: s.last_error,
        created_at: ts(s.created_at),
    }
}

pub(crate) async fn create_schedule(
    app: &App,
    principal: &Principal,
    p: CreateSchedule,
) -> Result<ScheduleInfo, ToolError> {
    let scan_type: ScanType = p.scan_type.parse().map_err(service_error)?;
    let mut req = ScanRequest::untrusted(p.targets, p.name)
        .description(p.description)
        .schema_profile(p.schema_profile)
        .pool(p.scanner_pool)
        .scanner_instance(p.scanner_instance);
    if let Some(profile) = p.credential_profile {
        req = req.authenticated(scan_type, ScanCredentials::Profile(profile));
    } else if scan_type != ScanType::Untrusted {
        req = req.authenticated(scan_type, ScanCredentials::None);
    }
    let spec = nessus_queue::service::ScheduleSpec::new(req, p.cron, p.timezone);
    app.service()
        .create_schedule(principal, spec)
        .await
        .map(schedule_info)
        .map_err(service_error)
}

pub(crate) async fn list_schedules(
    app: &App,
    principal: &Principal,
) -> Result<ScheduleList, ToolError> {
    let v = app
        .service()
        .list_schedules(principal)
        .await
        .map_err(service_error)?;
    let schedules: Vec<ScheduleInfo> = v.into_iter().map(schedule_info).collect();
    Ok(ScheduleList {
        total: schedules.len(),
        schedules,
    })
}

/// Which schedule action a tool performs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ScheduleAction {
    Get,
    Pause,
    Resume,
}

pub(crate) async fn schedule_action(
    app: &App,
    principal: &Principal,
    id: &str,
    action: ScheduleAction,
) -> Result<ScheduleInfo, ToolError> {
    let svc = app.service();
    let r = match action {
        ScheduleAction::Get => svc.schedule(principal, id).await,
        ScheduleAction::Pause => svc.pause_schedule(principal, id).await,
        ScheduleAction::Resume => svc.resume_schedule(principal, id).await,
    };
    r.map(schedule_info).map_err(service_error)
}

pub(crate) async fn delete_schedule(
    app: &App,
    principal: &Principal,
    id: &str,
) -> Result<ScheduleDeleted, ToolError> {
    let s = app
        .service()
        .delete_schedule(principal, id)
        .await
        .map_err(service_error)?;
    Ok(ScheduleDeleted {
        schedule_id: s.schedule_id,
        deleted: true,
        message: "Deleted; no further runs. Tasks it created stay.".to_owned(),
    })
}
