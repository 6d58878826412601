//! Schedules: recurring scans owned by a principal, fired exactly once per slot by
//! whichever node's scheduler gets there first (no leader).
//!
//! Exactly once, crash-safe: a due slot is submitted FIRST through the ordinary
//! [`Service::submit`] (same policy checks, quotas, approvals and audit, as the
//! schedule's principal) with the idempotency key `schedule:{id}:{slot}`, and only
//! then is the slot claimed by a compare-and-set of the schedule (`next_slot` moves
//! to the first slot after now). Two schedulers racing on one slot submit the same
//! key and get the same task; a scheduler that dies between submit and claim leaves
//! the slot due, and the next tick's submit is an idempotent replay — so no slot is
//! lost and none runs twice (within the idempotency TTL, 48 h by default, far above
//! the scheduler interval). Slots missed while every node was down fire once: the
//! claim jumps `next_slot` past now.

use std::time::Duration;

use jiff::Timestamp;

use crate::audit::{AuditAction, AuditEvent};
use crate::error::{Error, Result};
use crate::schedule::{self, Schedule, is_valid_schedule_id, new_schedule_id};
use crate::task::ScanType;

use super::submit::{ScanCredentials, ScanRequest};
use super::{Operation, Principal, Service};

/// Most schedules one principal may own.
pub const MAX_SCHEDULES_PER_PRINCIPAL: usize = 200;

/// How often each node's scheduler looks for due slots (jittered by up to a second).
pub const SCHEDULER_INTERVAL: Duration = Duration::from_secs(4);

/// What a caller asks for when creating a schedule.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScheduleSpec {
    /// The scan every slot submits (credentials only as a profile name).
    pub request: ScanRequest,
    /// Five-field cron expression.
    pub cron: String,
    /// IANA time zone (default UTC).
    pub timezone: String,
}

impl ScheduleSpec {
    /// A schedule of `request` at `cron` in `timezone`.
    pub fn new(request: ScanRequest, cron: impl Into<String>, timezone: impl Into<String>) -> Self {
        Self {
            request,
            cron: cron.into(),
            timezone: timezone.into(),
        }
    }
}

/// One slot a scheduler tick fired.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fired {
    /// The schedule.
    pub schedule_id: String,
    /// The slot.
    pub slot: Timestamp,
    /// The task of the slot (the same on every node), or why there is none.
    pub task_id: std::result::Result<String, String>,
    /// Whether this node's claim advanced the schedule (exactly one node's does).
    pub claimed: bool,
}

impl Service {
    /// Creates a schedule owned by `principal`. The request is checked now as a
    /// submit would be (pool, target policy, credential profile); every run is
    /// checked again by the submit it makes.
    pub async fn create_schedule(
        &self,
        principal: &Principal,
        spec: ScheduleSpec,
    ) -> Result<Schedule> {
        principal.authorize(Operation::ManageSchedule, "create schedules")?;
        if spec.request.scan_type != ScanType::Untrusted {
            principal.authorize(
                Operation::SubmitAuthenticated,
                "schedule authenticated scans",
            )?;
        }
        let req = &spec.request;
        let credential_profile = match &req.credentials {
            ScanCredentials::None => None,
            ScanCredentials::Profile(p) => Some(p.clone()),
            ScanCredentials::Adhoc(_) => {
                return Err(Error::invalid(
                    "credentials",
                    "a schedule takes a credential_profile, never ad-hoc credentials",
                ));
            }
        };
        match (req.scan_type, &credential_profile) {
            (ScanType::Untrusted, Some(_)) => {
                return Err(Error::invalid(
                    "scan_type",
                    "an untrusted scan takes no credentials",
                ));
            }
            (ScanType::Authenticated | ScanType::AuthenticatedPrivileged, None) => {
                return Err(Error::MissingCredentials);
            }
            _ => {}
        }
        crate::limits::check_task_text(&req.name, &req.description, &req.targets)?;
        schedule::validate(&spec.cron, &spec.timezone)?;
        let config = self.config();
        let (pool_name, pool) =
            super::submit::pool_for(&config, principal, req.pool.as_deref(), "schedule scans in")?;
        let approved = pool
            .check_targets(&req.targets)
            .map_err(|e| Error::targets_refused(&pool_name, e))?;
        if let Some(p) = &credential_profile
            && config.credential(p).is_none()
        {
            return Err(Error::UnknownCredentialProfile {
                profile: p.clone(),
                known: config.credentials().keys().cloned().collect(),
            });
        }
        // A probe: the request must be a valid task now (scan type and credentials).
        let mut probe =
            crate::task::NewTask::new(req.scan_type, &pool_name, &req.targets, &req.name);
        if let Some(p) = &credential_profile {
            probe = probe.credential_profile(p);
        }
        probe.validate()?;
        let owned = self
            .queue
            .backend()
            .list_schedules(Some(principal.as_str().to_owned()))
            .await?;
        if owned.len() >= MAX_SCHEDULES_PER_PRINCIPAL {
            return Err(Error::invalid(
                "schedule",
                format!(
                    "at most {MAX_SCHEDULES_PER_PRINCIPAL} schedules per principal; delete one first"
                ),
            ));
        }
        let now = Timestamp::now();
        let s = Schedule {
            schedule_id: new_schedule_id(),
            principal: principal.as_str().to_owned(),
            pool: pool_name,
            scan_type: req.scan_type,
            targets: approved.to_nessus_text(),
            name: req.name.clone(),
            description: req.description.clone(),
            schema_profile: req.schema_profile.clone(),
            credential_profile,
            scanner_instance: req.scanner_instance.clone(),
            next_slot: schedule::next_slot_after(&spec.cron, &spec.timezone, now)?,
            cron: spec.cron,
            timezone: spec.timezone,
            paused: false,
            last_fired_slot: None,
            last_task_id: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        if !self.queue.backend().store_schedule(None, s.clone()).await? {
            return Err(Error::Contention {
                task_id: s.schedule_id,
            });
        }
        self.record_schedule(AuditAction::ScheduleCreate, principal, &s, None)
            .await;
        Ok(s)
    }

    /// The schedules `principal` may see (its own; an admin's: everyone's).
    pub async fn list_schedules(&self, principal: &Principal) -> Result<Vec<Schedule>> {
        principal.authorize(Operation::Read, "list schedules")?;
        let who = (!self.is_admin(principal)).then(|| principal.as_str().to_owned());
        self.queue.backend().list_schedules(who).await
    }

    /// One schedule `principal` may see, or `ScheduleNotFound`.
    pub async fn schedule(&self, principal: &Principal, schedule_id: &str) -> Result<Schedule> {
        principal.authorize(Operation::Read, "read schedules")?;
        self.visible_schedule(principal, schedule_id).await
    }

    async fn visible_schedule(&self, principal: &Principal, schedule_id: &str) -> Result<Schedule> {
        let not_found = || Error::ScheduleNotFound {
            schedule_id: schedule_id.to_owned(),
        };
        if !is_valid_schedule_id(schedule_id) {
            return Err(not_found());
        }
        let s = self
            .queue
            .backend()
            .load_schedule(schedule_id.to_owned())
            .await?
            .ok_or_else(not_found)?;
        if s.principal == principal.as_str() || self.is_admin(principal) {
            Ok(s)
        } else {
            Err(not_found())
        }
    }

    /// Pauses a schedule (nothing fires until it is resumed).
    pub async fn pause_schedule(
        &self,
        principal: &Principal,
        schedule_id: &str,
    ) -> Result<Schedule> {
        principal.authorize(Operation::ManageSchedule, "pause schedules")?;
        let s = self
            .update_schedule(principal, schedule_id, |s, now| {
                s.pause(now);
                Ok(())
            })
            .await?;
        self.record_schedule(AuditAction::SchedulePause, principal, &s, None)
            .await;
        Ok(s)
    }

    /// Resumes a schedule; its next slot is the first after now.
    pub async fn resume_schedule(
        &self,
        principal: &Principal,
        schedule_id: &str,
    ) -> Result<Schedule> {
        principal.authorize(Operation::ManageSchedule, "resume schedules")?;
        let s = self
            .update_schedule(principal, schedule_id, |s, now| s.resume(now))
            .await?;
        self.record_schedule(AuditAction::ScheduleResume, principal, &s, None)
            .await;
        Ok(s)
    }

    /// Deletes a schedule (tasks it created stay).
    pub async fn delete_schedule(
        &self,
        principal: &Principal,
        schedule_id: &str,
    ) -> Result<Schedule> {
        principal.authorize(Operation::ManageSchedule, "delete schedules")?;
        let s = self.visible_schedule(principal, schedule_id).await?;
        if !self
            .queue
            .backend()
            .delete_schedule(schedule_id.to_owned())
            .await?
        {
            return Err(Error::ScheduleNotFound {
                schedule_id: schedule_id.to_owned(),
            });
        }
        self.record_schedule(AuditAction::ScheduleDelete, principal, &s, None)
            .await;
        Ok(s)
    }

    async fn update_schedule(
        &self,
        principal: &Principal,
        schedule_id: &str,
        f: impl Fn(&mut Schedule, Timestamp) -> Result<()>,
    ) -> Result<Schedule> {
        for _ in 0..32 {
            let prev = self.visible_schedule(principal, schedule_id).await?;
            let mut next = prev.clone();
            f(&mut next, Timestamp::now())?;
            if next == prev {
                return Ok(prev);
            }
            next.version = prev.version + 1;
            if self
                .queue
                .backend()
                .store_schedule(Some(prev.version), next.clone())
                .await?
            {
                return Ok(next);
            }
        }
        Err(Error::Contention {
            task_id: schedule_id.to_owned(),
        })
    }

    /// One scheduler tick at `now` (a real clock in [`Service::run_scheduler`], any
    /// clock in tests): fires every due slot (see the module docs for why this is
    /// exactly once across nodes).
    pub async fn run_due_schedules(&self, now: Timestamp) -> Result<Vec<Fired>> {
        let mut out = Vec::new();
        for id in self.queue.backend().due_schedules(now, 100).await? {
            let Some(s) = self.queue.backend().load_schedule(id).await? else {
                continue;
            };
            let Some(slot) = s.due(now) else {
                continue;
            };
            let owner = Principal::new(s.principal.clone());
            let mut req = ScanRequest::untrusted(s.targets.clone(), s.name.clone())
                .description(s.description.clone())
                .schema_profile(s.schema_profile.clone())
                .pool(Some(s.pool.clone()))
                .scanner_instance(s.scanner_instance.clone())
                .idempotency_key(Some(s.idempotency_key(slot)));
            if let Some(p) = &s.credential_profile {
                req = req.authenticated(s.scan_type, ScanCredentials::Profile(p.clone()));
            }
            let task_id = match self.submit(&owner, req).await {
                Ok(sub) => Ok(sub.submitted.task.task_id),
                // A transient backend failure: leave the slot due, the next tick retries.
                Err(e @ (Error::Backend { .. } | Error::Contention { .. })) => {
                    tracing::warn!(schedule_id = %s.schedule_id, error = %e, "scheduled submit failed; retrying next tick");
                    continue;
                }
                // Refused (policy, quota, config): the slot is spent, the reason kept.
                Err(e) => Err(e.to_string()),
            };
            let mut next = s.clone();
            if next.advance(now)?.is_none() {
                continue;
            }
            next.last_task_id = task_id.clone().ok();
            next.last_error = task_id.clone().err();
            next.version = s.version + 1;
            let claimed = self
                .queue
                .backend()
                .store_schedule(Some(s.version), next.clone())
                .await?;
            if claimed {
                tracing::info!(schedule_id = %s.schedule_id, slot = %slot, task = ?task_id, "schedule_fired");
                let detail = match &task_id {
                    Ok(t) => format!("slot {slot}: task {t}"),
                    Err(e) => format!("slot {slot}: refused: {e}"),
                };
                self.record_schedule(AuditAction::ScheduleFire, &owner, &next, Some(detail))
                    .await;
            }
            out.push(Fired {
                schedule_id: s.schedule_id.clone(),
                slot,
                task_id,
                claimed,
            });
        }
        Ok(out)
    }

    /// Runs the scheduler until `stop` turns true: a tick every
    /// [`SCHEDULER_INTERVAL`] plus up to a second of jitter, so the nodes' ticks
    /// spread out. Every API node and worker runs one; no leader is needed.
    /// The same nodes also run the webhook delivery loop
    /// ([`crate::Queue::run_deliveries`]) alongside, until `stop`.
    pub async fn run_scheduler(&self, stop: tokio::sync::watch::Receiver<bool>) {
        let deliveries = self.queue().run_deliveries(stop.clone());
        tokio::join!(self.scheduler_ticks(stop), deliveries);
    }

    async fn scheduler_ticks(&self, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            let jitter = Duration::from_millis(rand::random::<u64>() % 1000);
            tokio::select! {
                _ = tokio::time::sleep(SCHEDULER_INTERVAL + jitter) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return;
            }
            if let Err(e) = self.run_due_schedules(Timestamp::now()).await {
                tracing::warn!(error = %e, "scheduler tick failed");
            }
        }
    }

    async fn record_schedule(
        &self,
        action: AuditAction,
        principal: &Principal,
        s: &Schedule,
        detail: Option<String>,
    ) {
        let mut b = AuditEvent::builder(action, principal.as_str())
            .pool(s.pool.clone())
            .targets(s.targets.clone())
            .outcome("ok")
            .detail(detail.unwrap_or_else(|| {
                format!(
                    "schedule {} cron '{}' {}",
                    s.schedule_id, s.cron, s.timezone
                )
            }));
        if let Some(t) = &s.last_task_id
            && action == AuditAction::ScheduleFire
        {
            b = b.task_id(t.clone());
        }
        self.record(b.build()).await;
    }
}
