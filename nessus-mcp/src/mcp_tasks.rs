//! MCP Tasks (2026-07-28 `io.modelcontextprotocol/tasks`) backed by our queue.
//!
//! A task-augmented scan submission returns our queue task id as the MCP task
//! id, so `tasks/get` and `tasks/cancel` read and write the durable queue task:
//! they survive restarts and work on any server instance, which rmcp's
//! in-memory `TaskManager` would not. The handle's timestamps are the queue
//! task's, so the handle and every `tasks/get` agree.
//!
//! A finished task's result is what the original `tools/call` would have
//! answered, so it validates against that tool's `outputSchema`: the
//! submission fields (`scanner_url`, `queue_position`, …) with the status
//! fields of `get_scan_status` as extra properties.

use rmcp::{
    ErrorData,
    model::{
        CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, GetTaskResult, Task,
        TaskPayload, TaskStatus, object,
    },
};
use serde_json::{Value, json};

use crate::{app::App, auth::Principal, dto::ScanSubmitted, ops};

/// Suggested polling interval for `tasks/get`.
pub(crate) const POLL_MS: u64 = 5_000;

/// What a task-mode client does next (instead of the tools' "poll get_scan_status").
const FOLLOW: &str = "tasks/get follows it, tasks/cancel stops it";

fn not_found(task_id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown task {task_id}"),
        Some(json!({ "taskId": task_id })),
    )
}

fn internal(e: impl std::fmt::Display) -> ErrorData {
    ErrorData::internal_error(e.to_string(), None)
}

fn queued_message(position: u64, wait_minutes: u64) -> String {
    let wait = match wait_minutes {
        0 => "a scanner should start it shortly".to_owned(),
        m => format!("about {m} min until a scanner starts it"),
    };
    format!("queued at position {position}, {wait}; {FOLLOW}")
}

/// The handle a task-augmented submission answers with.
pub(crate) fn handle(submitted: &ScanSubmitted) -> CreateTaskResult {
    let message = if submitted.status == "queued" {
        queued_message(submitted.queue_position, submitted.estimated_wait_minutes)
    } else {
        format!("{}; {FOLLOW}", submitted.status)
    };
    let task = Task::new(
        submitted.task_id.clone(),
        TaskStatus::Working,
        submitted.created_at.to_string(),
        submitted.updated_at.to_string(),
    )
    .with_poll_interval_ms(POLL_MS)
    .with_status_message(message);
    CreateTaskResult::new(task)
}

/// `tasks/get`: the queue task as an MCP task; a finished scan carries the
/// submission's result (see the module docs).
pub(crate) async fn get(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<GetTaskResult, ErrorData> {
    let view = ops::visible_task(app, principal, task_id)
        .await
        .map_err(|_| not_found(task_id))?;
    let created = view.task.created_at.to_string();
    let updated = view.task.updated_at.to_string();
    let state = view.task.status;
    let scanner_url = app.service().pinned_url(&view.task);
    let status = ops::status_of(view);
    let message = match state {
        nessus_queue::TaskStatus::Queued => queued_message(
            status.queue_position.unwrap_or(0),
            status.estimated_wait_minutes.unwrap_or(0),
        ),
        nessus_queue::TaskStatus::Running => match status.progress {
            Some(p) => format!("running, {p}% done; {FOLLOW}"),
            None => format!("running; {FOLLOW}"),
        },
        nessus_queue::TaskStatus::Completed => {
            "completed; read the findings with get_scan_results".to_owned()
        }
        nessus_queue::TaskStatus::PendingApproval => format!(
            "waiting for an admin's approval: {}; {FOLLOW}",
            status
                .approval_reason
                .as_deref()
                .unwrap_or("pool approval rules")
        ),
        other => match &status.error_message {
            Some(e) => format!("{other}: {e}"),
            None => other.to_string(),
        },
    };
    let payload = match state {
        nessus_queue::TaskStatus::Queued
        | nessus_queue::TaskStatus::Running
        | nessus_queue::TaskStatus::PendingApproval => TaskPayload::Working,
        nessus_queue::TaskStatus::Cancelled => TaskPayload::Cancelled,
        other => {
            let mut value = object(serde_json::to_value(&status).map_err(internal)?);
            // The submission's fields that get_scan_status lacks; a finished
            // task no longer waits.
            value.insert("scanner_url".to_owned(), json!(scanner_url));
            value.insert("queue_position".to_owned(), json!(0));
            value.insert("estimated_wait_minutes".to_owned(), json!(0));
            value.insert("message".to_owned(), json!(message));
            value.insert("idempotent".to_owned(), json!(false));
            let result = if other == nessus_queue::TaskStatus::Completed {
                CallToolResult::structured(Value::Object(value))
            } else {
                // A failed or timed-out scan is a completed tool call whose
                // result is an error the model can read (SEP-2663 "completed"
                // includes isError): the text says what happened and what to do.
                let error = json!({
                    "error": message,
                    "error_code": status.error_code.clone().unwrap_or_else(|| format!("scan_{other}")),
                    "hint": status.next_step,
                });
                let mut r = CallToolResult::structured(Value::Object(value));
                r.content = vec![ContentBlock::text(error.to_string())];
                r.is_error = Some(true);
                r
            };
            TaskPayload::Completed {
                result: object(serde_json::to_value(&result).map_err(internal)?),
            }
        }
    };
    let task = Task::new(task_id, TaskStatus::Working, created, updated)
        .with_status_message(message)
        .with_poll_interval_ms(POLL_MS);
    Ok(GetTaskResult::new(DetailedTask::new(task, payload)))
}

/// `tasks/update`: our scans never request input, so there is nothing to
/// deliver; a visible task is acknowledged, an unknown one refused.
pub(crate) async fn update(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<(), ErrorData> {
    ops::visible_task(app, principal, task_id)
        .await
        .map(|_| ())
        .map_err(|_| not_found(task_id))
}

/// `tasks/cancel`: cancels the scan (queued at once, running via its worker).
pub(crate) async fn cancel(
    app: &App,
    principal: &Principal,
    task_id: &str,
) -> Result<(), ErrorData> {
    ops::cancel(app, principal, task_id)
        .await
        .map(|_| ())
        .map_err(|_| not_found(task_id))
}
