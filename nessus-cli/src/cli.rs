//! The command-line grammar (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Admin CLI for nessus-mcp.
///
/// Global flags may be given before or after the subcommand.
#[derive(Debug, Parser)]
#[command(name = "nessus-cli", version, about, long_about = None)]
#[command(after_help = crate::exit::EXIT_CODES_HELP)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Flags accepted in any position.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// The scanners.yaml config (pools, instances, queue backend, TTLs). Required by
    /// `scanners` and `worker`; when given, the queue commands use its backend and TTLs.
    #[arg(long, global = true, env = "NESSUS_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Machine-readable JSON output instead of human tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Data directory: the SQLite queue is `DIR/queue.sqlite3`, results are under
    /// `DIR/results/`. Used by the queue, tasks, dlq and housekeeping commands.
    #[arg(long, global = true, env = "NESSUS_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Use the Redis queue at this URL instead of the SQLite file of --data-dir.
    #[arg(
        long,
        global = true,
        env = "NESSUS_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(crate) redis_url: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Convert a .nessus file (or an ingested findings store) to JSON-NL on stdout.
    Convert(ConvertArgs),
    /// Compare two scans (files or findings stores): new, fixed, unchanged and
    /// severity-changed findings.
    Diff(DiffArgs),
    /// Queue overview of a pool.
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Inspect and cancel scan tasks.
    #[command(subcommand)]
    Tasks(TasksCommand),
    /// The dead-letter queue: failed tasks that need a human.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Delete finished tasks (and their results) past their retention time.
    #[command(subcommand)]
    Housekeeping(HousekeepingCommand),
    /// Run the Nessus simulator (the on-prem REST API, serving results built from the
    /// corpus) until interrupted.
    Sim(SimArgs),
    /// Validate a config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The configured scanners.
    #[command(subcommand)]
    Scanners(ScannersCommand),
    /// Run a queue worker (scans the queued tasks on the configured scanners) until
    /// SIGTERM or Ctrl-C, then drain gracefully.
    Worker(WorkerArgs),
    /// Ingest an existing .nessus file as a completed task, so agents can query it.
    Import(ImportArgs),
    /// The audit trail (submits, cancels, imports, results reads, DLQ actions, policy
    /// and quota refusals), newest first.
    Audit(AuditArgs),
    /// Export a completed task's findings (the same filters and service call as the MCP
    /// tool export_results): JSON-NL, CSV (formula cells neutralised), a SARIF 2.1.0
    /// log or a self-contained HTML report.
    Export(ExportArgs),
    /// Findings over time: what changed on hosts or networks since a date or a task
    /// (new, fixed, reopened, persistent findings per asset).
    #[command(subcommand)]
    Findings(FindingsCommand),
    /// Scans waiting for an admin's approval (a pool's `approval` rules held them).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Recurring scans (cron in a time zone); every API node and worker fires them.
    #[command(subcommand)]
    Schedules(SchedulesCommand),
    /// Webhook deliveries (the outbox every worker and API node sends from).
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Deliveries, newest first: id, event, task, state, attempts, last answer.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// `findings` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum FindingsCommand {
    /// What changed on TARGETS since a date or task: one line per finding (JSON-NL
    /// with --json, ending in one closing line), uncut (the command line has no
    /// answer budget).
    Changes(FindingsChangesArgs),
    /// Mark a finding (by fingerprint) false_positive or accepted_risk, or clear the
    /// mark: it applies to later scans of the asset and is audited.
    Triage(FindingsTriageArgs),
}

/// `findings triage` arguments.
#[derive(Debug, Args)]
pub(crate) struct FindingsTriageArgs {
    /// The finding's fingerprint (from `findings changes --json`).
    pub(crate) fingerprint: String,
    /// false_positive, accepted_risk or clear.
    #[arg(long)]
    pub(crate) mark: String,
    /// Why (required to mark).
    #[arg(long, default_value = "")]
    pub(crate) reason: String,
    /// When the mark lapses (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub(crate) expires_at: Option<String>,
    /// Who marks it (recorded; default the local admin, who may mark anyone's).
    #[arg(long)]
    pub(crate) principal: Option<String>,
}

/// `findings changes` arguments.
#[derive(Debug, Args)]
pub(crate) struct FindingsChangesArgs {
    /// Hosts (addresses, names) and CIDRs.
    #[arg(required = true, value_name = "TARGET")]
    pub(crate) targets: Vec<String>,
    /// Start: an RFC 3339 time, a date (YYYY-MM-DD, midnight UTC) or a task id.
    #[arg(long)]
    pub(crate) since: String,
    /// Only these states (new, reopened, fixed, persistent; repeatable). Default:
    /// new, reopened and fixed; `--state all` for every state.
    #[arg(long = "state", value_name = "STATE")]
    pub(crate) states: Vec<String>,
    /// Minimum severity: 0-4 or info, low, medium, high, critical.
    #[arg(long)]
    pub(crate) severity: Option<String>,
    /// Findings per page (1-1000).
    #[arg(long, default_value_t = 1000)]
    pub(crate) limit: usize,
    /// Continue after this cursor (from the closing line).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Also list findings marked false_positive or accepted_risk.
    #[arg(long)]
    pub(crate) include_triaged: bool,
    /// Read as this principal (its tasks' findings only); default: every principal's.
    #[arg(long)]
    pub(crate) principal: Option<String>,
}

/// `export` arguments.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// The task id of a completed scan.
    pub(crate) task: String,
    /// jsonl (one finding per line), csv (one header row; cells starting with =, +, -, @,
    /// tab or CR get a leading '), sarif (SARIF 2.1.0) or html (one self-contained page).
    #[arg(long, value_enum)]
    pub(crate) format: ExportFormatArg,
    /// Filters as for get_scan_results: a JSON object, e.g. '{"severity": ">=high"}'.
    #[arg(long, value_name = "JSON")]
    pub(crate) filters: Option<String>,
    /// Fields per finding of jsonl and csv: a schema profile (minimal, brief, summary,
    /// full). SARIF and HTML always carry what they need.
    #[arg(long, default_value = "brief")]
    pub(crate) profile: String,
    /// Sort order as for get_scan_results, e.g. "severity:desc,host".
    #[arg(long)]
    pub(crate) sort: Option<String>,
    /// Write here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// The `--format` of `export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormatArg {
    /// JSON-NL.
    Jsonl,
    /// CSV.
    Csv,
    /// SARIF 2.1.0.
    Sarif,
    /// HTML report.
    Html,
}

/// `schedules` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SchedulesCommand {
    /// Every schedule, oldest first.
    List,
    /// One schedule in full.
    Show {
        /// Schedule id.
        schedule_id: String,
    },
    /// Create a schedule; every slot submits an ordinary scan as its owner.
    Create {
        /// Five-field cron expression, e.g. "0 2 * * *".
        #[arg(long)]
        cron: String,
        /// IANA time zone the expression is read in.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Targets (checked against the pool's policy now and at every run).
        #[arg(long)]
        targets: String,
        /// Scan name.
        #[arg(long)]
        name: String,
        /// Pool (default: the config's default pool).
        #[arg(long)]
        pool: Option<String>,
        /// untrusted, authenticated or authenticated_privileged.
        #[arg(long, default_value = "untrusted")]
        scan_type: String,
        /// Credential profile for authenticated scans.
        #[arg(long)]
        credential_profile: Option<String>,
        /// Owner of the schedule (default: the local operator).
        #[arg(long)]
        principal: Option<String>,
    },
    /// Pause a schedule.
    Pause {
        /// Schedule id.
        schedule_id: String,
    },
    /// Resume a schedule (its next slot is the first after now).
    Resume {
        /// Schedule id.
        schedule_id: String,
    },
    /// Delete a schedule (tasks it created stay).
    Delete {
        /// Schedule id.
        schedule_id: String,
    },
}

/// `approvals` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// Scans waiting for approval, newest first, with the reason each waits.
    List {
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Tasks per page (1-1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Approve a waiting scan: it is queued (its targets are re-checked against the
    /// pool's policy in force now).
    Approve {
        /// Task id.
        task_id: String,
        /// Why (recorded in the task and the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Reject a waiting scan: it is cancelled and its submitter sees the reason.
    Reject {
        /// Task id.
        task_id: String,
        /// Why (recorded in the task and the audit trail).
        #[arg(long)]
        reason: String,
    },
}

/// `audit` arguments.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only events of this principal.
    #[arg(long)]
    pub(crate) principal: Option<String>,
    /// Only this action (submit, cancel, import, results_read, diff, dlq_retry, dlq_purge,
    /// policy_refused, quota_refused, findings_read, triage, approve, reject,
    /// approval_expired, schedule_create, schedule_pause, schedule_resume, schedule_delete,
    /// schedule_fire).
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Only events about this task.
    #[arg(long = "task", value_name = "TASK_ID")]
    pub(crate) task_id: Option<String>,
    /// Only events about this pool.
    #[arg(long)]
    pub(crate) pool: Option<String>,
    /// Only events at or after this time: RFC 3339, or an age such as 90s, 30m, 24h, 7d, 2w.
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only events before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Events per page (1-1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    /// Cursor from a previous page.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Load a config and print what was understood (secrets masked), or the error with
    /// its line and column.
    Check {
        /// The config file (default: --config / NESSUS_CONFIG).
        file: Option<PathBuf>,
    },
}

/// `scanners` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ScannersCommand {
    /// Pools, instances, capacities and URLs from the config.
    List,
    /// Contact every instance: reachability, version, licence and scan API, TLS.
    Check {
        /// Seconds to wait for each scanner.
        #[arg(long, default_value_t = 10, value_name = "SECONDS")]
        timeout: u64,
    },
}

/// `worker` arguments.
#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// Worker identity written into leases (default: `cli-{hostname}-{pid}`).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Tasks processed at once by this worker.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) concurrency: u16,
    /// First interval between status polls of a running scan, in seconds (then x1.5
    /// up to 30 s).
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
    pub(crate) poll_interval: f64,
}

/// `import` arguments.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The .nessus file.
    pub(crate) file: PathBuf,
    /// Only `imported` is accepted (imports are always recorded in that pool, which no
    /// worker serves); any other value is a usage error.
    #[arg(long, value_name = "POOL")]
    pub(crate) pool: Option<String>,
    /// Task name (default: the report name in the file, else the file name).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Principal that owns the task (who may query it over MCP).
    #[arg(long, default_value = "local")]
    pub(crate) principal: String,
    /// The scan had credentials (decides the authentication status).
    #[arg(long)]
    pub(crate) authenticated: bool,
}

/// `sim` arguments.
#[derive(Debug, Args)]
pub(crate) struct SimArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8834", value_name = "ADDR")]
    pub(crate) listen: String,
    /// Seconds a launched scan takes to complete.
    #[arg(long, default_value_t = 3.0, value_name = "SECONDS")]
    pub(crate) scan_duration: f64,
    /// Serve HTTPS with a generated CA; its PEM is written to --ca-out.
    #[arg(long, requires = "ca_out")]
    pub(crate) tls: bool,
    /// Where to write the CA certificate (PEM) of --tls.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_out: Option<PathBuf>,
    /// Folder of .nessus files to build results from (default: the repository corpus).
    #[arg(long, value_name = "DIR")]
    pub(crate) corpus: Option<PathBuf>,
}

/// `queue` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum QueueCommand {
    /// Depth, running tasks, DLQ size and the next tasks of a pool.
    Status {
        /// Scanner pool.
        #[arg(long, default_value = "nessus")]
        pool: String,
    },
}

/// `tasks` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TasksCommand {
    /// Tasks, newest first.
    List {
        /// Only this status (queued, running, completed, failed, timeout, cancelled).
        #[arg(long)]
        status: Option<String>,
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Only tasks whose targets match (CIDR-aware).
        #[arg(long)]
        target: Option<String>,
        /// Tasks per page (1-1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One task in full.
    Show {
        /// Task id.
        task_id: String,
    },
    /// Cancel a queued task, or ask the worker to stop a running one.
    Cancel {
        /// Task id.
        task_id: String,
    },
}

/// `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum DlqCommand {
    /// Dead-lettered tasks, newest first.
    List {
        /// Only this pool.
        #[arg(long)]
        pool: Option<String>,
        /// Tasks per page (1-1000).
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Cursor from a previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// One dead-lettered task in full.
    Show {
        /// Task id.
        task_id: String,
    },
    /// Requeue a dead-lettered task as a fresh attempt.
    Retry {
        /// Task id.
        task_id: String,
    },
    /// Delete dead-lettered tasks.
    #[command(group(clap::ArgGroup::new("what").required(true).args(["task_id", "before", "all"])))]
    Purge {
        /// Only this task.
        task_id: Option<String>,
        /// Only tasks dead-lettered before this RFC 3339 time.
        #[arg(long, value_name = "TIME")]
        before: Option<String>,
        /// Every dead-lettered task.
        #[arg(long)]
        all: bool,
        /// Confirm the deletion (required: there is no prompt).
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `housekeeping` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum HousekeepingCommand {
    /// Delete expired tasks, their results and expired idempotency keys.
    Run {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `convert` arguments.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The .nessus file, or a findings store directory.
    pub(crate) input: PathBuf,
    /// Field profile: minimal, summary, brief (default) or full.
    #[arg(long, conflicts_with = "fields")]
    pub(crate) profile: Option<String>,
    /// Comma-separated custom field list (instead of a profile).
    #[arg(long, value_delimiter = ',', value_name = "FIELD,...")]
    pub(crate) fields: Option<Vec<String>>,
    /// Filter as a JSON object, e.g. '{"severity":">=3"}'.
    #[arg(long, value_name = "JSON")]
    pub(crate) filter: Option<String>,
    /// Sort order, e.g. "severity:desc,host,port".
    #[arg(long, value_name = "KEYS")]
    pub(crate) sort: Option<String>,
    /// Page number (1-based). Without --page and --cursor, every finding is written.
    #[arg(long, conflicts_with = "cursor")]
    pub(crate) page: Option<u32>,
    /// Findings per page (clamped to 10..=100).
    #[arg(long, value_name = "N")]
    pub(crate) page_size: Option<u32>,
    /// Opaque cursor from a previous page's pagination line.
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub(crate) format: Format,
    /// Extra record kinds to include: hosts, compliance.
    #[arg(long, value_delimiter = ',', value_enum, value_name = "KIND,...")]
    pub(crate) include: Vec<Include>,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The older scan: a .nessus file or a findings store directory.
    pub(crate) old: PathBuf,
    /// The newer scan: a .nessus file or a findings store directory.
    pub(crate) new: PathBuf,
}

/// Output formats of `convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line (the MCP results framing).
    Jsonl,
    /// One JSON document.
    Json,
}

/// Optional record kinds of `convert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Include {
    /// One `host` record per host, with its properties.
    Hosts,
    /// `compliance` records for audit results.
    Compliance,
}
