//! `nessus-cli import FILE`: an existing `.nessus` file becomes a completed task in the
//! queue, with its findings store where the server looks (`{results}/{task_id}/store`),
//! so agents query it with `get_scan_status` / `get_scan_results` like any scan.
//!
//! nessus-queue has no "insert a finished task" call, so the import goes through the
//! same public steps a worker takes, minus the scanner: the file is ingested first (a
//! bad file never creates a task), the task is submitted pinned to the instance name
//! `imported` (no configured worker serves it, so none claims it), then moved to
//! `completed` with the task's own state machine (`claim` + `complete`) and stored with
//! the backend's compare-and-set. `started_at` is cleared so an import (which took no
//! scan time) does not drag the pool's ETA average down.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};
use nessus_queue::{NewTask, Queue, ScanType, SchemaIngest, Task};
use nessus_schema::Store;
use serde_json::json;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::commands::{backend, config, print_json, print_text};
use crate::exit::CliError;
use crate::progress;

/// The pin that keeps workers away from an import between submit and completion.
const IMPORT_INSTANCE: &str = "imported";

pub(crate) fn run(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let config = config::load(global)?;
    let results_root = backend::results_dir(global, config.as_ref()).ok_or_else(|| {
        CliError::Usage(
            "say where the results go: --config FILE or --data-dir DIR (or NESSUS_CONFIG / \
             NESSUS_DATA_DIR)"
                .to_owned(),
        )
    })?;
    let file = File::open(&args.file)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", args.file.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);

    // 1. Ingest next to its final place (same file system, so the move is a rename).
    std::fs::create_dir_all(&results_root)
        .with_context(|| format!("cannot create {}", results_root.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(&results_root)
        .with_context(|| format!("cannot create a directory in {}", results_root.display()))?;
    let bar = progress::bytes_bar(size, "ingesting");
    let reader = super::buffered(file, &bar);
    let store = Store::ingest(reader, &staging.path().join("store"))
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    bar.finish_and_clear();
    let summary = store.summary().clone();
    drop(store);

    // 2. Submit, pinned so no worker claims it.
    let pool = args
        .pool
        .clone()
        .or_else(|| {
            config
                .as_ref()
                .map(|c| c.server().default_pool().to_owned())
        })
        .unwrap_or_else(|| "nessus".to_owned());
    let name = args
        .name
        .clone()
        .or_else(|| summary.scan.report_name.clone())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| file_name(&args.file));
    let mut targets: Vec<&str> = summary.hosts.iter().map(|h| h.host.as_str()).collect();
    targets.dedup();
    let targets = if targets.is_empty() {
        "none".to_owned()
    } else {
        targets.join(",")
    };
    let scan_type = if args.authenticated {
        ScanType::Authenticated
    } else {
        ScanType::Untrusted
    };
    let request = NewTask::new(scan_type, pool, targets, name)
        .scanner_instance(IMPORT_INSTANCE)
        .description(format!("imported from {}", file_name(&args.file)));
    let completion = SchemaIngest::completion(&summary, args.authenticated);

    let rt = backend::current_thread()?;
    let queue = backend::open_queue(&rt, global, config.as_ref(), backend::Missing::Create)?;
    let submitted = rt.block_on(queue.submit(&args.principal, request, None, None))?;
    let task = submitted.task;

    // 3. Results into place, then the task to `completed`. On failure the queued task is
    // cancelled so it does not wait forever for a scanner that does not exist.
    let task_dir = results_root.join(&task.task_id);
    let finished = std::fs::create_dir_all(&task_dir)
        .and_then(|()| std::fs::rename(staging.path().join("store"), task_dir.join("store")))
        .with_context(|| format!("cannot move the findings store into {}", task_dir.display()))
        .and_then(|()| rt.block_on(complete(&queue, task.clone(), completion)));
    let done = match finished {
        Ok(done) => done,
        Err(error) => {
            rt.block_on(queue.cancel(&task.task_id)).ok();
            std::fs::remove_dir_all(&task_dir).ok();
            return Err(error);
        }
    };

    let store_dir = SchemaIngest::store_dir(&task_dir);
    if global.json {
        return print_json(&json!({
            "task_id": done.task_id,
            "pool": done.pool,
            "principal": done.principal,
            "name": done.name,
            "status": done.status,
            "store": store_dir,
            "authentication_status": done.authentication_status,
            "results_summary": done.results_summary,
            "validation_warnings": done.validation_warnings,
        }));
    }
    let c = summary.severity_counts;
    print_text(&format!(
        "imported {} as task {} (pool {}, owner {})\n  {} host(s); {} vulnerabilities ({} critical, {} high, {} medium, {} low) and {} informational finding(s)\n  findings store: {}\n",
        args.file.display(),
        done.task_id,
        done.pool,
        done.principal,
        summary.hosts_scanned,
        summary.total_vulnerabilities,
        c.critical,
        c.high,
        c.medium,
        c.low,
        c.info,
        store_dir.display()
    ))
}

/// queued → completed through the task's own transitions, stored with compare-and-set.
async fn complete(
    queue: &Queue,
    prev: Task,
    completion: nessus_queue::Completion,
) -> anyhow::Result<Task> {
    let now = Timestamp::now();
    let mut next = prev.clone();
    let token = next.claim(
        "nessus-cli-import",
        IMPORT_INSTANCE,
        SignedDuration::from_mins(5),
        now,
    )?;
    next.complete(token, completion, now)?;
    next.started_at = None;
    next.version = prev.version + 1;
    let stored = queue.backend().store(prev, next.clone()).await?;
    if !stored {
        anyhow::bail!(
            "task {} changed while it was being imported (a worker serving instance '{IMPORT_INSTANCE}' claimed it?)",
            next.task_id
        );
    }
    Ok(next)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
