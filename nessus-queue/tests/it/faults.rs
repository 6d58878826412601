//! Fault tests that need control over the store's process.

use std::time::Duration;

use nessus_queue::testkit::{RedisServer, free_port, single_pool};
use nessus_queue::{NewTask, Queue, QueueConfig, ScanType, TaskStatus};

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
