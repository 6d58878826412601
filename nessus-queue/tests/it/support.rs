//! Test harness: a real SQLite file in a tempdir, or real Redis processes on free
//! 127.0.0.1 ports that the test spawns and kills: one server, a Sentinel set, a
//! Cluster, or a Valkey server.

use std::sync::Arc;

use nessus_queue::testkit::{RedisClusterSet, RedisSentinelSet, RedisServer, binary_on_path};
use nessus_queue::{Queue, QueueConfig, RedisBackend, RedisTopology, SecretBox, SqliteBackend};
use secrecy::SecretString;

pub(crate) enum Store {
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
    Sentinel(RedisSentinelSet),
    Cluster(RedisClusterSet),
}

fn secrets(urls: Vec<String>) -> Vec<SecretString> {
    urls.into_iter().map(SecretString::from).collect()
}

pub(crate) struct Harness {
    pub(crate) queue: Queue,
    pub(crate) store: Store,
}

pub(crate) fn secret_box() -> SecretBox {
    SecretBox::from_key([42; 32])
}

impl Harness {
    pub(crate) fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("queue.db");
        let backend = SqliteBackend::open(&path).expect("open sqlite");
        Self {
            queue: Queue::new(Arc::new(backend), QueueConfig::default()).with_secrets(secret_box()),
            store: Store::Sqlite(dir),
        }
    }

    pub(crate) async fn redis() -> Self {
        let server = RedisServer::start().expect("redis-server");
        let backend = RedisBackend::connect(server.url())
            .await
            .expect("connect redis");
        Self {
            queue: Queue::new(Arc::new(backend), QueueConfig::default()).with_secrets(secret_box()),
            store: Store::Redis(server),
        }
    }

    pub(crate) async fn redis_sentinel() -> Self {
        let set = RedisSentinelSet::start().expect("redis sentinel set");
        let topology = RedisTopology::Sentinel {
            sentinels: secrets(set.sentinel_urls()),
            master: set.master_name().to_owned(),
            master_password: None,
        };
        let backend = RedisBackend::connect_topology(&topology)
            .await
            .expect("connect through the sentinels");
        Self {
            queue: Queue::new(Arc::new(backend), QueueConfig::default()).with_secrets(secret_box()),
            store: Store::Sentinel(set),
        }
    }

    pub(crate) async fn redis_cluster() -> Self {
        let set = RedisClusterSet::start(false).expect("redis cluster");
        let topology = RedisTopology::Cluster(secrets(set.node_urls()));
        let backend = RedisBackend::connect_topology(&topology)
            .await
            .expect("connect to the cluster");
        Self {
            queue: Queue::new(Arc::new(backend), QueueConfig::default()).with_secrets(secret_box()),
            store: Store::Cluster(set),
        }
    }

    /// A Valkey server, or None (after one line saying so) when `valkey-server` is
    /// not installed; `NESSUS_REQUIRE_VALKEY=1` makes that a failure instead.
    pub(crate) async fn valkey(test: &str) -> Option<Self> {
        if !binary_on_path("valkey-server") {
            assert!(
                std::env::var("NESSUS_REQUIRE_VALKEY").as_deref() != Ok("1"),
                "NESSUS_REQUIRE_VALKEY=1 but valkey-server is not on PATH"
            );
            println!("valkey::{test}: skipped, valkey-server is not on PATH");
            return None;
        }
        let server = RedisServer::start_with_binary("valkey-server").expect("valkey-server");
        let backend = RedisBackend::connect(server.url())
            .await
            .expect("connect valkey");
        Some(Self {
            queue: Queue::new(Arc::new(backend), QueueConfig::default()).with_secrets(secret_box()),
            store: Store::Redis(server),
        })
    }

    /// A queue on its own connection to the same store, as another node would open
    /// it (a second SQLite handle on the file, a second Redis client).
    pub(crate) async fn second_node(&self) -> Queue {
        let backend: Arc<dyn nessus_queue::Backend> = match &self.store {
            Store::Sqlite(dir) => {
                Arc::new(SqliteBackend::open(dir.path().join("queue.db")).expect("open sqlite"))
            }
            Store::Redis(s) => Arc::new(RedisBackend::connect(s.url()).await.expect("connect")),
            Store::Sentinel(set) => Arc::new(
                RedisBackend::connect_topology(&RedisTopology::Sentinel {
                    sentinels: secrets(set.sentinel_urls()),
                    master: set.master_name().to_owned(),
                    master_password: None,
                })
                .await
                .expect("connect through the sentinels"),
            ),
            Store::Cluster(set) => Arc::new(
                RedisBackend::connect_topology(&RedisTopology::Cluster(secrets(set.node_urls())))
                    .await
                    .expect("connect to the cluster"),
            ),
        };
        Queue::new(backend, QueueConfig::default()).with_secrets(secret_box())
    }

    /// The URLs of the Redis primaries holding the data (None on SQLite).
    pub(crate) fn primary_urls(&self) -> Option<Vec<String>> {
        let url = |p: u16| format!("redis://127.0.0.1:{p}/");
        match &self.store {
            Store::Sqlite(_) => None,
            Store::Redis(s) => Some(vec![s.url().to_owned()]),
            Store::Sentinel(s) => Some(s.master_ports().into_iter().map(url).collect()),
            Store::Cluster(c) => Some(c.primary_ports().into_iter().map(url).collect()),
        }
    }

    /// Another queue handle on the same store with a different config, as a
    /// second process would have.
    pub(crate) fn with_config(&self, cfg: QueueConfig) -> Queue {
        Queue::new(Arc::clone(self.queue.backend()), cfg).with_secrets(secret_box())
    }

    /// Every byte the store holds: the SQLite files, or every Redis key and value.
    pub(crate) async fn all_stored_bytes(&self) -> Vec<u8> {
        match &self.store {
            Store::Sqlite(dir) => {
                let mut out = Vec::new();
                for e in std::fs::read_dir(dir.path()).expect("read dir") {
                    let p = e.expect("entry").path();
                    out.extend(std::fs::read(&p).unwrap_or_default());
                }
                out
            }
            _ => {
                let mut out = Vec::new();
                for url in self.primary_urls().unwrap_or_default() {
                    out.extend(node_bytes(&url).await);
                }
                out
            }
        }
    }
}

/// Every key and value one Redis node holds.
async fn node_bytes(url: &str) -> Vec<u8> {
    let client = redis::Client::open(url).expect("client");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut c)
        .await
        .expect("keys");
    let mut out = Vec::new();
    for k in keys {
        out.extend(k.as_bytes());
        let ty: String = redis::cmd("TYPE")
            .arg(&k)
            .query_async(&mut c)
            .await
            .expect("type");
        let vals: Vec<Vec<u8>> = match ty.as_str() {
            "string" => vec![
                redis::cmd("GET")
                    .arg(&k)
                    .query_async(&mut c)
                    .await
                    .expect("get"),
            ],
            "hash" => redis::cmd("HGETALL")
                .arg(&k)
                .query_async(&mut c)
                .await
                .expect("hgetall"),
            "zset" => redis::cmd("ZRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .expect("zrange"),
            "list" => redis::cmd("LRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query_async(&mut c)
                .await
                .expect("lrange"),
            "set" => redis::cmd("SMEMBERS")
                .arg(&k)
                .query_async(&mut c)
                .await
                .expect("smembers"),
            other => panic!("unexpected key type {other} for {k}"),
        };
        for v in vals {
            out.extend(v);
        }
    }
    out
}
