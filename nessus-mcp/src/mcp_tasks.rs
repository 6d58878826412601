//! MCP Tasks (2026-07-28 `io.modelcontextprotocol/tasks`) backed by our queue.
//!
//! A task-augmented scan submission returns our queue task id as the MCP task
//! id, so `tasks/get` and `tasks/cancel` read and write the durable queue task:
//! they survive restarts and work on any server instance, which rmcp's
//! in-memory `TaskManager` would not.

use rmcp::{
    ErrorData,
    model::{CallToolResult, DetailedTask, GetTaskResult, Task, TaskPayload, TaskStatus},
};

use crate::{app::App, auth::Principal, ops};

/// Suggested polling interval for `tasks/get`.
pub(crate) const POLL_MS: u64 = 5_000;

fn not_found(task_id: &str) -> ErrorData {
    ErrorData::invalid_params(
        format!("unknown task {task_id}"),
        Some(serde_json::json!({ "taskId": task_id })),
    )
}

/// `tasks/get`: the queue task as an MCP task; a finished scan carries the
/// `get_scan_status` answer as its result.
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
    let status = ops::status_of(view);
    let message = match state {
        nessus_queue::TaskStatus::Queued => format!(
            "queued at position {}",
            status
                .queue_position
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        ),
        nessus_queue::TaskStatus::Running => match status.progress {
            Some(p) => format!("running, {p}% done"),
            None => "running".to_owned(),
        },
        other => other.to_string(),
    };
    let payload = match state {
        nessus_queue::TaskStatus::Queued | nessus_queue::TaskStatus::Running => {
            TaskPayload::Working
        }
        nessus_queue::TaskStatus::Cancelled => TaskPayload::Cancelled,
        other => {
            // A failed or timed-out scan is a completed tool call whose result
            // is an error the model can read (SEP-2663 "completed" includes isError).
            let value = serde_json::to_value(&status)
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
            let mut result = CallToolResult::structured(value);
            if other != nessus_queue::TaskStatus::Completed {
                result.is_error = Some(true);
            }
            let object = match serde_json::to_value(&result) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
            TaskPayload::Completed { result: object }
        }
    };
    let task = Task::new(task_id, TaskStatus::Working, created, updated)
        .with_status_message(message)
        .with_poll_interval_ms(POLL_MS);
    Ok(GetTaskResult::new(DetailedTask::new(task, payload)))
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
