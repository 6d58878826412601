//! Feeds arbitrary text to the filter parser and evaluates what parses against a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nessus_schema::{Filter, Finding, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(filter) = Filter::from_json_str(text) {
        let finding = Finding {
            host: "10.0.0.1".into(),
            plugin_id: Some(19506),
            severity: Some(3),
            port: Some(443),
            fields: vec![
                ("cve".into(), Value::List(vec!["CVE-2021-1".into()])),
                ("cvss3_base_score".into(), Value::Float(9.8)),
                ("plugin_output".into(), Value::Text("Credentialed checks : no".into())),
            ],
            ..Finding::default()
        };
        let _ = filter.matches(&finding);
    }
});
