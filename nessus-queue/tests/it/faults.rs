//! Fault tests that need control over the store's process.

use std::time::Duration;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nessus_queue::testkit::{
    RedisClusterSet, RedisSentinelSet, RedisServer, free_port, single_pool,
};
use nessus_queue::{NewTask, Queue, QueueConfig, RedisTopology, ScanType, TaskStatus};
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_kill9_and_restart_loses_no_acknowledged_submission() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let mut server = RedisServer::start_durable(port, dir.path()).expect("redis-server");
    let url = server.url().to_owned();
    let q = Queue::redis(&url, QueueConfig::default()).await.unwrap();
    let submitter = {
        let q = q.clone();
        tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0);
            for i in 0..150 {
                let r = NewTask::new(
                    ScanType::Untrusted,
                    "nessus",
                    format!("10.0.0.{}", i % 250),
                    "r",
                );
                match q.submit("p", r, None, None).await {
                    Ok(s) => acked.push(s.task.task_id),
                    Err(_) => refused += 1,
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, refused)
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    server.kill9();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let _server = RedisServer::start_durable(port, dir.path()).expect("redis-server restarts");
    let (acked, refused) = submitter.await.unwrap();
    assert!(
        acked.len() > 50,
        "only {} acknowledged ({refused} refused)",
        acked.len()
    );
    // The same handle reconnected by itself; every acknowledged task is there, queued.
    for id in &acked {
        let v = q
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} lost"));
        assert_eq!(v.task.status, TaskStatus::Queued);
    }
    let pools = single_pool("nessus", "s1", 1);
    assert!(q.claim("w", &pools).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_with_evicting_policy_is_refused() {
    let server = RedisServer::start().expect("redis-server");
    let client = redis::Client::open(server.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let err = Queue::redis(server.url(), QueueConfig::default())
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(
        msg.contains("allkeys-lru") && msg.contains("noeviction"),
        "{msg}"
    );
}

fn secrets(urls: Vec<String>) -> Vec<SecretString> {
    urls.into_iter().map(SecretString::from).collect()
}

/// What a stream of submits and claims saw while the store failed over.
struct Traffic {
    acked: Vec<String>,
    refused: usize,
    claimed: HashSet<String>,
}

/// Submits (and claims, on a second task) until `stop` is set, then checks that
/// every acknowledged submission is present, queued or claimed, and that the same
/// handle still submits and claims: no restart after the failover.
async fn traffic_through(q: &Queue, fail_over: impl std::future::Future<Output = ()>) -> Traffic {
    let stop = Arc::new(AtomicBool::new(false));
    let submitter = {
        let (q, stop) = (q.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut acked, mut refused) = (Vec::new(), 0);
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let r = NewTask::new(
                    ScanType::Untrusted,
                    "nessus",
                    format!("10.0.{}.{}", i / 250, i % 250),
                    "r",
                );
                match q.submit("p", r, None, None).await {
                    Ok(s) => acked.push(s.task.task_id),
                    Err(_) => refused += 1,
                }
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acked, refused)
        })
    };
    let claimer = {
        let (q, stop) = (q.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let pools = single_pool("nessus", "s1", 100_000);
            let mut claimed = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(t)) = q.claim("w", &pools).await {
                    claimed.insert(t.task.task_id);
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            claimed
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    fail_over.await;
    eprintln!("failover took {:?}", started.elapsed());
    // Traffic goes on after the failover, through the same handle.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, Ordering::Relaxed);
    let (acked, refused) = submitter.await.unwrap();
    let claimed = claimer.await.unwrap();
    for id in &acked {
        let v = q
            .get(id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("acknowledged {id} lost"));
        assert!(
            matches!(v.task.status, TaskStatus::Queued | TaskStatus::Running),
            "{id} is {:?}",
            v.task.status
        );
    }
    // The handle works without a restart: a new submit is claimed.
    // A client retries what is reported retryable; the store settles within seconds
    // (the old master re-syncing as a replica).
    let settled = std::time::Instant::now();
    let id = loop {
        let r = NewTask::new(ScanType::Untrusted, "nessus", "10.9.9.9", "after");
        match q.submit("late", r, None, None).await {
            Ok(s) => break s.task.task_id,
            Err(e) if e.is_retryable() && settled.elapsed() < Duration::from_secs(20) => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("submit after the failover: {e:?}"),
        }
    };
    eprintln!(
        "a submit succeeded {:?} after the traffic stopped",
        settled.elapsed()
    );
    let pools = single_pool("nessus", "s2", 100_000);
    let mut seen = false;
    for _ in 0..(acked.len() + 10) {
        match q
            .claim("w2", &pools)
            .await
            .expect("claim after the failover")
        {
            Some(c) if c.task.task_id == id => {
                seen = true;
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    assert!(
        seen,
        "the task submitted after the failover was never claimed"
    );
    Traffic {
        acked,
        refused,
        claimed,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_failover_mid_submit_loses_no_acknowledged_submission() {
    let set = RedisSentinelSet::start().expect("sentinel set");
    let topology = RedisTopology::Sentinel {
        sentinels: secrets(set.sentinel_urls()),
        master: set.master_name().to_owned(),
        master_password: None,
    };
    let q = Queue::redis_topology(&topology, QueueConfig::default())
        .await
        .unwrap();
    let set = Arc::new(set);
    let s = Arc::clone(&set);
    let t = traffic_through(&q, async move {
        tokio::task::spawn_blocking(move || s.failover().expect("failover"))
            .await
            .unwrap();
    })
    .await;
    eprintln!(
        "sentinel: {} acknowledged, {} refused, {} claimed",
        t.acked.len(),
        t.refused,
        t.claimed.len()
    );
    assert!(t.acked.len() > 20, "only {} acknowledged", t.acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sentinel_master_kill9_loses_no_acknowledged_submission() {
    let set = RedisSentinelSet::start().expect("sentinel set");
    let topology = RedisTopology::Sentinel {
        sentinels: secrets(set.sentinel_urls()),
        master: set.master_name().to_owned(),
        master_password: None,
    };
    let q = Queue::redis_topology(&topology, QueueConfig::default())
        .await
        .unwrap();
    let set = Arc::new(std::sync::Mutex::new(set));
    let s = Arc::clone(&set);
    let t = traffic_through(&q, async move {
        tokio::task::spawn_blocking(move || s.lock().unwrap().kill9_master().expect("promotion"))
            .await
            .unwrap();
    })
    .await;
    eprintln!(
        "sentinel kill -9: {} acknowledged, {} refused, {} claimed",
        t.acked.len(),
        t.refused,
        t.claimed.len()
    );
    assert!(t.acked.len() > 20, "only {} acknowledged", t.acked.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_primary_kill9_loses_no_acknowledged_submission() {
    let set = RedisClusterSet::start(true).expect("cluster with replicas");
    let topology = RedisTopology::Cluster(secrets(set.node_urls()));
    let q = Queue::redis_topology(&topology, QueueConfig::default())
        .await
        .unwrap();
    let set = Arc::new(std::sync::Mutex::new(set));
    let s = Arc::clone(&set);
    let t = traffic_through(&q, async move {
        tokio::task::spawn_blocking(move || {
            s.lock()
                .unwrap()
                .kill9_primary_for_key("nq:{nessus}:queue")
                .expect("replica takes over")
        })
        .await
        .unwrap();
    })
    .await;
    eprintln!(
        "cluster: {} acknowledged, {} refused, {} claimed",
        t.acked.len(),
        t.refused,
        t.claimed.len()
    );
    assert!(t.acked.len() > 20, "only {} acknowledged", t.acked.len());
}

/// `rediss://` goes through rustls and verifies the server's certificate: a
/// self-signed one no public root vouches for is refused (with the reason), never
/// a panic about a missing crypto provider, never a silent plaintext fallback.
#[tokio::test]
async fn rediss_verifies_the_server_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    let port = free_port().unwrap();
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
        .arg("--tls-cert-file")
        .arg(&cert)
        .arg("--tls-key-file")
        .arg(&key)
        .args(["--maxmemory-policy", "noeviction"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let _guard = nessus_queue::testkit::ChildGuard::new(child);
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "TLS redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let err = Queue::redis(
        &format!("rediss://127.0.0.1:{port}/"),
        QueueConfig::default(),
    )
    .await
    .unwrap_err();
    let msg = format!("{err} {err:?}").to_lowercase();
    assert!(
        msg.contains("certificate") || msg.contains("issuer"),
        "{msg}"
    );
}
