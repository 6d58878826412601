//! The connections behind [`SqliteBackend`](super::SqliteBackend): one writer thread
//! that commits queued write operations in groups, and a small pool of read
//! connections.
//!
//! Why a writer thread: SQLite allows one writer at a time, and a commit's cost (the
//! WAL frames written, the lock taken) is per transaction, not per row. Fifty sessions
//! submitting at once used to queue on one mutex and pay a `BEGIN IMMEDIATE … COMMIT`
//! each; the writer instead takes every operation waiting at that moment, runs each
//! inside its own savepoint (so one operation's error rolls back only its own
//! changes), commits once, and only then answers each caller. An answer therefore
//! always means "durable", exactly as with one transaction per operation.
//!
//! Why separate readers: WAL lets readers run beside the writer on their own
//! snapshots, so status calls and listings no longer wait behind writes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{BackendKind, Error, Result};

/// Operations committed together at most; bounds how long one batch holds the
/// write lock against other processes sharing the file.
const MAX_BATCH: usize = 128;

/// Read connections per backend handle: enough for the two cores this targets plus
/// callers parked in `spawn_blocking`, few enough to keep idle memory small.
const READERS: usize = 4;

/// What a queued write sends back once its batch's commit is known.
type Reply = Box<dyn FnOnce(std::result::Result<(), &rusqlite::Error>) + Send>;
/// A queued write: runs inside its savepoint (or learns its batch could not begin)
/// and returns how to answer its caller.
type Job = Box<dyn FnOnce(std::result::Result<&Connection, &rusqlite::Error>) -> Reply + Send>;

fn backend_error(op: &'static str, source: Box<dyn std::error::Error + Send + Sync>) -> Error {
    Error::Backend {
        backend: BackendKind::Sqlite,
        op,
        retryable: false,
        source,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The caller-facing error for a batch that failed to begin or commit: every
/// operation in it gets its own copy (the driver's error is not `Clone`).
fn batch_error(op: &'static str, e: &rusqlite::Error) -> Error {
    Error::Backend {
        backend: BackendKind::Sqlite,
        op,
        retryable: is_busy(e),
        source: Box::new(std::io::Error::other(e.to_string())),
    }
}

/// Opens one connection with the settings every connection of the backend shares.
pub(super) fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Savepoints journal the pages they touch; a batch's journal is small and dies at
    // commit, so memory beats a temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    // The bundled SQLite has STAT4, which re-plans a cached statement whenever a bound
    // value changes in case the value would pick another index; that re-plan cost more
    // than running our small statements. Our indexes fit every value alike, so a plan
    // that stays put (the query-planner stability guarantee) loses nothing.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// Handle to the writer thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Moves `conn` onto a new writer thread.
    pub(super) fn spawn(conn: Connection) -> std::io::Result<Writer> {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("nessus-queue-sqlite-writer".into())
            .spawn(move || writer_loop(&conn, &rx))?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the next batch; resolves once that batch has committed (or failed).
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let out = match conn {
                Ok(conn) => in_savepoint(conn, f),
                Err(e) => Err(batch_error("begin", e)),
            };
            Box::new(move |commit| {
                let answer = match commit {
                    Ok(()) => out,
                    // The operation's own error says more than the batch's.
                    Err(e) => out.and_then(|_| Err(batch_error("commit", e))),
                };
                let _ = tx.send(answer);
            })
        });
        self.jobs.send(job).map_err(|_| {
            backend_error(
                "write",
                "the SQLite writer thread has stopped; reopen the queue".into(),
            )
        })?;
        rx.await.map_err(|_| {
            backend_error(
                "write",
                "the SQLite writer thread stopped before answering".into(),
            )
        })?
    }
}

fn exec_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Runs one operation inside a savepoint: kept if it succeeds, undone if it fails or
/// panics, so the rest of its batch commits either way.
fn in_savepoint<T>(conn: &Connection, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    exec_cached(conn, "SAVEPOINT op").map_err(|e| batch_error("savepoint", &e))?;
    let out = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
        Err(backend_error(
            "write",
            "a queue write operation panicked; its changes were rolled back".into(),
        ))
    });
    let end = if out.is_ok() {
        exec_cached(conn, "RELEASE op")
    } else {
        exec_cached(conn, "ROLLBACK TO op").and_then(|()| exec_cached(conn, "RELEASE op"))
    };
    match end {
        Ok(()) => out,
        Err(e) => Err(batch_error("savepoint", &e)),
    }
}

fn writer_loop(conn: &Connection, rx: &mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = exec_cached(conn, "BEGIN IMMEDIATE") {
            // Nothing runs: every caller learns why (busy beyond the timeout is retryable).
            for job in batch.drain(..) {
                job(Err(&e))(Ok(()));
            }
            continue;
        }
        let replies: Vec<Reply> = batch.drain(..).map(|job| job(Ok(conn))).collect();
        let commit = exec_cached(conn, "COMMIT");
        if commit.is_err() {
            // Leave no transaction open for the next batch.
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(commit.as_ref().map(|_| ()));
        }
    }
}

/// Read connections used from `spawn_blocking`; each sees the last committed state.
#[derive(Debug)]
pub(super) struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn open(path: &Path) -> rusqlite::Result<Readers> {
        let conns = (0..READERS)
            .map(|_| {
                let c = open_connection(path)?;
                // Reads only: a bug that tried to write here fails instead of racing
                // the writer thread.
                c.pragma_update(None, "query_only", true)?;
                Ok(Mutex::new(c))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Readers {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free read connection (waiting for one if all are busy).
    pub(super) async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let start = me.next.fetch_add(1, Ordering::Relaxed);
            let n = me.conns.len();
            let free = (0..n).find_map(|i| me.conns[(start + i) % n].try_lock().ok());
            // A poisoned mutex only means another read panicked mid-way; a read leaves
            // nothing half-done, so the connection is still usable.
            let mut guard = match free {
                Some(g) => g,
                None => me.conns[start % n]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
            };
            f(&mut guard)
        })
        .await
        .map_err(|e| backend_error("blocking task", Box::new(e)))?
    }
}
