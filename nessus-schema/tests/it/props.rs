//! Property tests of the filter language and evaluator.

use std::sync::OnceLock;

use nessus_schema::{Filter, Finding, NessusReader, PageRequest, Query, Record, Store};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    findings: Vec<Finding>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::ingest("auvap__ms2_scan.nessus", dir.path());
        let file = std::fs::File::open(crate::corpus("auvap__ms2_scan.nessus")).unwrap();
        let findings = NessusReader::new(std::io::BufReader::new(file))
            .filter_map(|r| match r.unwrap() {
                Record::Finding(f) => Some(f),
                _ => None,
            })
            .collect();
        Fixture {
            _dir: dir,
            store,
            findings,
        }
    })
}

fn field() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "severity",
        "port",
        "plugin_id",
        "host",
        "protocol",
        "plugin_name",
        "svc_name",
        "cvss_score",
        "cvss3_base_score",
        "vpr_score",
        "epss_score",
        "exploit_available",
        "cve",
        "xref",
        "risk_factor",
        "plugin_output",
    ])
}

fn operand() -> impl Strategy<Value = Json> {
    prop_oneof![
        (0i64..70000).prop_map(|n| json!(n)),
        (0.0f64..10.0).prop_map(|f| json!((f * 10.0).round() / 10.0)),
        any::<bool>().prop_map(|b| json!(b)),
        Just(Json::Null),
        "[a-zA-Z0-9 ./:-]{0,6}".prop_map(|s| json!(s)),
        prop::sample::select(vec![
            "tcp",
            "udp",
            "High",
            "CVE-20",
            "apache",
            "10.0.0.0/8",
            ">=3",
            "<5",
            "=80",
            "!=0"
        ])
        .prop_map(|s| json!(s)),
    ]
}

fn condition() -> impl Strategy<Value = Json> {
    prop_oneof![
        operand(),
        prop::collection::vec(operand(), 0..3).prop_map(Json::Array),
        (
            prop::sample::select(vec![
                "eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "regex", "cidr", "exists",
                "bogus"
            ]),
            prop_oneof![
                operand(),
                prop::collection::vec(operand(), 0..3).prop_map(Json::Array)
            ],
        )
            .prop_map(|(op, arg)| json!({ op: arg })),
    ]
}

fn filter_json() -> impl Strategy<Value = Json> {
    prop::collection::btree_map(field(), condition(), 0..3)
        .prop_map(|m| Json::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any filter either is refused with an error or gives the same answer from the store
    /// (column index plus record fallback) as from evaluating parsed findings.
    #[test]
    fn store_and_direct_evaluation_agree(filter in filter_json()) {
        let fx = fixture();
        if let Ok(f) = Filter::from_json(&filter) {
            let direct = fx.findings.iter().filter(|x| f.matches(x)).count() as u64;
            let q = Query { filter: f, page: PageRequest::All { byte_budget: None }, ..Query::default() };
            let (_, info) = fx.store.page_string(&q).unwrap();
            prop_assert_eq!(info.total, direct);
        }
    }

    /// Numeric shorthand compares numerically on numeric fields.
    #[test]
    fn numeric_shorthand_is_numeric(x in 0u8..6, op in prop::sample::select(vec![">=", "<=", ">", "<", "=", "!=", ""])) {
        let fx = fixture();
        let f = Filter::from_json(&json!({ "severity": format!("{op}{x}") })).unwrap();
        let expected = fx.findings.iter().filter(|v| {
            let s = v.severity.unwrap();
            match op { ">=" => s >= x, "<=" => s <= x, ">" => s > x, "<" => s < x, "!=" => s != x, _ => s == x }
        }).count();
        prop_assert_eq!(fx.findings.iter().filter(|v| f.matches(v)).count(), expected);
    }

    /// Arbitrary JSON never panics the filter parser.
    #[test]
    fn arbitrary_json_never_panics(text in ".{0,40}") {
        let _ = Filter::from_json_str(&text);
        let _ = Filter::from_json_str(&format!("{{\"severity\": {text}}}"));
    }
}
