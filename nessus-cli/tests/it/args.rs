//! The command-line grammar: help, global flags in any position, usage errors.

use super::*;

#[test]
fn help_lists_subcommands_and_exit_codes() {
    let out = stdout(&check(&["--help"], OK));
    for needle in [
        "convert",
        "diff",
        "worker",
        "scanners",
        "import",
        "config",
        "--json",
        "--data-dir",
        "--config",
        "Exit codes",
        "3  input error",
    ] {
        assert!(out.contains(needle), "help mentions {needle}: {out}");
    }
    check(&["--version"], OK);
}

#[test]
fn missing_or_unknown_subcommand_is_a_usage_error() {
    check(&[], USAGE);
    check(&["frobnicate"], USAGE);
    check(&["convert"], USAGE);
    check(&["convert", "--bogus", "x.nessus"], USAGE);
}

#[test]
fn global_flags_work_before_and_after_the_subcommand() {
    let file = corpus(FIXTURE);
    let file = file.to_str().unwrap();
    let before = check(
        &[
            "--json",
            "-v",
            "--data-dir",
            "/nonexistent",
            "convert",
            file,
        ],
        OK,
    );
    let after = check(
        &[
            "convert",
            file,
            "-v",
            "--json",
            "--data-dir",
            "/nonexistent",
        ],
        OK,
    );
    assert_eq!(before.stdout, after.stdout);
    // -v logs a conversion summary on stderr, never on stdout.
    assert!(stderr(&after).contains("converted"), "{}", stderr(&after));
}

#[test]
fn conflicting_options_are_usage_errors() {
    let file = corpus(FIXTURE);
    let file = file.to_str().unwrap();
    check(
        &["convert", file, "--profile", "full", "--fields", "host"],
        USAGE,
    );
    check(&["convert", file, "--page", "2", "--cursor", "abc"], USAGE);
    check(&["convert", file, "--format", "xml"], USAGE);
    check(&["convert", file, "--include", "everything"], USAGE);
    check(&["diff", file], USAGE);
}
