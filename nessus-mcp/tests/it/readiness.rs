//! `/ready`'s "results store" check: present only with `server.results_url`, passing
//! against a real S3 server (moto on loopback), failing for a bucket that does not
//! exist, with a detail that never carries the secret key.

use nessus_core::Config;
use nessus_mcp::App;
use nessus_queue::service::{OpenOptions, Service};
use nessus_queue::testkit::S3Server;

async fn app(data: &std::path::Path, results_url: Option<&str>, s3: &S3Server) -> App {
    let mut yaml = format!("server:\n  data_dir: {}\n", data.display());
    if let Some(url) = results_url {
        yaml.push_str(&format!("  results_url: {url}\n"));
    }
    let config = Config::from_yaml_with_env(&yaml, &|_| None).expect("config");
    let service = Service::open(config, OpenOptions::new().results_options(s3.options()))
        .await
        .expect("service");
    App::new(service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_checks_the_results_store_when_one_is_configured() {
    let s3 = S3Server::start().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let check = |app: &nessus_mcp::Readiness| {
        app.checks
            .iter()
            .find(|c| c.name == "results store")
            .map(|c| (c.ok, c.detail.clone().unwrap_or_default()))
    };

    let local = app(&dir.path().join("local"), None, &s3).await;
    assert_eq!(
        check(&local.readiness().await),
        None,
        "local disk: no check"
    );

    let good = app(&dir.path().join("good"), Some(&s3.url("ready")), &s3).await;
    assert_eq!(check(&good.readiness().await), Some((true, String::new())));

    let missing = app(&dir.path().join("bad"), Some("s3://no-such-bucket/p"), &s3).await;
    let r = missing.readiness().await;
    let (ok, detail) = check(&r).expect("a results store check");
    assert!(!ok && !r.ready, "{detail}");
    assert!(!detail.contains(s3.secret_access_key()), "{detail}");
    let shown = serde_json::to_string(&r).unwrap();
    assert!(!shown.contains(s3.secret_access_key()), "{shown}");
}
