//! Shared setup: a fast simulator and a client with short retry and polling delays.

use std::time::Duration;

use nessus_core::{
    Credentials, ExportPolling, NessusClient, NessusClientBuilder, RetryPolicy,
    sim::{SimHandle, Simulator, SimulatorBuilder},
};

/// The real `.nessus` file the simulator draws results from in these tests (1 host,
/// 40 report items).
pub(crate) const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../corpus/nessus/eafonin-nessus-api__sample_scan.nessus"
);

/// The recorded API bodies.
pub(crate) const API_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/api");

pub(crate) fn sim_builder() -> SimulatorBuilder {
    Simulator::builder()
        .scan_duration(Duration::from_millis(300))
        .export_delay(Duration::from_millis(20))
        .corpus(SAMPLE)
}

pub(crate) async fn sim() -> SimHandle {
    sim_builder()
        .start("127.0.0.1:0")
        .await
        .expect("simulator starts")
}

pub(crate) fn fast(builder: NessusClientBuilder) -> NessusClientBuilder {
    builder
        .retry(RetryPolicy::new(3, Duration::from_millis(10)))
        .export_polling(ExportPolling::new(
            Duration::from_millis(20),
            Duration::from_secs(10),
        ))
        .timeout(Duration::from_secs(10))
}

pub(crate) fn client_with(sim: &SimHandle, credentials: Credentials) -> NessusClient {
    fast(NessusClient::builder())
        .base_url(sim.base_url())
        .credentials(credentials)
        .build()
        .expect("client builds")
}

pub(crate) fn client(sim: &SimHandle) -> NessusClient {
    client_with(sim, Credentials::api_keys("a".repeat(64), "b".repeat(64)))
}
