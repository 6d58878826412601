//! Issue 14: every argument error is answered in the tool envelope (`error`,
//! `error_code: "invalid_argument"`, a `hint` naming the argument), and
//! get_scan_results takes sort, byte_budget, filters as text and reports
//! unknown arguments.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Harness, TOKEN, business_error, call, call_ok, text};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus");

/// The predecessor's tools with a wrong-typed and a missing argument each:
/// (tool, arguments, the argument the hint must name).
fn cases() -> Vec<(&'static str, Value, &'static str)> {
    let id = "ness_un_20250101_000000_deadbeef";
    vec![
        (
            "run_untrusted_scan",
            json!({"targets": 5, "name": "x"}),
            "targets",
        ),
        (
            "run_untrusted_scan",
            json!({"targets": "192.0.2.1"}),
            "name",
        ),
        (
            "run_authenticated_scan",
            json!({"targets": "192.0.2.1", "name": "x", "scan_type": ["authenticated"]}),
            "scan_type",
        ),
        (
            "run_authenticated_scan",
            json!({"targets": "192.0.2.1", "name": "x"}),
            "scan_type",
        ),
        ("get_scan_status", json!({"task_id": 5}), "task_id"),
        ("get_scan_status", json!({"task": id}), "task_id"),
        (
            "get_scan_results",
            json!({"task_id": id, "page": "two"}),
            "page",
        ),
        ("get_scan_results", json!({"page": 1}), "task_id"),
        (
            "get_scan_results",
            json!({"task_id": id, "filters": 3}),
            "filters",
        ),
        (
            "get_scan_results",
            json!({"task_id": id, "custom_fields": ["host", 7]}),
            "custom_fields",
        ),
        ("list_scanners", json!({"scanner_pool": 5}), "scanner_pool"),
        (
            "get_pool_status",
            json!({"scanner_pool": true}),
            "scanner_pool",
        ),
        (
            "get_queue_status",
            json!({"scanner_pool": [1]}),
            "scanner_pool",
        ),
        ("list_tasks", json!({"limit": "ten"}), "limit"),
        (
            "list_tasks",
            json!({"status_filter": {"eq": "queued"}}),
            "status_filter",
        ),
    ]
}

#[tokio::test]
async fn argument_errors_are_answered_in_the_envelope() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    for (tool, args, arg) in cases() {
        let r = call(&client, tool, args.clone()).await;
        // Compatible mode: the predecessor's tools answer a normal result with the envelope.
        let body = business_error(tool, &r);
        assert_eq!(
            body["error_code"], "invalid_argument",
            "{tool} {args}: {body}"
        );
        let hint = body["hint"].as_str().unwrap_or_default();
        assert!(
            hint.contains(&format!("\"{arg}\"")) && hint.contains("takes"),
            "{tool} {args}: the hint names {arg} and what it takes: {body}"
        );
        assert!(
            !text(&r).contains("failed to deserialize"),
            "{tool} {args}: no serde text: {body}"
        );
    }
    // A new tool (typed errors in every mode): isError with the same envelope.
    let r = call(&client, "import_scan", json!({"content": 5})).await;
    let body = business_error("import_scan", &r);
    assert_eq!(body["error_code"], "invalid_argument", "{body}");
    client.cancel().await.expect("close");
    h.stop().await;
}

/// Typed mode answers the same envelope as isError.
#[tokio::test]
async fn argument_errors_are_is_error_in_typed_mode() {
    let h = Harness::start_typed(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let r = call(&client, "get_scan_status", json!({"task_id": 5})).await;
    assert_eq!(r.is_error, Some(true));
    let body: Value = serde_json::from_str(&text(&r)).expect("envelope");
    assert_eq!(body["error_code"], "invalid_argument", "{body}");
    assert!(
        body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("a string")),
        "{body}"
    );
    client.cancel().await.expect("close");
    h.stop().await;
}

/// Lines of a JSON-NL answer.
fn lines(t: &str) -> Vec<Value> {
    t.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn vulns(t: &str) -> Vec<Value> {
    lines(t)
        .into_iter()
        .filter(|l| l["type"] == "vulnerability")
        .collect()
}

#[tokio::test]
async fn results_take_sort_budget_text_filters_and_report_unknown_arguments() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let xml = std::fs::read_to_string(format!("{CORPUS}/libnessus__nessus_report_local_3.nessus"))
        .expect("corpus");
    let imported = call_ok(&client, "import_scan", json!({"content": xml})).await;
    assert_eq!(imported["imported"], true, "{imported}");
    let id = imported["task_id"].as_str().expect("id").to_owned();
    let st = call_ok(&client, "get_scan_status", json!({"task_id": id})).await;
    assert_eq!(st["imported"], true, "{st}");
    let list = call_ok(&client, "list_tasks", json!({})).await;
    assert_eq!(list["tasks"][0]["imported"], true, "{list}");

    // filters as an object and as a JSON string give the same answer.
    let as_object = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "filters": {"severity": ">=3"}, "page_size": 100}),
    )
    .await;
    let as_text = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "filters": "{\"severity\": \">=3\"}", "page_size": 100}),
    )
    .await;
    // MANIFEST: sev {3:3, 4:2} -> 5 findings of severity 3 or more.
    assert_eq!(vulns(&text(&as_object)).len(), 5, "{}", text(&as_object));
    assert_eq!(text(&as_object), text(&as_text));
    // A string that holds no object is an argument error in the envelope.
    for bad in ["[1,2]", "{severity"] {
        let r = call(
            &client,
            "get_scan_results",
            json!({"task_id": id, "filters": bad}),
        )
        .await;
        let body = business_error("get_scan_results", &r);
        assert_eq!(body["error_code"], "invalid_argument", "{bad}: {body}");
        assert!(
            body["hint"].as_str().is_some_and(|h| h.contains("filters")),
            "{body}"
        );
    }

    // sort is honoured (it was advertised and ignored): port ascending.
    let sorted = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "sort": "port:asc", "page_size": 100, "custom_fields": ["host", "port"]}),
    )
    .await;
    let ports: Vec<i64> = vulns(&text(&sorted))
        .iter()
        .map(|v| v["port"].as_i64().unwrap_or(-1))
        .collect();
    let mut want = ports.clone();
    want.sort_unstable();
    assert_eq!(ports, want, "{}", text(&sorted));
    assert!(ports.len() > 10, "{ports:?}");
    // An unknown sort field is a query error whose hint lists the sort fields.
    let bad_sort = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "sort": "sevrity"}),
    )
    .await;
    let body = business_error("get_scan_results", &bad_sort);
    assert!(
        body["hint"]
            .as_str()
            .is_some_and(|h| h.contains("4 critical") && h.contains("plugin_family")),
        "{body}"
    );

    // byte_budget bounds the whole answer, and the closing line says it was cut and how to
    // go on.
    let budget = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "page": 0, "byte_budget": 8192, "schema_profile": "full"}),
    )
    .await;
    let t = text(&budget);
    assert!(t.len() <= 8192, "{} bytes", t.len());
    let last = lines(&t).pop().expect("closing line");
    assert_eq!(last["type"], "truncated", "{last}");
    assert_eq!(last["truncated"], true, "{last}");
    assert!(last["next_cursor"].is_string(), "{last}");

    // Unknown arguments reach the query as notices (the library writes them into the
    // closing line); the call itself succeeds.
    let unknown = call(
        &client,
        "get_scan_results",
        json!({"task_id": id, "page_sise": 10, "zzz": 1}),
    )
    .await;
    let last = lines(&text(&unknown)).pop().expect("closing line");
    assert_eq!(last["type"], "pagination", "{last}");
    let notices = last["notices"].to_string();
    assert!(
        notices.contains("ignored unknown argument \\\"page_sise\\\"")
            && notices.contains("page_size")
            && notices.contains("\\\"zzz\\\""),
        "{notices}"
    );
    client.cancel().await.expect("close");
    h.stop().await;
}

/// summarize_results answers the common questions in one call; its counts equal the
/// MANIFEST's (libnessus__nessus_report_local_3.nessus: 3 hosts with 2, 31 and 73
/// items; severities {0:71, 1:10, 2:20, 3:3, 4:2}).
#[tokio::test]
async fn summarize_results_counts_as_the_manifest_says() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let xml = std::fs::read_to_string(format!("{CORPUS}/libnessus__nessus_report_local_3.nessus"))
        .expect("corpus");
    let imported = call_ok(&client, "import_scan", json!({"content": xml})).await;
    let id = imported["task_id"].as_str().expect("id").to_owned();

    let by_host = call_ok(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "host", "rank_by": "count"}),
    )
    .await;
    let counts: Vec<u64> = by_host["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| g["findings"].as_u64().expect("findings"))
        .collect();
    assert_eq!(counts, [73, 31, 2], "{by_host}");
    assert_eq!(by_host["matched_findings"], 106, "{by_host}");
    assert_eq!(by_host["groups_total"], 3, "{by_host}");

    let by_severity = call_ok(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "severity"}),
    )
    .await;
    let got: Vec<(String, u64)> = by_severity["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["severity_name"].as_str().expect("name").to_owned(),
                g["findings"].as_u64().expect("findings"),
            )
        })
        .collect();
    let want: Vec<(String, u64)> = [
        ("critical", 2),
        ("high", 3),
        ("medium", 20),
        ("low", 10),
        ("info", 71),
    ]
    .iter()
    .map(|(n, c)| ((*n).to_owned(), *c))
    .collect();
    assert_eq!(got, want, "{by_severity}");

    // Filters first, by severity name and as a JSON string; top is clamped with a notice.
    let high = call_ok(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "host", "filters": "{\"severity\": \">=high\"}", "top": 1000}),
    )
    .await;
    assert_eq!(high["matched_findings"], 5, "{high}");
    assert!(high["notices"].to_string().contains("top 1000"), "{high}");

    // An empty answer explains itself.
    let none = call_ok(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "host", "filters": {"cve": "CVE-1999-0000000"}}),
    )
    .await;
    assert_eq!(none["matched_findings"], 0, "{none}");
    let why = none["explanation"].as_str().expect("explanation");
    assert!(
        why.contains("106 findings") && why.contains("critical"),
        "{why}"
    );

    // Argument errors in the envelope: an unknown grouping names the choices.
    let r = call(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "hostname"}),
    )
    .await;
    let body = business_error("summarize_results", &r);
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("plugin_family")),
        "{body}"
    );
    let r = call(
        &client,
        "summarize_results",
        json!({"task_id": id, "group_by": "host", "top": "five"}),
    )
    .await;
    assert_eq!(
        business_error("summarize_results", &r)["error_code"],
        "invalid_argument"
    );

    // Another principal sees nothing.
    let other = h.client(crate::support::OTHER_TOKEN).await;
    let r = call(
        &other,
        "summarize_results",
        json!({"task_id": id, "group_by": "host"}),
    )
    .await;
    assert_eq!(
        business_error("summarize_results", &r)["error_code"],
        "task_not_found"
    );
    other.cancel().await.expect("close");
    client.cancel().await.expect("close");
    h.stop().await;
}

/// A wrong-typed secret is refused without echoing it: the envelope names the argument
/// and the kind of value sent, never the value (a password sent as a number would
/// otherwise come back in the answer).
#[tokio::test]
async fn argument_errors_never_echo_the_value() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    for (arg, value) in [
        ("ssh_password", json!(918273645)),
        ("escalation_password", json!(["hunter2-canary"])),
    ] {
        let mut args = json!({
            "targets": "192.0.2.1", "name": "x", "scan_type": "authenticated",
            "ssh_username": "u", "ssh_password": "p",
        });
        args[arg] = value;
        let r = call(&client, "run_authenticated_scan", args).await;
        let body = business_error("run_authenticated_scan", &r);
        assert_eq!(body["error_code"], "invalid_argument", "{body}");
        let all = format!("{body} {}", text(&r));
        assert!(all.contains(arg), "names the argument: {all}");
        assert!(
            !all.contains("918273645") && !all.contains("hunter2-canary"),
            "the value is not echoed: {all}"
        );
    }
    client.cancel().await.expect("close");
    h.stop().await;
}
