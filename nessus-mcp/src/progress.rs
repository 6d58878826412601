//! MCP `notifications/progress` for long calls (an import, an export plan): the service
//! counts the work in a [`Progress`] handle and sets the pace; this module only sends.

use nessus_queue::service::{PROGRESS_INTERVAL, Progress};
use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
};

/// Awaits `work`, sending a progress notification every [`PROGRESS_INTERVAL`] in which
/// `progress` moved (`what` names the unit, e.g. "bytes ingested"). A notification that
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
    loop {
        tokio::select! {
            done = &mut work => return done,
            _ = tick.tick() => {
                let done = progress.done();
                if done == last {
                    continue;
                }
                last = done;
                let total = progress.total();
                let message = match total {
                    Some(t) => format!("{done} of {t} {what}"),
                    None => format!("{done} {what}"),
                };
                // u64 -> f64 is exact below 2^53.
                let mut param = ProgressNotificationParam::new(token.clone(), done as f64)
                    .with_message(message);
                if let Some(t) = total {
                    param = param.with_total(t as f64);
                }
                if let Err(e) = peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "progress not delivered");
                }
            }
        }
    }
}
