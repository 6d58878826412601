//! Recurring scans: a schedule record and its pure rules (no I/O). Backends store a
//! schedule with a compare-and-set on [`Schedule::version`]; the service fires due
//! slots through the ordinary submit path (see `service::schedules`).
//!
//! Cron expressions have five fields (minute hour day-of-month month day-of-week),
//! parsed by `croner` and evaluated in the schedule's IANA time zone with `jiff`, so a
//! daily 02:00 stays 02:00 local across DST changes (a slot that does not exist that
//! day is croner's choice: the next valid time).

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::task::ScanType;

/// A recurring scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Schedule {
    /// `sch_` + 32 lowercase hex (128 random bits).
    pub schedule_id: String,
    /// Owner: every run is submitted as this principal.
    pub principal: String,
    /// Pool.
    pub pool: String,
    /// Kind of scan.
    pub scan_type: ScanType,
    /// Targets (the canonical list approved when the schedule was created; each run
    /// is checked again against the policy in force).
    pub targets: String,
    /// Scan name of every run.
    pub name: String,
    /// Description.
    pub description: String,
    /// Results profile.
    pub schema_profile: String,
    /// Named credential profile (never ad-hoc secrets).
    pub credential_profile: Option<String>,
    /// Instance pin.
    pub scanner_instance: Option<String>,
    /// Five-field cron expression.
    pub cron: String,
    /// IANA time zone the expression is read in.
    pub timezone: String,
    /// A paused schedule fires nothing.
    pub paused: bool,
    /// The next slot to fire.
    pub next_slot: Timestamp,
    /// The last slot fired.
    pub last_fired_slot: Option<Timestamp>,
    /// The task the last slot created.
    pub last_task_id: Option<String>,
    /// Why the last slot created no task, if it did not.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at: Timestamp,
    /// Last write.
    pub updated_at: Timestamp,
    /// Compare-and-set version, bumped by every stored write.
    pub version: u64,
}

/// Whether `id` is a syntactically valid schedule id.
pub fn is_valid_schedule_id(id: &str) -> bool {
    id.len() == 36
        && id.starts_with("sch_")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh schedule id.
pub fn new_schedule_id() -> String {
    let rnd: u128 = rand::random();
    format!("sch_{rnd:032x}")
}

fn parse_cron(cron: &str) -> Result<croner::Cron> {
    if cron.split_whitespace().count() != 5 {
        return Err(Error::invalid(
            "cron",
            format!("'{cron}' must have five fields: minute hour day-of-month month day-of-week"),
        ));
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build()
        .parse(cron)
        .map_err(|e| Error::invalid("cron", format!("'{cron}': {e}")))
}

fn parse_tz(tz: &str) -> Result<TimeZone> {
    TimeZone::get(tz).map_err(|e| {
        Error::invalid(
            "timezone",
            format!("'{tz}' is not an IANA time zone (e.g. UTC, Europe/Berlin): {e}"),
        )
    })
}

/// Checks a cron expression and a time zone.
pub fn validate(cron: &str, tz: &str) -> Result<()> {
    parse_cron(cron)?;
    parse_tz(tz)?;
    Ok(())
}

/// The first slot of `cron` in `tz` strictly after `after`.
pub fn next_slot_after(cron: &str, tz: &str, after: Timestamp) -> Result<Timestamp> {
    let c = parse_cron(cron)?;
    let zoned = after.to_zoned(parse_tz(tz)?);
    c.find_next_occurrence(&zoned, false)
        .map(|z| z.timestamp())
        .map_err(|e| Error::invalid("cron", format!("'{cron}' has no next slot: {e}")))
}

impl Schedule {
    /// The slot due at `now`, if any (not paused and `next_slot <= now`).
    pub fn due(&self, now: Timestamp) -> Option<Timestamp> {
        (!self.paused && self.next_slot <= now).then_some(self.next_slot)
    }

    /// Advances past the slot due at `now`: `last_fired_slot` becomes it and
    /// `next_slot` the first slot after `now`, so however many slots were missed
    /// (every node down) one run catches up. Returns the fired slot, or `None` when
    /// nothing was due (nothing changed).
    pub fn advance(&mut self, now: Timestamp) -> Result<Option<Timestamp>> {
        let Some(slot) = self.due(now) else {
            return Ok(None);
        };
        self.next_slot = next_slot_after(&self.cron, &self.timezone, now)?;
        self.last_fired_slot = Some(slot);
        self.updated_at = now;
        Ok(Some(slot))
    }

    /// Pauses (idempotent).
    pub fn pause(&mut self, now: Timestamp) {
        if !self.paused {
            self.paused = true;
            self.updated_at = now;
        }
    }

    /// Resumes: the next slot is the first after `now` (slots missed while paused
    /// are not caught up).
    pub fn resume(&mut self, now: Timestamp) -> Result<()> {
        if self.paused {
            self.paused = false;
            self.next_slot = next_slot_after(&self.cron, &self.timezone, now)?;
            self.updated_at = now;
        }
        Ok(())
    }

    /// The idempotency key of the run for `slot`: the same on every node, so two
    /// schedulers (or one retrying after a crash) make one task.
    pub fn idempotency_key(&self, slot: Timestamp) -> String {
        format!("schedule:{}:{}", self.schedule_id, slot.as_millisecond())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_slots_in_time_zones_and_refusals() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        // (cron, tz, after, next)
        let cases = [
            (
                "* * * * *",
                "UTC",
                "2026-01-01T00:00:30Z",
                "2026-01-01T00:01:00Z",
            ),
            (
                "0 2 * * *",
                "UTC",
                "2026-01-01T02:00:00Z",
                "2026-01-02T02:00:00Z",
            ),
            // 02:00 in Berlin is 01:00 UTC in winter, 00:00 UTC in summer.
            (
                "0 2 * * *",
                "Europe/Berlin",
                "2026-01-10T12:00:00Z",
                "2026-01-11T01:00:00Z",
            ),
            (
                "0 2 * * *",
                "Europe/Berlin",
                "2026-07-10T12:00:00Z",
                "2026-07-11T00:00:00Z",
            ),
            (
                "*/15 * * * 1-5",
                "UTC",
                "2026-01-03T10:00:00Z",
                "2026-01-05T00:00:00Z",
            ),
        ];
        for (cron, tz, after, want) in cases {
            assert_eq!(
                next_slot_after(cron, tz, t(after)).unwrap(),
                t(want),
                "{cron} {tz}"
            );
        }
        for (cron, tz, field) in [
            ("* * * *", "UTC", "cron"),
            ("0 * * * * *", "UTC", "cron"),
            ("61 * * * *", "UTC", "cron"),
            ("* * * * *", "Mars/Olympus", "timezone"),
        ] {
            match validate(cron, tz) {
                Err(Error::Invalid { field: f, .. }) => assert_eq!(f, field, "{cron} {tz}"),
                other => panic!("{cron} {tz}: {other:?}"),
            }
        }
        assert!(is_valid_schedule_id(&new_schedule_id()));
        assert!(!is_valid_schedule_id("sch_../x"));
    }
}
