//! Queue benchmark, both backends in one command:
//! `cargo run --release -p nessus-tests --bin bench-queue -- [TASKS] [sqlite|redis|scan|both]`.
//!
//! Measures `list_tasks` page latency with TASKS (default 100 000) stored tasks,
//! submit→claim latency with free capacity, enqueue+claim+complete throughput, and
//! submit→completed of a 5 s simulated scan through an in-process worker.
//! Redis is a `redis-server` this program starts on a free 127.0.0.1 port.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nessus_queue::testkit::{RedisServer, StaticDirectory, sim_client, simulator, single_pool};
use nessus_queue::{Completion, ListTasks, NewTask, Queue, QueueConfig, ScanType, TaskStatus};

fn pct(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn fill(q: &Queue, n: usize) -> Result<Duration> {
    let start = Instant::now();
    let q = Arc::new(q.clone());
    let mut set = tokio::task::JoinSet::new();
    let per = n.div_ceil(16);
    for w in 0..16 {
        let q = Arc::clone(&q);
        set.spawn(async move {
            for i in (w * per)..((w + 1) * per).min(n) {
                let pool = if i % 4 == 0 { "dmz" } else { "nessus" };
                let r = NewTask::new(
                    ScanType::Untrusted,
                    pool,
                    format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256),
                    "bench",
                );
                q.submit("bench", r, None, None).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(start.elapsed())
}

async fn time_list(
    q: &Queue,
    mk: impl Fn() -> ListTasks,
    runs: usize,
) -> Result<(Duration, Duration)> {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let page = q.list(mk()).await?;
        v.push(t.elapsed());
        if page.tasks.is_empty() {
            bail!("empty page");
        }
    }
    Ok((pct(v.clone(), 0.5), pct(v, 0.99)))
}

async fn bench(name: &str, q: Queue, n: usize) -> Result<()> {
    println!("== {name}: {n} tasks");
    let fill_t = fill(&q, n).await?;
    println!(
        "fill: {n} submits in {:.1} s ({:.0}/s, 16 concurrent)",
        fill_t.as_secs_f64(),
        n as f64 / fill_t.as_secs_f64()
    );

    let (p50, p99) = time_list(&q, || ListTasks::new(10), 200).await?;
    println!(
        "list_tasks limit=10 (newest): p50 {} p99 {}",
        ms(p50),
        ms(p99)
    );
    let (p50, p99) = time_list(
        &q,
        || ListTasks::new(50).pool("dmz").status(TaskStatus::Queued),
        200,
    )
    .await?;
    println!(
        "list_tasks limit=50 pool+status: p50 {} p99 {}",
        ms(p50),
        ms(p99)
    );
    // A cursor 1000 rows in, or half-way for smaller runs: a page of `skip` rows only
    // has a next cursor when more rows follow it.
    let skip = (n / 2).min(1000);
    let mid = q
        .list(ListTasks::new(skip))
        .await?
        .next_cursor
        .with_context(|| format!("no cursor after the first {skip} of {n} tasks"))?;
    let (p50, p99) = time_list(&q, || ListTasks::new(10).cursor(mid.clone()), 200).await?;
    println!(
        "list_tasks limit=10 after {skip} (cursor): p50 {} p99 {}",
        ms(p50),
        ms(p99)
    );

    // Submit → claim with free capacity, on a pool with no backlog.
    let pools = single_pool("lat", "s1", 1);
    let mut lat = Vec::new();
    for i in 0..300 {
        let t = Instant::now();
        let r = NewTask::new(
            ScanType::Untrusted,
            "lat",
            format!("10.9.{}.{}", i / 256, i % 256),
            "lat",
        );
        q.submit("bench", r, None, None).await?;
        let c = q.claim("bench", &pools).await?.context("claim")?;
        lat.push(t.elapsed());
        q.complete(&c.task.task_id, c.token, Completion::default())
            .await?;
    }
    println!(
        "submit→claim (free capacity): p50 {} p99 {}",
        ms(pct(lat.clone(), 0.5)),
        ms(pct(lat, 0.99))
    );

    // Enqueue + claim + complete throughput, 8 concurrent loops.
    let total = 4000;
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..8 {
        let q = q.clone();
        set.spawn(async move {
            let pools = single_pool("tp", "s1", 64);
            for i in 0..total / 8 {
                let r = NewTask::new(
                    ScanType::Untrusted,
                    "tp",
                    format!("10.8.{w}.{}", i % 256),
                    "tp",
                );
                q.submit("bench", r, None, None).await?;
                if let Some(c) = q.claim(&format!("w{w}"), &pools).await? {
                    q.complete(&c.task.task_id, c.token, Completion::default())
                        .await?;
                }
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    let el = start.elapsed();
    println!(
        "enqueue+claim+complete: {total} in {:.2} s = {:.0}/s (8 concurrent)",
        el.as_secs_f64(),
        total as f64 / el.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // RUST_LOG=nessus_queue=debug,nessus_core=debug shows where a scan's time goes.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().is_some_and(|a| a == "-h" || a == "--help") {
        println!("usage: bench-queue [TASKS (default 100000)] [sqlite|redis|scan|both (default)]");
        return Ok(());
    }
    let n: usize = args
        .next()
        .map_or(Ok(100_000), |s| s.parse())
        .context("TASKS must be a whole number")?;
    if n < 2 {
        bail!("TASKS must be at least 2 (the cursor benchmark pages past the first half)");
    }
    let which = args.next().unwrap_or_else(|| "both".into());
    if which == "scan" || which == "both" {
        scan_latency().await?;
    }
    if which == "sqlite" || which == "both" {
        let dir = tempfile_dir()?;
        let q = Queue::sqlite(dir.join("bench.db"), bench_config())?;
        bench("sqlite", q, n).await?;
        let _ = std::fs::remove_dir_all(&dir);
    }
    if which == "redis" || which == "both" {
        let redis = RedisServer::start()?;
        bench("redis", Queue::redis(redis.url(), bench_config()).await?, n).await?;
    }
    Ok(())
}

/// Submit → completed for a 5 s simulated scan with an in-process worker (SQLite).
async fn scan_latency() -> Result<()> {
    use nessus_queue::{KeepExportOnly, Worker, WorkerConfig};
    // A full-size sample (not the test kit's small one): the export is part of
    // what is measured.
    let sim = simulator(Duration::from_secs(5))
        .corpus(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../corpus/nessus/eafonin-nessus-api__sample_scan.nessus"
        ))
        .start("127.0.0.1:0")
        .await?;
    let dir = tempfile_dir()?;
    let q = Queue::sqlite(dir.join("scan.db"), QueueConfig::default())?;
    let client = sim_client(sim.base_url()).build()?;
    let w = Worker::new(
        q.clone(),
        WorkerConfig::new("bench", single_pool("nessus", "s1", 4), dir.join("results"))
            .idle_poll(Duration::from_millis(50)),
        Arc::new(StaticDirectory::one("nessus", "s1", client)),
        Arc::new(KeepExportOnly),
    );
    let (tx, rx) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(async move { w.run(rx).await });
    for i in 0..3 {
        let t = Instant::now();
        let r = NewTask::new(
            ScanType::Untrusted,
            "nessus",
            format!("10.7.0.{}", i + 1),
            "lat",
        );
        let id = q.submit("bench", r, None, None).await?.task.task_id;
        loop {
            let v = q.get(&id).await?.context("task")?;
            if v.task.status.is_terminal() {
                println!(
                    "5 s simulated scan: submit→{} in {:.2} s",
                    v.task.status,
                    t.elapsed().as_secs_f64()
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tx.send(true)?;
    run.await??;
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "bench-queue-{}-{:08x}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The bench fills one principal's queue far past the default per-principal cap.
fn bench_config() -> QueueConfig {
    QueueConfig::default().max_queued_per_principal(u64::MAX)
}
