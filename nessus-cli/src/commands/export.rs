//! `nessus-cli export TASK --format jsonl|csv|sarif|html`: a completed task's findings,
//! through the service's `export_plan` / `export_part`, the calls behind the MCP tool
//! `export_results` and its resources (same tenancy, filters, caps and audit). JSON-NL
//! and CSV parts are joined in order (CSV under one header row); SARIF and HTML are one
//! document each.

use std::fs::File;
use std::io::{self, BufWriter, Write};

use anyhow::Context;
use nessus_queue::service::{ExportFormat, Principal, QueryParams};
use serde_json::json;

use crate::cli::{ExportArgs, ExportFormatArg, GlobalArgs};
use crate::commands::{print_json, queue};
use crate::exit::CliError;

fn format(arg: ExportFormatArg) -> ExportFormat {
    match arg {
        ExportFormatArg::Jsonl => ExportFormat::JsonLines,
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Sarif => ExportFormat::Sarif,
        ExportFormatArg::Html => ExportFormat::Html,
    }
}

pub(crate) fn run(global: &GlobalArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let filters = match &args.filters {
        None => None,
        Some(text) => {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
                CliError::Usage(format!(
                    "--filters is not JSON: {e}; give an object such as \
                                         '{{\"severity\": \">=high\"}}'"
                ))
            })?;
            if !v.is_object() {
                return Err(CliError::Usage(
                    "--filters takes a JSON object, e.g. '{\"severity\": \">=high\"}'".to_owned(),
                )
                .into());
            }
            Some(v)
        }
    };
    let params = QueryParams {
        schema_profile: Some(args.profile.clone()),
        filters,
        sort: args.sort.clone(),
        ..QueryParams::default()
    };
    let format = format(args.format);
    // The operator on the host, as for the other queue commands.
    let principal = Principal::local();
    let (rt, service) = queue::open(global)?;
    let plan = rt
        .block_on(service.export_plan(&principal, &args.task, &params, format, None))
        .map_err(anyhow::Error::new)?;

    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(BufWriter::new(File::create(path).map_err(|e| {
            CliError::Input(format!("cannot write {}: {e}", path.display()))
        })?)),
        None => Box::new(BufWriter::new(io::stdout().lock())),
    };
    let mut bytes = 0u64;
    for part in 1..=plan.parts {
        let body = rt
            .block_on(service.export_part(
                &principal,
                &args.task,
                &params,
                format,
                plan.part_size,
                part,
            ))
            .map_err(anyhow::Error::new)?;
        // Every CSV part starts with the same header row (column names, never quoted
        // across lines): keep the first part's only.
        let body = if format == ExportFormat::Csv && part > 1 {
            let at = body
                .windows(2)
                .position(|w| w == b"\r\n")
                .map_or(body.len(), |i| i + 2);
            body[at..].to_vec()
        } else {
            body
        };
        bytes += body.len() as u64;
        out.write_all(&body).context("cannot write the export")?;
    }
    out.flush().context("cannot write the export")?;
    drop(out);
    if let Some(path) = &args.output {
        let summary = json!({
            "task_id": args.task,
            "format": format.name(),
            "findings": plan.findings,
            "parts": plan.parts,
            "bytes": bytes,
            "output": path.display().to_string(),
        });
        if global.json {
            return print_json(&summary);
        }
        eprintln!(
            "wrote {} finding(s) as {} ({bytes} bytes) to {}",
            plan.findings,
            format.name(),
            path.display()
        );
    }
    Ok(())
}
