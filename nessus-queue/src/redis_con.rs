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
/// `rediss://` (TLS, rustls with the webpki roots); all of them are secrets.
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

    /// `CONFIG GET name` on every primary: one answer for standalone and Sentinel
    /// (the current master), one per primary for Cluster.
    pub(crate) async fn config_get_on_primaries(&self, name: &str) -> RedisResult<Vec<String>> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg(name);
        let pair = |v: Value| -> RedisResult<String> {
            let v: Vec<String> = redis::from_redis_value(v)?;
            Ok(v.get(1).cloned().unwrap_or_else(|| "unknown".to_owned()))
        };
        match self.clone() {
            Self::Cluster(mut c) => {
                let routing = RoutingInfo::MultiNode((MultipleNodeRoutingInfo::AllMasters, None));
                let reply = c.route_command(cmd, routing).await?;
                // Without a response policy the reply maps each primary's address to
                // its own answer.
                let per_node: Vec<(String, Value)> = redis::from_redis_value(reply)?;
                per_node.into_iter().map(|(_, v)| pair(v)).collect()
            }
            mut other => {
                let v: Value = cmd.query_async(&mut other).await?;
                Ok(vec![pair(v)?])
            }
        }
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
        let con = Self::open_master(&mut sentinel, master, &node).await?;
        Ok(Self {
            inner: Arc::new(SentinelInner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master: master.to_owned(),
                node,
                current: RwLock::new((0, con)),
            }),
        })
    }

    async fn open_master(
        sentinel: &mut Sentinel,
        master: &str,
        node: &SentinelNodeConnectionInfo,
    ) -> RedisResult<ConnectionManager> {
        // `async_master_for` asks the sentinels and checks that the node it names
        // answers ROLE as a master.
        let client = sentinel.async_master_for(master, Some(node)).await?;
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
            Some("noeviction") => Ok(con),
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
        let con = Self::open_master(&mut sentinel, &self.inner.master, &self.inner.node).await?;
        let mut g = self
            .inner
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *g = (seen + 1, con);
        tracing::info!(master = %self.inner.master, "redis sentinel: re-discovered the master");
        Ok(())
    }

    async fn run<T, F, Fut>(&self, send: F) -> RedisResult<T>
    where
        F: Fn(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let mut delay = SENTINEL_BACKOFF_START;
        let mut attempt = 0;
        loop {
            let (generation, con) = self.current();
            let err = match send(con).await {
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
