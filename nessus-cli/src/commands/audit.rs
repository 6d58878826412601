//! `audit`: the audit trail, newest first, filtered in the backend's indexes.
//!
//! It opens the queue like the other admin commands (`queue::open`: a missing SQLite
//! file is an input error). Human output escapes control characters in every field:
//! principals, task names in details and targets come from callers, and an escape
//! sequence must not reach the admin's terminal.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use jiff::{SignedDuration, Timestamp};
use nessus_queue::{AuditAction, AuditPage, AuditQuery};

use crate::cli::{AuditArgs, GlobalArgs};
use crate::commands::{print_json, print_text, queue};
use crate::exit::CliError;

pub(crate) fn run(global: &GlobalArgs, args: &AuditArgs) -> anyhow::Result<()> {
    let now = Timestamp::now();
    // Arguments are checked before the queue is opened: a typo is a usage error
    // whatever the backend's state.
    let mut query = AuditQuery::new(args.limit.clamp(1, 1000));
    if let Some(p) = &args.principal {
        query = query.principal(p.clone());
    }
    if let Some(a) = &args.action {
        let action: AuditAction = a
            .parse()
            .map_err(|e: nessus_queue::Error| CliError::Usage(format!("--action: {e}")))?;
        query = query.action(action);
    }
    if let Some(t) = &args.task_id {
        query = query.task_id(t.clone());
    }
    if let Some(p) = &args.pool {
        query = query.pool(p.clone());
    }
    if let Some(s) = &args.since {
        query = query.since(parse_time("--since", s, now)?);
    }
    if let Some(u) = &args.until {
        query = query.until(parse_time("--until", u, now)?);
    }
    if let Some(c) = &args.cursor {
        query = query.cursor(c.clone());
    }
    let (rt, service) = queue::open(global)?;
    let queue = service.queue();
    let page = rt.block_on(queue.audit_list(query))?;
    if global.json {
        return print_json(&page);
    }
    print_text(&table(&page))
}

/// An RFC 3339 time, or an age before `now`: a whole number and a unit, one of
/// s, m, h, d (24 h) or w (7 d).
fn parse_time(flag: &str, text: &str, now: Timestamp) -> anyhow::Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let usage = || {
        CliError::Usage(format!(
            "{flag} {text:?} is neither an RFC 3339 time nor an age like 30m, 24h or 7d"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(usage)?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| usage())?;
    let secs_per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(usage().into()),
    };
    let age = n
        .checked_mul(secs_per)
        .map(SignedDuration::from_secs)
        .ok_or_else(usage)?;
    now.checked_sub(age).map_err(|_| usage().into())
}

fn table(page: &AuditPage) -> String {
    if page.events.is_empty() {
        return "no audit events\n".to_owned();
    }
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_header([
        "time",
        "action",
        "principal",
        "task id",
        "pool",
        "targets",
        "outcome",
        "detail",
        "trace id",
    ]);
    let opt = |v: &Option<String>| terminal_safe(v.as_deref().unwrap_or(""));
    for e in &page.events {
        table.add_row([
            e.at.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string(),
            e.action.to_string(),
            terminal_safe(&e.principal),
            opt(&e.task_id),
            opt(&e.pool),
            opt(&e.targets),
            terminal_safe(&e.outcome),
            opt(&e.detail),
            terminal_safe(&e.trace_id),
        ]);
    }
    let mut text = format!("{table}\n");
    if let Some(cursor) = &page.next_cursor {
        // The cursor is ours (digits, ':' and hex), but escaping costs nothing.
        text.push_str(&format!("more: --cursor {}\n", terminal_safe(cursor)));
    }
    text
}

/// The shared terminal-safe rendering (`crate::terminal::safe`), owned in one place.
fn terminal_safe(text: &str) -> String {
    crate::terminal::safe(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_ages() {
        let now: Timestamp = "2026-12-07T12:00:00Z".parse().unwrap();
        for (input, expected) in [
            ("2026-12-01T00:00:00Z", Some("2026-12-01T00:00:00Z")),
            ("90s", Some("2026-12-07T11:58:30Z")),
            ("30m", Some("2026-12-07T11:30:00Z")),
            ("24h", Some("2026-12-06T12:00:00Z")),
            ("7d", Some("2026-11-30T12:00:00Z")),
            ("2w", Some("2026-11-23T12:00:00Z")),
            ("24", None),
            ("h", None),
            ("24y", None),
            ("-3h", None),
            ("yesterday", None),
        ] {
            let got = parse_time("--since", input, now).ok();
            let expected = expected.map(|e| e.parse::<Timestamp>().unwrap());
            assert_eq!(got, expected, "{input:?}");
        }
    }
}
