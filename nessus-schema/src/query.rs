//! What to return: projection, filter, sort order and page.

use serde::{Deserialize, Serialize};

use crate::catalogue::{Profile, Projection};
use crate::error::{Error, Result};
use crate::filter::Filter;

/// Default `page_size` (the predecessor's).
pub const DEFAULT_PAGE_SIZE: u32 = 40;
/// Smallest accepted `page_size`; smaller values are clamped up.
pub const MIN_PAGE_SIZE: u32 = 10;
/// Largest accepted `page_size`; larger values are clamped down.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Default byte budget of a `page=0` ("everything") response: 4 MiB of record lines.
pub const DEFAULT_BYTE_BUDGET: usize = 4 * 1024 * 1024;

/// Fields a result set can be sorted by (all of them are in the store's column index).
pub const SORT_FIELDS: &[&str] = &[
    "severity",
    "host",
    "port",
    "plugin_id",
    "plugin_name",
    "plugin_family",
    "protocol",
    "cvss_score",
    "cvss3_base_score",
    "cvss_base_score",
    "vpr_score",
    "epss_score",
    "exploit_available",
];

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SortKey {
    /// A field from [`SORT_FIELDS`].
    pub field: String,
    /// Descending order.
    pub descending: bool,
}

impl SortKey {
    /// Parses `field`, `-field`, `field:asc` or `field:desc`.
    pub fn parse(spec: &str) -> Result<SortKey> {
        let spec = spec.trim();
        let (name, descending) = if let Some(rest) = spec.strip_prefix('-') {
            (rest, true)
        } else if let Some((name, dir)) = spec.split_once(':') {
            match dir.trim().to_ascii_lowercase().as_str() {
                "asc" => (name, false),
                "desc" => (name, true),
                other => {
                    return Err(Error::query(format!(
                        "invalid sort direction {other:?} in {spec:?}: use asc or desc"
                    )));
                }
            }
        } else {
            // Severity and scores read most naturally worst-first.
            let desc = !matches!(
                spec,
                "host" | "port" | "plugin_id" | "plugin_name" | "plugin_family" | "protocol"
            );
            (spec, desc)
        };
        let name = name.trim();
        if !SORT_FIELDS.contains(&name) {
            return Err(Error::UnknownField {
                field: name.to_owned(),
                suggestion: crate::catalogue::closest(name, SORT_FIELDS.iter().copied())
                    .or_else(|| Some(format!("one of {}", SORT_FIELDS.join(", ")))),
            });
        }
        Ok(SortKey {
            field: name.to_owned(),
            descending,
        })
    }

    /// Parses a comma-separated list (`"severity:desc,host,port"`).
    pub fn parse_list(spec: &str) -> Result<Vec<SortKey>> {
        spec.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(SortKey::parse)
            .collect()
    }

    /// The default order: severity desc, host, port, plugin_id.
    pub fn default_order() -> Vec<SortKey> {
        let k = |f: &str, d| SortKey {
            field: f.to_owned(),
            descending: d,
        };
        vec![
            k("severity", true),
            k("host", false),
            k("port", false),
            k("plugin_id", false),
        ]
    }
}

/// Which slice of the filtered, sorted result set to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRequest {
    /// 1-based page of `size` records (`size` clamped to 10..=100).
    Page {
        /// 1-based page number.
        page: u32,
        /// Requested page size (clamped when used).
        size: u32,
    },
    /// Everything (the predecessor's `page=0`), cut at `byte_budget` bytes of record lines;
    /// `None` = no cut (command-line conversion).
    All {
        /// Byte budget for record lines.
        byte_budget: Option<usize>,
    },
    /// Continue from an opaque cursor returned by a previous page.
    Cursor(String),
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest::Page {
            page: 1,
            size: DEFAULT_PAGE_SIZE,
        }
    }
}

/// A complete results request.
#[derive(Debug, Clone)]
pub struct Query {
    /// Which fields to write.
    pub projection: Projection,
    /// Which findings to keep (evaluated before projection).
    pub filter: Filter,
    /// Sort order; empty = the default order.
    pub sort: Vec<SortKey>,
    /// Which slice to return.
    pub page: PageRequest,
    /// Also write one `host` line per host (after `scan_metadata`).
    pub include_hosts: bool,
    /// Also write `compliance` lines (after the vulnerability lines of the page).
    pub include_compliance: bool,
    /// Notices for the closing line that the caller adds (e.g. arguments the frontend
    /// ignored).
    pub notices: Vec<String>,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            projection: Projection::profile(Profile::Brief),
            filter: Filter::none(),
            sort: Vec::new(),
            page: PageRequest::default(),
            include_hosts: false,
            include_compliance: false,
            notices: Vec::new(),
        }
    }
}

/// The predecessor's `get_scan_results` parameters plus the new ones, as an agent sends
/// them. [`Query::from_params`] validates them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryParams {
    /// `minimal`, `summary`, `brief` (default) or `full`.
    pub schema_profile: Option<String>,
    /// Explicit field list (only with `brief`).
    pub custom_fields: Option<Vec<String>>,
    /// Filter object (see [`Filter`]).
    pub filters: Option<serde_json::Value>,
    /// Sort spec, e.g. `"severity:desc,host"`.
    pub sort: Option<String>,
    /// 1-based page, `0` = everything (within the byte budget).
    pub page: Option<u32>,
    /// Page size, clamped to 10..=100.
    pub page_size: Option<u32>,
    /// Opaque cursor from a previous page; overrides `page`.
    pub cursor: Option<String>,
    /// Include `host` lines.
    #[serde(default)]
    pub include_hosts: bool,
    /// Include `compliance` lines.
    #[serde(default)]
    pub include_compliance: bool,
    /// Byte budget for `page=0`; default [`DEFAULT_BYTE_BUDGET`].
    pub byte_budget: Option<usize>,
    /// Notices for the closing line (e.g. arguments the frontend ignored); copied into
    /// [`Query::notices`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<String>,
}

impl Query {
    /// Validates agent parameters into a query.
    pub fn from_params(p: &QueryParams) -> Result<Query> {
        let projection =
            Projection::resolve(p.schema_profile.as_deref(), p.custom_fields.as_deref())?;
        let filter = match &p.filters {
            Some(f) => Filter::from_json(f)?,
            None => Filter::none(),
        };
        let sort = match &p.sort {
            Some(s) => SortKey::parse_list(s)?,
            None => Vec::new(),
        };
        let page = match (&p.cursor, p.page) {
            (Some(c), _) => PageRequest::Cursor(c.clone()),
            (None, Some(0)) => PageRequest::All {
                byte_budget: Some(p.byte_budget.unwrap_or(DEFAULT_BYTE_BUDGET)),
            },
            (None, page) => PageRequest::Page {
                page: page.unwrap_or(1),
                size: p.page_size.unwrap_or(DEFAULT_PAGE_SIZE),
            },
        };
        Ok(Query {
            projection,
            filter,
            sort,
            page,
            include_hosts: p.include_hosts,
            include_compliance: p.include_compliance,
            notices: p.notices.clone(),
        })
    }

    /// The effective sort order.
    pub fn effective_sort(&self) -> Vec<SortKey> {
        if self.sort.is_empty() {
            SortKey::default_order()
        } else {
            self.sort.clone()
        }
    }

    /// The filter (as JSON) and the effective sort (as text): what a cursor must stay
    /// bound to. Convert and the store hash these into their cursors, so their byte form
    /// must not change (it would invalidate every cursor handed out).
    pub(crate) fn cursor_identity(&self) -> (String, String) {
        let filter = serde_json::to_string(self.filter.as_json()).unwrap_or_default();
        let sort = self
            .effective_sort()
            .iter()
            .map(|k| format!("{}:{},", k.field, k.descending))
            .collect();
        (filter, sort)
    }
}

/// Clamps a page size to `10..=100`.
pub fn clamp_page_size(size: u32) -> u32 {
    size.clamp(MIN_PAGE_SIZE, MAX_PAGE_SIZE)
}
