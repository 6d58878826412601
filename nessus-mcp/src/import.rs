//! `import_scan`: turn an existing `.nessus` file into a completed task, through the
//! service's one import lifecycle (the same as `nessus-cli import`). When the request
//! carries `_meta.progressToken`, the bytes read are reported as `notifications/progress`
//! (the service counts them and sets the pace; this frontend only sends them).

use nessus_queue::service::{ImportRequest, ImportSource, Progress};
use rmcp::{RoleServer, service::RequestContext};

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
    let progress = token.as_ref().map(|_| Progress::new());
    let request = ImportRequest::new(source)
        .name(p.name)
        .progress(progress.clone());
    let import = app.service().import(principal, request);
    let imported = match (token, progress) {
        (Some(token), Some(progress)) => {
            crate::progress::reporting(import, &ctx.peer, token, &progress, "bytes ingested").await
        }
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
