//! Server, session, web-UI bundle and catalog endpoints.

use std::time::Instant;

use super::{S, bad_json, error, guard::PublicView, hex_token, parse_json};
use crate::sim::state::{MAIN_FOLDER, SimState, now_epoch};
use axum::{
    Extension, Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

// ----- server and session -----

pub(super) async fn server_status() -> Response {
    Json(json!({"code": 200, "status": "ready", "progress": null, "must_destroy_session": false}))
        .into_response()
}

/// The keys of `GET /server/properties` answered without credentials: what a login page
/// shows (product and version, the login banner), nothing about the licence, the
/// installation (`server_uuid`), plugins, users or features.
///
/// Sources: nessus-api.md §5.2 says an unauthenticated call "returns less" without listing
/// it ([?]); the predecessor's infrastructure tests, run against real scanners, expect 200
/// with `nessus_type` (seed-spec §15, suite 01); the login page shows product, version and
/// banner; TNS-2014-05 (CVE-2014-4980) fixed an information disclosure through an
/// unauthenticated `/server/properties`, so the full body is not public. The corpus recording
/// (`pytenable-tio__GET_server_properties.json`, authenticated, cloud) gives the key names,
/// `login_banner` among them. When a source lists the real subset, this is the one place
/// to change.
pub(super) const PUBLIC_PROPERTIES: &[&str] = &[
    "nessus_type",
    "server_version",
    "server_build",
    "nessus_ui_version",
    "nessus_ui_build",
    "login_banner",
];

pub(super) async fn server_properties(
    State(shared): S,
    public: Option<Extension<PublicView>>,
) -> Response {
    let full = full_properties(&shared.lock());
    if public.is_none() {
        return Json(full).into_response();
    }
    let public: serde_json::Map<String, Value> = PUBLIC_PROPERTIES
        .iter()
        .filter_map(|k| full.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    Json(Value::Object(public)).into_response()
}

fn full_properties(st: &SimState) -> Value {
    let scan_api = !st.faults.scan_api_disabled;
    let features = json!({
        "api": true, "scan_api": scan_api, "policies": true, "report": true, "users": scan_api,
        "vpr": false, "folders": true, "local_scanner": true, "plugin_rules": true,
        "remote_link": false, "cluster": false, "offline": false, "logs": false, "smtp": true
    });
    let (kind, name) = if scan_api {
        ("manager", "Nessus Manager")
    } else {
        ("pro", "Nessus Professional")
    };
    let idle = st
        .settings
        .idle_timeout
        .map_or(30, |d| (d.as_secs() / 60).max(1));
    json!({
        "nessus_type": name, "server_version": "10.8.3", "server_build": "20010",
        "nessus_ui_version": "10.8.3", "nessus_ui_build": "20010",
        "plugin_set": "202411201234", "loaded_plugin_set": "202411201234",
        "server_uuid": "6f1bd2a3-5b1c-4d5e-8f7a-0c1d2e3f4a5b6c7d8e9f0a1b2c3d",
        "platform": "LINUX", "idle_timeout": idle.to_string(), "is_offline": false,
        "restarting": false,
        "license": {
            "type": kind, "name": name, "restricted": !scan_api, "ips": if scan_api { -1 } else { 16 },
            "mode": if scan_api { 1 } else { 3 }, "expiration_date": 1893456000i64,
            "agents": 0, "agents_used": 0, "scanners": 0, "scanners_used": 0,
            "features": features
        },
        "features": features,
        "capabilities": {"report_email_config": true, "scan_vulnerability_groups": true,
                         "scan_vulnerability_groups_mixed": true},
        "update": {"href": null, "new_version": 0, "restart": 0},
        "notifications": [], "feed_error": 0, "template_version": "20010",
        "users_count": 1, "used_ip_count": 0, "java_installed": false, "login_banner": null
    })
}

#[derive(Deserialize)]
pub(super) struct LoginBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn login(State(shared): S, body: Bytes) -> Response {
    let Ok(b) = serde_json::from_slice::<LoginBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Invalid JSON body");
    };
    let mut st = shared.lock();
    let ok = match &st.settings.login {
        Some((u, p)) => &b.username == u && &b.password == p,
        None => !b.username.is_empty() && !b.password.is_empty(),
    };
    if !ok {
        st.counters.unauthorized += 1;
        return error(StatusCode::UNAUTHORIZED, "Invalid Credentials");
    }
    let token = hex_token(48);
    st.sessions.insert(
        token.clone(),
        crate::sim::state::Session {
            username: b.username,
            last_used: Instant::now(),
        },
    );
    st.counters.logins += 1;
    Json(json!({"token": token, "md5sum_wizard_templates": hex_token(32), "md5sum_tenable_links": hex_token(32)}))
        .into_response()
}

pub(super) async fn session_info(State(shared): S, headers: HeaderMap) -> Response {
    let st = shared.lock();
    let username = headers
        .get("x-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.trim().strip_prefix("token="))
        .and_then(|t| st.sessions.get(t.trim()))
        .map_or_else(|| "admin".to_owned(), |s| s.username.clone());
    Json(json!({
        "id": 1, "username": username, "name": username, "email": "", "type": "local",
        "permissions": 128, "lastlogin": now_epoch(), "lockout": 0, "container_id": 0, "groups": null
    }))
    .into_response()
}

pub(super) async fn logout(State(shared): S, headers: HeaderMap) -> Response {
    let token = headers
        .get("x-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.trim().strip_prefix("token="))
        .map(|t| t.trim().to_owned());
    match token {
        Some(t) if shared.lock().sessions.remove(&t).is_some() => StatusCode::OK.into_response(),
        _ => error(StatusCode::UNAUTHORIZED, "No session exists"),
    }
}

pub(super) async fn nessus6_js(State(shared): S) -> Response {
    let token = shared.lock().settings.ui_token.clone();
    let js = format!(
        "!function(){{var e=[{{key:\"getCookie\",value:function(){{return document.cookie}}}},\
         {{key:\"getApiToken\",value:function(){{return\"{token}\"}}}},\
         {{key:\"getVersion\",value:function(){{return\"10.8.3\"}}}}];window._u=e}}();\n"
    );
    ([(header::CONTENT_TYPE, "application/javascript")], js).into_response()
}

// ----- catalog -----

pub(super) async fn policies() -> Response {
    Json(json!({"policies": [{
        "id": 4, "template_uuid": "ab4bacd2-05f6-425c-9d79-3ba3940ad1c24e51e1f403febe40",
        "name": "Simulated policy", "description": null, "owner": "admin", "owner_id": 1,
        "shared": 0, "user_permissions": 128, "creation_date": 1700000000,
        "last_modification_date": 1700000000, "visibility": "private", "no_target": "false"
    }]}))
    .into_response()
}

pub(super) fn folder_json(st: &SimState) -> Value {
    Value::Array(
        st.folders
            .iter()
            .map(|(id, name, kind)| {
                json!({"id": id, "name": name, "type": kind,
                       "default_tag": u8::from(*id == MAIN_FOLDER),
                       "custom": u8::from(*kind == "custom"), "unread_count": null})
            })
            .collect(),
    )
}

pub(super) async fn folders(State(shared): S) -> Response {
    Json(json!({"folders": folder_json(&shared.lock())})).into_response()
}

pub(super) async fn create_folder(State(shared): S, body: Bytes) -> Response {
    let Some(v) = parse_json(&body) else {
        return bad_json();
    };
    let Some(name) = v
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "Folder name is invalid");
    };
    let mut st = shared.lock();
    let id = st.folders.iter().map(|f| f.0).max().unwrap_or(MAIN_FOLDER) + 1;
    st.folders.push((id, name.to_owned(), "custom"));
    Json(json!({"id": id})).into_response()
}

pub(super) async fn scanners() -> Response {
    Json(json!({"scanners": [{
        "id": 1, "uuid": "00000000-0000-0000-0000-00000000000000000000000000001",
        "name": "Local Scanner", "type": "local", "status": "on", "scan_count": 0,
        "engine_version": "10.8.3", "ui_version": "10.8.3", "platform": "LINUX",
        "loaded_plugin_set": "202411201234", "registration_code": null, "owner": "system",
        "license": {"type": "local"}
    }]}))
    .into_response()
}
