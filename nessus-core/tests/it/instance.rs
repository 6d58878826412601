//! Instances built from config, with the breaker wrapped around real calls to the
//! simulator over HTTP on 127.0.0.1.

use std::sync::Arc;
use std::time::Duration;

use nessus_core::sim::Simulator;
use nessus_core::{
    BreakerConfig, BreakerState, CircuitBreaker, Config, Error, Instance, ManualClock, RetryPolicy,
    ScanId, Scanner,
};

fn sim_config(url: &str) -> Config {
    let yaml = "\
nessus:
  target_policy:
    allow: [192.0.2.0/24]
  instances:
    - instance_id: sim1
      url: ${SIM_URL}
      access_key: ak
      secret_key: sk
      max_concurrent_scans: 3
";
    let url = url.to_owned();
    Config::from_yaml_with_env(yaml, &move |name| (name == "SIM_URL").then(|| url.clone())).unwrap()
}

#[tokio::test]
async fn breaker_guards_every_call_to_a_real_scanner() {
    let sim = Simulator::builder().start("127.0.0.1:0").await.unwrap();
    let config = sim_config(sim.base_url());
    let inst_config = config.instance("nessus", "sim1").unwrap();
    let client = inst_config
        .client_builder()
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let clock = ManualClock::default();
    let breaker = Arc::new(CircuitBreaker::with_clock(
        inst_config.key(),
        BreakerConfig::default()
            .with_failure_threshold(2)
            .with_open_for(Duration::from_secs(30)),
        Arc::new(clock.clone()),
    ));
    let instance = Instance::new("nessus", "sim1", 3, Arc::new(client), breaker);
    let scanner = instance.scanner();

    // Healthy, and a 404 is the caller's problem, not the scanner's.
    assert_eq!(scanner.find_scan_by_name("mcp-none").await.unwrap(), None);
    assert!(scanner.status(ScanId(987_654)).await.is_err());
    assert_eq!(instance.breaker().state(), BreakerState::Closed);

    // Two 503s open the breaker; the next call fails fast without reaching Nessus.
    sim.update_faults(|f| {
        f.fail_next = 2;
        f.fail_status = Some(503);
    });
    for _ in 0..2 {
        let err = scanner.find_scan_by_name("x").await.unwrap_err();
        assert_eq!(err.status(), Some(503), "{err}");
    }
    assert_eq!(instance.breaker().state(), BreakerState::Open);
    let before = sim.counters().requests;
    let err = scanner.find_scan_by_name("x").await.unwrap_err();
    assert!(
        matches!(err, Error::CircuitOpen { ref instance, .. } if instance == "nessus:sim1"),
        "{err}"
    );
    assert!(err.is_retryable());
    assert_eq!(sim.counters().requests, before, "no request while open");
    assert!(!instance.load(0, 0).available, "selection skips it");

    // After the open period one probe goes through; it succeeds and closes the breaker.
    clock.advance(Duration::from_secs(30));
    assert!(instance.load(0, 0).available);
    assert_eq!(scanner.find_scan_by_name("x").await.unwrap(), None);
    assert_eq!(instance.breaker().state(), BreakerState::Closed);
    sim.shutdown().await;
}

#[tokio::test]
async fn connection_failures_count_as_scanner_failures() {
    let sim = Simulator::builder().start("127.0.0.1:0").await.unwrap();
    let config = sim_config(sim.base_url());
    let inst_config = config.instance("nessus", "sim1").unwrap();
    let client = inst_config
        .client_builder()
        .retry(RetryPolicy::none())
        .build()
        .unwrap();
    let breaker = Arc::new(CircuitBreaker::new(
        inst_config.key(),
        BreakerConfig::default().with_failure_threshold(1),
    ));
    let instance = Instance::new("nessus", "sim1", 3, Arc::new(client), breaker);
    sim.shutdown().await;
    let err = instance.scanner().find_scan_by_name("x").await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err}");
    assert_eq!(instance.breaker().state(), BreakerState::Open);
}

#[test]
fn every_configured_instance_builds_a_client() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/");
    let env = |name: &str| match name {
        "MCP_TOKEN" => Some("a-long-enough-token-123".to_owned()),
        n if n.starts_with("NESSUS_URL") || n == "REDIS_URL" => None,
        _ => Some("x".to_owned()),
    };
    for file in ["predecessor-scanners.yaml", "full-scanners.yaml"] {
        let config = Config::load_with_env(format!("{dir}{file}"), &env).unwrap();
        for inst in config.instances() {
            let built = Instance::from_config(inst, BreakerConfig::default());
            let built = built.unwrap_or_else(|e| panic!("{}: {e}", inst.key()));
            assert_eq!(built.key(), inst.key());
            assert_eq!(built.max_concurrent_scans(), inst.max_concurrent_scans());
        }
    }
}
