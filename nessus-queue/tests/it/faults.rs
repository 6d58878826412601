//! Fault tests that need control over the store's process.

use std::time::Duration;

use nessus_queue::{InstanceCapacity, NewTask, Queue, QueueConfig, ScanType, TaskStatus};

use crate::support::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_kill9_and_restart_loses_no_acknowledged_submission() {
    let dir = tempfile::tempdir().unwrap();
    let port = RedisServer::free_port();
    let mut server = RedisServer::start_durable(port, dir.path()).await;
    let url = server.url.clone();
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
    let _server = RedisServer::start_durable(port, dir.path()).await;
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
    let pools = vec![(
        "nessus".to_owned(),
        vec![InstanceCapacity {
            instance: "s1".to_owned(),
            max_concurrent: 1,
        }],
    )];
    assert!(q.claim("w", &pools).await.unwrap().is_some());
}

#[tokio::test]
async fn redis_with_evicting_policy_is_refused() {
    let server = RedisServer::start().await;
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("allkeys-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let err = Queue::redis(&server.url, QueueConfig::default())
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(
        msg.contains("allkeys-lru") && msg.contains("noeviction"),
        "{msg}"
    );
}
