//! The one connection type the Redis backend talks through, whatever the topology:
//! a standalone server (`ConnectionManager`), a Sentinel-watched master (a
//! `ConnectionManager` replaced when the sentinels name another master), or a Redis
//! Cluster (the crate's `cluster_async::ClusterConnection`, which follows MOVED/ASK
//! and failovers itself). All three are the redis crate's own clients.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, RoutingInfo};
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisError, RedisFuture,
    RedisResult, TlsMode, Value,
};
use secrecy::{ExposeSecret, SecretString};

use crate::error::{BackendKind, Error, Result};

/// Where the Redis queue lives. Every URL may carry a username/password and use
/// `rediss://` (TLS, rustls with the OS trust store); all of them are secrets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RedisTopology {
    /// One server: `redis://[user:pass@]host:port[/db]`.
    Standalone(SecretString),
    /// A master watched by Redis Sentinel.
    Sentinel {
        /// The sentinels' URLs (`redis://host:port`, with their own credentials).
        sentinels: Vec<SecretString>,
        /// The master's name in the sentinels' configuration.
        master: String,
        /// The data nodes' password when it differs from the sentinels'; by default
        /// the data nodes get the first sentinel URL's username, password and TLS.
        master_password: Option<SecretString>,
    },
    /// A Redis Cluster, reached through these seed nodes.
    Cluster(Vec<SecretString>),
}

/// How many times a command the server certainly did not apply (connection refused,
/// READONLY from a demoted master) is re-sent to a re-discovered master, and the
/// pause between tries (doubling). Sized for a Sentinel failover: `down-after` plus
/// the election, a few seconds in the tests, tens of seconds at most in production.
const SENTINEL_RETRIES: u32 = 40;
const SENTINEL_BACKOFF_START: Duration = Duration::from_millis(100);
const SENTINEL_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The backend's connection, cheap to clone (all variants share their sockets).
#[derive(Clone)]
pub(crate) enum Con {
    Standalone(ConnectionManager),
    Sentinel(SentinelCon),
    Cluster(ClusterConnection),
}

fn invalid(what: &str, e: RedisError) -> Error {
    Error::UnsafeBackend {
        backend: BackendKind::Redis,
        reason: format!("invalid {what}: {e}"),
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_number_of_retries(6)
        .set_max_delay(Duration::from_secs(2))
}

impl Con {
    pub(crate) async fn connect(t: &RedisTopology) -> RedisResult<Self> {
        // redis builds its rustls config with the process's default crypto
        // provider, which rustls cannot pick by itself when the build holds two
        // (ring here, aws-lc-rs through reqwest). Installed only if none is yet.
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        match t {
            RedisTopology::Standalone(url) => {
                let client = redis::Client::open(url.expose_secret())?;
                Ok(Self::Standalone(
                    ConnectionManager::new_with_config(client, manager_config()).await?,
                ))
            }
            RedisTopology::Sentinel {
                sentinels,
                master,
                master_password,
            } => Ok(Self::Sentinel(
                SentinelCon::connect(sentinels, master, master_password.as_ref()).await?,
            )),
            RedisTopology::Cluster(nodes) => {
                let nodes: Vec<&str> = nodes.iter().map(|n| n.expose_secret()).collect();
                let client = redis::cluster::ClusterClient::builder(nodes)
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(Duration::from_secs(5))
                    .retries(8)
                    .max_retry_wait(1_000)
                    .build()?;
                Ok(Self::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// Checks the URLs parse before any connection is tried, so a typo is a config
    /// error rather than a retried connection failure.
    pub(crate) fn validate(t: &RedisTopology) -> Result<()> {
        let urls: Vec<&SecretString> = match t {
            RedisTopology::Standalone(u) => vec![u],
            RedisTopology::Sentinel { sentinels, .. } => sentinels.iter().collect(),
            RedisTopology::Cluster(n) => n.iter().collect(),
        };
        if urls.is_empty() {
            return Err(Error::UnsafeBackend {
                backend: BackendKind::Redis,
                reason: "no Redis node URL given".to_owned(),
            });
        }
        for u in urls {
            u.expose_secret()
                .into_connection_info()
                .map_err(|e| invalid("Redis URL", e))?;
        }
        Ok(())
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `cmd` on every primary: the one server or the current master, or each
    /// Cluster primary.
    async fn on_primaries(&self, cmd: Cmd) -> RedisResult<Vec<Value>> {
        match self.clone() {
            Self::Cluster(mut c) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = c.route_command(cmd, routing).await?;
                // Without a response policy the reply maps each primary's address to
                // its own answer.
                let per_node: Vec<(String, Value)> = redis::from_redis_value(reply)?;
                Ok(per_node.into_iter().map(|(_, v)| v).collect())
            }
            mut other => Ok(vec![cmd.query_async(&mut other).await?]),
        }
    }

    /// `CONFIG GET name` on every primary.
    pub(crate) async fn config_get_on_primaries(&self, name: &str) -> RedisResult<Vec<String>> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(name);
        self.on_primaries(cmd)
            .await?
            .into_iter()
            .map(|v| {
                let v: Vec<String> = redis::from_redis_value(v)?;
                Ok(v.get(1).cloned().unwrap_or_else(|| "unknown".to_owned()))
            })
            .collect()
    }

    /// Which master connection commands go to now (Sentinel: bumped on every
    /// re-discovery; 0 for the others).
    pub(crate) fn generation(&self) -> u64 {
        match self {
            Self::Sentinel(s) => s.current().0,
            _ => 0,
        }
    }

    /// After a write no replica confirmed: may it be acknowledged anyway? Yes when
    /// the node that took it (the one owning `key`) is a primary with no replica
    /// attached any more (its replica died or was promoted after a kill, so there is
    /// nothing to wait for) and, on Sentinel, the sentinels still name it the master
    /// (`generation` unchanged). No when a replica is attached but did not confirm,
    /// or when the sentinels have moved on: the write may vanish with a demotion.
    pub(crate) async fn unconfirmed_write_stands(
        &self,
        key: &str,
        generation: u64,
    ) -> RedisResult<bool> {
        let mut p = redis::pipe();
        // EXISTS routes the pipeline to `key`'s node on a Cluster.
        p.cmd("EXISTS")
            .arg(key)
            .ignore()
            .cmd("INFO")
            .arg("replication");
        let (text,): (String,) = p.query_async(&mut self.clone()).await?;
        let field = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix(':'))
                .map(str::trim)
                .map(str::to_owned)
        };
        let alone = field("role").as_deref() == Some("master")
            && field("connected_slaves").as_deref() == Some("0");
        if !alone {
            return Ok(false);
        }
        Ok(match self {
            Self::Sentinel(s) => s.still_master(generation).await,
            _ => true,
        })
    }

    /// Whether writes are confirmed by a replica before they are acknowledged: on
    /// Sentinel and Cluster when every primary has a replica at connect time (a
    /// failover may then promote a replica without losing what we acknowledged);
    /// never on a standalone server, which keeps its single round trip.
    pub(crate) async fn replicas_confirm_writes(&self) -> RedisResult<bool> {
        if matches!(self, Self::Standalone(_)) {
            return Ok(false);
        }
        let mut cmd = redis::cmd("INFO");
        cmd.arg("replication");
        let infos = self.on_primaries(cmd).await?;
        let mut all = !infos.is_empty();
        for v in infos {
            let text: String = redis::from_redis_value(v)?;
            let n = text
                .lines()
                .find_map(|l| l.strip_prefix("connected_slaves:"))
                .and_then(|n| n.trim().parse::<u32>().ok())
                .unwrap_or(0);
            all &= n > 0;
        }
        Ok(all)
    }
}

impl ConnectionLike for Con {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(c) => c.req_packed_command(cmd),
            Self::Sentinel(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(c) => c.get_db(),
            Self::Sentinel(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A connection to the master the sentinels name, replaced by a new one to the
/// master they name next after a connection error or a READONLY reply (the old
/// master was demoted). A command is re-sent only when the server certainly did not
/// apply it (refused connection, READONLY); after an error mid-flight the caller
/// decides, exactly as with a standalone server (reads retry, writes report).
#[derive(Clone)]
pub(crate) struct SentinelCon {
    inner: Arc<SentinelInner>,
}

struct SentinelInner {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master: String,
    node: SentinelNodeConnectionInfo,
    /// The current master connection and its generation (bumped on every swap, so
    /// concurrent failures trigger one re-discovery, not one each).
    current: RwLock<(u64, ConnectionManager)>,
    /// The address of the current master.
    address: RwLock<ConnectionAddr>,
}

/// What one failed command tells us about the master.
enum Failure {
    /// Not applied; ask the sentinels and send it again.
    Rediscover,
    /// Maybe applied (dropped mid-flight); re-discover for the next command but
    /// report this one.
    RediscoverAndReport,
    /// A reply from a working master (a script error, a wrong type): report.
    Report,
}

fn classify(e: &RedisError) -> Failure {
    if matches!(
        e.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
    ) || e.is_connection_refusal()
    {
        Failure::Rediscover
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        Failure::RediscoverAndReport
    } else {
        Failure::Report
    }
}

impl SentinelCon {
    async fn connect(
        sentinels: &[SecretString],
        master: &str,
        master_password: Option<&SecretString>,
    ) -> RedisResult<Self> {
        let infos: Vec<ConnectionInfo> = sentinels
            .iter()
            .map(|s| s.expose_secret().into_connection_info())
            .collect::<RedisResult<_>>()?;
        let Some(first) = infos.first() else {
            return Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "no sentinel URL given",
            )));
        };
        // The data nodes use the sentinels' credentials and TLS unless told otherwise.
        let mut redis_info = first.redis_settings().clone();
        if let Some(p) = master_password {
            redis_info = redis_info.set_password(p.expose_secret());
        }
        let mut node = SentinelNodeConnectionInfo::default().set_redis_connection_info(redis_info);
        if let ConnectionAddr::TcpTls { insecure, .. } = first.addr() {
            node = node.set_tls_mode(if *insecure {
                TlsMode::Insecure
            } else {
                TlsMode::Secure
            });
        }
        let mut sentinel = Sentinel::build(infos)?;
        let (con, addr) = Self::open_master(&mut sentinel, master, &node).await?;
        Ok(Self {
            inner: Arc::new(SentinelInner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master: master.to_owned(),
                node,
                current: RwLock::new((0, con)),
                address: RwLock::new(addr),
            }),
        })
    }

    async fn open_master(
        sentinel: &mut Sentinel,
        master: &str,
        node: &SentinelNodeConnectionInfo,
    ) -> RedisResult<(ConnectionManager, ConnectionAddr)> {
        // `async_master_for` asks the sentinels and checks that the node it names
        // answers ROLE as a master.
        let client = sentinel.async_master_for(master, Some(node)).await?;
        let addr = client.get_connection_info().addr().clone();
        // One reconnect attempt only: a master that went away is replaced by asking
        // the sentinels, not by knocking on its door.
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let mut con = ConnectionManager::new_with_config(client, cfg).await?;
        // A promoted replica must not evict either; one that would is never used.
        let policy: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut con)
            .await?;
        match policy.get(1).map(String::as_str) {
            Some("noeviction") => Ok((con, addr)),
            other => Err(RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "the master the sentinels name may evict keys; not used",
                format!("maxmemory-policy is {other:?}, not noeviction"),
            ))),
        }
    }

    fn current(&self) -> (u64, ConnectionManager) {
        let g = self.inner.current.read().unwrap_or_else(|e| e.into_inner());
        (g.0, g.1.clone())
    }

    /// Replaces the connection of generation `seen` by one to the master the
    /// sentinels name now (once, however many commands failed on it).
    async fn rediscover(&self, seen: u64) -> RedisResult<()> {
        let mut sentinel = self.inner.sentinel.lock().await;
        if self.current().0 != seen {
            return Ok(());
        }
        let (con, addr) =
            Self::open_master(&mut sentinel, &self.inner.master, &self.inner.node).await?;
        *self
            .inner
            .address
            .write()
            .unwrap_or_else(|e| e.into_inner()) = addr;
        let mut g = self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *g = (seen + 1, con);
        tracing::info!(master = %self.inner.master, "redis sentinel: re-discovered the master");
        Ok(())
    }

    async fn run<T: Replies, F, Fut>(&self, send: F) -> RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let mut delay = SENTINEL_BACKOFF_START;
        let mut attempt = 0;
        loop {
            let (generation, con) = self.current();
            let err = match send(con).await.and_then(readonly_inside) {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            match classify(&err) {
                Failure::Report => return Err(err),
                Failure::RediscoverAndReport => {
                    if let Err(e) = self.rediscover(generation).await {
                        tracing::debug!(error = %e, "redis sentinel: no master yet");
                    }
                    return Err(err);
                }
                Failure::Rediscover if attempt >= SENTINEL_RETRIES => return Err(err),
                Failure::Rediscover => {
                    attempt += 1;
                    if let Err(e) = self.rediscover(generation).await {
                        tracing::debug!(attempt, error = %e, "redis sentinel: no master yet");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(SENTINEL_BACKOFF_MAX);
                    }
                }
            }
        }
    }
}

/// Replies that may carry a server error inside (a pipeline with `ignore_errors`).
trait Replies {
    fn values(&self) -> &[Value];
}

impl Replies for Value {
    fn values(&self) -> &[Value] {
        std::slice::from_ref(self)
    }
}

impl Replies for Vec<Value> {
    fn values(&self) -> &[Value] {
        self
    }
}

/// A READONLY reply inside a pipeline means the same as one for a single command:
/// the node was demoted and applied none of the pipeline's writes.
fn readonly_inside<T: Replies>(v: T) -> RedisResult<T> {
    let readonly = v.values().iter().find_map(|v| match v {
        Value::ServerError(e) if e.kind() == Some(redis::ServerErrorKind::ReadOnly) => {
            Some(e.clone())
        }
        _ => None,
    });
    match readonly {
        Some(e) => Err(e.into()),
        None => Ok(v),
    }
}

impl SentinelCon {
    /// Whether the sentinels still name the master of generation `seen`.
    async fn still_master(&self, seen: u64) -> bool {
        let mut sentinel = self.inner.sentinel.lock().await;
        if self.current().0 != seen {
            return false;
        }
        let current = self
            .inner
            .address
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match sentinel
            .async_master_for(&self.inner.master, Some(&self.inner.node))
            .await
        {
            Ok(c) => *c.get_connection_info().addr() == current,
            Err(_) => false,
        }
    }
}

impl ConnectionLike for SentinelCon {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.run(|mut c| async move { c.req_packed_command(cmd).await })
                .await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.run(|mut c| async move { c.req_packed_commands(pipeline, offset, count).await })
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.current().1.get_db()
    }
}
