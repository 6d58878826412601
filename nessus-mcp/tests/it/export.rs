//! export_results: a whole result set by reference, read part by part through
//! the `nessus://tasks/{task_id}/export/{format}/{part}` resource template.
//! Expected answers come from how the test files are built (counts by
//! construction) and from a small CSV reader written here.

use std::time::Duration;

use rmcp::{
    RoleClient,
    model::{ReadResourceRequestParams, ResourceContents},
    service::RunningService,
};
use serde_json::{Value, json};

use crate::support::{Harness, OTHER_TOKEN, TOKEN, call, call_ok, text};

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// One crafted finding: (plugin id, plugin name, severity, description, solution, cves).
type Item = (u32, String, u8, String, String, Vec<String>);

/// A .nessus file with one host and the given items.
fn nessus(items: &[Item]) -> String {
    let mut x = String::from(
        "<?xml version=\"1.0\" ?>\n<NessusClientData_v2>\n<Report name=\"crafted\">\n\
         <ReportHost name=\"192.0.2.50\"><HostProperties>\
         <tag name=\"host-ip\">192.0.2.50</tag></HostProperties>\n",
    );
    for (id, name, sev, desc, sol, cves) in items {
        x.push_str(&format!(
            "<ReportItem port=\"{}\" svc_name=\"www\" protocol=\"tcp\" severity=\"{sev}\" \
             pluginID=\"{id}\" pluginName=\"{}\" pluginFamily=\"General\">\
             <description>{}</description><solution>{}</solution>",
            1000 + id,
            xml_escape(name),
            xml_escape(desc),
            xml_escape(sol)
        ));
        for c in cves {
            x.push_str(&format!("<cve>{c}</cve>"));
        }
        x.push_str("</ReportItem>\n");
    }
    x.push_str("</ReportHost></Report></NessusClientData_v2>\n");
    x
}

/// RFC 4180 reader, independent of the server's writer.
fn parse_csv(body: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    rows
}

async fn read(
    client: &RunningService<RoleClient, ()>,
    uri: &str,
) -> Result<(String, String), String> {
    let r = client
        .read_resource(ReadResourceRequestParams::new(uri))
        .await
        .map_err(|e| e.to_string())?;
    match &r.contents[0] {
        ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => Ok((text.clone(), mime_type.clone().unwrap_or_default())),
        other => Err(format!("not text: {other:?}")),
    }
}

fn uris(e: &Value) -> Vec<String> {
    e["uris"]
        .as_array()
        .expect("uris")
        .iter()
        .map(|u| u.as_str().expect("uri").to_owned())
        .collect()
}

#[tokio::test]
async fn csv_export_neutralises_hostile_cells_and_is_private() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let hostile = "=HYPERLINK(\"http://evil.example\",\"click\")".to_owned();
    let file = nessus(&[
        (
            99_999,
            hostile.clone(),
            3,
            "-2+3 and a \"quote\", with comma".to_owned(),
            "@SUM(A1:A2)".to_owned(),
            vec!["CVE-2021-0001".to_owned(), "CVE-2021-0002".to_owned()],
        ),
        (
            10_001,
            "Plain".to_owned(),
            0,
            "ok".to_owned(),
            "none".to_owned(),
            vec![],
        ),
    ]);
    let imported = call_ok(&client, "import_scan", json!({"content": file})).await;
    let id = imported["task_id"].as_str().expect("id").to_owned();
    let fields = [
        "host",
        "plugin_id",
        "plugin_name",
        "description",
        "solution",
        "cve",
        "port",
    ];
    let r = call(
        &client,
        "export_results",
        json!({"task_id": id, "format": "csv", "custom_fields": fields}),
    )
    .await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    let e = r.structured_content.clone().expect("structured");
    assert_eq!(
        (
            e["findings"].as_u64(),
            e["parts"].as_u64(),
            e["mime_type"].as_str()
        ),
        (Some(2), Some(1), Some("text/csv")),
        "{e}"
    );
    // The parts are also resource_link content items.
    let links: Vec<String> = r
        .content
        .iter()
        .filter_map(|c| c.as_resource_link().map(|l| l.uri.clone()))
        .collect();
    assert_eq!(links, uris(&e));
    // The template names every part: part k is the template with {part} = k.
    let template = e["uri_template"].as_str().expect("uri_template");
    for (k, uri) in uris(&e).iter().enumerate() {
        assert_eq!(&template.replace("{part}", &(k + 1).to_string()), uri);
    }
    let (body, mime) = read(&client, &uris(&e)[0]).await.expect("part 1");
    assert_eq!(mime, "text/csv");
    let rows = parse_csv(&body);
    assert_eq!(rows[0], fields.map(str::to_owned).to_vec(), "{body}");
    assert_eq!(rows.len(), 3, "{body}");
    // Default order: severity first, so the hostile finding is row 1.
    let bad = &rows[1];
    assert_eq!(bad[1], "99999");
    assert_eq!(bad[2], format!("'{hostile}"), "{body}");
    assert_eq!(bad[3], "'-2+3 and a \"quote\", with comma");
    assert_eq!(bad[4], "'@SUM(A1:A2)");
    assert_eq!(bad[5], "CVE-2021-0001; CVE-2021-0002");
    assert_eq!(bad[6], "100999");
    for row in &rows[1..] {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula cell: {cell:?}"
            );
        }
    }

    // Another principal: the tool says not found, the resource too.
    let bob = h.client(OTHER_TOKEN).await;
    let denied = call(
        &bob,
        "export_results",
        json!({"task_id": id, "format": "csv"}),
    )
    .await;
    assert_eq!(denied.is_error, Some(true));
    assert!(
        text(&denied).contains("task_not_found"),
        "{}",
        text(&denied)
    );
    let err = read(&bob, &uris(&e)[0]).await.expect_err("hidden");
    assert!(err.contains("not found"), "{err}");
    // A bad format is an argument error in the envelope.
    let bad_format = call(
        &client,
        "export_results",
        json!({"task_id": id, "format": "xlsx"}),
    )
    .await;
    assert!(
        text(&bad_format).contains("invalid_argument"),
        "{}",
        text(&bad_format)
    );
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn large_exports_are_cut_by_count_and_by_bytes() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let import_dir = h._dir.path().join("import");
    std::fs::create_dir_all(&import_dir).expect("import dir");
    // 1100 findings; the first 250 (by plugin id) carry 20 000-character descriptions,
    // so 500 findings would not fit a 4 MiB part.
    const N: u32 = 1100;
    const BIG: u32 = 250;
    let items: Vec<_> = (1..=N)
        .map(|i| {
            let desc = if i <= BIG {
                "d".repeat(20_000)
            } else {
                format!("item {i}")
            };
            (
                i,
                format!("Plugin {i}"),
                (i % 5) as u8,
                desc,
                "fix".to_owned(),
                vec![],
            )
        })
        .collect();
    std::fs::write(import_dir.join("big.nessus"), nessus(&items)).expect("write");
    let imported = call_ok(&client, "import_scan", json!({"path": "big.nessus"})).await;
    let id = imported["task_id"].as_str().expect("id").to_owned();

    for format in ["jsonl", "csv"] {
        let e = call_ok(
            &client,
            "export_results",
            json!({"task_id": id, "format": format, "sort": "plugin_id:asc",
                   "filters": "{\"severity\": \">=0\"}"}),
        )
        .await;
        let size = e["part_size"].as_u64().expect("part_size");
        let parts = e["parts"].as_u64().expect("parts");
        assert_eq!(e["findings"], N, "{e}");
        assert!(
            (1..500).contains(&size),
            "{format}: the byte cap shrank the parts: {e}"
        );
        assert_eq!(parts, u64::from(N).div_ceil(size), "{e}");
        let mut ids = Vec::new();
        for (k, uri) in uris(&e).iter().enumerate() {
            let (body, _) = read(&client, uri).await.expect("part");
            assert!(
                body.len() <= 4 * 1024 * 1024,
                "{format} part {k}: {} bytes",
                body.len()
            );
            let before = ids.len();
            if format == "jsonl" {
                for line in body.lines() {
                    let v: Value = serde_json::from_str(line).expect("JSON line");
                    assert_eq!(v["type"], "vulnerability", "only vulnerability lines");
                    ids.push(v["plugin_id"].as_u64().expect("id"));
                }
            } else {
                let rows = parse_csv(&body);
                assert_eq!(rows[0][0], "host", "every part starts with the header");
                let col = rows[0]
                    .iter()
                    .position(|c| c == "plugin_id")
                    .expect("plugin_id column");
                ids.extend(rows[1..].iter().map(|r| r[col].parse::<u64>().expect("id")));
            }
            let got = (ids.len() - before) as u64;
            let want = if k as u64 + 1 == parts {
                u64::from(N) - size * (parts - 1)
            } else {
                size
            };
            assert_eq!(got, want, "{format} part {}", k + 1);
        }
        assert_eq!(
            ids,
            (1..=u64::from(N)).collect::<Vec<_>>(),
            "{format}: every finding once, in order"
        );
    }
    // A part past the end is refused with the range.
    let e = call_ok(
        &client,
        "export_results",
        json!({"task_id": id, "format": "jsonl"}),
    )
    .await;
    let last = uris(&e).pop().expect("a uri");
    let past = last.replacen(
        &format!("/{}?", e["parts"]),
        &format!("/{}?", e["parts"].as_u64().unwrap_or(0) + 1),
        1,
    );
    let err = read(&client, &past).await.expect_err("past the end");
    assert!(err.contains("does not exist"), "{err}");
    client.cancel().await.expect("close");
    h.stop().await;
}

#[tokio::test]
async fn sarif_and_html_exports_are_one_document_under_the_same_filters() {
    let h = Harness::start(0, Duration::from_secs(1)).await;
    let client = h.client(TOKEN).await;
    let attack = "<script>alert(1)</script>\"><img src=x onerror=alert(2)>".to_owned();
    // Severities 0..=4, twice each; plugin 1 carries the attack in its name.
    let items: Vec<Item> = (1..=10u32)
        .map(|i| {
            let name = if i == 1 {
                attack.clone()
            } else {
                format!("Plugin {i}")
            };
            let sev = u8::try_from(i % 5).unwrap_or(0);
            (
                i,
                name,
                sev,
                format!("desc {i}"),
                "patch".to_owned(),
                vec![],
            )
        })
        .collect();
    let imported = call_ok(&client, "import_scan", json!({"content": nessus(&items)})).await;
    let id = imported["task_id"].as_str().expect("id").to_owned();
    // (format, filters, findings expected by construction, mime type)
    let cases = [
        ("sarif", json!(null), 10, "application/sarif+json"),
        (
            "sarif",
            json!({"severity": ">=high"}),
            4,
            "application/sarif+json",
        ),
        ("html", json!(null), 10, "text/html"),
        ("html", json!({"plugin_id": 1}), 1, "text/html"),
    ];
    for (format, filters, want, want_mime) in cases {
        let mut args = json!({"task_id": id, "format": format});
        if !filters.is_null() {
            args["filters"] = filters.clone();
        }
        let e = call_ok(&client, "export_results", args).await;
        assert_eq!(
            (
                e["findings"].as_u64(),
                e["parts"].as_u64(),
                e["mime_type"].as_str()
            ),
            (Some(want), Some(1), Some(want_mime)),
            "{format} {filters}: {e}"
        );
        assert!(e["message"].as_str().unwrap_or("").contains("one"), "{e}");
        let uris = uris(&e);
        assert_eq!(uris.len(), 1, "{e}");
        assert!(
            uris[0].contains(&format!("/export/{format}/1?")),
            "{}",
            uris[0]
        );
        let (body, mime) = read(&client, &uris[0]).await.expect("the document");
        assert_eq!(mime, want_mime);
        if format == "sarif" {
            let log: Value = serde_json::from_str(&body).expect("SARIF is JSON");
            assert_eq!(log["version"], "2.1.0");
            let results = log["runs"][0]["results"].as_array().expect("results");
            assert_eq!(results.len() as u64, want, "{format} {filters}");
            for r in results {
                assert_eq!(
                    r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                    "host/192.0.2.50"
                );
            }
        } else {
            assert!(body.starts_with("<!DOCTYPE html>"), "{body:.80}");
            assert!(
                !body.contains("<script") && !body.contains("<img"),
                "escaped"
            );
            assert!(
                body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "shown as text"
            );
        }
        // One document: there is no part 2.
        let err = read(&client, &uris[0].replacen("/1?", "/2?", 1))
            .await
            .expect_err("no part 2");
        assert!(err.contains("one document"), "{err}");
    }
    client.cancel().await.expect("close");
    h.stop().await;
}
