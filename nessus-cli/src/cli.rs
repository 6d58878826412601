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
    /// Machine-readable JSON output instead of human tables.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Configuration file (scanners.yaml); read by the queue and scanner commands.
    #[arg(long, global = true, env = "NESSUS_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (SQLite queue, results); read by the queue and task commands.
    #[arg(long, global = true, env = "NESSUS_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
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
