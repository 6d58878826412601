//! MCP `notifications/progress` for long calls (an import, an export plan): the service
//! counts the work in a [`Progress`] handle and sets the pace; this module only sends.

use nessus_queue::service::{PROGRESS_INTERVAL, Progress};
use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
};

/// Awaits `work`, sending a progress notification every [`PROGRESS_INTERVAL`] in which
/// `progress` moved (`what` names the unit, e.g. "bytes ingested"), and one last
/// notification when the work ends with progress not yet reported, unless one went out
/// less than an interval ago: a call shorter than one interval still reports where it
/// ended, and no two notifications are closer than the interval. A notification that
/// cannot be sent (the client went away) does not fail the work.
pub(crate) async fn reporting<T>(
    work: impl Future<Output = T>,
    peer: &Peer<RoleServer>,
    token: ProgressToken,
    progress: &Progress,
    what: &str,
) -> T {
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing has been done yet.
    tick.tick().await;
    let mut last = 0;
    let mut sent: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            result = &mut work => {
                let done = progress.done();
                if done != last && sent.is_none_or(|t| t.elapsed() >= PROGRESS_INTERVAL) {
                    notify(peer, &token, progress, done, what).await;
                }
                return result;
            }
            _ = tick.tick() => {
                let done = progress.done();
                if done == last {
                    continue;
                }
                last = done;
                sent = Some(tokio::time::Instant::now());
                notify(peer, &token, progress, done, what).await;
            }
        }
    }
}

/// Sends one notification: `done` of the total, when it is known.
async fn notify(
    peer: &Peer<RoleServer>,
    token: &ProgressToken,
    progress: &Progress,
    done: u64,
    what: &str,
) {
    let total = progress.total();
    let message = match total {
        Some(t) => format!("{done} of {t} {what}"),
        None => format!("{done} {what}"),
    };
    let mut param =
        ProgressNotificationParam::new(token.clone(), done as f64).with_message(message);
    if let Some(t) = total {
        param = param.with_total(t as f64);
    }
    if let Err(e) = peer.notify_progress(param).await {
        tracing::debug!(error = %e, "progress not delivered");
    }
}
