//! Many nodes, nothing lost: two API nodes (`nessus-mcp --workers 0`) and three
//! `nessus-cli worker` processes, each with its own data directory and config file,
//! sharing only the queue (Redis) and the results store, with a simulator process as
//! the Nessus scanner. Scans are submitted over MCP (HTTP) to either API node while
//! workers and one API node are killed with SIGKILL and restarted and the queue's
//! Redis loses its master. Afterwards every acknowledged submission completed, the
//! simulator created exactly one scan per task, and both API nodes serve every task's
//! results.
//!
//! Data-driven: [`RUNS`] names each run's Redis topology and results store.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nessus_queue::testkit::{RedisClusterSet, RedisSentinelSet, RedisServer, S3Server, free_port};
use serde_json::{Value, json};

use crate::nodes::{Binaries, CallError, Env, Logs, Mcp, Node, SimProcess, TOKEN};

/// Which Redis the queue runs on, and how it loses its master mid-run.
#[derive(Debug, Clone, Copy)]
enum Topology {
    /// One durable server (fsync-always AOF), killed with SIGKILL and restarted on
    /// its port.
    Standalone,
    /// A master, a replica and three sentinels; the master is failed over
    /// (`SENTINEL FAILOVER`) and the nodes must find the new one.
    Sentinel,
    /// Three primaries with a replica each; the primary serving the pool's hash slot
    /// is killed with SIGKILL and its replica takes over.
    Cluster,
}

/// Where workers put results and API nodes read them.
#[derive(Debug, Clone, Copy)]
enum Store {
    /// One directory every process names as `server.results_dir` (a shared volume).
    SharedDir,
    /// An S3 bucket (`moto_server` on loopback) named by `server.results_url`; each
    /// API node fetches stores into its own cache.
    S3,
}

struct Run {
    name: &'static str,
    topology: Topology,
    store: Store,
}

/// The runs, in order.
const RUNS: &[Run] = &[
    Run {
        name: "standalone-shared-dir",
        topology: Topology::Standalone,
        store: Store::SharedDir,
    },
    Run {
        name: "sentinel-s3",
        topology: Topology::Sentinel,
        store: Store::S3,
    },
    Run {
        name: "cluster-s3",
        topology: Topology::Cluster,
        store: Store::S3,
    },
];

/// Tasks per run, submitted in three equal waves (before, during and after the faults).
const TASKS: usize = 24;
/// Every fourth task is authenticated with ad-hoc SSH credentials: sealed by the API
/// node that took it, opened by whichever worker claims it (the shared key).
const AUTHENTICATED_EVERY: usize = 4;
/// How long a simulated scan runs.
const SCAN: Duration = Duration::from_secs(2);
/// A fixed key for this test (`NESSUS_QUEUE_SECRET_KEY`, 32 bytes as hex).
const SECRET_KEY: &str = "6368616f732d746573742d6b65792d6e6f742d666f722d70726f64756374696f";
/// Between two submissions of the wave that meets the Redis fault.
const PACE: Duration = Duration::from_millis(150);
/// The longest any one wait of the run may take (a failed run, not a slow one).
const WAIT: Duration = Duration::from_secs(90);

/// The queue's Redis, as the run's topology has it.
enum Redis {
    Standalone {
        server: RedisServer,
        port: u16,
        dir: PathBuf,
    },
    Sentinel(RedisSentinelSet),
    Cluster(RedisClusterSet),
}

impl Redis {
    fn start(topology: Topology, root: &Path) -> Self {
        match topology {
            Topology::Standalone => {
                let dir = root.join("redis");
                std::fs::create_dir_all(&dir).expect("redis dir");
                let port = free_port().expect("free port");
                let server = RedisServer::start_durable(port, &dir).expect("redis-server");
                Self::Standalone { server, port, dir }
            }
            Topology::Sentinel => Self::Sentinel(RedisSentinelSet::start().expect("sentinel set")),
            Topology::Cluster => Self::Cluster(RedisClusterSet::start(true).expect("cluster")),
        }
    }

    /// The `queue:` lines (after `backend: redis`) every node's config carries.
    fn queue_yaml(&self) -> String {
        match self {
            Self::Standalone { server, .. } => format!("  redis_url: \"{}\"\n", server.url()),
            Self::Sentinel(set) => format!(
                "  redis_sentinels: {}\n  redis_sentinel_master: {}\n",
                yaml_list(&set.sentinel_urls()),
                set.master_name()
            ),
            Self::Cluster(set) => format!("  redis_cluster: {}\n", yaml_list(&set.node_urls())),
        }
    }

    /// The master goes away; returns once the queue is writable again.
    fn lose_master(&mut self) {
        match self {
            Self::Standalone { server, port, dir } => {
                server.kill9();
                *server = RedisServer::start_durable(*port, dir).expect("redis-server restart");
            }
            Self::Sentinel(set) => set.failover().expect("sentinel failover"),
            // Every key of a pool carries the `{pool}` hash tag: one slot, one primary.
            Self::Cluster(set) => set
                .kill9_primary_for_key("{nessus}")
                .expect("cluster primary failover"),
        }
    }
}

/// `["a", "b"]`.
fn yaml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The results store, as the run has it.
enum Results {
    Dir(PathBuf),
    S3(S3Server),
}

impl Results {
    fn start(store: Store, root: &Path) -> Self {
        match store {
            Store::SharedDir => Self::Dir(root.join("shared-results")),
            Store::S3 => Self::S3(S3Server::start().expect("moto_server")),
        }
    }

    /// The `server:` lines naming the store.
    fn server_yaml(&self) -> String {
        match self {
            Self::Dir(dir) => format!("  results_dir: \"{}\"\n", dir.display()),
            Self::S3(s3) => format!("  results_url: \"{}\"\n", s3.url("chaos")),
        }
    }

    /// What every process needs in its environment for the store.
    fn env(&self) -> Env {
        match self {
            Self::Dir(_) => Env::new(),
            Self::S3(s3) => s3.env(),
        }
    }
}

/// A node's config file in its own data directory `root/name`.
fn write_config(root: &Path, name: &str, sim: &str, redis: &Redis, results: &Results) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("node dir");
    let yaml = format!(
        r#"server:
  data_dir: "{data}"
{results}  default_pool: nessus
  mcp_tokens: ["{TOKEN}"]
queue:
  backend: redis
{redis}  lease_secs: 3
nessus:
  target_policy:
    allow: [192.0.2.0/24]
  instances:
    - instance_id: sim1
      url: "{sim}"
      access_key: k-access
      secret_key: k-secret
      max_concurrent_scans: 8
"#,
        data = dir.display(),
        results = results.server_yaml(),
        redis = redis.queue_yaml(),
    );
    let path = dir.join("scanners.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

/// Task `i`'s submission: the tool and its arguments (the idempotency key makes a
/// retry on the other node return the same task).
fn submission(run: &str, i: usize) -> (&'static str, Value) {
    let mut args = json!({
        "targets": format!("192.0.2.{}", i + 1),
        "name": format!("chaos-{i}"),
        "idempotency_key": format!("chaos-{run}-{i}"),
    });
    if i % AUTHENTICATED_EVERY == AUTHENTICATED_EVERY - 1 {
        args["scan_type"] = json!("authenticated");
        args["ssh_username"] = json!("scanner");
        args["ssh_password"] = json!(format!("chaos-password-{i}"));
        ("run_authenticated_scan", args)
    } else {
        ("run_untrusted_scan", args)
    }
}

/// An answer worth retrying: no answer at all, or the backend briefly away.
fn transient(e: &CallError) -> bool {
    match e {
        CallError::Transport(_) => true,
        CallError::Tool(code, _) => matches!(code.as_str(), "internal_error" | "busy"),
    }
}

/// Submits task `i`, first to `api[first]`, then alternating, until one node
/// acknowledges it with a task id.
async fn submit(api: &[Mcp; 2], run: &str, i: usize, first: usize) -> String {
    let (tool, args) = submission(run, i);
    let start = Instant::now();
    let mut attempt = first;
    loop {
        match api[attempt % 2].call(tool, args.clone()).await {
            Ok(v) => {
                return v["task_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{tool} answered no task_id: {v}"))
                    .to_owned();
            }
            Err(e) if transient(&e) && start.elapsed() < WAIT => {}
            Err(e) => panic!("submit {i} was refused: {e}"),
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Submits tasks `wave` one after the other, `pace` apart, alternating the first node.
async fn submit_wave(
    api: &[Mcp; 2],
    run: &str,
    wave: std::ops::Range<usize>,
    pace: Duration,
) -> Vec<String> {
    let mut ids = Vec::new();
    for i in wave {
        ids.push(submit(api, run, i, i % 2).await);
        tokio::time::sleep(pace).await;
    }
    ids
}

/// Waits until the simulator has created at least `n` scans.
async fn wait_scans_created(sim: &SimProcess, http: &reqwest::Client, n: u64) {
    let start = Instant::now();
    loop {
        if sim.counters(http).await.scans_created >= n {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "the simulator never saw {n} scans created"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Each task's final status, asked of alternating nodes until every task is terminal.
/// An acknowledged task the queue no longer knows is lost: the run fails naming all
/// of them (task `i` was submitted in wave `i / (TASKS / 3)`).
async fn wait_terminal(api: &[Mcp; 2], ids: &[String]) -> Vec<Value> {
    let start = Instant::now();
    let mut round = 0;
    loop {
        let mut statuses = Vec::new();
        let mut lost = Vec::new();
        let mut pending = 0;
        for (i, id) in ids.iter().enumerate() {
            match api[(i + round) % 2]
                .call("get_scan_status", json!({"task_id": id}))
                .await
            {
                Ok(v) if is_terminal(&v) => statuses.push(v),
                Ok(_) => pending += 1,
                Err(CallError::Tool(code, _)) if code == "task_not_found" => {
                    lost.push(format!("#{i} {id}"));
                }
                Err(e) if transient(&e) => pending += 1,
                Err(e) => panic!("get_scan_status {id}: {e}"),
            }
        }
        assert!(lost.is_empty(), "acknowledged tasks lost: {lost:?}");
        if statuses.len() == ids.len() {
            return statuses;
        }
        assert!(
            start.elapsed() < WAIT,
            "{} of {} tasks terminal after {WAIT:?} ({pending} not yet)",
            statuses.len(),
            ids.len()
        );
        round += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn is_terminal(status: &Value) -> bool {
    matches!(
        status["status"].as_str(),
        Some("completed" | "failed" | "timeout" | "cancelled")
    )
}

/// One page of a task's results, as an API node serves it.
async fn results(api: &Mcp, id: &str) -> String {
    let v = api
        .call("get_scan_results", json!({"task_id": id, "page_size": 50}))
        .await
        .unwrap_or_else(|e| panic!("get_scan_results {id} on {}: {e}", api.base));
    v["result"]
        .as_str()
        .unwrap_or_else(|| panic!("get_scan_results {id}: no text: {v}"))
        .to_owned()
}

async fn run(spec: &'static Run) {
    let started = Instant::now();
    let bins = Binaries::locate();
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("http client");

    let redis = Redis::start(spec.topology, root);
    let store = Results::start(spec.store, root);
    let sim_log = root.join("sim.log");
    let sim = SimProcess::start(&bins, SCAN, &sim_log);
    let mut env = store.env();
    env.push((nessus_queue::KEY_ENV.to_owned(), SECRET_KEY.to_owned()));

    let ports = [
        free_port().expect("free port"),
        free_port().expect("free port"),
    ];
    let mut apis: Vec<Node> = (0..2)
        .map(|i| {
            let name = format!("api{i}");
            let cfg = write_config(root, &name, sim.url(), &redis, &store);
            Node::api(&bins, &name, &cfg, ports[i], &env)
        })
        .collect();
    let mut workers: Vec<Node> = (0..3)
        .map(|i| {
            let name = format!("worker{i}");
            let cfg = write_config(root, &name, sim.url(), &redis, &store);
            Node::worker(&bins, &name, &cfg, &env)
        })
        .collect();
    let _logs = Logs(
        apis.iter()
            .chain(workers.iter())
            .map(|n| (n.name.clone(), n.log.clone()))
            .chain([("simulator".to_owned(), sim_log.clone())])
            .collect(),
    );
    let api = Arc::new([Mcp::new(&http, ports[0]), Mcp::new(&http, ports[1])]);
    for a in api.iter() {
        a.wait_ready(WAIT).await;
    }

    let third = TASKS / 3;
    // Wave 1 with every node up, then crashes while those scans run.
    let mut ids = submit_wave(&api, spec.name, 0..third, Duration::ZERO).await;
    wait_scans_created(&sim, &http, 3).await;
    workers[0].kill9();
    workers[1].kill9();
    apis[1].kill9();
    // Wave 2 while api1 is down (its half of the submissions fail over to api0), paced
    // so that the queue's Redis loses its master while submissions are in flight.
    let wave = tokio::spawn({
        let api = Arc::clone(&api);
        async move { submit_wave(&api, spec.name, third..2 * third, PACE).await }
    });
    tokio::time::sleep(PACE * 2).await;
    let redis = tokio::task::spawn_blocking(move || {
        let mut redis = redis;
        redis.lose_master();
        redis
    })
    .await
    .expect("the Redis fault");
    ids.extend(wave.await.expect("wave 2"));
    apis[1].start();
    workers[0].start();
    workers[1].start();
    api[1].wait_ready(WAIT).await;
    // Wave 3 after the restarts; the last original worker crashes once more.
    ids.extend(submit_wave(&api, spec.name, 2 * third..TASKS, Duration::ZERO).await);
    wait_scans_created(&sim, &http, (2 * third + 2) as u64).await;
    workers[2].kill9();
    workers[2].start();

    let statuses = wait_terminal(&api, &ids).await;
    for node in apis.iter_mut().chain(workers.iter_mut()) {
        node.assert_alive();
    }
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), TASKS, "one task per idempotency key: {ids:?}");
    let not_completed: Vec<String> = statuses
        .iter()
        .filter(|s| s["status"] != "completed")
        .map(|s| {
            format!(
                "{} {} {} {}",
                s["task_id"], s["status"], s["error_code"], s["error_message"]
            )
        })
        .collect();
    assert!(not_completed.is_empty(), "not completed: {not_completed:?}");

    let counters = sim.counters(&http).await;
    assert_eq!(
        counters.scans_created, TASKS as u64,
        "one Nessus scan per task"
    );
    let expected: BTreeSet<String> = ids.iter().map(|id| format!("mcp-{id}")).collect();
    let seen: BTreeSet<String> = counters.by_name.keys().cloned().collect();
    assert_eq!(seen, expected, "the scans the simulator saw are the tasks'");
    let twice: Vec<&String> = counters
        .by_name
        .iter()
        .filter(|(_, c)| c.created != 1)
        .map(|(n, _)| n)
        .collect();
    assert!(twice.is_empty(), "created more than once: {twice:?}");
    assert_eq!(
        counters.credentials_received,
        (TASKS / AUTHENTICATED_EVERY) as u64,
        "every authenticated scan reached Nessus with its credentials"
    );

    for (i, id) in ids.iter().enumerate() {
        let first = results(&api[0], id).await;
        let second = results(&api[1], id).await;
        // The simulator writes the scan's own target into the corpus file it serves.
        assert!(
            first.contains(&format!("\"host\": \"192.0.2.{}\"", i + 1)),
            "results of {id} are not of its target: {first}"
        );
        assert_eq!(
            first, second,
            "both API nodes serve the same results of {id}"
        );
    }
    drop((apis, workers, redis));
    eprintln!(
        "chaos run {}: {TASKS} tasks, {} scans, took {:?}",
        spec.name,
        counters.scans_created,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_many_nodes() {
    for spec in RUNS {
        // Captured output is shown for a failing test: this names the run that failed.
        eprintln!("chaos run {}: starting", spec.name);
        run(spec).await;
    }
}
