//! Reading a completed task's findings: pages and diffs, from its findings store
//! (never by re-parsing XML). Store I/O is blocking, so it runs on the blocking pool:
//! a large page never stalls other calls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nessus_schema::{
    Aggregate, Aggregation, DEFAULT_TOP, DiffEntry, ExportFormat, ExportPlan, Filter, GroupBy,
    MAX_TOP, PageInfo, Query, QueryParams, Rank, SeverityChange, Store,
};

use crate::audit::AuditAction;
use crate::error::{Error, Result};
use crate::limits::{CURSOR_MAX, CUSTOM_FIELDS_MAX, FIELD_NAME_MAX, FILTERS_MAX, check_len};
use crate::results_dir::ResultsDir;
use crate::task::TaskStatus;

use super::{Principal, Service, blocking};

/// How many open stores to keep.
const CAPACITY: usize = 32;

/// A small cache of open stores keyed by task id.
#[derive(Debug, Default)]
pub(crate) struct StoreCache {
    open: Mutex<HashMap<String, Arc<Store>>>,
}

impl StoreCache {
    /// The store of `task_id`, opening it if needed (blocking).
    fn get(&self, results: &ResultsDir, task_id: &str) -> Result<Arc<Store>> {
        if let Some(s) = self.lock().get(task_id) {
            return Ok(s.clone());
        }
        let dir = results.store_dir(task_id);
        if !dir.exists() {
            return Err(Error::ResultsNotFound {
                task_id: task_id.to_owned(),
            });
        }
        let store = Arc::new(Store::open(&dir).map_err(Error::Query)?);
        let mut open = self.lock();
        if open.len() >= CAPACITY {
            // Any entry will do: stores are cheap to reopen, and the common access
            // pattern is paging through one task at a time.
            if let Some(k) = open.keys().next().cloned() {
                open.remove(&k);
            }
        }
        open.insert(task_id.to_owned(), store.clone());
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Store>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Options of [`Service::diff`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct DiffOptions {
    /// Only findings of at least this severity (0-4) count.
    pub min_severity: u8,
    /// At most this many entries per list.
    pub limit: usize,
}

impl Default for DiffOptions {
    fn default() -> Self {
        Self {
            min_severity: 1,
            limit: 100,
        }
    }
}

impl DiffOptions {
    /// Sets the minimum severity.
    #[must_use]
    pub fn min_severity(mut self, s: u8) -> Self {
        self.min_severity = s;
        self
    }

    /// Sets the per-list limit (clamped to 1..=1000).
    #[must_use]
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n.clamp(1, 1000);
        self
    }
}

/// Two scans compared, filtered by severity and cut to the limit.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DiffOutcome {
    /// Findings only in the newer scan (first `limit`).
    pub new: Vec<DiffEntry>,
    /// Findings only in the older scan (first `limit`).
    pub fixed: Vec<DiffEntry>,
    /// Findings in both whose severity changed (first `limit`).
    pub severity_changed: Vec<SeverityChange>,
    /// Counts before the cut: new, fixed, severity changed, unchanged.
    pub counts: [usize; 4],
    /// Whether any list was cut.
    pub truncated: bool,
}

/// What [`Service::summarize`] groups by, which findings count, and how many groups come
/// back.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SummaryRequest {
    /// `host`, `plugin`, `severity`, `cve`, `port` or `plugin_family`.
    pub group_by: String,
    /// The same filter object as results pages take.
    pub filters: Option<serde_json::Value>,
    /// Groups to return (1..=100, default 10; outside that, clamped with a notice).
    pub top: Option<usize>,
    /// `severity` (default), `count` or `hosts`.
    pub rank_by: Option<String>,
}

impl SummaryRequest {
    /// Every finding grouped by `group_by`, the default top and rank.
    pub fn new(group_by: impl Into<String>) -> Self {
        Self {
            group_by: group_by.into(),
            ..Self::default()
        }
    }

    /// Only findings matching `filters`.
    #[must_use]
    pub fn filters(mut self, filters: Option<serde_json::Value>) -> Self {
        self.filters = filters;
        self
    }

    /// How many groups to return.
    #[must_use]
    pub fn top(mut self, top: Option<usize>) -> Self {
        self.top = top;
        self
    }

    /// How groups are ranked.
    #[must_use]
    pub fn rank_by(mut self, rank_by: Option<String>) -> Self {
        self.rank_by = rank_by;
        self
    }
}

/// The answer of [`Service::summarize`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Summarized {
    /// The grouping applied.
    pub group_by: GroupBy,
    /// The ranking applied.
    pub rank: Rank,
    /// The number of groups asked for, after the clamp.
    pub top: usize,
    /// Counts and groups.
    pub aggregation: Aggregation,
    /// What was adjusted (a clamped `top`).
    pub notices: Vec<String>,
}

/// Refuses a filter object too large to be an honest request (one limit for pages,
/// exports and summaries).
fn check_filters(f: &serde_json::Value) -> Result<()> {
    check_len("filters", &f.to_string(), FILTERS_MAX)
}

/// Refuses queries too large to be honest requests, before any store is opened.
fn check_params(p: &QueryParams) -> Result<()> {
    if let Some(fields) = &p.custom_fields {
        if fields.len() > CUSTOM_FIELDS_MAX {
            return Err(Error::TooLong {
                field: "custom_fields",
                actual: fields.len(),
                limit: CUSTOM_FIELDS_MAX,
            });
        }
        for f in fields {
            check_len("custom_fields", f, FIELD_NAME_MAX)?;
        }
    }
    if let Some(f) = &p.filters {
        check_filters(f)?;
    }
    if let Some(c) = &p.cursor {
        check_len("cursor", c, CURSOR_MAX)?;
    }
    Ok(())
}

impl Service {
    /// The findings store of a completed task `principal` may see.
    async fn completed_store(
        &self,
        principal: &Principal,
        task_id: &str,
        action: AuditAction,
        detail: Option<String>,
    ) -> Result<Arc<Store>> {
        let view = self.task(principal, task_id).await?;
        if view.task.status != TaskStatus::Completed {
            return Err(Error::NotCompleted {
                task_id: task_id.to_owned(),
                status: view.task.status.to_string(),
            });
        }
        self.record_task(action, principal, &view.task, detail)
            .await;
        if let Some(cache) = &self.remote {
            match cache.get(task_id).await {
                // Results written before `results_url` was set stay readable from
                // the local results directory.
                Err(Error::ResultsNotFound { .. }) if self.results.store_dir(task_id).is_dir() => {}
                other => return other,
            }
        }
        let (results, stores, id) = (
            self.results.clone(),
            self.stores.clone(),
            task_id.to_owned(),
        );
        blocking(move || stores.get(&results, &id)).await
    }

    /// The validated query and the findings store behind a results read (a page or an
    /// export part): the limits first, then tenancy and the audit record.
    async fn query_store(
        &self,
        principal: &Principal,
        task_id: &str,
        params: &QueryParams,
        detail: Option<String>,
    ) -> Result<(Query, Arc<Store>)> {
        check_params(params)?;
        let query = Query::from_params(params).map_err(Error::Query)?;
        let store = self
            .completed_store(principal, task_id, AuditAction::ResultsRead, detail)
            .await?;
        Ok((query, store))
    }

    /// One page of a completed task's findings, as JSON-NL.
    pub async fn results_page(
        &self,
        principal: &Principal,
        task_id: &str,
        params: &QueryParams,
    ) -> Result<(String, PageInfo)> {
        let (query, store) = self.query_store(principal, task_id, params, None).await?;
        let (text, info) =
            blocking(move || store.page_string(&query).map_err(Error::Query)).await?;
        tracing::debug!(
            task_id,
            returned = info.returned,
            bytes = info.bytes_written,
            "results page"
        );
        Ok((text, info))
    }

    /// Counts and the top groups of a completed task's findings, grouped by `req.group_by`
    /// with `req.filters` applied first (see [`Store::aggregate`]): the one-call answer to
    /// "which hosts have the most critical findings". Same tenancy, limits and audit as a
    /// results page.
    pub async fn summarize(
        &self,
        principal: &Principal,
        task_id: &str,
        req: &SummaryRequest,
    ) -> Result<Summarized> {
        if let Some(f) = &req.filters {
            check_filters(f)?;
        }
        check_len("group_by", &req.group_by, FIELD_NAME_MAX)?;
        let group_by: GroupBy = req.group_by.parse().map_err(Error::Query)?;
        let rank: Rank = match req.rank_by.as_deref().map(str::trim) {
            None | Some("") => Rank::default(),
            Some(r) => r.parse().map_err(Error::Query)?,
        };
        let filter = match &req.filters {
            Some(f) => Filter::from_json(f).map_err(Error::Query)?,
            None => Filter::none(),
        };
        let asked = req.top.unwrap_or(DEFAULT_TOP);
        let top = asked.clamp(1, MAX_TOP);
        let mut notices = Vec::new();
        if top != asked {
            notices.push(format!("top {asked} was set to {top}; allowed 1-{MAX_TOP}"));
        }
        let request = Aggregate::new(group_by).filter(filter).top(top).rank(rank);
        let store = self
            .completed_store(
                principal,
                task_id,
                AuditAction::ResultsRead,
                Some(format!("summary by {}", group_by.as_str())),
            )
            .await?;
        let aggregation = blocking(move || store.aggregate(&request).map_err(Error::Query)).await?;
        Ok(Summarized {
            group_by,
            rank,
            top,
            aggregation,
            notices,
        })
    }

    /// How the export of a completed task's findings (`params`' profile, fields,
    /// filters and sort; the page is ignored) in `format` is cut into parts
    /// (see [`Store::export_plan`]). Same tenancy, limits and audit as a results page.
    /// `progress`, if given, follows the findings measured.
    pub async fn export_plan(
        &self,
        principal: &Principal,
        task_id: &str,
        params: &QueryParams,
        format: ExportFormat,
        progress: Option<super::Progress>,
    ) -> Result<ExportPlan> {
        let detail = format!("export plan ({})", format.name());
        let (query, store) = self
            .query_store(principal, task_id, params, Some(detail))
            .await?;
        blocking(move || {
            let mut report = |done, total| {
                if let Some(p) = &progress {
                    p.set(done, total);
                }
            };
            store
                .export_plan_with(&query, format, &mut report)
                .map_err(Error::Query)
        })
        .await
    }

    /// Part `part` (1-based) of that export, `part_size` findings per part (the
    /// plan's), as the bytes of the part (UTF-8).
    pub async fn export_part(
        &self,
        principal: &Principal,
        task_id: &str,
        params: &QueryParams,
        format: ExportFormat,
        part_size: u32,
        part: u32,
    ) -> Result<Vec<u8>> {
        let detail = format!("export part {part} ({})", format.name());
        let (query, store) = self
            .query_store(principal, task_id, params, Some(detail))
            .await?;
        blocking(move || {
            store
                .export_part(&query, format, part_size, part)
                .map_err(Error::Query)
        })
        .await
    }

    /// Compares two completed scans `principal` may see (`base` older, `compare` newer).
    pub async fn diff(
        &self,
        principal: &Principal,
        base: &str,
        compare: &str,
        opts: DiffOptions,
    ) -> Result<DiffOutcome> {
        let old = self
            .completed_store(
                principal,
                base,
                AuditAction::Diff,
                Some(format!("base of a diff with {compare}")),
            )
            .await?;
        let new = self
            .completed_store(
                principal,
                compare,
                AuditAction::Diff,
                Some(format!("compared with {base}")),
            )
            .await?;
        let d = blocking(move || nessus_schema::diff(&old, &new).map_err(Error::Query)).await?;
        let keep = |s: Option<u8>| s.unwrap_or(0) >= opts.min_severity;
        let new_f: Vec<_> = d.new.into_iter().filter(|e| keep(e.severity)).collect();
        let fixed: Vec<_> = d.fixed.into_iter().filter(|e| keep(e.severity)).collect();
        let changed: Vec<_> = d
            .severity_changed
            .into_iter()
            .filter(|c| keep(c.old_severity) || keep(c.new_severity))
            .collect();
        let unchanged = d.unchanged.iter().filter(|e| keep(e.severity)).count();
        let counts = [new_f.len(), fixed.len(), changed.len(), unchanged];
        let limit = opts.limit;
        Ok(DiffOutcome {
            truncated: counts[..3].iter().any(|&n| n > limit),
            new: new_f.into_iter().take(limit).collect(),
            fixed: fixed.into_iter().take(limit).collect(),
            severity_changed: changed.into_iter().take(limit).collect(),
            counts,
        })
    }
}
