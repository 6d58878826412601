//! `nessus-cli diff OLD NEW`: what changed between two scans of the same targets.

use std::io::{self, Write};
use std::path::Path;

use anyhow::Context;
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use nessus_schema::{DiffEntry, Fingerprint, IngestOptions, ScanDiff, Store};
use serde_json::{Map, Value, json};

use super::{Input, open_input};
use crate::cli::{DiffArgs, GlobalArgs};
use crate::progress;
use crate::terminal::safe;

pub(crate) fn run(global: &GlobalArgs, args: &DiffArgs) -> anyhow::Result<()> {
    // Files are ingested into throw-away stores: the diff works on store indexes, so memory
    // stays bounded however large the scans are.
    let scratch = tempfile::Builder::new()
        .prefix("nessus-cli-diff-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let old = load(&args.old, &scratch.path().join("old"))?;
    let new = load(&args.new, &scratch.path().join("new"))?;
    let diff = nessus_schema::diff(&old, &new).context("cannot compare the scans")?;

    let mut stdout = io::stdout().lock();
    if global.json {
        serde_json::to_writer_pretty(&mut stdout, &as_json(&diff))
            .context("cannot write to stdout")?;
        writeln!(stdout).context("cannot write to stdout")?;
    } else {
        drop(stdout);
        super::print_text(&human(&diff, &args.old, &args.new))?;
    }
    Ok(())
}

fn load(path: &Path, scratch: &Path) -> anyhow::Result<Store> {
    match open_input(path)? {
        Input::Store(store) => Ok(*store),
        Input::File(reader, len) => {
            let bar = progress::bytes_bar(len, "reading");
            let options = IngestOptions {
                file_size_bytes: Some(len),
                ..IngestOptions::default()
            };
            let store = Store::ingest_with(super::buffered(reader, &bar), scratch, &options)
                .with_context(|| format!("cannot read {}", path.display()))?;
            bar.finish_and_clear();
            Ok(store)
        }
    }
}

/// Counts first, then the four lists, so a script can read the totals without scanning.
fn as_json(diff: &ScanDiff) -> Value {
    let mut object = Map::new();
    object.insert(
        "counts".to_owned(),
        json!({
            "new": diff.new.len(),
            "fixed": diff.fixed.len(),
            "unchanged": diff.unchanged.len(),
            "severity_changed": diff.severity_changed.len(),
        }),
    );
    if let Ok(Value::Object(lists)) = serde_json::to_value(diff) {
        object.extend(lists);
    }
    Value::Object(object)
}

fn severity_name(severity: Option<u8>) -> &'static str {
    match severity {
        Some(0) => "info",
        Some(1) => "low",
        Some(2) => "medium",
        Some(3) => "high",
        Some(4) => "critical",
        _ => "?",
    }
}

fn human(diff: &ScanDiff, old: &Path, new: &Path) -> String {
    let mut text = format!(
        "{} -> {}\nnew: {}  fixed: {}  severity changed: {}  unchanged: {}\n",
        safe(&old.display().to_string()),
        safe(&new.display().to_string()),
        diff.new.len(),
        diff.fixed.len(),
        diff.severity_changed.len(),
        diff.unchanged.len()
    );
    if diff.new.is_empty() && diff.fixed.is_empty() && diff.severity_changed.is_empty() {
        return text;
    }
    let mut table = Table::new();
    table
        .load_style(UTF8_FULL_CONDENSED)
        .set_header(["change", "host", "port", "plugin", "name", "severity"]);
    for entry in &diff.new {
        table.add_row(entry_row("new", entry));
    }
    for entry in &diff.fixed {
        table.add_row(entry_row("fixed", entry));
    }
    for change in &diff.severity_changed {
        let mut cells = fingerprint_cells("changed", &change.fingerprint, &change.plugin_name);
        cells.push(format!(
            "{} -> {}",
            severity_name(change.old_severity),
            severity_name(change.new_severity)
        ));
        table.add_row(cells);
    }
    text.push_str(&table.to_string());
    text.push('\n');
    text
}

fn entry_row(change: &str, entry: &DiffEntry) -> Vec<String> {
    let mut cells = fingerprint_cells(change, &entry.fingerprint, &entry.plugin_name);
    cells.push(severity_name(entry.severity).to_owned());
    cells
}

fn fingerprint_cells(change: &str, fp: &Fingerprint, name: &Option<String>) -> Vec<String> {
    let port = match (fp.port, fp.protocol.as_deref()) {
        (Some(port), Some(protocol)) => format!("{port}/{protocol}"),
        (Some(port), None) => port.to_string(),
        (None, Some(protocol)) => protocol.to_owned(),
        (None, None) => String::new(),
    };
    vec![
        change.to_owned(),
        safe(&fp.host).into_owned(),
        safe(&port).into_owned(),
        fp.plugin_id.map(|id| id.to_string()).unwrap_or_default(),
        safe(name.as_deref().unwrap_or_default()).into_owned(),
    ]
}
