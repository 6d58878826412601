//! Submit: everything that decides whether a scan may be queued, and what is stored.
//!
//! In order, so the cheapest refusal comes first and nothing is half-done:
//! lengths → profile → pool (exists, the principal may use it) → pinned instance →
//! target policy (the task stores the canonical approved list, which is what the
//! worker sends) → credentials (the principal may run authenticated scans; the
//! profile exists; ad-hoc credentials and their escalation are complete) → the
//! queue (idempotency, per-principal quota, atomically with the insert).

use nessus_core::{EscalationMethod, SshCredentials};
use secrecy::ExposeSecret;

use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::limits::check_task_text;
use crate::queue::Submitted;
use crate::secret::AdhocCredentials;
use crate::task::{ApprovalHold, NewTask, ScanType};

use super::{Operation, Principal, Service};

/// How an authenticated scan logs in.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ScanCredentials {
    /// An untrusted (network-only) scan.
    #[default]
    None,
    /// A named profile from the config's `credentials` section.
    Profile(String),
    /// Credentials sent with the request; sealed until the scan is created.
    Adhoc(AdhocCredentials),
}

impl ScanCredentials {
    /// SSH user and password sent with the request, with an optional escalation
    /// (`elevate_privileges_with` as Nessus spells it; empty or `Nothing` for none).
    pub fn ssh(
        username: impl Into<String>,
        password: secrecy::SecretString,
        elevate_privileges_with: &str,
        escalation_account: Option<String>,
        escalation_password: Option<secrecy::SecretString>,
    ) -> Self {
        let mut c = AdhocCredentials::ssh(username.into(), password);
        let method = elevate_privileges_with.trim();
        if !method.is_empty() && method != "Nothing" {
            c = c.escalate(method.to_owned(), escalation_account, escalation_password);
        }
        Self::Adhoc(c)
    }
}

/// A scan request as a frontend received it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScanRequest {
    /// Kind of scan.
    pub scan_type: ScanType,
    /// Pool; `None` is the config's default pool.
    pub pool: Option<String>,
    /// Pin to one instance of the pool.
    pub scanner_instance: Option<String>,
    /// Targets as the caller wrote them.
    pub targets: String,
    /// Scan name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Results profile.
    pub schema_profile: String,
    /// How it logs in.
    pub credentials: ScanCredentials,
    /// Caller's idempotency key.
    pub idempotency_key: Option<String>,
}

impl ScanRequest {
    /// An untrusted scan of `targets` named `name` in the default pool, `brief` results.
    pub fn untrusted(targets: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            scan_type: ScanType::Untrusted,
            pool: None,
            scanner_instance: None,
            targets: targets.into(),
            name: name.into(),
            description: String::new(),
            schema_profile: "brief".to_owned(),
            credentials: ScanCredentials::None,
            idempotency_key: None,
        }
    }

    /// An authenticated scan (`scan_type` must be one of the authenticated kinds).
    #[must_use]
    pub fn authenticated(mut self, scan_type: ScanType, credentials: ScanCredentials) -> Self {
        self.scan_type = scan_type;
        self.credentials = credentials;
        self
    }

    /// Sets the pool (`None`: the default pool).
    #[must_use]
    pub fn pool(mut self, pool: Option<String>) -> Self {
        self.pool = pool;
        self
    }

    /// Pins an instance.
    #[must_use]
    pub fn scanner_instance(mut self, instance: Option<String>) -> Self {
        self.scanner_instance = instance;
        self
    }

    /// Sets the description.
    #[must_use]
    pub fn description(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }

    /// Sets the results profile.
    #[must_use]
    pub fn schema_profile(mut self, p: impl Into<String>) -> Self {
        self.schema_profile = p.into();
        self
    }

    /// Sets the idempotency key.
    #[must_use]
    pub fn idempotency_key(mut self, k: Option<String>) -> Self {
        self.idempotency_key = k;
        self
    }
}

/// What a submit produced.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Submission {
    /// The queued (or, on an idempotent hit, existing) task with its queue position.
    pub submitted: Submitted,
    /// The pinned instance's URL (credentials masked), if one was pinned.
    pub scanner_url: Option<String>,
    /// 1-based position in the pool's queue; 0 once a worker has claimed it
    /// (the predecessor always answers an integer).
    pub queue_position: u64,
    /// Estimated minutes until a worker starts it; 0 once started.
    pub estimated_wait_minutes: u64,
}

/// The pool a request names (empty or absent: the config's default) once `principal`
/// may use it; `verb` words the refusal ("submit to", "schedule scans in"). Submits and
/// schedules resolve their pool here, so both refuse the same way.
pub(super) fn pool_for<'c>(
    config: &'c nessus_core::Config,
    principal: &Principal,
    requested: Option<&str>,
    verb: &str,
) -> Result<(String, &'c nessus_core::Pool)> {
    let pool_name = requested
        .filter(|p| !p.is_empty())
        .map_or_else(|| config.server().default_pool().to_owned(), str::to_owned);
    let Some(pool) = config.pool(&pool_name) else {
        return Err(super::unknown_pool(config, &pool_name, &[]));
    };
    if !principal.settings(config).may_use_pool(&pool_name) {
        return Err(Error::Forbidden {
            principal: principal.as_str().to_owned(),
            what: format!("{verb} pool '{pool_name}'"),
        });
    }
    Ok((pool_name, pool))
}

impl Service {
    /// Validates `req` against every rule and queues it for `principal`.
    pub async fn submit(&self, principal: &Principal, req: ScanRequest) -> Result<Submission> {
        if req.scan_type == ScanType::Untrusted {
            principal.authorize(Operation::SubmitUntrusted, "run untrusted scans")?;
        } else {
            principal.authorize(Operation::SubmitAuthenticated, "run authenticated scans")?;
        }
        check_task_text(&req.name, &req.description, &req.targets)?;
        nessus_schema::Profile::parse(&req.schema_profile).map_err(|e| Error::InvalidProfile {
            message: e.to_string(),
        })?;
        let config = self.config();
        let rights = principal.settings(&config);
        let (pool_name, pool) = pool_for(&config, principal, req.pool.as_deref(), "submit to")?;
        let scanner_url = match &req.scanner_instance {
            Some(id) => Some(
                pool.instance(id)
                    .ok_or_else(|| Error::ScannerNotFound {
                        pool: pool_name.clone(),
                        instance: id.clone(),
                    })?
                    .display_url(),
            ),
            None => None,
        };
        let approved = match pool.check_targets(&req.targets) {
            Ok(a) => a,
            Err(e) => {
                let e = Error::targets_refused(&pool_name, e);
                tracing::info!(principal = %principal, pool = %pool_name, error = %e, "targets_refused");
                self.record_refusal(
                    AuditAction::PolicyRefused,
                    principal,
                    &pool_name,
                    &req.targets,
                    &e.to_string(),
                )
                .await;
                return Err(e);
            }
        };
        let canonical = approved.to_nessus_text();
        let (profile, adhoc) = self.credentials(principal, &rights, &config, &req)?;
        // The one place that decides whether a scan waits for an admin: the pool's
        // `approval` rules over the approved targets and the scan type.
        let hold = pool.approval().and_then(|rules| {
            let reason = rules.reason(&approved, req.scan_type != ScanType::Untrusted)?;
            Some(ApprovalHold {
                reason,
                expires_after: jiff::SignedDuration::try_from(rules.expires_after())
                    .unwrap_or(jiff::SignedDuration::from_hours(24)),
            })
        });
        let mut task = NewTask::new(req.scan_type, pool_name, canonical, req.name)
            .description(req.description)
            .schema_profile(req.schema_profile);
        if let Some(i) = req.scanner_instance {
            task = task.scanner_instance(i);
        }
        if let Some(p) = profile {
            task = task.credential_profile(p);
        }
        let submitted = match self
            .queue
            .submit_held(
                principal.as_str(),
                task.clone(),
                adhoc,
                req.idempotency_key.as_deref(),
                rights.max_queued(),
                hold,
            )
            .await
        {
            Err(e @ Error::QuotaExceeded { .. }) => {
                self.record_refusal(
                    AuditAction::QuotaRefused,
                    principal,
                    &task.pool,
                    &task.targets,
                    &e.to_string(),
                )
                .await;
                return Err(e);
            }
            other => other?,
        };
        if !submitted.idempotent {
            let detail = submitted
                .task
                .approval_reason
                .as_ref()
                .filter(|_| submitted.task.status == crate::TaskStatus::PendingApproval)
                .map(|r| format!("pending approval: {r}"));
            self.record_task(AuditAction::Submit, principal, &submitted.task, detail)
                .await;
            tracing::info!(
                task_id = %submitted.task.task_id,
                trace_id = %submitted.task.trace_id,
                pool = %submitted.task.pool,
                principal = %principal,
                queue_position = submitted.queue_position,
                "scan_enqueued"
            );
        }
        Ok(self.settle(submitted, scanner_url).await)
    }

    /// The answer's position and ETA as integers. Without a position the task
    /// is no longer queued (a worker claimed it between the insert and the
    /// position read, or an idempotent hit found a started task); the stored
    /// task then still says `queued`, so it is re-read to answer its real status
    /// with position 0 instead of `queued` with nulls.
    async fn settle(&self, mut submitted: Submitted, scanner_url: Option<String>) -> Submission {
        let (queue_position, estimated_wait_minutes) = match submitted.queue_position {
            Some(p) => (p, submitted.estimated_wait_minutes.unwrap_or(0)),
            None => match self.queue.get(&submitted.task.task_id).await {
                Ok(Some(view)) => {
                    submitted.task = view.task;
                    (
                        view.queue_position.unwrap_or(0),
                        view.estimated_wait_minutes.unwrap_or(0),
                    )
                }
                // The submit itself succeeded: answer with what it returned.
                Ok(None) | Err(_) => (0, 0),
            },
        };
        Submission {
            submitted,
            scanner_url,
            queue_position,
            estimated_wait_minutes,
        }
    }

    /// The credential rules: who may run authenticated scans, which profile, and
    /// whether ad-hoc credentials (with their escalation) are complete, so nothing
    /// that Nessus would refuse is accepted now and dead-lettered later.
    fn credentials(
        &self,
        principal: &Principal,
        rights: &nessus_core::PrincipalSettings,
        config: &nessus_core::Config,
        req: &ScanRequest,
    ) -> Result<(Option<String>, Option<AdhocCredentials>)> {
        let privileged = req.scan_type == ScanType::AuthenticatedPrivileged;
        match (&req.scan_type, &req.credentials) {
            (ScanType::Untrusted, ScanCredentials::None) => return Ok((None, None)),
            (ScanType::Untrusted, _) => {
                return Err(Error::invalid(
                    "scan_type",
                    "an untrusted scan takes no credentials",
                ));
            }
            (_, ScanCredentials::None) => {
                return Err(Error::MissingCredentials);
            }
            _ => {}
        }
        if !rights.authenticated_scans() {
            return Err(Error::Forbidden {
                principal: principal.as_str().to_owned(),
                what: "run authenticated scans".to_owned(),
            });
        }
        match &req.credentials {
            ScanCredentials::Profile(name) => {
                let Some(profile) = config.credential(name) else {
                    return Err(Error::UnknownCredentialProfile {
                        profile: name.clone(),
                        known: config.credentials().keys().cloned().collect(),
                    });
                };
                if privileged && profile.escalation() == EscalationMethod::Nothing {
                    return Err(Error::InvalidCredentials {
                        reason: format!(
                            "credential profile '{name}' has no privilege escalation; use scan_type \"authenticated\" or a profile with sudo/su"
                        ),
                    });
                }
                Ok((Some(name.clone()), None))
            }
            ScanCredentials::Adhoc(c) => {
                if c.username.trim().is_empty() || c.password.expose_secret().is_empty() {
                    return Err(Error::MissingCredentials);
                }
                let method: EscalationMethod =
                    c.elevate_privileges_with
                        .parse()
                        .map_err(|e: nessus_core::Error| Error::InvalidCredentials {
                            reason: e.to_string(),
                        })?;
                if privileged && method == EscalationMethod::Nothing {
                    return Err(Error::InvalidCredentials {
                        reason: "authenticated_privileged scan requires elevate_privileges_with (sudo/su)".to_owned(),
                    });
                }
                // The same check the scanner applies before sending them to Nessus
                // (e.g. `su` needs an escalation password).
                SshCredentials::password(c.username.clone(), c.password.clone())
                    .escalate(
                        method,
                        c.escalation_account.clone(),
                        c.escalation_password.clone(),
                    )
                    .validate()
                    .map_err(|e| Error::InvalidCredentials {
                        reason: e.to_string(),
                    })?;
                Ok((None, Some(c.clone())))
            }
            ScanCredentials::None => Ok((None, None)),
        }
    }
}
