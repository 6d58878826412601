//! `import_scan`: turn an existing `.nessus` file into a completed task.
//!
//! The file is ingested into a staging directory first (off the async
//! runtime), so a bad file never leaves a task behind; only then is the task
//! recorded (in `nessus_queue::IMPORT_POOL`, which no worker serves), the
//! store moved under its id, and the task completed in one compare-and-set.

use std::{
    io::BufReader,
    path::{Path, PathBuf},
};

use nessus_queue::Ingest as _;

use crate::{
    app::App,
    auth::Principal,
    dto::{ImportResult, ImportScan},
    errors::ToolError,
    ops::queue_error,
};

/// Largest inline `content` accepted; bigger files go through the import directory.
pub(crate) const INLINE_MAX_BYTES: usize = 4 << 20;

/// Longest `targets` string recorded for an import (host list, truncated).
const TARGETS_MAX: usize = 16 * 1024;

enum Source {
    File(PathBuf),
    Inline(String),
}

/// The canonical file `requested` names, if it is a regular file inside `dir`.
pub(crate) fn resolve_in(dir: &Path, requested: &str) -> Result<PathBuf, ToolError> {
    let refused = || {
        ToolError::new(
            "path_not_allowed",
            format!("'{requested}' is not a file in the server's import directory"),
        )
        .hint(
            "ask the operator to put the .nessus file in the import directory and pass its \
             name, or send small files inline with content",
        )
    };
    let root = dir.canonicalize().map_err(|_| {
        ToolError::new(
            "import_disabled",
            "the server's import directory does not exist",
        )
        .hint("ask the operator to create it (nessus-mcp --import-dir)")
    })?;
    let candidate = Path::new(requested);
    let joined = if candidate.is_absolute() {
        candidate.to_path_buf()
    } else {
        root.join(candidate)
    };
    // Canonicalising resolves `..` and symlinks, so the prefix check sees the
    // real location.
    let real = joined.canonicalize().map_err(|_| refused())?;
    if real.starts_with(&root) && real.is_file() {
        Ok(real)
    } else {
        Err(refused())
    }
}

fn bad_file(e: impl std::fmt::Display) -> ToolError {
    ToolError::new(
        "invalid_nessus_file",
        format!("cannot import the file: {e}"),
    )
    .hint("give a .nessus (XML v2) export from Nessus")
}

/// Ingest into `staging/store`; returns the host list for the task's targets.
fn ingest(source: Source, staging: &Path) -> Result<String, ToolError> {
    let dir = staging.join("store");
    std::fs::create_dir_all(staging).map_err(ToolError::internal)?;
    let store = match source {
        Source::File(path) => {
            let file = std::fs::File::open(&path).map_err(bad_file)?;
            nessus_schema::Store::ingest(BufReader::with_capacity(1 << 16, file), &dir)
        }
        Source::Inline(text) => nessus_schema::Store::ingest(text.as_bytes(), &dir),
    }
    .map_err(bad_file)?;
    let mut targets = String::new();
    for h in store.hosts().map_err(bad_file)? {
        if targets.len() + h.name.len() + 2 > TARGETS_MAX {
            break;
        }
        if !targets.is_empty() {
            targets.push_str(", ");
        }
        targets.push_str(&h.name);
    }
    if targets.is_empty() {
        return Err(ToolError::new(
            "invalid_nessus_file",
            "the file has no ReportHost: nothing to import",
        ));
    }
    Ok(targets)
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ToolError::internal)?
}

pub(crate) async fn import_scan(
    app: &App,
    principal: &Principal,
    p: ImportScan,
) -> Result<ImportResult, ToolError> {
    let (source, default_name) = match (p.path, p.content) {
        (Some(path), None) => {
            let real = resolve_in(app.import_dir(), &path)?;
            let name = real
                .file_name()
                .map_or_else(|| path.clone(), |n| n.to_string_lossy().into_owned());
            (Source::File(real), name)
        }
        (None, Some(content)) if content.len() > INLINE_MAX_BYTES => {
            return Err(ToolError::new(
                "content_too_large",
                format!(
                    "inline content is {} bytes; the limit is {INLINE_MAX_BYTES}",
                    content.len()
                ),
            )
            .hint("put the file in the server's import directory and pass path instead"));
        }
        (None, Some(content)) => (Source::Inline(content), "imported scan".to_owned()),
        _ => {
            return Err(ToolError::invalid(
                "arguments",
                "give exactly one of path or content",
            ));
        }
    };
    let name = p
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(default_name);
    let results_dir = app.config().server().results_dir().to_owned();
    let staging = results_dir.join(format!(".import-{}", uuid::Uuid::new_v4()));
    let st = staging.clone();
    let targets = match blocking(move || ingest(source, &st)).await {
        Ok(t) => t,
        Err(e) => {
            // Best effort: a leftover staging dir holds no task and is harmless.
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let task = app
        .queue()
        .begin_import(principal.as_str(), &targets, &name, "brief")
        .await
        .map_err(queue_error)?;
    let task_dir = results_dir.join(&task.task_id);
    let t = task.clone();
    let placed = blocking(move || {
        std::fs::rename(&staging, &task_dir).map_err(ToolError::internal)?;
        // The store already exists, so this only summarises it (no export file).
        nessus_queue::SchemaIngest
            .ingest(&t, Path::new(""), &task_dir)
            .map_err(ToolError::internal)
    })
    .await;
    let completion = match placed {
        Ok(c) => c,
        Err(e) => {
            if let Err(abort) = app
                .queue()
                .abort_import(&task.task_id, "import_failed", &e.error)
                .await
            {
                tracing::warn!(task_id = %task.task_id, error = %abort, "could not mark a failed import");
            }
            return Err(e);
        }
    };
    let done = app
        .queue()
        .finish_import(&task.task_id, completion)
        .await
        .map_err(queue_error)?;
    tracing::info!(task_id = %done.task_id, trace_id = %done.trace_id, "scan_imported");
    Ok(ImportResult {
        message: format!(
            "Imported; call get_scan_results with task_id \"{}\", or diff_scans against another scan.",
            done.task_id
        ),
        task_id: done.task_id,
        status: done.status.to_string(),
        scanner_pool: done.pool,
        name: done.name,
        targets: done.targets,
        results_summary: done.results_summary,
    })
}
