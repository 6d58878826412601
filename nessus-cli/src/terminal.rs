//! Text that reaches an admin's terminal, made inert.
//!
//! Task names, descriptions and targets come from agents; host names and plugin names
//! come from `.nessus` files; error texts come from scanners. Printed raw, an ESC
//! sequence in any of them can recolour, move the cursor, set the window title or
//! rewrite lines above; a CR or a bidi override can make a line read differently
//! from what it holds. So every human-readable value goes through [`safe`] before it
//! is laid out, and every text written to stdout or stderr goes through [`safe_lines`],
//! which keeps only the line breaks the layout itself made. `--json` output is left
//! exact: JSON escapes control characters already and scripts need the real bytes.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character (C0 including LF, CR and TAB; DEL; C1) and every
/// bidirectional formatting character written as a visible `\u{..}` escape (`\n`, `\r`
/// and `\t` as such). Printable text, backslashes included, is unchanged.
pub(crate) fn safe(text: &str) -> Cow<'_, str> {
    escape(text, |_| false)
}

/// As [`safe`], but line feeds stay: for whole texts (tables, summaries, error
/// messages) whose lines the CLI laid out itself.
pub(crate) fn safe_lines(text: &str) -> Cow<'_, str> {
    escape(text, |c| c == '\n')
}

fn escape(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| !keep(c) && (c.is_control() || is_bidi_control(c));
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if !unsafe_char(c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// The Unicode bidirectional formatting characters (marks, embeddings, overrides and
/// isolates), which reorder how the rest of a line is displayed.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        let cases: &[(&str, &str, &str)] = &[
            // (input, safe, safe_lines)
            ("plain name", "plain name", "plain name"),
            ("back\\slash", "back\\slash", "back\\slash"),
            (
                "\x1b[31mRED\x1b[0m\r",
                "\\u{1b}[31mRED\\u{1b}[0m\\r",
                "\\u{1b}[31mRED\\u{1b}[0m\\r",
            ),
            ("a\nb\tc", "a\\nb\\tc", "a\nb\\tc"),
            (
                "bell\x07 del\x7f",
                "bell\\u{7} del\\u{7f}",
                "bell\\u{7} del\\u{7f}",
            ),
            ("c1 \u{9b}2J", "c1 \\u{9b}2J", "c1 \\u{9b}2J"),
            (
                "evil\u{202e}txt.exe",
                "evil\\u{202e}txt.exe",
                "evil\\u{202e}txt.exe",
            ),
            (
                "isolate\u{2066}x\u{2069}",
                "isolate\\u{2066}x\\u{2069}",
                "isolate\\u{2066}x\\u{2069}",
            ),
            ("café ✓ 日本", "café ✓ 日本", "café ✓ 日本"),
        ];
        for &(input, want_safe, want_lines) in cases {
            assert_eq!(safe(input), want_safe, "safe({input:?})");
            assert_eq!(safe_lines(input), want_lines, "safe_lines({input:?})");
        }
    }
}
