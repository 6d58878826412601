//! Scan endpoints: list, create, configure, launch/stop/pause/resume/kill, delete, details.

use std::time::Instant;

use super::{S, TEMPLATES, bad_json, error, find_scan, hex_token, not_found_scan, parse_json};
use crate::sim::state::{MAIN_FOLDER, Run, Scan, SimState, digest, now_epoch};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::server::folder_json;

// ----- scans -----

#[derive(Deserialize)]
pub(super) struct ListQuery {
    folder_id: Option<u64>,
    last_modification_date: Option<i64>,
}

pub(super) async fn list_scans(State(shared): S, Query(q): Query<ListQuery>) -> Response {
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

pub(super) fn template_title(uuid: &str) -> Option<String> {
    let v: Value = serde_json::from_str(TEMPLATES).ok()?;
    v["templates"]
        .as_array()?
        .iter()
        .find(|t| t["uuid"] == uuid)
        .and_then(|t| t["title"].as_str().map(str::to_owned))
}

/// Records the secrets of `credentials.add` by digest only.
pub(super) fn record_credentials(st: &mut SimState, credentials: &Value) -> bool {
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

pub(super) async fn create_scan(State(shared): S, body: Bytes) -> Response {
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
    let (id, corpus) = {
        let mut st = shared.lock();
        let id = st.next_scan_id;
        st.next_scan_id += 1;
        (id, st.corpus())
    };
    // The first scan drawing on a corpus file parses it: outside the lock. The file depends
    // on the targets only, never on the scan id: the same target shows the same findings.
    let results = corpus.pick_for(&text_targets);
    tracing::debug!(scan_id = id, results = %results.name, "simulated scan results chosen");
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
        stop_requested_ms: None,
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

pub(super) async fn configure_scan(
    State(shared): S,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, Response> {
    let v = parse_json(&body).ok_or_else(bad_json)?;
    let mut st = shared.lock();
    let folders: Vec<u64> = st.folders.iter().map(|f| f.0).collect();
    let (scan, _) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
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
    Ok(Json(json!({"id": id, "name": scan.name})).into_response())
}

pub(super) fn start_run(st: &mut SimState, id: u64, alt_targets: bool) -> Option<String> {
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

pub(super) async fn launch(
    State(shared): S,
    Path(id): Path<u64>,
    body: Bytes,
) -> Result<Response, Response> {
    let alt = parse_json(&body)
        .and_then(|v| v.get("alt_targets").cloned())
        .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()));
    let mut st = shared.lock();
    let (scan, timing) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
    if timing.is_running(scan) {
        return Err(error(StatusCode::CONFLICT, "Scan is already running"));
    }
    let uuid = start_run(&mut st, id, alt).ok_or_else(not_found_scan)?;
    Ok(Json(json!({"scan_uuid": uuid})).into_response())
}

pub(super) async fn control(
    State(shared): S,
    Path((id, action)): Path<(u64, String)>,
) -> Result<Response, Response> {
    let mut st = shared.lock();
    let (scan, timing) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
    let now = timing.now;
    let status = timing.status(scan).0;
    let name = scan.name.clone();
    let not_active = || error(StatusCode::CONFLICT, "Scan is not active");
    let run = scan.runs.last_mut().ok_or_else(not_active)?;
    match action.as_str() {
        "stop"
            if matches!(
                status,
                "pending" | "running" | "paused" | "pausing" | "resuming"
            ) =>
        {
            run.stop(now);
            scan.stop_requested_ms
                .get_or_insert_with(crate::sim::state::now_epoch_ms);
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
        "stop" | "pause" | "resume" | "kill" => return Err(not_active()),
        _ => return Err(not_allowed_sync()),
    }
    scan_touch(&mut st, id);
    Ok((StatusCode::OK, Json(json!({}))).into_response())
}

pub(super) fn not_allowed_sync() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "The requested method is not allowed for this URL",
    )
}

pub(super) fn scan_touch(st: &mut SimState, id: u64) {
    if let Some(s) = st.scans.get_mut(&id) {
        s.modified = now_epoch();
    }
}

pub(super) async fn delete_scan(
    State(shared): S,
    Path(id): Path<u64>,
) -> Result<Response, Response> {
    let mut st = shared.lock();
    let (scan, timing) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
    if timing.is_running(scan) {
        return Err(error(
            StatusCode::CONFLICT,
            "Scan cannot be deleted while it is running",
        ));
    }
    let name = scan.name.clone();
    st.scans.remove(&id);
    st.exports.retain(|_, e| e.scan_id != id);
    st.counters.scans_deleted += 1;
    st.name_counters(&name).deleted += 1;
    Ok(StatusCode::OK.into_response())
}

#[derive(Deserialize)]
pub(super) struct HistoryQuery {
    pub(super) history_id: Option<u64>,
}

pub(super) fn severity_counts(items: &[crate::sim::corpus::Item], scale: u64) -> [u64; 5] {
    let mut c = [0u64; 5];
    for i in items {
        c[usize::from(i.severity.min(4))] += 1;
    }
    c.map(|n| n * scale / 100)
}

pub(super) async fn scan_details(
    State(shared): S,
    Path(id): Path<u64>,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, Response> {
    let mut st = shared.lock();
    let (scan, timing) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
    let (mut status, mut progress) = timing.status(scan);
    let run = match q.history_id {
        Some(h) => Some(
            scan.runs
                .iter()
                .find(|r| r.history_id == h)
                .cloned()
                .ok_or_else(not_found_scan)?,
        ),
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
    Ok(Json(json!({
        "info": info, "hosts": hosts, "comphosts": [], "compliance": [],
        "vulnerabilities": vulnerabilities, "history": history, "notes": null,
        "remediations": {"remediations": null, "num_hosts": 0, "num_cves": 0, "num_impacted_hosts": 0, "num_remediated_cves": 0},
        "filters": []
    }))
    .into_response())
}

pub(super) async fn host_details(
    State(shared): S,
    Path((id, host_id)): Path<(u64, u64)>,
) -> Result<Response, Response> {
    let mut st = shared.lock();
    let (scan, _) = find_scan(&mut st, id).ok_or_else(not_found_scan)?;
    let names = scan.results.host_names(&scan.targets);
    let idx = host_id
        .checked_sub(2)
        .map(|i| i as usize)
        .filter(|i| *i < names.len())
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "Host not found"))?;
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
    Ok(Json(json!({
        "info": {"host-ip": names[idx], "host-fqdn": null, "mac-address": null, "operating-system": null,
                 "host_start": null, "host_end": null},
        "vulnerabilities": vulns, "compliance": []
    }))
    .into_response())
}
