//! findings_changes through a real MCP client: two imports of the same host with
//! known edits, what changed since the first, the byte budget's closing part, and
//! tenancy (another principal sees none of it).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Harness, OTHER_TOKEN, TOKEN, business_error, call, call_ok};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus");

/// The corpus file's items (whole `<ReportItem …>…</ReportItem>` elements).
fn items(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = xml[at..].find("<ReportItem ") {
        let start = at + i;
        let end = xml[start..].find("</ReportItem>").unwrap() + start + "</ReportItem>".len();
        out.push(xml[start..end].to_owned());
        at = end;
    }
    out
}

fn plugin_of(item: &str) -> u64 {
    let s = item.find("pluginID=\"").unwrap() + "pluginID=\"".len();
    item[s..].split('"').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn findings_changes_answers_what_changed_since_a_scan() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let alice = h.client(TOKEN).await;
    let bob = h.client(OTHER_TOKEN).await;
    let xml = std::fs::read_to_string(format!("{CORPUS}/eafonin-nessus-api__sample_scan.nessus"))
        .expect("corpus");
    let all = items(&xml);
    // Scan 2: item 4 removed, item 2's output changed, a new plugin on port 4444.
    let removed = all[4].clone();
    let mut second = xml.replacen(&removed, "", 1);
    if let Some(out_at) = all[2].find("<plugin_output>") {
        let changed = format!(
            "{}<plugin_output>edited {}",
            &all[2][..out_at],
            &all[2][out_at + 15..]
        );
        second = second.replacen(&all[2], &changed, 1);
    }
    let added = all[0]
        .replacen(
            &format!("pluginID=\"{}\"", plugin_of(&all[0])),
            "pluginID=\"999002\"",
            1,
        )
        .replacen("port=\"0\"", "port=\"4444\"", 1);
    second = second.replacen(&all[0], &format!("{}\n{added}", all[0]), 1);

    let first = call_ok(&alice, "import_scan", json!({"content": xml})).await;
    let t1 = first["task_id"].as_str().expect("id").to_owned();
    call_ok(&alice, "import_scan", json!({"content": second})).await;

    let changes = call_ok(
        &alice,
        "findings_changes",
        json!({"targets": ["172.32.0.0/16"], "since": t1}),
    )
    .await;
    let got: BTreeMap<u64, String> = changes["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["plugin_id"].as_u64().unwrap(),
                c["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<u64, String> = [
        (plugin_of(&removed), "fixed".to_owned()),
        (999_002, "new".to_owned()),
    ]
    .into();
    assert_eq!(got, want, "{changes}");
    assert_eq!(changes["closing"]["type"], "end", "{changes}");
    assert_eq!(changes["closing"]["total"], 2);
    for c in changes["changes"].as_array().unwrap() {
        assert_eq!(c["fingerprint"].as_str().map(str::len), Some(64), "{c}");
        assert_eq!(c["host_ip"], "172.32.0.215");
    }

    // Every state, the smallest budget: cut, and the closing part says how to go on.
    let mut seen = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let page = call_ok(
            &alice,
            "findings_changes",
            json!({"targets": ["172.32.0.215"], "since": t1, "states": [],
                   "byte_budget": 1024, "cursor": cursor}),
        )
        .await;
        let n = page["changes"].as_array().unwrap().len();
        assert!(n >= 1, "{page}");
        seen.extend(
            page["changes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["fingerprint"].clone()),
        );
        assert!(page.to_string().len() < 4096, "{page}");
        if page["closing"]["type"] == "end" {
            break;
        }
        assert_eq!(page["closing"]["type"], "pagination");
        cursor = page["closing"]["next_cursor"].clone();
    }
    let fingerprints: std::collections::BTreeSet<String> = seen
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        fingerprints.len(),
        seen.len(),
        "no finding twice across pages"
    );
    // Every finding of both scans: the union of the two files' plugin/port pairs.
    let keys = |x: &str| -> std::collections::BTreeSet<(u64, String)> {
        items(x)
            .iter()
            .map(|i| {
                let s = i.find("port=\"").unwrap() + 6;
                (plugin_of(i), i[s..].split('"').next().unwrap().to_owned())
            })
            .collect()
    };
    let union: std::collections::BTreeSet<_> = keys(&xml).union(&keys(&second)).cloned().collect();
    assert_eq!(seen.len(), union.len());

    // Triage: the new finding marked false positive leaves the default answer,
    // shows with include_triaged, and bob cannot mark alice's finding.
    let fp = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["plugin_id"] == 999_002)
        .unwrap()["fingerprint"]
        .clone();
    let marked = call_ok(
        &alice,
        "triage_finding",
        json!({"fingerprint": fp, "mark": "false_positive", "reason": "test listener",
               "expires_at": "2999-01-01"}),
    )
    .await;
    assert_eq!(marked["triage"]["by"], "alice", "{marked}");
    let left = call_ok(
        &alice,
        "findings_changes",
        json!({"targets": ["172.32.0.215"], "since": t1}),
    )
    .await;
    assert_eq!(left["changes"].as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left["changes"][0]["state"], "fixed");
    let shown = call_ok(
        &alice,
        "findings_changes",
        json!({"targets": ["172.32.0.215"], "since": t1, "include_triaged": true}),
    )
    .await;
    let m = shown["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["fingerprint"] == fp)
        .unwrap()
        .clone();
    assert_eq!(m["triage"]["mark"], "false_positive", "{m}");
    let r = call(
        &bob,
        "triage_finding",
        json!({"fingerprint": fp, "mark": "clear"}),
    )
    .await;
    assert_eq!(
        business_error("triage_finding", &r)["error_code"],
        "invalid_argument"
    );

    // Bob sees none of alice's findings, nor her task as a start.
    let none = call_ok(
        &bob,
        "findings_changes",
        json!({"targets": ["0.0.0.0/0"], "since": "2000-01-01", "states": []}),
    )
    .await;
    assert_eq!(none["changes"], json!([]), "{none}");
    let r = call(
        &bob,
        "findings_changes",
        json!({"targets": ["172.32.0.215"], "since": t1}),
    )
    .await;
    assert_eq!(
        business_error("findings_changes", &r)["error_code"],
        "task_not_found"
    );
    // A bad start is an argument error naming the field.
    let r = call(
        &alice,
        "findings_changes",
        json!({"targets": ["172.32.0.215"], "since": "last tuesday"}),
    )
    .await;
    let body = business_error("findings_changes", &r);
    assert!(
        body["error"].as_str().unwrap_or_default().contains("since"),
        "{body}"
    );
    h.stop().await;
}
