//! Redis Sentinel and Redis Cluster deployments of the test's own: real
//! `redis-server` processes (`--sentinel` for the sentinels) on free loopback ports,
//! in a temporary directory, killed and removed on drop.

use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::process::{ChildGuard, base_args, free_port, spawn_server};

/// The master name the sentinels of a [`RedisSentinelSet`] monitor.
pub const SENTINEL_MASTER: &str = "nessus";

/// How long a failover or a cluster formation may take in the tests.
const TOPOLOGY_TIMEOUT: Duration = Duration::from_secs(30);

/// A temporary directory removed on drop (testkit has no `tempfile` dependency).
#[derive(Debug)]
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(kind: &str) -> io::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "nessus-{kind}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p)?;
        Ok(Self(p))
    }
    fn path(&self) -> &Path {
        &self.0
    }
    fn str(&self) -> io::Result<&str> {
        self.0
            .to_str()
            .ok_or_else(|| io::Error::other("temporary directory is not UTF-8"))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One data node of a set.
#[derive(Debug)]
struct Node {
    port: u16,
    process: ChildGuard,
}

fn node_url(port: u16, password: Option<&str>) -> String {
    match password {
        Some(p) => format!("redis://:{p}@127.0.0.1:{port}/"),
        None => format!("redis://127.0.0.1:{port}/"),
    }
}

fn sync_con(port: u16, password: Option<&str>) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(node_url(port, password))?;
    client.get_connection_with_timeout(Duration::from_secs(1))
}

fn redis_io(e: redis::RedisError) -> io::Error {
    io::Error::other(e.to_string())
}

/// `INFO section` of the node on `port`, as `key:value` lines.
fn info(port: u16, password: Option<&str>, section: &str) -> redis::RedisResult<String> {
    redis::cmd("INFO")
        .arg(section)
        .query(&mut sync_con(port, password)?)
}

fn info_field(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(|v| v.trim().to_owned())
}

/// Polls `check` every 50 ms until it holds, or fails with `what` after the timeout.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) -> io::Result<()> {
    let started = Instant::now();
    while !check() {
        if started.elapsed() > TOPOLOGY_TIMEOUT {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} within {} s", TOPOLOGY_TIMEOUT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Runs `start` up to three times: a free port is only free until someone else
/// binds it (parallel tests start dozens of servers), so a lost race is retried
/// with new ports; the last error is returned. A missing binary is not retried.
fn with_fresh_ports<T>(mut start: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let mut last = None;
    for _ in 0..3 {
        match start() {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("not started")))
}

/// A free port whose cluster bus port (+10000) is free too.
fn free_cluster_port() -> io::Result<u16> {
    for _ in 0..100 {
        let p = free_port()?;
        if p < 55_000 && p != 6379 && TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            return Ok(p);
        }
    }
    Err(io::Error::other(
        "no free port pair (port, port+10000) for a cluster node",
    ))
}

/// Data-node flags for fast tests: no snapshots, no AOF, an immediate diskless
/// full sync for replicas.
fn data_args(dir: &str, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .map(str::to_owned)
    .to_vec();
    v.extend(extra.iter().map(|s| (*s).to_owned()));
    v
}

/// One master, one replica and three sentinels (quorum 2) watching them as
/// [`SENTINEL_MASTER`], with a 1 s down-after, so a failover takes a few seconds.
#[derive(Debug)]
pub struct RedisSentinelSet {
    nodes: Vec<Node>,
    sentinels: Vec<Node>,
    /// The one password of every node and sentinel, if any.
    password: Option<String>,
    _dir: ScratchDir,
}

impl RedisSentinelSet {
    /// Starts the five processes; returns once the replica is in sync and every
    /// sentinel names the master.
    pub fn start() -> io::Result<Self> {
        with_fresh_ports(|| Self::start_inner(None))
    }

    /// Like [`RedisSentinelSet::start`], with `password` required by the data nodes
    /// (`requirepass`, `masterauth`) and by the sentinels (`requirepass`,
    /// `auth-pass`); [`RedisSentinelSet::sentinel_urls`] then carry it.
    pub fn start_with_password(password: &str) -> io::Result<Self> {
        with_fresh_ports(|| Self::start_inner(Some(password.to_owned())))
    }

    fn start_inner(password: Option<String>) -> io::Result<Self> {
        let pw = password.as_deref();
        let auth: Vec<String> = pw
            .map(|p| {
                ["--requirepass", p, "--masterauth", p]
                    .map(str::to_owned)
                    .to_vec()
            })
            .unwrap_or_default();
        let auth: Vec<&str> = auth.iter().map(String::as_str).collect();
        let dir = ScratchDir::new("sentinel")?;
        let master_port = free_port()?;
        let replica_port = free_port()?;
        let m = spawn_server(
            "redis-server",
            master_port,
            &base_args(master_port, &data_args(dir.str()?, &auth)),
        )?;
        let r = spawn_server(
            "redis-server",
            replica_port,
            &base_args(
                replica_port,
                &data_args(
                    dir.str()?,
                    &[
                        &["--replicaof", "127.0.0.1", &master_port.to_string()],
                        auth.as_slice(),
                    ]
                    .concat(),
                ),
            ),
        )?;
        let nodes = vec![
            Node {
                port: master_port,
                process: m,
            },
            Node {
                port: replica_port,
                process: r,
            },
        ];
        let mut sentinels = Vec::new();
        for i in 0..3 {
            let port = free_port()?;
            // A sentinel rewrites its config file, so each has its own.
            let conf = dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {d}\n\
                     sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
                     sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n\
                     sentinel failover-timeout {SENTINEL_MASTER} 4000\n\
                     sentinel parallel-syncs {SENTINEL_MASTER} 1\n{a}",
                    d = dir.str()?,
                    a = pw.map_or_else(String::new, |p| format!(
                        "requirepass {p}\nsentinel auth-pass {SENTINEL_MASTER} {p}\n"
                    )),
                ),
            )?;
            let conf = conf
                .to_str()
                .ok_or_else(|| io::Error::other("config path is not UTF-8"))?
                .to_owned();
            let process = spawn_server("redis-server", port, &[conf, "--sentinel".to_owned()])?;
            sentinels.push(Node { port, process });
        }
        let set = Self {
            nodes,
            sentinels,
            password: password.clone(),
            _dir: dir,
        };
        wait_until("the replica did not sync with the master", || {
            info(replica_port, pw, "replication")
                .is_ok_and(|i| info_field(&i, "master_link_status").as_deref() == Some("up"))
        })?;
        wait_until("the sentinels did not name the master", || {
            set.sentinels
                .iter()
                .all(|s| set.master_port_from(s.port) == Some(master_port))
        })?;
        Ok(set)
    }

    /// `redis://127.0.0.1:P` for each sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|s| node_url(s.port, self.password.as_deref()))
            .collect()
    }

    /// The master name the sentinels monitor.
    pub fn master_name(&self) -> &str {
        SENTINEL_MASTER
    }

    fn master_port_from(&self, sentinel: u16) -> Option<u16> {
        let mut c = sync_con(sentinel, self.password.as_deref()).ok()?;
        let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
            .arg("get-master-addr-by-name")
            .arg(SENTINEL_MASTER)
            .query(&mut c)
            .ok()?;
        addr.map(|(_, p)| p)
    }

    /// The current master's URL, as the sentinels name it.
    pub fn master_url(&self) -> io::Result<String> {
        self.sentinels
            .iter()
            .find_map(|s| self.master_port_from(s.port))
            .map(|p| node_url(p, self.password.as_deref()))
            .ok_or_else(|| io::Error::other("no sentinel names a master"))
    }

    fn is_writable_master(&self, port: u16) -> bool {
        info(port, self.password.as_deref(), "replication").is_ok_and(|i| {
            info_field(&i, "role").as_deref() == Some("master")
                && info_field(&i, "connected_slaves").is_some()
        })
    }

    /// Waits until every sentinel knows the other two and the replica, which a
    /// failover needs (quorum and a candidate).
    fn wait_for_discovery(&self) -> io::Result<()> {
        wait_until("the sentinels did not discover each other", || {
            self.sentinels.iter().all(|s| {
                let Ok(mut c) = sync_con(s.port, self.password.as_deref()) else {
                    return false;
                };
                let others: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("sentinels")
                    .arg(SENTINEL_MASTER)
                    .query(&mut c)
                    .unwrap_or_default();
                let replicas: Vec<redis::Value> = redis::cmd("SENTINEL")
                    .arg("replicas")
                    .arg(SENTINEL_MASTER)
                    .query(&mut c)
                    .unwrap_or_default();
                others.len() >= 2 && !replicas.is_empty()
            })
        })
    }

    /// Waits until the sentinels name a master other than `old` and it is writable.
    fn wait_for_new_master(&self, old: u16) -> io::Result<u16> {
        let mut new = None;
        wait_until("no new master was promoted", || {
            new = self
                .sentinels
                .iter()
                .find_map(|s| self.master_port_from(s.port))
                .filter(|p| *p != old && self.is_writable_master(*p));
            new.is_some()
        })?;
        new.ok_or_else(|| io::Error::other("no new master"))
    }

    fn current_master_port(&self) -> io::Result<u16> {
        self.sentinels
            .iter()
            .find_map(|s| self.master_port_from(s.port))
            .ok_or_else(|| io::Error::other("no sentinel names a master"))
    }

    /// `SENTINEL FAILOVER`: the replica becomes master, the old master its replica.
    /// Returns once the new master is writable. Blocks (call it from
    /// `spawn_blocking` when other tasks must run meanwhile).
    pub fn failover(&self) -> io::Result<()> {
        self.wait_for_discovery()?;
        let old = self.current_master_port()?;
        let mut c = sync_con(self.sentinels[0].port, self.password.as_deref()).map_err(redis_io)?;
        redis::cmd("SENTINEL")
            .arg("failover")
            .arg(SENTINEL_MASTER)
            .query::<()>(&mut c)
            .map_err(redis_io)?;
        self.wait_for_new_master(old).map(|_| ())
    }

    /// Kills the current master with SIGKILL and waits for the sentinels to
    /// promote the replica. Blocks, like [`RedisSentinelSet::failover`].
    pub fn kill9_master(&mut self) -> io::Result<()> {
        self.wait_for_discovery()?;
        let old = self.current_master_port()?;
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == old) {
            n.process.kill();
        }
        self.wait_for_new_master(old).map(|_| ())
    }

    /// The ports of the data nodes that are masters now (one).
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| {
                info(*p, self.password.as_deref(), "replication")
                    .is_ok_and(|i| info_field(&i, "role").as_deref() == Some("master"))
            })
            .collect()
    }
}

/// A Redis Cluster of three primaries (and, if asked, one replica each) with a 1 s
/// node timeout, so a primary's failover takes a few seconds.
#[derive(Debug)]
pub struct RedisClusterSet {
    nodes: Vec<Node>,
    _dir: ScratchDir,
}

impl RedisClusterSet {
    /// Starts the nodes, joins them with `redis-cli --cluster create` and returns
    /// once every node reports `cluster_state:ok` (and every replica is in sync).
    pub fn start(replicas: bool) -> io::Result<Self> {
        with_fresh_ports(|| Self::start_inner(replicas))
    }

    fn start_inner(replicas: bool) -> io::Result<Self> {
        let dir = ScratchDir::new("cluster")?;
        let n = if replicas { 6 } else { 3 };
        let mut nodes = Vec::with_capacity(n);
        for _ in 0..n {
            let port = free_cluster_port()?;
            let conf = format!("{}/nodes-{port}.conf", dir.str()?);
            let args = data_args(
                dir.str()?,
                &[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    &conf,
                    "--cluster-node-timeout",
                    "1000",
                    // A replica takes over however long its link was down: tests
                    // kill primaries at any moment.
                    "--cluster-replica-validity-factor",
                    "0",
                ],
            );
            let process = spawn_server("redis-server", port, &base_args(port, &args))?;
            nodes.push(Node { port, process });
        }
        let mut cli = Command::new("redis-cli");
        cli.arg("--cluster").arg("create");
        for n in &nodes {
            cli.arg(format!("127.0.0.1:{}", n.port));
        }
        if replicas {
            cli.args(["--cluster-replicas", "1"]);
        }
        let out = cli
            .arg("--cluster-yes")
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "redis-cli is not installed or failed (apt-get install redis-tools): {e}"
                    ),
                )
            })?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let set = Self { nodes, _dir: dir };
        set.wait_healthy(None)?;
        Ok(set)
    }

    fn wait_healthy(&self, dead: Option<u16>) -> io::Result<()> {
        let live: Vec<u16> = self
            .nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| Some(*p) != dead)
            .collect();
        wait_until("the cluster did not reach cluster_state:ok", || {
            live.iter().all(|p| {
                sync_con(*p, None)
                    .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
                    .is_ok_and(|i| info_field(&i, "cluster_state").as_deref() == Some("ok"))
            })
        })?;
        wait_until("a cluster replica did not sync", || {
            live.iter().all(|p| {
                info(*p, None, "replication").is_ok_and(|i| {
                    info_field(&i, "role").as_deref() == Some("master")
                        || info_field(&i, "master_link_status").as_deref() == Some("up")
                })
            })
        })
    }

    /// `redis://127.0.0.1:P` for every node (the seed list).
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(|n| node_url(n.port, None)).collect()
    }

    /// The ports of the live nodes that are primaries now.
    pub fn primary_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .map(|n| n.port)
            .filter(|p| {
                info(*p, None, "replication")
                    .is_ok_and(|i| info_field(&i, "role").as_deref() == Some("master"))
            })
            .collect()
    }

    /// The port of the primary serving `key`'s slot, as a live node sees it.
    fn primary_for(&self, key: &str, ask: u16) -> Option<u16> {
        let mut c = sync_con(ask, None).ok()?;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .ok()?;
        let slots: Vec<redis::Value> = redis::cmd("CLUSTER").arg("SLOTS").query(&mut c).ok()?;
        for range in slots {
            let redis::Value::Array(parts) = range else {
                continue;
            };
            let (Some(lo), Some(hi), Some(redis::Value::Array(primary))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let (Ok(lo), Ok(hi)) = (
                redis::from_redis_value_ref::<u16>(lo),
                redis::from_redis_value_ref::<u16>(hi),
            ) else {
                continue;
            };
            if (lo..=hi).contains(&slot) {
                return primary
                    .get(1)
                    .and_then(|p| redis::from_redis_value_ref::<u16>(p).ok());
            }
        }
        None
    }

    /// Kills (SIGKILL) the primary serving `key` and waits until its replica has
    /// taken over the slot and the cluster is `ok` again. Needs `start(true)`.
    /// Blocks (call it from `spawn_blocking` when other tasks must run meanwhile).
    pub fn kill9_primary_for_key(&mut self, key: &str) -> io::Result<()> {
        let ask = self.nodes[0].port;
        let victim = self
            .primary_for(key, ask)
            .ok_or_else(|| io::Error::other(format!("no primary serves {key}")))?;
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == victim) {
            n.process.kill();
        }
        let witness = self
            .nodes
            .iter()
            .map(|n| n.port)
            .find(|p| *p != victim)
            .ok_or_else(|| io::Error::other("no surviving node"))?;
        wait_until("no replica took over the killed primary's slots", || {
            self.primary_for(key, witness)
                .is_some_and(|p| p != victim && Self::role_is_master(p))
        })?;
        self.wait_healthy(Some(victim))
    }

    fn role_is_master(port: u16) -> bool {
        info(port, None, "replication")
            .is_ok_and(|i| info_field(&i, "role").as_deref() == Some("master"))
    }
}
