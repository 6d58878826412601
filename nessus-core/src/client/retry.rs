//! Retry policy for idempotent calls: jittered exponential backoff that honours
//! `Retry-After`.

use std::time::Duration;

use rand::Rng;

/// How idempotent calls (GETs, DELETE, export polling) are retried on 429, 5xx, timeouts
/// and broken connections. Scan create and launch are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retrying).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles on each further retry.
    pub base_delay: Duration,
    /// Upper bound of a computed backoff.
    pub max_delay: Duration,
    /// Upper bound of a server-requested `Retry-After` wait; longer requests fail fast
    /// with the 429/503 error so a caller (the worker) can reschedule instead.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    /// A policy with `max_retries` retries starting at `base_delay`.
    pub fn new(max_retries: u32, base_delay: Duration) -> Self {
        Self {
            max_retries,
            base_delay,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (0-based): the server's `Retry-After` if it
    /// sent one (capped), else "full jitter" backoff, uniform in
    /// `[d/2, d]` for `d = min(base * 2^retry, max)`. Jitter spreads the retries of many
    /// workers so they do not hit a recovering server at the same instant.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(ra) = retry_after {
            return (ra <= self.max_retry_after).then_some(ra);
        }
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
        let d = exp.min(self.max_delay);
        let half = d / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter_ms)
        };
        Some(half + Duration::from_millis(extra))
    }
}

/// Parses `Retry-After` as delta-seconds. (The HTTP-date form is not used by Nessus and
/// is ignored, which falls back to computed backoff.)
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let p = RetryPolicy::new(5, Duration::from_millis(100));
        for retry in 0..10 {
            let d = p.delay(retry, None).unwrap();
            let cap = Duration::from_millis(100 * (1 << retry.min(20))).min(p.max_delay);
            assert!(d >= cap / 2 && d <= cap, "{retry}: {d:?}");
        }
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(3600))), None);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
