//! `/_sim/*`: faults, counters, scans, session expiry and UI-token rotation.

use std::sync::atomic::Ordering;

use super::S;
use crate::sim::faults::{Counters, Faults, ScanRecord};
use axum::{Json, extract::State};
use serde::Deserialize;
use serde_json::{Value, json};

// ----- admin -----

pub(super) async fn get_faults(State(shared): S) -> Json<Faults> {
    Json(shared.lock().faults.clone())
}

pub(super) async fn put_faults(State(shared): S, Json(faults): Json<Faults>) -> Json<Faults> {
    shared
        .drop_connections
        .store(faults.drop_connections, Ordering::SeqCst);
    shared.lock().faults = faults.clone();
    Json(faults)
}

pub(super) async fn get_counters(State(shared): S) -> Json<Counters> {
    Json(shared.lock().counters.clone())
}

pub(super) async fn get_scans(State(shared): S) -> Json<Vec<ScanRecord>> {
    Json(shared.lock().scan_records())
}

pub(super) async fn expire_sessions(State(shared): S) -> Json<Value> {
    let mut st = shared.lock();
    let n = st.sessions.len();
    st.sessions.clear();
    Json(json!({"expired": n}))
}

#[derive(Deserialize)]
pub(super) struct UiToken {
    token: String,
}

pub(super) async fn set_ui_token(State(shared): S, Json(t): Json<UiToken>) -> Json<Value> {
    shared.lock().settings.ui_token = t.token.clone();
    Json(json!({"token": t.token}))
}
