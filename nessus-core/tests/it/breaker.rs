//! Circuit breaker transitions on a manual clock, and instance selection ordering.

use std::sync::Arc;
use std::time::Duration;

use nessus_core::{
    BreakerConfig, BreakerState, CircuitBreaker, InstanceLoad, ManualClock, Unavailable,
    select_instance,
};

fn breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::default();
    let config = BreakerConfig::default()
        .with_failure_threshold(3)
        .with_window(Duration::from_secs(10))
        .with_open_for(Duration::from_secs(30));
    (
        CircuitBreaker::with_clock("nessus:s1", config, Arc::new(clock.clone())),
        clock,
    )
}

fn fail(b: &CircuitBreaker) {
    b.try_acquire().expect("call permitted").failure();
}

fn succeed(b: &CircuitBreaker) {
    b.try_acquire().expect("call permitted").success();
}

#[test]
fn opens_after_threshold_failures_within_window() {
    let (b, clock) = breaker();
    fail(&b);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Closed);
    fail(&b);
    assert_eq!(b.state(), BreakerState::Open);
    let refused = b.try_acquire().unwrap_err();
    assert_eq!(refused.retry_after, Duration::from_secs(30));
    assert!(!b.is_available());
    clock.advance(Duration::from_secs(12));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_after,
        Duration::from_secs(18)
    );
    let status = b.status();
    assert_eq!((status.opens_total, status.failures_total), (1, 3));
}

#[test]
fn failures_spread_beyond_the_window_do_not_open() {
    let (b, clock) = breaker();
    for _ in 0..10 {
        fail(&b);
        clock.advance(Duration::from_secs(6));
    }
    assert_eq!(
        b.state(),
        BreakerState::Closed,
        "never 3 failures within 10 s"
    );
}

#[test]
fn a_success_resets_the_consecutive_count() {
    let (b, _clock) = breaker();
    for _ in 0..5 {
        fail(&b);
        fail(&b);
        succeed(&b);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().failures_total, 10);
}

#[test]
fn half_open_lets_one_probe_per_interval() {
    let (b, clock) = breaker();
    (0..3).for_each(|_| fail(&b));
    clock.advance(Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(
        b.is_available(),
        "selection may pick it; asking does not take the probe"
    );
    let probe = b.try_acquire().unwrap();
    assert!(probe.is_probe());
    assert!(b.try_acquire().is_err(), "only one probe at a time");
    assert!(!b.is_available());
    probe.failure();
    assert_eq!(b.state(), BreakerState::Open);
    assert_eq!(b.status().opens_total, 2);
    clock.advance(Duration::from_secs(29));
    assert!(
        b.try_acquire().is_err(),
        "the next probe waits a full interval"
    );
    clock.advance(Duration::from_secs(1));
    let probe = b.try_acquire().unwrap();
    probe.success();
    assert_eq!(b.state(), BreakerState::Closed);
    succeed(&b);
    succeed(&b);
}

#[test]
fn a_dropped_probe_frees_the_probe_slot() {
    let (b, clock) = breaker();
    (0..3).for_each(|_| fail(&b));
    clock.advance(Duration::from_secs(30));
    drop(b.try_acquire().unwrap());
    assert_eq!(b.state(), BreakerState::HalfOpen);
    assert!(b.try_acquire().unwrap().is_probe());
}

#[test]
fn late_results_of_pre_open_calls_do_not_close_it() {
    let (b, _clock) = breaker();
    let slow = b.try_acquire().unwrap();
    (0..3).for_each(|_| fail(&b));
    slow.success();
    assert_eq!(b.state(), BreakerState::Open);
}

#[test]
fn reset_closes() {
    let (b, _clock) = breaker();
    (0..3).for_each(|_| fail(&b));
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.status().state.as_str(), "closed");
}

/// Selects from `pool` and compares the picked id (or the reason nothing fits).
fn check_select(pool: &[InstanceLoad], pinned: Option<&str>, want: Result<&str, Unavailable>) {
    let got = select_instance(pool, pinned).map(|i| i.instance_id.as_str());
    assert_eq!(got, want, "pool {pool:?} pinned {pinned:?}");
}

#[test]
fn selection_ordering() {
    let load = InstanceLoad::new;
    // Least loaded by utilisation.
    check_select(&[load("a", 1, 2), load("b", 0, 2)], None, Ok("b"));
    check_select(&[load("a", 2, 10), load("b", 1, 2)], None, Ok("a"));
    // Equal utilisation: fewer active scans, then least recently used, then id.
    check_select(&[load("a", 2, 4), load("b", 1, 2)], None, Ok("b"));
    check_select(
        &[
            load("a", 0, 2).with_last_used(200),
            load("b", 0, 2).with_last_used(100),
        ],
        None,
        Ok("b"),
    );
    check_select(&[load("b", 0, 2), load("a", 0, 2)], None, Ok("a"));
    // Full instances are skipped; all full means wait.
    check_select(&[load("a", 2, 2), load("b", 1, 2)], None, Ok("b"));
    check_select(
        &[load("a", 2, 2), load("b", 2, 2)],
        None,
        Err(Unavailable::Busy),
    );
    check_select(&[load("a", 0, 0)], None, Err(Unavailable::Busy));
    // Open breakers are skipped; all open means wait.
    check_select(
        &[load("a", 0, 2).with_available(false), load("b", 1, 2)],
        None,
        Ok("b"),
    );
    check_select(
        &[load("a", 0, 2).with_available(false)],
        None,
        Err(Unavailable::BreakerOpen),
    );
    // Pinning never falls back.
    check_select(&[load("a", 1, 2), load("b", 0, 2)], Some("a"), Ok("a"));
    check_select(
        &[load("a", 2, 2), load("b", 0, 2)],
        Some("a"),
        Err(Unavailable::Busy),
    );
    check_select(
        &[load("a", 0, 2).with_available(false), load("b", 0, 2)],
        Some("a"),
        Err(Unavailable::BreakerOpen),
    );
    check_select(
        &[load("a", 0, 2)],
        Some("zz"),
        Err(Unavailable::UnknownInstance {
            instance_id: "zz".into(),
        }),
    );
    check_select(&[], None, Err(Unavailable::EmptyPool));
    assert!(Unavailable::EmptyPool.is_permanent());
    assert!(!Unavailable::Busy.is_permanent());
}

#[test]
fn idle_pool_is_round_robin_when_last_used_is_recorded() {
    let mut pool = vec![
        InstanceLoad::new("scanner1", 0, 2),
        InstanceLoad::new("scanner2", 0, 2),
    ];
    let mut picks = Vec::new();
    for now in 1..=4 {
        let id = select_instance(&pool, None).unwrap().instance_id.clone();
        pool.iter_mut()
            .filter(|i| i.instance_id == id)
            .for_each(|i| i.last_used = now);
        picks.push(id);
    }
    assert_eq!(picks, ["scanner1", "scanner2", "scanner1", "scanner2"]);
}

#[test]
fn shared_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CircuitBreaker>();
    assert_send_sync::<nessus_core::Config>();
    assert_send_sync::<nessus_core::Instance>();
    assert_send_sync::<nessus_core::TargetPolicy>();
}
