//! `nessus-cli findings changes TARGET… --since X`: findings over time, through the
//! same service call as the `findings_changes` tool (tenancy, limits, audit).

use nessus_queue::service::{ChangesRequest, Principal, changes_text};

use crate::cli::{FindingsChangesArgs, FindingsCommand, GlobalArgs};
use crate::commands::{backend, config, print_text};
use crate::exit::CliError;

pub(crate) fn run(global: &GlobalArgs, cmd: &FindingsCommand) -> anyhow::Result<()> {
    match cmd {
        FindingsCommand::Changes(args) => changes(global, args),
    }
}

fn changes(global: &GlobalArgs, args: &FindingsChangesArgs) -> anyhow::Result<()> {
    let config = config::load(global)?;
    let rt = backend::current_thread()?;
    let service = backend::open_service(&rt, global, config, backend::Missing::Refuse)?;
    let principal = match &args.principal {
        Some(p) => Principal::new(p.as_str()),
        None => Principal::local(),
    };
    let states = match args.states.as_slice() {
        [] => None,
        [one] if one == "all" => Some(Vec::new()),
        v => Some(v.to_vec()),
    };
    let req = ChangesRequest::new(args.targets.clone(), args.since.clone())
        .states(states)
        .severity(args.severity.clone())
        .limit(Some(args.limit))
        .cursor(args.cursor.clone());
    let page = rt
        .block_on(service.findings_changes(&principal, &req))
        .map_err(|e| match e {
            nessus_queue::Error::Invalid { field, reason } => {
                CliError::Usage(format!("--{field}: {reason}")).into()
            }
            e => anyhow::Error::new(e),
        })?;
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
