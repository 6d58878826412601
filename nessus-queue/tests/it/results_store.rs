//! Results in object storage (`server.results_url`) against a real S3-compatible
//! server on loopback (`moto_server`, started by the test kit) and `file://`: the
//! worker uploads before completing, a second node with its own data directory and an
//! empty cache serves the same page, a task without a manifest is not served, the
//! cache evicts under its cap without breaking a store in use, housekeeping deletes
//! the objects, and no secret reaches an error text, a Debug print or a log line.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nessus_core::{Config, RetryPolicy};
use nessus_queue::service::{
    ImportRequest, ImportSource, OpenOptions, Principal, QueryParams, Service,
};
use nessus_queue::testkit::{S3Server, StaticDirectory, sim_client, simulator, single_pool};
use nessus_queue::{
    Error, NewTask, ResultsStore, ScanType, SchemaIngest, TaskStatus, Worker, WorkerConfig,
};
use secrecy::SecretString;
use tokio::sync::watch;

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../corpus/nessus")
        .join(name)
}

/// A moto server, or a panic that says how to install one.
fn s3() -> S3Server {
    S3Server::start().unwrap_or_else(|e| panic!("{e}"))
}

/// A config for one node: its own data directory, the shared SQLite queue file, and
/// `results_url` (plus extra `server:` lines).
fn node_config(data: &Path, queue_db: &Path, results_url: &str, extra: &str) -> Config {
    let yaml = format!(
        "server:\n  data_dir: {}\n  results_url: {results_url}\n{extra}queue:\n  sqlite_path: {}\n  completed_ttl_days: 0\n",
        data.display(),
        queue_db.display(),
    );
    Config::from_yaml_with_env(&yaml, &|_| None).expect("config")
}

/// Every regular file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn open_node(config: Config, options: Vec<(String, SecretString)>) -> Service {
    Service::open(config, OpenOptions::new().results_options(options))
        .await
        .expect("service")
}

async fn import(service: &Service, file: &str) -> String {
    let imported = service
        .import(
            &Principal::local(),
            ImportRequest::new(ImportSource::File(corpus(file))),
        )
        .await
        .expect("import");
    imported.task.task_id
}

async fn page(service: &Service, task_id: &str) -> nessus_queue::Result<String> {
    service
        .results_page(&Principal::local(), task_id, &QueryParams::default())
        .await
        .map(|(text, _)| text)
}

/// A worker over `service`'s queue against `sim`, uploading to `store`.
fn worker(
    service: &Service,
    sim: &nessus_core::sim::SimHandle,
    store: Option<Arc<ResultsStore>>,
    upload_retry_for: Duration,
) -> Worker {
    let client = sim_client(sim.base_url())
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let cfg = WorkerConfig::new(
        "w1",
        single_pool("nessus", "s1", 2),
        service.results_dir().root(),
    )
    .idle_poll(Duration::from_millis(50))
    .retry_backoff(Duration::from_millis(50), Duration::from_millis(200))
    .results_store(store)
    .upload_retry_for(upload_retry_for);
    Worker::new(
        service.queue().clone(),
        cfg,
        Arc::new(StaticDirectory::one("nessus", "s1", client)),
        Arc::new(SchemaIngest),
    )
}

async fn wait_status(service: &Service, id: &str, want: TaskStatus) -> nessus_queue::Task {
    let started = Instant::now();
    loop {
        let t = service.queue().get(id).await.unwrap().unwrap().task;
        if t.status == want {
            return t;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still {:?} ({:?}), waited for {want:?}",
            t.status,
            t.error_message
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_uploads_dead_letter_and_a_dlq_retry_exports_again_without_a_second_scan() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("retry");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let sim = simulator(Duration::from_millis(200))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    // The store is down (a bucket that does not exist) for longer than the budget.
    let down = Arc::new(ResultsStore::open("s3://no-such-bucket/x", &s3.options()).unwrap());
    let w = worker(&a, &sim, Some(down), Duration::from_millis(500));
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(async move { w.run(stopped).await });
    let sub = a
        .queue()
        .submit(
            "local",
            NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.8", "objstore"),
            None,
            None,
        )
        .await
        .unwrap();
    let id = sub.task.task_id.clone();
    let failed = wait_status(&a, &id, TaskStatus::Failed).await;
    assert_eq!(failed.error_code.as_deref(), Some("results_upload_failed"));
    assert!(failed.dead_lettered_at.is_some());
    let _ = stop.send(true);
    run.await.unwrap().unwrap();
    assert_eq!(sim.counters().scans_created, 1);

    // The store is back: a DLQ retry re-attaches to the finished scan and uploads.
    let w = worker(&a, &sim, a.results_store(), Duration::from_secs(5));
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(async move { w.run(stopped).await });
    a.queue().dlq_retry(&id).await.unwrap();
    wait_status(&a, &id, TaskStatus::Completed).await;
    let _ = stop.send(true);
    run.await.unwrap().unwrap();
    assert_eq!(sim.counters().scans_created, 1, "the Nessus scan ran once");
    assert!(page(&a, &id).await.unwrap().contains("plugin_id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn worker_uploads_before_completing_and_another_node_serves_the_page() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("run1");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let sim = simulator(Duration::from_millis(300))
        .start("127.0.0.1:0")
        .await
        .unwrap();
    let results = a.results_dir().root().to_owned();
    let worker = worker(&a, &sim, a.results_store(), Duration::from_secs(5));
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(async move { worker.run(stopped).await });
    let sub = a
        .queue()
        .submit(
            "local",
            NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.7", "objstore"),
            None,
            None,
        )
        .await
        .unwrap();
    let id = sub.task.task_id.clone();
    wait_status(&a, &id, TaskStatus::Completed).await;
    let _ = stop.send(true);
    run.await.unwrap().unwrap();

    // Every object there, the manifest among them; the worker kept no local copy.
    let objects = a.results_store().unwrap().list_task(&id).await.unwrap();
    assert!(objects.contains(&"manifest.json".to_owned()), "{objects:?}");
    assert!(objects.contains(&"scan.nessus".to_owned()), "{objects:?}");
    assert!(
        objects.contains(&"store/meta.json".to_owned()),
        "{objects:?}"
    );
    assert!(
        !results.join(&id).exists(),
        "the worker removes its local copy once uploaded"
    );

    // A second node: another data directory, an empty cache, the same queue.
    let b = open_node(
        node_config(&dirs.path().join("b"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let cache = b.results_cache().expect("a cache");
    assert_eq!(cache.stats().stores, 0);
    let t = Instant::now();
    let first = page(&b, &id).await.expect("page from node b");
    let cold = t.elapsed();
    let t = Instant::now();
    let again = page(&b, &id).await.expect("second page");
    let warm = t.elapsed();
    eprintln!("results page on a second node: cold (fetch) {cold:?}, warm {warm:?}");
    assert_eq!(first, again);
    assert!(first.contains("plugin_id"), "{first}");
    assert_eq!(cache.stats().fetches, 1, "one download, then the cache");
    assert!(dirs.path().join("b/results-cache").join(&id).is_dir());
    // Node a serves the same answer (through its own cache).
    assert_eq!(page(&a, &id).await.unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_reads_download_once() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("once");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let id = import(&a, "libnessus__nessus_report_local_3.nessus").await;
    let b = Arc::new(
        open_node(
            node_config(&dirs.path().join("b"), &db, &url, ""),
            s3.options(),
        )
        .await,
    );
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let (b, id) = (b.clone(), id.clone());
            tokio::spawn(async move { page(&b, &id).await.map(|t| t.len()) })
        })
        .collect();
    let mut lens = Vec::new();
    for r in reads {
        lens.push(r.await.unwrap().expect("page"));
    }
    assert!(lens.windows(2).all(|w| w[0] == w[1]), "{lens:?}");
    assert_eq!(b.results_cache().unwrap().stats().fetches, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_task_without_its_manifest_is_not_served() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("half");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let id = import(&a, "libnessus__nessus_report_local_3.nessus").await;
    // As if the uploader died before its last write: every store file, no manifest.
    let remote = a.results_store().unwrap();
    remote.delete_object(&id, "manifest.json").await.unwrap();
    let objects = remote.list_task(&id).await.unwrap();
    assert!(
        objects.iter().any(|o| o.starts_with("store/")),
        "{objects:?}"
    );
    let b = open_node(
        node_config(&dirs.path().join("b"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let err = page(&b, &id).await.expect_err("no manifest, no results");
    assert!(matches!(err, Error::ResultsNotFound { .. }), "{err:?}");
    assert!(!dirs.path().join("b/results-cache").join(&id).exists());
    // A corrupted file (size or digest off) is refused too, and nothing is cached.
    let again = import(&a, "libnessus__nessus_report_local_3.nessus").await;
    remote
        .put_object(&again, "store/meta.json", b"{}".to_vec())
        .await
        .unwrap();
    let err = page(&b, &again).await.expect_err("corrupt store");
    assert!(
        err.to_string().contains("does not match its manifest"),
        "{err}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dirs.path().join("b/results-cache"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_evicts_least_recently_used_but_never_a_store_in_use() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("lru");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let files = [
        "libnessus__nessus_report_local_3.nessus",
        "libnessus__nessus_report_localpci.nessus",
        "eafonin-nessus-api__sample_scan.nessus",
    ];
    let mut ids = Vec::new();
    let mut sizes = Vec::new();
    for f in files {
        let id = import(&a, f).await;
        let m = a
            .results_store()
            .unwrap()
            .manifest(&id)
            .await
            .unwrap()
            .unwrap();
        sizes.push(m.store_bytes());
        ids.push(id);
    }
    // Room for the largest store and a bit: never two of them.
    let cap = sizes.iter().max().unwrap() + sizes.iter().min().unwrap() / 2;
    let b = open_node(
        node_config(
            &dirs.path().join("b"),
            &db,
            &url,
            &format!("  results_cache_max_bytes: {cap}\n"),
        ),
        s3.options(),
    )
    .await;
    let cache = b.results_cache().unwrap();
    for id in &ids {
        page(&b, id).await.expect("page");
        let s = cache.stats();
        assert!(s.bytes <= cap, "{s:?} over cap {cap}");
    }
    let s = cache.stats();
    assert_eq!((s.stores, s.fetches, s.evictions), (1, 3, 2), "{s:?}");
    assert!(cache.contains(&ids[2]) && !cache.contains(&ids[0]));
    assert!(!dirs.path().join("b/results-cache").join(&ids[0]).exists());

    // A store held by a query in flight is pinned: fetching the others cannot delete it.
    let held = cache.get(&ids[2]).await.unwrap();
    page(&b, &ids[0]).await.expect("page");
    page(&b, &ids[1]).await.expect("page");
    assert!(cache.contains(&ids[2]), "pinned store evicted");
    let q = nessus_schema::Query::from_params(&QueryParams::default()).unwrap();
    held.page_string(&q).expect("the held store still reads");
    drop(held);
    page(&b, &ids[0]).await.expect("page");
    assert!(!cache.contains(&ids[2]), "unpinned now, so evicted");
    assert!(cache.stats().bytes <= cap);

    // A copy deleted behind the cache's back is fetched again, not an error.
    let fetches = cache.stats().fetches;
    std::fs::remove_dir_all(dirs.path().join("b/results-cache").join(&ids[0])).unwrap();
    page(&b, &ids[0]).await.expect("fetched again");
    assert_eq!(cache.stats().fetches, fetches + 1);

    // A restart adopts what the cache directory holds: no download.
    drop(b);
    let b = open_node(
        node_config(
            &dirs.path().join("b"),
            &db,
            &url,
            &format!("  results_cache_max_bytes: {cap}\n"),
        ),
        s3.options(),
    )
    .await;
    let cache = b.results_cache().unwrap();
    assert!(cache.contains(&ids[0]));
    page(&b, &ids[0]).await.expect("adopted copy");
    assert_eq!(cache.stats().fetches, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn housekeeping_purge_deletes_the_objects() {
    let s3 = s3();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let url = s3.url("purge");
    let a = open_node(
        node_config(&dirs.path().join("a"), &db, &url, ""),
        s3.options(),
    )
    .await;
    let id = import(&a, "libnessus__nessus_report_local_3.nessus").await;
    page(&a, &id).await.expect("cached on a");
    let remote = a.results_store().unwrap();
    assert!(!remote.list_task(&id).await.unwrap().is_empty());
    // completed_ttl_days: 0, so the task is expired at once.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let report = a.housekeep(false).await.unwrap();
    assert!(report.tasks.iter().any(|(t, _)| *t == id), "{report:?}");
    assert_eq!(remote.list_task(&id).await.unwrap(), Vec::<String>::new());
    assert!(!a.results_cache().unwrap().contains(&id));
    assert!(!dirs.path().join("a/results-cache").join(&id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn file_urls_work_the_same_way() {
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    let bucket = dirs.path().join("bucket");
    let url = format!("file://{}", bucket.display());
    let a = open_node(node_config(&dirs.path().join("a"), &db, &url, ""), vec![]).await;
    let id = import(&a, "libnessus__nessus_report_local_3.nessus").await;
    assert!(bucket.join(&id).join("manifest.json").is_file());
    assert!(
        !dirs.path().join("a/results").join(&id).exists(),
        "imports keep no local copy either"
    );
    let b = open_node(node_config(&dirs.path().join("b"), &db, &url, ""), vec![]).await;
    let text = page(&b, &id).await.expect("page via file://");
    assert_eq!(text, page(&a, &id).await.unwrap());
    let report = a.housekeep(false).await.unwrap();
    assert_eq!(report.tasks.len(), 1);
    // The local file system keeps empty folders; no file is left.
    let left: Vec<_> = walk(&bucket.join(&id));
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_never_reach_errors_debug_or_logs() {
    let logs = crate::worker::log_buffer();
    let s3 = s3();
    let secret = s3.secret_access_key().to_owned();
    let dirs = tempfile::tempdir().unwrap();
    let db = dirs.path().join("queue.sqlite3");
    // A bucket that does not exist: every call fails with the server's answer.
    let missing = "s3://no-such-bucket/x";
    let store = ResultsStore::open(missing, &s3.options()).unwrap();
    let mut texts = vec![format!("{store:?}")];
    let tmp = tempfile::tempdir().unwrap();
    let id = nessus_queue::new_task_id("nessus", ScanType::Untrusted, jiff::Timestamp::now());
    std::fs::create_dir_all(tmp.path().join("store")).unwrap();
    std::fs::write(tmp.path().join("store/meta.json"), b"{}").unwrap();
    let err = store
        .upload_task(&id, tmp.path())
        .await
        .expect_err("no bucket");
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));
    let err = store.check().await.expect_err("no bucket");
    texts.push(err.to_string());
    // Nothing listening: a transport error.
    let mut options = s3.options();
    for (k, v) in &mut options {
        if k == "AWS_ENDPOINT" {
            *v = SecretString::from(format!(
                "http://127.0.0.1:{}",
                nessus_queue::testkit::free_port().unwrap()
            ));
        }
    }
    let dead = ResultsStore::open(&s3.url("x"), &options).unwrap();
    let err = dead.check().await.expect_err("nothing listens");
    texts.push(err.to_string());
    texts.push(format!("{err:?}"));
    // A whole service, and its readiness error.
    let node = open_node(
        node_config(&dirs.path().join("a"), &db, missing, ""),
        s3.options(),
    )
    .await;
    texts.push(format!("{node:?}"));
    let err = node
        .import(
            &Principal::local(),
            ImportRequest::new(ImportSource::File(corpus(
                "libnessus__nessus_report_local_3.nessus",
            ))),
        )
        .await
        .expect_err("no bucket");
    texts.push(err.to_string());
    assert!(
        texts
            .iter()
            .any(|t| t.contains("no-such-bucket") || t.contains("NoSuchBucket")),
        "{texts:#?}"
    );
    for t in &texts {
        assert!(!t.contains(&secret), "secret in: {t}");
    }
    let logs = logs.lock().unwrap();
    let logs = String::from_utf8_lossy(&logs);
    assert!(!logs.contains(&secret), "the secret reached a log line");
}
