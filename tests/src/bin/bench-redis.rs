//! What the Redis backend costs at scale:
//! `cargo run --release -p nessus-tests --bin bench-redis -- [--tasks N | --quick]
//! [--topology standalone|cluster] [--principals P] [--ops N] [--scan-minutes M]`.
//!
//! Starts its own `redis-server` (standalone, or a 3-primary Cluster) on free
//! 127.0.0.1 ports, fills it with N tasks (default 1 000 000; `--quick` 20 000) through
//! `nessus_queue::service::Service::submit` — the call path of `run_untrusted_scan` —
//! from P principals (default 10) on 32 concurrent submitters, then measures, per
//! operation and averaged over `--ops` calls (default 1 000): Redis commands (from
//! `INFO commandstats`, commands run inside scripts included), bytes in and out
//! (`total_net_input_bytes` / `total_net_output_bytes`), Redis CPU
//! (`used_cpu_sys + used_cpu_user`) and latency, each delta minus the cost of the
//! `INFO` call itself. On Cluster every figure is summed over the primaries. The light
//! tool calls are measured through the same `Service` methods the MCP tools call
//! (`task` for `get_scan_status`, `list` for `list_tasks`, `queue_status` for
//! `get_queue_status`); the worker's writes through `Queue`. Memory per task is the
//! `used_memory` delta over the fill (queued) and over completing a sample (completed),
//! with `MEMORY USAGE` of each key kind. The capacity of one Redis primary is derived
//! from the CPU per operation and the memory per task, with the assumptions printed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nessus_core::Config;
use nessus_queue::service::{Principal, ScanRequest, Service};
use nessus_queue::testkit::{RedisClusterSet, RedisServer, single_pool};
use nessus_queue::{
    Completion, ListTasks, Queue, QueueConfig, RedisTopology, ResultsDir, TaskStatus,
};
use redis::aio::MultiplexedConnection;
use secrecy::SecretString;

/// The two pools the fill spreads over (three quarters in the first).
const POOLS: [&str; 2] = ["nessus", "nessus_dmz"];
/// Concurrent submitters while filling.
const FILL_CONCURRENCY: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Topology {
    Standalone,
    Cluster,
}

#[derive(Debug)]
struct Args {
    tasks: usize,
    topology: Topology,
    principals: usize,
    ops: usize,
    scan_minutes: f64,
    /// Cluster primaries with a replica each (writes then wait for one).
    replicas: bool,
}

fn usage() -> &'static str {
    "usage: bench-redis [--tasks N (default 1000000) | --quick (20000)] \
     [--topology standalone|cluster] [--principals P (10)] [--ops N (1000)] \
     [--scan-minutes M (30, for the per-scan model)] [--replicas (cluster: one per primary)]"
}

fn parse_args() -> Result<Option<Args>> {
    let mut a = Args {
        tasks: 1_000_000,
        topology: Topology::Standalone,
        principals: 10,
        ops: 1000,
        scan_minutes: 30.0,
        replicas: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{}", usage());
                return Ok(None);
            }
            "--quick" => a.tasks = 20_000,
            "--replicas" => a.replicas = true,
            "--tasks" => a.tasks = value("--tasks")?.parse().context("--tasks N")?,
            "--principals" => {
                a.principals = value("--principals")?.parse().context("--principals P")?;
            }
            "--ops" => a.ops = value("--ops")?.parse().context("--ops N")?,
            "--scan-minutes" => {
                a.scan_minutes = value("--scan-minutes")?
                    .parse()
                    .context("--scan-minutes M")?;
            }
            "--topology" => {
                a.topology = match value("--topology")?.as_str() {
                    "standalone" => Topology::Standalone,
                    "cluster" => Topology::Cluster,
                    other => bail!("unknown topology {other:?}; {}", usage()),
                }
            }
            other => bail!("unknown argument {other:?}; {}", usage()),
        }
    }
    if a.tasks < 1000 || a.principals == 0 || a.ops < 10 {
        bail!("need --tasks >= 1000, --principals >= 1, --ops >= 10");
    }
    Ok(Some(a))
}

// ---------------------------------------------------------------------------------
// INFO snapshots

/// One `INFO` reading, summed over the primaries.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    calls: BTreeMap<String, u64>,
    usec: u64,
    net_in: u64,
    net_out: u64,
    cpu_s: f64,
    used_memory: u64,
}

impl Snapshot {
    fn add_info(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("cmdstat_") {
                let Some((name, fields)) = rest.split_once(':') else {
                    continue;
                };
                for f in fields.split(',') {
                    match f.split_once('=') {
                        Some(("calls", v)) => {
                            *self.calls.entry(name.to_owned()).or_default() +=
                                v.parse::<u64>().unwrap_or(0);
                        }
                        Some(("usec", v)) if name != "info" => {
                            self.usec += v.parse::<u64>().unwrap_or(0);
                        }
                        _ => {}
                    }
                }
            } else if let Some((k, v)) = line.split_once(':') {
                match k {
                    "total_net_input_bytes" => self.net_in += v.parse::<u64>().unwrap_or(0),
                    "total_net_output_bytes" => self.net_out += v.parse::<u64>().unwrap_or(0),
                    "used_cpu_sys" | "used_cpu_user" => {
                        self.cpu_s += v.parse::<f64>().unwrap_or(0.0);
                    }
                    "used_memory" => self.used_memory += v.parse::<u64>().unwrap_or(0),
                    _ => {}
                }
            }
        }
    }
}

/// What happened between two snapshots.
#[derive(Debug, Clone, Default)]
struct Delta {
    calls: BTreeMap<String, f64>,
    usec: f64,
    net_in: f64,
    net_out: f64,
    cpu_s: f64,
}

impl Delta {
    fn between(a: &Snapshot, b: &Snapshot) -> Self {
        let mut calls = BTreeMap::new();
        for (k, v) in &b.calls {
            // INFO is the measurement, never the measured.
            if k == "info" {
                continue;
            }
            let d = v.saturating_sub(a.calls.get(k).copied().unwrap_or(0));
            if d > 0 {
                calls.insert(k.clone(), d as f64);
            }
        }
        Self {
            calls,
            usec: b.usec.saturating_sub(a.usec) as f64,
            net_in: b.net_in.saturating_sub(a.net_in) as f64,
            net_out: b.net_out.saturating_sub(a.net_out) as f64,
            cpu_s: (b.cpu_s - a.cpu_s).max(0.0),
        }
    }

    fn minus(mut self, o: &Self) -> Self {
        for (k, v) in &o.calls {
            if let Some(x) = self.calls.get_mut(k) {
                *x = (*x - v).max(0.0);
            }
        }
        self.usec = (self.usec - o.usec).max(0.0);
        self.net_in = (self.net_in - o.net_in).max(0.0);
        self.net_out = (self.net_out - o.net_out).max(0.0);
        self.cpu_s = (self.cpu_s - o.cpu_s).max(0.0);
        self
    }

    fn plus(mut self, o: &Self) -> Self {
        for (k, v) in &o.calls {
            *self.calls.entry(k.clone()).or_default() += v;
        }
        self.usec += o.usec;
        self.net_in += o.net_in;
        self.net_out += o.net_out;
        self.cpu_s += o.cpu_s;
        self
    }

    fn per(mut self, n: usize) -> Self {
        let n = n as f64;
        for v in self.calls.values_mut() {
            *v /= n;
        }
        self.usec /= n;
        self.net_in /= n;
        self.net_out /= n;
        self.cpu_s /= n;
        self
    }

    fn commands(&self) -> f64 {
        self.calls.values().sum()
    }

    /// The commands, most frequent first: `evalsha 1, hget 2, ...`.
    fn breakdown(&self) -> String {
        let mut v: Vec<_> = self.calls.iter().filter(|(_, n)| **n >= 0.05).collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        v.iter()
            .map(|(k, n)| format!("{k} {}", trim(**n)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn trim(x: f64) -> String {
    if (x - x.round()).abs() < 0.05 {
        format!("{}", x.round())
    } else {
        format!("{x:.1}")
    }
}

/// Connections to every primary, for INFO and MEMORY USAGE.
struct Nodes {
    cons: Vec<MultiplexedConnection>,
}

impl Nodes {
    async fn connect(urls: &[String]) -> Result<Self> {
        let mut cons = Vec::new();
        for u in urls {
            let mut c = redis::Client::open(u.as_str())?
                .get_multiplexed_async_connection()
                .await
                .with_context(|| format!("connect to {u}"))?;
            // An exact MEMORY USAGE of a million-entry hash takes longer than the
            // client's default 500 ms.
            c.set_response_timeout(Duration::from_secs(120));
            cons.push(c);
        }
        Ok(Self { cons })
    }

    async fn snapshot(&mut self) -> Result<Snapshot> {
        let mut s = Snapshot::default();
        for c in &mut self.cons {
            let text: String = redis::cmd("INFO")
                .arg("commandstats")
                .arg("stats")
                .arg("cpu")
                .arg("memory")
                .query_async(c)
                .await?;
            s.add_info(&text);
        }
        Ok(s)
    }

    async fn used_memory(&mut self) -> Result<u64> {
        // Let jemalloc's background purge and lazy frees settle first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(self.snapshot().await?.used_memory)
    }

    /// `MEMORY USAGE key SAMPLES 0` (exact) on whichever primary holds `key`.
    async fn memory_usage(&mut self, key: &str) -> Result<u64> {
        let mut total = 0;
        for c in &mut self.cons {
            // A primary that does not own the key's slot answers MOVED: not ours.
            let r: redis::RedisResult<Option<u64>> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(c)
                .await;
            match r {
                Ok(v) => total += v.unwrap_or(0),
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::Moved) => {}
                Err(e) => return Err(e).with_context(|| format!("MEMORY USAGE {key}")),
            }
        }
        Ok(total)
    }
}

/// One measured operation: per-call cost and latency.
struct Cost {
    name: String,
    per_op: Delta,
    p50: Duration,
    p99: Duration,
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Rounds per figure: CPU per operation is the lowest round's (the others on this
/// shared machine are the same work plus interference), commands and bytes the mean.
const ROUNDS: usize = 3;

/// Runs `op` `ROUNDS` × `n` times in sequence (`i` counts on across rounds), each
/// round between INFO snapshots; the INFO call's own cost is measured right before
/// each round (two snapshots with nothing between) and subtracted.
async fn measure(
    nodes: &mut Nodes,
    name: &str,
    n: usize,
    mut op: impl AsyncFnMut(usize) -> Result<()>,
) -> Result<Cost> {
    // Warm-up: the first call may load a script or open a connection.
    op(ROUNDS * n).await?;
    let mut lat = Vec::with_capacity(ROUNDS * n);
    let mut total = Delta::default();
    let mut cpu = Vec::new();
    for r in 0..ROUNDS {
        let s0 = nodes.snapshot().await?;
        let s1 = nodes.snapshot().await?;
        for i in r * n..(r + 1) * n {
            let t = Instant::now();
            op(i).await.with_context(|| format!("{name} #{i}"))?;
            lat.push(t.elapsed());
        }
        let s2 = nodes.snapshot().await?;
        let d = Delta::between(&s1, &s2).minus(&Delta::between(&s0, &s1));
        cpu.push(d.cpu_s);
        total = total.plus(&d);
    }
    let mut per_op = total.per(ROUNDS * n);
    per_op.cpu_s = cpu.iter().copied().fold(f64::INFINITY, f64::min) / n as f64;
    let cost = Cost {
        name: name.to_owned(),
        per_op,
        p50: pct(&mut lat, 0.5),
        p99: pct(&mut lat, 0.99),
    };
    eprintln!(
        "  measured {name}: {} commands, {:.1} µs cpu, p50 {}",
        trim(cost.per_op.commands()),
        cost.per_op.cpu_s * 1e6,
        ms(cost.p50)
    );
    Ok(cost)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

// ---------------------------------------------------------------------------------
// The system under test

/// The servers, kept alive for the run.
enum Servers {
    Standalone(RedisServer),
    /// Three primaries, with a replica each or none (INFO is read on the primaries:
    /// replication traffic is not counted, the WAIT our writes send is).
    Cluster(RedisClusterSet),
}

impl Servers {
    fn start(t: Topology, replicas: bool) -> Result<Self> {
        Ok(match t {
            Topology::Standalone => Self::Standalone(RedisServer::start()?),
            Topology::Cluster => Self::Cluster(RedisClusterSet::start(replicas)?),
        })
    }

    /// The primaries, for INFO.
    fn primaries(&self) -> Vec<String> {
        match self {
            Self::Standalone(s) => vec![s.url().to_owned()],
            Self::Cluster(c) => c
                .primary_ports()
                .into_iter()
                .map(|p| format!("redis://127.0.0.1:{p}/"))
                .collect(),
        }
    }

    async fn queue(&self, cfg: QueueConfig) -> Result<Queue> {
        let topology = match self {
            Self::Standalone(s) => RedisTopology::Standalone(SecretString::from(s.url())),
            Self::Cluster(c) => {
                RedisTopology::Cluster(c.node_urls().into_iter().map(SecretString::from).collect())
            }
        };
        Ok(Queue::redis_topology(&topology, cfg).await?)
    }
}

fn config(data_dir: &std::path::Path) -> Result<Config> {
    let mut yaml = format!(
        "server:\n  data_dir: {:?}\n  default_pool: nessus\nqueue:\n  max_queued_per_principal: 1000000000\n",
        data_dir.display()
    );
    for p in POOLS {
        yaml.push_str(&format!(
            "{p}:\n  target_policy:\n    allow: [10.0.0.0/8]\n  instances:\n    \
             - instance_id: s1\n      url: \"https://127.0.0.1:9\"\n      \
             access_key: k-access\n      secret_key: k-secret\n      max_concurrent_scans: 64\n"
        ));
    }
    Ok(Config::from_yaml_with_env(&yaml, &|_| None)?)
}

/// A task the fill created, for status reads and cursors.
#[derive(Debug, Clone)]
struct Sample {
    id: String,
    principal: usize,
    cursor: String,
}

fn principal(i: usize) -> Principal {
    Principal::new(format!("agent-{i:03}"))
}

fn request(i: usize) -> ScanRequest {
    let pool = if i % 4 == 3 { POOLS[1] } else { POOLS[0] };
    ScanRequest::untrusted(
        format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
        format!("nightly scan {i}"),
    )
    .pool(Some(pool.to_owned()))
}

struct Fill {
    elapsed: Duration,
    samples: Vec<Sample>,
    chunk_rates: Vec<(usize, f64)>,
    lat_p50: Duration,
    lat_p99: Duration,
}

/// `n` submits from `principals` principals on 32 concurrent submitters, starting at
/// request number `from`. Keeps every `keep_every`-th task as a sample.
async fn fill(
    svc: &Arc<Service>,
    from: usize,
    n: usize,
    principals: usize,
    keep_every: usize,
) -> Result<Fill> {
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..FILL_CONCURRENCY {
        let (svc, next, done) = (Arc::clone(svc), Arc::clone(&next), Arc::clone(&done));
        set.spawn(async move {
            let mut samples = Vec::new();
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let k = from + i;
                let who = k % principals;
                let t = Instant::now();
                let s = svc.submit(&principal(who), request(k)).await?;
                if i % 64 == 0 {
                    lat.push(t.elapsed());
                }
                done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i % keep_every == 0 {
                    let task = &s.submitted.task;
                    samples.push(Sample {
                        id: task.task_id.clone(),
                        principal: who,
                        cursor: format!(
                            "{:013}:{}",
                            task.created_at.as_millisecond().max(0),
                            task.task_id
                        ),
                    });
                }
            }
            anyhow::Ok((samples, lat))
        });
    }
    // Rate per tenth of the fill: a submit that grows with the task count shows here.
    let monitor = {
        let done = Arc::clone(&done);
        tokio::spawn(async move {
            let mut chunk_rates = Vec::new();
            let step = (n / 10).max(1);
            let (mut last_n, mut last_t) = (0, Instant::now());
            while last_n < n {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let d = done.load(std::sync::atomic::Ordering::Relaxed);
                if d >= last_n + step || d >= n {
                    let rate = (d - last_n) as f64 / last_t.elapsed().as_secs_f64();
                    eprintln!("  fill: {} / {} tasks, {rate:.0}/s", from + d, from + n);
                    chunk_rates.push((from + d, rate));
                    (last_n, last_t) = (d, Instant::now());
                }
            }
            chunk_rates
        })
    };
    let mut samples = Vec::new();
    let mut lat = Vec::new();
    while let Some(r) = set.join_next().await {
        let (s, l) = r??;
        samples.extend(s);
        lat.extend(l);
    }
    let elapsed = start.elapsed();
    let chunk_rates = monitor.await?;
    samples.sort_by(|a, b| a.cursor.cmp(&b.cursor));
    Ok(Fill {
        elapsed,
        samples,
        chunk_rates,
        lat_p50: pct(&mut lat, 0.5),
        lat_p99: pct(&mut lat, 0.99),
    })
}

/// A completion as `SchemaIngest` writes it (same summary shape and size).
fn completion() -> Completion {
    let mut c = Completion::default();
    c.authentication_status = Some("n/a".to_owned());
    c.results_summary = Some(serde_json::json!({
        "hosts_scanned": 1,
        "total_vulnerabilities": 17,
        "total_findings": 58,
        "severity_breakdown": {"critical": 1, "high": 3, "medium": 8, "low": 5, "info": 41},
        "file_size_kb": 412.3,
        "auth_plugins_found": 0,
    }));
    c
}

// ---------------------------------------------------------------------------------

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let Some(args) = parse_args()? else {
        return Ok(());
    };
    run(args).await
}

#[allow(clippy::too_many_lines)] // one straight measurement script reads best in order
async fn run(a: Args) -> Result<()> {
    let started = jiff::Timestamp::now();
    let servers = Servers::start(a.topology, a.replicas)?;
    let mut nodes = Nodes::connect(&servers.primaries()).await?;
    let redis_version = {
        let text: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut nodes.cons[0])
            .await?;
        text.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .unwrap_or("?")
            .trim()
            .to_owned()
    };
    let dir = std::env::temp_dir().join(format!("bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let qcfg = QueueConfig::default().max_queued_per_principal(u64::MAX);
    let queue = servers.queue(qcfg).await?;
    let svc = Arc::new(Service::new(
        config(&dir)?,
        queue.clone(),
        ResultsDir::new(dir.join("results")),
    ));
    let topo = match a.topology {
        Topology::Standalone => "standalone",
        Topology::Cluster if a.replicas => "cluster (3 primaries + 3 replicas)",
        Topology::Cluster => "cluster (3 primaries)",
    };
    println!(
        "== bench-redis: {} tasks, {topo}, Redis {redis_version}, {} principals, {} pools, {} ops per figure",
        a.tasks,
        a.principals,
        POOLS.len(),
        a.ops
    );
    println!(
        "   {started}, {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // ---- Fill.
    let mem0 = nodes.used_memory().await?;
    let keep_every = (a.tasks / 20_000).max(1);
    let f = fill(&svc, 0, a.tasks, a.principals, keep_every).await?;
    let mem1 = nodes.used_memory().await?;
    let queued_bytes = (mem1.saturating_sub(mem0)) as f64 / a.tasks as f64;
    println!(
        "fill: {} submits in {:.1} s = {:.0}/s ({FILL_CONCURRENCY} concurrent); submit latency under fill p50 {} p99 {}",
        a.tasks,
        f.elapsed.as_secs_f64(),
        a.tasks as f64 / f.elapsed.as_secs_f64(),
        ms(f.lat_p50),
        ms(f.lat_p99)
    );
    println!(
        "fill rate by tenth: {}",
        f.chunk_rates
            .iter()
            .map(|(n, r)| format!("{}k {r:.0}/s", n / 1000))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "used_memory: {:.1} MiB before, {:.1} MiB after = {queued_bytes:.0} B per queued task",
        mem0 as f64 / 1048576.0,
        mem1 as f64 / 1048576.0
    );
    let samples = f.samples;
    if samples.len() < 100 {
        bail!("only {} sample tasks", samples.len());
    }

    // ---- Per-operation cost at N tasks. After a large fill Redis rehashes its
    // dictionaries incrementally for a while; let that pass so it is not billed to
    // the first figure.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut costs = Vec::new();
    let n = a.ops;
    let base = a.tasks;
    costs.push(
        measure(&mut nodes, "submit (run_untrusted_scan)", n, async |i| {
            svc.submit(&principal(i % a.principals), request(base + i))
                .await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "submit with idempotency_key", n, async |i| {
            let k = base + ROUNDS * n + 1 + i;
            let r = request(k).idempotency_key(Some(format!("key-{k}")));
            svc.submit(&principal(i % a.principals), r).await?;
            Ok(())
        })
        .await?,
    );
    let pick = |i: usize| &samples[(i * 7919) % samples.len()];
    costs.push(
        measure(&mut nodes, "get_scan_status (queued)", n, async |i| {
            let s = pick(i);
            let v = svc.task(&principal(s.principal), &s.id).await?;
            if v.queue_position.is_none() {
                bail!("{} has no position", s.id);
            }
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "queue_status (agent)", n, async |i| {
            svc.queue_status(&principal(i % a.principals), None).await?;
            Ok(())
        })
        .await?,
    );
    let list = |p: Principal, q: ListTasks| {
        let svc = Arc::clone(&svc);
        async move {
            let page = svc.list(&p, q).await?;
            if page.tasks.is_empty() {
                bail!("empty page");
            }
            anyhow::Ok(())
        }
    };
    costs.push(
        measure(&mut nodes, "list_tasks first page (agent)", n, async |i| {
            list(principal(i % a.principals), ListTasks::new(10)).await
        })
        .await?,
    );
    let mid = &samples[samples.len() / 2];
    costs.push(
        measure(
            &mut nodes,
            "list_tasks deep cursor (agent, mid-queue)",
            n,
            async |_| {
                list(
                    principal(mid.principal),
                    ListTasks::new(10).cursor(mid.cursor.clone()),
                )
                .await
            },
        )
        .await?,
    );
    costs.push(
        measure(
            &mut nodes,
            "list_tasks status=queued (agent)",
            n,
            async |i| {
                list(
                    principal(i % a.principals),
                    ListTasks::new(10).status(TaskStatus::Queued),
                )
                .await
            },
        )
        .await?,
    );
    costs.push(
        measure(&mut nodes, "list_tasks first page (admin)", n, async |_| {
            list(Principal::local(), ListTasks::new(10)).await
        })
        .await?,
    );
    costs.push(
        measure(
            &mut nodes,
            "list_tasks deep cursor (admin)",
            n,
            async |_| {
                list(
                    Principal::local(),
                    ListTasks::new(10).cursor(mid.cursor.clone()),
                )
                .await
            },
        )
        .await?,
    );

    // ---- The worker's side of a scan, and completed tasks.
    // Room for every claim the bench holds at once (heartbeat, progress, ... on them).
    let pools = single_pool(POOLS[0], "s1", 1_000_000);
    let mut claimed = Vec::new();
    costs.push(
        measure(&mut nodes, "worker claim", n, async |i| {
            let c = queue
                .claim(&format!("w{}", i % 4), &pools)
                .await?
                .context("nothing to claim")?;
            claimed.push((c.task.task_id, c.token));
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "worker heartbeat", n, async |i| {
            let (id, tok) = &claimed[i % claimed.len()];
            queue.heartbeat(id, *tok).await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "worker record_scan", n, async |i| {
            let (id, tok) = &claimed[i];
            queue.record_scan(id, *tok, 1000 + i as i64).await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "worker progress", n, async |i| {
            let (id, tok) = &claimed[i % claimed.len()];
            queue.progress(id, *tok, (i % 99) as u8 + 1).await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "worker cancel-watch read", n, async |i| {
            let (id, _) = &claimed[i % claimed.len()];
            queue.backend().load(id.clone()).await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "get_scan_status (running)", n, async |i| {
            let (id, _) = &claimed[i % claimed.len()];
            svc.task(&Principal::local(), id).await?;
            Ok(())
        })
        .await?,
    );
    // `measure` warms up with one extra call: ROUNDS × n + 1 claims.
    let completed_ids: Vec<String> = claimed.iter().map(|(id, _)| id.clone()).collect();
    let mut next_done = 0;
    costs.push(
        measure(&mut nodes, "worker complete", n, async |_| {
            let (id, tok) = &claimed[next_done];
            next_done += 1;
            queue.complete(id, *tok, completion()).await?;
            Ok(())
        })
        .await?,
    );
    costs.push(
        measure(&mut nodes, "get_scan_status (completed)", n, async |i| {
            svc.task(&Principal::local(), &completed_ids[i % completed_ids.len()])
                .await?;
            Ok(())
        })
        .await?,
    );

    // Memory of a completed task: complete a sample (8 concurrent claim+complete
    // loops) and compare used_memory.
    let m = (a.tasks / 50).clamp(a.tasks.min(8000) / 4, 20_000);
    let mem2 = nodes.used_memory().await?;
    let t = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let (q, pools) = (queue.clone(), pools.clone());
        set.spawn(async move {
            for _ in 0..m / 8 {
                let c = q
                    .claim(&format!("mw{w}"), &pools)
                    .await?
                    .context("nothing to claim")?;
                q.complete(&c.task.task_id, c.token, completion()).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let cycle = t.elapsed();
    let m = m / 8 * 8;
    let mem3 = nodes.used_memory().await?;
    let completed_extra = (mem3 as f64 - mem2 as f64) / m as f64;
    println!(
        "completed {m} tasks (claim+complete, 8 concurrent) in {:.1} s = {:.0}/s; used_memory {:+.0} B per task queued→completed",
        cycle.as_secs_f64(),
        m as f64 / cycle.as_secs_f64(),
        completed_extra
    );

    // ---- Memory by key kind.
    println!("\nmemory by key (MEMORY USAGE, exact):");
    let sample_ids: Vec<&Sample> = (0..200).map(pick).collect();
    let mut task_keys = Vec::new();
    for s in &sample_ids {
        let v = queue.get(&s.id).await?.context("sample task")?;
        task_keys.push(format!("nq:{{{}}}:task:{}", v.task.pool, s.id));
    }
    avg(&mut nodes, "task hash (queued)", task_keys).await?;
    let done_keys = completed_ids
        .iter()
        .take(200)
        .map(|id| format!("nq:{{{}}}:task:{id}", POOLS[0]))
        .collect();
    avg(&mut nodes, "task hash (completed)", done_keys).await?;
    let audit_t = avg(
        &mut nodes,
        "audit nq:{audit}:t:{task_id} (sorted set)",
        sample_ids
            .iter()
            .map(|s| format!("nq:{{audit}}:t:{}", s.id))
            .collect(),
    )
    .await?;
    let total_tasks = (a.tasks + 2 * (ROUNDS * n + 1)) as f64;
    let mut big = vec![
        (
            "nq:task-pool (task id -> pool hash)".to_owned(),
            "nq:task-pool".to_owned(),
        ),
        (
            "nq:{audit}:doc (events hash)".into(),
            "nq:{audit}:doc".into(),
        ),
        ("nq:{audit}:all".into(), "nq:{audit}:all".into()),
        ("nq:{audit}:a:submit".into(), "nq:{audit}:a:submit".into()),
    ];
    for p in POOLS {
        big.push((
            format!("nq:{{audit}}:pool:{p}"),
            format!("nq:{{audit}}:pool:{p}"),
        ));
        for k in ["queue", "all", "st:queued", "st:completed", "done"] {
            big.push((format!("nq:{{{p}}}:{k}"), format!("nq:{{{p}}}:{k}")));
        }
        for k in ["all", "st:queued", "queue", "st:completed"] {
            let key = format!("nq:{{{p}}}:p:{}:{k}", hex_of("agent-000"));
            big.push((format!("nq:{{{p}}}:p:{{agent-000}}:{k}"), key));
        }
    }
    big.push((
        "nq:{audit}:p:agent-000".into(),
        "nq:{audit}:p:agent-000".into(),
    ));
    println!("  {:<44} {:>10} {:>10}", "shared key", "MiB", "B/task");
    // Audit bytes per submit event: its shared indexes (the one principal's index
    // counted for all P) plus its own per-task index.
    let mut audit_bytes = 0.0;
    for (label, key) in big {
        let b = nodes.memory_usage(&key).await? as f64;
        println!(
            "  {label:<44} {:>10.1} {:>10.1}",
            b / 1048576.0,
            b / total_tasks
        );
        if key.starts_with("nq:{audit}:p:") {
            audit_bytes += b * a.principals as f64;
        } else if key.starts_with("nq:{audit}") {
            audit_bytes += b;
        }
    }
    let audit_event = audit_bytes / total_tasks + audit_t;
    println!("  => audit: {audit_event:.0} B per event (submit), kept 90 days");

    // ---- The table.
    println!(
        "\n{:<42} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  commands",
        "per call", "commands", "bytes in", "bytes out", "cpu µs", "in-cmd µs", "p50 ms", "p99 ms"
    );
    for c in &costs {
        println!(
            "{:<42} {:>9} {:>9.0} {:>9.0} {:>9.1} {:>9.1} {:>9.2} {:>9.2}  {}",
            c.name,
            trim(c.per_op.commands()),
            c.per_op.net_in,
            c.per_op.net_out,
            c.per_op.cpu_s * 1e6,
            c.per_op.usec,
            c.p50.as_secs_f64() * 1000.0,
            c.p99.as_secs_f64() * 1000.0,
            c.per_op.breakdown()
        );
    }

    // ---- Capacity of one primary.
    let get = |name: &str| {
        costs
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.per_op.clone())
            .unwrap_or_default()
    };
    let d = a.scan_minutes * 60.0;
    // The worker's schedule (worker.rs): heartbeat every lease/3 = 20 s; a status poll
    // every max(0.5 s, 20 % of elapsed) capped at 30 s, each writing the progress when
    // it changed (counted as every poll: an upper bound); the cancel watch reads the
    // task every 250 ms.
    let heartbeats = (d / 20.0).floor();
    let polls = poll_count(d);
    let watch_reads = d * 4.0;
    // The agent: polls get_scan_status once a minute, lists its tasks once per scan.
    let agent_polls = a.scan_minutes.ceil();
    let parts: Vec<(&str, f64, Delta)> = vec![
        ("submit", 1.0, get("submit (run_untrusted_scan)")),
        ("claim", 1.0, get("worker claim")),
        ("record_scan", 1.0, get("worker record_scan")),
        ("heartbeats", heartbeats, get("worker heartbeat")),
        ("progress writes", polls, get("worker progress")),
        (
            "cancel-watch reads",
            watch_reads,
            get("worker cancel-watch read"),
        ),
        ("complete", 1.0, get("worker complete")),
        (
            "agent status polls",
            agent_polls,
            get("get_scan_status (queued)"),
        ),
        (
            "agent list_tasks",
            1.0,
            get("list_tasks first page (agent)"),
        ),
    ];
    println!(
        "\nper scan of {} min (model; counts from the worker's schedule):",
        a.scan_minutes
    );
    let (mut cmds, mut cpu, mut bin, mut bout) = (0.0, 0.0, 0.0, 0.0);
    let (mut base_cmds, mut base_cpu) = (0.0, 0.0);
    for (what, k, c) in &parts {
        println!(
            "  {what:<22} x{k:<6} {:>8} commands {:>8.0} µs cpu",
            trim(k * c.commands()),
            k * c.cpu_s * 1e6
        );
        cmds += k * c.commands();
        cpu += k * c.cpu_s;
        bin += k * c.net_in;
        bout += k * c.net_out;
        if *what != "cancel-watch reads" {
            base_cmds += k * c.commands();
            base_cpu += k * c.cpu_s;
        }
    }
    println!(
        "  total: {} commands, {:.1} ms Redis CPU, {:.0} KiB in, {:.0} KiB out (without the cancel watch: {} commands, {:.1} ms)",
        trim(cmds),
        cpu * 1e3,
        bin / 1024.0,
        bout / 1024.0,
        trim(base_cmds),
        base_cpu * 1e3
    );
    let core = 1.0; // one Redis main thread = one core, at 100 %
    let scans_day_cpu = core * 86_400.0 / cpu;
    let status = get("get_scan_status (queued)");
    let light = [
        status.cpu_s,
        get("list_tasks first page (agent)").cpu_s,
        get("queue_status (agent)").cpu_s,
    ];
    let light_avg = light.iter().sum::<f64>() / light.len() as f64;
    println!("\ncapacity of one Redis primary ({topo} on this machine; assumptions below):");
    println!(
        "  CPU: one core (Redis runs commands on one thread) at 100 %; Redis CPU per operation = used_cpu_sys+used_cpu_user delta (lowest of {ROUNDS} rounds); \
         in-cmd µs = commandstats usec (inside commands only, without network I/O)"
    );
    println!(
        "  - scans/day, whole lifecycle of a {}-min scan ({:.1} ms each): {:.2} M/day; without the 4/s cancel watch {:.2} M/day",
        a.scan_minutes,
        cpu * 1e3,
        scans_day_cpu / 1e6,
        86_400.0 / base_cpu / 1e6
    );
    println!(
        "  - agent calls/s (mean of get_scan_status, list_tasks page, queue_status = {:.1} µs): {:.0}/s",
        light_avg * 1e6,
        1.0 / light_avg
    );
    println!(
        "  - submits/s alone: {:.0}/s; get_scan_status alone: {:.0}/s",
        1.0 / get("submit (run_untrusted_scan)").cpu_s.max(1e-9),
        1.0 / status.cpu_s.max(1e-9)
    );
    // Memory: a completed task stays 7 days (completed_ttl), its audit events 90
    // (audit_ttl). Events per scan: the submit and, assumed, one results read.
    let (task_days, audit_days, events) = (7.0, 90.0, 2.0);
    let completed_task_bytes = queued_bytes + completed_extra;
    let task_only = completed_task_bytes - audit_event;
    let per_scan_day = task_only * task_days + audit_event * events * audit_days;
    let mem_gib = 16.0;
    let scans_day_mem = mem_gib * 1073741824.0 / per_scan_day;
    println!(
        "  memory: {completed_task_bytes:.0} B per completed task with its submit event (queued {queued_bytes:.0} {completed_extra:+.0}), \
         of which the audit event {audit_event:.0} B"
    );
    println!(
        "  - kept {task_days} days (completed_ttl) for the task, {audit_days} days (audit_ttl) for {events} events per scan \
         (submit + one results read): {:.0} KiB of memory per scan/day",
        per_scan_day / 1024.0
    );
    println!(
        "  - {mem_gib} GiB of data: {:.2} M scans/day (steady state); with audit_ttl = 7 days {:.2} M/day",
        scans_day_mem / 1e6,
        mem_gib * 1073741824.0 / ((task_only + audit_event * events) * task_days) / 1e6
    );
    let limit = if scans_day_mem < scans_day_cpu {
        "memory"
    } else {
        "CPU"
    };
    println!(
        "  => limit: {limit} ({:.2} M scans/day by CPU, {:.2} M by memory)",
        scans_day_cpu / 1e6,
        scans_day_mem / 1e6
    );
    drop(servers);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The mean `MEMORY USAGE` of `keys`, printed.
async fn avg(nodes: &mut Nodes, what: &str, keys: Vec<String>) -> Result<f64> {
    let mut sum = 0;
    for k in &keys {
        sum += nodes.memory_usage(k).await?;
    }
    let v = sum as f64 / keys.len().max(1) as f64;
    println!("  {what:<44} {v:>8.0} B each");
    Ok(v)
}

/// How many status polls the worker makes during a scan of `secs` seconds:
/// every max(0.5 s, 20 % of elapsed), capped at 30 s.
fn poll_count(secs: f64) -> f64 {
    let (mut t, mut n) = (0.0, 0.0);
    while t < secs {
        t += (t * 0.2).clamp(0.5, 30.0);
        n += 1.0;
    }
    n
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}
