//! Terminal-safe output (issue 12): a task name, a target (as an imported host name
//! would be) and a scanner error holding escape sequences print escaped in every
//! human-readable command, and exactly in `--json`.

use super::*;

const NAME: &str = "\x1b[31mRED\x1b[0m\r";
const TARGET: &str = "192.0.2.1\x1b[2J";
const ERROR: &str = "scanner said \x1b]0;pwned\x07 \u{202e}gnp.exe";

#[test]
fn control_characters_print_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("queue.sqlite3");
    let (dead, mut queued) =
        crate::support::seed_queue(&db, &[(TARGET, NAME, "ring\x07 the bell"); 2], ERROR);
    let queued = queued.remove(0);
    let data = dir.path().to_str().unwrap();
    // (command, a text the output must show, escaped)
    let cases: &[(&[&str], &str)] = &[
        (&["tasks", "list"], "192.0.2.1\\u{1b}[2J"),
        (&["tasks", "show", &dead], "\\u{1b}[31mRED\\u{1b}[0m\\r"),
        (&["tasks", "show", &queued], "ring\\u{7} the bell"),
        (&["dlq", "list"], "192.0.2.1\\u{1b}[2J"),
        (
            &["dlq", "show", &dead],
            "\\u{1b}]0;pwned\\u{7} \\u{202e}gnp.exe",
        ),
        (
            &["queue", "status", "--pool", "nessus"],
            "192.0.2.1\\u{1b}[2J",
        ),
    ];
    for &(command, shown) in cases {
        let mut args = vec!["--data-dir", data];
        args.extend_from_slice(command);
        let out = stdout(&check(&args, OK));
        for bad in ['\x1b', '\r', '\x07', '\u{202e}'] {
            assert!(
                !out.contains(bad),
                "{command:?} printed {bad:?} raw:\n{out}"
            );
        }
        assert!(
            out.contains(shown),
            "{command:?} does not show {shown:?}:\n{out}"
        );
    }

    // --json stays exact: the same bytes come back after JSON decoding.
    let out = check(&["--data-dir", data, "dlq", "show", &dead, "--json"], OK);
    let task: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(task["name"], NAME);
    assert_eq!(task["targets"], TARGET);
    assert_eq!(task["error_message"], ERROR, "{task}");
}
