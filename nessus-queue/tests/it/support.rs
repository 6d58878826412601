//! Test harness: a real SQLite file in a tempdir, or a real redis-server on a free
//! 127.0.0.1 port that the test spawns and kills.

use std::sync::Arc;

use nessus_queue::testkit::RedisServer;
use nessus_queue::{Queue, QueueConfig, RedisBackend, SecretBox, SqliteBackend};

pub(crate) enum Store {
    Sqlite(tempfile::TempDir),
    Redis(RedisServer),
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
            Store::Redis(server) => {
                let client = redis::Client::open(server.url()).expect("client");
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
        }
    }
}
