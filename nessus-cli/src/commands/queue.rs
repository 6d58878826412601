//! The queue administration commands: `queue status`, `tasks`, `dlq`, `housekeeping`.
//!
//! They open the same backend the server and workers use: the SQLite file
//! `{data_dir}/queue.sqlite3`, Redis with `--redis-url`, or the config's backend. The CLI never creates a queue
//! database: a missing file is an input error, so a mistyped `--data-dir` cannot silently
//! show an empty queue.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;
use nessus_queue::service::{Principal, Service};
use nessus_queue::{CancelOutcome, DlqPurge, ListTasks, Task, TaskPage, TaskStatus};
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::cli::{
    ApprovalsCommand, DlqCommand, GlobalArgs, HousekeepingCommand, QueueCommand, SchedulesCommand,
    TasksCommand,
};
use crate::commands::backend::{self, Missing};
use crate::commands::{print_json, print_text};
use crate::exit::CliError;
use crate::terminal::safe;

pub(crate) fn run_queue(global: &GlobalArgs, cmd: &QueueCommand) -> anyhow::Result<()> {
    let (rt, service) = open(global)?;
    let queue = service.queue();
    match cmd {
        QueueCommand::Status { pool } => {
            let status = rt.block_on(queue.queue_status(pool))?;
            if global.json {
                return print_json(&status);
            }
            let mut text = format!(
                "pool {}: {} queued, {} running, {} in the DLQ (at {})\n",
                safe(&status.pool),
                status.queue_depth,
                status.running,
                status.dlq_size,
                short_time(status.timestamp)
            );
            if !status.next_tasks.is_empty() {
                text.push_str("next tasks:\n");
                text.push_str(&task_table(&status.next_tasks));
            }
            print_text(&text)
        }
    }
}

pub(crate) fn run_tasks(global: &GlobalArgs, cmd: &TasksCommand) -> anyhow::Result<()> {
    let (rt, service) = open(global)?;
    let queue = service.queue();
    match cmd {
        TasksCommand::List {
            status,
            pool,
            target,
            limit,
            cursor,
        } => {
            let mut query = ListTasks::new(*limit);
            if let Some(status) = status {
                let status: TaskStatus = status.parse().map_err(|_| {
                    CliError::Usage(format!(
                        "unknown status {status:?} (queued, running, completed, failed, timeout, cancelled)"
                    ))
                })?;
                query = query.status(status);
            }
            if let Some(pool) = pool {
                query = query.pool(pool.clone());
            }
            if let Some(target) = target {
                query = query.target(target.clone());
            }
            if let Some(cursor) = cursor {
                query = query.cursor(cursor.clone());
            }
            let page = rt.block_on(queue.list(query))?;
            print_page(global, &page)
        }
        TasksCommand::Show { task_id } => {
            let view = rt
                .block_on(queue.get(task_id))?
                .ok_or_else(|| CliError::NotFound(format!("no task {task_id}")))?;
            if global.json {
                return print_json(&view);
            }
            print_text(&details(
                &view.task,
                view.queue_position,
                view.estimated_wait_minutes,
            ))
        }
        TasksCommand::Cancel { task_id } => {
            // An unknown task is the service's NotFound (exit 4).
            let outcome = rt.block_on(service.cancel(&operator(), task_id))?.outcome;
            let (word, text) = match outcome {
                CancelOutcome::Cancelled => ("cancelled", format!("task {task_id} cancelled")),
                CancelOutcome::CancelRequested => (
                    "cancel_requested",
                    format!("task {task_id} is running: its worker will stop the scan"),
                ),
                CancelOutcome::AlreadyFinished => (
                    "already_finished",
                    format!("task {task_id} had already finished: nothing changed"),
                ),
                _ => ("unknown", format!("task {task_id}: {outcome:?}")),
            };
            if global.json {
                return print_json(&serde_json::json!({"task_id": task_id, "outcome": word}));
            }
            print_text(&format!("{text}\n"))
        }
    }
}

pub(crate) fn run_dlq(global: &GlobalArgs, cmd: &DlqCommand) -> anyhow::Result<()> {
    let (rt, service) = open(global)?;
    let queue = service.queue();
    match cmd {
        DlqCommand::List {
            pool,
            limit,
            cursor,
        } => {
            let page = rt.block_on(queue.dlq_list(pool.as_deref(), *limit, cursor.clone()))?;
            print_page(global, &page)
        }
        DlqCommand::Show { task_id } => {
            let task = rt
                .block_on(queue.dlq_get(task_id))?
                .ok_or_else(|| CliError::NotFound(format!("no task {task_id} in the DLQ")))?;
            if global.json {
                return print_json(&task);
            }
            print_text(&details(&task, None, None))
        }
        DlqCommand::Retry { task_id } => {
            // The service answers NotFound (exit 4) for a task not in the DLQ, and
            // re-checks the targets against the policy in force now.
            let task = rt.block_on(service.dlq_retry(&operator(), task_id))?;
            if global.json {
                return print_json(&task);
            }
            print_text(&format!(
                "task {} requeued in pool {} (attempt {})\n",
                safe(&task.task_id),
                safe(&task.pool),
                task.attempts + 1
            ))
        }
        DlqCommand::Purge {
            task_id,
            before,
            all,
            yes,
        } => {
            if !yes {
                return Err(CliError::Usage(
                    "dlq purge deletes tasks for good: add --yes to confirm".to_owned(),
                )
                .into());
            }
            let what = match (task_id, before, all) {
                (Some(id), _, _) => DlqPurge::Id(id.clone()),
                (None, Some(time), _) => DlqPurge::Before(time.parse().map_err(|e| {
                    CliError::Usage(format!("--before {time:?} is not an RFC 3339 time: {e}"))
                })?),
                _ => DlqPurge::All,
            };
            let purged = rt.block_on(service.dlq_purge(&operator(), what))?;
            if global.json {
                return print_json(&serde_json::json!({ "purged": purged }));
            }
            print_text(&format!("purged {purged} task(s) from the DLQ\n"))
        }
    }
}

pub(crate) fn run_approvals(global: &GlobalArgs, cmd: &ApprovalsCommand) -> anyhow::Result<()> {
    use nessus_queue::service::Decision;
    let (rt, service) = open(global)?;
    let (task_id, reason, decision) = match cmd {
        ApprovalsCommand::List {
            pool,
            limit,
            cursor,
        } => {
            let page = rt.block_on(service.approvals(
                &operator(),
                pool.as_deref(),
                *limit,
                cursor.clone(),
            ))?;
            if global.json {
                return print_json(&page);
            }
            let mut text = String::new();
            for t in &page.tasks {
                text.push_str(&format!(
                    "{}  {}  {}  {}  expires {}\n    targets: {}\n    why: {}\n",
                    safe(&t.task_id),
                    safe(&t.pool),
                    safe(&t.principal),
                    t.scan_type,
                    t.approval_expires_at
                        .map_or_else(|| "-".to_owned(), |e| e.to_string()),
                    safe(&t.targets),
                    safe(t.approval_reason.as_deref().unwrap_or("-")),
                ));
            }
            if page.tasks.is_empty() {
                text.push_str("no scans waiting for approval\n");
            }
            if let Some(c) = &page.next_cursor {
                text.push_str(&format!("next page: --cursor {}\n", safe(c)));
            }
            return print_text(&text);
        }
        ApprovalsCommand::Approve { task_id, reason } => (task_id, reason, Decision::Approve),
        ApprovalsCommand::Reject { task_id, reason } => (task_id, reason, Decision::Reject),
    };
    let task = rt.block_on(service.review(&operator(), task_id, decision, reason))?;
    if global.json {
        return print_json(&task);
    }
    print_text(&format!(
        "task {} {} (status {})\n",
        safe(&task.task_id),
        match decision {
            Decision::Approve => "approved",
            _ => "rejected",
        },
        task.status
    ))
}

/// `nessus-cli webhooks list`: delivery status from the outbox (never a secret).
pub(crate) fn run_webhooks(
    global: &GlobalArgs,
    cmd: &crate::cli::WebhooksCommand,
) -> anyhow::Result<()> {
    let (rt, service) = open(global)?;
    let crate::cli::WebhooksCommand::List { limit } = cmd;
    let all = rt.block_on(service.queue().list_deliveries(*limit))?;
    // The receiver URL may carry a token (userinfo or query): never shown whole.
    let all: Vec<_> = all
        .into_iter()
        .map(|mut d| {
            d.url = nessus_core::display_url(&d.url);
            d
        })
        .collect();
    if global.json {
        return print_json(&all);
    }
    let mut text = String::new();
    for d in &all {
        text.push_str(&format!(
            "{}  {}  task {}  {}  attempts {}  {}  {}{}\n",
            safe(&d.id),
            d.event.as_str(),
            safe(&d.task_id),
            match d.state {
                nessus_queue::hooks::DeliveryState::Pending => "pending",
                nessus_queue::hooks::DeliveryState::Delivered => "delivered",
                nessus_queue::hooks::DeliveryState::Failed => "failed",
            },
            d.attempts,
            safe(&d.url),
            d.last_status
                .map(|c| format!("HTTP {c}"))
                .unwrap_or_default(),
            d.last_error
                .as_deref()
                .map(|e| format!(" ({})", safe(e)))
                .unwrap_or_default(),
        ));
    }
    if all.is_empty() {
        text.push_str("no webhook deliveries\n");
    }
    print_text(&text)
}

pub(crate) fn run_schedules(global: &GlobalArgs, cmd: &SchedulesCommand) -> anyhow::Result<()> {
    use nessus_queue::service::{ScanCredentials, ScanRequest, ScheduleSpec};
    let (rt, service) = open(global)?;
    let admin = operator();
    let s = match cmd {
        SchedulesCommand::List => {
            let all = rt.block_on(service.list_schedules(&admin))?;
            if global.json {
                return print_json(&all);
            }
            let mut text = String::new();
            for s in &all {
                text.push_str(&format!(
                    "{}  {}  {}  '{}' {}  {}  next {}  targets {}\n",
                    safe(&s.schedule_id),
                    safe(&s.principal),
                    safe(&s.pool),
                    safe(&s.cron),
                    safe(&s.timezone),
                    if s.paused { "paused" } else { "active" },
                    s.next_slot,
                    safe(&s.targets),
                ));
            }
            if all.is_empty() {
                text.push_str("no schedules\n");
            }
            return print_text(&text);
        }
        SchedulesCommand::Show { schedule_id } => {
            rt.block_on(service.schedule(&admin, schedule_id))?
        }
        SchedulesCommand::Create {
            cron,
            timezone,
            targets,
            name,
            pool,
            scan_type,
            credential_profile,
            principal,
        } => {
            let scan_type: nessus_queue::ScanType = scan_type.parse()?;
            let mut req = ScanRequest::untrusted(targets.clone(), name.clone()).pool(pool.clone());
            if scan_type != nessus_queue::ScanType::Untrusted || credential_profile.is_some() {
                let creds = credential_profile
                    .clone()
                    .map_or(ScanCredentials::None, ScanCredentials::Profile);
                req = req.authenticated(scan_type, creds);
            }
            let owner = principal
                .as_deref()
                .map_or_else(operator, |p| Principal::new(p.to_owned()));
            rt.block_on(service.create_schedule(
                &owner,
                ScheduleSpec::new(req, cron.clone(), timezone.clone()),
            ))?
        }
        SchedulesCommand::Pause { schedule_id } => {
            rt.block_on(service.pause_schedule(&admin, schedule_id))?
        }
        SchedulesCommand::Resume { schedule_id } => {
            rt.block_on(service.resume_schedule(&admin, schedule_id))?
        }
        SchedulesCommand::Delete { schedule_id } => {
            let s = rt.block_on(service.delete_schedule(&admin, schedule_id))?;
            if global.json {
                return print_json(&serde_json::json!({"deleted": s.schedule_id}));
            }
            return print_text(&format!("schedule {} deleted\n", safe(&s.schedule_id)));
        }
    };
    if global.json {
        return print_json(&s);
    }
    print_text(&format!(
        "schedule {} ({}, owner {}): '{}' {}, next slot {}, last fired {}, last task {}{}\n",
        safe(&s.schedule_id),
        if s.paused { "paused" } else { "active" },
        safe(&s.principal),
        safe(&s.cron),
        safe(&s.timezone),
        s.next_slot,
        s.last_fired_slot
            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
        safe(s.last_task_id.as_deref().unwrap_or("-")),
        s.last_error
            .as_deref()
            .map_or_else(String::new, |e| format!(", last error: {}", safe(e))),
    ))
}

pub(crate) fn run_housekeeping(
    global: &GlobalArgs,
    cmd: &HousekeepingCommand,
) -> anyhow::Result<()> {
    let HousekeepingCommand::Run { dry_run } = cmd;
    // With --config the TTLs and the results root are the server's (see `open`).
    let (rt, service) = open(global)?;
    let report = rt.block_on(service.housekeep(*dry_run))?;
    if global.json {
        return print_json(&report);
    }
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = format!(
        "{verb} {} expired task(s) and {} expired audit event(s); {} expired idempotency key(s) removed; {} expired approval(s) {}\n",
        report.tasks.len(),
        report.audit_events,
        report.idempotency_keys,
        report.approvals_expired.len(),
        if report.dry_run {
            "would be cancelled"
        } else {
            "cancelled"
        }
    );
    for (id, status) in &report.tasks {
        text.push_str(&format!("  {} ({status})\n", safe(id)));
    }
    print_text(&text)
}

/// The CLI's caller: the operator on the host, an admin like the stdio transport.
fn operator() -> Principal {
    Principal::local()
}

/// Opens the backend on a single-threaded runtime (the CLI makes one call at a time).
pub(crate) fn open(global: &GlobalArgs) -> anyhow::Result<(Runtime, Service)> {
    let config = super::config::load(global)?;
    let rt = backend::current_thread()?;
    let service = backend::open_service(&rt, global, config, Missing::Refuse)?;
    Ok((rt, service))
}

fn print_page(global: &GlobalArgs, page: &TaskPage) -> anyhow::Result<()> {
    if global.json {
        return print_json(page);
    }
    if page.tasks.is_empty() {
        return print_text("no tasks\n");
    }
    let mut text = task_table(&page.tasks);
    if let Some(cursor) = &page.next_cursor {
        text.push_str(&format!("more: --cursor {cursor}\n"));
    }
    print_text(&text)
}

fn task_table(tasks: &[Task]) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "task id", "status", "pool", "targets", "created", "attempts", "error",
    ]);
    for task in tasks {
        table.add_row([
            safe(&task.task_id).into_owned(),
            task.status.to_string(),
            safe(&task.pool).into_owned(),
            safe(&task.targets).into_owned(),
            short_time(task.created_at),
            task.attempts.to_string(),
            safe(task.error_code.as_deref().unwrap_or_default()).into_owned(),
        ]);
    }
    format!("{table}\n")
}

/// Every field of a task, one per row, from its JSON form (so new fields show up).
fn details(task: &Task, position: Option<u64>, wait: Option<u64>) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED);
    if let Ok(Value::Object(fields)) = serde_json::to_value(task) {
        for (key, value) in fields {
            let shown = match value {
                Value::Null => continue,
                Value::String(s) => safe(&s).into_owned(),
                other => safe(&other.to_string()).into_owned(),
            };
            table.add_row([safe(&key).into_owned(), shown]);
        }
    }
    if let Some(position) = position {
        table.add_row(["queue_position".to_owned(), position.to_string()]);
    }
    if let Some(wait) = wait {
        table.add_row(["estimated_wait_minutes".to_owned(), wait.to_string()]);
    }
    format!("{table}\n")
}

fn short_time(time: Timestamp) -> String {
    time.strftime("%Y-%m-%d %H:%M:%S").to_string()
}
