//! The worker runtime: claim → pick scanner (at claim time) → create `mcp-{task_id}`
//! → record the scan id → launch → adaptive polling with progress → export → ingest
//! → completed. Transient scanner errors wait with jittered backoff and never fail a
//! task; permanent errors fail fast into the DLQ with an `error_code`. A claimant
//! after a crash re-attaches to the recorded (or name-matched) scan.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use nessus_core::{
    ApprovedTargets, ExportFormat, ScanId, ScanSpec, ScanStatus, Scanner, SshCredentials,
};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::backend::InstanceCapacity;
use crate::error::{BoxError, Error, Result};
use crate::queue::{Claim, Queue};
use crate::task::{Completion, Failure, ScanType, Task};

/// Where the worker finds scanners and named credential profiles.
pub trait ScannerDirectory: Send + Sync + 'static {
    /// The scanner for `instance` of `pool`, if configured.
    fn scanner(&self, pool: &str, instance: &str) -> Option<Arc<dyn Scanner>>;

    /// A named credential profile, resolved only inside the worker.
    fn credential_profile(&self, _name: &str) -> Option<SshCredentials> {
        None
    }

    /// Nessus template for a scan type (default `advanced`).
    fn template(&self, _scan_type: ScanType) -> String {
        "advanced".to_owned()
    }

    /// Checks a task's stored targets against `pool`'s target policy *as configured
    /// now*. The worker calls it at every claim, before any Nessus request, and sends
    /// exactly the returned canonical targets. A refusal (target left the allow-list,
    /// pool no longer configured, text that does not parse) is
    /// [`Error::TargetsNotAllowed`]. Required on purpose: a directory must say which
    /// policy it enforces.
    fn check_targets(&self, pool: &str, targets: &str) -> Result<ApprovedTargets>;
    /// Whether `instance` of `pool` may take a new scan now (false while its
    /// circuit breaker is open). Read at every claim, so the placement rule never
    /// puts a task on a failing scanner. Default: always.
    fn available(&self, _pool: &str, _instance: &str) -> bool {
        true
    }
}

/// Turns an exported `.nessus` file into stored results and the status summary.
/// `nessus-schema`'s ingest plugs in here; the queue crate itself stays parser-free.
pub trait Ingest: Send + Sync + 'static {
    /// Ingests `export` (inside `task_dir`) for `task`. Runs on a blocking thread.
    fn ingest(
        &self,
        task: &Task,
        export: &Path,
        task_dir: &Path,
    ) -> std::result::Result<Completion, BoxError>;

    /// What the ingested scan found, host by host, for findings over time
    /// ([`crate::Queue::record_findings`]); `None` (the default) when this ingest
    /// keeps no findings. Runs on a blocking thread, after [`Ingest::ingest`].
    fn observed(
        &self,
        _task_dir: &Path,
    ) -> std::result::Result<Option<Vec<crate::findings::ObservedHost>>, BoxError> {
        Ok(None)
    }
}

/// Keeps the raw export only and reports its size (used when no parser is wired).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepExportOnly;

impl Ingest for KeepExportOnly {
    fn ingest(
        &self,
        _task: &Task,
        export: &Path,
        _task_dir: &Path,
    ) -> std::result::Result<Completion, BoxError> {
        let bytes = std::fs::metadata(export)?.len();
        Ok(Completion {
            results_summary: Some(serde_json::json!({
                "file_size_kb": (bytes as f64 / 1024.0 * 10.0).round() / 10.0
            })),
            ..Completion::default()
        })
    }
}

/// Worker tunables. `WorkerConfig::new` gives the documented defaults.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Identity written into leases.
    pub worker_id: String,
    /// Pools served, with their instances' capacities.
    pub pools: Vec<(String, Vec<InstanceCapacity>)>,
    /// Results root; each task gets `{results_dir}/{task_id}/`.
    pub results_dir: PathBuf,
    /// Tasks processed at once by this worker.
    pub max_in_flight: usize,
    /// Sleep between claim attempts when nothing is claimable.
    pub idle_poll: Duration,
    /// Shortest status poll interval; later polls wait a fifth of the time the scan
    /// has been polled so far, up to `poll_max`.
    pub poll_initial: Duration,
    /// Poll interval cap.
    pub poll_max: Duration,
    /// First backoff after a transient error.
    pub retry_base: Duration,
    /// Backoff cap.
    pub retry_max: Duration,
    /// Scans running longer than this (since first start) are stopped → `timeout`.
    pub scan_timeout: Duration,
    /// Largest export accepted.
    pub export_size_cap: u64,
    /// How often this worker runs the lease reaper.
    pub reap_interval: Duration,
    /// How often each running task re-reads its `cancel_requested` (the cancel watch);
    /// a cancel through this process's [`Queue`] handle is seen at once.
    pub cancel_poll: Duration,
    /// Results in object storage (`server.results_url`): each task's export and
    /// store are uploaded there, manifest last, before the task is completed; the
    /// local copy is removed once it is. `None`: results stay in `results_dir`.
    pub results_store: Option<Arc<crate::results_store::ResultsStore>>,
    /// How long a failing upload is retried (with the transient-error backoff,
    /// holding the lease) before the task is dead-lettered `results_upload_failed`.
    pub upload_retry_for: Duration,
}

impl WorkerConfig {
    /// Defaults: 16 in flight, polls every 0.5 s growing to 30 s, retries 1 s → 30 s, 24 h timeout.
    pub fn new(
        worker_id: impl Into<String>,
        pools: Vec<(String, Vec<InstanceCapacity>)>,
        results_dir: impl Into<PathBuf>,
    ) -> Self {
        Self {
            worker_id: worker_id.into(),
            pools,
            results_dir: results_dir.into(),
            max_in_flight: 16,
            idle_poll: Duration::from_millis(250),
            poll_initial: Duration::from_millis(500),
            poll_max: Duration::from_secs(30),
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            scan_timeout: Duration::from_secs(24 * 3600),
            export_size_cap: 4 << 30,
            reap_interval: Duration::from_secs(5),
            cancel_poll: Duration::from_millis(250),
            results_store: None,
            upload_retry_for: Duration::from_secs(600),
        }
    }

    /// Uploads results to `store` before completing each task.
    pub fn results_store(mut self, store: Option<Arc<crate::results_store::ResultsStore>>) -> Self {
        self.results_store = store;
        self
    }

    /// Sets how long a failing upload is retried.
    pub fn upload_retry_for(mut self, d: Duration) -> Self {
        self.upload_retry_for = d;
        self
    }

    /// Sets the poll schedule.
    pub fn polling(mut self, initial: Duration, max: Duration) -> Self {
        self.poll_initial = initial;
        self.poll_max = max.max(initial);
        self
    }

    /// Sets the transient-error backoff.
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.retry_base = base;
        self.retry_max = max.max(base);
        self
    }

    /// Sets the idle claim interval.
    pub fn idle_poll(mut self, d: Duration) -> Self {
        self.idle_poll = d;
        self
    }

    /// Sets the scan timeout.
    pub fn scan_timeout(mut self, d: Duration) -> Self {
        self.scan_timeout = d;
        self
    }

    /// Sets the in-flight limit.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Sets the reaper interval.
    pub fn reap_interval(mut self, d: Duration) -> Self {
        self.reap_interval = d;
        self
    }

    /// Sets the cancel watch's poll interval (at least 10 ms).
    pub fn cancel_poll(mut self, d: Duration) -> Self {
        self.cancel_poll = d.max(Duration::from_millis(10));
        self
    }
}

/// A worker over a queue.
pub struct Worker {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Queue,
    cfg: WorkerConfig,
    dir: Arc<dyn ScannerDirectory>,
    ingest: Arc<dyn Ingest>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

/// Why processing stopped before a terminal state.
enum Stop {
    /// Shutdown: release the lease.
    Shutdown,
    /// Someone else holds the task now.
    LeaseLost,
    /// The caller cancelled.
    Cancel,
    /// Permanent failure.
    Fail(Failure),
    /// Queue storage failed persistently.
    Queue(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        match e {
            Error::LeaseLost { .. } | Error::InvalidTransition { .. } | Error::NotFound { .. } => {
                Self::LeaseLost
            }
            other => Self::Queue(other),
        }
    }
}

fn classify(e: &nessus_core::Error) -> Failure {
    let code = match e.status() {
        Some(s) => format!("nessus_http_{s}"),
        None if matches!(e, nessus_core::Error::InvalidCredentials { .. }) => {
            "invalid_credentials".to_owned()
        }
        None => "nessus_error".to_owned(),
    };
    Failure::dead_letter(code, e.to_string())
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Flags {
    lost: AtomicBool,
    /// Set by the cancel watch or the heartbeat; a watch channel so a sleeping poll
    /// wakes the moment it flips (a `Notify` could lose a wake-up between the check
    /// and the wait).
    cancel: watch::Sender<bool>,
}

impl Flags {
    fn cancelled(&self) -> bool {
        *self.cancel.borrow()
    }
}

/// Whether a step gives way to a cancel. Before and while the scan runs it does (the
/// scan is stopped); stopping itself, and exporting a scan that already completed, do
/// not.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnCancel {
    Abort,
    Continue,
}

impl Worker {
    /// A worker that places tasks on scanners from `dir` and ingests with `ingest`.
    pub fn new(
        queue: Queue,
        cfg: WorkerConfig,
        dir: Arc<dyn ScannerDirectory>,
        ingest: Arc<dyn Ingest>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                queue,
                cfg,
                dir,
                ingest,
            }),
        }
    }

    /// Runs until `shutdown` becomes true: then stops claiming, lets each task
    /// finish its current step, and releases their leases so another worker can
    /// re-attach.
    pub async fn run(&self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let inner = &self.inner;
        let mut tasks = JoinSet::new();
        let mut last_reap = tokio::time::Instant::now() - inner.cfg.reap_interval;
        loop {
            if *shutdown.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            if last_reap.elapsed() >= inner.cfg.reap_interval {
                last_reap = tokio::time::Instant::now();
                match inner.queue.reap().await {
                    Ok(r) if !r.requeued.is_empty() || !r.dead_lettered.is_empty() => {
                        tracing::info!(requeued = ?r.requeued, dead_lettered = ?r.dead_lettered, "reaped expired leases");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "reaper failed; will retry"),
                }
            }
            let claimed = if tasks.len() < inner.cfg.max_in_flight {
                // Breaker state as of now: the one placement rule skips open ones.
                let pools: Vec<_> = inner
                    .cfg
                    .pools
                    .iter()
                    .map(|(pool, caps)| {
                        let caps = caps
                            .iter()
                            .map(|c| {
                                let up = c.available && inner.dir.available(pool, &c.instance);
                                c.clone().with_available(up)
                            })
                            .collect();
                        (pool.clone(), caps)
                    })
                    .collect();
                match inner.queue.claim(&inner.cfg.worker_id, &pools).await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "claim failed; backing off");
                        None
                    }
                }
            } else {
                None
            };
            match claimed {
                Some(c) => {
                    let inner = Arc::clone(inner);
                    let sd = shutdown.clone();
                    tasks.spawn(async move { inner.process(c, sd).await });
                }
                None => {
                    tokio::select! {
                        _ = tokio::time::sleep(inner.cfg.idle_poll) => {}
                        _ = inner.queue.enqueued() => {}
                        _ = shutdown.changed() => {}
                        Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                    }
                }
            }
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

/// Poll this long after a predicted end, so the scanner has flipped to completed.
const PREDICTION_SLACK: Duration = Duration::from_millis(150);

/// When a scan `pct` % done after `elapsed` (since polling began) should finish,
/// assuming steady progress; `None` before there is a usable reading.
fn predict_end(elapsed: Duration, pct: u8) -> Option<Duration> {
    (1..100)
        .contains(&pct)
        .then(|| elapsed.mul_f64(100.0 / f64::from(pct)))
}

impl Worker {
    /// Housekeeping with the scanners at hand: terminal tasks past their TTL are
    /// deleted with their results directory and — only if this system created it (the
    /// recorded id still carries the name `mcp-{task_id}`) and it is finished — their
    /// Nessus scan. With `dry_run` nothing is deleted and the report lists what would go.
    pub async fn housekeep(&self, dry_run: bool) -> Result<crate::queue::HousekeepReport> {
        let inner = &self.inner;
        let candidates = inner.queue.housekeep(true, |_| {}).await?;
        if dry_run {
            return Ok(candidates);
        }
        for (id, _) in &candidates.tasks {
            let Some(task) = inner.queue.get(id).await?.map(|v| v.task) else {
                continue;
            };
            if let (Some(scan), Some(instance)) = (task.nessus_scan_id, task.instance.as_deref())
                && let Some(scanner) = inner.dir.scanner(&task.pool, instance)
            {
                let ours = scanner
                    .find_scan_by_name(&task.nessus_scan_name())
                    .await
                    .ok()
                    .flatten()
                    == Some(ScanId(scan as u64));
                let finished = scanner
                    .status(ScanId(scan as u64))
                    .await
                    .is_ok_and(|s| !s.status.is_active());
                if ours
                    && finished
                    && let Err(e) = scanner.delete(ScanId(scan as u64)).await
                {
                    tracing::warn!(task_id = %id, scan_id = scan, error = %e, "could not delete the Nessus scan");
                }
            }
        }
        if let Some(remote) = &inner.cfg.results_store {
            for (id, _) in &candidates.tasks {
                if let Err(e) = remote.delete_task(id).await {
                    tracing::warn!(task_id = %id, error = %e, "could not delete a task's results objects");
                }
            }
        }
        let results = inner.cfg.results_dir.clone();
        inner
            .queue
            .housekeep(false, |t| {
                if crate::task::is_valid_task_id(&t.task_id) {
                    let _ = crate::ResultsDir::new(&results).remove_task(&t.task_id);
                }
            })
            .await
    }
}

impl Inner {
    async fn process(self: Arc<Self>, claim: Claim, shutdown: watch::Receiver<bool>) {
        let id = claim.task.task_id.clone();
        let token = claim.token;
        let flags = Arc::new(Flags {
            lost: AtomicBool::new(false),
            cancel: watch::Sender::new(claim.task.cancel_requested),
        });
        // Aborted on drop, so a processing future that is itself aborted never leaves
        // a heartbeat renewing a lease nobody works on.
        let hb = AbortOnDrop(tokio::spawn(Arc::clone(&self).heartbeat(
            id.clone(),
            token,
            Arc::clone(&flags),
        )));
        let watch = AbortOnDrop(tokio::spawn(
            Arc::clone(&self).cancel_watch(id.clone(), Arc::clone(&flags)),
        ));
        tracing::info!(task_id = %id, trace_id = %claim.task.trace_id, instance = ?claim.task.instance, attempt = claim.task.attempts, "claimed");
        let outcome = self.drive(&claim, &flags, &shutdown).await;
        drop(watch);
        drop(hb);
        let q = &self.queue;
        let res = match outcome {
            Ok(()) => Ok(()),
            Err(Stop::Shutdown) => q.release(&id, token).await.map(|_| ()),
            Err(Stop::LeaseLost) => {
                tracing::warn!(task_id = %id, "lease lost; another worker owns the task");
                Ok(())
            }
            Err(Stop::Cancel) => q.confirm_cancel(&id, token).await.map(|_| ()),
            Err(Stop::Fail(f)) => {
                tracing::warn!(task_id = %id, code = %f.code, "task failed");
                q.fail(&id, token, f).await.map(|_| ())
            }
            Err(Stop::Queue(e)) => Err(e),
        };
        if let Err(e) = res {
            // The lease will lapse and the reaper hands the task to another worker.
            tracing::warn!(task_id = %id, error = %e, "could not record the outcome");
        }
    }

    async fn heartbeat(self: Arc<Self>, id: String, token: u64, flags: Arc<Flags>) {
        let every =
            (self.queue.config().lease_ttl.unsigned_abs() / 3).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(every).await;
            match self.queue.heartbeat(&id, token).await {
                Ok(t) => {
                    if t.cancel_requested {
                        flags.cancel.send_replace(true);
                    }
                }
                Err(e) if e.is_retryable() => {
                    tracing::debug!(task_id = %id, error = %e, "heartbeat failed; retrying");
                }
                Err(_) => {
                    flags.lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }

    /// The cancel watch: re-reads the task every `cancel_poll` (and at once when this
    /// process's queue handle cancels a task), so a cancel reaches Nessus within a
    /// poll whichever process issued it, instead of at the next heartbeat (a third
    /// of the lease). One cheap indexed read per running task and interval; it ends
    /// when the cancel is seen or the task is gone, and is aborted with the task.
    async fn cancel_watch(self: Arc<Self>, id: String, flags: Arc<Flags>) {
        loop {
            if flags.cancelled() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.cancel_poll) => {}
                _ = self.queue.cancel_requested() => {}
            }
            match self.queue.backend().load(id.clone()).await {
                Ok(Some(t)) if t.cancel_requested => {
                    tracing::info!(task_id = %id, "cancel requested; stopping the Nessus scan");
                    flags.cancel.send_replace(true);
                    return;
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(task_id = %id, error = %e, "cancel watch read failed; retrying");
                }
            }
        }
    }

    fn check(
        &self,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
        on_cancel: OnCancel,
    ) -> std::result::Result<(), Stop> {
        if flags.lost.load(Ordering::SeqCst) {
            Err(Stop::LeaseLost)
        } else if *shutdown.borrow() {
            Err(Stop::Shutdown)
        } else if on_cancel == OnCancel::Abort && flags.cancelled() {
            Err(Stop::Cancel)
        } else {
            Ok(())
        }
    }

    /// Sleeps `d`, waking early on shutdown and, given `cancel`, on a cancel.
    async fn pause(&self, d: Duration, shutdown: &watch::Receiver<bool>, cancel: Option<&Flags>) {
        let mut sd = shutdown.clone();
        let mut cancelled = cancel.map(|f| f.cancel.subscribe());
        let on_cancel = async {
            match cancelled.as_mut() {
                Some(rx) => {
                    let _ = rx.wait_for(|v| *v).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(d) => {}
            _ = sd.wait_for(|v| *v) => {}
            _ = on_cancel => {}
        }
    }

    fn backoff(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        let exp = self
            .cfg
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempt.min(16)))
            .min(self.cfg.retry_max);
        // Full jitter, but never below the server's Retry-After.
        let jittered = exp.mul_f64(rand::random::<f64>().max(0.1));
        hint.map_or(jittered, |h| jittered.max(h))
    }

    /// Runs a scanner call, waiting out transient errors (never failing the task for
    /// them) and turning permanent ones into a dead-lettered failure.
    async fn call<T, F, Fut>(
        &self,
        what: &str,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
        on_cancel: OnCancel,
        mut f: F,
    ) -> std::result::Result<T, Stop>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = nessus_core::Result<T>>,
    {
        let mut attempt = 0;
        let wake = (on_cancel == OnCancel::Abort).then_some(flags);
        loop {
            self.check(flags, shutdown, on_cancel)?;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() => {
                    tracing::info!(step = what, attempt, error = %e, "transient scanner error; waiting");
                    self.pause(self.backoff(attempt, e.retry_after()), shutdown, wake)
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(Stop::Fail(classify(&e))),
            }
        }
    }

    /// Queue writes retried while the backend is briefly unavailable.
    async fn write<T, F, Fut>(
        &self,
        shutdown: &watch::Receiver<bool>,
        mut f: F,
    ) -> std::result::Result<T, Stop>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && attempt < 60 => {
                    self.pause(self.backoff(attempt, None), shutdown, None)
                        .await;
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn credentials(&self, task: &Task) -> std::result::Result<Option<SshCredentials>, Stop> {
        if task.has_adhoc_credentials {
            let c = self
                .queue
                .open_credentials(&task.task_id)
                .await?
                .ok_or_else(|| {
                    Stop::Fail(Failure::dead_letter(
                        "credentials_unavailable",
                        "the ad-hoc credentials of this task were already deleted; submit the scan again",
                    ))
                })?;
            let method = c
                .elevate_privileges_with
                .parse()
                .map_err(|e: nessus_core::Error| {
                    Stop::Fail(Failure::dead_letter("invalid_credentials", e.to_string()))
                })?;
            let ssh = SshCredentials::password(
                c.username.clone(),
                secrecy::SecretString::from(c.password.expose_secret().to_owned()),
            )
            .escalate(
                method,
                c.escalation_account.clone(),
                c.escalation_password.clone(),
            );
            return Ok(Some(ssh));
        }
        match &task.credential_profile {
            Some(name) => self.dir.credential_profile(name).map(Some).ok_or_else(|| {
                Stop::Fail(Failure::dead_letter(
                    "unknown_credential_profile",
                    format!("credential profile '{name}' is not configured"),
                ))
            }),
            None => Ok(None),
        }
    }

    /// Checks the targets against the policy in force, then runs the scan. A cancel
    /// noticed at any step before the scan completed stops the scan (if one exists)
    /// right away.
    async fn drive(
        &self,
        claim: &Claim,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
    ) -> std::result::Result<(), Stop> {
        let task = &claim.task;
        let instance = task.instance.clone().unwrap_or_default();
        let scanner = self.dir.scanner(&task.pool, &instance);
        // 0. The policy in force now, not the one at submit: a SIGHUP may have
        // narrowed it, and a requeued or DLQ-retried task was approved long ago.
        let approved = match self.dir.check_targets(&task.pool, &task.targets) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(task_id = %task.task_id, pool = %task.pool, error = %e, "targets refused at claim; nothing sent to Nessus");
                // On the trail like a refusal at submit; the worker acts for the
                // task's owner. A failed append must not keep the task running.
                let event = crate::audit::AuditEvent::for_task(
                    crate::audit::AuditAction::PolicyRefused,
                    task.principal.clone(),
                    task,
                )
                .outcome("refused")
                .detail(format!("at claim: {e}"))
                .build();
                if let Err(err) = self.queue.audit(event).await {
                    tracing::error!(error = %err, "could not append to the audit trail");
                }
                // A scan recorded by an earlier attempt is ours: stop it rather than
                // let a now-refused target keep being scanned.
                if let (Some(n), Some(s)) = (task.nessus_scan_id, scanner.as_deref()) {
                    self.call("stop scan", flags, shutdown, OnCancel::Continue, || {
                        s.stop(ScanId(n as u64))
                    })
                    .await?;
                }
                return Err(Stop::Fail(Failure::dead_letter(
                    "target_not_allowed",
                    e.to_string(),
                )));
            }
        };
        let scanner = scanner.ok_or_else(|| {
            Stop::Fail(Failure::dead_letter(
                "unknown_scanner_instance",
                format!("scanner '{}:{instance}' is not configured", task.pool),
            ))
        })?;
        let scanner = scanner.as_ref();
        let mut scan = task.nessus_scan_id.map(|n| ScanId(n as u64));
        match self
            .run_scan(claim, &approved, scanner, &mut scan, flags, shutdown)
            .await
        {
            Err(Stop::Cancel) => {
                if let Some(scan) = scan {
                    self.call("stop scan", flags, shutdown, OnCancel::Continue, || {
                        scanner.stop(scan)
                    })
                    .await?;
                    tracing::info!(task_id = %task.task_id, scan_id = scan.0, "scan stopped on cancel");
                }
                Err(Stop::Cancel)
            }
            other => other,
        }
    }

    /// Steps 1-5. `slot` holds the scan as soon as it exists, so the caller can stop
    /// it on a cancel.
    async fn run_scan(
        &self,
        claim: &Claim,
        approved: &ApprovedTargets,
        scanner: &dyn Scanner,
        slot: &mut Option<ScanId>,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
    ) -> std::result::Result<(), Stop> {
        let task = &claim.task;
        let (id, token) = (task.task_id.as_str(), claim.token);
        let name = task.nessus_scan_name();
        let abort = OnCancel::Abort;

        // 1. Re-attach to the recorded or name-matched scan, else create it.
        let scan = match *slot {
            Some(scan) => scan,
            None => {
                let found = self
                    .call("find scan", flags, shutdown, abort, || {
                        scanner.find_scan_by_name(&name)
                    })
                    .await?;
                let scan = match found {
                    Some(s) => s,
                    None => {
                        let creds = self.credentials(task).await?;
                        if let Some(c) = &creds {
                            c.validate().map_err(|e| Stop::Fail(classify(&e)))?;
                        }
                        // Exactly the canonical list the policy approved just now,
                        // never the stored text re-split by other rules.
                        let targets: Vec<String> =
                            approved.targets().iter().map(ToString::to_string).collect();
                        let mut spec = ScanSpec::new(name.clone(), targets)
                            .template(self.dir.template(task.scan_type))
                            .description(if task.description.is_empty() {
                                format!("{} (task {id})", task.name)
                            } else {
                                task.description.clone()
                            });
                        if let Some(c) = creds {
                            spec = spec.credentials(c);
                        }
                        self.create(scanner, &spec, flags, shutdown).await?
                    }
                };
                *slot = Some(scan);
                self.write(shutdown, || {
                    self.queue.record_scan(id, token, scan.0 as i64)
                })
                .await?;
                tracing::info!(task_id = %id, scan_id = scan.0, "scan recorded");
                scan
            }
        };

        // 2. Launch if it never ran; 3. poll adaptively.
        let started = task.started_at.unwrap_or_else(Timestamp::now);
        let deadline = started
            + jiff::SignedDuration::try_from(self.cfg.scan_timeout)
                .unwrap_or(jiff::SignedDuration::MAX);
        let mut interval = self.cfg.poll_initial;
        let poll_start = std::time::Instant::now();
        let mut last_progress = task.progress;
        let mut launched = false;
        // Once, when the progress says the scan ends before the next regular poll,
        // poll right after that predicted end instead. Only once, so a scan that sits
        // at 99 % (Nessus finalising) costs no extra polls.
        let mut prediction_used = false;
        loop {
            self.check(flags, shutdown, abort)?;
            if Timestamp::now() >= deadline {
                self.call("stop scan", flags, shutdown, OnCancel::Continue, || {
                    scanner.stop(scan)
                })
                .await?;
                let msg = format!("Scan timeout after {}s", self.cfg.scan_timeout.as_secs());
                self.write(shutdown, || self.queue.time_out(id, token, &msg))
                    .await?;
                return Ok(());
            }
            let state = self
                .call("status", flags, shutdown, abort, || scanner.status(scan))
                .await?;
            tracing::debug!(task_id = %id, status = state.status.as_str(), progress = state.progress, "polled");
            if last_progress != Some(state.progress) {
                last_progress = Some(state.progress);
                self.write(shutdown, || self.queue.progress(id, token, state.progress))
                    .await?;
            }
            match state.status {
                ScanStatus::Completed => break,
                ScanStatus::Empty if !launched => {
                    match scanner.launch(scan).await {
                        Ok(_) => launched = true,
                        // Already running (launched before a crash): that is success.
                        Err(e) if e.status() == Some(409) => launched = true,
                        Err(e) if e.is_retryable() => {
                            tracing::info!(task_id = %id, error = %e, "launch failed transiently; will check again");
                        }
                        Err(e) => return Err(Stop::Fail(classify(&e))),
                    }
                    continue;
                }
                s if s.is_terminal() => {
                    if flags.cancelled() {
                        // Already stopped: nothing left to stop.
                        *slot = None;
                        return Err(Stop::Cancel);
                    }
                    return Err(Stop::Fail(Failure::plain(
                        format!("scan_{}", s.as_str()),
                        format!("Scanner reported the scan as {}", s.as_str()),
                    )));
                }
                _ => {}
            }
            let mut wait = interval;
            if !prediction_used
                && state.status == ScanStatus::Running
                && let Some(end) = predict_end(poll_start.elapsed(), state.progress)
            {
                let until_end = end.saturating_sub(poll_start.elapsed()) + PREDICTION_SLACK;
                if until_end < interval {
                    wait = until_end;
                    prediction_used = true;
                }
            }
            self.pause(wait, shutdown, Some(flags)).await;
            self.check(flags, shutdown, abort)?;
            // Poll at a fifth of the time already spent: a short scan is noticed within
            // about a second of finishing, a day-long one costs a poll per `poll_max`.
            interval = poll_start
                .elapsed()
                .mul_f64(0.2)
                .clamp(self.cfg.poll_initial, self.cfg.poll_max);
        }

        // 4. Export to the results directory (temp file, then rename).
        let task_dir = crate::ResultsDir::new(&self.cfg.results_dir).task_dir(id);
        tokio::fs::create_dir_all(&task_dir).await.map_err(|e| {
            Stop::Fail(Failure::dead_letter(
                "results_dir_unwritable",
                format!("cannot create {}: {e}", task_dir.display()),
            ))
        })?;
        let part = crate::ResultsDir::partial_export_in(&task_dir);
        let export = crate::ResultsDir::export_in(&task_dir);
        let cap = self.cfg.export_size_cap;
        tracing::debug!(task_id = %id, "exporting");
        // The scan completed: a cancel arriving now no longer discards its results.
        self.call("export", flags, shutdown, OnCancel::Continue, || {
            scanner.export_to_file(scan, ExportFormat::Nessus, &part, cap)
        })
        .await?;
        tracing::debug!(task_id = %id, "exported; ingesting");
        tokio::fs::rename(&part, &export).await.map_err(|e| {
            Stop::Fail(Failure::dead_letter(
                "results_dir_unwritable",
                format!("cannot move the export into place: {e}"),
            ))
        })?;

        // 5. Ingest once, off the async threads.
        let ingest = Arc::clone(&self.ingest);
        let t = task.clone();
        let (e2, d2) = (export.clone(), task_dir.clone());
        let completion = tokio::task::spawn_blocking(move || ingest.ingest(&t, &e2, &d2))
            .await
            .map_err(|e| Stop::Fail(Failure::dead_letter("ingest_failed", e.to_string())))?
            .map_err(|e| Stop::Fail(Failure::dead_letter("ingest_failed", e.to_string())))?;
        // 5b. Findings over time, before the task completes: a worker killed after
        // this re-runs the task, and recording the same task again changes nothing.
        let ingest = Arc::clone(&self.ingest);
        let d3 = task_dir.clone();
        let observed = tokio::task::spawn_blocking(move || ingest.observed(&d3))
            .await
            .map_err(|e| Stop::Fail(Failure::dead_letter("ingest_failed", e.to_string())))?
            .map_err(|e| Stop::Fail(Failure::dead_letter("ingest_failed", e.to_string())))?;
        if let Some(hosts) = observed {
            let at = jiff::Timestamp::now();
            self.write(shutdown, || {
                self.queue.record_findings(&task.principal, id, at, &hosts)
            })
            .await?;
        }
        // 6. Upload (manifest last) before completing: a completed task's results are
        // always readable from any node.
        if let Some(remote) = &self.cfg.results_store {
            self.upload(remote, id, &task_dir, flags, shutdown).await?;
        }
        self.write(shutdown, || {
            self.queue.complete(id, token, completion.clone())
        })
        .await?;
        if self.cfg.results_store.is_some() {
            // The object store holds them now; a worker node keeps no results.
            let _ = tokio::fs::remove_dir_all(&task_dir).await;
        }
        tracing::info!(task_id = %id, scan_id = scan.0, "completed");
        Ok(())
    }

    /// Uploads a task's results, retrying failures with the transient backoff while
    /// the lease is held, for at most `upload_retry_for`. Then the task is
    /// dead-lettered `results_upload_failed`: the Nessus scan stays recorded, so a DLQ
    /// retry re-attaches to it, exports again and uploads, without a second scan. A
    /// shutdown meanwhile releases the task the same way.
    async fn upload(
        &self,
        remote: &crate::results_store::ResultsStore,
        id: &str,
        task_dir: &Path,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
    ) -> std::result::Result<(), Stop> {
        let started = std::time::Instant::now();
        let mut attempt = 0;
        loop {
            self.check(flags, shutdown, OnCancel::Continue)?;
            match remote.upload_task(id, task_dir).await {
                Ok(m) => {
                    tracing::debug!(task_id = %id, files = m.files.len(), "results uploaded");
                    return Ok(());
                }
                Err(e) if started.elapsed() >= self.cfg.upload_retry_for => {
                    return Err(Stop::Fail(Failure::dead_letter(
                        "results_upload_failed",
                        format!(
                            "could not upload the results for {}s: {e}; retry the task from the DLQ (the finished Nessus scan is exported again, not rerun)",
                            self.cfg.upload_retry_for.as_secs()
                        ),
                    )));
                }
                Err(e) => {
                    tracing::warn!(task_id = %id, attempt, error = %e, "results upload failed; retrying");
                    self.pause(self.backoff(attempt, None), shutdown, None)
                        .await;
                    attempt += 1;
                }
            }
        }
    }

    /// Creates the scan. A create that failed transiently may still have happened,
    /// so the name is looked up before every retry: at most one scan per task.
    async fn create(
        &self,
        scanner: &dyn Scanner,
        spec: &ScanSpec,
        flags: &Flags,
        shutdown: &watch::Receiver<bool>,
    ) -> std::result::Result<ScanId, Stop> {
        let mut attempt = 0;
        loop {
            self.check(flags, shutdown, OnCancel::Abort)?;
            match scanner.create_scan(spec).await {
                Ok(id) => return Ok(id),
                Err(e) if e.is_retryable() => {
                    tracing::info!(attempt, error = %e, "create failed transiently; waiting");
                    self.pause(
                        self.backoff(attempt, e.retry_after()),
                        shutdown,
                        Some(flags),
                    )
                    .await;
                    attempt += 1;
                    // Even after a cancel: the failed create may have happened, and
                    // a scan found here is then stopped instead of left running.
                    let found = self
                        .call("find scan", flags, shutdown, OnCancel::Continue, || {
                            scanner.find_scan_by_name(&spec.name)
                        })
                        .await?;
                    if let Some(id) = found {
                        return Ok(id);
                    }
                }
                Err(e) => return Err(Stop::Fail(classify(&e))),
            }
        }
    }
}
