//! `nessus-cli import FILE`: an existing `.nessus` file becomes a completed task in the
//! queue, with its findings store where the server looks (`{results}/{task_id}/store`),
//! so agents query it with `get_scan_status` / `get_scan_results` like any scan.
//!
//! The same lifecycle as the server's `import_scan` (nessus-queue's `begin_import_with`,
//! `finish_import`, `abort_import`): the file is ingested into a staging directory first
//! (a bad file never creates a task), the task is recorded in the reserved pool
//! `imported` (no worker serves it), the store is moved under the task id, and the task
//! is completed in one compare-and-set. If the store cannot be put in place the task is
//! marked failed (`import_failed`) rather than left queued.

use std::fs::File;
use std::path::Path;

use anyhow::Context;
use nessus_queue::{IMPORT_POOL, NewTask, ScanType, SchemaIngest};
use nessus_schema::Store;
use serde_json::json;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::commands::{backend, config, print_json, print_text};
use crate::exit::CliError;
use crate::progress;

pub(crate) fn run(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<()> {
    // Refused rather than ignored: a script that asks for another pool would otherwise
    // look for the task where it is not.
    if let Some(pool) = args.pool.as_deref().filter(|p| *p != IMPORT_POOL) {
        return Err(CliError::Usage(format!(
            "--pool {pool}: imports are always recorded in pool '{IMPORT_POOL}', which no \
             worker serves; drop --pool"
        ))
        .into());
    }
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

    // 2. Record the import (in the pool no worker serves).
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
    // Nothing runs, so the task is not an authenticated *scan* (that would need
    // credentials); `--authenticated` decides the results' authentication status.
    let request = NewTask::new(ScanType::Untrusted, IMPORT_POOL, targets, name)
        .description(format!("imported from {}", file_name(&args.file)));
    let completion = SchemaIngest::completion(&summary, args.authenticated);

    let rt = backend::current_thread()?;
    let queue = backend::open_queue(&rt, global, config.as_ref(), backend::Missing::Create)?;
    let task = rt.block_on(queue.begin_import_with(&args.principal, request))?;

    // 3. Results into place, then the task to `completed`. On failure the task is marked
    // failed, so it neither waits forever nor claims results it does not have.
    let task_dir = results_root.join(&task.task_id);
    let placed = std::fs::create_dir_all(&task_dir)
        .and_then(|()| std::fs::rename(staging.path().join("store"), task_dir.join("store")))
        .with_context(|| format!("cannot move the findings store into {}", task_dir.display()));
    let finished = match placed {
        Ok(()) => rt
            .block_on(queue.finish_import(&task.task_id, completion))
            .map_err(anyhow::Error::from),
        Err(error) => Err(error),
    };
    let done = match finished {
        Ok(done) => done,
        Err(error) => {
            if let Err(abort) = rt.block_on(queue.abort_import(
                &task.task_id,
                "import_failed",
                &format!("{error:#}"),
            )) {
                eprintln!(
                    "warning: task {} could not be marked failed: {abort}",
                    task.task_id
                );
            }
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

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
