//! The crate's single error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading, querying or storing `.nessus` results.
///
/// Parse errors carry the byte offset (and, where it was cheap to track, the 1-based line)
/// of the problem so that a user can open the file at the right place.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input holds no XML element at all (0 bytes, or only whitespace/comments).
    #[error("the input is empty: no XML root element was found")]
    Empty,
    /// The root element is not a Nessus v2 export (or a supported fragment of one).
    #[error("unsupported .nessus format: root element <{root}>: {hint}")]
    UnsupportedFormat {
        /// The root element name found in the document.
        root: String,
        /// Why it was refused and what is accepted instead.
        hint: &'static str,
    },
    /// The XML declaration names a character encoding that cannot be read. UTF-8, UTF-16
    /// and the encodings of the WHATWG Encoding Standard (ISO-8859-1, windows-1252,
    /// Shift_JIS, GBK, ...) are read.
    #[error(
        "unsupported character encoding {encoding:?} in the XML declaration: UTF-8, UTF-16, ISO-8859-x, windows-125x and the other WHATWG encodings are read"
    )]
    UnsupportedEncoding {
        /// The encoding name as declared.
        encoding: String,
    },
    /// The document ended before all elements were closed.
    #[error("truncated input: the document ends at byte {position} inside <{open}>")]
    Truncated {
        /// Byte offset of the end of input.
        position: u64,
        /// The innermost element that was still open.
        open: String,
    },
    /// The input is not well-formed XML (or not UTF-8).
    #[error("malformed XML at byte {position} (line {line}): {message}")]
    Malformed {
        /// Byte offset where the problem was detected.
        position: u64,
        /// 1-based line of the problem.
        line: u64,
        /// What the XML reader reported.
        message: String,
    },
    /// The input uses an XML feature this parser refuses for safety (DTDs, entities).
    #[error("refused XML construct at byte {position} (line {line}): {what}")]
    Forbidden {
        /// Byte offset of the construct.
        position: u64,
        /// 1-based line of the construct.
        line: u64,
        /// What was refused and why.
        what: String,
    },
    /// One record (a `ReportItem`, a host's properties, or any single XML event outside
    /// them) is larger than the configured limit.
    #[error(
        "a single record starting before byte {position} exceeds the size limit of {limit} bytes"
    )]
    RecordTooLarge {
        /// Byte offset where the limit was hit.
        position: u64,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// Elements are nested deeper than the configured limit.
    #[error("elements nested deeper than {limit} levels at byte {position}")]
    TooDeep {
        /// Byte offset of the element that went too deep.
        position: u64,
        /// The configured depth limit.
        limit: usize,
    },
    /// A Nessus attribute that must be numeric is not (for example `severity="high"`).
    #[error("invalid {field} value {value:?} at byte {position}: expected {expected}")]
    InvalidValue {
        /// Attribute or element name.
        field: String,
        /// The raw value found.
        value: String,
        /// What was expected.
        expected: &'static str,
        /// Byte offset of the element carrying the value.
        position: u64,
    },
    /// A filter, sort key or custom field names a field that does not exist.
    #[error("unknown field {field:?}{}", suggestion_text(.suggestion))]
    UnknownField {
        /// The field that was asked for.
        field: String,
        /// The closest known field name, when one is close enough to be a likely typo.
        suggestion: Option<String>,
    },
    /// A filter is syntactically or semantically wrong.
    #[error("invalid filter on {field:?}: {reason}")]
    InvalidFilter {
        /// The filtered field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A query parameter (profile, custom fields, sort, page) is wrong. The message is
    /// meant to be shown to the agent as is.
    #[error("{message}")]
    InvalidQuery {
        /// Human-readable explanation.
        message: String,
    },
    /// A pagination cursor is malformed or belongs to a different query or store.
    #[error("invalid cursor: {reason}")]
    InvalidCursor {
        /// Why it was refused.
        reason: String,
    },
    /// A findings store directory is missing, corrupt or from an unknown format version.
    #[error("findings store {path} is unusable: {reason}")]
    Store {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading the input or reading/writing a store or output failed.
    #[error("I/O error while {action}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn suggestion_text(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean {s:?}?)"),
        None => String::new(),
    }
}

impl Error {
    pub(crate) fn io(action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            action: action.into(),
            source,
        }
    }

    pub(crate) fn query(message: impl Into<String>) -> Self {
        Error::InvalidQuery {
            message: message.into(),
        }
    }

    pub(crate) fn filter(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidFilter {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    pub(crate) fn store(path: &std::path::Path, reason: impl Into<String>) -> Self {
        Error::Store {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
