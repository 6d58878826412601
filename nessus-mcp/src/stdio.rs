//! The stdio transport: one client, on our stdin/stdout.

use std::sync::Arc;

use rmcp::ServiceExt;

use crate::{Error, app::App, auth::Principal, server::NessusMcp};

/// Serve MCP over stdin/stdout until the client closes stdin or the app's
/// shutdown token fires. Logs must go to stderr (see [`crate::init_logging`]).
pub async fn serve_stdio(app: Arc<App>) -> Result<(), Error> {
    let stop = app.shutdown_token().clone();
    let handler = NessusMcp::new(app, Principal::local());
    let running = handler
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| Error::Serve(Box::new(e)))?;
    let cancel = running.cancellation_token();
    tokio::select! {
        res = running.waiting() => { res.map_err(|e| Error::Serve(Box::new(e)))?; }
        () = stop.cancelled() => { cancel.cancel(); }
    }
    Ok(())
}
