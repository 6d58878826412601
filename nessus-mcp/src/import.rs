//! `import_scan`: turn an existing `.nessus` file into a completed task, through the
//! service's one import lifecycle (the same as `nessus-cli import`). When the request
//! carries `_meta.progressToken`, the bytes read are reported as `notifications/progress`
//! (the service counts them and sets the pace; this frontend only sends them).

use nessus_queue::service::{
    ImportProgress, ImportRequest, ImportSource, Imported, PROGRESS_INTERVAL,
};
use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
    service::RequestContext,
};

use crate::{
    app::App,
    auth::Principal,
    dto::{ImportResult, ImportScan},
    errors::ToolError,
    ops::service_error,
};

pub(crate) async fn import_scan(
    app: &App,
    principal: &Principal,
    p: ImportScan,
    ctx: &RequestContext<RoleServer>,
) -> Result<ImportResult, ToolError> {
    let source = match (p.path, p.content) {
        (Some(path), None) => ImportSource::Confined {
            dir: app.import_dir().to_owned(),
            requested: path,
        },
        (None, Some(content)) => ImportSource::Inline(content.into_bytes()),
        _ => {
            return Err(ToolError::invalid(
                "arguments",
                "give exactly one of path or content",
            ));
        }
    };
    let token = ctx.meta.get_progress_token();
    let progress = token.as_ref().map(|_| ImportProgress::new());
    let request = ImportRequest::new(source)
        .name(p.name)
        .progress(progress.clone());
    let import = app.service().import(principal, request);
    let imported = match (token, progress) {
        (Some(token), Some(progress)) => reporting(import, &ctx.peer, token, &progress).await,
        _ => import.await,
    };
    let done = imported.map_err(service_error)?.task;
    Ok(ImportResult {
        imported: done.is_imported(),
        message: format!(
            "Imported; call get_scan_results with task_id \"{}\", or diff_scans against another scan.",
            done.task_id
        ),
        task_id: done.task_id,
        status: done.status.to_string(),
        scanner_pool: done.pool,
        name: done.name,
        targets: done.targets,
        results_summary: done.results_summary,
    })
}

/// Awaits `import`, sending a progress notification every [`PROGRESS_INTERVAL`] in
/// which the byte count moved. A notification that cannot be sent (the client went
/// away) does not fail the import: the task is recorded either way.
async fn reporting(
    import: impl Future<Output = nessus_queue::Result<Imported>>,
    peer: &Peer<RoleServer>,
    token: ProgressToken,
    progress: &ImportProgress,
) -> nessus_queue::Result<Imported> {
    let mut import = std::pin::pin!(import);
    let mut tick = tokio::time::interval(PROGRESS_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate: nothing has been read yet.
    tick.tick().await;
    let mut last = 0;
    loop {
        tokio::select! {
            done = &mut import => return done,
            _ = tick.tick() => {
                let read = progress.bytes_read();
                if read == last {
                    continue;
                }
                last = read;
                let total = progress.total();
                let message = match total {
                    Some(t) => format!("ingested {read} of {t} bytes"),
                    None => format!("ingested {read} bytes"),
                };
                // u64 -> f64 is exact below 2^53 bytes (8 PiB).
                let mut param = ProgressNotificationParam::new(token.clone(), read as f64)
                    .with_message(message);
                if let Some(t) = total {
                    param = param.with_total(t as f64);
                }
                if let Err(e) = peer.notify_progress(param).await {
                    tracing::debug!(error = %e, "import progress not delivered");
                }
            }
        }
    }
}
