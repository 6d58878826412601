//! Prompts: ready-made workflows an agent (or its user) can pick from a menu.

use rmcp::{
    ErrorData,
    model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role},
};
use serde_json::{Map, Value};

const SCAN_AND_TRIAGE: &str = "scan_and_triage";
const TRIAGE_RESULTS: &str = "triage_results";

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
                 every 30 seconds until the status is terminal. If it completed, call \
                 get_scan_results with schema_profile=\"brief\" and filters {{\"severity\": \">=3\"}}, \
                 page through every page, and summarise: affected hosts, each critical/high finding \
                 with plugin name, port and CVEs, and concrete remediation steps. If it failed, \
                 report error_message and what to check."
            )
        }
        TRIAGE_RESULTS => {
            let task_id = required(args, name, "task_id")?;
            format!(
                "Call get_scan_results for task_id \"{task_id}\" with schema_profile=\"brief\" and \
                 filters {{\"severity\": \">=3\"}}, reading every page. Group findings by host, list \
                 each critical/high finding with plugin name, port, CVSS and CVEs, and finish with a \
                 prioritised remediation plan."
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
