//! Import: an existing `.nessus` file becomes a completed task, for `import_scan` and
//! `nessus-cli import` alike (one function, so the same file makes the same task).
//!
//! The file is ingested into a staging directory first (off the async runtime), so a
//! bad file never leaves a task behind; only then is the task recorded (in
//! [`IMPORT_POOL`], which no worker serves), the store moved under its id, and the
//! task completed in one compare-and-set. If the store cannot be put in place the
//! task is marked failed (`import_failed`), never left queued.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use nessus_schema::{Store, Summary};

use crate::error::{Error, Result};
use crate::import::IMPORT_POOL;
use crate::limits::{INLINE_IMPORT_MAX, NAME_MAX, TARGETS_MAX};
use crate::results_dir::ResultsDir;
use crate::schema_ingest::SchemaIngest;
use crate::task::{NewTask, ScanType, Task};

use super::Progress;
use super::{Operation, Principal, Service, blocking};

/// Where the `.nessus` comes from.
#[non_exhaustive]
pub enum ImportSource {
    /// A file the caller may read (an admin on the host).
    File(PathBuf),
    /// A file named relative to an import directory; anything resolving outside it
    /// (`..`, symlinks, absolute paths elsewhere) is refused.
    Confined {
        /// The import directory.
        dir: PathBuf,
        /// The name the caller gave.
        requested: String,
    },
    /// The file's bytes, sent with the request (at most [`INLINE_IMPORT_MAX`]).
    Inline(Vec<u8>),
    /// Any reader (e.g. one that drives a progress bar), with a name for the task.
    Reader {
        /// The bytes.
        reader: Box<dyn Read + Send>,
        /// The file name used when the scan has no name of its own.
        file_name: String,
    },
}

impl std::fmt::Debug for ImportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => f.debug_tuple("File").field(p).finish(),
            Self::Confined { dir, requested } => f
                .debug_struct("Confined")
                .field("dir", dir)
                .field("requested", requested)
                .finish(),
            Self::Inline(b) => write!(f, "Inline({} bytes)", b.len()),
            Self::Reader { file_name, .. } => write!(f, "Reader({file_name})"),
        }
    }
}

/// An import request.
#[derive(Debug)]
#[non_exhaustive]
pub struct ImportRequest {
    /// The file.
    pub source: ImportSource,
    /// Task name; default: the scan's own name, else the file name.
    pub name: Option<String>,
    /// Whether the scan was credentialed (decides the results' authentication status).
    pub authenticated: bool,
    /// The pool the caller expects; anything but [`IMPORT_POOL`] is refused, so a
    /// script that asks for another pool does not look for the task where it is not.
    pub pool: Option<String>,
    /// Filled while the file is ingested, for a frontend that reports progress.
    pub progress: Option<Progress>,
}

/// A reader that adds what it reads to an [`Progress`]: one atomic add per read of
/// the 64 KiB buffer above it, so it costs nothing measurable.
struct Counted<R> {
    inner: R,
    progress: Progress,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}

impl ImportRequest {
    /// Imports `source` with the default name.
    pub fn new(source: ImportSource) -> Self {
        Self {
            source,
            name: None,
            authenticated: false,
            pool: None,
            progress: None,
        }
    }

    /// Reports the bytes read (and the file size) into `progress` while ingesting.
    #[must_use]
    pub fn progress(mut self, progress: Option<Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Names the task (a blank name means the default).
    #[must_use]
    pub fn name(mut self, name: Option<String>) -> Self {
        self.name = name.filter(|n| !n.trim().is_empty());
        self
    }

    /// The pool the caller expects the task in (only [`IMPORT_POOL`] is accepted).
    #[must_use]
    pub fn pool(mut self, pool: Option<String>) -> Self {
        self.pool = pool;
        self
    }

    /// Says the scan was credentialed.
    #[must_use]
    pub fn authenticated(mut self, yes: bool) -> Self {
        self.authenticated = yes;
        self
    }
}

/// What an import produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Imported {
    /// The completed task.
    pub task: Task,
    /// The file's summary.
    pub summary: Summary,
    /// Where its findings store now lives.
    pub store_dir: PathBuf,
}

/// The canonical file `requested` names, if it is a regular file inside `dir`.
pub fn confine(dir: &Path, requested: &str) -> Result<PathBuf> {
    let refused = || Error::ImportPathRefused {
        path: requested.to_owned(),
    };
    let root = dir.canonicalize().map_err(|_| Error::ImportDisabled)?;
    let candidate = Path::new(requested);
    let joined = if candidate.is_absolute() {
        candidate.to_path_buf()
    } else {
        root.join(candidate)
    };
    // Canonicalising resolves `..` and symlinks, so the prefix check sees the real
    // location.
    let real = joined.canonicalize().map_err(|_| refused())?;
    if real.starts_with(&root) && real.is_file() {
        Ok(real)
    } else {
        Err(refused())
    }
}

fn bad_file(e: impl std::fmt::Display) -> Error {
    Error::InvalidImport {
        reason: e.to_string(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The hosts of an import as its task's targets: each host once, in file order,
/// comma-separated, cut at a host boundary to the targets limit.
fn targets_of(summary: &Summary) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut out = String::new();
    for h in &summary.hosts {
        let name = h.host.as_str();
        if name.is_empty() || !seen.insert(name) {
            continue;
        }
        if out.len() + name.len() + 1 > TARGETS_MAX {
            break;
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(name);
    }
    out
}

/// Ingests the source into `staging/store`; returns the summary and the file name
/// (empty for inline content).
fn ingest(
    source: ImportSource,
    staging: &Path,
    progress: Option<Progress>,
) -> Result<(Summary, String, Vec<crate::findings::ObservedHost>)> {
    let (mut reader, file_name, size) = open(source)?;
    if let Some(progress) = progress {
        progress.set_total(size.unwrap_or(0));
        reader = Box::new(Counted {
            inner: reader,
            progress,
        });
    }
    let store = Store::ingest(
        BufReader::with_capacity(1 << 16, reader),
        &ResultsDir::store_in(staging),
    )
    .map_err(bad_file)?;
    let observed = SchemaIngest::observed(&store).map_err(bad_file)?;
    Ok((store.summary().clone(), file_name, observed))
}

type Opened = (Box<dyn Read + Send>, String, Option<u64>);

/// The source's bytes, its file name (empty for inline content) and its size when known.
fn open(source: ImportSource) -> Result<Opened> {
    let file = |path: &Path| {
        std::fs::File::open(path).map(|f| {
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(f) as Box<dyn Read + Send>, size)
        })
    };
    Ok(match source {
        ImportSource::File(path) => {
            let (f, size) = file(&path)
                .map_err(|e| bad_file(format!("cannot open {}: {e}", path.display())))?;
            (f, file_name(&path), size)
        }
        // The error names no server path: the caller only gave a name.
        ImportSource::Confined { dir, requested } => {
            let path = confine(&dir, &requested)?;
            let (f, size) = file(&path).map_err(bad_file)?;
            (f, file_name(&path), size)
        }
        ImportSource::Inline(bytes) => {
            let size = bytes.len() as u64;
            (
                Box::new(std::io::Cursor::new(bytes)),
                String::new(),
                Some(size),
            )
        }
        ImportSource::Reader { reader, file_name } => (reader, file_name, None),
    })
}

impl Service {
    /// Imports a `.nessus` file as a completed task owned by `principal`.
    pub async fn import(&self, principal: &Principal, req: ImportRequest) -> Result<Imported> {
        principal.authorize(Operation::Import, "import scans")?;
        if let ImportSource::Inline(b) = &req.source
            && b.len() > INLINE_IMPORT_MAX
        {
            return Err(Error::ImportTooLarge {
                actual: b.len(),
                limit: INLINE_IMPORT_MAX,
            });
        }
        if let Some(p) = req.pool.as_deref().filter(|p| *p != IMPORT_POOL) {
            return Err(Error::invalid(
                "pool",
                format!(
                    "{p}: imports are always recorded in pool '{IMPORT_POOL}', which no worker serves; drop the pool"
                ),
            ));
        }
        if let Some(n) = &req.name {
            crate::limits::check_len("name", n, NAME_MAX)?;
        }
        let results = self.results.clone();
        std::fs::create_dir_all(results.root()).map_err(|source| Error::Io {
            what: format!("cannot create {}", results.root().display()),
            source,
        })?;
        let staging = results.new_staging()?;
        let st = staging.clone();
        let source = req.source;
        let progress = req.progress;
        let ingested = blocking(move || ingest(source, &st, progress)).await;
        let outcome = match ingested {
            Ok((summary, default_name, observed)) => {
                self.record_import(
                    principal,
                    &staging,
                    (summary, observed),
                    default_name,
                    req.name,
                    req.authenticated,
                )
                .await
            }
            Err(e) => Err(e),
        };
        // Best effort: a leftover staging directory holds no task and is harmless.
        let _ = std::fs::remove_dir_all(&staging);
        outcome
    }

    async fn record_import(
        &self,
        principal: &Principal,
        staging: &Path,
        (summary, observed): (Summary, Vec<crate::findings::ObservedHost>),
        default_name: String,
        name: Option<String>,
        authenticated: bool,
    ) -> Result<Imported> {
        let targets = targets_of(&summary);
        if targets.is_empty() {
            return Err(bad_file("the file has no ReportHost: nothing to import"));
        }
        let description = if default_name.is_empty() {
            "imported .nessus results (sent inline)".to_owned()
        } else {
            format!("imported from {default_name}")
        };
        let name = name
            .or_else(|| summary.scan.report_name.clone())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| Some(default_name).filter(|n| !n.is_empty()))
            .unwrap_or_else(|| "imported scan".to_owned());
        // A scan's own name may be longer than a task name may be: cut, not refuse.
        let name = cut(&name, NAME_MAX);
        // Nothing runs, so the task is not an authenticated *scan* (that would need
        // credentials); `authenticated` decides the results' authentication status.
        let description = cut(&description, crate::limits::DESCRIPTION_MAX);
        let request =
            NewTask::new(ScanType::Untrusted, IMPORT_POOL, targets, name).description(description);
        let completion = SchemaIngest::completion(&summary, authenticated);
        let task = self
            .queue
            .begin_import_with(principal.as_str(), request)
            .await?;
        let task_dir = self.results.task_dir(&task.task_id);
        let placed = std::fs::create_dir_all(&task_dir)
            .and_then(|()| {
                std::fs::rename(
                    ResultsDir::store_in(staging),
                    ResultsDir::store_in(&task_dir),
                )
            })
            .map_err(|source| Error::Io {
                what: format!("cannot move the findings store into {}", task_dir.display()),
                source,
            });
        // With results in object storage, uploaded (manifest last) before the task
        // is completed, as the worker does.
        let placed = match (placed, &self.remote) {
            (Ok(()), Some(cache)) => upload(cache.remote(), &task.task_id, &task_dir).await,
            (other, _) => other,
        };
        // Findings over time before the task completes (the worker's order): the same
        // one code path, idempotent per task.
        let placed = match placed {
            Ok(()) => self
                .queue
                .record_findings(
                    principal.as_str(),
                    &task.task_id,
                    jiff::Timestamp::now(),
                    &observed,
                )
                .await
                .map(drop),
            Err(e) => Err(e),
        };
        let finished = match placed {
            Ok(()) => self.queue.finish_import(&task.task_id, completion).await,
            Err(e) => Err(e),
        };
        match finished {
            Ok(done) => {
                tracing::info!(task_id = %done.task_id, trace_id = %done.trace_id, principal = %principal, "scan_imported");
                self.record_task(crate::audit::AuditAction::Import, principal, &done, None)
                    .await;
                let store_dir = match &self.remote {
                    Some(cache) => {
                        // Served through the cache from now on, like a worker's.
                        let _ = self.results.remove_task(&done.task_id);
                        PathBuf::from(format!(
                            "{}/{}/{}",
                            cache.remote().url().trim_end_matches('/'),
                            done.task_id,
                            crate::results_store::STORE
                        ))
                    }
                    None => ResultsDir::store_in(&task_dir),
                };
                Ok(Imported {
                    store_dir,
                    task: done,
                    summary,
                })
            }
            Err(e) => {
                if let Err(abort) = self
                    .queue
                    .abort_import(&task.task_id, "import_failed", &e.to_string())
                    .await
                {
                    tracing::warn!(task_id = %task.task_id, error = %abort, "could not mark a failed import");
                }
                let _ = self.results.remove_task(&task.task_id);
                if let Some(cache) = &self.remote {
                    let _ = cache.remote().delete_task(&task.task_id).await;
                }
                Err(e)
            }
        }
    }
}

/// Uploads an imported task's results, three attempts 0.5 s and 1 s apart: the caller
/// waits, and a failed import leaves nothing behind and can simply be repeated.
async fn upload(
    remote: &crate::results_store::ResultsStore,
    task_id: &str,
    task_dir: &Path,
) -> Result<()> {
    let mut wait = std::time::Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        match remote.upload_task(task_id, task_dir).await {
            Ok(_) => return Ok(()),
            Err(e) if attempt >= 3 => return Err(e),
            Err(e) => {
                tracing::warn!(task_id, attempt, error = %e, "import upload failed; retrying");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../corpus/nessus/libnessus__nessus_report_local_3.nessus"
    );

    /// The progress handle ends at exactly the file's size (counted from another route:
    /// the file system), and knows the total only when the source has a length.
    #[test]
    fn progress_counts_every_byte_and_knows_the_size_when_there_is_one() {
        let size = std::fs::metadata(SAMPLE).expect("corpus file").len();
        let bytes = std::fs::read(SAMPLE).expect("corpus file");
        let source = |what: &str| match what {
            "file" => ImportSource::File(SAMPLE.into()),
            "inline" => ImportSource::Inline(bytes.clone()),
            _ => ImportSource::Reader {
                reader: Box::new(std::io::Cursor::new(bytes.clone())),
                file_name: "r.nessus".to_owned(),
            },
        };
        for (what, total) in [
            ("file", Some(size)),
            ("inline", Some(size)),
            ("reader", None),
        ] {
            let staging = tempfile::tempdir().expect("tempdir");
            let progress = Progress::new();
            assert_eq!((progress.done(), progress.total()), (0, None));
            let (summary, _, _) =
                ingest(source(what), staging.path(), Some(progress.clone())).expect(what);
            assert_eq!(summary.hosts_scanned, 3, "{what}");
            assert_eq!(progress.done(), size, "{what}: bytes read");
            assert_eq!(progress.total(), total, "{what}: total");
        }
    }
}
