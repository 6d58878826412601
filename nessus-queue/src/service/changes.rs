//! Findings over time through the service: "what changed on these targets since X",
//! with tenancy (a principal reads the scope of its own tasks; an admin every
//! scope), limits and the audit record. The states themselves are kept by
//! [`crate::Queue::record_findings`] for every completed scan.

use jiff::Timestamp;

use crate::audit::{AuditAction, AuditEvent};
use crate::error::{Error, Result};
use crate::findings::{
    CHANGES_MAX, ChangesPage, ChangesQuery, FindingRecord, FindingState, Since, TARGETS_MAX,
    Target, Triage, TriageMark,
};
use crate::limits::{CURSOR_MAX, check_len};

use super::{Operation, Principal, Service};

/// Default page size of a changes answer.
pub const CHANGES_DEFAULT_LIMIT: usize = 100;

/// A `findings_changes` request as a frontend received it.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ChangesRequest {
    /// Hosts (addresses, names) and CIDRs.
    pub targets: Vec<String>,
    /// An RFC 3339 instant, a date (`YYYY-MM-DD`, midnight UTC) or a task id.
    pub since: String,
    /// States to return (default: new, reopened, fixed).
    pub states: Option<Vec<String>>,
    /// Minimum severity: 0-4 or info, low, medium, high, critical.
    pub severity: Option<String>,
    /// Page size (1..=1000, default 100).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous answer.
    pub cursor: Option<String>,
    /// Include findings with a triage mark in force (default: left out).
    pub include_triaged: bool,
}

impl ChangesRequest {
    /// Changes on `targets` since `since`.
    pub fn new(targets: Vec<String>, since: impl Into<String>) -> Self {
        Self {
            targets,
            since: since.into(),
            ..Self::default()
        }
    }

    /// Only these states.
    #[must_use]
    pub fn states(mut self, s: Option<Vec<String>>) -> Self {
        self.states = s;
        self
    }

    /// Only this severity and above.
    #[must_use]
    pub fn severity(mut self, s: Option<String>) -> Self {
        self.severity = s;
        self
    }

    /// Page size.
    #[must_use]
    pub fn limit(mut self, n: Option<usize>) -> Self {
        self.limit = n;
        self
    }

    /// Continue after a cursor.
    #[must_use]
    pub fn cursor(mut self, c: Option<String>) -> Self {
        self.cursor = c;
        self
    }

    /// Include triaged findings.
    #[must_use]
    pub fn include_triaged(mut self, yes: bool) -> Self {
        self.include_triaged = yes;
        self
    }
}

/// A `triage_finding` request.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TriageRequest {
    /// The finding fingerprint (64 hex digits, from findings_changes).
    pub fingerprint: String,
    /// `false_positive`, `accepted_risk` or `clear`.
    pub mark: String,
    /// Why (required to mark).
    pub reason: String,
    /// When the mark lapses: RFC 3339 or a date; in the future.
    pub expires_at: Option<String>,
}

impl TriageRequest {
    /// Marks `fingerprint` with `mark` for `reason`.
    pub fn new(
        fingerprint: impl Into<String>,
        mark: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            fingerprint: fingerprint.into(),
            mark: mark.into(),
            reason: reason.into(),
            expires_at: None,
        }
    }

    /// The mark lapses then.
    #[must_use]
    pub fn expires_at(mut self, at: Option<String>) -> Self {
        self.expires_at = at;
        self
    }
}

/// What a triage did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Triaged {
    /// The fingerprint.
    pub fingerprint: String,
    /// The asset it belongs to.
    pub asset_id: String,
    /// The host as last scanned.
    pub host: String,
    /// The finding afterwards (its `triage` is the mark in force, or `None` cleared).
    pub finding: FindingRecord,
}

/// Most bytes of a triage reason.
pub const TRIAGE_REASON_MAX: usize = 2048;

/// Parses an instant: RFC 3339, or a date (midnight UTC).
fn instant(field: &'static str, s: &str) -> Result<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>()
        && let Ok(z) = d.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(z.timestamp());
    }
    Err(Error::invalid(
        field,
        format!("{s:?} is not an RFC 3339 time (2026-01-31T00:00:00Z) or a date (2026-01-31)"),
    ))
}

/// Parses a minimum severity: a number 0-4 or its name.
pub fn parse_severity(s: &str) -> Result<u8> {
    let s = s.trim().trim_start_matches(">=").trim();
    let names = ["info", "low", "medium", "high", "critical"];
    if let Ok(n) = s.parse::<u8>()
        && n <= 4
    {
        return Ok(n);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(s))
        .map(|i| i as u8)
        .ok_or_else(|| {
            Error::invalid(
                "severity",
                format!("{s:?} is not a severity; 0-4 or info, low, medium, high, critical"),
            )
        })
}

impl Service {
    /// What changed on `req.targets` since `req.since`, in the scopes `principal`
    /// may read, one page (see [`crate::Queue::findings_changes`]).
    pub async fn findings_changes(
        &self,
        principal: &Principal,
        req: &ChangesRequest,
    ) -> Result<ChangesPage> {
        principal.authorize(Operation::Read, "read findings")?;
        if req.targets.is_empty() {
            return Err(Error::invalid(
                "targets",
                "name at least one host or CIDR (e.g. [\"10.0.0.0/24\"])",
            ));
        }
        if req.targets.len() > TARGETS_MAX {
            return Err(Error::TooLong {
                field: "targets",
                actual: req.targets.len(),
                limit: TARGETS_MAX,
            });
        }
        for t in &req.targets {
            check_len("targets", t, crate::limits::NAME_MAX)?;
        }
        if let Some(c) = &req.cursor {
            check_len("cursor", c, CURSOR_MAX)?;
        }
        let targets = req
            .targets
            .iter()
            .map(|t| Target::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let since = self.since(principal, &req.since).await?;
        let states = match &req.states {
            None => vec![
                FindingState::New,
                FindingState::Reopened,
                FindingState::Fixed,
            ],
            Some(v) if v.is_empty() => FindingState::ALL.to_vec(),
            Some(v) => v
                .iter()
                .map(|s| s.parse())
                .collect::<Result<Vec<FindingState>>>()?,
        };
        let min_severity = match req.severity.as_deref() {
            None | Some("") => 0,
            Some(s) => parse_severity(s)?,
        };
        let limit = req
            .limit
            .unwrap_or(CHANGES_DEFAULT_LIMIT)
            .clamp(1, CHANGES_MAX);
        let scopes = if self.is_admin(principal) {
            self.queue.backend().finding_scopes().await?
        } else {
            vec![principal.as_str().to_owned()]
        };
        let q = ChangesQuery {
            targets,
            since,
            states,
            min_severity,
            include_triaged: req.include_triaged,
            limit,
            cursor: req.cursor.clone(),
        };
        let page = self.queue.findings_changes(&scopes, &q).await?;
        let event = AuditEvent::builder(AuditAction::FindingsRead, principal.as_str())
            .targets(req.targets.join(","))
            .detail(format!(
                "changes since {}: {} returned, {} assets",
                req.since,
                page.changes.len(),
                page.assets
            ))
            .build();
        self.record(event).await;
        Ok(page)
    }

    /// Marks (or clears) the finding `req.fingerprint` of `principal`'s own scans;
    /// an admin may triage any principal's finding (the admin capability). The mark
    /// applies to every later scan of the asset until it expires or is cleared, is
    /// shown with the finding, leaves it out of changes answers by default, and is
    /// audited.
    pub async fn triage_finding(
        &self,
        principal: &Principal,
        req: &TriageRequest,
    ) -> Result<Triaged> {
        principal.authorize(Operation::Triage, "triage findings")?;
        let fp = req.fingerprint.trim().to_ascii_lowercase();
        if fp.len() != 64 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(
                "fingerprint",
                "64 hex digits, as findings_changes returns it",
            ));
        }
        let now = Timestamp::now();
        let mark = match req.mark.trim() {
            "clear" => None,
            m => {
                let mark = match m {
                    "false_positive" => TriageMark::FalsePositive,
                    "accepted_risk" => TriageMark::AcceptedRisk,
                    other => {
                        return Err(Error::invalid(
                            "mark",
                            format!("{other:?}: one of false_positive, accepted_risk, clear"),
                        ));
                    }
                };
                let reason = req.reason.trim();
                if reason.is_empty() {
                    return Err(Error::invalid("reason", "say why the finding is marked"));
                }
                check_len("reason", reason, TRIAGE_REASON_MAX)?;
                let expires_at = match req.expires_at.as_deref().map(str::trim) {
                    None | Some("") => None,
                    Some(s) => {
                        let t = instant("expires_at", s)?;
                        if t <= now {
                            return Err(Error::invalid("expires_at", "must be in the future"));
                        }
                        Some(t)
                    }
                };
                Some(Triage {
                    mark,
                    reason: reason.to_owned(),
                    by: principal.as_str().to_owned(),
                    at: now,
                    expires_at,
                })
            }
        };
        let own = vec![principal.as_str().to_owned()];
        let mut found = self.queue.triage(&own, &fp, mark.clone()).await?;
        if found.is_none() && self.is_admin(principal) {
            principal.authorize(Operation::Admin, "triage another principal's findings")?;
            let others: Vec<String> = self
                .queue
                .backend()
                .finding_scopes()
                .await?
                .into_iter()
                .filter(|s| s != principal.as_str())
                .collect();
            found = self.queue.triage(&others, &fp, mark.clone()).await?;
        }
        let Some((scope, doc)) = found else {
            return Err(Error::invalid(
                "fingerprint",
                "no finding of your scans has this fingerprint (see findings_changes)",
            ));
        };
        let finding = doc
            .findings
            .get(&fp)
            .cloned()
            .ok_or_else(|| Error::invalid("fingerprint", "the finding aged out meanwhile"))?;
        let what = match &mark {
            Some(t) => format!(
                "{} {fp} on {} (scope {scope}): {}{}",
                t.mark.as_str(),
                doc.asset_id,
                t.reason,
                t.expires_at
                    .map(|e| format!("; expires {e}"))
                    .unwrap_or_default()
            ),
            None => format!("cleared {fp} on {} (scope {scope})", doc.asset_id),
        };
        let event = AuditEvent::builder(AuditAction::Triage, principal.as_str())
            .targets(doc.host.clone())
            .detail(what)
            .build();
        self.record(event).await;
        Ok(Triaged {
            fingerprint: fp,
            asset_id: doc.asset_id.clone(),
            host: doc.host.clone(),
            finding,
        })
    }

    /// Where a changes answer starts: an instant (RFC 3339 or a date), else a task
    /// `principal` may see.
    async fn since(&self, principal: &Principal, since: &str) -> Result<Since> {
        let s = since.trim();
        check_len("since", s, 64)?;
        if let Ok(t) = instant("since", s) {
            return Ok(Since::Time(t));
        }
        if crate::task::is_valid_task_id(s) {
            let view = self.task(principal, s).await?;
            let t = view.task;
            return Ok(Since::Task {
                at: t.completed_at.unwrap_or(t.created_at),
                task_id: t.task_id,
            });
        }
        Err(Error::invalid(
            "since",
            format!(
                "{s:?} is neither a task id nor an RFC 3339 time (2026-01-31T00:00:00Z) or date (2026-01-31)"
            ),
        ))
    }
}

/// The byte budget of a changes answer: the results' default and clamp (one budget
/// rule for every answer); `usize::MAX` (the command line) stays unlimited.
pub fn answer_budget(byte_budget: Option<usize>) -> usize {
    match byte_budget {
        Some(usize::MAX) => usize::MAX,
        Some(b) => b.clamp(
            nessus_schema::MIN_ANSWER_BUDGET,
            nessus_schema::MAX_ANSWER_BUDGET,
        ),
        None => nessus_schema::DEFAULT_ANSWER_BUDGET,
    }
}

/// A changes page as JSON-NL within the budget ([`answer_budget`]).
pub fn changes_text(page: &ChangesPage, byte_budget: Option<usize>) -> String {
    page.render(answer_budget(byte_budget))
}
