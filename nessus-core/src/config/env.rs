//! `${VAR}` / `${VAR:-default}` / `${VAR-default}` interpolation inside one string value.
//!
//! Interpolation runs on the deserialised value of selected fields (never on the raw
//! file), so a variable's content can never change the YAML structure. Anything that
//! is not a well-formed reference (a lone `$`, `${` without `}`, an invalid name) is
//! kept literally, as the predecessor kept whole values it could not expand, so
//! passwords containing `$` load unchanged.

/// Looks up an environment variable.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The result of expanding one value.
#[derive(Debug, Default)]
pub(crate) struct Expanded {
    pub(crate) value: String,
    /// Variables referenced (for describing where a secret came from).
    pub(crate) vars: Vec<String>,
    /// Variables referenced without a default and not set; they expanded to "".
    pub(crate) unset: Vec<String>,
    /// Variables whose default (written in the file) was used.
    pub(crate) defaulted: Vec<String>,
}

pub(crate) fn expand(raw: &str, env: EnvLookup<'_>) -> Expanded {
    let mut out = Expanded::default();
    let mut rest = raw;
    while let Some(pos) = rest.find("${") {
        out.value.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        match parse_reference(after) {
            Some((name, default, consumed)) => {
                let value = env(name);
                let resolved = match (value, default) {
                    (
                        Some(v),
                        Some(Default {
                            text,
                            if_empty: true,
                        }),
                    ) if v.is_empty() => {
                        out.defaulted.push(name.to_owned());
                        text.to_owned()
                    }
                    (Some(v), _) => v,
                    (None, Some(d)) => {
                        out.defaulted.push(name.to_owned());
                        d.text.to_owned()
                    }
                    (None, None) => {
                        out.unset.push(name.to_owned());
                        String::new()
                    }
                };
                out.value.push_str(&resolved);
                out.vars.push(name.to_owned());
                rest = &after[consumed..];
            }
            None => {
                out.value.push_str("${");
                rest = after;
            }
        }
    }
    out.value.push_str(rest);
    out
}

struct Default<'a> {
    text: &'a str,
    /// `:-` also applies the default when the variable is set but empty (shell
    /// semantics); `-` only when it is unset.
    if_empty: bool,
}

/// Parses `NAME}`, `NAME:-text}` or `NAME-text}` at the start of `s`; returns the
/// name, the default and the number of bytes consumed (including the `}`).
fn parse_reference(s: &str) -> Option<(&str, Option<Default<'_>>, usize)> {
    let name_len = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_alphabetic() || *c == '_' || (*i > 0 && c.is_ascii_digit())))
        .map_or(s.len(), |(i, _)| i);
    if name_len == 0 {
        return None;
    }
    let name = &s[..name_len];
    let tail = &s[name_len..];
    if tail.starts_with('}') {
        return Some((name, None, name_len + 1));
    }
    let (if_empty, op_len) = if tail.starts_with(":-") {
        (true, 2)
    } else if tail.starts_with('-') {
        (false, 1)
    } else {
        return None;
    };
    let text_start = &tail[op_len..];
    let close = text_start.find('}')?;
    let text = &text_start[..close];
    Some((
        name,
        Some(Default { text, if_empty }),
        name_len + op_len + close + 1,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOST" => Some("nessus.lab".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn forms() {
        let cases = [
            ("${HOST}", "nessus.lab"),
            ("https://${HOST}:8834", "https://nessus.lab:8834"),
            (
                "${MISSING:-https://172.30.0.3:8834}",
                "https://172.30.0.3:8834",
            ),
            ("${EMPTY:-fallback}", "fallback"),
            ("${EMPTY-fallback}", ""),
            ("${MISSING-fallback}", "fallback"),
            ("${MISSING}", ""),
            ("pa$$word${", "pa$$word${"),
            ("${1BAD}", "${1BAD}"),
            ("${HOST", "${HOST"),
            ("$HOST", "$HOST"),
        ];
        for (raw, want) in cases {
            assert_eq!(expand(raw, &env).value, want, "{raw}");
        }
        assert_eq!(expand("${MISSING}", &env).unset, vec!["MISSING".to_owned()]);
    }
}
