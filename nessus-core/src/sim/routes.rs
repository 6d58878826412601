//! The simulator's HTTP surface: Nessus endpoints, the auth/fault guard, and `/_sim/*`.

use std::{
    sync::{Arc, Mutex, MutexGuard, atomic::Ordering},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{ConnectInfo, Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{
    ConnMeta,
    faults::{Counters, Faults, GateMode},
    state::{Export, MAIN_FOLDER, Run, Scan, SimState, digest, now_epoch},
};

/// Scan templates as recorded from a real server (the same UUIDs on-prem).
const TEMPLATES: &str =
    include_str!("../../../corpus/api/pytenable-tio__GET_editor_scan_templates.json");
const POLICY_TEMPLATES: &str =
    include_str!("../../../corpus/api/pytenable-tio__GET_editor_policy_templates.json");

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
        .route("/server/status", get(server_status))
        .route("/server/properties", get(server_properties))
        .route("/session", post(login).get(session_info).delete(logout))
        .route("/nessus6.js", get(nessus6_js))
        .route(
            "/editor/scan/templates",
            get(|| async { json_raw(TEMPLATES) }),
        )
        .route(
            "/editor/policy/templates",
            get(|| async { json_raw(POLICY_TEMPLATES) }),
        )
        .route("/policies", get(policies))
        .route("/folders", get(folders).post(create_folder))
        .route("/scanners", get(scanners))
        .route("/scans", get(list_scans).post(create_scan))
        .route(
            "/scans/{id}",
            get(scan_details).delete(delete_scan).put(configure_scan),
        )
        .route("/scans/{id}/launch", post(launch))
        .route("/scans/{id}/{action}", post(control))
        .route("/scans/{id}/hosts/{host_id}", get(host_details))
        .route("/scans/{id}/export", post(export_request))
        .route(
            "/scans/{id}/export/{file}/status",
            get(export_status_by_file),
        )
        .route("/scans/{id}/export/{file}/download", get(download_by_file))
        .route("/tokens/{token}/status", get(export_status_by_token))
        .route("/tokens/{token}/download", get(download_by_token))
        .route("/scans/exports/{token}/download", get(download_by_token))
        .fallback(not_allowed)
        .layer(middleware::from_fn_with_state(shared.clone(), guard));
    let admin = Router::new()
        .route("/_sim/faults", get(get_faults).put(put_faults))
        .route("/_sim/counters", get(get_counters))
        .route("/_sim/expire-sessions", post(expire_sessions))
        .route("/_sim/ui-token", put(set_ui_token));
    admin.merge(api).with_state(shared)
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

/// Who made an authenticated request.
#[derive(Clone)]
struct Principal {
    session: bool,
    ui_token_ok: bool,
}

fn is_public(method: &Method, path: &str) -> bool {
    path == "/server/status"
        || path == "/nessus6.js"
        || (method == Method::POST && path == "/session")
}

/// Scan-control calls refused with 412 on `scan_api: false` licences.
fn is_gated(method: &Method, path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, parts.as_slice()) {
        (&Method::POST, ["scans"]) => true,
        (&Method::PUT | &Method::DELETE, ["scans", _]) => true,
        (&Method::POST, ["scans", _, action]) => {
            matches!(*action, "launch" | "stop" | "pause" | "resume" | "kill")
        }
        _ => false,
    }
}

// ----- the guard: faults, then auth, then the licence gate -----

enum Injected {
    Drop,
    Status(StatusCode, Option<u64>),
}

async fn guard(State(shared): S, req: Request, next: Next) -> Response {
    let conn = req.extensions().get::<ConnectInfo<ConnMeta>>().cloned();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let (delay, injected) = {
        let mut st = shared.lock();
        st.counters.requests += 1;
        let f = &mut st.faults;
        let applies = f.applies(method.as_str(), &path);
        let mut delay = Duration::ZERO;
        let mut injected = None;
        if applies {
            delay = Duration::from_millis(f.latency_ms);
            if f.jitter_ms > 0 {
                delay += Duration::from_millis(rand::rng().random_range(0..=f.jitter_ms));
            }
            let fail_status = StatusCode::from_u16(f.fail_status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            if f.drop_next > 0 {
                f.drop_next -= 1;
                injected = Some(Injected::Drop);
            } else if f.rate_limit_next > 0 {
                f.rate_limit_next -= 1;
                injected = Some(Injected::Status(
                    StatusCode::TOO_MANY_REQUESTS,
                    Some(f.retry_after_secs.unwrap_or(1)),
                ));
            } else if f.fail_next > 0 {
                f.fail_next -= 1;
                injected = Some(Injected::Status(fail_status, f.retry_after_secs));
            } else if f.error_rate > 0.0 && rand::rng().random_bool(f.error_rate.clamp(0.0, 1.0)) {
                injected = Some(Injected::Status(fail_status, f.retry_after_secs));
            }
        }
        match &injected {
            Some(Injected::Drop) => st.counters.dropped += 1,
            Some(Injected::Status(s, _)) if *s == StatusCode::TOO_MANY_REQUESTS => {
                st.counters.rate_limited += 1
            }
            Some(Injected::Status(..)) => st.counters.injected_errors += 1,
            None => {}
        }
        (delay, injected)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match injected {
        Some(Injected::Drop) => return drop_connection(conn),
        Some(Injected::Status(status, retry_after)) => {
            let mut resp = error(status, "Simulated failure");
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        None => {}
    }
    if is_public(&method, &path) {
        return next.run(req).await;
    }
    let principal = match authenticate(&shared, req.headers()) {
        Ok(p) => p,
        Err(message) => {
            shared.lock().counters.unauthorized += 1;
            return error(StatusCode::UNAUTHORIZED, message);
        }
    };
    let gate = {
        let st = shared.lock();
        (st.faults.scan_api_disabled
            && is_gated(&method, &path)
            && !(principal.session && principal.ui_token_ok))
            .then_some(st.faults.gate_mode)
    };
    if let Some(mode) = gate {
        shared.lock().counters.gated += 1;
        return match mode {
            GateMode::Clean => error(StatusCode::PRECONDITION_FAILED, "API is not available"),
            GateMode::DropAfterHeaders => headers_then_drop(),
            GateMode::DropNoResponse => drop_connection(conn),
        };
    }
    next.run(req).await
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> Result<Principal, &'static str> {
    let mut st = shared.lock();
    let ui_token_ok = headers
        .get("x-api-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case(&st.settings.ui_token));
    if let Some(keys) = headers.get("x-apikeys").and_then(|v| v.to_str().ok()) {
        let mut access = None;
        let mut secret = None;
        for part in keys.split(';') {
            if let Some((k, v)) = part.trim().split_once('=') {
                match k.trim() {
                    "accessKey" => access = Some(v.trim().to_owned()),
                    "secretKey" => secret = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        let ok = match (&st.settings.api_keys, access, secret) {
            (_, None, _) | (_, _, None) => false,
            (Some((a, s)), Some(ga), Some(gs)) => &ga == a && &gs == s,
            (None, Some(ga), Some(gs)) => !ga.is_empty() && !gs.is_empty(),
        };
        return if ok {
            Ok(Principal {
                session: false,
                ui_token_ok,
            })
        } else {
            Err("Invalid Credentials")
        };
    }
    if let Some(cookie) = headers.get("x-cookie").and_then(|v| v.to_str().ok()) {
        let token = cookie
            .trim()
            .strip_prefix("token=")
            .unwrap_or("")
            .trim()
            .to_owned();
        let idle = st.settings.idle_timeout;
        let now = Instant::now();
        return match st.sessions.get_mut(&token) {
            Some(s) if idle.is_none_or(|i| now - s.last_used <= i) => {
                s.last_used = now;
                Ok(Principal {
                    session: true,
                    ui_token_ok,
                })
            }
            Some(_) => {
                st.sessions.remove(&token);
                Err("Invalid Credentials")
            }
            None => Err("Invalid Credentials"),
        };
    }
    Err("You need to log in to perform this request")
}

/// Closes the request's connection without answering.
fn drop_connection(conn: Option<ConnectInfo<ConnMeta>>) -> Response {
    if let Some(ConnectInfo(meta)) = conn {
        meta.kill.store(true, Ordering::SeqCst);
    }
    // The response is never delivered: the connection fails on its first write.
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// A 412 status line and headers announcing a 32-byte body, then a broken connection.
fn headers_then_drop() -> Response {
    let body = Body::from_stream(futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated drop after the 412 headers",
        ))
    }));
    Response::builder()
        .status(StatusCode::PRECONDITION_FAILED)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, "32")
        .header(header::CONNECTION, "close")
        .body(body)
        .unwrap_or_else(|_| StatusCode::PRECONDITION_FAILED.into_response())
}

// ----- server and session -----

async fn server_status() -> Response {
    Json(json!({"code": 200, "status": "ready", "progress": null, "must_destroy_session": false}))
        .into_response()
}

async fn server_properties(State(shared): S) -> Response {
    let st = shared.lock();
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
    Json(json!({
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
        "users_count": 1, "used_ip_count": 0, "java_installed": false
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login(State(shared): S, body: Bytes) -> Response {
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
        super::state::Session {
            username: b.username,
            last_used: Instant::now(),
        },
    );
    st.counters.logins += 1;
    Json(json!({"token": token, "md5sum_wizard_templates": hex_token(32), "md5sum_tenable_links": hex_token(32)}))
        .into_response()
}

async fn session_info(State(shared): S, headers: HeaderMap) -> Response {
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

async fn logout(State(shared): S, headers: HeaderMap) -> Response {
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

async fn nessus6_js(State(shared): S) -> Response {
    let token = shared.lock().settings.ui_token.clone();
    let js = format!(
        "!function(){{var e=[{{key:\"getCookie\",value:function(){{return document.cookie}}}},\
         {{key:\"getApiToken\",value:function(){{return\"{token}\"}}}},\
         {{key:\"getVersion\",value:function(){{return\"10.8.3\"}}}}];window._u=e}}();\n"
    );
    ([(header::CONTENT_TYPE, "application/javascript")], js).into_response()
}

// ----- catalog -----

async fn policies() -> Response {
    Json(json!({"policies": [{
        "id": 4, "template_uuid": "ab4bacd2-05f6-425c-9d79-3ba3940ad1c24e51e1f403febe40",
        "name": "Simulated policy", "description": null, "owner": "admin", "owner_id": 1,
        "shared": 0, "user_permissions": 128, "creation_date": 1700000000,
        "last_modification_date": 1700000000, "visibility": "private", "no_target": "false"
    }]}))
    .into_response()
}

fn folder_json(st: &SimState) -> Value {
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

async fn folders(State(shared): S) -> Response {
    Json(json!({"folders": folder_json(&shared.lock())})).into_response()
}

async fn create_folder(State(shared): S, body: Bytes) -> Response {
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

async fn scanners() -> Response {
    Json(json!({"scanners": [{
        "id": 1, "uuid": "00000000-0000-0000-0000-00000000000000000000000000001",
        "name": "Local Scanner", "type": "local", "status": "on", "scan_count": 0,
        "engine_version": "10.8.3", "ui_version": "10.8.3", "platform": "LINUX",
        "loaded_plugin_set": "202411201234", "registration_code": null, "owner": "system",
        "license": {"type": "local"}
    }]}))
    .into_response()
}

// ----- scans -----

#[derive(Deserialize)]
struct ListQuery {
    folder_id: Option<u64>,
    last_modification_date: Option<i64>,
}

async fn list_scans(State(shared): S, Query(q): Query<ListQuery>) -> Response {
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let now = Instant::now();
    let mut scans = Vec::new();
    for scan in st.scans.values_mut() {
        if q.folder_id.is_some_and(|f| f != scan.folder_id)
            || q.last_modification_date.is_some_and(|d| scan.modified <= d)
        {
            continue;
        }
        let (status, _) = scan.status(now, duration, transition);
        let run = scan.runs.last();
        scans.push(json!({
            "id": scan.id, "uuid": run.map(|r| r.uuid.clone()), "name": scan.name,
            "owner": "admin", "folder_id": scan.folder_id, "type": run.map(|_| "local"),
            "status": status, "read": true, "shared": false, "user_permissions": 128,
            "enabled": false, "control": true, "live_results": 0,
            "creation_date": if run.is_some() { scan.created } else { 0 },
            "last_modification_date": if run.is_some() { scan.modified } else { 0 },
            "starttime": null, "rrules": null, "timezone": null
        }));
    }
    let scans = if scans.is_empty() {
        Value::Null
    } else {
        Value::Array(scans)
    };
    Json(json!({"folders": folder_json(&st), "scans": scans, "timestamp": now_epoch()}))
        .into_response()
}

fn template_title(uuid: &str) -> Option<String> {
    let v: Value = serde_json::from_str(TEMPLATES).ok()?;
    v["templates"]
        .as_array()?
        .iter()
        .find(|t| t["uuid"] == uuid)
        .and_then(|t| t["title"].as_str().map(str::to_owned))
}

/// Records the secrets of `credentials.add` by digest only.
fn record_credentials(st: &mut SimState, credentials: &Value) -> bool {
    let mut found = false;
    if let Some(add) = credentials.get("add").and_then(Value::as_object) {
        for types in add.values().filter_map(Value::as_object) {
            for list in types.values().filter_map(Value::as_array) {
                for cred in list.iter().filter_map(Value::as_object) {
                    found = true;
                    for key in ["password", "escalation_password", "private_key_passphrase"] {
                        if let Some(secret) = cred
                            .get(key)
                            .and_then(Value::as_str)
                            .filter(|s| !s.is_empty())
                        {
                            *st.secret_digests.entry(digest(secret)).or_default() += 1;
                        }
                    }
                }
            }
        }
    }
    found
}

async fn create_scan(State(shared): S, body: Bytes) -> Response {
    let Some(v) = parse_json(&body) else {
        return bad_json();
    };
    let Some(uuid) = v.get("uuid").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "Invalid 'uuid' field");
    };
    let Some(title) = template_title(uuid) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid 'uuid' field: template not found",
        );
    };
    let settings = v.get("settings").cloned().unwrap_or(Value::Null);
    let Some(name) = settings
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "Invalid 'name' field");
    };
    let text_targets = settings
        .get("text_targets")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if text_targets.trim().is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid 'text_targets' field: no targets",
        );
    }
    let mut st = shared.lock();
    let folder_id = match settings
        .get("folder_id")
        .and_then(|f| f.as_u64().or_else(|| f.as_str()?.parse().ok()))
    {
        None => MAIN_FOLDER,
        Some(f) if st.folders.iter().any(|x| x.0 == f) => f,
        Some(_) => return error(StatusCode::BAD_REQUEST, "Invalid 'folder_id' field"),
    };
    let has_credentials = v
        .get("credentials")
        .is_some_and(|c| record_credentials(&mut st, c));
    let id = st.next_scan_id;
    st.next_scan_id += 1;
    let results = st.results_for(id);
    let now = now_epoch();
    let description = settings
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let targets: Vec<String> = text_targets
        .split([',', '\n', ' ', '\t', '\r'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let scan = Scan {
        id,
        name: name.to_owned(),
        text_targets: text_targets.clone(),
        targets,
        folder_id,
        policy_title: title,
        created: now,
        modified: now,
        runs: Vec::new(),
        results,
    };
    st.counters.scans_created += 1;
    if has_credentials {
        st.counters.credentials_received += 1;
    }
    st.name_counters(name).created += 1;
    st.scans.insert(id, scan);
    let launch_now = settings
        .get("launch_now")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body = json!({"scan": {
        "id": id, "uuid": format!("template-{}", hex_token(52 - 9)), "name": name,
        "description": description, "custom_targets": text_targets, "policy_id": id + 1000,
        "scanner_id": 1, "tag_id": folder_id, "owner": "admin", "owner_id": 1,
        "enabled": false, "shared": 0, "user_permissions": 128, "default_permissions": 0,
        "type": "local", "emails": null, "notification_filter_type": "and",
        "notification_filters": null, "starttime": null, "rrules": null, "timezone": null,
        "creation_date": now, "last_modification_date": now
    }});
    if launch_now {
        start_run(&mut st, id, false);
    }
    Json(body).into_response()
}

async fn configure_scan(State(shared): S, Path(id): Path<u64>, body: Bytes) -> Response {
    let Some(v) = parse_json(&body) else {
        return bad_json();
    };
    let mut st = shared.lock();
    let folders: Vec<u64> = st.folders.iter().map(|f| f.0).collect();
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    let settings = v.get("settings").unwrap_or(&v);
    if let Some(f) = settings
        .get("folder_id")
        .and_then(Value::as_u64)
        .filter(|f| folders.contains(f))
    {
        scan.folder_id = f;
    }
    if let Some(n) = settings.get("name").and_then(Value::as_str) {
        n.clone_into(&mut scan.name);
    }
    scan.modified = now_epoch();
    Json(json!({"id": id, "name": scan.name})).into_response()
}

fn start_run(st: &mut SimState, id: u64, alt_targets: bool) -> Option<String> {
    let history_id = st.next_history_id;
    let scan = st.scans.get_mut(&id)?;
    let uuid = format!("{}-{}", uuid::Uuid::new_v4(), hex_token(15));
    scan.runs
        .push(Run::new(uuid.clone(), history_id, alt_targets));
    scan.modified = now_epoch();
    let name = scan.name.clone();
    st.next_history_id += 1;
    st.counters.scans_launched += 1;
    st.name_counters(&name).launched += 1;
    Some(uuid)
}

async fn launch(State(shared): S, Path(id): Path<u64>, body: Bytes) -> Response {
    let alt = parse_json(&body)
        .and_then(|v| v.get("alt_targets").cloned())
        .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()));
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    if scan
        .runs
        .last_mut()
        .is_some_and(|r| r.is_active(Instant::now(), duration, transition))
    {
        return error(StatusCode::CONFLICT, "Scan is already running");
    }
    match start_run(&mut st, id, alt) {
        Some(uuid) => Json(json!({"scan_uuid": uuid})).into_response(),
        None => not_found_scan(),
    }
}

async fn control(State(shared): S, Path((id, action)): Path<(u64, String)>) -> Response {
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let now = Instant::now();
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    let status = scan.status(now, duration, transition).0;
    let name = scan.name.clone();
    let Some(run) = scan.runs.last_mut() else {
        return error(StatusCode::CONFLICT, "Scan is not active");
    };
    match action.as_str() {
        "stop"
            if matches!(
                status,
                "pending" | "running" | "paused" | "pausing" | "resuming"
            ) =>
        {
            run.stop(now);
            st.counters.scans_stopped += 1;
            st.name_counters(&name).stopped += 1;
        }
        "pause" if matches!(status, "pending" | "running") => {
            run.pause(now);
            st.counters.scans_paused += 1;
        }
        "resume" if status == "paused" => {
            run.resume(now);
            st.counters.scans_resumed += 1;
        }
        "kill" if !matches!(status, "completed" | "canceled" | "aborted") => run.kill(),
        "stop" | "pause" | "resume" | "kill" => {
            return error(StatusCode::CONFLICT, "Scan is not active");
        }
        _ => return not_allowed_sync(),
    }
    scan_touch(&mut st, id);
    (StatusCode::OK, Json(json!({}))).into_response()
}

fn not_allowed_sync() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The requested method is not allowed for this URL",
    )
}

fn scan_touch(st: &mut SimState, id: u64) {
    if let Some(s) = st.scans.get_mut(&id) {
        s.modified = now_epoch();
    }
}

async fn delete_scan(State(shared): S, Path(id): Path<u64>) -> Response {
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    if scan
        .runs
        .last_mut()
        .is_some_and(|r| r.is_active(Instant::now(), duration, transition))
    {
        return error(
            StatusCode::CONFLICT,
            "Scan cannot be deleted while it is running",
        );
    }
    let name = scan.name.clone();
    st.scans.remove(&id);
    st.exports.retain(|_, e| e.scan_id != id);
    st.counters.scans_deleted += 1;
    st.name_counters(&name).deleted += 1;
    StatusCode::OK.into_response()
}

#[derive(Deserialize)]
struct HistoryQuery {
    history_id: Option<u64>,
}

fn severity_counts(items: &[super::corpus::Item], scale: u64) -> [u64; 5] {
    let mut c = [0u64; 5];
    for i in items {
        c[usize::from(i.severity.min(4))] += 1;
    }
    c.map(|n| n * scale / 100)
}

async fn scan_details(
    State(shared): S,
    Path(id): Path<u64>,
    Query(q): Query<HistoryQuery>,
) -> Response {
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    let (mut status, mut progress) = scan.status(Instant::now(), duration, transition);
    let run = match q.history_id {
        Some(h) => match scan.runs.iter().find(|r| r.history_id == h) {
            Some(r) => Some(r.clone()),
            None => return not_found_scan(),
        },
        None => scan.runs.last().cloned(),
    };
    if let (Some(h), Some(r)) = (q.history_id, &run)
        && scan.runs.last().is_some_and(|l| l.history_id != h)
    {
        // Older runs are finished.
        status = if r.end_epoch.is_some() {
            "completed"
        } else {
            "canceled"
        };
        progress = 100;
    }
    let mut hosts = Vec::new();
    let mut vulns: std::collections::BTreeMap<u64, (String, String, u8, u64)> = Default::default();
    if run.is_some() && progress > 0 {
        let shown = scan.results.host_names(&scan.targets);
        for (i, name) in shown.iter().enumerate() {
            let block = &scan.results.hosts[i % scan.results.hosts.len()];
            let c = severity_counts(&block.items, progress);
            for item in &block.items {
                let e = vulns.entry(item.plugin_id).or_insert_with(|| {
                    (
                        item.plugin_name.clone(),
                        item.plugin_family.clone(),
                        item.severity,
                        0,
                    )
                });
                e.3 += 1;
            }
            let checks = 103_620u64;
            hosts.push(json!({
                "host_id": i + 2, "host_index": i, "hostname": name,
                "progress": format!("{progress}-100/{}-{checks}", checks * progress / 100),
                "scanprogresscurrent": progress, "scanprogresstotal": 100,
                "numchecksconsidered": checks * progress / 100, "totalchecksconsidered": checks,
                "critical": c[4], "high": c[3], "medium": c[2], "low": c[1], "info": c[0],
                "severity": c.iter().sum::<u64>(), "score": c[4] * 10_000 + c[3] * 1_000 + c[2] * 100 + c[1] * 10 + c[0],
                "offline_critical": 0, "offline_high": 0, "offline_medium": 0, "offline_low": 0, "offline_info": 0,
                "severitycount": {"item": (0..10).map(|l| json!({"severitylevel": l, "count": c.get(l).copied().unwrap_or(0)})).collect::<Vec<_>>()}
            }));
        }
    }
    let vulnerabilities: Vec<Value> = vulns
        .iter()
        .enumerate()
        .map(|(i, (id, (name, family, sev, count)))| {
            json!({"plugin_id": id, "plugin_name": name, "plugin_family": family, "severity": sev,
                   "count": count, "vuln_index": i, "severity_index": sev, "cpe": null, "offline": false, "snoozed": 0})
        })
        .collect();
    let history: Value = if scan.runs.is_empty() {
        Value::Null
    } else {
        let latest = scan.runs.len() - 1;
        Value::Array(
            scan.runs
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let s = if i == latest {
                        status
                    } else if r.end_epoch.is_some() {
                        "completed"
                    } else {
                        "canceled"
                    };
                    json!({"history_id": r.history_id, "uuid": r.uuid, "status": s, "type": "local",
                           "owner_id": 1, "scheduler": 0, "schedule_type": "manual",
                           "alt_targets_used": r.alt_targets, "creation_date": r.start_epoch,
                           "last_modification_date": r.end_epoch.unwrap_or(r.start_epoch)})
                })
                .collect(),
        )
    };
    let info = json!({
        "object_id": scan.id, "name": scan.name, "uuid": run.as_ref().map(|r| r.uuid.clone()),
        "status": status, "targets": scan.text_targets, "policy": scan.policy_title,
        "scanner_name": "Local Scanner", "scan_type": "local", "folder_id": scan.folder_id,
        "hostcount": hosts.len(), "scan_start": run.as_ref().map(|r| r.start_epoch),
        "scan_end": run.as_ref().and_then(|r| r.end_epoch),
        "scanner_start": run.as_ref().map(|r| r.start_epoch),
        "scanner_end": run.as_ref().and_then(|r| r.end_epoch),
        "timestamp": now_epoch(), "user_permissions": 128, "control": true, "edit_allowed": true,
        "alt_targets_used": run.as_ref().is_some_and(|r| r.alt_targets), "no_target": false,
        "offline": false, "migrated": 0, "haskb": true, "hasaudittrail": true, "pci-can-upload": false,
        "acls": [{"id": null, "type": "default", "name": null, "display_name": null, "owner": null, "permissions": 0}]
    });
    Json(json!({
        "info": info, "hosts": hosts, "comphosts": [], "compliance": [],
        "vulnerabilities": vulnerabilities, "history": history, "notes": null,
        "remediations": {"remediations": null, "num_hosts": 0, "num_cves": 0, "num_impacted_hosts": 0, "num_remediated_cves": 0},
        "filters": []
    }))
    .into_response()
}

async fn host_details(State(shared): S, Path((id, host_id)): Path<(u64, u64)>) -> Response {
    let st = shared.lock();
    let Some(scan) = st.scans.get(&id) else {
        return not_found_scan();
    };
    let names = scan.results.host_names(&scan.targets);
    let Some(idx) = host_id
        .checked_sub(2)
        .map(|i| i as usize)
        .filter(|i| *i < names.len())
    else {
        return error(StatusCode::NOT_FOUND, "Host not found");
    };
    let block = &scan.results.hosts[idx % scan.results.hosts.len()];
    let vulns: Vec<Value> = block
        .items
        .iter()
        .map(|i| {
            json!({"host_id": host_id, "hostname": names[idx], "plugin_id": i.plugin_id,
                   "plugin_name": i.plugin_name, "plugin_family": i.plugin_family,
                   "severity": i.severity, "severity_index": i.severity, "vuln_index": 0, "count": 1})
        })
        .collect();
    Json(json!({
        "info": {"host-ip": names[idx], "host-fqdn": null, "mac-address": null, "operating-system": null,
                 "host_start": null, "host_end": null},
        "vulnerabilities": vulns, "compliance": []
    }))
    .into_response()
}

// ----- exports -----

async fn export_request(
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
    let mut st = shared.lock();
    let (duration, transition) = (st.settings.scan_duration, st.transition());
    let Some(scan) = st.scans.get_mut(&id) else {
        return not_found_scan();
    };
    if let Some(h) = q.history_id
        && !scan.runs.iter().any(|r| r.history_id == h)
    {
        return not_found_scan();
    }
    let (status, _) = scan.status(Instant::now(), duration, transition);
    if q.history_id.is_none() && !matches!(status, "completed" | "canceled" | "aborted" | "empty") {
        return error(StatusCode::CONFLICT, "Can not export running scans");
    }
    let targets = if status == "empty" {
        Vec::new()
    } else {
        scan.targets.clone()
    };
    let bytes = match format.as_str() {
        "csv" => scan.results.render_csv(&targets),
        "html" | "pdf" => scan.results.render_html(&scan.name, &targets, &chapters),
        _ => scan
            .results
            .render_nessus(&scan.name, &targets, &scan.text_targets),
    };
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
    st.exports.insert(
        file,
        Export {
            scan_id: id,
            token: token.clone(),
            bytes: Arc::new(bytes),
            ready_at: Instant::now() + delay,
            failed,
        },
    );
    st.counters.exports_requested += 1;
    Json(json!({"file": file, "token": token})).into_response()
}

fn export_status(export: Option<&Export>) -> Response {
    match export {
        None => error(StatusCode::NOT_FOUND, "The requested file was not found"),
        Some(e) if Instant::now() < e.ready_at => {
            Json(json!({"status": "loading"})).into_response()
        }
        Some(e) if e.failed => Json(json!({"status": "error"})).into_response(),
        Some(_) => Json(json!({"status": "ready"})).into_response(),
    }
}

async fn export_status_by_file(
    State(shared): S,
    Path((id, file)): Path<(u64, String)>,
) -> Response {
    let st = shared.lock();
    export_status(find_by_file(&st, id, &file))
}

async fn export_status_by_token(State(shared): S, Path(token): Path<String>) -> Response {
    let st = shared.lock();
    export_status(st.exports.values().find(|e| e.token == token))
}

fn find_by_file<'a>(st: &'a SimState, id: u64, file: &str) -> Option<&'a Export> {
    file.parse::<u64>()
        .ok()
        .and_then(|f| st.exports.get(&f))
        .filter(|e| e.scan_id == id)
}

async fn download_by_file(State(shared): S, Path((id, file)): Path<(u64, String)>) -> Response {
    let found = {
        let st = shared.lock();
        find_by_file(&st, id, &file).cloned()
    };
    download(shared, found)
}

async fn download_by_token(State(shared): S, Path(token): Path<String>) -> Response {
    let found = {
        let st = shared.lock();
        st.exports.values().find(|e| e.token == token).cloned()
    };
    download(shared, found)
}

fn download(shared: Arc<Shared>, export: Option<Export>) -> Response {
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
    let len = e.bytes.len();
    let bytes = e.bytes;
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

// ----- admin -----

async fn get_faults(State(shared): S) -> Json<Faults> {
    Json(shared.lock().faults.clone())
}

async fn put_faults(State(shared): S, Json(faults): Json<Faults>) -> Json<Faults> {
    shared
        .drop_connections
        .store(faults.drop_connections, Ordering::SeqCst);
    shared.lock().faults = faults.clone();
    Json(faults)
}

async fn get_counters(State(shared): S) -> Json<Counters> {
    Json(shared.lock().counters.clone())
}

async fn expire_sessions(State(shared): S) -> Json<Value> {
    let mut st = shared.lock();
    let n = st.sessions.len();
    st.sessions.clear();
    Json(json!({"expired": n}))
}

#[derive(Deserialize)]
struct UiToken {
    token: String,
}

async fn set_ui_token(State(shared): S, Json(t): Json<UiToken>) -> Json<Value> {
    shared.lock().settings.ui_token = t.token.clone();
    Json(json!({"token": t.token}))
}
