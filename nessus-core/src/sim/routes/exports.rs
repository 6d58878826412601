//! Export request, status and download (file-id and token variants).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use super::{S, Shared, bad_json, error, find_scan, hex_token, not_found_scan, parse_json};
use crate::sim::state::{Export, ExportReport, SimState};
use axum::{
    Json,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use rand::Rng;
use serde_json::{Value, json};

use super::scans::HistoryQuery;

// ----- exports -----

pub(super) async fn export_request(
    State(shared): S,
    Path(id): Path<u64>,
    Query(q): Query<HistoryQuery>,
    body: Bytes,
) -> Response {
    let Some(v) = parse_json(&body) else {
        return bad_json();
    };
    let format = v
        .get("format")
        .and_then(Value::as_str)
        .unwrap_or("nessus")
        .to_owned();
    if !matches!(format.as_str(), "nessus" | "csv" | "html" | "pdf" | "db") {
        return error(StatusCode::BAD_REQUEST, "Invalid 'format' field");
    }
    let chapters = v
        .get("chapters")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let (results, name, text_targets, targets) = {
        let mut st = shared.lock();
        let Some((scan, timing)) = find_scan(&mut st, id) else {
            return not_found_scan();
        };
        if let Some(h) = q.history_id
            && !scan.runs.iter().any(|r| r.history_id == h)
        {
            return not_found_scan();
        }
        let (status, _) = timing.status(scan);
        if q.history_id.is_none()
            && !matches!(status, "completed" | "canceled" | "aborted" | "empty")
        {
            return error(StatusCode::CONFLICT, "Can not export running scans");
        }
        let targets = if status == "empty" {
            Vec::new()
        } else {
            scan.targets.clone()
        };
        (
            scan.results.clone(),
            scan.name.clone(),
            scan.text_targets.clone(),
            targets,
        )
    };
    let report = ExportReport {
        results,
        format,
        chapters,
        name,
        text_targets,
        targets,
    };
    let mut st = shared.lock();
    let file = loop {
        let f = rand::rng().random_range(10_000_000u64..2_000_000_000);
        if !st.exports.contains_key(&f) {
            break f;
        }
    };
    let token = hex_token(64);
    let delay = st
        .faults
        .export_delay_ms
        .map_or(st.settings.export_delay, Duration::from_millis);
    let failed = st.faults.export_fail;
    forget_old_exports(&mut st.exports);
    st.exports.insert(
        file,
        Export {
            scan_id: id,
            token: token.clone(),
            report,
            ready_at: Instant::now() + delay,
            failed,
        },
    );
    st.counters.exports_requested += 1;
    Json(json!({"file": file, "token": token})).into_response()
}

/// Export files kept at most. Nessus deletes export files after a while too; an entry
/// is small (the report renders at download), but without a bound they add up.
const KEPT_EXPORTS: usize = 1024;

/// Makes room for one more export by dropping the oldest beyond [`KEPT_EXPORTS`]; a
/// client that still asks for one gets Nessus's own 404 and exports again.
fn forget_old_exports(exports: &mut HashMap<u64, Export>) {
    while exports.len() >= KEPT_EXPORTS {
        let Some(oldest) = exports
            .iter()
            .min_by_key(|(_, e)| e.ready_at)
            .map(|(file, _)| *file)
        else {
            break;
        };
        exports.remove(&oldest);
    }
}

pub(super) fn export_status(export: Option<&Export>) -> Response {
    match export {
        None => error(StatusCode::NOT_FOUND, "The requested file was not found"),
        Some(e) if Instant::now() < e.ready_at => {
            Json(json!({"status": "loading"})).into_response()
        }
        Some(e) if e.failed => Json(json!({"status": "error"})).into_response(),
        Some(_) => Json(json!({"status": "ready"})).into_response(),
    }
}

pub(super) async fn export_status_by_file(
    State(shared): S,
    Path((id, file)): Path<(u64, String)>,
) -> Response {
    let st = shared.lock();
    export_status(find_by_file(&st, id, &file))
}

pub(super) async fn export_status_by_token(
    State(shared): S,
    Path(token): Path<String>,
) -> Response {
    let st = shared.lock();
    export_status(st.exports.values().find(|e| e.token == token))
}

pub(super) fn find_by_file<'a>(st: &'a SimState, id: u64, file: &str) -> Option<&'a Export> {
    file.parse::<u64>()
        .ok()
        .and_then(|f| st.exports.get(&f))
        .filter(|e| e.scan_id == id)
}

pub(super) async fn download_by_file(
    State(shared): S,
    Path((id, file)): Path<(u64, String)>,
) -> Response {
    let found = {
        let st = shared.lock();
        find_by_file(&st, id, &file).cloned()
    };
    download(shared, found)
}

pub(super) async fn download_by_token(State(shared): S, Path(token): Path<String>) -> Response {
    let found = {
        let st = shared.lock();
        st.exports.values().find(|e| e.token == token).cloned()
    };
    download(shared, found)
}

pub(super) fn download(shared: Arc<Shared>, export: Option<Export>) -> Response {
    let Some(e) = export.filter(|e| !e.failed && Instant::now() >= e.ready_at) else {
        return error(StatusCode::NOT_FOUND, "The requested file was not found");
    };
    let (name, rate) = {
        let mut st = shared.lock();
        st.counters.downloads += 1;
        let name = st
            .scans
            .get(&e.scan_id)
            .map_or_else(|| "scan".to_owned(), |s| s.name.clone());
        (name, st.faults.download_bytes_per_sec)
    };
    // Rendering a big report takes a while: never under the lock.
    let bytes = Arc::new(e.report.render());
    let len = bytes.len();
    let chunk = 64 * 1024;
    let stream = futures::stream::unfold(0usize, move |pos| {
        let bytes = bytes.clone();
        async move {
            if pos >= bytes.len() {
                return None;
            }
            let end = (pos + chunk).min(bytes.len());
            if rate > 0 {
                let secs = (end - pos) as f64 / rate as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
            }
            Some((
                Ok::<Bytes, std::io::Error>(Bytes::copy_from_slice(&bytes[pos..end])),
                end,
            ))
        }
    });
    let safe_name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{safe_name}\""),
        )
        .header(header::CONTENT_LENGTH, len)
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
