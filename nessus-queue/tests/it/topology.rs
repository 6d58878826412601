//! What the Cluster client does with our commands: why pipelines are split per slot,
//! and the noeviction check on every primary.

use nessus_queue::testkit::RedisClusterSet;
use nessus_queue::{Queue, QueueConfig, RedisTopology};
use secrecy::SecretString;

fn topology(set: &RedisClusterSet) -> RedisTopology {
    RedisTopology::Cluster(
        set.node_urls()
            .into_iter()
            .map(SecretString::from)
            .collect(),
    )
}

/// redis-rs `cluster_async` sends a pipeline to the node of its first keyed
/// command and refuses one whose keys are in different slots (CrossSlot) before
/// sending anything: the backend therefore splits such pipelines per slot
/// (`query_grouped`), e.g. registering a task in `nq:pools` and `nq:task-pool`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_refuses_a_pipeline_that_mixes_slots() {
    let set = RedisClusterSet::start(false).expect("cluster");
    let client = redis::cluster::ClusterClient::new(set.node_urls()).unwrap();
    let mut c = client.get_async_connection().await.unwrap();
    let err = redis::pipe()
        .sadd("nq:pools", "nessus")
        .ignore()
        .hset("nq:task-pool", "t1", "nessus")
        .ignore()
        .query_async::<()>(&mut c)
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        redis::ErrorKind::Server(redis::ServerErrorKind::CrossSlot),
        "{err}"
    );
    // Keys that share a hash tag are one slot: fine, atomic or not.
    let (a, b): (u64, u64) = redis::pipe()
        .atomic()
        .sadd("nq:{nessus}:x", "1")
        .zadd("nq:{nessus}:y", "m", 1)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 1));
    // And the queue itself works across the three primaries.
    let q = Queue::redis_topology(&topology(&set), QueueConfig::default())
        .await
        .unwrap();
    for pool in ["nessus", "dmz", "lab"] {
        let r =
            nessus_queue::NewTask::new(nessus_queue::ScanType::Untrusted, pool, "10.0.0.1", "r");
        q.submit("p", r, None, None).await.unwrap();
    }
    let page = q.list(nessus_queue::ListTasks::new(10)).await.unwrap();
    assert_eq!(page.tasks.len(), 3);
}

/// Every primary must be noeviction, not just the one a keyless command lands on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_with_one_evicting_primary_is_refused() {
    let set = RedisClusterSet::start(false).expect("cluster");
    let last = *set.primary_ports().last().unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{last}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-lru")
        .query_async(&mut c)
        .await
        .unwrap();
    let err = Queue::redis_topology(&topology(&set), QueueConfig::default())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("volatile-lru") && msg.contains("noeviction"),
        "{msg}"
    );
}

/// No URL or password of any topology shows in Debug.
#[test]
fn topologies_never_print_their_urls() {
    let url = |s: &str| SecretString::from(format!("redis://:CANARY-{s}@h.lab:1"));
    let cases = [
        RedisTopology::Standalone(url("standalone")),
        RedisTopology::Sentinel {
            sentinels: vec![url("sentinel")],
            master: "m".to_owned(),
            master_password: Some(SecretString::from("CANARY-master")),
        },
        RedisTopology::Cluster(vec![url("cluster-a"), url("cluster-b")]),
    ];
    for t in &cases {
        let shown = format!("{t:?} {t:#?}");
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}

/// Sentinel with passwords: by default the data nodes get the sentinel URLs'
/// password; `master_password` overrides it (a wrong one is refused).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinel_passwords_reach_the_data_nodes() {
    let set = nessus_queue::testkit::RedisSentinelSet::start_with_password("s3cret-pass")
        .expect("sentinel set with a password");
    let sentinels: Vec<SecretString> = set
        .sentinel_urls()
        .into_iter()
        .map(SecretString::from)
        .collect();
    assert!(set.sentinel_urls()[0].contains(":s3cret-pass@"));
    let topology = |master_password: Option<&str>| RedisTopology::Sentinel {
        sentinels: sentinels.clone(),
        master: set.master_name().to_owned(),
        master_password: master_password.map(SecretString::from),
    };
    for given in [None, Some("s3cret-pass")] {
        let q = Queue::redis_topology(&topology(given), QueueConfig::default())
            .await
            .unwrap_or_else(|e| panic!("master_password {given:?}: {e}"));
        let r = nessus_queue::NewTask::new(
            nessus_queue::ScanType::Untrusted,
            "nessus",
            "10.0.0.1",
            "r",
        );
        let id = q.submit("p", r, None, None).await.unwrap().task.task_id;
        assert!(q.get(&id).await.unwrap().is_some());
    }
    let err = Queue::redis_topology(&topology(Some("wrong")), QueueConfig::default())
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("s3cret-pass"), "{err:?}");
}
