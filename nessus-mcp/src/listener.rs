//! The accept loop: our own instead of `axum::serve`, which has no header read
//! timeout and no connection cap. 19,985 connections that each sent half a
//! header used to hold every file descriptor; `/health` timed out and the log
//! filled with `accept error: Too many open files`.
//!
//! Here every connection needs a permit from a semaphore sized by
//! [`ConnLimits::max_connections`], so descriptors stay bounded. At the cap, a
//! new connection evicts the oldest one that has no request in flight (still
//! sending its head, or idle between requests): a slow-header flood then only
//! ever holds connections younger than the real clients' requests, instead of
//! locking everyone out for a header timeout. When every connection is busy
//! the new one is closed at once. hyper's header read timeout closes a
//! connection whose request head has not fully arrived in time, and since hyper restarts that timer whenever a
//! keep-alive connection goes idle, it also bounds idle keep-alive connections.
//! Accept errors (EMFILE above all) back off and are logged at most once per
//! [`ACCEPT_LOG_EVERY`].

use std::{
    collections::BTreeMap,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::Router;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    server::graceful::GracefulShutdown,
    service::TowerToHyperService,
};
use tokio::{
    net::TcpListener,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::sync::CancellationToken;

use crate::telemetry;

/// Default time a client has to send a complete request head (and the longest
/// a keep-alive connection stays idle).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on concurrently open connections (the binary lowers it below
/// the open-files limit).
pub const DEFAULT_MAX_CONNECTIONS: usize = 8192;
/// At most one accept-error log line per this interval (the rest are counted).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(5);
/// Back-off after a resource accept error doubles from the first to the last.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_secs(1));

/// Descriptors kept back from the connection cap for everything else the
/// process opens (SQLite, Redis, scanner clients, the metrics listener, logs).
pub const FD_RESERVE: u64 = 256;

/// Raise the soft open-files limit to the hard one (the connection cap is only
/// as good as the descriptors behind it); returns the soft limit then in force.
#[cfg(unix)]
fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    // No hard limit: a million is beyond any sane connection count.
    let target = lim.maximum.unwrap_or(1 << 20);
    if lim.current.is_some_and(|c| c < target) {
        lim.current = Some(target);
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!(error = %e, "could not raise the open-files limit");
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
fn raise_nofile_limit() -> Option<u64> {
    None
}

/// The connection cap for a server process: raises the soft open-files limit to
/// the hard one, then takes `requested`, else [`DEFAULT_MAX_CONNECTIONS`] lowered
/// to leave [`FD_RESERVE`] descriptors free, so `accept` never hits EMFILE
/// (which used to fill the log and starve `/health`).
pub fn connection_cap(requested: Option<usize>) -> usize {
    let soft = raise_nofile_limit();
    let fit =
        soft.map(|s| usize::try_from(s.saturating_sub(FD_RESERVE).max(16)).unwrap_or(usize::MAX));
    match (requested, fit) {
        (Some(n), Some(f)) if n > f => {
            tracing::warn!(
                max_connections = n,
                open_files_limit = soft,
                "--max-connections exceeds the open-files limit minus {FD_RESERVE}: accept may fail with EMFILE"
            );
            n
        }
        (Some(n), _) => n,
        (None, Some(f)) => DEFAULT_MAX_CONNECTIONS.min(f),
        (None, None) => DEFAULT_MAX_CONNECTIONS,
    }
}

/// Connection limits of one listener.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnLimits {
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
}

/// Serve `router` on `listener` until `shutdown` fires, then stop accepting and
/// wait for the open connections to finish their in-flight requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let mut errors = AcceptErrors::default();
    let registry: Registry = Arc::default();
    let mut next_id = 0u64;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                errors.ok();
                stream
            }
            Err(e) => {
                let pause = errors.failed(&e);
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(pause) => continue,
                }
            }
        };
        let Some(permit) = admit(&permits, &registry).await else {
            // Every connection is busy: closing at once keeps descriptors
            // bounded; the client sees a reset/EOF and may retry.
            metrics::counter!(telemetry::CONNECTIONS_REFUSED).increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        next_id += 1;
        let slot = Arc::new(Slot {
            in_flight: AtomicUsize::new(0),
            evict: CancellationToken::new(),
        });
        lock(&registry).insert(next_id, slot.clone());
        let svc = {
            let slot = slot.clone();
            let router = router.clone();
            hyper::service::service_fn(move |req| {
                let slot = slot.clone();
                let call = TowerToHyperService::new(router.clone());
                async move {
                    slot.in_flight.fetch_add(1, Ordering::SeqCst);
                    let resp = hyper::service::Service::call(&call, req).await;
                    slot.in_flight.fetch_sub(1, Ordering::SeqCst);
                    resp
                }
            })
        };
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        let registry = registry.clone();
        let id = next_id;
        tokio::spawn(async move {
            let _permit = permit;
            let open = metrics::gauge!(telemetry::HTTP_CONNECTIONS);
            open.increment(1.0);
            tokio::select! {
                r = conn => if let Err(e) = r {
                    // Timeouts and resets are the client's business, not an operator's.
                    tracing::debug!(error = %e, "connection closed with an error");
                },
                // Dropping the connection closes its socket.
                () = slot.evict.cancelled() => {}
            }
            lock(&registry).remove(&id);
            open.decrement(1.0);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One open connection, as the cap sees it.
struct Slot {
    /// Requests whose head has arrived and whose response is not yet written.
    in_flight: AtomicUsize,
    /// Fired to close the connection to make room for a new one.
    evict: CancellationToken,
}

/// Open connections by age (ids increase).
type Registry = Arc<Mutex<BTreeMap<u64, Arc<Slot>>>>;

fn lock(r: &Registry) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Slot>>> {
    // A panic elsewhere cannot leave the map inconsistent: every change is one call.
    r.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long a new connection waits for the permit of the one it evicted.
const EVICT_WAIT: Duration = Duration::from_millis(200);

/// A permit for a new connection: a free one, else the permit of the oldest
/// connection with no request in flight, which is closed for it.
async fn admit(permits: &Arc<Semaphore>, registry: &Registry) -> Option<OwnedSemaphorePermit> {
    if let Ok(p) = permits.clone().try_acquire_owned() {
        return Some(p);
    }
    let victim = lock(registry)
        .iter()
        .find(|(_, s)| s.in_flight.load(Ordering::SeqCst) == 0 && !s.evict.is_cancelled())
        .map(|(_, s)| s.clone())?;
    victim.evict.cancel();
    metrics::counter!(telemetry::CONNECTIONS_EVICTED).increment(1);
    tokio::time::timeout(EVICT_WAIT, permits.clone().acquire_owned())
        .await
        .ok()?
        .ok()
}

/// Back-off and rate-limited logging of accept errors.
#[derive(Default)]
struct AcceptErrors {
    consecutive: u32,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn ok(&mut self) {
        self.consecutive = 0;
    }

    /// Records an accept error; returns how long to pause before the next accept.
    fn failed(&mut self, e: &io::Error) -> Duration {
        metrics::counter!(telemetry::ACCEPT_ERRORS).increment(1);
        // A peer that gave up before we accepted it: nothing is wrong here.
        if matches!(
            e.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionRefused
        ) {
            return Duration::ZERO;
        }
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= ACCEPT_LOG_EVERY)
        {
            tracing::warn!(
                error = %e,
                suppressed = self.suppressed,
                "accept failed (out of file descriptors?); backing off; lower --max-connections \
                 or raise the open-files limit"
            );
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        let (first, last) = ACCEPT_BACKOFF;
        let pause = first.saturating_mul(1 << self.consecutive.min(10));
        self.consecutive = self.consecutive.saturating_add(1);
        pause.min(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_fits_the_open_files_limit() {
        assert_eq!(connection_cap(Some(5)), 5, "the operator's value is kept");
        let cap = connection_cap(None);
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        assert!(cap <= DEFAULT_MAX_CONNECTIONS, "{cap}");
        if let Some(soft) = soft {
            assert!(
                cap as u64 <= soft.saturating_sub(FD_RESERVE).max(16),
                "{cap} vs {soft}"
            );
        }
    }

    #[test]
    fn accept_errors_back_off_and_reset() {
        let mut e = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..12).map(|_| e.failed(&emfile)).collect();
        assert_eq!(pauses[0], ACCEPT_BACKOFF.0);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]), "{pauses:?}");
        assert_eq!(pauses[11], ACCEPT_BACKOFF.1);
        assert_eq!(e.suppressed, 11, "one line logged, the rest counted");
        e.ok();
        assert_eq!(e.failed(&emfile), ACCEPT_BACKOFF.0);
        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(e.failed(&aborted), Duration::ZERO);
    }
}
