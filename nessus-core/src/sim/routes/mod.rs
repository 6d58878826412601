//! The simulator's HTTP surface: Nessus endpoints, the auth/fault guard, and `/_sim/*`.

mod admin;
mod exports;
mod guard;
mod scans;
mod server;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use rand::Rng;
use serde_json::{Value, json};

use super::state::{Scan, SimState};

/// Scan templates as recorded from a real server (the same UUIDs on-prem).
const TEMPLATES: &str =
    include_str!("../../../../corpus/api/pytenable-tio__GET_editor_scan_templates.json");
const POLICY_TEMPLATES: &str =
    include_str!("../../../../corpus/api/pytenable-tio__GET_editor_policy_templates.json");

pub(crate) struct Shared {
    pub(crate) state: Mutex<SimState>,
    pub(crate) drop_connections: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

type S = State<Arc<Shared>>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let api = Router::new()
        .route("/server/status", get(server::server_status))
        .route("/server/properties", get(server::server_properties))
        .route(
            "/session",
            post(server::login)
                .get(server::session_info)
                .delete(server::logout),
        )
        .route("/nessus6.js", get(server::nessus6_js))
        .route(
            "/editor/scan/templates",
            get(|| async { json_raw(TEMPLATES) }),
        )
        .route(
            "/editor/policy/templates",
            get(|| async { json_raw(POLICY_TEMPLATES) }),
        )
        .route("/policies", get(server::policies))
        .route("/folders", get(server::folders).post(server::create_folder))
        .route("/scanners", get(server::scanners))
        .route("/scans", get(scans::list_scans).post(scans::create_scan))
        .route(
            "/scans/{id}",
            get(scans::scan_details)
                .delete(scans::delete_scan)
                .put(scans::configure_scan),
        )
        .route("/scans/{id}/launch", post(scans::launch))
        .route("/scans/{id}/{action}", post(scans::control))
        .route("/scans/{id}/hosts/{host_id}", get(scans::host_details))
        .route("/scans/{id}/export", post(exports::export_request))
        .route(
            "/scans/{id}/export/{file}/status",
            get(exports::export_status_by_file),
        )
        .route(
            "/scans/{id}/export/{file}/download",
            get(exports::download_by_file),
        )
        .route(
            "/tokens/{token}/status",
            get(exports::export_status_by_token),
        )
        .route("/tokens/{token}/download", get(exports::download_by_token))
        .route(
            "/scans/exports/{token}/download",
            get(exports::download_by_token),
        )
        .fallback(not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), guard::guard));
    let admin = Router::new()
        .route(
            "/_sim/faults",
            get(admin::get_faults).put(admin::put_faults),
        )
        .route("/_sim/counters", get(admin::get_counters))
        .route("/_sim/scans", get(admin::get_scans))
        .route("/_sim/expire-sessions", post(admin::expire_sessions))
        .route("/_sim/ui-token", put(admin::set_ui_token));
    admin
        .merge(api)
        .layer(middleware::from_fn_with_state(shared.clone(), date_header))
        .with_state(shared)
}

/// Every response carries a `Date` (as Nessus's does), from the simulator's own clock:
/// the real one moved by the `clock_skew_secs` fault.
async fn date_header(State(shared): S, req: Request, next: Next) -> Response {
    let skew = shared.lock().faults.clock_skew_secs;
    let mut resp = next.run(req).await;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    // HTTP dates span 1970..=9999; a skew past either end (only a test would ask for
    // one) is clamped rather than allowed to panic the formatter.
    const LAST_HTTP_DATE: i128 = 253_402_300_799;
    let secs = (i128::from(now) + i128::from(skew)).clamp(0, LAST_HTTP_DATE);
    let clock = SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64);
    if let Ok(value) = HeaderValue::from_str(&httpdate::fmt_http_date(clock)) {
        resp.headers_mut().insert(header::DATE, value);
    }
    resp
}

// ----- helpers -----

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn json_raw(body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The only recorded body for a missing scan (Tenable.io); the on-prem text is unknown.
fn not_found_scan() -> Response {
    error(StatusCode::NOT_FOUND, "Scan not found")
}

/// The clock a scan's status is computed on, read once per request.
#[derive(Clone, Copy)]
struct Timing {
    now: Instant,
    duration: Duration,
    transition: Duration,
}

impl Timing {
    fn status(self, scan: &mut Scan) -> (&'static str, u64) {
        scan.status(self.now, self.duration, self.transition)
    }

    /// Whether the scan's latest run is still going (launch and delete refuse then).
    fn is_running(self, scan: &mut Scan) -> bool {
        scan.runs
            .last_mut()
            .is_some_and(|r| r.is_active(self.now, self.duration, self.transition))
    }
}

/// Scan `id` with this request's timing: the lookup every `/scans/{id}` route starts
/// with. Handlers return `Result<Response, Response>`, so a missing scan is one
/// `.ok_or_else(not_found_scan)?`.
fn find_scan(st: &mut SimState, id: u64) -> Option<(&mut Scan, Timing)> {
    let timing = Timing {
        now: Instant::now(),
        duration: st.settings.scan_duration,
        transition: st.transition(),
    };
    st.scans.get_mut(&id).map(|scan| (scan, timing))
}

async fn not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The requested method is not allowed for this URL",
    )
}

/// The JSON body; an empty body counts as `{}` (clients send none for launch/stop).
fn parse_json(body: &Bytes) -> Option<Value> {
    if body.is_empty() {
        return Some(json!({}));
    }
    serde_json::from_slice(body).ok()
}

fn bad_json() -> Response {
    error(StatusCode::BAD_REQUEST, "Invalid JSON body")
}

/// A random lowercase hex string of `n` characters.
fn hex_token(n: usize) -> String {
    let mut bytes = vec![0u8; n.div_ceil(2)];
    rand::rng().fill(&mut bytes[..]);
    let mut s = hex::encode(bytes);
    s.truncate(n);
    s
}
