//! `nessus-cli`: the admin CLI of nessus-mcp.
//!
//! Subcommands: `convert` (a `.nessus` file or findings store to JSON-NL), `diff` (two
//! scans), `import` (a `.nessus` file as a completed task), `export` (a task's findings as
//! JSON-NL, CSV, SARIF or HTML), the queue administration
//! commands `queue status`, `tasks list|show|cancel`, `dlq list|show|retry|purge` and
//! `housekeeping run`, `audit` (the audit trail), `worker` (the queue worker runtime), `config check`,
//! `scanners list|check`, and `sim` (the Nessus simulator). Exit codes are listed in
//! `--help` and in [`exit`].

mod cli;
mod commands;
mod exit;
mod output;
mod progress;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.verbose);
    let result = match &cli.command {
        Command::Convert(args) => commands::convert::run(&cli.global, args),
        Command::Diff(args) => commands::diff::run(&cli.global, args),
        Command::Export(args) => commands::export::run(&cli.global, args),
        Command::Queue(cmd) => commands::queue::run_queue(&cli.global, cmd),
        Command::Tasks(cmd) => commands::queue::run_tasks(&cli.global, cmd),
        Command::Dlq(cmd) => commands::queue::run_dlq(&cli.global, cmd),
        Command::Approvals(cmd) => commands::queue::run_approvals(&cli.global, cmd),
        Command::Schedules(cmd) => commands::queue::run_schedules(&cli.global, cmd),
        Command::Housekeeping(cmd) => commands::queue::run_housekeeping(&cli.global, cmd),
        Command::Sim(args) => commands::sim::run(&cli.global, args),
        Command::Config(cmd) => commands::config::run(&cli.global, cmd),
        Command::Scanners(cmd) => commands::scanners::run(&cli.global, cmd),
        Command::Worker(args) => commands::worker::run(&cli.global, args),
        Command::Import(args) => commands::import::run(&cli.global, args),
        Command::Audit(args) => commands::audit::run(&cli.global, args),
        Command::Findings(cmd) => commands::findings::run(&cli.global, cmd),
        Command::Webhooks(cmd) => commands::queue::run_webhooks(&cli.global, cmd),
    };
    match result {
        Ok(()) => exit::exit(exit::OK),
        Err(error) if exit::is_broken_pipe(&error) => exit::exit(exit::OK),
        Err(error) => {
            eprintln!("error: {}", terminal::safe_lines(&format!("{error:#}")));
            exit::exit(exit::code_for(&error))
        }
    }
}

/// Logs go to stderr so stdout stays clean for data. Whatever `-v` or `RUST_LOG`
/// ask for, [`nessus_core::log_filter`] holds every dependency at `info`: the
/// worker hands scan passwords to HTTP stacks that may log what they send.
fn init_logging(verbose: u8) {
    use tracing_subscriber::{layer::SubscriberExt as _, util::SubscriberInitExt as _};
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::registry()
        .with(filter)
        .with(nessus_core::log_filter())
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .init();
}
