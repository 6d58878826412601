//! `nessus-cli export`: an imported task's findings in every format, through the same
//! service calls as the MCP tool; expected counts come from `convert` of the task's
//! findings store (another route through the store) or from how a file is built.

use super::*;

/// Imports `file` into the data dir `data` and returns the task id.
fn import(file: &str, data: &str) -> String {
    let out = check(&["import", file, "--data-dir", data, "--json"], OK);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["task_id"].as_str().expect("task id").to_owned()
}

#[test]
fn export_writes_every_format_under_the_same_filters() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let id = import(corpus(FIXTURE).to_str().unwrap(), data);
    let store = dir.path().join("results").join(&id).join("store");
    let all = json_lines(&check(&["convert", store.to_str().unwrap()], OK));
    let findings: Vec<&serde_json::Value> = all
        .iter()
        .filter(|l| l.get("plugin_id").is_some())
        .collect();
    let at_least_low = findings
        .iter()
        .filter(|f| f["severity"].as_u64().is_some_and(|s| s >= 1))
        .count();
    assert_eq!(findings.len(), 40);
    assert!(at_least_low > 0 && at_least_low < 40, "{at_least_low}");

    // (format, filters, findings expected)
    let cases: [(&str, Option<&str>, usize); 8] = [
        ("jsonl", None, 40),
        ("jsonl", Some(r#"{"severity": ">=low"}"#), at_least_low),
        ("csv", None, 40),
        ("csv", Some(r#"{"severity": ">=low"}"#), at_least_low),
        ("sarif", None, 40),
        ("sarif", Some(r#"{"severity": ">=low"}"#), at_least_low),
        ("html", None, 40),
        ("html", Some(r#"{"severity": ">=low"}"#), at_least_low),
    ];
    for (format, filters, want) in cases {
        let file = dir
            .path()
            .join(format!("out-{format}-{}", filters.is_some()));
        let file_s = file.to_str().unwrap();
        let mut args = vec![
            "export",
            &id,
            "--format",
            format,
            "--data-dir",
            data,
            "--profile",
            "minimal",
        ];
        if let Some(f) = filters {
            args.extend(["--filters", f]);
        }
        // stdout, and -o FILE with a --json summary: the same bytes.
        let to_stdout = check(&args, OK).stdout;
        args.extend(["-o", file_s, "--json"]);
        let summary: serde_json::Value =
            serde_json::from_slice(&check(&args, OK).stdout).expect("summary");
        let body = std::fs::read_to_string(&file).expect("written");
        assert_eq!(body.as_bytes(), to_stdout, "{format}");
        assert_eq!(summary["findings"], want, "{format} {filters:?}: {summary}");
        assert_eq!(summary["bytes"], body.len(), "{format}");
        let got = match format {
            "jsonl" => body.lines().count(),
            "csv" => {
                assert!(body.starts_with("host,plugin_id,severity"), "{body:.80}");
                body.matches("\r\n").count() - 1
            }
            "sarif" => {
                let log: serde_json::Value = serde_json::from_str(&body).expect("SARIF");
                assert_eq!(log["version"], "2.1.0");
                assert_eq!(log["runs"][0]["tool"]["driver"]["name"], "Nessus");
                log["runs"][0]["results"].as_array().expect("results").len()
            }
            _ => {
                assert!(body.starts_with("<!DOCTYPE html>") && !body.contains("<script"));
                body.matches("<tr><td><span class=\"sev\"").count() - 5
            }
        };
        assert_eq!(got, want, "{format} {filters:?}");
    }

    // Errors: a task that does not exist, filters that are not an object, a bad format.
    let out = check(
        &["export", "nope", "--format", "csv", "--data-dir", data],
        4,
    );
    assert!(stderr(&out).contains("nope"), "{}", stderr(&out));
    let out = check(
        &[
            "export",
            &id,
            "--format",
            "csv",
            "--data-dir",
            data,
            "--filters",
            "[1]",
        ],
        USAGE,
    );
    assert!(stderr(&out).contains("--filters"), "{}", stderr(&out));
    check(
        &["export", &id, "--format", "xlsx", "--data-dir", data],
        USAGE,
    );
    let out = check(
        &[
            "export",
            &id,
            "--format",
            "csv",
            "--data-dir",
            data,
            "--filters",
            r#"{"no_such_field": 1}"#,
        ],
        USAGE,
    );
    assert!(stderr(&out).contains("no_such_field"), "{}", stderr(&out));
}

#[test]
fn csv_export_of_many_parts_has_one_header_and_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // More findings than one part holds (500), so the CLI joins three parts.
    const N: u32 = 1_201;
    let mut x = String::from(
        "<?xml version=\"1.0\" ?><NessusClientData_v2><Report name=\"many\">\
         <ReportHost name=\"192.0.2.9\"><HostProperties><tag name=\"host-ip\">192.0.2.9</tag>\
         </HostProperties>",
    );
    for i in 1..=N {
        x.push_str(&format!(
            "<ReportItem port=\"{i}\" svc_name=\"x\" protocol=\"tcp\" severity=\"2\" \
             pluginID=\"{i}\" pluginName=\"=cmd{i}\" pluginFamily=\"General\"></ReportItem>"
        ));
    }
    x.push_str("</ReportHost></Report></NessusClientData_v2>");
    let file = dir.path().join("many.nessus");
    std::fs::write(&file, x).unwrap();
    let id = import(file.to_str().unwrap(), data);
    let out = check(
        &[
            "export",
            &id,
            "--format",
            "csv",
            "--data-dir",
            data,
            "--sort",
            "plugin_id",
        ],
        OK,
    );
    let body = stdout(&out);
    let rows: Vec<&str> = body.split_terminator("\r\n").collect();
    assert_eq!(rows.len(), N as usize + 1, "one header and every row");
    assert!(rows[0].starts_with("host,"), "{}", rows[0]);
    assert_eq!(rows.iter().filter(|r| r.starts_with("host,")).count(), 1);
    let header: Vec<&str> = rows[0].split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).expect(name);
    let (id_col, name_col) = (column("plugin_id"), column("plugin_name"));
    for (i, row) in rows[1..].iter().enumerate() {
        let cells: Vec<&str> = row.split(',').collect();
        assert_eq!(cells[id_col], (i + 1).to_string(), "in order: {row}");
        assert_eq!(
            cells[name_col],
            format!("'=cmd{}", i + 1),
            "neutralised: {row}"
        );
    }
}
