//! Facts the agent reads in tool descriptions, input-schema descriptions, the
//! `nessus://schema/fields` resource and error hints, written from the
//! catalogue constants so each fact has one owner.
//!
//! Doc comments of tools and DTOs carry placeholders (`{severity_scale}`,
//! `{profiles}`, `{sort_fields}`, `{operators}`, `{default_budget}`,
//! `{min_budget}`, `{max_budget}`); [`NessusMcp::router`](crate::server::NessusMcp)
//! substitutes them once, when the router is built.

use nessus_schema::{
    DEFAULT_ANSWER_BUDGET, MAX_ANSWER_BUDGET, MIN_ANSWER_BUDGET, OPERATORS, Profile, SORT_FIELDS,
};

/// Default, smallest and largest answer budget in bytes (the library's constants).
pub(crate) const ANSWER_BUDGET: [usize; 3] =
    [DEFAULT_ANSWER_BUDGET, MIN_ANSWER_BUDGET, MAX_ANSWER_BUDGET];
use serde_json::Value;

/// One profile's fields, or "every field of the finding" for `full`.
pub(crate) fn profile_fields(p: Profile) -> String {
    p.fields()
        .map_or_else(|| "every field of the finding".to_owned(), |f| f.join(", "))
}

/// "minimal (host, plugin_id, ...); summary (...); brief, the default (...); full (every field ...)".
pub(crate) fn profiles() -> String {
    Profile::ALL
        .iter()
        .map(|p| {
            let name = if *p == Profile::default() {
                format!("{}, the default", p.name())
            } else {
                p.name().to_owned()
            };
            format!("{name} ({})", profile_fields(*p))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn kib(bytes: usize) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

/// `text` with every placeholder replaced.
pub(crate) fn substitute(text: &str) -> String {
    if !text.contains('{') {
        return text.to_owned();
    }
    let [default, min, max] = ANSWER_BUDGET;
    text.replace("{severity_scale}", &nessus_schema::severity_scale())
        .replace("{profiles}", &profiles())
        .replace("{sort_fields}", &SORT_FIELDS.join(", "))
        .replace("{operators}", &OPERATORS.join(", "))
        .replace("{default_budget}", &format!("{default} ({})", kib(default)))
        .replace("{min_budget}", &min.to_string())
        .replace("{max_budget}", &max.to_string())
        .replace(
            "{export_part_findings}",
            &nessus_schema::EXPORT_PART_MAX_FINDINGS.to_string(),
        )
        .replace(
            "{export_part_bytes}",
            &kib(nessus_schema::EXPORT_PART_MAX_BYTES),
        )
        .replace(
            "{report_findings}",
            &nessus_schema::REPORT_MAX_FINDINGS.to_string(),
        )
        .replace("{report_bytes}", &kib(nessus_schema::REPORT_MAX_BYTES))
}

/// Substitutes every `description` string inside a JSON Schema.
pub(crate) fn substitute_schema(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                match child {
                    Value::String(s) if k == "description" => *s = substitute(s),
                    _ => substitute_schema(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(substitute_schema),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_from_the_catalogue() {
        let s = substitute("scale {severity_scale}; {profiles}; sort {sort_fields}");
        assert!(
            s.contains("4 critical, 3 high, 2 medium, 1 low, 0 info"),
            "{s}"
        );
        assert!(s.contains("brief, the default ("), "{s}");
        assert!(s.contains("full (every field"), "{s}");
        for f in SORT_FIELDS {
            assert!(s.contains(f), "{f}: {s}");
        }
        assert!(!s.contains('{'), "{s}");
    }

    /// No published description (tools, input schemas, both modes) keeps a placeholder.
    #[test]
    fn every_published_text_is_substituted() {
        const PLACEHOLDERS: [&str; 11] = [
            "{severity_scale}",
            "{profiles}",
            "{sort_fields}",
            "{operators}",
            "{default_budget}",
            "{min_budget}",
            "{max_budget}",
            "{export_part_findings}",
            "{export_part_bytes}",
            "{report_findings}",
            "{report_bytes}",
        ];
        for mode in [
            nessus_core::ToolOutput::Compatible,
            nessus_core::ToolOutput::Typed,
        ] {
            for t in crate::compat::tools(mode) {
                let all = format!(
                    "{} {}",
                    t.description.as_deref().unwrap_or_default(),
                    Value::Object((*t.input_schema).clone())
                );
                for p in PLACEHOLDERS {
                    assert!(!all.contains(p), "{}: {p} left in {all}", t.name);
                }
            }
        }
        let results = crate::server::NessusMcp::router()
            .get("get_scan_results")
            .and_then(|t| t.description.clone())
            .unwrap_or_default();
        assert!(
            results.contains(&nessus_schema::severity_scale()),
            "{results}"
        );
        for p in Profile::ALL {
            assert!(results.contains(&profile_fields(p)), "{results}");
        }
    }
}
