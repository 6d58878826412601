//! Redis backend. Every key of a pool carries the `{pool}` hash tag so each Lua
//! script touches one slot (Redis Cluster safe). Task writes are compare-and-set
//! scripts (`lua/cas.lua`) that also maintain the indexes; creation reserves the
//! idempotency key in the same script (`lua/create.lua`). Reads are retried on
//! connection errors; the `ConnectionManager` reconnects by itself.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jiff::Timestamp;
use redis::{AsyncCommands, Cmd, Script, Value};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, AuditPage, AuditQuery, time_key};
use crate::backend::{
    Backend, ClaimRequest, CreateOutcome, IdemReservation, ListQuery, Page, PoolCounts,
    PrincipalCounts, QueueSnapshot, duration_secs, fair_ahead, fair_order, ms, order_key, place,
};
use crate::error::{BackendKind, Error, Result};
use crate::findings::{AssetDoc, FindingsBackend, StoredAsset};
use crate::redis_con::{Con, RedisTopology};
use crate::schedule::Schedule;
use crate::task::{Task, TaskStatus};

static CAS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../lua/ops.lua"),
        include_str!("../lua/cas.lua")
    ))
});
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("../lua/ops.lua"),
        include_str!("../lua/create.lua")
    ))
});

static STORE_ASSET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/store_asset.lua")));

/// Every scope with findings (a set of its own; written beside the scope's script).
const FINDING_SCOPES: &str = "nq:finding-scopes";
/// Assets of a scope one store ages out at most.
const AGE_OUT_BATCH: usize = 16;

static SCHEDULE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/schedule.lua")));

/// Schedule keys share the `{sched}` hash tag: one slot, one script per write.
const SCHED_DOCS: &str = "nq:{sched}:doc";
const SCHED_VERSIONS: &str = "nq:{sched}:ver";
const SCHED_DUE: &str = "nq:{sched}:due";
const SCHED_ALL: &str = "nq:{sched}:all";

/// Webhook outbox keys share the `{hooks}` hash tag (written by `schedule.lua`).
const HOOK_DOCS: &str = "nq:{hooks}:doc";
const HOOK_VERSIONS: &str = "nq:{hooks}:ver";
const HOOK_DUE: &str = "nq:{hooks}:due";
const HOOK_ALL: &str = "nq:{hooks}:all";

fn schedule_order(s: &Schedule) -> String {
    format!("{:013}:{}", ms(s.created_at).max(0), s.schedule_id)
}

static IDEM_OWNER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/idem_owner.lua")));

/// How long an owner record may point at a pool without that pool's reservation
/// before another pool may take the key over: only a process that died (or stalled
/// this long) between the two commands of a submit leaves such a record.
const IDEM_OWNER_GRACE_MS: i64 = 30_000;

const POOLS: &str = "nq:pools";
/// Audit trail keys share the `{audit}` hash tag, so one atomic pipeline can write an
/// event and all its index entries (Redis Cluster safe).
const AUDIT_ALL: &str = "nq:{audit}:all";
const AUDIT_DOCS: &str = "nq:{audit}:doc";
/// Index entries an audit listing reads per round trip while it filters.
const AUDIT_BATCH: usize = 200;
/// Index entries one audit listing examines before it returns what it has with a
/// cursor: only filters beyond the one index used (e.g. principal + action) can make
/// it scan, and one call must never read the whole trail.
const AUDIT_SCAN_BUDGET: usize = 10_000;
/// Events one purge round deletes.
const AUDIT_PURGE_BATCH: isize = 500;
const TASK_POOL: &str = "nq:task-pool";
const CLAIM_SCAN: isize = 64;
const READ_RETRIES: u32 = 20;
/// How long a write waits for a replica's confirmation (`WAIT 1 …`).
const CONFIRM_WAIT_MS: u64 = 2_000;
/// How long a primary found without replicas takes writes unconfirmed before it
/// is checked again.
const ALONE_RECHECK: Duration = Duration::from_secs(5);

/// The Redis backend.
#[derive(Clone)]
pub struct RedisBackend {
    con: Con,
    /// Wait for one replica to confirm each script's writes before acknowledging
    /// them (Sentinel and Cluster with replicas; see `Con::replicas_confirm_writes`).
    confirm: bool,
    /// Hash tags (slots) whose primary was found without any replica, and until
    /// when writes there skip `WAIT` (see `eval`): otherwise every write to a shard
    /// that lost its replica would wait the full `CONFIRM_WAIT_MS`.
    alone: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisBackend")
    }
}

fn rerr(op: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |e| {
        let retryable = e.is_io_error()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_connection_dropped()
            || matches!(
                e.kind(),
                redis::ErrorKind::Server(
                    redis::ServerErrorKind::BusyLoading
                        // A failover in progress (Cluster, Sentinel): not applied.
                        | redis::ServerErrorKind::ClusterDown
                        | redis::ServerErrorKind::TryAgain
                        | redis::ServerErrorKind::MasterDown
                        | redis::ServerErrorKind::ReadOnly
                )
            );
        Error::Backend {
            backend: BackendKind::Redis,
            op,
            retryable,
            source: Box::new(e),
        }
    }
}

fn corrupt(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Corrupt {
        what: what.to_owned(),
        source: Box::new(e),
    }
}

struct K;
impl K {
    fn task(pool: &str, id: &str) -> String {
        format!("nq:{{{pool}}}:task:{id}")
    }
    fn queue(pool: &str) -> String {
        format!("nq:{{{pool}}}:queue")
    }
    fn seq(pool: &str) -> String {
        format!("nq:{{{pool}}}:seq")
    }
    fn leases(pool: &str) -> String {
        format!("nq:{{{pool}}}:leases")
    }
    fn slots(pool: &str, inst: &str) -> String {
        format!("nq:{{{pool}}}:slots:{inst}")
    }
    fn all(pool: &str) -> String {
        format!("nq:{{{pool}}}:all")
    }
    fn status(pool: &str, s: TaskStatus) -> String {
        format!("nq:{{{pool}}}:st:{s}")
    }
    fn dlq(pool: &str) -> String {
        format!("nq:{{{pool}}}:dlq")
    }
    fn done(pool: &str) -> String {
        format!("nq:{{{pool}}}:done")
    }
    fn durations(pool: &str) -> String {
        format!("nq:{{{pool}}}:durations")
    }
    fn idem(pool: &str, scope: &str) -> String {
        format!("nq:{{{pool}}}:idem:{scope}")
    }
    /// Which pool a caller's key belongs to; keyed by the scope alone, so the same
    /// key sent for two pools meets here (its own slot: Cluster safe).
    fn idem_owner(scope: &str) -> String {
        format!("nq:idem-owner:{{{scope}}}")
    }
    fn secret(pool: &str, id: &str) -> String {
        format!("nq:{{{pool}}}:secret:{id}")
    }
    /// The secondary indexes an audit event is entered in (besides `AUDIT_ALL`),
    /// each a lexicographic sorted set of order keys. Redis drops a sorted set when
    /// its last member goes, so purged principals and tasks leave no keys behind.
    fn audit_indexes(e: &AuditEvent) -> Vec<String> {
        let mut v = vec![
            Self::audit_principal(&e.principal),
            Self::audit_action(e.action.as_str()),
        ];
        if let Some(t) = &e.task_id {
            v.push(Self::audit_task(t));
        }
        if let Some(p) = &e.pool {
            v.push(Self::audit_pool(p));
        }
        v
    }
    fn audit_principal(p: &str) -> String {
        format!("nq:{{audit}}:p:{p}")
    }
    fn audit_action(a: &str) -> String {
        format!("nq:{{audit}}:a:{a}")
    }
    fn audit_task(t: &str) -> String {
        format!("nq:{{audit}}:t:{t}")
    }
    fn audit_pool(p: &str) -> String {
        format!("nq:{{audit}}:pool:{p}")
    }
    /// Per-principal indexes of a pool (same slot as the pool). The principal is
    /// hex-encoded so no name can forge another key's shape.
    fn p_all(pool: &str, principal: &str) -> String {
        format!("nq:{{{pool}}}:p:{}:all", hex::encode(principal))
    }
    fn p_status(pool: &str, principal: &str, s: TaskStatus) -> String {
        format!("nq:{{{pool}}}:p:{}:st:{s}", hex::encode(principal))
    }
    fn p_dlq(pool: &str, principal: &str) -> String {
        format!("nq:{{{pool}}}:p:{}:dlq", hex::encode(principal))
    }
    /// The principal's queued tasks, scored by the same sequence as `queue`.
    fn p_queue(pool: &str, principal: &str) -> String {
        format!("nq:{{{pool}}}:p:{}:queue", hex::encode(principal))
    }
    /// The principal's running tasks, scored by lease expiry (live = score > now).
    fn p_leases(pool: &str, principal: &str) -> String {
        format!("nq:{{{pool}}}:p:{}:leases", hex::encode(principal))
    }
    /// Principals (raw names) with at least one queued task in the pool.
    fn principals(pool: &str) -> String {
        format!("nq:{{{pool}}}:principals")
    }
}

#[derive(Serialize, Deserialize)]
struct IdemOwner {
    pool: String,
    at_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct IdemRecord {
    task_id: String,
    request_hash: String,
}

/// Script keys and ops under construction.
struct Ops {
    keys: Vec<String>,
    args: Vec<String>,
    n: usize,
}

impl Ops {
    fn new(task_key: String) -> Self {
        Self {
            keys: vec![task_key],
            args: Vec::new(),
            n: 0,
        }
    }
    fn key(&mut self, k: String) -> usize {
        if let Some(i) = self.keys.iter().position(|x| *x == k) {
            return i + 1;
        }
        self.keys.push(k);
        self.keys.len()
    }
    fn op(&mut self, name: &str, key: String, a: String, b: String) {
        let i = self.key(key);
        self.args.extend([name.to_owned(), i.to_string(), a, b]);
        self.n += 1;
    }
}

/// Index updates for a transition `prev → next` (`prev` None = creation,
/// `next` None = deletion).
fn index_ops(ops: &mut Ops, prev: Option<&Task>, next: Option<&Task>) {
    let Some(any) = next.or(prev) else {
        return;
    };
    let pool = any.pool.as_str();
    let who = any.principal.as_str();
    let id = any.task_id.as_str();
    let ok = order_key(any);
    let status = |t: Option<&Task>| t.map(|t| t.status);
    if prev.is_none() {
        ops.op("ZADD", K::all(pool), "0".into(), ok.clone());
        ops.op("ZADD", K::p_all(pool, who), "0".into(), ok.clone());
    }
    if next.is_none() {
        ops.op("ZREM", K::all(pool), String::new(), ok.clone());
        ops.op("ZREM", K::p_all(pool, who), String::new(), ok.clone());
    }
    if status(prev) != status(next) {
        if let Some(s) = status(prev) {
            ops.op("ZREM", K::status(pool, s), String::new(), ok.clone());
            ops.op("ZREM", K::p_status(pool, who, s), String::new(), ok.clone());
        }
        if let Some(s) = status(next) {
            ops.op("ZADD", K::status(pool, s), "0".into(), ok.clone());
            ops.op("ZADD", K::p_status(pool, who, s), "0".into(), ok.clone());
        }
    }
    let queued = |t: Option<&Task>| t.is_some_and(|t| t.status == TaskStatus::Queued);
    if queued(next) && !queued(prev) {
        let seq = ops.key(K::seq(pool));
        ops.op("ENQ", K::queue(pool), seq.to_string(), id.to_owned());
        ops.op(
            "ZADDSEQ",
            K::p_queue(pool, who),
            String::new(),
            id.to_owned(),
        );
        ops.op("SADD", K::principals(pool), String::new(), who.to_owned());
    } else if queued(prev) && !queued(next) {
        ops.op("ZREM", K::queue(pool), String::new(), id.to_owned());
        ops.op("ZREM", K::p_queue(pool, who), String::new(), id.to_owned());
        let pq = ops.key(K::p_queue(pool, who));
        ops.op(
            "SREMEMPTY",
            K::principals(pool),
            pq.to_string(),
            who.to_owned(),
        );
    }
    let lease = |t: Option<&Task>| {
        t.filter(|t| t.status == TaskStatus::Running)
            .and_then(|t| Some((t.lease.as_ref()?.expires_at, t.instance.clone()?)))
    };
    let (pl, nl) = (lease(prev), lease(next));
    if let Some((_, pi)) = &pl
        && nl.as_ref().is_none_or(|(_, ni)| ni != pi)
    {
        ops.op("ZREM", K::slots(pool, pi), String::new(), id.to_owned());
    }
    match nl {
        Some((exp, ni)) => {
            ops.op("ZADD", K::leases(pool), ms(exp).to_string(), id.to_owned());
            ops.op(
                "ZADD",
                K::p_leases(pool, who),
                ms(exp).to_string(),
                id.to_owned(),
            );
            ops.op(
                "ZADD",
                K::slots(pool, &ni),
                ms(exp).to_string(),
                id.to_owned(),
            );
        }
        None if pl.is_some() => {
            ops.op("ZREM", K::leases(pool), String::new(), id.to_owned());
            ops.op("ZREM", K::p_leases(pool, who), String::new(), id.to_owned());
        }
        None => {}
    }
    let dl = |t: Option<&Task>| t.is_some_and(Task::is_dead_lettered);
    if dl(next) && !dl(prev) {
        ops.op("ZADD", K::dlq(pool), "0".into(), ok.clone());
        ops.op("ZADD", K::p_dlq(pool, who), "0".into(), ok);
    } else if dl(prev) && !dl(next) {
        ops.op("ZREM", K::dlq(pool), String::new(), ok.clone());
        ops.op("ZREM", K::p_dlq(pool, who), String::new(), ok);
    }
    let done = |t: Option<&Task>| {
        t.filter(|t| t.status.is_terminal())
            .and_then(|t| t.completed_at)
    };
    match (done(prev), done(next)) {
        (_, Some(c)) => ops.op("ZADD", K::done(pool), ms(c).to_string(), id.to_owned()),
        (Some(_), None) => ops.op("ZREM", K::done(pool), String::new(), id.to_owned()),
        (None, None) => {}
    }
    if let Some(n) = next
        && status(prev) != Some(n.status)
        && let Some(secs) = duration_secs(n)
    {
        ops.op(
            "LPUSHTRIM",
            K::durations(pool),
            secs.to_string(),
            "50".into(),
        );
    }
}

fn encode(t: &Task) -> String {
    serde_json::to_string(t).unwrap_or_default()
}

impl RedisBackend {
    /// Connects to one server (`redis://…`, `rediss://…`) and checks that it will
    /// never evict our keys.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_topology(&RedisTopology::Standalone(SecretString::from(url))).await
    }

    /// Connects to a standalone server, a Sentinel-watched master or a Cluster, and
    /// checks that every primary will never evict our keys.
    pub async fn connect_topology(topology: &RedisTopology) -> Result<Self> {
        Con::validate(topology)?;
        let con = Con::connect(topology).await.map_err(rerr("connect"))?;
        let policies = con
            .config_get_on_primaries("maxmemory-policy")
            .await
            .map_err(|e| Error::UnsafeBackend {
                backend: BackendKind::Redis,
                reason: format!(
                    "cannot read maxmemory-policy (CONFIG GET failed: {e}); the queue must not run on a Redis that may evict keys"
                ),
            })?;
        if let Some(bad) = policies.iter().find(|p| *p != "noeviction") {
            return Err(Error::UnsafeBackend {
                backend: BackendKind::Redis,
                reason: format!(
                    "maxmemory-policy is '{bad}', which can evict queued tasks and idempotency keys; set it to 'noeviction'"
                ),
            });
        }
        if policies.is_empty() {
            return Err(Error::UnsafeBackend {
                backend: BackendKind::Redis,
                reason: "no primary answered CONFIG GET maxmemory-policy".to_owned(),
            });
        }
        let confirm = con
            .replicas_confirm_writes()
            .await
            .map_err(rerr("connect"))?;
        tracing::info!(
            confirm,
            "redis: writes confirmed by a replica before acknowledged"
        );
        let me = Self {
            con,
            confirm,
            alone: Arc::default(),
        };
        me.backfill_principal_indexes().await?;
        Ok(me)
    }

    /// Runs a script. With `confirm`, `WAIT 1` follows it in the same pipeline (so
    /// on the same connection and node) and a write no replica confirmed within
    /// `CONFIRM_WAIT_MS` is reported as a retryable failure, not acknowledged: a
    /// failover could promote a replica that never saw it (it may still have
    /// applied, like a write whose reply was lost; CAS callers re-read). A primary
    /// left without any replica (after a failover) acknowledges alone rather than
    /// refusing every write (`Con::unconfirmed_write_stands`).
    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> redis::RedisResult<T> {
        let mut con = self.con.clone();
        let tag = hash_tag(keys.first().map_or("", String::as_str)).to_owned();
        let alone = {
            let mut m = self.alone.lock().unwrap_or_else(|e| e.into_inner());
            m.retain(|_, until| *until > Instant::now());
            m.contains_key(&tag)
        };
        if !self.confirm || alone {
            let mut inv = script.prepare_invoke();
            for k in keys {
                inv.key(k);
            }
            for a in args {
                inv.arg(a);
            }
            return inv.invoke_async(&mut con).await;
        }
        let generation = self.con.generation();
        let mut evalsha = redis::cmd("EVALSHA");
        evalsha
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        for _ in 0..3 {
            let mut p = redis::pipe();
            p.ignore_errors()
                .add_command(evalsha.clone())
                .cmd("WAIT")
                .arg(1)
                .arg(CONFIRM_WAIT_MS);
            let replies: Vec<Value> = p.query_async(&mut con).await?;
            let [reply, confirmed] = <[Value; 2]>::try_from(replies).map_err(|_| {
                redis::RedisError::from((
                    redis::ErrorKind::Parse,
                    "EVALSHA + WAIT: two replies expected",
                ))
            })?;
            match reply {
                // Nothing ran: load the script (on every node) and send again.
                Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::NoScript) => {
                    script.load_async(&mut con).await?;
                }
                Value::ServerError(e) => return Err(e.into()),
                v => {
                    let n: i64 = redis::from_redis_value(confirmed)?;
                    if n < 1 {
                        if !self
                            .con
                            .unconfirmed_write_stands(&keys[0], generation)
                            .await?
                        {
                            return Err(redis::RedisError::from(std::io::Error::new(
                                std::io::ErrorKind::TimedOut,
                                "no replica confirmed the write in time; not acknowledged",
                            )));
                        }
                        tracing::warn!(
                            "redis: a primary has no replica; writes there are acknowledged unconfirmed"
                        );
                        self.alone
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(tag, Instant::now() + ALONE_RECHECK);
                    }
                    return Ok(redis::from_redis_value(v)?);
                }
            }
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::NoScript),
            "script not loaded after three tries",
        )))
    }

    /// Sends commands whose keys may live in different slots (`group` names the
    /// slot, e.g. the pool): one pipeline on a single server; on a Cluster, where a
    /// pipeline must stay in one slot, one pipeline per group, concurrently. The
    /// replies come back in the order of `cmds`.
    async fn query_grouped(mut con: Con, cmds: &[(String, Cmd)]) -> redis::RedisResult<Vec<Value>> {
        if !con.is_cluster() {
            let mut p = redis::pipe();
            for (_, c) in cmds {
                p.add_command(c.clone());
            }
            return p.query_async(&mut con).await;
        }
        let mut groups: Vec<(&str, Vec<usize>, redis::Pipeline)> = Vec::new();
        for (i, (g, c)) in cmds.iter().enumerate() {
            let at = match groups.iter().position(|(k, _, _)| *k == g.as_str()) {
                Some(at) => at,
                None => {
                    groups.push((g.as_str(), Vec::new(), redis::pipe()));
                    groups.len() - 1
                }
            };
            groups[at].1.push(i);
            groups[at].2.add_command(c.clone());
        }
        let replies = futures::future::try_join_all(groups.iter().map(|(_, _, p)| {
            let mut con = con.clone();
            async move { p.query_async::<Vec<Value>>(&mut con).await }
        }))
        .await?;
        let mut out = vec![Value::Nil; cmds.len()];
        for ((_, idx, _), vals) in groups.iter().zip(replies) {
            for (i, v) in idx.iter().zip(vals) {
                out[*i] = v;
            }
        }
        Ok(out)
    }

    /// Retries a read on connection errors while Redis restarts.
    async fn read<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T>
    where
        F: Fn(Con) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let mut delay = Duration::from_millis(50);
        for attempt in 0.. {
            match f(self.con.clone()).await.map_err(rerr(op)) {
                Err(e) if e.is_retryable() && attempt < READ_RETRIES => {
                    tracing::debug!(op, attempt, "redis read failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    /// The position of `task` in its pool's fair order (see `backend::fair_ahead`),
    /// with the pool's counts and its `durations` most recent scan durations, in two
    /// round trips whatever the number of principals: the task's own rank and the
    /// pool's figures, then one pipeline of three counts per other principal (one
    /// round trip each before, so every submit and status read paid a round trip per
    /// principal with queued work).
    async fn snapshot_of(
        &self,
        pool: &str,
        task: &Task,
        now: Timestamp,
        durations: usize,
    ) -> Result<QueueSnapshot> {
        let live = format!("({}", ms(now));
        let (pool, who, id, live) = (pool, &task.principal, &task.task_id, &live);
        type Head = (
            Option<f64>,
            Option<u64>,
            u64,
            Vec<String>,
            u64,
            u64,
            u64,
            Vec<f64>,
            u64,
        );
        let (
            seq,
            rank,
            own_running,
            principals,
            queued,
            running,
            dead_lettered,
            recent,
            pending_approval,
        ): Head = self
            .read("queue position", |mut c| async move {
                redis::pipe()
                    .zscore(K::queue(pool), id)
                    .zrank(K::p_queue(pool, who), id)
                    .zcount(K::p_leases(pool, who), live, "+inf")
                    .smembers(K::principals(pool))
                    .zcard(K::queue(pool))
                    .zcount(K::leases(pool), live, "+inf")
                    .zcard(K::dlq(pool))
                    // LRANGE 0 -1 would be the whole list: ask for one and drop it.
                    .lrange(K::durations(pool), 0, durations.max(1) as isize - 1)
                    .zcard(K::status(pool, TaskStatus::PendingApproval))
                    .query_async(&mut c)
                    .await
            })
            .await?;
        let (Some(seq), Some(rank)) = (seq, rank) else {
            return Ok(QueueSnapshot::default());
        };
        let rank = rank + 1;
        let others: Vec<&String> = principals.iter().filter(|p| *p != who).collect();
        let mut position = rank;
        if !others.is_empty() {
            let older = format!("({seq}");
            let mut pipe = redis::pipe();
            for other in &others {
                pipe.zcard(K::p_queue(pool, other))
                    .zcount(K::p_leases(pool, other), live, "+inf")
                    .zcount(K::p_queue(pool, other), "-inf", &older);
            }
            let pipe = &pipe;
            let counts: Vec<u64> = self
                .read("queue position", |mut c| async move {
                    pipe.query_async(&mut c).await
                })
                .await?;
            for q in counts.chunks_exact(3) {
                position += fair_ahead(rank, own_running, q[0], q[1], q[2]);
            }
        }
        Ok(QueueSnapshot {
            position: Some(position),
            counts: PoolCounts {
                queued,
                running,
                dead_lettered,
                pending_approval,
            },
            recent_durations: if durations == 0 { Vec::new() } else { recent },
        })
    }

    async fn pool_of(&self, id: &str) -> Result<Option<String>> {
        let id = id.to_owned();
        self.read("task pool", move |mut c| {
            let id = id.clone();
            async move { c.hget(TASK_POOL, id).await }
        })
        .await
    }

    async fn pools(&self) -> Result<Vec<String>> {
        let mut v: Vec<String> = self
            .read("pools", |mut c| async move { c.smembers(POOLS).await })
            .await?;
        v.sort();
        Ok(v)
    }

    async fn load_in(&self, pool: &str, id: &str) -> Result<Option<Task>> {
        let key = K::task(pool, id);
        let doc: Option<String> = self
            .read("load task", move |mut c| {
                let key = key.clone();
                async move { c.hget(key, "doc").await }
            })
            .await?;
        doc.map(|d| serde_json::from_str(&d).map_err(|e| corrupt(id, e)))
            .transpose()
    }

    async fn cas(
        &self,
        prev: &Task,
        next: Option<&Task>,
        extra: Option<(String, u32)>,
    ) -> Result<i64> {
        let mut ops = Ops::new(K::task(&prev.pool, &prev.task_id));
        if let Some((slot_key, max)) = extra {
            let now = ms(Timestamp::now()).to_string();
            ops.op("CAP", slot_key, now, max.to_string());
        }
        index_ops(&mut ops, Some(prev), next);
        if next.is_none() {
            ops.op(
                "DEL",
                K::secret(&prev.pool, &prev.task_id),
                String::new(),
                String::new(),
            );
        }
        let mut args = vec![
            prev.version.to_string(),
            next.map_or(0, |n| n.version).to_string(),
            next.map(encode).unwrap_or_default(),
            ops.n.to_string(),
        ];
        args.extend(ops.args);
        self.eval(&CAS, &ops.keys, &args)
            .await
            .map_err(rerr("compare-and-set"))
    }

    fn page(
        mut rows: Vec<(String, String, String)>,
        limit: usize,
    ) -> (Vec<(String, String)>, Option<String>) {
        // rows: (order key, pool, id); newest first across pools.
        rows.sort_by(|a, b| b.0.cmp(&a.0));
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next = if more {
            rows.last().map(|r| r.0.clone())
        } else {
            None
        };
        (rows.into_iter().map(|(_, p, id)| (p, id)).collect(), next)
    }
}

impl RedisBackend {
    /// The documents of `docs_key` (a hash by id) named by `order`, a listing's order
    /// keys `{order}:{id}`, in that order; ids whose document is gone are skipped.
    /// Schedules and webhook deliveries are listed this way.
    async fn docs_in_order<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        docs_key: &'static str,
        order: &[String],
    ) -> Result<Vec<T>> {
        let ids: Vec<String> = order
            .iter()
            .filter_map(|k| k.split_once(':').map(|(_, id)| id.to_owned()))
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let docs: Vec<Option<String>> = self
            .read(op, |mut c| {
                let ids = ids.clone();
                async move {
                    redis::cmd("HMGET")
                        .arg(docs_key)
                        .arg(ids)
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        ids.iter()
            .zip(docs)
            .filter_map(|(id, d)| d.map(|d| serde_json::from_str(&d).map_err(|e| corrupt(id, e))))
            .collect()
    }
}

impl RedisBackend {
    /// Builds the per-principal indexes of every pool written before they existed
    /// (claims and per-principal listings read only those, so an old queued task
    /// would otherwise never run). Once per pool, marked by `nq:{pool}:pidx-v1`.
    /// Each entry is an idempotent ZADD/SADD taken from the task's stored document
    /// and the pool's own indexes, so two processes doing it at once agree; processes
    /// of the previous version must not write meanwhile (upgrade them together).
    async fn backfill_principal_indexes(&self) -> Result<()> {
        for pool in self.pools().await? {
            let marker = format!("nq:{{{pool}}}:pidx-v1");
            let mut con = self.con.clone();
            let done: bool = con.exists(&marker).await.map_err(rerr("backfill"))?;
            if done {
                continue;
            }
            let mut start = 0isize;
            loop {
                let keys: Vec<String> = con
                    .zrange(K::all(&pool), start, start + 499)
                    .await
                    .map_err(rerr("backfill"))?;
                if keys.is_empty() {
                    break;
                }
                start += keys.len() as isize;
                let mut pipe = redis::pipe();
                for k in &keys {
                    let id = id_of(k);
                    pipe.hget(K::task(&pool, id), "doc")
                        .zscore(K::queue(&pool), id);
                }
                let replies: Vec<redis::Value> =
                    pipe.query_async(&mut con).await.map_err(rerr("backfill"))?;
                let mut write = redis::pipe();
                for (k, pair) in keys.iter().zip(replies.chunks(2)) {
                    let [doc, seq] = pair else { continue };
                    let Ok(Some(doc)) = redis::from_redis_value_ref::<Option<String>>(doc) else {
                        continue;
                    };
                    let Ok(t) = serde_json::from_str::<Task>(&doc) else {
                        continue;
                    };
                    let who = t.principal.as_str();
                    write.zadd(K::p_all(&pool, who), k, 0).ignore();
                    write.zadd(K::p_status(&pool, who, t.status), k, 0).ignore();
                    if t.is_dead_lettered() {
                        write.zadd(K::p_dlq(&pool, who), k, 0).ignore();
                    }
                    if let Ok(Some(seq)) = redis::from_redis_value_ref::<Option<f64>>(seq) {
                        write
                            .zadd(K::p_queue(&pool, who), &t.task_id, seq)
                            .ignore()
                            .sadd(K::principals(&pool), who)
                            .ignore();
                    }
                    if let (TaskStatus::Running, Some(l)) = (t.status, &t.lease) {
                        write
                            .zadd(K::p_leases(&pool, who), &t.task_id, ms(l.expires_at))
                            .ignore();
                    }
                }
                write
                    .query_async::<()>(&mut con)
                    .await
                    .map_err(rerr("backfill"))?;
            }
            con.set::<_, _, ()>(&marker, 1)
                .await
                .map_err(rerr("backfill"))?;
        }
        Ok(())
    }
}

/// The `{…}` hash tag of a key (what Redis Cluster hashes), or the whole key.
fn hash_tag(key: &str) -> &str {
    key.split_once('{')
        .and_then(|(_, rest)| rest.split_once('}'))
        .map_or(key, |(tag, _)| tag)
}

fn id_of(order_key: &str) -> &str {
    order_key.split_once(':').map_or(order_key, |(_, id)| id)
}

impl RedisBackend {
    /// Makes `pool` the owner of a caller's idempotency key, so that keys are scoped
    /// per caller across pools (the pool is part of the request hash, so the same key
    /// for another pool is a conflict). The reservation itself stays in the pool's
    /// slot, atomic with the task's creation (`create.lua`). Returns the outcome to
    /// report when another pool owns the key.
    async fn own_idempotency_key(
        &self,
        pool: &str,
        r: &IdemReservation,
        task: &Task,
    ) -> Result<Option<CreateOutcome>> {
        let mut con = self.con.clone();
        let owner_key = K::idem_owner(&r.scope_key);
        let now_ms = ms(task.created_at);
        let mine = serde_json::to_string(&IdemOwner {
            pool: pool.to_owned(),
            at_ms: now_ms,
        })
        .unwrap_or_default();
        let ttl = (ms(r.expires_at) - now_ms).max(1).to_string();
        let mut replace = String::new();
        for _ in 0..3 {
            let out: Vec<String> = self
                .eval(
                    &IDEM_OWNER,
                    std::slice::from_ref(&owner_key),
                    &[mine.clone(), ttl.clone(), replace.clone()],
                )
                .await
                .map_err(rerr("idempotency owner"))?;
            let [_, cur] = out.as_slice() else {
                return Ok(None);
            };
            let owner: IdemOwner =
                serde_json::from_str(cur).map_err(|e| corrupt("idempotency owner", e))?;
            if owner.pool == pool {
                return Ok(None);
            }
            let rec: Option<String> = con
                .get(K::idem(&owner.pool, &r.scope_key))
                .await
                .map_err(rerr("idempotency lookup"))?;
            if let Some(rec) = rec {
                let rec: IdemRecord =
                    serde_json::from_str(&rec).map_err(|e| corrupt("idempotency record", e))?;
                return Ok(Some(CreateOutcome::Existing {
                    task_id: rec.task_id,
                    request_hash: rec.request_hash,
                }));
            }
            if now_ms - owner.at_ms < IDEM_OWNER_GRACE_MS {
                // The other pool's submit is between its two commands: whatever it
                // creates, this request (another pool) differs from it.
                return Ok(Some(CreateOutcome::Existing {
                    task_id: String::new(),
                    request_hash: format!("pool:{}", owner.pool),
                }));
            }
            // Left by a submit that died half-way (or whose reservation was dropped):
            // take the key over, unless someone else changed it meanwhile.
            replace = cur.clone();
        }
        Err(Error::Contention {
            task_id: "(new submission)".to_owned(),
        })
    }
}

impl Backend for RedisBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Redis
    }

    fn create(
        &self,
        mut task: Task,
        idem: Option<IdemReservation>,
        sealed_secret: Option<Vec<u8>>,
        max_queued: u64,
    ) -> BoxFuture<'_, Result<CreateOutcome>> {
        Box::pin(async move {
            task.version = 1;
            let pool = task.pool.clone();
            let con = self.con.clone();
            // Registered first: a crash before the script leaves only a harmless
            // pointer to a task that does not exist.
            // Two global keys in two slots: one pipeline, or two on a Cluster.
            let mut sadd = redis::cmd("SADD");
            sadd.arg(POOLS).arg(&pool);
            let mut hset = redis::cmd("HSET");
            hset.arg(TASK_POOL).arg(&task.task_id).arg(&pool);
            Self::query_grouped(
                con.clone(),
                &[(POOLS.to_owned(), sadd), (TASK_POOL.to_owned(), hset)],
            )
            .await
            .map_err(rerr("register task"))?;
            if let Some(r) = &idem
                && let Some(existing) = self.own_idempotency_key(&pool, r, &task).await?
            {
                return Ok(existing);
            }
            let task_key = K::task(&pool, &task.task_id);
            let mut ops = Ops::new(task_key.clone());
            let idem_key = idem
                .as_ref()
                .map_or_else(|| task_key.clone(), |r| K::idem(&pool, &r.scope_key));
            ops.key(idem_key);
            // Checked by the script after the idempotency lookup, before any write.
            ops.op(
                "QUOTA",
                K::p_queue(&pool, &task.principal),
                max_queued.to_string(),
                String::new(),
            );
            index_ops(&mut ops, None, Some(&task));
            let (rec, ttl) = match &idem {
                Some(r) => (
                    serde_json::to_string(&IdemRecord {
                        task_id: task.task_id.clone(),
                        request_hash: r.request_hash.clone(),
                    })
                    .unwrap_or_default(),
                    (ms(r.expires_at) - ms(task.created_at)).max(1),
                ),
                None => (String::new(), 1),
            };
            // The sealed secret is stored in the same script (hex, as script args are text).
            if let Some(s) = &sealed_secret {
                ops.op(
                    "SET",
                    K::secret(&pool, &task.task_id),
                    hex::encode(s),
                    String::new(),
                );
            }
            let mut args = vec![rec, ttl.to_string(), encode(&task), ops.n.to_string()];
            args.extend(ops.args);
            let out: Vec<String> = self
                .eval(&CREATE, &ops.keys, &args)
                .await
                .map_err(rerr("create task"))?;
            match out.as_slice() {
                [flag] if flag == "1" => Ok(CreateOutcome::Created(Box::new(task))),
                [flag] if flag == "2" => Err(Error::QuotaExceeded {
                    principal: task.principal.clone(),
                    limit: max_queued,
                }),
                [_, rec] => {
                    let r: IdemRecord =
                        serde_json::from_str(rec).map_err(|e| corrupt("idempotency record", e))?;
                    Ok(CreateOutcome::Existing {
                        task_id: r.task_id,
                        request_hash: r.request_hash,
                    })
                }
                _ => Err(corrupt(
                    "create script reply",
                    std::io::Error::other(format!("{out:?}")),
                )),
            }
        })
    }

    fn drop_idempotency(&self, pool: String, scope_key: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let mut con = self.con.clone();
            con.del::<_, ()>(K::idem(&pool, &scope_key))
                .await
                .map_err(rerr("drop idempotency"))
        })
    }

    fn load(&self, task_id: String) -> BoxFuture<'_, Result<Option<Task>>> {
        Box::pin(async move {
            match self.pool_of(&task_id).await? {
                Some(pool) => self.load_in(&pool, &task_id).await,
                None => Ok(None),
            }
        })
    }

    fn store(&self, prev: Task, next: Task) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            if next.version != prev.version + 1 {
                return Ok(false);
            }
            Ok(self.cas(&prev, Some(&next), None).await? == 1)
        })
    }

    fn claim(&self, req: ClaimRequest) -> BoxFuture<'_, Result<Option<Task>>> {
        Box::pin(async move {
            let now_ms = ms(req.now);
            let live = format!("({now_ms}");
            for (pool, instances) in &req.pools {
                // The decision is made here from one load snapshot with the one
                // placement rule; the compare-and-set then re-checks, atomically in
                // its script, the task's version and the chosen slot's capacity. A
                // lost race looks again, so capacity and single ownership are exact;
                // the fair order is exact except between racing claimers.
                'retry: for _ in 0..16 {
                    let mut pipe = redis::pipe();
                    for i in instances {
                        pipe.zcount(K::slots(pool, &i.instance), &live, "+inf");
                    }
                    let mut con = self.con.clone();
                    let slots: Vec<u32> = if instances.is_empty() {
                        Vec::new()
                    } else {
                        pipe.query_async(&mut con)
                            .await
                            .map_err(rerr("count slots"))?
                    };
                    if !instances
                        .iter()
                        .zip(&slots)
                        .any(|(i, a)| i.available && *a < i.max_concurrent)
                    {
                        break;
                    }
                    let principals: Vec<String> = con
                        .smembers(K::principals(pool))
                        .await
                        .map_err(rerr("claim scan"))?;
                    // Every principal's running count and head in two pipelines (a
                    // round trip per principal made a claim grow with the tenants).
                    let (mut counts, mut heads) = (redis::pipe(), redis::pipe());
                    for p in &principals {
                        counts.zcount(K::p_leases(pool, p), &live, "+inf");
                        heads.zrange_withscores(K::p_queue(pool, p), 0, 0);
                    }
                    let (running, heads): (Vec<u64>, Vec<Vec<(String, f64)>>) =
                        if principals.is_empty() {
                            (Vec::new(), Vec::new())
                        } else {
                            (
                                counts
                                    .query_async(&mut con)
                                    .await
                                    .map_err(rerr("claim scan"))?,
                                heads
                                    .query_async(&mut con)
                                    .await
                                    .map_err(rerr("claim scan"))?,
                            )
                        };
                    let mut fair = Vec::with_capacity(principals.len());
                    for ((p, running), head) in principals.into_iter().zip(running).zip(heads) {
                        if let Some((_, seq)) = head.first() {
                            fair.push((p, running, *seq as i64));
                        }
                    }
                    for p in fair_order(fair) {
                        let ids: Vec<String> = con
                            .zrange(K::p_queue(pool, &p), 0, CLAIM_SCAN - 1)
                            .await
                            .map_err(rerr("claim scan"))?;
                        for id in ids {
                            let Some(prev) = self.load_in(pool, &id).await? else {
                                continue;
                            };
                            if prev.status != TaskStatus::Queued {
                                continue;
                            }
                            let Some((inst, max)) = place(&prev, instances, &slots) else {
                                continue;
                            };
                            let mut next = prev.clone();
                            next.claim(&req.worker_id, &inst, req.lease_ttl, req.now)?;
                            next.version += 1;
                            match self
                                .cas(&prev, Some(&next), Some((K::slots(pool, &inst), max)))
                                .await?
                            {
                                1 => return Ok(Some(next)),
                                // Lost a race for this task or the slot: look again.
                                _ => continue 'retry,
                            }
                        }
                    }
                    break;
                }
            }
            Ok(None)
        })
    }

    fn expired_leases(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for pool in self.pools().await? {
                let key = K::leases(&pool);
                let ids: Vec<String> = self
                    .read("expired leases", move |mut c| {
                        let key = key.clone();
                        async move {
                            c.zrangebyscore_limit(key, "-inf", ms(now), 0, limit as isize)
                                .await
                        }
                    })
                    .await?;
                out.extend(ids);
            }
            out.truncate(limit);
            Ok(out)
        })
    }

    fn list(&self, q: ListQuery) -> BoxFuture<'_, Result<Page>> {
        Box::pin(async move {
            let limit = q.limit.max(1);
            let pools = match &q.pool {
                Some(p) => vec![p.clone()],
                None => self.pools().await?,
            };
            let max = match &q.cursor {
                Some(c) => format!("({c}"),
                None => "+".to_owned(),
            };
            let mut rows = Vec::new();
            for pool in pools {
                // A principal's listing reads its own indexes, so pages are full
                // and cursors only hold its keys.
                let key = match (&q.principal, q.dead_lettered, q.status) {
                    (None, true, _) => K::dlq(&pool),
                    (None, false, Some(s)) => K::status(&pool, s),
                    (None, false, None) => K::all(&pool),
                    (Some(p), true, _) => K::p_dlq(&pool, p),
                    (Some(p), false, Some(s)) => K::p_status(&pool, p, s),
                    (Some(p), false, None) => K::p_all(&pool, p),
                };
                let max = max.clone();
                let keys: Vec<String> = self
                    .read("list", move |mut c| {
                        let (key, max) = (key.clone(), max.clone());
                        async move {
                            c.zrevrangebylex_limit(key, max, "-", 0, limit as isize + 1)
                                .await
                        }
                    })
                    .await?;
                rows.extend(keys.into_iter().map(|k| {
                    let id = id_of(&k).to_owned();
                    (k, pool.clone(), id)
                }));
            }
            let (ids, next_cursor) = Self::page(rows, limit);
            let mut tasks = Vec::with_capacity(ids.len());
            if !ids.is_empty() {
                // One round trip for the whole page (one per pool on a Cluster).
                let cmds: Vec<(String, Cmd)> = ids
                    .iter()
                    .map(|(pool, id)| {
                        let mut c = redis::cmd("HGET");
                        c.arg(K::task(pool, id)).arg("doc");
                        (pool.clone(), c)
                    })
                    .collect();
                let cmds = &cmds;
                let docs: Vec<Value> = self
                    .read("list docs", move |c| Self::query_grouped(c, cmds))
                    .await?;
                let docs = docs
                    .into_iter()
                    .map(|v| {
                        redis::from_redis_value::<Option<String>>(v)
                            .map_err(redis::RedisError::from)
                    })
                    .collect::<redis::RedisResult<Vec<Option<String>>>>()
                    .map_err(rerr("list docs"))?;
                for (d, (_, id)) in docs.into_iter().zip(&ids) {
                    if let Some(d) = d {
                        let t: Task = serde_json::from_str(&d).map_err(|e| corrupt(id, e))?;
                        if q.dead_lettered && q.status.is_some_and(|s| s != t.status) {
                            continue;
                        }
                        tasks.push(t);
                    }
                }
            }
            Ok(Page { tasks, next_cursor })
        })
    }

    fn queue_position(&self, pool: String, task_id: String) -> BoxFuture<'_, Result<Option<u64>>> {
        Box::pin(async move {
            let Some(task) = self.load_in(&pool, &task_id).await? else {
                return Ok(None);
            };
            Ok(self
                .snapshot_of(&pool, &task, Timestamp::now(), 0)
                .await?
                .position)
        })
    }

    fn queue_snapshot(
        &self,
        pool: String,
        task_id: String,
        now: Timestamp,
        durations: usize,
    ) -> BoxFuture<'_, Result<QueueSnapshot>> {
        Box::pin(async move {
            let Some(task) = self.load_in(&pool, &task_id).await? else {
                return Ok(QueueSnapshot::default());
            };
            self.snapshot_of(&pool, &task, now, durations).await
        })
    }

    fn queue_head_for(
        &self,
        pool: String,
        principal: String,
        n: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let key = K::p_queue(&pool, &principal);
            self.read("queue head", move |mut c| {
                let key = key.clone();
                async move { c.zrange(key, 0, n as isize - 1).await }
            })
            .await
        })
    }

    fn principal_counts(
        &self,
        pool: String,
        principal: String,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<PrincipalCounts>> {
        Box::pin(async move {
            let live = format!("({}", ms(now));
            let (queued, running, all_queued, all_running): (u64, u64, u64, u64) = self
                .read("principal counts", |mut c| {
                    let (pool, who, live) = (&pool, &principal, &live);
                    async move {
                        redis::pipe()
                            .zcard(K::p_queue(pool, who))
                            .zcount(K::p_leases(pool, who), live, "+inf")
                            .zcard(K::queue(pool))
                            .zcount(K::leases(pool), live, "+inf")
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            Ok(PrincipalCounts {
                queued,
                running,
                others_queued: all_queued.saturating_sub(queued),
                others_running: all_running.saturating_sub(running),
            })
        })
    }

    fn queue_head(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let key = K::queue(&pool);
            self.read("queue head", move |mut c| {
                let key = key.clone();
                async move { c.zrange(key, 0, n as isize - 1).await }
            })
            .await
        })
    }

    fn pool_counts(&self, pool: String, now: Timestamp) -> BoxFuture<'_, Result<PoolCounts>> {
        Box::pin(async move {
            let (q, l, d) = (K::queue(&pool), K::leases(&pool), K::dlq(&pool));
            let pa = K::status(&pool, TaskStatus::PendingApproval);
            let (queued, running, dead_lettered, pending_approval): (u64, u64, u64, u64) = self
                .read("pool counts", move |mut c| {
                    let (q, l, d, pa) = (q.clone(), l.clone(), d.clone(), pa.clone());
                    async move {
                        redis::pipe()
                            .zcard(q)
                            .zcount(l, format!("({}", ms(now)), "+inf")
                            .zcard(d)
                            .zcard(pa)
                            .query_async(&mut c)
                            .await
                    }
                })
                .await?;
            Ok(PoolCounts {
                queued,
                running,
                dead_lettered,
                pending_approval,
            })
        })
    }

    fn recent_durations(&self, pool: String, n: usize) -> BoxFuture<'_, Result<Vec<f64>>> {
        Box::pin(async move {
            let key = K::durations(&pool);
            self.read("durations", move |mut c| {
                let key = key.clone();
                async move { c.lrange(key, 0, n as isize - 1).await }
            })
            .await
        })
    }

    fn load_secret(&self, task_id: String) -> BoxFuture<'_, Result<Option<Vec<u8>>>> {
        Box::pin(async move {
            let Some(pool) = self.pool_of(&task_id).await? else {
                return Ok(None);
            };
            let key = K::secret(&pool, &task_id);
            let v: Option<String> = self
                .read("load secret", move |mut c| {
                    let key = key.clone();
                    async move { c.get(key).await }
                })
                .await?;
            v.map(|h| hex::decode(h).map_err(|e| corrupt("sealed secret", e)))
                .transpose()
        })
    }

    fn delete_secret(&self, task_id: String) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let Some(pool) = self.pool_of(&task_id).await? else {
                return Ok(());
            };
            let key = K::secret(&pool, &task_id);
            self.read("delete secret", move |mut c| {
                let key = key.clone();
                async move { c.del(key).await }
            })
            .await
        })
    }

    fn finished_before(
        &self,
        before: Timestamp,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut out = Vec::new();
            for pool in self.pools().await? {
                let key = K::done(&pool);
                let ids: Vec<String> = self
                    .read("finished before", move |mut c| {
                        let key = key.clone();
                        async move {
                            c.zrangebyscore_limit(
                                key,
                                "-inf",
                                format!("({}", ms(before)),
                                0,
                                limit as isize,
                            )
                            .await
                        }
                    })
                    .await?;
                out.extend(ids);
            }
            out.truncate(limit);
            Ok(out)
        })
    }

    fn delete(&self, task_id: String) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            for _ in 0..16 {
                let Some(prev) = self.load(task_id.clone()).await? else {
                    return Ok(false);
                };
                if self.cas(&prev, None, None).await? == 1 {
                    let mut con = self.con.clone();
                    con.hdel::<_, _, ()>(TASK_POOL, &task_id)
                        .await
                        .map_err(rerr("delete task pool"))?;
                    return Ok(true);
                }
            }
            Err(Error::Contention { task_id })
        })
    }

    fn purge_idempotency(&self, _now: Timestamp) -> BoxFuture<'_, Result<u64>> {
        // Redis expires idempotency keys itself (PX at reservation).
        Box::pin(async { Ok(0) })
    }

    fn append_audit(&self, event: AuditEvent) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let key = event.order_key();
            let doc = serde_json::to_string(&event).unwrap_or_default();
            let mut pipe = redis::pipe();
            pipe.atomic()
                .hset(AUDIT_DOCS, &key, doc)
                .ignore()
                .zadd(AUDIT_ALL, &key, 0)
                .ignore();
            for idx in K::audit_indexes(&event) {
                pipe.zadd(idx, &key, 0).ignore();
            }
            let mut con = self.con.clone();
            pipe.query_async::<()>(&mut con)
                .await
                .map_err(rerr("append audit"))
        })
    }

    fn list_audit(&self, q: AuditQuery) -> BoxFuture<'_, Result<AuditPage>> {
        Box::pin(async move {
            let limit = q.limit.max(1);
            // The most selective index the query names; the other filters are
            // checked on the documents (`AuditQuery::matches`).
            let index = if let Some(t) = &q.task_id {
                K::audit_task(t)
            } else if let Some(p) = &q.principal {
                K::audit_principal(p)
            } else if let Some(p) = &q.pool {
                K::audit_pool(p)
            } else if let Some(a) = q.action {
                K::audit_action(a.as_str())
            } else {
                AUDIT_ALL.to_owned()
            };
            let (low, high) = q.key_range();
            let min = low.map_or_else(|| "-".to_owned(), |l| format!("[{l}"));
            let mut max = high.map_or_else(|| "+".to_owned(), |h| format!("({h}"));
            let mut out: Vec<(String, AuditEvent)> = Vec::new();
            let mut scanned = 0;
            loop {
                let want = AUDIT_BATCH.max(limit + 1);
                let (idx, lo, hi) = (index.clone(), min.clone(), max.clone());
                let keys: Vec<String> = self
                    .read("list audit", move |mut c| {
                        let (idx, lo, hi) = (idx.clone(), lo.clone(), hi.clone());
                        async move { c.zrevrangebylex_limit(idx, hi, lo, 0, want as isize).await }
                    })
                    .await?;
                let Some(last) = keys.last().cloned() else {
                    break;
                };
                let exhausted = keys.len() < want;
                scanned += keys.len();
                let ks = keys.clone();
                let docs: Vec<Option<String>> = self
                    .read("list audit docs", move |mut c| {
                        let ks = ks.clone();
                        async move {
                            redis::cmd("HMGET")
                                .arg(AUDIT_DOCS)
                                .arg(ks)
                                .query_async(&mut c)
                                .await
                        }
                    })
                    .await?;
                for (key, doc) in keys.into_iter().zip(docs) {
                    // A member without its document is one a concurrent purge is
                    // removing: it is gone either way.
                    let Some(doc) = doc else { continue };
                    let e: AuditEvent = serde_json::from_str(&doc)
                        .map_err(|e| corrupt(&format!("audit event {key}"), e))?;
                    if q.matches(&e) {
                        out.push((key, e));
                        if out.len() > limit {
                            out.truncate(limit);
                            let next = out.last().map(|(k, _)| k.clone());
                            return Ok(AuditPage::new(
                                out.into_iter().map(|(_, e)| e).collect(),
                                next,
                            ));
                        }
                    }
                }
                if exhausted {
                    break;
                }
                if scanned >= AUDIT_SCAN_BUDGET {
                    return Ok(AuditPage::new(
                        out.into_iter().map(|(_, e)| e).collect(),
                        Some(last),
                    ));
                }
                max = format!("({last}");
            }
            Ok(AuditPage::new(
                out.into_iter().map(|(_, e)| e).collect(),
                None,
            ))
        })
    }

    fn count_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let max = format!("({}", time_key(before));
            self.read("count audit", move |mut c| {
                let max = max.clone();
                async move {
                    redis::cmd("ZLEXCOUNT")
                        .arg(AUDIT_ALL)
                        .arg("-")
                        .arg(max)
                        .query_async(&mut c)
                        .await
                }
            })
            .await
        })
    }

    fn purge_audit_before(&self, before: Timestamp) -> BoxFuture<'_, Result<u64>> {
        Box::pin(async move {
            let max = format!("({}", time_key(before));
            let mut con = self.con.clone();
            let mut purged = 0;
            loop {
                let keys: Vec<String> = con
                    .zrangebylex_limit(AUDIT_ALL, "-", &max, 0, AUDIT_PURGE_BATCH)
                    .await
                    .map_err(rerr("purge audit"))?;
                if keys.is_empty() {
                    return Ok(purged);
                }
                let docs: Vec<Option<String>> = redis::cmd("HMGET")
                    .arg(AUDIT_DOCS)
                    .arg(&keys)
                    .query_async(&mut con)
                    .await
                    .map_err(rerr("purge audit"))?;
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .zrem(AUDIT_ALL, &keys)
                    .hdel(AUDIT_DOCS, &keys)
                    .ignore();
                for (key, doc) in keys.iter().zip(docs) {
                    // A corrupt document cannot name its indexes; it still goes.
                    let Some(e) = doc.and_then(|d| serde_json::from_str::<AuditEvent>(&d).ok())
                    else {
                        continue;
                    };
                    for idx in K::audit_indexes(&e) {
                        pipe.zrem(idx, key).ignore();
                    }
                }
                // Counted by what left the main index, so two concurrent purges
                // never count one event twice.
                let (n,): (u64,) = pipe
                    .query_async(&mut con)
                    .await
                    .map_err(rerr("purge audit"))?;
                purged += n;
            }
        })
    }

    fn store_schedule(
        &self,
        prev_version: Option<u64>,
        next: Schedule,
    ) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            if prev_version.is_some_and(|p| next.version != p + 1) {
                return Ok(false);
            }
            let keys = [SCHED_DOCS, SCHED_VERSIONS, SCHED_DUE, SCHED_ALL].map(str::to_owned);
            let args = [
                next.schedule_id.clone(),
                prev_version.map(|v| v.to_string()).unwrap_or_default(),
                next.version.to_string(),
                serde_json::to_string(&next).unwrap_or_default(),
                if next.paused {
                    String::new()
                } else {
                    ms(next.next_slot).to_string()
                },
                schedule_order(&next),
            ];
            let n: i64 = self
                .eval(&SCHEDULE, &keys, &args)
                .await
                .map_err(rerr("store schedule"))?;
            Ok(n == 1)
        })
    }

    fn load_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<Option<Schedule>>> {
        Box::pin(async move {
            let doc: Option<String> = self
                .read("load schedule", |mut c| {
                    let id = schedule_id.clone();
                    async move { c.hget(SCHED_DOCS, id).await }
                })
                .await?;
            doc.map(|d| serde_json::from_str(&d).map_err(|e| corrupt(&schedule_id, e)))
                .transpose()
        })
    }

    fn list_schedules(&self, principal: Option<String>) -> BoxFuture<'_, Result<Vec<Schedule>>> {
        Box::pin(async move {
            let order: Vec<String> = self
                .read("list schedules", |mut c| async move {
                    c.zrange(SCHED_ALL, 0, -1).await
                })
                .await?;
            let mut out = Vec::new();
            for s in self
                .docs_in_order::<Schedule>("list schedules", SCHED_DOCS, &order)
                .await?
            {
                if principal.as_ref().is_none_or(|p| *p == s.principal) {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    fn due_schedules(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.read("due schedules", |mut c| async move {
                c.zrangebyscore_limit(SCHED_DUE, "-inf", ms(now), 0, limit as isize)
                    .await
            })
            .await
        })
    }

    fn delete_schedule(&self, schedule_id: String) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            let Some(s) = self.load_schedule(schedule_id).await? else {
                return Ok(false);
            };
            let keys = [SCHED_DOCS, SCHED_VERSIONS, SCHED_DUE, SCHED_ALL].map(str::to_owned);
            let args = [
                s.schedule_id.clone(),
                s.version.to_string(),
                String::new(),
                String::new(),
                String::new(),
                schedule_order(&s),
            ];
            let n: i64 = self
                .eval(&SCHEDULE, &keys, &args)
                .await
                .map_err(rerr("delete schedule"))?;
            Ok(n == 1)
        })
    }

    fn store_delivery(
        &self,
        prev_version: Option<u64>,
        next: crate::hooks::Delivery,
    ) -> BoxFuture<'_, Result<bool>> {
        Box::pin(async move {
            if prev_version.is_some_and(|p| next.version != p + 1) {
                return Ok(false);
            }
            // The schedules' compare-and-set script, over the `{hooks}` keys.
            let keys = [HOOK_DOCS, HOOK_VERSIONS, HOOK_DUE, HOOK_ALL].map(str::to_owned);
            let args = [
                next.id.clone(),
                prev_version.map(|v| v.to_string()).unwrap_or_default(),
                next.version.to_string(),
                serde_json::to_string(&next).unwrap_or_default(),
                next.due().map(|d| ms(d).to_string()).unwrap_or_default(),
                next.order(),
            ];
            let n: i64 = self
                .eval(&SCHEDULE, &keys, &args)
                .await
                .map_err(rerr("store delivery"))?;
            Ok(n == 1)
        })
    }

    fn load_delivery(&self, id: String) -> BoxFuture<'_, Result<Option<crate::hooks::Delivery>>> {
        Box::pin(async move {
            let doc: Option<String> = self
                .read("load delivery", |mut c| {
                    let id = id.clone();
                    async move { c.hget(HOOK_DOCS, id).await }
                })
                .await?;
            doc.map(|d| serde_json::from_str(&d).map_err(|e| corrupt(&id, e)))
                .transpose()
        })
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            self.read("due deliveries", |mut c| async move {
                c.zrangebyscore_limit(HOOK_DUE, "-inf", ms(now), 0, limit as isize)
                    .await
            })
            .await
        })
    }

    fn list_deliveries(&self, limit: usize) -> BoxFuture<'_, Result<Vec<crate::hooks::Delivery>>> {
        Box::pin(async move {
            if limit == 0 {
                return Ok(Vec::new());
            }
            let order: Vec<String> = self
                .read("list deliveries", |mut c| async move {
                    c.zrevrange(HOOK_ALL, 0, limit as isize - 1).await
                })
                .await?;
            self.docs_in_order("list deliveries", HOOK_DOCS, &order)
                .await
        })
    }
}

/// The keys of one findings scope, all under its `{f:…}` hash tag (a digest of the
/// scope, so any principal name makes a valid tag): docs, stored, aliases.
fn finding_keys(scope: &str) -> [String; 3] {
    use sha2::{Digest, Sha256};
    let tag = &hex::encode(Sha256::digest(scope.as_bytes()))[..16];
    [
        format!("nq:{{f:{tag}}}:docs"),
        format!("nq:{{f:{tag}}}:stored"),
        format!("nq:{{f:{tag}}}:alias"),
    ]
}

fn decode_asset(id: &str, v: &str) -> Result<StoredAsset> {
    let bad = |e: Box<dyn std::error::Error + Send + Sync>| Error::Corrupt {
        what: format!("asset findings {id}"),
        source: e,
    };
    let (ver, json) = v.split_once('\n').ok_or_else(|| bad("no version".into()))?;
    Ok(StoredAsset {
        version: ver
            .parse()
            .map_err(|e: std::num::ParseIntError| bad(e.into()))?,
        doc: serde_json::from_str::<AssetDoc>(json).map_err(|e| bad(e.into()))?,
    })
}

impl FindingsBackend for RedisBackend {
    fn load_assets(
        &self,
        scope: String,
        asset_ids: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<StoredAsset>>>> {
        Box::pin(async move {
            if asset_ids.is_empty() {
                return Ok(Vec::new());
            }
            let [docs, _, _] = finding_keys(&scope);
            let ids = asset_ids.clone();
            let vals: Vec<Option<String>> = self
                .read("load asset findings", move |mut c| {
                    let (docs, ids) = (docs.clone(), ids.clone());
                    async move {
                        let mut cmd = redis::cmd("HMGET");
                        cmd.arg(docs).arg(ids);
                        cmd.query_async(&mut c).await
                    }
                })
                .await?;
            asset_ids
                .iter()
                .zip(vals)
                .map(|(id, v)| v.map(|v| decode_asset(id, &v)).transpose())
                .collect()
        })
    }

    fn resolve_aliases(
        &self,
        scope: String,
        aliases: Vec<String>,
    ) -> BoxFuture<'_, Result<Vec<Option<String>>>> {
        Box::pin(async move {
            if aliases.is_empty() {
                return Ok(Vec::new());
            }
            let [_, _, alias] = finding_keys(&scope);
            self.read("resolve aliases", move |mut c| {
                let (alias, aliases) = (alias.clone(), aliases.clone());
                async move {
                    let mut cmd = redis::cmd("HMGET");
                    cmd.arg(alias).arg(aliases);
                    cmd.query_async(&mut c).await
                }
            })
            .await
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
        Box::pin(async move {
            let keys = finding_keys(&scope).to_vec();
            let horizon = ms(now) - ttl.as_millis() as i64;
            let mut args = vec![
                doc.asset_id.clone(),
                prev_version.to_string(),
                serde_json::to_string(&doc).unwrap_or_default(),
                ms(now).to_string(),
                horizon.to_string(),
                AGE_OUT_BATCH.to_string(),
            ];
            args.extend(doc.aliases.iter().cloned());
            let n: i64 = self
                .eval(&STORE_ASSET, &keys, &args)
                .await
                .map_err(rerr("store asset findings"))?;
            if n == 1 {
                let scope = scope.clone();
                self.read("record finding scope", move |mut c| {
                    let scope = scope.clone();
                    async move { c.sadd::<_, _, ()>(FINDING_SCOPES, scope).await }
                })
                .await?;
            }
            Ok(n == 1)
        })
    }

    fn list_assets(
        &self,
        scope: String,
        now: Timestamp,
        ttl: jiff::SignedDuration,
    ) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let [_, stored, _] = finding_keys(&scope);
            let horizon = ms(now) - ttl.as_millis() as i64;
            let mut ids: Vec<String> = self
                .read("list assets", move |mut c| {
                    let stored = stored.clone();
                    async move { c.zrangebyscore(stored, horizon, "+inf").await }
                })
                .await?;
            ids.sort();
            Ok(ids)
        })
    }

    fn finding_scopes(&self) -> BoxFuture<'_, Result<Vec<String>>> {
        Box::pin(async move {
            let mut v: Vec<String> = self
                .read("finding scopes", |mut c| async move {
                    c.smembers(FINDING_SCOPES).await
                })
                .await?;
            v.sort();
            Ok(v)
        })
    }
}
