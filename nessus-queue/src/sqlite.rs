//! SQLite backend: one file, WAL, `BEGIN IMMEDIATE` for writes, shared safely by the
//! server, worker processes and the CLI. Writes go through one writer thread that
//! commits them in groups; reads use a small pool of read connections (see
//! [`connections`]). No connection is ever held across an `.await`.

mod connections;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use self::connections::{Readers, Writer, open_connection};

use crate::audit::{AuditEvent, AuditPage, AuditQuery, time_key};
use crate::backend::{
    Backend, ClaimRequest, CreateOutcome, IdemReservation, ListQuery, Page, PoolCounts,
    PrincipalCounts, QueueSnapshot, duration_secs, fair_ahead, fair_older_cap, fair_order, ms,
    order_key, place,
};
use crate::error::{BackendKind, Error, Result};
use crate::findings::{AssetDoc, FindingsBackend, StoredAsset};
use crate::schedule::Schedule;
use crate::task::{Task, TaskStatus};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    pool TEXT NOT NULL,
    status TEXT NOT NULL,
    principal TEXT NOT NULL DEFAULT '',
    order_key TEXT NOT NULL,
    queue_seq INTEGER,
    lease_expires_ms INTEGER,
    slot_instance TEXT,
    dlq_ms INTEGER,
    completed_ms INTEGER,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_order ON tasks(order_key);
CREATE INDEX IF NOT EXISTS tasks_pool_order ON tasks(pool, order_key);
CREATE INDEX IF NOT EXISTS tasks_status_order ON tasks(status, order_key);
CREATE INDEX IF NOT EXISTS tasks_pool_status_order ON tasks(pool, status, order_key);
CREATE INDEX IF NOT EXISTS tasks_queue ON tasks(pool, queue_seq) WHERE queue_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_lease ON tasks(lease_expires_ms) WHERE lease_expires_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_slot ON tasks(pool, slot_instance, lease_expires_ms) WHERE slot_instance IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_dlq ON tasks(dlq_ms, order_key) WHERE dlq_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_done ON tasks(completed_ms) WHERE completed_ms IS NOT NULL;
CREATE TABLE IF NOT EXISTS idempotency (
    scope_key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    task_id TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS secrets (task_id TEXT PRIMARY KEY, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS durations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pool TEXT NOT NULL,
    secs REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS durations_pool ON durations(pool, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pool_queued (pool TEXT PRIMARY KEY, queued INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    order_key TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    task_id TEXT,
    pool TEXT,
    doc TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_principal ON audit(principal, order_key);
CREATE INDEX IF NOT EXISTS audit_action ON audit(action, order_key);
CREATE INDEX IF NOT EXISTS audit_task ON audit(task_id, order_key) WHERE task_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS audit_pool ON audit(pool, order_key) WHERE pool IS NOT NULL;
CREATE TABLE IF NOT EXISTS schedules (
    schedule_id TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    due_ms INTEGER,
    created_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules(due_ms) WHERE due_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS schedules_principal ON schedules(principal, created_key);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id TEXT PRIMARY KEY,
    due_ms INTEGER,
    order_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries(due_ms) WHERE due_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS webhook_deliveries_order ON webhook_deliveries(order_key);
CREATE TABLE IF NOT EXISTS principal_queued (
    pool TEXT NOT NULL,
    principal TEXT NOT NULL,
    queued INTEGER NOT NULL,
    PRIMARY KEY (pool, principal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS finding_assets (
    scope TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (scope, asset_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS finding_assets_stored ON finding_assets(scope, stored_ms);
CREATE TABLE IF NOT EXISTS finding_aliases (
    scope TEXT NOT NULL,
    alias TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    PRIMARY KEY (scope, alias)
) WITHOUT ROWID;
";

/// Indexes on the `principal` column; created after the migration that adds the
/// column to files from before it. Listings filter by principal inside these
/// (pages stay full); the queue and slot ones serve fair claims, per-principal
/// positions and counts.
const PRINCIPAL_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS tasks_principal_order ON tasks(principal, order_key);
CREATE INDEX IF NOT EXISTS tasks_principal_pool_order ON tasks(principal, pool, order_key);
CREATE INDEX IF NOT EXISTS tasks_principal_status_order ON tasks(principal, status, order_key);
CREATE INDEX IF NOT EXISTS tasks_principal_pool_status_order
    ON tasks(principal, pool, status, order_key);
CREATE INDEX IF NOT EXISTS tasks_principal_queue
    ON tasks(pool, principal, queue_seq) WHERE queue_seq IS NOT NULL;
CREATE INDEX IF NOT EXISTS tasks_principal_slot
    ON tasks(pool, principal, lease_expires_ms) WHERE slot_instance IS NOT NULL;
";

/// Fills the principal column and the per-principal queued counts once for files
/// written before they existed (the principal is in every stored task document).
const BACKFILL_PRINCIPAL: &str = "
UPDATE tasks SET principal = coalesce(json_extract(doc, '$.principal'), '');
INSERT INTO principal_queued(pool, principal, queued)
    SELECT pool, principal, COUNT(*) FROM tasks WHERE queue_seq IS NOT NULL
    GROUP BY pool, principal
    ON CONFLICT(pool, principal) DO UPDATE SET queued = excluded.queued;
INSERT INTO counters(name, value) VALUES('principal_v1', 1);
";

/// Fills `pool_queued` once for databases created before it existed; afterwards
/// every write keeps it exact inside the same transaction.
const BACKFILL_POOL_QUEUED: &str = "
INSERT INTO pool_queued(pool, queued)
    SELECT pool, COUNT(*) FROM tasks WHERE queue_seq IS NOT NULL GROUP BY pool
    ON CONFLICT(pool) DO UPDATE SET queued = excluded.queued;
INSERT INTO counters(name, value) VALUES('pool_queued_v1', 1);
";

/// The embedded default backend.
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    writer: Arc<Writer>,
    readers: Arc<Readers>,
    path: PathBuf,
}

fn err(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| {
        let retryable = matches!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        Error::Backend {
            backend: BackendKind::Sqlite,
            op,
            retryable,
            source: Box::new(e),
        }
    }
}

fn decode(doc: &str, what: &str) -> Result<Task> {
    serde_json::from_str(doc).map_err(|e| Error::Corrupt {
        what: what.to_owned(),
        source: Box::new(e),
    })
}

fn encode(t: &Task) -> String {
    // A Task has only plain data fields, so serialisation cannot fail.
    serde_json::to_string(t).unwrap_or_default()
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Backend {
                backend: BackendKind::Sqlite,
                op: "create data dir",
                retryable: false,
                source: Box::new(e),
            })?;
        }
        let mut conn = open_connection(&path).map_err(err("open"))?;
        conn.execute_batch(SCHEMA).map_err(err("schema"))?;
        // Immediate: several processes may open the file at once; one backfills.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err("begin backfill"))?;
        let done: Option<i64> = tx
            .row_cached(
                "SELECT value FROM counters WHERE name = 'pool_queued_v1'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("backfill check"))?;
        if done.is_none() {
            tx.execute_batch(BACKFILL_POOL_QUEUED)
                .map_err(err("backfill queued counts"))?;
        }
        migrate_principal(&tx)?;
        tx.commit().map_err(err("commit backfill"))?;
        // Readers open after the schema exists, so their first read finds it.
        let readers = Readers::open(&path).map_err(err("open readers"))?;
        let writer = Writer::spawn(conn).map_err(|e| Error::Backend {
            backend: BackendKind::Sqlite,
            op: "start writer thread",
            retryable: false,
            source: Box::new(e),
        })?;
        Ok(Self {
            writer: Arc::new(writer),
            readers: Arc::new(readers),
            path,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A write, committed with whatever other writes are waiting (see [`connections`]).
    fn write<T, F>(&self, f: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let writer = Arc::clone(&self.writer);
        Box::pin(async move { writer.write(f).await })
    }

    /// A read on its own snapshot of the last committed state.
    fn read<T, F>(&self, f: F) -> BoxFuture<'static, Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        Box::pin(async move { readers.read(f).await })
    }
}

/// Statements through the connection's statement cache: parsing SQL costs more than
/// running these small statements, and every write path repeats the same few.
trait CachedExt {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>;
}

impl CachedExt for Connection {
    fn exec_cached<P: rusqlite::Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P, F>(&self, sql: &str, params: P, f: F) -> rusqlite::Result<T>
    where
        P: rusqlite::Params,
        F: FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }
}

/// Adds the principal column (a file from before it), backfills it and the
/// per-principal counts, and creates its indexes; inside the caller's immediate
/// transaction, so one of several processes opening an old file does it.
fn migrate_principal(tx: &Connection) -> Result<()> {
    let has_column: bool = tx
        .row_cached(
            "SELECT COUNT(*) FROM pragma_table_info('tasks') WHERE name = 'principal'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map_err(err("migration check"))?
        > 0;
    if !has_column {
        tx.execute_batch("ALTER TABLE tasks ADD COLUMN principal TEXT NOT NULL DEFAULT ''")
            .map_err(err("add principal column"))?;
    }
    let done: Option<i64> = tx
        .row_cached(
            "SELECT value FROM counters WHERE name = 'principal_v1'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(err("migration check"))?;
    if done.is_none() {
        tx.execute_batch(BACKFILL_PRINCIPAL)
            .map_err(err("backfill principal"))?;
    }
    tx.execute_batch(PRINCIPAL_SCHEMA)
        .map_err(err("principal indexes"))
}

fn next_seq(tx: &Connection) -> Result<i64> {
    tx.row_cached(
        "INSERT INTO counters(name, value) VALUES('queue_seq', 1)
         ON CONFLICT(name) DO UPDATE SET value = value + 1 RETURNING value",
        [],
        |r| r.get(0),
    )
    .map_err(err("next seq"))
}

/// Index columns derived from the task; the queue seq is kept when the task stays queued.
fn write_row(tx: &Connection, prev: Option<&Task>, t: &Task, insert: bool) -> Result<()> {
    let was_queued = prev.is_some_and(|p| p.status == TaskStatus::Queued);
    match (was_queued, t.status == TaskStatus::Queued) {
        (false, true) => add_queued(tx, &t.pool, &t.principal, 1)?,
        (true, false) => add_queued(tx, &t.pool, &t.principal, -1)?,
        _ => {}
    }
    let seq: Option<i64> = if t.status == TaskStatus::Queued {
        let keep = was_queued;
        if keep {
            tx.row_cached(
                "SELECT queue_seq FROM tasks WHERE task_id = ?1",
                [&t.task_id],
                |r| r.get(0),
            )
            .map_err(err("read seq"))?
        } else {
            Some(next_seq(tx)?)
        }
    } else {
        None
    };
    let (lease_ms, slot) = match (&t.lease, t.status) {
        (Some(l), TaskStatus::Running) => (Some(ms(l.expires_at)), t.instance.clone()),
        _ => (None, None),
    };
    let dlq = t.dead_lettered_at.map(ms);
    let done = t.completed_at.filter(|_| t.status.is_terminal()).map(ms);
    let doc = encode(t);
    if insert {
        tx.exec_cached(
            "INSERT INTO tasks(task_id, pool, status, order_key, queue_seq, lease_expires_ms,
                slot_instance, dlq_ms, completed_ms, version, doc, principal)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
            params![
                t.task_id,
                t.pool,
                t.status.as_str(),
                order_key(t),
                seq,
                lease_ms,
                slot,
                dlq,
                done,
                t.version as i64,
                doc,
                t.principal
            ],
        )
        .map_err(err("insert task"))?;
    } else {
        tx.exec_cached(
            "UPDATE tasks SET status=?2, queue_seq=?3, lease_expires_ms=?4, slot_instance=?5,
                dlq_ms=?6, completed_ms=?7, version=?8, doc=?9 WHERE task_id=?1",
            params![
                t.task_id,
                t.status.as_str(),
                seq,
                lease_ms,
                slot,
                dlq,
                done,
                t.version as i64,
                doc
            ],
        )
        .map_err(err("update task"))?;
    }
    if let Some(secs) = duration_secs(t).filter(|_| prev.is_some_and(|p| p.status != t.status)) {
        tx.exec_cached(
            "INSERT INTO durations(pool, secs) VALUES(?1, ?2)",
            params![t.pool, secs],
        )
        .map_err(err("record duration"))?;
        tx.exec_cached(
            "DELETE FROM durations WHERE pool = ?1 AND id <= (SELECT id FROM durations
               WHERE pool = ?1 ORDER BY id DESC LIMIT 1 OFFSET 50)",
            params![t.pool],
        )
        .map_err(err("trim durations"))?;
    }
    Ok(())
}

/// Keeps the per-pool and per-principal counts of queued tasks exact, so a submit
/// answers its queue position and checks its quota without counting the queue
/// (O(1) instead of O(depth)).
fn add_queued(tx: &Connection, pool: &str, principal: &str, delta: i64) -> Result<()> {
    tx.exec_cached(
        "INSERT INTO pool_queued(pool, queued) VALUES(?1, max(?2, 0))
         ON CONFLICT(pool) DO UPDATE SET queued = max(queued + ?2, 0)",
        params![pool, delta],
    )
    .map_err(err("queued count"))?;
    tx.exec_cached(
        "INSERT INTO principal_queued(pool, principal, queued) VALUES(?1, ?2, max(?3, 0))
         ON CONFLICT(pool, principal) DO UPDATE SET queued = max(queued + ?3, 0)",
        params![pool, principal, delta],
    )
    .map_err(err("queued count"))?;
    Ok(())
}

/// Queued count of every principal with queued tasks in a pool.
fn principals_queued(conn: &Connection, pool: &str) -> Result<Vec<(String, u64)>> {
    let mut st = conn
        .prepare_cached(
            "SELECT principal, queued FROM principal_queued WHERE pool=?1 AND queued > 0",
        )
        .map_err(err("principal counts"))?;
    st.query_map([pool], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .map_err(err("principal counts"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(err("principal counts"))
}

fn principal_queued(conn: &Connection, pool: &str, principal: &str) -> Result<u64> {
    conn.row_cached(
        "SELECT queued FROM principal_queued WHERE pool=?1 AND principal=?2",
        [pool, principal],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map_err(err("principal queued"))
    .map(|v| v.unwrap_or_default().max(0) as u64)
}

/// Live leases of one principal in a pool.
fn principal_running(conn: &Connection, pool: &str, principal: &str, now_ms: i64) -> Result<u64> {
    conn.row_cached(
        "SELECT COUNT(*) FROM tasks INDEXED BY tasks_principal_slot
         WHERE pool=?1 AND principal=?2 AND slot_instance IS NOT NULL AND lease_expires_ms > ?3",
        params![pool, principal, now_ms],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| v as u64)
    .map_err(err("principal running"))
}

/// How many of a principal's queued tasks in a pool are older (smaller sequence)
/// than `seq`, counting at most `cap` (the index walk stops there).
fn principal_older(
    conn: &Connection,
    pool: &str,
    principal: &str,
    seq: i64,
    cap: u64,
) -> Result<u64> {
    conn.row_cached(
        "SELECT COUNT(*) FROM (SELECT 1 FROM tasks INDEXED BY tasks_principal_queue
           WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL AND queue_seq < ?3 LIMIT ?4)",
        params![pool, principal, seq, cap as i64],
        |r| r.get::<_, i64>(0),
    )
    .map(|v| v as u64)
    .map_err(err("queue position"))
}

fn queued_count(conn: &Connection, pool: &str) -> Result<i64> {
    conn.row_cached(
        "SELECT queued FROM pool_queued WHERE pool = ?1",
        [pool],
        |r| r.get(0),
    )
    .optional()
    .map_err(err("queued count"))
    .map(Option::unwrap_or_default)
}

fn load_tx(tx: &Connection, id: &str) -> Result<Option<Task>> {
    let doc: Option<String> = tx
        .row_cached("SELECT doc FROM tasks WHERE task_id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(err("load task"))?;
    doc.map(|d| decode(&d, id)).transpose()
}

fn active(tx: &Connection, pool: &str, instance: &str, now_ms: i64) -> Result<u32> {
    tx.row_cached(
        "SELECT COUNT(*) FROM tasks WHERE pool=?1 AND slot_instance=?2 AND lease_expires_ms > ?3",
        params![pool, instance, now_ms],
        |r| r.get(0),
    )
    .map_err(err("count slots"))
}

/// Candidates per pool scanned by one claim: enough to skip pinned tasks whose
/// instance is full without reading the whole queue.
const CLAIM_SCAN: i64 = 64;

fn claim_tx(tx: &Connection, req: &ClaimRequest) -> Result<Option<Task>> {
    let now_ms = ms(req.now);
    for (pool, instances) in &req.pools {
        let mut slots = Vec::with_capacity(instances.len());
        for i in instances {
            slots.push(active(tx, pool, &i.instance, now_ms)?);
        }
        if !instances
            .iter()
            .zip(&slots)
            .any(|(i, a)| i.available && *a < i.max_concurrent)
        {
            continue;
        }
        // Fair order: the principal with the fewest running tasks here first, then
        // the one whose oldest queued task is older; inside this transaction, so
        // every claimer sees the same order.
        let mut fair = Vec::new();
        for (principal, _) in principals_queued(tx, pool)? {
            let running = principal_running(tx, pool, &principal, now_ms)?;
            let head: Option<i64> = tx
                .row_cached(
                    "SELECT MIN(queue_seq) FROM tasks INDEXED BY tasks_principal_queue
                     WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL",
                    [pool.as_str(), principal.as_str()],
                    |r| r.get(0),
                )
                .map_err(err("claim scan"))?;
            if let Some(head) = head {
                fair.push((principal, running, head));
            }
        }
        for principal in fair_order(fair) {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT doc FROM tasks INDEXED BY tasks_principal_queue
                     WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL
                     ORDER BY queue_seq LIMIT ?3",
                )
                .map_err(err("claim scan"))?;
            let docs: Vec<String> = stmt
                .query_map(params![pool, principal, CLAIM_SCAN], |r| r.get(0))
                .map_err(err("claim scan"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("claim scan"))?;
            for doc in docs {
                let prev = decode(&doc, "queued task")?;
                let Some((instance, _)) = place(&prev, instances, &slots) else {
                    continue;
                };
                let mut next = prev.clone();
                next.claim(&req.worker_id, &instance, req.lease_ttl, req.now)?;
                next.version += 1;
                write_row(tx, Some(&prev), &next, false)?;
                return Ok(Some(next));
            }
        }
    }
    Ok(None)
}

/// The listing query of [`Backend::list_audit`]. Every filter is a column condition,
/// so the planner walks one `(column, order_key)` index (or the primary key) newest
/// first and stops after the page; a test pins that no plan sorts.
fn audit_list_sql(q: &AuditQuery) -> (String, Vec<String>) {
    let mut sql = String::from("SELECT doc, order_key FROM audit WHERE 1=1");
    let mut args: Vec<String> = Vec::new();
    let mut cond = |col: &str, op: &str, v: String| {
        args.push(v);
        sql.push_str(&format!(" AND {col} {op} ?{}", args.len()));
    };
    if let Some(p) = &q.principal {
        cond("principal", "=", p.clone());
    }
    if let Some(a) = q.action {
        cond("action", "=", a.as_str().to_owned());
    }
    if let Some(t) = &q.task_id {
        cond("task_id", "=", t.clone());
    }
    if let Some(p) = &q.pool {
        cond("pool", "=", p.clone());
    }
    let (low, high) = q.key_range();
    if let Some(low) = low {
        cond("order_key", ">=", low);
    }
    if let Some(high) = high {
        cond("order_key", "<", high);
    }
    sql.push_str(&format!(
        " ORDER BY order_key DESC LIMIT {}",
        q.limit.max(1) + 1
    ));
    (sql, args)
}

/// 1-based position of a queued task in its pool's fair claim order (inside the
/// caller's read transaction): its rank among its principal's queued tasks plus,
/// for every other principal, [`fair_ahead`].
fn position_tx(tx: &Connection, pool: &str, task_id: &str, now_ms: i64) -> Result<Option<u64>> {
    let row: Option<(Option<i64>, String)> = tx
        .row_cached(
            "SELECT queue_seq, principal FROM tasks WHERE task_id=?1 AND pool=?2",
            params![task_id, pool],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(err("queue position"))?;
    let Some((Some(seq), principal)) = row else {
        return Ok(None);
    };
    let rank = rank_tx(tx, pool, &principal, seq)?;
    let own_running = principal_running(tx, pool, &principal, now_ms)?;
    let mut position = rank;
    for (other, queued) in principals_queued(tx, pool)? {
        if other == principal {
            continue;
        }
        let running = principal_running(tx, pool, &other, now_ms)?;
        let older = match fair_older_cap(rank, own_running, queued, running) {
            Some(cap) => principal_older(tx, pool, &other, seq, cap)?,
            None => 0,
        };
        position += fair_ahead(rank, own_running, queued, running, older);
    }
    Ok(Some(position))
}

/// 1-based rank of the task with sequence `seq` among its principal's queued tasks.
fn rank_tx(tx: &Connection, pool: &str, principal: &str, seq: i64) -> Result<u64> {
    // SQLite counts an index range by walking it, so count whichever side of
    // the task is shorter: a fresh submit sits at the tail and counts ~0 rows
    // behind it, a task near the head counts the few ahead of it. Sequence
    // distance bounds each side's row count (gaps are removed entries).
    let (head, tail): (i64, i64) = tx
        .row_cached(
            // Two subqueries: SQLite answers a lone MIN or MAX from one end of
            // the index, but walks the whole range for both in one SELECT.
            "SELECT
               (SELECT MIN(queue_seq) FROM tasks INDEXED BY tasks_principal_queue
                  WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL),
               (SELECT MAX(queue_seq) FROM tasks INDEXED BY tasks_principal_queue
                  WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL)",
            [pool, principal],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(err("queue position"))?;
    let count = |op: &str| -> Result<i64> {
        tx.row_cached(
            &format!(
                "SELECT COUNT(*) FROM tasks INDEXED BY tasks_principal_queue
                 WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL AND queue_seq {op} ?3"
            ),
            params![pool, principal, seq],
            |r| r.get(0),
        )
        .map_err(err("queue position"))
    };
    let ahead = if seq - head <= tail - seq {
        count("<")?
    } else {
        let behind = count(">")?;
        (principal_queued(tx, pool, principal)? as i64 - 1 - behind).max(0)
    };
    Ok(ahead as u64 + 1)
}

fn counts_tx(conn: &Connection, pool: &str, now: Timestamp) -> Result<PoolCounts> {
    let q = |sql: &str, a: &dyn rusqlite::ToSql| -> Result<u64> {
        conn.row_cached(sql, params![pool, a], |r| r.get::<_, i64>(0))
            .map(|v| v as u64)
            .map_err(err("pool counts"))
    };
    Ok(PoolCounts {
        queued: queued_count(conn, pool)? as u64,
        running: q(
            "SELECT COUNT(*) FROM tasks WHERE pool=?1 AND slot_instance IS NOT NULL AND lease_expires_ms > ?2",
            &ms(now),
        )?,
        dead_lettered: q(
            // Forced onto the (small) DLQ index: left alone, the planner walks
            // every task of the pool.
            "SELECT COUNT(*) FROM tasks INDEXED BY tasks_dlq
                     WHERE dlq_ms IS NOT NULL AND pool=?1 AND ?2=?2",
            &0,
        )?,
        pending_approval: q(
            "SELECT COUNT(*) FROM tasks INDEXED BY tasks_pool_status_order
                     WHERE pool=?1 AND status=?2",
            &TaskStatus::PendingApproval.as_str(),
        )?,
    })
}

fn durations_tx(conn: &Connection, pool: &str, n: usize) -> Result<Vec<f64>> {
    let mut st = conn
        .prepare_cached("SELECT secs FROM durations WHERE pool=?1 ORDER BY id DESC LIMIT ?2")
        .map_err(err("durations"))?;
    st.query_map(params![pool, n as i64], |r| r.get(0))
        .map_err(err("durations"))?
        .collect::<std::result::Result<_, _>>()
        .map_err(err("durations"))
}

impl Backend for SqliteBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn create(
        &self,
        mut task: Task,
        idem: Option<IdemReservation>,
        sealed_secret: Option<Vec<u8>>,
        max_queued: u64,
    ) -> BoxFuture<'_, Result<CreateOutcome>> {
        self.write(move |tx| {
            if let Some(r) = &idem {
                let found: Option<(String, String, i64)> = tx
                    .row_cached(
                        "SELECT task_id, request_hash, expires_ms FROM idempotency WHERE scope_key=?1",
                        [&r.scope_key],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                    .map_err(err("idempotency lookup"))?;
                if let Some((task_id, request_hash, exp)) = found
                    && exp > ms(task.created_at)
                {
                    return Ok(CreateOutcome::Existing {
                        task_id,
                        request_hash,
                    });
                }
            }
            // After the idempotency lookup, so a replay never counts against it;
            // in the same transaction as the insert, so concurrent submits cannot
            // overshoot it.
            if principal_queued(tx, &task.pool, &task.principal)? >= max_queued {
                return Err(Error::QuotaExceeded {
                    principal: task.principal.clone(),
                    limit: max_queued,
                });
            }
            if let Some(r) = &idem {
                tx.exec_cached(
                    "INSERT OR REPLACE INTO idempotency(scope_key, request_hash, task_id, expires_ms)
                     VALUES(?1,?2,?3,?4)",
                    params![r.scope_key, r.request_hash, task.task_id, ms(r.expires_at)],
                )
                .map_err(err("idempotency reserve"))?;
            }
            task.version = 1;
            write_row(tx, None, &task, true)?;
            if let Some(s) = &sealed_secret {
                tx.exec_cached(
                    "INSERT OR REPLACE INTO secrets(task_id, sealed) VALUES(?1, ?2)",
                    params![task.task_id, s],
                )
                .map_err(err("store secret"))?;
            }
            Ok(CreateOutcome::Created(Box::new(task)))
        })
    }

    fn drop_idempotency(&self, _pool: String, scope_key: String) -> BoxFuture<'_, Result<()>> {
        self.write(move |conn| {
            conn.exec_cached("DELETE FROM idempotency WHERE scope_key=?1", [scope_key])
                .map_err(err("drop idempotency"))?;
            Ok(())
        })
    }

    fn load(&self, task_id: String) -> BoxFuture<'_, Result<Option<Task>>> {
        self.read(move |conn| load_tx(conn, &task_id))
    }

    fn store(&self, prev: Task, next: Task) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            let v: Option<i64> = tx
                .row_cached(
                    "SELECT version FROM tasks WHERE task_id=?1",
                    [&prev.task_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("read version"))?;
            if v != Some(prev.version as i64) || next.version != prev.version + 1 {
                return Ok(false);
            }
            write_row(tx, Some(&prev), &next, false)?;
            Ok(true)
        })
    }

    fn claim(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<Task>>> {
        self.write(move |tx| claim_tx(tx, &req))
    }

    fn expired_leases(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT task_id FROM tasks WHERE lease_expires_ms <= ?1
                     ORDER BY lease_expires_ms LIMIT ?2",
                )
                .map_err(err("expired leases"))?;
            st.query_map(params![ms(now), limit as i64], |r| r.get(0))
                .map_err(err("expired leases"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("expired leases"))
        })
    }

    fn list(&self, q: ListQuery) -> BoxFuture<'_, Result<Page>> {
        self.read(move |conn| {
            let mut sql = String::from("SELECT doc, order_key FROM tasks WHERE 1=1");
            let mut args: Vec<String> = Vec::new();
            if let Some(p) = &q.pool {
                args.push(p.clone());
                sql.push_str(&format!(" AND pool = ?{}", args.len()));
            }
            if let Some(s) = q.status {
                args.push(s.as_str().to_owned());
                sql.push_str(&format!(" AND status = ?{}", args.len()));
            }
            // In the WHERE clause, answered by the tasks_principal_* indexes: the
            // LIMIT counts only this principal's rows, so pages are full.
            if let Some(p) = &q.principal {
                args.push(p.clone());
                sql.push_str(&format!(" AND principal = ?{}", args.len()));
            }
            if q.dead_lettered {
                sql.push_str(" AND dlq_ms IS NOT NULL");
            }
            if let Some(c) = &q.cursor {
                args.push(c.clone());
                sql.push_str(&format!(" AND order_key < ?{}", args.len()));
            }
            let limit = q.limit.max(1);
            sql.push_str(&format!(" ORDER BY order_key DESC LIMIT {}", limit + 1));
            let mut st = conn.prepare_cached(&sql).map_err(err("list"))?;
            let rows: Vec<(String, String)> = st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(err("list"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("list"))?;
            let more = rows.len() > limit;
            let mut tasks = Vec::with_capacity(limit);
            let mut last = None;
            for (doc, key) in rows.into_iter().take(limit) {
                tasks.push(decode(&doc, &key)?);
                last = Some(key);
            }
            Ok(Page {
                tasks,
                next_cursor: if more { last } else { None },
            })
        })
    }

    fn queue_position(&self, pool: String, task_id: String) -> BoxFuture<'_, Result<Option<u64>>> {
        self.read(move |conn| {
            // One read transaction: the counter and the index agree (WAL snapshot).
            let tx = conn.transaction().map_err(err("begin"))?;
            position_tx(&tx, &pool, &task_id, ms(Timestamp::now()))
        })
    }

    fn queue_head(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT task_id FROM tasks WHERE pool=?1 AND queue_seq IS NOT NULL
                     ORDER BY queue_seq LIMIT ?2",
                )
                .map_err(err("queue head"))?;
            st.query_map(params![pool, n as i64], |r| r.get(0))
                .map_err(err("queue head"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("queue head"))
        })
    }

    fn queue_head_for(
        &self,
        pool: String,
        principal: String,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT task_id FROM tasks INDEXED BY tasks_principal_queue
                     WHERE pool=?1 AND principal=?2 AND queue_seq IS NOT NULL
                     ORDER BY queue_seq LIMIT ?3",
                )
                .map_err(err("queue head"))?;
            st.query_map(params![pool, principal, n as i64], |r| r.get(0))
                .map_err(err("queue head"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("queue head"))
        })
    }

    fn principal_counts(
        &self,
        pool: String,
        principal: String,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<PrincipalCounts>> {
        self.read(move |conn| {
            let tx = conn.transaction().map_err(err("begin"))?;
            let all = counts_tx(&tx, &pool, now)?;
            let queued = principal_queued(&tx, &pool, &principal)?;
            let running = principal_running(&tx, &pool, &principal, ms(now))?;
            Ok(PrincipalCounts {
                queued,
                running,
                others_queued: all.queued.saturating_sub(queued),
                others_running: all.running.saturating_sub(running),
            })
        })
    }

    fn pool_counts(&self, pool: String, now: Timestamp) -> BoxFuture<'_, Result<PoolCounts>> {
        self.read(move |conn| counts_tx(conn, &pool, now))
    }

    fn recent_durations(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<f64>>> {
        self.read(move |conn| durations_tx(conn, &pool, n))
    }

    fn queue_snapshot(
        &self,
        pool: String,
        task_id: String,
        now: Timestamp,
        durations: usize,
    ) -> BoxFuture<'_, Result<QueueSnapshot>> {
        self.read(move |conn| {
            let tx = conn.transaction().map_err(err("begin"))?;
            let position = position_tx(&tx, &pool, &task_id, ms(now))?;
            if position.is_none() {
                return Ok(QueueSnapshot::default());
            }
            Ok(QueueSnapshot {
                position,
                counts: counts_tx(&tx, &pool, now)?,
                recent_durations: durations_tx(&tx, &pool, durations)?,
            })
        })
    }

    fn load_secret(&self, task_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        self.read(move |conn| {
            conn.row_cached(
                "SELECT sealed FROM secrets WHERE task_id=?1",
                [task_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("load secret"))
        })
    }

    fn delete_secret(&self, task_id: String) -> BoxFuture<'_, Result<()>> {
        self.write(move |conn| {
            conn.exec_cached("DELETE FROM secrets WHERE task_id=?1", [task_id])
                .map_err(err("delete secret"))?;
            Ok(())
        })
    }

    fn finished_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT task_id FROM tasks WHERE completed_ms < ?1 ORDER BY completed_ms LIMIT ?2",
                )
                .map_err(err("finished before"))?;
            st.query_map(params![ms(before), limit as i64], |r| r.get(0))
                .map_err(err("finished before"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("finished before"))
        })
    }

    fn delete(&self, task_id: String) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            let queued: Option<(String, String)> = tx
                .row_cached(
                    "SELECT pool, principal FROM tasks WHERE task_id=?1 AND queue_seq IS NOT NULL",
                    [&task_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(err("delete task"))?;
            if let Some((pool, principal)) = queued {
                add_queued(tx, &pool, &principal, -1)?;
            }
            let n = tx
                .exec_cached("DELETE FROM tasks WHERE task_id=?1", [&task_id])
                .map_err(err("delete task"))?;
            tx.exec_cached("DELETE FROM secrets WHERE task_id=?1", [&task_id])
                .map_err(err("delete secret"))?;
            Ok(n > 0)
        })
    }

    fn purge_idempotency(&self, now: Timestamp) -> BoxFuture<'_, Result<u64>> {
        self.write(move |conn| {
            conn.exec_cached("DELETE FROM idempotency WHERE expires_ms <= ?1", [ms(now)])
                .map(|n| n as u64)
                .map_err(err("purge idempotency"))
        })
    }

    fn append_audit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>> {
        self.write(move |tx| {
            let doc = serde_json::to_string(&event).unwrap_or_default();
            tx.exec_cached(
                "INSERT OR REPLACE INTO audit(order_key, principal, action, task_id, pool, doc)
                 VALUES(?1,?2,?3,?4,?5,?6)",
                params![
                    event.order_key(),
                    event.principal,
                    event.action.as_str(),
                    event.task_id,
                    event.pool,
                    doc
                ],
            )
            .map_err(err("append audit"))?;
            Ok(())
        })
    }

    fn list_audit(&self, q: AuditQuery) -> BoxFuture<'_, Result<AuditPage>> {
        self.read(move |conn| {
            let (sql, args) = audit_list_sql(&q);
            let limit = q.limit.max(1);
            let mut st = conn.prepare_cached(&sql).map_err(err("list audit"))?;
            let rows: Vec<(String, String)> = st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(err("list audit"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("list audit"))?;
            let more = rows.len() > limit;
            let mut events = Vec::with_capacity(limit);
            let mut last = None;
            for (doc, key) in rows.into_iter().take(limit) {
                events.push(serde_json::from_str(&doc).map_err(|e| Error::Corrupt {
                    what: format!("audit event {key}"),
                    source: Box::new(e),
                })?);
                last = Some(key);
            }
            Ok(AuditPage::new(events, if more { last } else { None }))
        })
    }

    fn count_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        self.read(move |conn| {
            conn.row_cached(
                "SELECT COUNT(*) FROM audit WHERE order_key < ?1",
                [time_key(before)],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(err("count audit"))
        })
    }

    fn purge_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        self.write(move |conn| {
            conn.exec_cached("DELETE FROM audit WHERE order_key < ?1", [time_key(before)])
                .map(|n| n as u64)
                .map_err(err("purge audit"))
        })
    }

    fn store_schedule(
        &self,
        prev_version: Option<u64>,
        next: Schedule,
    ) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            let v: Option<i64> = tx
                .row_cached(
                    "SELECT version FROM schedules WHERE schedule_id=?1",
                    [&next.schedule_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("read schedule version"))?;
            let ok = match prev_version {
                None => v.is_none(),
                Some(p) => v == Some(p as i64) && next.version == p + 1,
            };
            if !ok {
                return Ok(false);
            }
            let due = (!next.paused).then(|| ms(next.next_slot));
            let doc = serde_json::to_string(&next).unwrap_or_default();
            tx.exec_cached(
                "INSERT OR REPLACE INTO schedules(schedule_id, principal, due_ms, created_key, version, doc)
                 VALUES(?1,?2,?3,?4,?5,?6)",
                params![
                    next.schedule_id,
                    next.principal,
                    due,
                    format!("{:013}:{}", ms(next.created_at).max(0), next.schedule_id),
                    next.version as i64,
                    doc
                ],
            )
            .map_err(err("store schedule"))?;
            Ok(true)
        })
    }

    fn load_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<Option<Schedule>>> {
        self.read(move |conn| {
            let doc: Option<String> = conn
                .row_cached(
                    "SELECT doc FROM schedules WHERE schedule_id=?1",
                    [&schedule_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("load schedule"))?;
            doc.map(|d| decode_schedule(&d, &schedule_id)).transpose()
        })
    }

    fn list_schedules(&self, principal: Option<String>) -> BoxFuture<'_, Result<Vec<Schedule>>> {
        self.read(move |conn| {
            let (sql, arg) = match &principal {
                Some(p) => (
                    "SELECT doc, schedule_id FROM schedules WHERE principal=?1 ORDER BY created_key",
                    Some(p.clone()),
                ),
                None => (
                    "SELECT doc, schedule_id FROM schedules WHERE ?1 IS NULL ORDER BY created_key",
                    None,
                ),
            };
            let mut st = conn.prepare_cached(sql).map_err(err("list schedules"))?;
            let rows: Vec<(String, String)> = st
                .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err("list schedules"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("list schedules"))?;
            rows.iter()
                .map(|(d, id)| decode_schedule(d, id))
                .collect()
        })
    }

    fn due_schedules(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT schedule_id FROM schedules WHERE due_ms IS NOT NULL AND due_ms <= ?1
                     ORDER BY due_ms LIMIT ?2",
                )
                .map_err(err("due schedules"))?;
            st.query_map(params![ms(now), limit as i64], |r| r.get(0))
                .map_err(err("due schedules"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("due schedules"))
        })
    }

    fn delete_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            tx.exec_cached("DELETE FROM schedules WHERE schedule_id=?1", [schedule_id])
                .map(|n| n > 0)
                .map_err(err("delete schedule"))
        })
    }

    fn store_delivery(
        &self,
        prev_version: Option<u64>,
        next: crate::hooks::Delivery,
    ) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            let v: Option<i64> = tx
                .row_cached(
                    "SELECT version FROM webhook_deliveries WHERE id=?1",
                    [&next.id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("read delivery version"))?;
            let ok = match prev_version {
                None => v.is_none(),
                Some(p) => v == Some(p as i64) && next.version == p + 1,
            };
            if !ok {
                return Ok(false);
            }
            let doc = serde_json::to_string(&next).unwrap_or_default();
            tx.exec_cached(
                "INSERT OR REPLACE INTO webhook_deliveries(id, due_ms, order_key, version, doc)
                 VALUES(?1,?2,?3,?4,?5)",
                params![
                    next.id,
                    next.due().map(ms),
                    next.order(),
                    next.version as i64,
                    doc
                ],
            )
            .map_err(err("store delivery"))?;
            Ok(true)
        })
    }

    fn load_delivery(&self, id: String) -> BoxFuture<'_, Result<Option<crate::hooks::Delivery>>> {
        self.read(move |conn| {
            let doc: Option<String> = conn
                .row_cached(
                    "SELECT doc FROM webhook_deliveries WHERE id=?1",
                    [&id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("load delivery"))?;
            doc.map(|d| decode_delivery(&d, &id)).transpose()
        })
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT id FROM webhook_deliveries WHERE due_ms IS NOT NULL AND due_ms <= ?1
                     ORDER BY due_ms LIMIT ?2",
                )
                .map_err(err("due deliveries"))?;
            st.query_map(params![ms(now), limit as i64], |r| r.get(0))
                .map_err(err("due deliveries"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("due deliveries"))
        })
    }

    fn list_deliveries(&self, limit: usize) -> BoxFuture<'_, Result<Vec<crate::hooks::Delivery>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT doc, id FROM webhook_deliveries ORDER BY order_key DESC LIMIT ?1",
                )
                .map_err(err("list deliveries"))?;
            let rows: Vec<(String, String)> = st
                .query_map([limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(err("list deliveries"))?
                .collect::<std::result::Result<_, _>>()
                .map_err(err("list deliveries"))?;
            rows.iter().map(|(d, id)| decode_delivery(d, id)).collect()
        })
    }
}

fn decode_delivery(doc: &str, id: &str) -> Result<crate::hooks::Delivery> {
    serde_json::from_str(doc).map_err(|e| Error::Corrupt {
        what: format!("webhook delivery {id}"),
        source: Box::new(e),
    })
}

fn decode_schedule(doc: &str, id: &str) -> Result<Schedule> {
    serde_json::from_str(doc).map_err(|e| Error::Corrupt {
        what: format!("schedule {id}"),
        source: Box::new(e),
    })
}

/// Assets of a scope one store ages out at most (the rest on later stores).
const AGE_OUT_BATCH: i64 = 16;

impl FindingsBackend for SqliteBackend {
    fn load_assets(
        &self,
        scope: String,
        asset_ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<StoredAsset>>>> {
        self.read(move |conn| {
            let mut out = Vec::with_capacity(asset_ids.len());
            for id in &asset_ids {
                let row: Option<(i64, String)> = conn
                    .row_cached(
                        "SELECT version, doc FROM finding_assets WHERE scope = ?1 AND asset_id = ?2",
                        params![scope, id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(err("load asset findings"))?;
                out.push(match row {
                    Some((v, doc)) => Some(StoredAsset {
                        version: v as u64,
                        doc: serde_json::from_str::<AssetDoc>(&doc)
                            .map_err(|e| Error::Corrupt {
                                what: format!("asset findings {id}"),
                                source: Box::new(e),
                            })?,
                    }),
                    None => None,
                });
            }
            Ok(out)
        })
    }

    fn resolve_aliases(
        &self,
        scope: String,
        aliases: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<String>>>> {
        self.read(move |conn| {
            aliases
                .iter()
                .map(|a| {
                    conn.row_cached(
                        "SELECT asset_id FROM finding_aliases WHERE scope = ?1 AND alias = ?2",
                        params![scope, a],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(err("resolve alias"))
                })
                .collect()
        })
    }

    fn store_asset(
        &self,
        scope: String,
        prev_version: u64,
        doc: AssetDoc,
        now: Timestamp,
        ttl: jiff::SignedDuration,
    ) -> BoxFuture<'_, Result<bool>> {
        self.write(move |tx| {
            let stored: Option<i64> = tx
                .row_cached(
                    "SELECT version FROM finding_assets WHERE scope = ?1 AND asset_id = ?2",
                    params![scope, doc.asset_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(err("store asset findings"))?;
            if stored.unwrap_or(0) as u64 != prev_version {
                return Ok(false);
            }
            let text = serde_json::to_string(&doc).unwrap_or_default();
            tx.exec_cached(
                "INSERT INTO finding_assets(scope, asset_id, version, stored_ms, doc)
                 VALUES(?1,?2,?3,?4,?5)
                 ON CONFLICT(scope, asset_id) DO UPDATE SET
                   version = excluded.version, stored_ms = excluded.stored_ms, doc = excluded.doc",
                params![scope, doc.asset_id, (prev_version + 1) as i64, ms(now), text],
            )
            .map_err(err("store asset findings"))?;
            for a in &doc.aliases {
                tx.exec_cached(
                    "INSERT OR REPLACE INTO finding_aliases(scope, alias, asset_id) VALUES(?1,?2,?3)",
                    params![scope, a, doc.asset_id],
                )
                .map_err(err("store alias"))?;
            }
            // Age out a few assets no scan covered within the TTL, with their aliases.
            let horizon = ms(now) - ttl.as_millis() as i64;
            tx.exec_cached(
                "DELETE FROM finding_aliases WHERE scope = ?1 AND asset_id IN (
                   SELECT asset_id FROM finding_assets WHERE scope = ?1 AND stored_ms < ?2 LIMIT ?3)",
                params![scope, horizon, AGE_OUT_BATCH],
            )
            .map_err(err("age out aliases"))?;
            tx.exec_cached(
                "DELETE FROM finding_assets WHERE scope = ?1 AND asset_id IN (
                   SELECT asset_id FROM finding_assets WHERE scope = ?1 AND stored_ms < ?2 LIMIT ?3)",
                params![scope, horizon, AGE_OUT_BATCH],
            )
            .map_err(err("age out assets"))?;
            Ok(true)
        })
    }

    fn list_assets(
        &self,
        scope: String,
        now: Timestamp,
        ttl: jiff::SignedDuration,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let horizon = ms(now) - ttl.as_millis() as i64;
            let mut st = conn
                .prepare_cached(
                    "SELECT asset_id FROM finding_assets WHERE scope = ?1 AND stored_ms >= ?2
                     ORDER BY asset_id",
                )
                .map_err(err("list assets"))?;
            let rows = st
                .query_map(params![scope, horizon], |r| r.get(0))
                .map_err(err("list assets"))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(err("list assets"))
        })
    }

    fn finding_scopes(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT DISTINCT scope FROM finding_assets ORDER BY scope")
                .map_err(err("list finding scopes"))?;
            let rows = st
                .query_map([], |r| r.get(0))
                .map_err(err("list finding scopes"))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(err("list finding scopes"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditAction;

    /// Each audit filter is answered by walking an index in order: no plan may sort
    /// (`USE TEMP B-TREE`), and principal or task filters use their own index.
    #[test]
    fn audit_listings_walk_an_index_and_never_sort() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.db");
        drop(SqliteBackend::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        let t: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        let cases = [
            // A WITHOUT ROWID table is its primary key: a plain scan walks it in order.
            (AuditQuery::new(50), "SCAN audit"),
            (AuditQuery::new(50).since(t), "PRIMARY KEY"),
            (
                AuditQuery::new(50).principal("alice").since(t).until(t),
                "audit_principal",
            ),
            (
                AuditQuery::new(50)
                    .principal("alice")
                    .cursor("0000000000001:ab"),
                "audit_principal",
            ),
            (AuditQuery::new(50).task_id("x"), "audit_task"),
            (AuditQuery::new(50).pool("nessus"), "audit_pool"),
            (
                AuditQuery::new(50).action(AuditAction::Submit),
                "audit_action",
            ),
            (
                AuditQuery::new(50)
                    .principal("alice")
                    .action(AuditAction::Submit),
                "audit_",
            ),
        ];
        for (q, index) in cases {
            let (sql, args) = audit_list_sql(&q);
            let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let plan: Vec<String> = st
                .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get(3))
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(!plan.contains("TEMP B-TREE"), "{q:?} sorts: {plan}");
            assert!(plan.contains(index), "{q:?} does not use {index}: {plan}");
        }
    }
}
