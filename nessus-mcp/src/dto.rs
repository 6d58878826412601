//! Tool arguments and results: the agent-facing contract.
//!
//! Names, defaults and result keys are the predecessor's (seed-spec §2.4–2.12)
//! so existing agent prompts keep working; additions are optional fields.
//! Doc comments become the JSON Schema descriptions the agent reads.

use std::fmt;

use rmcp::schemars::{self, JsonSchema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

fn default_profile() -> String {
    "brief".to_owned()
}

fn default_elevate() -> String {
    "Nothing".to_owned()
}

const fn default_page() -> i64 {
    1
}

const fn default_page_size() -> i64 {
    40
}

const fn default_limit() -> i64 {
    10
}

/// Arguments of `run_untrusted_scan`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct RunUntrustedScan {
    /// Targets: IPs, CIDRs or host names separated by commas (e.g. "10.0.0.5, 10.0.1.0/28").
    /// Every target must be inside the pool's target policy.
    pub(crate) targets: String,
    /// Scan name (shown in Nessus and in list_tasks).
    pub(crate) name: String,
    /// Free-text description.
    #[serde(default)]
    pub(crate) description: String,
    /// Default results profile for this scan: minimal, summary, brief or full.
    #[serde(default = "default_profile")]
    pub(crate) schema_profile: String,
    /// Any string; a retried submit with the same key and arguments returns the
    /// existing task instead of starting a second scan. Strongly recommended.
    #[serde(default)]
    pub(crate) idempotency_key: Option<String>,
    /// Scanner pool (see list_pools); default: the default pool.
    #[serde(default)]
    pub(crate) scanner_pool: Option<String>,
    /// Pin one scanner instance of the pool (see list_scanners); default: the
    /// least-loaded healthy instance, chosen when the scan starts.
    #[serde(default)]
    pub(crate) scanner_instance: Option<String>,
}

/// Arguments of `run_authenticated_scan`. Debug output never shows a password.
#[derive(Clone, Deserialize, JsonSchema)]
pub(crate) struct RunAuthenticatedScan {
    /// Targets: IPs, CIDRs or host names separated by commas. Every target must
    /// be inside the pool's target policy.
    pub(crate) targets: String,
    /// Scan name.
    pub(crate) name: String,
    /// "authenticated" or "authenticated_privileged" (the latter escalates with sudo/su).
    pub(crate) scan_type: String,
    /// Name of a credential profile configured on the server (preferred: the
    /// agent never handles a password). When set, the ssh_* and escalation_*
    /// arguments must be omitted.
    #[serde(default)]
    pub(crate) credential_profile: Option<String>,
    /// SSH user name (only without credential_profile).
    #[serde(default)]
    pub(crate) ssh_username: Option<String>,
    /// SSH password (only without credential_profile). Sealed while queued and
    /// deleted once the scan is created; never logged or returned.
    #[serde(default)]
    pub(crate) ssh_password: Option<String>,
    /// Free-text description.
    #[serde(default)]
    pub(crate) description: String,
    /// Default results profile: minimal, summary, brief or full.
    #[serde(default = "default_profile")]
    pub(crate) schema_profile: String,
    /// Privilege escalation: Nothing, sudo, su, su+sudo, dzdo, pbrun, Cisco 'enable'.
    /// Required (not Nothing) for authenticated_privileged.
    #[serde(default = "default_elevate")]
    pub(crate) elevate_privileges_with: String,
    /// Account to escalate to (e.g. root); optional.
    #[serde(default)]
    pub(crate) escalation_account: String,
    /// Password for the escalation; optional.
    #[serde(default)]
    pub(crate) escalation_password: String,
    /// Retry-safe submission key (see run_untrusted_scan).
    #[serde(default)]
    pub(crate) idempotency_key: Option<String>,
    /// Scanner pool; default: the default pool.
    #[serde(default)]
    pub(crate) scanner_pool: Option<String>,
    /// Pin one scanner instance of the pool.
    #[serde(default)]
    pub(crate) scanner_instance: Option<String>,
}

impl fmt::Debug for RunAuthenticatedScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunAuthenticatedScan")
            .field("targets", &self.targets)
            .field("name", &self.name)
            .field("scan_type", &self.scan_type)
            .field("credential_profile", &self.credential_profile)
            .field("ssh_username", &self.ssh_username)
            .field("elevate_privileges_with", &self.elevate_privileges_with)
            .field("scanner_pool", &self.scanner_pool)
            .finish_non_exhaustive()
    }
}

/// What a scan submission returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScanSubmitted {
    /// Id to pass to get_scan_status, get_scan_results and cancel_scan.
    pub(crate) task_id: String,
    /// Correlation id for logs.
    pub(crate) trace_id: String,
    /// Current status: queued for a new task, unless a worker claimed it
    /// before the answer was built (then running, with queue_position 0).
    pub(crate) status: String,
    /// untrusted, authenticated or authenticated_privileged.
    pub(crate) scan_type: String,
    /// Pool the task waits in.
    pub(crate) scanner_pool: String,
    /// The pinned instance, or null: the instance is chosen when the scan starts.
    pub(crate) scanner_instance: Option<String>,
    /// URL of the pinned instance, or null.
    pub(crate) scanner_url: Option<String>,
    /// 1-based position in the pool's queue; 0 once a worker has claimed it.
    pub(crate) queue_position: u64,
    /// Estimated minutes until a scanner starts it, from capacity and recent
    /// scan durations; 0 once started.
    pub(crate) estimated_wait_minutes: u64,
    /// What happened and what to do next.
    pub(crate) message: String,
    /// True when the idempotency key matched an earlier identical submission.
    pub(crate) idempotent: bool,
    /// Present when status is pending_approval: why the pool's approval rules hold
    /// the scan until an admin approves it (nothing runs before then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approval_reason: Option<String>,
    /// The queue task's creation time, for the MCP task handle (not in the JSON).
    #[serde(skip)]
    pub(crate) created_at: jiff::Timestamp,
    /// The queue task's last update, for the MCP task handle (not in the JSON).
    #[serde(skip)]
    pub(crate) updated_at: jiff::Timestamp,
}

/// Arguments naming one task.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct TaskRef {
    /// The task_id returned by a scan submission.
    pub(crate) task_id: String,
}

/// Advice attached when credentials failed.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct Troubleshooting {
    /// Most likely cause.
    pub(crate) likely_cause: String,
    /// What to check, in order.
    pub(crate) next_steps: Vec<String>,
}

/// What `get_scan_status` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScanStatus {
    /// Task id.
    pub(crate) task_id: String,
    /// Correlation id.
    pub(crate) trace_id: String,
    /// pending_approval, queued, running, completed, failed, timeout or cancelled.
    pub(crate) status: String,
    /// untrusted, authenticated or authenticated_privileged.
    pub(crate) scan_type: String,
    /// Pool.
    pub(crate) scanner_pool: String,
    /// Scanner type (the pool name's prefix, e.g. nessus).
    pub(crate) scanner_type: String,
    /// Instance running (or pinned to run) the scan.
    pub(crate) scanner_instance: Option<String>,
    /// Targets as submitted.
    pub(crate) targets: String,
    /// Scan name.
    pub(crate) name: String,
    /// Nessus scan id once created.
    pub(crate) nessus_scan_id: Option<i64>,
    /// Submission time (RFC 3339).
    pub(crate) created_at: String,
    /// Start time.
    pub(crate) started_at: Option<String>,
    /// End time.
    pub(crate) completed_at: Option<String>,
    /// Why it failed, if it did.
    pub(crate) error_message: Option<String>,
    /// Machine-readable failure reason.
    pub(crate) error_code: Option<String>,
    /// success, failed, partial, not_applicable or unknown (after completion).
    pub(crate) authentication_status: Option<String>,
    /// Non-fatal warnings from result validation.
    pub(crate) validation_warnings: Vec<String>,
    /// Scan progress 0-100 while running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) progress: Option<u8>,
    /// Position in the queue while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) queue_position: Option<u64>,
    /// Estimated minutes until start while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) estimated_wait_minutes: Option<u64>,
    /// True while a cancel is being carried out.
    pub(crate) cancel_requested: bool,
    /// Present once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<ResultsSummary>")]
    pub(crate) results_summary: Option<Value>,
    /// Present when authentication failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) troubleshooting: Option<Troubleshooting>,
    /// What to do next.
    pub(crate) next_step: String,
    /// True for a task imported from a .nessus file (import_scan), false for a scan.
    pub(crate) imported: bool,
    /// Why the scan needed (or needs) an admin's approval; absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approval_reason: Option<String>,
    /// While pending_approval: when the request expires (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) approval_expires_at: Option<String>,
    /// The admin's decision, once made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) review: Option<ReviewInfo>,
}

/// An admin's decision on a scan that waited for approval.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReviewInfo {
    /// approved, rejected or expired.
    pub(crate) decision: String,
    /// Who decided (housekeeping for an expiry).
    pub(crate) by: String,
    /// The reason given.
    pub(crate) reason: String,
    /// When (RFC 3339).
    pub(crate) at: String,
}

/// Arguments of `review_scan`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ReviewScan {
    /// The task waiting in pending_approval.
    pub(crate) task_id: String,
    /// "approve" (the scan is queued) or "reject" (it is cancelled).
    pub(crate) decision: String,
    /// Why; recorded in the task and the audit trail (required).
    pub(crate) reason: String,
}

/// What `review_scan` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ReviewResult {
    /// Task id.
    pub(crate) task_id: String,
    /// Status after the decision: queued (approved) or cancelled (rejected).
    pub(crate) status: String,
    /// approved or rejected.
    pub(crate) decision: String,
    /// Who decided.
    pub(crate) reviewed_by: String,
    /// What happened.
    pub(crate) message: String,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

fn default_scan_type() -> String {
    "untrusted".to_owned()
}

/// Arguments of `create_schedule`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct CreateSchedule {
    /// Five-field cron expression (minute hour day-of-month month day-of-week), e.g.
    /// "0 2 * * *" for 02:00 every day.
    pub(crate) cron: String,
    /// IANA time zone the cron expression is read in, e.g. "Europe/Berlin".
    #[serde(default = "default_timezone")]
    pub(crate) timezone: String,
    /// Targets, as for run_untrusted_scan (checked against the pool's policy now and at
    /// every run).
    pub(crate) targets: String,
    /// Name of every scheduled scan.
    pub(crate) name: String,
    /// Description.
    #[serde(default)]
    pub(crate) description: String,
    /// untrusted (default), authenticated or authenticated_privileged.
    #[serde(default = "default_scan_type")]
    pub(crate) scan_type: String,
    /// For authenticated scans: a credential profile configured on the server
    /// (schedules never take ad-hoc credentials).
    #[serde(default)]
    pub(crate) credential_profile: Option<String>,
    /// Pool (default: the default pool).
    #[serde(default)]
    pub(crate) scanner_pool: Option<String>,
    /// Pin to one instance of the pool.
    #[serde(default)]
    pub(crate) scanner_instance: Option<String>,
    /// Results profile.
    #[serde(default = "default_profile")]
    pub(crate) schema_profile: String,
}

/// Arguments naming one schedule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ScheduleRef {
    /// The schedule_id returned by create_schedule.
    pub(crate) schedule_id: String,
}

/// A schedule.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScheduleInfo {
    /// Id.
    pub(crate) schedule_id: String,
    /// Owner: every run is submitted as this principal.
    pub(crate) principal: String,
    /// Pool.
    pub(crate) scanner_pool: String,
    /// Scan type.
    pub(crate) scan_type: String,
    /// Canonical targets.
    pub(crate) targets: String,
    /// Scan name.
    pub(crate) name: String,
    /// Credential profile, if any.
    pub(crate) credential_profile: Option<String>,
    /// Cron expression.
    pub(crate) cron: String,
    /// Time zone.
    pub(crate) timezone: String,
    /// True while paused (nothing fires).
    pub(crate) paused: bool,
    /// The next slot (RFC 3339); a paused schedule recomputes it on resume.
    pub(crate) next_slot: String,
    /// The last slot fired.
    pub(crate) last_fired_slot: Option<String>,
    /// The task the last slot created (get_scan_status it).
    pub(crate) last_task_id: Option<String>,
    /// Why the last slot created no task (e.g. the target policy refused it).
    pub(crate) last_error: Option<String>,
    /// Creation time.
    pub(crate) created_at: String,
}

/// What `list_schedules` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScheduleList {
    /// Schedules, oldest first.
    pub(crate) schedules: Vec<ScheduleInfo>,
    /// Number returned.
    pub(crate) total: usize,
}

/// What `delete_schedule` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScheduleDeleted {
    /// Id.
    pub(crate) schedule_id: String,
    /// Always true (an unknown id is an error).
    pub(crate) deleted: bool,
    /// What happened.
    pub(crate) message: String,
}

/// The shape of `results_summary` (the queue's ingest writes it as JSON;
/// this documents it for the schema). Fields an ingest did not compute are absent.
#[derive(Debug, Clone, JsonSchema)]
#[allow(dead_code, reason = "schema only: the value is the queue's JSON")]
pub(crate) struct ResultsSummary {
    /// Hosts in the export.
    #[serde(skip_serializing_if = "Option::is_none")]
    hosts_scanned: Option<u64>,
    /// Findings with severity low to critical (1-4), info excluded: the predecessor's
    /// count. Not the same as `total_vulnerabilities` in `get_scan_results`, which counts
    /// the findings matching the filter at every severity; compare that with
    /// `total_findings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_vulnerabilities: Option<u64>,
    /// Every finding at every severity, info (0) included: the sum of
    /// `severity_breakdown`, and what an unfiltered `get_scan_results` reports as its
    /// `total_vulnerabilities`.
    #[serde(skip_serializing_if = "Option::is_none")]
    total_findings: Option<u64>,
    /// Findings per severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    severity_breakdown: Option<SeverityBreakdown>,
    /// Size of the .nessus export in KiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    file_size_kb: Option<f64>,
    /// Authentication-check plugins found (credentialed scans).
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_plugins_found: Option<u64>,
}

/// Findings per severity (a `results_summary`'s breakdown, a `summarize_results` group).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SeverityBreakdown {
    /// Severity 4.
    pub(crate) critical: u64,
    /// Severity 3.
    pub(crate) high: u64,
    /// Severity 2.
    pub(crate) medium: u64,
    /// Severity 1.
    pub(crate) low: u64,
    /// Severity 0.
    pub(crate) info: u64,
}

/// Arguments of `get_scan_results`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct GetScanResults {
    /// Task id of a completed scan.
    pub(crate) task_id: String,
    /// Page number, 1-based; 0 returns everything up to a size budget (the
    /// pagination line says when it was cut).
    #[serde(default = "default_page")]
    pub(crate) page: i64,
    /// Findings per page (10-100).
    #[serde(default = "default_page_size")]
    pub(crate) page_size: i64,
    /// Fields per finding: minimal, summary, brief (default) or full.
    #[serde(default = "default_profile")]
    pub(crate) schema_profile: String,
    /// Exact list of fields instead of a profile (see the nessus://schema/fields resource).
    #[serde(default)]
    pub(crate) custom_fields: Option<Vec<String>>,
    /// Filters applied before projection, e.g. {"severity": ">=3"},
    /// {"cvss_score": ">7.0"}, {"plugin_name": "ssl"} (substring),
    /// {"exploit_available": true}, {"cve": "CVE-2021-44228"} (list contains),
    /// or explicit operators {"host": {"cidr": "10.0.0.0/24"}}.
    #[serde(default)]
    pub(crate) filters: Option<FiltersArg>,
    /// Opaque cursor from the previous page's pagination line (alternative to page).
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// Sort order: comma-separated fields, each optionally :asc or :desc,
    /// e.g. "severity:desc,host". Fields: {sort_fields}. Default: severity
    /// (worst first), host, port, plugin_id.
    #[serde(default)]
    pub(crate) sort: Option<String>,
    /// Size budget of the whole answer in bytes (about 4 bytes per token);
    /// default {default_budget}, allowed {min_budget}-{max_budget}. The closing line
    /// says when the answer was cut and how to get the rest.
    #[serde(default)]
    pub(crate) byte_budget: Option<u64>,
    /// Arguments the schema does not name, as notices for the closing line
    /// (filled by `crate::args`, never sent by a client).
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) notices: Vec<String>,
}

/// `filters`: an object, or a JSON string holding one (some clients send
/// nested arguments as text).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum FiltersArg {
    /// The filter object.
    Object(Map<String, Value>),
    /// The filter object as JSON text.
    Text(String),
}

/// Arguments with an optional pool.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(crate) struct PoolRef {
    /// Pool name; default: the default pool (list_scanners: all pools).
    #[serde(default)]
    pub(crate) scanner_pool: Option<String>,
}

/// No arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub(crate) struct NoArgs {}

/// One scanner instance.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScannerInfo {
    /// Scanner type (e.g. nessus).
    pub(crate) scanner_type: String,
    /// Pool.
    pub(crate) pool: String,
    /// Instance id within the pool.
    pub(crate) instance_id: String,
    /// `pool:instance_id`.
    pub(crate) instance_key: String,
    /// Display name.
    pub(crate) name: String,
    /// Base URL (no credentials).
    pub(crate) url: String,
    /// Always true: disabled instances are not loaded.
    pub(crate) enabled: bool,
    /// Concurrent scan limit.
    pub(crate) max_concurrent_scans: u32,
    /// Scans running now.
    pub(crate) active_scans: u64,
    /// max_concurrent_scans - active_scans.
    pub(crate) available_capacity: u64,
    /// active / max in percent.
    pub(crate) utilization_pct: f64,
}

/// What `list_scanners` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ScannerList {
    /// Instances (filtered by pool when asked).
    pub(crate) scanners: Vec<ScannerInfo>,
    /// Number of instances returned.
    pub(crate) total: usize,
    /// Every pool, sorted.
    pub(crate) pools: Vec<String>,
}

/// What `list_pools` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct PoolList {
    /// Pool names, sorted.
    pub(crate) pools: Vec<String>,
    /// Pool used when scanner_pool is omitted.
    pub(crate) default_pool: String,
}

/// One instance in `get_pool_status`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct PoolScanner {
    /// `pool:instance_id`.
    pub(crate) instance_key: String,
    /// Scans running now.
    pub(crate) active_scans: u64,
    /// Concurrent scan limit.
    pub(crate) max_concurrent_scans: u32,
    /// active / max in percent.
    pub(crate) utilization_pct: f64,
    /// Free slots.
    pub(crate) available_capacity: u64,
}

/// What `get_pool_status` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct PoolStatus {
    /// Pool.
    pub(crate) pool: String,
    /// Scanner type.
    pub(crate) scanner_type: String,
    /// Instances in the pool.
    pub(crate) total_scanners: usize,
    /// Sum of max_concurrent_scans.
    pub(crate) total_capacity: u64,
    /// Scans running now.
    pub(crate) total_active: u64,
    /// total_capacity - total_active.
    pub(crate) available_capacity: u64,
    /// total_active / total_capacity in percent.
    pub(crate) utilization_pct: f64,
    /// Per instance.
    pub(crate) scanners: Vec<PoolScanner>,
}

/// A queued task as shown by `get_queue_status` (never with credentials).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct QueuedTask {
    /// Task id.
    pub(crate) task_id: String,
    /// Scan type.
    pub(crate) scan_type: String,
    /// Scan name.
    pub(crate) name: String,
    /// Targets.
    pub(crate) targets: String,
    /// Submission time.
    pub(crate) created_at: String,
}

/// What `get_queue_status` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct QueueStatus {
    /// Pool.
    pub(crate) pool: String,
    /// Tasks waiting.
    pub(crate) queue_depth: u64,
    /// Tasks running.
    pub(crate) running: u64,
    /// Dead-lettered tasks (see the admin CLI `dlq`).
    pub(crate) dlq_size: u64,
    /// Tasks waiting for an admin's approval (not counted in queue_depth).
    pub(crate) pending_approval: u64,
    /// Next tasks to start (up to 3), next first.
    pub(crate) next_tasks: Vec<QueuedTask>,
    /// When this was computed.
    pub(crate) timestamp: String,
}

/// Arguments of `list_tasks`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ListTasks {
    /// Maximum tasks to return (1-1000).
    #[serde(default = "default_limit")]
    pub(crate) limit: i64,
    /// Only this status: pending_approval, queued, running, completed, failed, timeout or cancelled.
    #[serde(default)]
    pub(crate) status_filter: Option<String>,
    /// Only this pool.
    #[serde(default)]
    pub(crate) scanner_pool: Option<String>,
    /// Only tasks whose targets match (CIDR-aware: 10.0.0.5 matches a scan of 10.0.0.0/24).
    #[serde(default)]
    pub(crate) target_filter: Option<String>,
    /// Cursor from the previous call's next_cursor.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
}

/// One task in `list_tasks`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskItem {
    /// Task id.
    pub(crate) task_id: String,
    /// Correlation id.
    pub(crate) trace_id: String,
    /// Status.
    pub(crate) status: String,
    /// Scan type.
    pub(crate) scan_type: String,
    /// Pool.
    pub(crate) scanner_pool: String,
    /// Scanner type.
    pub(crate) scanner_type: String,
    /// Instance.
    pub(crate) scanner_instance: Option<String>,
    /// Targets.
    pub(crate) targets: String,
    /// Scan name.
    pub(crate) name: String,
    /// Submission time.
    pub(crate) created_at: String,
    /// Start time.
    pub(crate) started_at: Option<String>,
    /// End time.
    pub(crate) completed_at: Option<String>,
    /// Nessus scan id.
    pub(crate) nessus_scan_id: Option<i64>,
    /// True for a task imported from a .nessus file (import_scan), false for a scan.
    pub(crate) imported: bool,
}

/// What `list_tasks` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TaskList {
    /// Tasks, newest first.
    pub(crate) tasks: Vec<TaskItem>,
    /// Number returned.
    pub(crate) total: usize,
    /// Pass as cursor to get the next page; null at the end.
    pub(crate) next_cursor: Option<String>,
}

/// What `cancel_scan` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct CancelResult {
    /// Task id.
    pub(crate) task_id: String,
    /// Status after the call (cancelled, or running while the scanner stops).
    pub(crate) status: String,
    /// What happened.
    pub(crate) message: String,
}

/// Arguments of `diff_scans`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct DiffScans {
    /// The older (baseline) completed task.
    pub(crate) base_task_id: String,
    /// The newer completed task.
    pub(crate) compare_task_id: String,
    /// Only consider findings at or above this severity (0-4, default 1).
    #[serde(default)]
    pub(crate) min_severity: Option<u8>,
    /// Maximum entries per list (default 100).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
}

/// Counts of a scan diff.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiffCounts {
    /// Findings only in the newer scan.
    pub(crate) new: usize,
    /// Findings only in the older scan.
    pub(crate) fixed: usize,
    /// Findings in both with another severity.
    pub(crate) severity_changed: usize,
    /// Findings in both with the same severity.
    pub(crate) unchanged: usize,
}

/// What `diff_scans` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiffResult {
    /// The older scan.
    pub(crate) base_task_id: String,
    /// The newer scan.
    pub(crate) compare_task_id: String,
    /// Severity threshold applied.
    pub(crate) min_severity: u8,
    /// Totals (before the per-list limit).
    pub(crate) counts: DiffCounts,
    /// True when a list was cut at the limit.
    pub(crate) truncated: bool,
    /// New findings.
    pub(crate) new: Vec<DiffFinding>,
    /// Fixed findings.
    pub(crate) fixed: Vec<DiffFinding>,
    /// Findings whose severity changed.
    pub(crate) severity_changed: Vec<DiffChange>,
}

/// One finding of a diff (nessus_schema::DiffEntry on the wire).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiffFinding {
    /// Host.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: Option<u32>,
    /// Protocol (tcp, udp, icmp).
    pub(crate) protocol: Option<String>,
    /// Nessus plugin id.
    pub(crate) plugin_id: Option<u32>,
    /// Plugin name.
    pub(crate) plugin_name: Option<String>,
    /// Severity 0-4.
    pub(crate) severity: Option<u8>,
}

/// A finding whose severity changed (nessus_schema::SeverityChange on the wire).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct DiffChange {
    /// Host.
    pub(crate) host: String,
    /// Port.
    pub(crate) port: Option<u32>,
    /// Protocol.
    pub(crate) protocol: Option<String>,
    /// Nessus plugin id.
    pub(crate) plugin_id: Option<u32>,
    /// Plugin name (from the newer scan).
    pub(crate) plugin_name: Option<String>,
    /// Severity in the older scan.
    pub(crate) old_severity: Option<u8>,
    /// Severity in the newer scan.
    pub(crate) new_severity: Option<u8>,
}

impl From<&nessus_schema::DiffEntry> for DiffFinding {
    fn from(e: &nessus_schema::DiffEntry) -> Self {
        let f = &e.fingerprint;
        Self {
            host: f.host.clone(),
            port: f.port,
            protocol: f.protocol.clone(),
            plugin_id: f.plugin_id,
            plugin_name: e.plugin_name.clone(),
            severity: e.severity,
        }
    }
}

impl From<&nessus_schema::SeverityChange> for DiffChange {
    fn from(c: &nessus_schema::SeverityChange) -> Self {
        let f = &c.fingerprint;
        Self {
            host: f.host.clone(),
            port: f.port,
            protocol: f.protocol.clone(),
            plugin_id: f.plugin_id,
            plugin_name: c.plugin_name.clone(),
            old_severity: c.old_severity,
            new_severity: c.new_severity,
        }
    }
}

/// Arguments of `import_scan`: exactly one of `path` or `content`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ImportScan {
    /// A `.nessus` file inside the server's import directory (relative to it,
    /// or absolute under it). Paths outside it are refused.
    #[serde(default)]
    pub(crate) path: Option<String>,
    /// The `.nessus` XML itself, for small files (up to 4 MiB).
    #[serde(default)]
    pub(crate) content: Option<String>,
    /// Name shown by list_tasks (default: the file name, or "imported scan").
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// What `import_scan` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ImportResult {
    /// Id of the new completed task: use it with get_scan_results and diff_scans.
    pub(crate) task_id: String,
    /// Always "completed".
    pub(crate) status: String,
    /// The pool imported tasks live in ("imported"; no scanner runs them).
    pub(crate) scanner_pool: String,
    /// Task name.
    pub(crate) name: String,
    /// Hosts found in the file, as the task's targets.
    pub(crate) targets: String,
    /// Hosts, vulnerabilities and severity counts, as get_scan_status shows them.
    #[schemars(with = "Option<ResultsSummary>")]
    pub(crate) results_summary: Option<Value>,
    /// What to do next.
    pub(crate) message: String,
    /// Always true: the task was imported from a .nessus file, not scanned.
    pub(crate) imported: bool,
}

// What each tool does with arguments its schema does not name (see `crate::args`).
impl crate::args::ToolArgs for RunUntrustedScan {}
impl crate::args::ToolArgs for RunAuthenticatedScan {}
impl crate::args::ToolArgs for TaskRef {}
impl crate::args::ToolArgs for PoolRef {}
impl crate::args::ToolArgs for NoArgs {}
impl crate::args::ToolArgs for ListTasks {}
impl crate::args::ToolArgs for DiffScans {}
impl crate::args::ToolArgs for ImportScan {}
impl crate::args::ToolArgs for ReviewScan {}
impl crate::args::ToolArgs for CreateSchedule {}
impl crate::args::ToolArgs for ScheduleRef {}
impl crate::args::ToolArgs for GetScanResults {
    fn unknown_arguments(&mut self, notices: Vec<String>) {
        self.notices = notices;
    }
}

/// Arguments of `export_results`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct ExportResults {
    /// Task id of a completed scan.
    pub(crate) task_id: String,
    /// "jsonl" (one JSON vulnerability line per finding, no framing lines),
    /// "csv" (a header row at the top of every part), "sarif" (one SARIF 2.1.0
    /// log) or "html" (one self-contained HTML report); sarif and html are one
    /// document (one part), refused past {report_findings} findings.
    pub(crate) format: String,
    /// Fields per finding: {profiles}.
    #[serde(default = "default_profile")]
    pub(crate) schema_profile: String,
    /// Exact list of fields instead of a profile (see the nessus://schema/fields resource).
    #[serde(default)]
    pub(crate) custom_fields: Option<Vec<String>>,
    /// Filters, as for get_scan_results: an object, or a JSON string holding one.
    #[serde(default)]
    pub(crate) filters: Option<FiltersArg>,
    /// Sort order, as for get_scan_results (e.g. "severity:desc,host").
    #[serde(default)]
    pub(crate) sort: Option<String>,
}

impl crate::args::ToolArgs for ExportResults {}

/// What `export_results` returns: where to read the parts, not the findings.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ExportResult {
    /// Task id.
    pub(crate) task_id: String,
    /// jsonl, csv, sarif or html.
    pub(crate) format: String,
    /// Findings matching the filters.
    pub(crate) findings: u64,
    /// Number of parts (0 when nothing matches; always 1 for sarif and html,
    /// which are one document).
    pub(crate) parts: u32,
    /// Findings per part (the last may hold fewer); smaller than the maximum
    /// when parts of that many findings would exceed the byte cap.
    pub(crate) part_size: u32,
    /// MIME type of every part.
    pub(crate) mime_type: String,
    /// One nessus:// resource URI per part, in order (the first 20 parts at most):
    /// read each with resources/read.
    pub(crate) uris: Vec<String>,
    /// The URI of every part: replace {part} with 1..parts.
    pub(crate) uri_template: String,
    /// What to do next.
    pub(crate) message: String,
}

/// Arguments of `summarize_results`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct SummarizeResults {
    /// Task id of a completed scan.
    pub(crate) task_id: String,
    /// What to group findings by: host, plugin, severity, cve, port or plugin_family.
    pub(crate) group_by: String,
    /// Filters applied first, as for get_scan_results (an object, or a JSON string
    /// holding one), e.g. {"severity": ">=high", "exploit_available": true}.
    /// Severity: {severity_scale}.
    #[serde(default)]
    pub(crate) filters: Option<FiltersArg>,
    /// Groups to return (1-100, default 10); the rest are summed in `other`.
    #[serde(default)]
    pub(crate) top: Option<u32>,
    /// "severity" (default: most critical findings first, then high, medium, low, info,
    /// then most findings), "count" (most findings first) or "hosts" (most distinct
    /// hosts first: the most widespread plugins, CVEs or ports).
    #[serde(default)]
    pub(crate) rank_by: Option<String>,
    /// Arguments the schema does not name, reported in the answer's notices.
    #[serde(skip)]
    #[schemars(skip)]
    pub(crate) notices: Vec<String>,
}

impl crate::args::ToolArgs for SummarizeResults {
    fn unknown_arguments(&mut self, notices: Vec<String>) {
        self.notices = notices;
    }
}

/// One group of `summarize_results`. Which identity fields are present depends on
/// group_by (host: host, host_ip; plugin: plugin_id, plugin_name, plugin_family,
/// severity; cve: cve; port: port, protocol; severity: severity, severity_name;
/// plugin_family: plugin_family).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SummaryGroup {
    /// Host name, plugin id, CVE id, "443/tcp", severity digit or family name: pass it
    /// back as a filter (e.g. {"host": key}) to list the group's findings.
    pub(crate) key: String,
    /// A human name for the key (plugin name, severity name), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) label: Option<String>,
    /// Findings in the group (all severities, after the filters).
    pub(crate) findings: u64,
    /// Distinct hosts among them.
    pub(crate) hosts: u64,
    /// Highest severity among them (4 critical ... 0 info).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max_severity: Option<u8>,
    /// Findings per severity.
    pub(crate) severity_counts: SeverityBreakdown,
    /// Findings with exploit_available true.
    pub(crate) exploitable: u64,
    /// Host name (group_by host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host: Option<String>,
    /// The host's address when it differs from its name (group_by host).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host_ip: Option<String>,
    /// Plugin id (group_by plugin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plugin_id: Option<u32>,
    /// Plugin name (group_by plugin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plugin_name: Option<String>,
    /// Plugin family (group_by plugin or plugin_family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) plugin_family: Option<String>,
    /// Severity (group_by severity; for group_by plugin the highest it reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) severity: Option<u8>,
    /// critical, high, medium, low or info (group_by severity).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) severity_name: Option<String>,
    /// CVE id (group_by cve).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cve: Option<String>,
    /// Port number (group_by port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) port: Option<u32>,
    /// Protocol (group_by port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) protocol: Option<String>,
}

/// The groups left out of the top N.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SummaryOther {
    /// Groups left out.
    pub(crate) groups: u64,
    /// Their findings (for cve, a finding with several CVEs counts in each).
    pub(crate) findings: u64,
}

/// What `summarize_results` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct SummaryResult {
    /// Task id.
    pub(crate) task_id: String,
    /// The grouping applied.
    pub(crate) group_by: String,
    /// The ranking applied (severity, count or hosts).
    pub(crate) rank_by: String,
    /// The filters as given ({} for none).
    pub(crate) filters_applied: Map<String, Value>,
    /// Findings matching the filters (all severities, info included).
    pub(crate) matched_findings: u64,
    /// Distinct groups among them.
    pub(crate) groups_total: u64,
    /// The first groups, ranked.
    pub(crate) groups: Vec<SummaryGroup>,
    /// The groups beyond `top`, summed; absent when every group is listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) other: Option<SummaryOther>,
    /// Why nothing matched, and what the scan holds near the filters; present only
    /// when the filters matched nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) explanation: Option<String>,
    /// What was adjusted (e.g. a clamped top).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) notices: Vec<String>,
    /// What to call next.
    pub(crate) next: String,
}

/// Arguments of `findings_changes`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct FindingsChanges {
    /// Hosts (addresses, FQDNs, NetBIOS names) and CIDRs, e.g. ["10.0.0.0/24"].
    pub(crate) targets: Vec<String>,
    /// Start: an RFC 3339 time ("2026-01-31T00:00:00Z"), a date ("2026-01-31",
    /// midnight UTC) or a task id (changes after that scan).
    pub(crate) since: String,
    /// States to return: new, reopened, fixed (the default: what changed) and
    /// persistent (present then and now); [] for all four.
    #[serde(default)]
    pub(crate) states: Option<Vec<String>>,
    /// Minimum severity: 0-4 or info, low, medium, high, critical (default: all).
    #[serde(default)]
    pub(crate) severity: Option<SeverityArg>,
    /// Changes per answer (1-1000, default 100).
    #[serde(default)]
    pub(crate) limit: Option<usize>,
    /// next_cursor from the previous answer's closing line.
    #[serde(default)]
    pub(crate) cursor: Option<String>,
    /// Also list findings marked false_positive or accepted_risk (default false:
    /// someone already judged them).
    #[serde(default)]
    pub(crate) include_triaged: bool,
    /// Size budget of the whole answer in bytes; default {default_budget}, allowed
    /// {min_budget}-{max_budget}.
    #[serde(default)]
    pub(crate) byte_budget: Option<u64>,
}

/// A triage mark as an answer shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TriageInfo {
    /// false_positive or accepted_risk.
    pub(crate) mark: String,
    /// Why.
    pub(crate) reason: String,
    /// Who marked it.
    pub(crate) by: String,
    /// When (RFC 3339).
    pub(crate) at: String,
    /// When it lapses (RFC 3339), if ever.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
}

impl From<&nessus_queue::findings::Triage> for TriageInfo {
    fn from(t: &nessus_queue::findings::Triage) -> Self {
        Self {
            mark: t.mark.as_str().to_owned(),
            reason: t.reason.clone(),
            by: t.by.clone(),
            at: t.at.to_string(),
            expires_at: t.expires_at.map(|e| e.to_string()),
        }
    }
}

/// Arguments of `triage_finding`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub(crate) struct TriageFinding {
    /// The finding's fingerprint, as findings_changes gives it.
    pub(crate) fingerprint: String,
    /// false_positive, accepted_risk, or clear (removes the mark).
    pub(crate) mark: String,
    /// Why (required to mark).
    #[serde(default)]
    pub(crate) reason: String,
    /// When the mark lapses: an RFC 3339 time or a date, in the future (default: never).
    #[serde(default)]
    pub(crate) expires_at: Option<String>,
}

impl crate::args::ToolArgs for TriageFinding {}

/// What `triage_finding` returns.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TriageResult {
    /// The fingerprint.
    pub(crate) fingerprint: String,
    /// Its asset.
    pub(crate) asset_id: String,
    /// The host as last scanned.
    pub(crate) host: String,
    /// Nessus plugin id.
    pub(crate) plugin_id: Option<u32>,
    /// Plugin name.
    pub(crate) plugin_name: Option<String>,
    /// State after the host's latest scan.
    pub(crate) current_state: String,
    /// The mark in force (absent after clear).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) triage: Option<TriageInfo>,
    /// What happened.
    pub(crate) message: String,
}

/// One finding of a `findings_changes` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct FindingChange {
    /// sha256 of asset, plugin id, port and protocol (never plugin_output).
    pub(crate) fingerprint: String,
    /// The asset: ip:<address>, else fqdn:, netbios:, mac: or name:.
    pub(crate) asset_id: String,
    /// The host as last scanned (ReportHost name).
    pub(crate) host: String,
    /// The host address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) host_ip: Option<String>,
    /// Nessus plugin id.
    pub(crate) plugin_id: Option<u32>,
    /// Plugin name.
    pub(crate) plugin_name: Option<String>,
    /// Severity 0-4.
    pub(crate) severity: Option<u8>,
    /// Port.
    pub(crate) port: Option<u32>,
    /// Protocol.
    pub(crate) protocol: Option<String>,
    /// Since `since`: new, reopened, fixed, or persistent (present then and now).
    pub(crate) state: String,
    /// After the host's latest scan: new, persistent, fixed or reopened.
    pub(crate) current_state: String,
    /// First sighting (RFC 3339).
    pub(crate) first_seen: String,
    /// Latest sighting (RFC 3339).
    pub(crate) last_seen: String,
    /// When it was fixed (fixed findings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fixed_at: Option<String>,
    /// Task of the latest sighting.
    pub(crate) last_task: String,
    /// The triage mark in force (only with include_triaged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) triage: Option<TriageInfo>,
}

/// The closing part of a `findings_changes` answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ChangesClosing {
    /// `end`, or `pagination` when more changes remain.
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Changes in this answer.
    pub(crate) returned: u64,
    /// Matching changes in all.
    pub(crate) total: u64,
    /// Matching changes per state.
    pub(crate) counts: std::collections::BTreeMap<String, u64>,
    /// Assets examined.
    pub(crate) assets: u64,
    /// Pass as cursor for the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next_cursor: Option<String>,
    /// What to do next.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) next: Option<String>,
}

/// What `findings_changes` returns: the changes that fit the byte budget, then the
/// closing part.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ChangesResult {
    /// Changes, by asset then fingerprint.
    pub(crate) changes: Vec<FindingChange>,
    /// Always last: end or pagination.
    pub(crate) closing: ChangesClosing,
}

/// A severity as a number or a name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum SeverityArg {
    /// 0 (info) to 4 (critical).
    Number(u8),
    /// info, low, medium, high or critical.
    Name(String),
}

impl crate::args::ToolArgs for FindingsChanges {}
