//! A per-scanner circuit breaker: closed, open, half-open.
//!
//! The breaker opens after `failure_threshold` consecutive failures that all fall
//! within `window` (a success clears the count, and failures older than the window
//! are forgotten, so a few errors spread over hours never open it). While open it
//! refuses calls for `open_for`; then exactly one probe call is let through at a time.
//! A successful probe closes it, a failed probe opens it for another `open_for`.
//!
//! An open breaker is a reason to *wait* (or route to another scanner), never to fail
//! a task: [`BreakerOpen`] carries how long to wait.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A source of monotonic time, injectable so tests can drive the breaker.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.now);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *lock(&self.now)
    }
}

/// Breaker thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    failure_threshold: u32,
    window: Duration,
    open_for: Duration,
}

impl Default for BreakerConfig {
    /// 5 consecutive failures within 60 s open the breaker for 30 s (the predecessor's
    /// threshold and recovery time, plus a window).
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            window: Duration::from_secs(60),
            open_for: Duration::from_secs(30),
        }
    }
}

impl BreakerConfig {
    /// Consecutive failures that open the breaker (at least 1).
    #[must_use]
    pub fn with_failure_threshold(mut self, n: u32) -> Self {
        self.failure_threshold = n.max(1);
        self
    }

    /// How far back failures count.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// How long the breaker stays open before letting one probe through.
    #[must_use]
    pub fn with_open_for(mut self, open_for: Duration) -> Self {
        self.open_for = open_for;
        self
    }

    /// The failure threshold.
    pub fn failure_threshold(&self) -> u32 {
        self.failure_threshold
    }

    /// The failure window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// The open period (and probe interval).
    pub fn open_for(&self) -> Duration {
        self.open_for
    }
}

/// The externally visible state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// The open period ended: one probe call at a time decides.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open` (the predecessor's status strings).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A snapshot for status endpoints and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BreakerStatus {
    /// Current state.
    pub state: BreakerState,
    /// Consecutive failures inside the window.
    pub recent_failures: u32,
    /// The configured threshold.
    pub failure_threshold: u32,
    /// How many times the breaker opened.
    pub opens_total: u64,
    /// Every failure ever recorded.
    pub failures_total: u64,
    /// When open: time left before a probe is allowed.
    pub retry_after: Option<Duration>,
}

/// The breaker refused a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerOpen {
    /// The breaker's name (the instance key).
    pub name: String,
    /// How long until a probe may be tried.
    pub retry_after: Duration,
}

impl fmt::Display for BreakerOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "circuit breaker for scanner {} is open; next probe in {:.1}s",
            self.name,
            self.retry_after.as_secs_f64()
        )
    }
}

impl std::error::Error for BreakerOpen {}

#[derive(Debug)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probe_in_flight: bool },
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    failures: VecDeque<Instant>,
    opens_total: u64,
    failures_total: u64,
}

/// One breaker per scanner instance. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct CircuitBreaker {
    name: String,
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    /// A closed breaker on the system clock.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        Self::with_clock(name, config, Arc::new(SystemClock))
    }

    /// A closed breaker on the given clock.
    pub fn with_clock(
        name: impl Into<String>,
        config: BreakerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            name: name.into(),
            config,
            clock,
            inner: Mutex::new(Inner {
                phase: Phase::Closed,
                failures: VecDeque::new(),
                opens_total: 0,
                failures_total: 0,
            }),
        }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The thresholds.
    pub fn config(&self) -> &BreakerConfig {
        &self.config
    }

    /// The current state (an elapsed open period reads as half-open).
    pub fn state(&self) -> BreakerState {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        refresh(&mut inner, now);
        match inner.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether [`try_acquire`](Self::try_acquire) would let a call through now. Does
    /// not take the probe slot, so scanner selection can ask freely.
    pub fn is_available(&self) -> bool {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        refresh(&mut inner, now);
        match inner.phase {
            Phase::Closed => true,
            Phase::Open { .. } => false,
            Phase::HalfOpen { probe_in_flight } => !probe_in_flight,
        }
    }

    /// Asks to make one call. Report its outcome on the permit; dropping the permit
    /// without a report is neutral (a dropped probe frees the probe slot).
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, BreakerOpen> {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        refresh(&mut inner, now);
        match inner.phase {
            Phase::Closed => Ok(BreakerPermit {
                breaker: self,
                probe: false,
                done: false,
            }),
            Phase::HalfOpen {
                probe_in_flight: false,
            } => {
                inner.phase = Phase::HalfOpen {
                    probe_in_flight: true,
                };
                Ok(BreakerPermit {
                    breaker: self,
                    probe: true,
                    done: false,
                })
            }
            Phase::HalfOpen {
                probe_in_flight: true,
            } => Err(self.open_error(self.config.open_for)),
            Phase::Open { until } => Err(self.open_error(until.saturating_duration_since(now))),
        }
    }

    /// A snapshot of the state and counters.
    pub fn status(&self) -> BreakerStatus {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        refresh(&mut inner, now);
        let (state, retry_after) = match inner.phase {
            Phase::Closed => (BreakerState::Closed, None),
            Phase::Open { until } => (
                BreakerState::Open,
                Some(until.saturating_duration_since(now)),
            ),
            Phase::HalfOpen { .. } => (BreakerState::HalfOpen, None),
        };
        BreakerStatus {
            state,
            recent_failures: u32::try_from(inner.failures.len()).unwrap_or(u32::MAX),
            failure_threshold: self.config.failure_threshold,
            opens_total: inner.opens_total,
            failures_total: inner.failures_total,
            retry_after,
        }
    }

    /// Back to closed with no recent failures (totals are kept).
    pub fn reset(&self) {
        let mut inner = lock(&self.inner);
        inner.phase = Phase::Closed;
        inner.failures.clear();
    }

    fn open_error(&self, retry_after: Duration) -> BreakerOpen {
        BreakerOpen {
            name: self.name.clone(),
            retry_after,
        }
    }

    fn report(&self, probe: bool, success: bool) {
        let now = self.clock.now();
        let mut inner = lock(&self.inner);
        refresh(&mut inner, now);
        if success {
            if probe || matches!(inner.phase, Phase::Closed) {
                inner.phase = Phase::Closed;
                inner.failures.clear();
            }
            return;
        }
        inner.failures_total += 1;
        if probe {
            self.open(&mut inner, now);
            return;
        }
        if matches!(inner.phase, Phase::Closed) {
            inner.failures.push_back(now);
            prune(&mut inner.failures, now, self.config.window);
            if inner.failures.len() >= self.config.failure_threshold as usize {
                self.open(&mut inner, now);
            }
        }
    }

    fn release_probe(&self) {
        let mut inner = lock(&self.inner);
        if let Phase::HalfOpen {
            probe_in_flight: true,
        } = inner.phase
        {
            inner.phase = Phase::HalfOpen {
                probe_in_flight: false,
            };
        }
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        inner.phase = Phase::Open {
            until: now + self.config.open_for,
        };
        inner.failures.clear();
        inner.opens_total += 1;
    }
}

/// Permission for one call; report the outcome with [`success`](Self::success) or
/// [`failure`](Self::failure).
#[derive(Debug)]
#[must_use = "report the call's outcome on the permit"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    probe: bool,
    done: bool,
}

impl BreakerPermit<'_> {
    /// Whether this call is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    /// The call reached a healthy scanner (including answers like 404 or 409 that
    /// are the caller's problem, not the scanner's).
    pub fn success(mut self) {
        self.done = true;
        self.breaker.report(self.probe, true);
    }

    /// The call failed in a way that says the scanner is unhealthy (connect error,
    /// timeout, 5xx, 429).
    pub fn failure(mut self) {
        self.done = true;
        self.breaker.report(self.probe, false);
    }
}

impl Drop for BreakerPermit<'_> {
    fn drop(&mut self) {
        if !self.done && self.probe {
            self.breaker.release_probe();
        }
    }
}

fn refresh(inner: &mut Inner, now: Instant) {
    if let Phase::Open { until } = inner.phase
        && now >= until
    {
        inner.phase = Phase::HalfOpen {
            probe_in_flight: false,
        };
    }
}

fn prune(failures: &mut VecDeque<Instant>, now: Instant, window: Duration) {
    while let Some(first) = failures.front() {
        if now.saturating_duration_since(*first) > window {
            failures.pop_front();
        } else {
            break;
        }
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain counters;
/// the state is still usable, so recover it instead of propagating the panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
