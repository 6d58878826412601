//! Exports: the concatenated parts are exactly the vulnerability lines the page engine
//! serves for the same query (a different route through the store), part sizes and
//! counts follow the plan, and CSV parts each start with the header.

use nessus_schema::{
    EXPORT_PART_MAX_FINDINGS, ExportFormat, PageRequest, Query, QueryParams, Store,
};

use crate::store::ingest;

fn query(profile: &str, filters: Option<serde_json::Value>, sort: Option<&str>) -> Query {
    Query::from_params(&QueryParams {
        schema_profile: Some(profile.to_owned()),
        filters,
        sort: sort.map(str::to_owned),
        ..QueryParams::default()
    })
    .expect("query")
}

/// The page engine's vulnerability lines for `q`, everything at once, no budget.
fn page_lines(store: &Store, q: &Query) -> Vec<String> {
    // Every line: the page engine without the answer budget an agent's query carries.
    let q = Query {
        page: PageRequest::All { byte_budget: None },
        byte_budget: None,
        ..q.clone()
    };
    let (text, _) = store.page_string(&q).expect("page");
    text.lines()
        .filter(|l| l.starts_with("{\"type\": \"vulnerability\""))
        .map(str::to_owned)
        .collect()
}

#[test]
fn jsonl_parts_are_the_pages_vulnerability_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    // MANIFEST: 3 hosts, 106 items, sev {0:71, 1:10, 2:20, 3:3, 4:2}.
    let store = ingest("libnessus__nessus_report_local_3.nessus", dir.path());
    let cases = [
        (query("brief", None, None), 106),
        (query("full", None, Some("port:asc,plugin_id")), 106),
        (
            query(
                "minimal",
                Some(serde_json::json!({"severity": ">=2"})),
                None,
            ),
            25,
        ),
        (
            query(
                "summary",
                Some(serde_json::json!({"severity": 4})),
                Some("host"),
            ),
            2,
        ),
        (
            query("brief", Some(serde_json::json!({"plugin_id": 1})), None),
            0,
        ),
    ];
    // MANIFEST: 7 hosts named by host name (qa3appNN), 296 items: profiles write their
    // host_ip, full adds the host fields; the export must too.
    let named_dir = tempfile::tempdir().expect("tempdir");
    let named = ingest("defectdojo__nessus_v_unknown.xml", named_dir.path());
    let cases = cases.map(|(q, want)| (&store, q, want));
    let named_cases = [
        (&named, query("minimal", None, None), 296),
        (&named, query("full", None, None), 296),
    ];
    for (store, q, want) in cases.into_iter().chain(named_cases) {
        let plan = store
            .export_plan(&q, ExportFormat::JsonLines)
            .expect("plan");
        assert_eq!(plan.findings, want);
        assert_eq!(
            plan.part_size, EXPORT_PART_MAX_FINDINGS,
            "small lines: no shrink"
        );
        assert_eq!(u64::from(plan.parts), want.div_ceil(500));
        let mut lines = Vec::new();
        for part in 1..=plan.parts {
            let body = store
                .export_part(&q, ExportFormat::JsonLines, plan.part_size, part)
                .expect("part");
            lines.extend(
                String::from_utf8(body)
                    .expect("utf-8")
                    .lines()
                    .map(str::to_owned),
            );
        }
        assert_eq!(lines, page_lines(store, &q));
        assert!(
            store
                .export_part(&q, ExportFormat::JsonLines, plan.part_size, plan.parts + 1)
                .is_err(),
            "past the end"
        );
    }
}

#[test]
fn small_csv_parts_each_start_with_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ingest("libnessus__nessus_report_local_3.nessus", dir.path());
    let q = query("minimal", None, None);
    // A part size of 40 (as a client may ask) gives ceil(106/40) = 3 parts.
    let header = "host,plugin_id,severity,cve,cvss_score,exploit_available";
    let mut rows = 0;
    for part in 1..=3 {
        let body = store
            .export_part(&q, ExportFormat::Csv, 40, part)
            .expect("part");
        let body = String::from_utf8(body).expect("utf-8");
        assert!(
            body.starts_with(header),
            "part {part}: {}",
            &body[..80.min(body.len())]
        );
        assert!(body.ends_with("\r\n"));
        rows += body.matches("\r\n").count() - 1;
    }
    assert_eq!(rows, 106);
    assert!(store.export_part(&q, ExportFormat::Csv, 40, 4).is_err());
}
