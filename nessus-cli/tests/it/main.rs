//! Integration tests of the `nessus-cli` binary: every wired subcommand, with its error exits.

mod args;
mod audit;
mod config;
mod convert;
mod diff;
mod export;
mod import;
mod queue;
mod scanners;
mod sim;
mod support;
mod terminal;
mod worker;

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::cargo::cargo_bin_cmd;

/// Exit codes documented in `nessus-cli --help`.
const OK: i32 = 0;
const USAGE: i32 = 2;
const INPUT: i32 = 3;

/// The predecessor's fixture: 1 host, 40 findings.
const FIXTURE: &str = "eafonin-nessus-api__sample_scan.nessus";

fn corpus(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus")).join(name)
}

/// Runs the CLI with `args`, asserts the exit code, and returns its output.
fn check(args: &[&str], expected_code: i32) -> Output {
    cargo_bin_cmd!("nessus-cli")
        .args(args)
        .assert()
        .code(expected_code)
        .get_output()
        .clone()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Parses JSON-NL output into its lines.
fn json_lines(output: &Output) -> Vec<serde_json::Value> {
    stdout(output)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect()
}
