//! Retries: idempotent calls ride out 429 and 5xx (honouring Retry-After); create and
//! launch are never repeated.

use std::time::{Duration, Instant};

use nessus_core::{Error, ScanSpec, Scanner, sim::Faults};

use crate::support::{client, sim};

fn only(pattern: &str) -> Faults {
    Faults {
        only: Some(pattern.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn idempotent_calls_retry_5xx_and_429_honouring_retry_after() {
    let sim = sim().await;
    let c = client(&sim);
    sim.set_faults(Faults {
        fail_next: 2,
        ..only("GET /scans")
    });
    c.list_scans(None).await.unwrap();
    assert_eq!(sim.counters().injected_errors, 2);

    sim.set_faults(Faults {
        rate_limit_next: 1,
        retry_after_secs: Some(1),
        ..only("GET /scans")
    });
    let started = Instant::now();
    c.list_scans(None).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was not honoured"
    );
    assert_eq!(sim.counters().rate_limited, 1);

    // More failures than retries: the error surfaces, typed and retryable.
    sim.set_faults(Faults {
        fail_next: 10,
        fail_status: Some(502),
        ..only("GET /scans")
    });
    let err = c.list_scans(None).await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(err.is_retryable());
    assert_eq!(sim.faults().fail_next, 10 - 4, "1 attempt + 3 retries");
}

#[tokio::test]
async fn create_and_launch_are_never_retried() {
    let sim = sim().await;
    let c = client(&sim);
    let spec = ScanSpec::new("mcp-no-dup", ["192.0.2.5"]);
    for faults in [
        Faults {
            fail_next: 1,
            ..only("POST /scans")
        },
        Faults {
            rate_limit_next: 1,
            retry_after_secs: Some(0),
            ..only("POST /scans")
        },
    ] {
        sim.set_faults(faults);
        let err = Scanner::create_scan(&c, &spec).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(!err.outcome_unknown());
    }
    assert_eq!(sim.counters().scans_created, 0);
    assert_eq!(
        sim.counters().injected_errors + sim.counters().rate_limited,
        2
    );

    sim.set_faults(Faults::default());
    let id = Scanner::create_scan(&c, &spec).await.unwrap();
    sim.set_faults(Faults {
        fail_next: 1,
        ..only(&format!("POST /scans/{id}/launch"))
    });
    assert!(matches!(
        Scanner::launch(&c, id).await,
        Err(Error::Api { status: 503, .. })
    ));
    assert_eq!(sim.counters().scans_launched, 0);
    Scanner::launch(&c, id).await.unwrap();
    let counters = sim.counters();
    assert_eq!(counters.scans_launched, 1);
    assert_eq!(counters.by_name["mcp-no-dup"].created, 1);
    assert_eq!(
        Scanner::find_scan_by_name(&c, "mcp-no-dup").await.unwrap(),
        Some(id)
    );
    assert_eq!(
        Scanner::find_scan_by_name(&c, "mcp-other").await.unwrap(),
        None
    );
}
