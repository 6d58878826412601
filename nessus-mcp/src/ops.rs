//! Tool semantics: validate arguments, call the libraries, shape the answer.
//!
//! No business rule lives here that a library owns (state machine, policy,
//! idempotency, filters); this module maps DTOs to library calls and library
//! errors to [`ToolError`]s that tell the agent what to do.

use std::{collections::BTreeMap, sync::Arc};

use nessus_queue::{AdhocCredentials, NewTask, ScanType, Task, TaskStatus};
use secrecy::SecretString;

use crate::{
    app::App,
    auth::Principal,
    dto::{
        CancelResult, DiffCounts, DiffResult, DiffScans, GetScanResults, ListTasks, PoolList,
        PoolScanner, PoolStatus, QueueStatus, QueuedTask, RunAuthenticatedScan, RunUntrustedScan,
        ScanStatus, ScanSubmitted, ScannerInfo, ScannerList, TaskItem, TaskList, Troubleshooting,
    },
    errors::ToolError,
};

/// Map a queue error to what the agent should read.
pub(crate) fn queue_error(e: nessus_queue::Error) -> ToolError {
    use nessus_queue::Error as E;
    match e {
        E::NotFound { task_id, .. } => ToolError::task_not_found(&task_id),
        e @ E::IdempotencyConflict { .. } => ToolError::new("idempotency_conflict", e.to_string())
            .hint("use a new idempotency_key, or resend exactly the original arguments"),
        e @ E::Invalid { .. } => ToolError::new("invalid_argument", e.to_string()),
        e @ E::InvalidTransition { .. } => ToolError::new("invalid_state", e.to_string()),
        e @ E::Contention { .. } => ToolError::new("busy", e.to_string()).hint("retry the call"),
        other => ToolError::internal(other),
    }
}

fn core_error(e: nessus_core::Error) -> ToolError {
    match e {
        e @ nessus_core::Error::TargetsRefused { .. } => {
            ToolError::new("target_not_allowed", e.to_string()).hint(
                "only scan targets inside the pool's target policy; nothing was sent to Nessus. \
                 list_pools shows the pools; ask the operator to extend the policy if needed",
            )
        }
        other => ToolError::internal(other),
    }
}

fn check_profile(profile: &str) -> Result<(), ToolError> {
    nessus_schema::Profile::parse(profile)
        .map(drop)
        .map_err(|e| ToolError::new("invalid_profile", e.to_string()))
}

/// Resolve the pool and check every target against its policy before anything is queued.
fn admit(
    app: &App,
    pool: Option<&str>,
    instance: Option<&str>,
    targets: &str,
) -> Result<(String, Option<String>), ToolError> {
    let config = app.config();
    let pool_name = pool
        .map(str::to_owned)
        .unwrap_or_else(|| config.server().default_pool().to_owned());
    let Some(pool) = config.pool(&pool_name) else {
        return Err(ToolError::new(
            "unknown_pool",
            format!("No enabled scanners in pool '{pool_name}'"),
        )
        .hint(format!("known pools: {}", config.pool_names().join(", "))));
    };
    let url = match instance {
        Some(id) => match pool.instance(id) {
            Some(inst) => Some(inst.display_url()),
            None => {
                return Err(ToolError::new(
                    "scanner_not_found",
                    format!("Scanner not found: {pool_name}:{id}"),
                )
                .hint("list_scanners shows the instances of each pool"));
            }
        },
        None => None,
    };
    pool.check_targets(targets).map_err(core_error)?;
    Ok((pool_name, url))
}

fn submitted(s: nessus_queue::Submitted, scanner_url: Option<String>) -> ScanSubmitted {
    let t = &s.task;
    let message = if s.idempotent {
        "Returning existing task (idempotency key matched)".to_owned()
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
    ScanSubmitted {
        task_id: t.task_id.clone(),
        trace_id: t.trace_id.clone(),
        status: t.status.to_string(),
        scan_type: t.scan_type.to_string(),
        scanner_pool: t.pool.clone(),
        scanner_instance: t.pinned_instance.clone(),
        scanner_url,
        queue_position: s.queue_position,
        estimated_wait_minutes: s.estimated_wait_minutes,
        message,
        idempotent: s.idempotent,
    }
}

pub(crate) async fn submit_untrusted(
    app: &App,
    principal: &Principal,
    p: RunUntrustedScan,
) -> Result<ScanSubmitted, ToolError> {
    check_profile(&p.schema_profile)?;
    let (pool, url) = admit(
        app,
        p.scanner_pool.as_deref(),
        p.scanner_instance.as_deref(),
        &p.targets,
    )?;
    let mut req = NewTask::new(ScanType::Untrusted, pool, p.targets, p.name)
        .description(p.description)
        .schema_profile(p.schema_profile);
    if let Some(i) = p.scanner_instance {
        req = req.scanner_instance(i);
    }
    let s = app
        .queue()
        .submit(principal.as_str(), req, None, p.idempotency_key.as_deref())
        .await
        .map_err(queue_error)?;
    record_submission(&s);
    Ok(submitted(s, url))
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
    check_profile(&p.schema_profile)?;
    let (pool, url) = admit(
        app,
        p.scanner_pool.as_deref(),
        p.scanner_instance.as_deref(),
        &p.targets,
    )?;
    let mut req = NewTask::new(scan_type, pool, p.targets.clone(), p.name.clone())
        .description(p.description.clone())
        .schema_profile(p.schema_profile.clone());
    if let Some(i) = &p.scanner_instance {
        req = req.scanner_instance(i.clone());
    }
    let credentials = match (&p.credential_profile, &p.ssh_username, &p.ssh_password) {
        (Some(profile), None, None) => {
            let config = app.config();
            let Some(cred) = config.credential(profile) else {
                let known: Vec<&String> = config.credentials().keys().collect();
                return Err(ToolError::new(
                    "unknown_credential_profile",
                    format!("credential profile '{profile}' is not configured"),
                )
                .hint(format!("configured profiles: {known:?}")));
            };
            if scan_type == ScanType::AuthenticatedPrivileged
                && cred.escalation() == nessus_core::EscalationMethod::Nothing
            {
                return Err(ToolError::new(
                    "invalid_argument",
                    format!(
                        "credential profile '{profile}' has no privilege escalation; use scan_type \"authenticated\" or a profile with sudo/su"
                    ),
                ));
            }
            req = req.credential_profile(profile.clone());
            None
        }
        (Some(_), _, _) => {
            return Err(ToolError::new(
                "invalid_argument",
                "give either credential_profile or ssh_username/ssh_password, not both",
            ));
        }
        (None, Some(user), Some(pass)) if !user.trim().is_empty() && !pass.is_empty() => {
            if scan_type == ScanType::AuthenticatedPrivileged
                && p.elevate_privileges_with == "Nothing"
            {
                return Err(ToolError::new(
                    "invalid_argument",
                    "authenticated_privileged scan requires elevate_privileges_with (sudo/su)",
                ));
            }
            let mut c = AdhocCredentials::ssh(user.clone(), SecretString::from(pass.clone()));
            if p.elevate_privileges_with != "Nothing" {
                c = c.escalate(
                    p.elevate_privileges_with.clone(),
                    (!p.escalation_account.is_empty()).then(|| p.escalation_account.clone()),
                    (!p.escalation_password.is_empty())
                        .then(|| SecretString::from(p.escalation_password.clone())),
                );
            }
            Some(c)
        }
        _ => {
            return Err(ToolError::new(
                "missing_credentials",
                "an authenticated scan needs credential_profile, or both ssh_username and ssh_password",
            )
            .hint("prefer credential_profile: ask the operator which profiles exist"));
        }
    };
    let s = app
        .queue()
        .submit(
            principal.as_str(),
            req,
            credentials,
            p.idempotency_key.as_deref(),
        )
        .await
        .map_err(queue_error)?;
    record_submission(&s);
    Ok(submitted(s, url))
}

fn record_submission(s: &nessus_queue::Submitted) {
    if !s.idempotent {
        metrics::counter!(
            crate::telemetry::SCANS,
            "scan_type" => s.task.scan_type.as_str(),
            "status" => "queued"
        )
        .increment(1);
        tracing::info!(
            task_id = %s.task.task_id,
            trace_id = %s.task.trace_id,
            pool = %s.task.pool,
            queue_position = s.queue_position,
            "scan_enqueued"
        );
    }
}

/// A task the principal may see, or "not found" (never reveals other principals' tasks).
pub(crate) async fn visible_task(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<nessus_queue::TaskView, ToolError> {
    let view = app
        .queue()
        .get(task_id)
        .await
        .map_err(queue_error)?
        .ok_or_else(|| ToolError::task_not_found(task_id))?;
    if app.can_see(principal, &view.task) {
        Ok(view)
    } else {
        Err(ToolError::task_not_found(task_id))
    }
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
    ScanStatus {
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
    }
}

pub(crate) async fn scan_status(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<ScanStatus, ToolError> {
    Ok(status_of(visible_task(app, principal, task_id).await?))
}

pub(crate) async fn list_tasks(
    app: &App,
    principal: &Principal,
    p: ListTasks,
) -> Result<TaskList, ToolError> {
    if p.limit <= 0 {
        return Ok(TaskList {
            tasks: Vec::new(),
            total: 0,
            next_cursor: None,
        });
    }
    let limit = usize::try_from(p.limit.min(1000)).unwrap_or(1000);
    let mut q = nessus_queue::ListTasks::new(limit);
    if let Some(s) = p.status_filter.as_deref().filter(|s| !s.is_empty()) {
        q = q.status(s.parse().map_err(queue_error)?);
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
    let page = app.queue().list(q).await.map_err(queue_error)?;
    let tasks: Vec<TaskItem> = page
        .tasks
        .into_iter()
        .filter(|t| app.can_see(principal, t))
        .map(|t| TaskItem {
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
        })
        .collect();
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
    visible_task(app, principal, task_id).await?;
    let outcome = app.queue().cancel(task_id).await.map_err(queue_error)?;
    let after = visible_task(app, principal, task_id).await?;
    let message = match outcome {
        nessus_queue::CancelOutcome::Cancelled => "Cancelled before it started.".to_owned(),
        nessus_queue::CancelOutcome::CancelRequested => {
            "Cancel requested; the worker is stopping the scan. get_scan_status shows cancelled once it has."
                .to_owned()
        }
        nessus_queue::CancelOutcome::AlreadyFinished => format!(
            "Already finished ({}); nothing changed.",
            after.task.status
        ),
        _ => "Cancel recorded.".to_owned(),
    };
    tracing::info!(task_id, ?outcome, "cancel_scan");
    Ok(CancelResult {
        task_id: task_id.to_owned(),
        status: after.task.status.to_string(),
        message,
    })
}

/// Scans running per instance key (`pool:instance`), from the queue.
async fn active_by_instance(
    app: &App,
    pool: Option<&str>,
) -> Result<BTreeMap<String, u64>, ToolError> {
    let mut q = nessus_queue::ListTasks::new(1000).status(TaskStatus::Running);
    if let Some(p) = pool {
        q = q.pool(p.to_owned());
    }
    let page = app.queue().list(q).await.map_err(queue_error)?;
    let mut out = BTreeMap::new();
    for t in page.tasks {
        if let Some(i) = &t.instance {
            *out.entry(format!("{}:{i}", t.pool)).or_insert(0) += 1;
        }
    }
    Ok(out)
}

fn pct(active: u64, max: u64) -> f64 {
    if max == 0 {
        0.0
    } else {
        (active as f64 / max as f64 * 1000.0).round() / 10.0
    }
}

pub(crate) async fn list_scanners(app: &App, pool: Option<&str>) -> Result<ScannerList, ToolError> {
    let active = active_by_instance(app, pool).await?;
    let config = app.config();
    let scanners: Vec<ScannerInfo> = config
        .instances()
        .filter(|i| pool.is_none_or(|p| i.pool() == p))
        .map(|i| {
            let a = active.get(&i.key()).copied().unwrap_or(0);
            let max = u64::from(i.max_concurrent_scans());
            ScannerInfo {
                scanner_type: scanner_type(i.pool()),
                pool: i.pool().to_owned(),
                instance_id: i.instance_id().to_owned(),
                instance_key: i.key(),
                name: i.name().to_owned(),
                url: i.display_url(),
                enabled: true,
                max_concurrent_scans: i.max_concurrent_scans(),
                active_scans: a,
                available_capacity: max.saturating_sub(a),
                utilization_pct: pct(a, max),
            }
        })
        .collect();
    Ok(ScannerList {
        total: scanners.len(),
        scanners,
        pools: config.pool_names().into_iter().map(str::to_owned).collect(),
    })
}

pub(crate) fn list_pools(app: &App) -> PoolList {
    let config = app.config();
    PoolList {
        pools: config.pool_names().into_iter().map(str::to_owned).collect(),
        default_pool: config.server().default_pool().to_owned(),
    }
}

pub(crate) async fn pool_status(app: &App, pool: Option<&str>) -> Result<PoolStatus, ToolError> {
    let name = pool
        .map(str::to_owned)
        .unwrap_or_else(|| app.config().server().default_pool().to_owned());
    let active = active_by_instance(app, Some(&name)).await?;
    let config = app.config();
    let scanners: Vec<PoolScanner> = config
        .pool(&name)
        .map(|p| p.instances().to_vec())
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let a = active.get(&i.key()).copied().unwrap_or(0);
            let max = u64::from(i.max_concurrent_scans());
            PoolScanner {
                instance_key: i.key(),
                active_scans: a,
                max_concurrent_scans: i.max_concurrent_scans(),
                utilization_pct: pct(a, max),
                available_capacity: max.saturating_sub(a),
            }
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
        utilization_pct: pct(total_active, total_capacity),
        scanners,
    })
}

pub(crate) async fn queue_status(app: &App, pool: Option<&str>) -> Result<QueueStatus, ToolError> {
    let name = pool
        .map(str::to_owned)
        .unwrap_or_else(|| app.config().server().default_pool().to_owned());
    let s = app.queue().queue_status(&name).await.map_err(queue_error)?;
    Ok(QueueStatus {
        pool: s.pool,
        queue_depth: s.queue_depth,
        running: s.running,
        dlq_size: s.dlq_size,
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

fn schema_error(e: nessus_schema::Error) -> ToolError {
    ToolError::new("invalid_query", e.to_string())
        .hint("see the nessus://schema/fields resource for field names, operators and profiles")
}

/// Open a completed task's store, with the predecessor's error order.
async fn completed_store(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<Arc<nessus_schema::Store>, ToolError> {
    let view = visible_task(app, principal, task_id).await?;
    if view.task.status != TaskStatus::Completed {
        return Err(ToolError::new(
            "not_completed",
            format!("Scan not completed yet (status: {})", view.task.status),
        )
        .hint("poll get_scan_status until status is completed"));
    }
    let results_dir = app.config().server().results_dir().to_owned();
    let id = task_id.to_owned();
    let cache = app.stores();
    tokio::task::spawn_blocking(move || cache.get(&results_dir, &id))
        .await
        .map_err(ToolError::internal)?
        .map_err(|e| match e {
            crate::results::OpenError::Missing => {
                ToolError::new("results_not_found", "Scan results not found").hint(
                    "the results were deleted by housekeeping or never ingested; resubmit the scan",
                )
            }
            crate::results::OpenError::Broken(e) => ToolError::internal(e),
        })
}

pub(crate) async fn scan_results(
    app: &App,
    principal: &Principal,
    p: GetScanResults,
) -> Result<String, ToolError> {
    if p.schema_profile != "brief" && p.custom_fields.is_some() {
        return Err(ToolError::new(
            "invalid_query",
            "Cannot specify both schema_profile and custom_fields",
        ));
    }
    if p.page < 0 {
        return Err(ToolError::invalid(
            "page",
            "must be 0 (everything) or a page number from 1",
        ));
    }
    let params = nessus_schema::QueryParams {
        schema_profile: Some(p.schema_profile),
        custom_fields: p.custom_fields,
        filters: p.filters.map(serde_json::Value::Object),
        page: Some(u32::try_from(p.page).unwrap_or(u32::MAX)),
        page_size: Some(u32::try_from(p.page_size.max(0)).unwrap_or(u32::MAX)),
        cursor: p.cursor.filter(|c| !c.is_empty()),
        ..Default::default()
    };
    let query = nessus_schema::Query::from_params(&params).map_err(schema_error)?;
    let store = completed_store(app, principal, &p.task_id).await?;
    let (text, info) = tokio::task::spawn_blocking(move || store.page_string(&query))
        .await
        .map_err(ToolError::internal)?
        .map_err(schema_error)?;
    tracing::debug!(task_id = %p.task_id, returned = info.returned, bytes = info.bytes_written, "results page");
    Ok(text)
}

pub(crate) async fn diff(
    app: &App,
    principal: &Principal,
    p: DiffScans,
) -> Result<DiffResult, ToolError> {
    let old = completed_store(app, principal, &p.base_task_id).await?;
    let new = completed_store(app, principal, &p.compare_task_id).await?;
    let min = p.min_severity.unwrap_or(1);
    let limit = p.limit.unwrap_or(100).clamp(1, 1000);
    let d = tokio::task::spawn_blocking(move || nessus_schema::diff(&old, &new))
        .await
        .map_err(ToolError::internal)?
        .map_err(schema_error)?;
    let keep = |s: Option<u8>| s.unwrap_or(0) >= min;
    let new_f: Vec<_> = d.new.into_iter().filter(|e| keep(e.severity)).collect();
    let fixed: Vec<_> = d.fixed.into_iter().filter(|e| keep(e.severity)).collect();
    let changed: Vec<_> = d
        .severity_changed
        .into_iter()
        .filter(|c| keep(c.old_severity) || keep(c.new_severity))
        .collect();
    let unchanged = d.unchanged.iter().filter(|e| keep(e.severity)).count();
    Ok(DiffResult {
        counts: DiffCounts {
            new: new_f.len(),
            fixed: fixed.len(),
            severity_changed: changed.len(),
            unchanged,
        },
        truncated: new_f.len() > limit || fixed.len() > limit || changed.len() > limit,
        new: new_f.iter().take(limit).map(json_of).collect(),
        fixed: fixed.iter().take(limit).map(json_of).collect(),
        severity_changed: changed.iter().take(limit).map(json_of).collect(),
        base_task_id: p.base_task_id,
        compare_task_id: p.compare_task_id,
        min_severity: min,
    })
}

fn json_of<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}
