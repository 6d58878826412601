//! Streaming `.nessus` → JSON-NL results pipeline.
//!
//! This crate turns Nessus v2 exports into typed records (scan metadata, hosts,
//! findings, compliance results) in memory bounded by the largest single record,
//! then filters, sorts, paginates and writes them as JSON-NL. It does no network
//! I/O and has no async runtime: callers run it on a blocking thread.
//!
//! * [`NessusReader`] streams [`Record`]s from any `BufRead` (UTF-8; a document in UTF-16
//!   or with another declared encoding, such as ISO-8859-1, is decoded to UTF-8 first).
//! * [`Store::ingest`] parses a file once into a compact on-disk findings store;
//!   [`Store::write_page`] serves any [`Query`] (projection, [`Filter`], sort, page or
//!   cursor) from it without touching the XML again.
//! * [`convert`] does both in one call for the command line; [`convert_file`] does the
//!   same for a file, parsing its two halves on two threads when it is large.
//! * [`Summary`] holds totals, the severity breakdown and the credential check;
//!   [`diff`] compares two stores.
//!
//! ```
//! use nessus_schema::{Filter, Query, convert};
//!
//! let xml = r#"<?xml version="1.0" ?>
//! <NessusClientData_v2><Report name="Weekly">
//!  <ReportHost name="10.0.0.5"><HostProperties><tag name="host-ip">10.0.0.5</tag></HostProperties>
//!   <ReportItem port="22" svc_name="ssh" protocol="tcp" severity="3" pluginID="90317" pluginName="SSH Weak Algorithms" pluginFamily="Misc.">
//!    <cvss3_base_score>7.5</cvss3_base_score><exploit_available>false</exploit_available>
//!   </ReportItem>
//!   <ReportItem port="0" svc_name="general" protocol="tcp" severity="0" pluginID="19506" pluginName="Nessus Scan Information" pluginFamily="Settings"/>
//!  </ReportHost></Report></NessusClientData_v2>"#;
//!
//! let query = Query {
//!     filter: Filter::from_json_str(r#"{"severity": ">=3"}"#)?,
//!     ..Query::default()
//! };
//! let mut out = Vec::new();
//! let info = convert(xml.as_bytes(), &mut out, &query)?;
//! assert_eq!(info.total, 1);
//! let text = String::from_utf8(out).unwrap();
//! let lines: Vec<&str> = text.lines().collect();
//! assert!(lines[0].starts_with(r#"{"type": "schema", "profile": "brief""#));
//! assert_eq!(lines[1], r#"{"type": "scan_metadata", "scan_name": "Weekly"}"#);
//! assert!(lines[2].contains(r#""severity": 3"#));
//! # Ok::<(), nessus_schema::Error>(())
//! ```

mod catalogue;
mod codec;
mod convert;
mod csv;
mod cut;
mod diff;
mod encoding;
mod error;
mod filter;
mod jsonl;
mod parser;
mod query;
mod record;
mod runs;
mod shared_values;
mod spill;
mod split;
mod store;
mod summary;
mod swar;
mod value;

pub use catalogue::{
    FieldKind, HOST_FIELDS, KNOWN_FIELDS, Profile, Projection, SEVERITY_NAMES, closest, field_kind,
    is_host_field, severity_from_name, severity_name, severity_scale,
};
pub use convert::{convert, convert_with};
pub use csv::LIST_SEPARATOR;
pub use diff::{DiffEntry, ScanDiff, SeverityChange, diff};
pub use error::{Error, Result};
pub use filter::{Filter, OPERATORS};
pub use jsonl::{End, JsonlWriter, Pagination, Truncation};
pub use parser::{Limits, NessusReader};
pub use query::{
    DEFAULT_ANSWER_BUDGET, DEFAULT_PAGE_SIZE, MAX_ANSWER_BUDGET, MAX_PAGE_SIZE, MIN_ANSWER_BUDGET,
    MIN_PAGE_SIZE, PageRequest, Query, QueryParams, SORT_FIELDS, SortKey, clamp_page_size,
};
pub use record::{
    ComplianceResult, FieldName, Finding, Fingerprint, Host, HostFields, Record, ScanMetadata,
};
pub use split::{DEFAULT_PARALLEL_MIN_BYTES, convert_file, convert_file_with};
pub use store::{
    Aggregate, Aggregation, DEFAULT_TOP, EXPORT_PART_MAX_BYTES, EXPORT_PART_MAX_FINDINGS,
    ExportFormat, ExportPlan, Group, GroupBy, GroupIdentity, INDEXED_FIELDS, IngestOptions,
    MAX_TOP, Other, PageInfo, REPORT_MAX_BYTES, REPORT_MAX_FINDINGS, Rank, SARIF_VERSION, Store,
};
pub use summary::{
    AUTH_PLUGINS, AuthenticationStatus, Credentialed, HostStatus, MIN_AUTH_PLUGINS,
    PLUGIN_CREDENTIAL_FAILURE, PLUGIN_INSUFFICIENT_PRIVILEGE, PLUGIN_SCAN_INFO,
    PLUGIN_VALID_CREDENTIALS, SeverityCounts, Summary, SummaryBuilder,
};
pub use value::{ListIter, ListRef, Value, ValueRef};
