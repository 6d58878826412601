//! `nessus-cli findings changes TARGET… --since X`: findings over time, through the
//! same service call as the `findings_changes` tool (tenancy, limits, audit).

use nessus_queue::service::{ChangesRequest, Principal, TriageRequest, changes_text};

use crate::cli::{FindingsChangesArgs, FindingsCommand, FindingsTriageArgs, GlobalArgs};
use crate::commands::{backend, config, print_json, print_text};
use crate::exit::CliError;

pub(crate) fn run(global: &GlobalArgs, cmd: &FindingsCommand) -> anyhow::Result<()> {
    match cmd {
        FindingsCommand::Changes(args) => changes(global, args),
        FindingsCommand::Triage(args) => triage(global, args),
    }
}

fn principal_of(p: Option<&String>) -> Principal {
    match p {
        Some(p) => Principal::new(p.as_str()),
        None => Principal::local(),
    }
}

fn usage(e: nessus_queue::Error) -> anyhow::Error {
    match e {
        nessus_queue::Error::Invalid { field, reason } => {
            CliError::Usage(format!("--{}: {reason}", field.replace('_', "-"))).into()
        }
        e => anyhow::Error::new(e),
    }
}

fn triage(global: &GlobalArgs, args: &FindingsTriageArgs) -> anyhow::Result<()> {
    let config = config::load(global)?;
    let rt = backend::current_thread()?;
    let service = backend::open_service(&rt, global, config, backend::Missing::Refuse)?;
    let req = TriageRequest::new(
        args.fingerprint.clone(),
        args.mark.clone(),
        args.reason.clone(),
    )
    .expires_at(args.expires_at.clone());
    let t = rt
        .block_on(service.triage_finding(&principal_of(args.principal.as_ref()), &req))
        .map_err(usage)?;
    if global.json {
        return print_json(&serde_json::json!({
            "fingerprint": t.fingerprint,
            "asset_id": t.asset_id,
            "host": t.host,
            "plugin_id": t.finding.plugin_id,
            "current_state": t.finding.state.as_str(),
            "triage": t.finding.triage,
        }));
    }
    let what = match &t.finding.triage {
        Some(m) => format!(
            "marked {} ({}){}",
            m.mark.as_str(),
            m.reason,
            m.expires_at
                .map(|e| format!(" until {e}"))
                .unwrap_or_default()
        ),
        None => "mark cleared".to_owned(),
    };
    print_text(&format!(
        "{} on {} ({}): {what}\n",
        t.fingerprint, t.host, t.asset_id
    ))
}

fn changes(global: &GlobalArgs, args: &FindingsChangesArgs) -> anyhow::Result<()> {
    let config = config::load(global)?;
    let rt = backend::current_thread()?;
    let service = backend::open_service(&rt, global, config, backend::Missing::Refuse)?;
    let principal = principal_of(args.principal.as_ref());
    let states = match args.states.as_slice() {
        [] => None,
        [one] if one == "all" => Some(Vec::new()),
        v => Some(v.to_vec()),
    };
    let req = ChangesRequest::new(args.targets.clone(), args.since.clone())
        .states(states)
        .severity(args.severity.clone())
        .limit(Some(args.limit))
        .cursor(args.cursor.clone())
        .include_triaged(args.include_triaged);
    let page = rt
        .block_on(service.findings_changes(&principal, &req))
        .map_err(usage)?;
    if global.json {
        return print_text(&format!("{}\n", changes_text(&page, Some(usize::MAX))));
    }
    let mut out = String::new();
    for c in &page.changes {
        let port = match (&c.port, &c.protocol) {
            (Some(p), Some(pr)) => format!("{p}/{pr}"),
            (Some(p), None) => p.to_string(),
            _ => "-".to_owned(),
        };
        out.push_str(&format!(
            "{:<10} sev {} {:<16} {:<10} {:>7} {} (first seen {}, last seen {})\n",
            c.state.as_str(),
            c.severity.map_or("-".to_owned(), |s| s.to_string()),
            c.host,
            port,
            c.plugin_id.map_or("-".to_owned(), |p| p.to_string()),
            c.plugin_name.as_deref().unwrap_or(""),
            c.first_seen,
            c.last_seen,
        ));
    }
    let counts: Vec<String> = page
        .counts
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    out.push_str(&format!(
        "{} finding(s) on {} asset(s){}{}\n",
        page.changes.len(),
        page.assets,
        if counts.is_empty() {
            String::new()
        } else {
            format!(": {}", counts.join(", "))
        },
        page.next_cursor
            .as_ref()
            .map(|c| format!("; more with --cursor {c}"))
            .unwrap_or_default(),
    ));
    print_text(&out)
}
