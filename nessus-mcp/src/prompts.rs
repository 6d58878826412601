//! Prompts: ready-made workflows an agent (or its user) can pick from a menu.

use nessus_schema::Profile;
use rmcp::{
    ErrorData,
    model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role},
};
use serde_json::{Map, Value};

const SCAN_AND_TRIAGE: &str = "scan_and_triage";
const TRIAGE_RESULTS: &str = "triage_results";

/// The profile the triage prompts read findings with.
const TRIAGE_PROFILE: Profile = Profile::Brief;

/// What the triage prompts want per finding, in the order they ask for it; only
/// the ones [`TRIAGE_PROFILE`] returns are asked for (the catalogue decides).
const TRIAGE_WANTS: [(&str, &str); 7] = [
    ("host", "host"),
    ("plugin_name", "plugin name"),
    ("port", "port"),
    ("cvss_score", "CVSS"),
    ("cve", "CVEs"),
    ("exploit_available", "whether an exploit exists"),
    ("solution", "the solution"),
];

/// The fields of [`TRIAGE_WANTS`] that [`TRIAGE_PROFILE`] returns.
fn triage_fields() -> Vec<(&'static str, &'static str)> {
    let fields = TRIAGE_PROFILE.fields().unwrap_or_default();
    TRIAGE_WANTS
        .into_iter()
        .filter(|(f, _)| TRIAGE_PROFILE == Profile::Full || fields.contains(f))
        .collect()
}

/// The shared triage instructions for `which` (e.g. `task_id "..."`): counts
/// first with summarize_results, then only the serious findings.
fn triage_steps(which: &str) -> String {
    let asks: Vec<&str> = triage_fields().iter().map(|(_, label)| *label).collect();
    format!(
        "call summarize_results for {which} with group_by=\"severity\" to see how many findings \
         of each severity the scan holds, then summarize_results with group_by=\"host\" and \
         filters {{\"severity\": \">=3\"}} to rank the hosts by critical and high findings. \
         Then call get_scan_results for {which} with schema_profile=\"{profile}\" and filters \
         {{\"severity\": \">=3\"}}; when the closing line says there is more, follow its next \
         instruction. Summarise per host each critical/high finding with {asks}, and finish \
         with a prioritised remediation plan (severity scale: {scale}).",
        profile = TRIAGE_PROFILE.name(),
        asks = asks.join(", "),
        scale = nessus_schema::severity_scale(),
    )
}

/// Every prompt this server offers.
pub(crate) fn list() -> Vec<Prompt> {
    vec![
        Prompt::new(
            SCAN_AND_TRIAGE,
            Some("Scan targets, wait for completion, then summarise the serious findings."),
            Some(vec![
                PromptArgument::new("targets")
                    .with_description(
                        "Hosts, IPs or CIDRs to scan (must be inside the pool's target policy).",
                    )
                    .with_required(true),
                PromptArgument::new("scanner_pool")
                    .with_description("Pool to scan from (default: the default pool).")
                    .with_required(false),
            ]),
        )
        .with_title("Scan and triage"),
        Prompt::new(
            TRIAGE_RESULTS,
            Some("Summarise the critical and high findings of a completed scan."),
            Some(vec![
                PromptArgument::new("task_id")
                    .with_description("task_id of a completed scan.")
                    .with_required(true),
            ]),
        )
        .with_title("Triage scan results"),
    ]
}

fn arg<'a>(args: Option<&'a Map<String, Value>>, name: &str) -> Option<&'a str> {
    args.and_then(|a| a.get(name))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn required<'a>(
    args: Option<&'a Map<String, Value>>,
    prompt: &str,
    name: &str,
) -> Result<&'a str, ErrorData> {
    arg(args, name).ok_or_else(|| {
        ErrorData::invalid_params(
            format!("prompt '{prompt}' needs the argument '{name}'"),
            None,
        )
    })
}

/// Render one prompt.
pub(crate) fn get(
    name: &str,
    args: Option<&Map<String, Value>>,
) -> Result<GetPromptResult, ErrorData> {
    let text = match name {
        SCAN_AND_TRIAGE => {
            let targets = required(args, name, "targets")?;
            let pool = arg(args, "scanner_pool")
                .map(|p| format!(" with scanner_pool=\"{p}\""))
                .unwrap_or_default();
            format!(
                "Run an untrusted Nessus scan of {targets}{pool} using run_untrusted_scan (set an \
                 idempotency_key so a retry does not start a second scan). Poll get_scan_status \
                 every 30 seconds until the status is terminal. If it completed, {} If it failed, \
                 report error_message and what to check.",
                triage_steps("the returned task_id")
            )
        }
        TRIAGE_RESULTS => {
            let task_id = required(args, name, "task_id")?;
            let steps = triage_steps(&format!("task_id \"{task_id}\""));
            let mut steps = steps.chars();
            let first = steps.next().map(|c| c.to_ascii_uppercase());
            format!(
                "{}{}",
                first.map(String::from).unwrap_or_default(),
                steps.as_str()
            )
        }
        other => {
            return Err(ErrorData::invalid_params(
                format!(
                    "unknown prompt '{other}': known prompts are {SCAN_AND_TRIAGE} and {TRIAGE_RESULTS}"
                ),
                None,
            ));
        }
    };
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
            match name {
                SCAN_AND_TRIAGE => "Scan and triage",
                _ => "Triage scan results",
            },
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(name: &str, args: serde_json::Value) -> String {
        let Value::Object(m) = args else {
            panic!("object")
        };
        let r = get(name, Some(&m)).expect("prompt renders");
        serde_json::to_value(&r.messages[0]).expect("json")["content"]["text"]
            .as_str()
            .expect("text")
            .to_owned()
    }

    /// Both triage prompts start with summarize_results and ask only for fields their
    /// profile returns (checked against the catalogue, not the prompt's own list).
    #[test]
    fn triage_prompts_summarize_first_and_ask_for_profile_fields() {
        let profile_fields = TRIAGE_PROFILE.fields().expect("a listed profile");
        for (name, args) in [
            (TRIAGE_RESULTS, serde_json::json!({"task_id": "t1"})),
            (SCAN_AND_TRIAGE, serde_json::json!({"targets": "192.0.2.1"})),
        ] {
            let t = text(name, args);
            let summarize = t.find("summarize_results").expect("summarize_results");
            let results = t.find("get_scan_results").expect("get_scan_results");
            assert!(summarize < results, "{name}: {t}");
            assert!(t.contains(&format!("schema_profile=\"{}\"", TRIAGE_PROFILE.name())));
            for (field, label) in TRIAGE_WANTS {
                let asked =
                    t.contains(&format!(" {label},")) || t.contains(&format!(" {label}, and"));
                assert_eq!(
                    asked,
                    profile_fields.contains(&field),
                    "{name}: {field} ({label}) asked iff the profile returns it: {t}"
                );
            }
        }
    }
}
