//! The queue administration commands: `queue status`, `tasks`, `dlq`, `housekeeping`.
//!
//! They open the same backend the server and workers use: the SQLite file
//! `{data_dir}/queue.sqlite3`, or Redis with `--redis-url`. The CLI never creates a queue
//! database: a missing file is an input error, so a mistyped `--data-dir` cannot silently
//! show an empty queue.

use std::io::{self, Write};
use std::path::PathBuf;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::Timestamp;
use nessus_queue::{
    CancelOutcome, DlqPurge, ListTasks, Queue, QueueConfig, Task, TaskPage, TaskStatus,
};
use serde::Serialize;
use serde_json::Value;
use tokio::runtime::Runtime;

use crate::cli::{DlqCommand, GlobalArgs, HousekeepingCommand, QueueCommand, TasksCommand};
use crate::exit::CliError;

/// File name of the SQLite queue inside the data directory (the config default).
const SQLITE_FILE: &str = "queue.sqlite3";

pub(crate) fn run_queue(global: &GlobalArgs, cmd: &QueueCommand) -> anyhow::Result<()> {
    let (rt, queue) = open(global)?;
    match cmd {
        QueueCommand::Status { pool } => {
            let status = rt.block_on(queue.queue_status(pool))?;
            if global.json {
                return print_json(&status);
            }
            let mut text = format!(
                "pool {}: {} queued, {} running, {} in the DLQ (at {})\n",
                status.pool,
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
    let (rt, queue) = open(global)?;
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
            let outcome = rt.block_on(queue.cancel(task_id))?;
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
    let (rt, queue) = open(global)?;
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
            if rt.block_on(queue.dlq_get(task_id))?.is_none() {
                return Err(CliError::NotFound(format!("no task {task_id} in the DLQ")).into());
            }
            let task = rt.block_on(queue.dlq_retry(task_id))?;
            if global.json {
                return print_json(&task);
            }
            print_text(&format!(
                "task {} requeued in pool {} (attempt {})\n",
                task.task_id,
                task.pool,
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
            let purged = rt.block_on(queue.dlq_purge(what))?;
            if global.json {
                return print_json(&serde_json::json!({ "purged": purged }));
            }
            print_text(&format!("purged {purged} task(s) from the DLQ\n"))
        }
    }
}

pub(crate) fn run_housekeeping(
    global: &GlobalArgs,
    cmd: &HousekeepingCommand,
) -> anyhow::Result<()> {
    let HousekeepingCommand::Run { dry_run } = cmd;
    let (rt, queue) = open(global)?;
    let results_dir = global.data_dir.as_ref().map(|dir| dir.join("results"));
    let mut removal_errors = Vec::new();
    let report = rt.block_on(queue.housekeep(*dry_run, |task| {
        // A task's results go with it; a failure is reported but does not stop the sweep.
        if let Some(dir) = &results_dir {
            let task_dir = dir.join(&task.task_id);
            if task_dir.exists()
                && let Err(e) = std::fs::remove_dir_all(&task_dir)
            {
                removal_errors.push(format!("{}: {e}", task_dir.display()));
            }
        }
    }))?;
    for error in &removal_errors {
        tracing::warn!(%error, "could not remove a task's results");
    }
    if global.json {
        return print_json(&report);
    }
    let verb = if report.dry_run {
        "would delete"
    } else {
        "deleted"
    };
    let mut text = format!(
        "{verb} {} expired task(s); {} expired idempotency key(s) removed\n",
        report.tasks.len(),
        report.idempotency_keys
    );
    for (id, status) in &report.tasks {
        text.push_str(&format!("  {id} ({status})\n"));
    }
    print_text(&text)
}

/// Opens the backend on a single-threaded runtime (the CLI makes one call at a time).
fn open(global: &GlobalArgs) -> anyhow::Result<(Runtime, Queue)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let config = QueueConfig::default();
    let queue = match (&global.redis_url, &global.data_dir) {
        (Some(url), _) => rt
            .block_on(Queue::redis(url, config))
            .context("cannot open the Redis queue")?,
        (None, Some(dir)) => {
            let db: PathBuf = dir.join(SQLITE_FILE);
            if !db.is_file() {
                return Err(CliError::Input(format!(
                    "no queue database at {} (is --data-dir the server's data directory?)",
                    db.display()
                ))
                .into());
            }
            Queue::sqlite(&db, config)
                .with_context(|| format!("cannot open the queue database {}", db.display()))?
        }
        (None, None) => {
            return Err(CliError::Usage(
                "say which queue to use: --data-dir DIR (SQLite) or --redis-url URL \
                 (or NESSUS_DATA_DIR / NESSUS_REDIS_URL)"
                    .to_owned(),
            )
            .into());
        }
    };
    Ok((rt, queue))
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
            task.task_id.clone(),
            task.status.to_string(),
            task.pool.clone(),
            task.targets.clone(),
            short_time(task.created_at),
            task.attempts.to_string(),
            task.error_code.clone().unwrap_or_default(),
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
                Value::String(s) => s,
                other => other.to_string(),
            };
            table.add_row([key, shown]);
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

fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("cannot write to stdout")?;
    writeln!(out).context("cannot write to stdout")
}

fn print_text(text: &str) -> anyhow::Result<()> {
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("cannot write to stdout")
}
