//! `nessus-cli import FILE`: an existing `.nessus` file becomes a completed task in the
//! queue, with its findings store where the server looks, so agents query it with
//! `get_scan_status` / `get_scan_results` like any scan.
//!
//! The lifecycle is the service's (`nessus_queue::service::Service::import`), the same
//! function the server's `import_scan` calls: the same file makes the same task.

use std::fs::File;
use std::path::Path;

use nessus_queue::service::{ImportRequest, ImportSource, Principal};
use serde_json::json;

use crate::cli::{GlobalArgs, ImportArgs};
use crate::commands::{backend, config, print_json, print_text};
use crate::exit::CliError;
use crate::progress;

pub(crate) fn run(global: &GlobalArgs, args: &ImportArgs) -> anyhow::Result<()> {
    let config = config::load(global)?;
    if config.is_none() && global.data_dir.is_none() {
        return Err(CliError::Usage(
            "say where the results go: --config FILE or --data-dir DIR (or NESSUS_CONFIG / \
             NESSUS_DATA_DIR)"
                .to_owned(),
        )
        .into());
    }
    let file = File::open(&args.file)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", args.file.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let rt = backend::current_thread()?;
    let service = backend::open_service(&rt, global, config, backend::Missing::Create)?;

    let bar = progress::bytes_bar(size, "ingesting");
    let reader = Box::new(bar.wrap_read(file));
    let request = ImportRequest::new(ImportSource::Reader {
        reader,
        file_name: file_name(&args.file),
    })
    .name(args.name.clone())
    .pool(args.pool.clone())
    .authenticated(args.authenticated);
    let imported = rt
        .block_on(service.import(&Principal::new(args.principal.as_str()), request))
        .map_err(|e| match e {
            nessus_queue::Error::InvalidImport { .. } => {
                CliError::Input(format!("cannot import {}: {e}", args.file.display())).into()
            }
            nessus_queue::Error::Invalid {
                field: "pool",
                reason,
            } => CliError::Usage(format!("--pool {reason}")).into(),
            e => anyhow::Error::new(e),
        })?;
    bar.finish_and_clear();
    let (done, summary) = (&imported.task, &imported.summary);
    if global.json {
        return print_json(&json!({
            "task_id": done.task_id,
            "pool": done.pool,
            "principal": done.principal,
            "name": done.name,
            "status": done.status,
            "store": imported.store_dir,
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
        imported.store_dir.display()
    ))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
