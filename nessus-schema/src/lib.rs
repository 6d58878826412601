//! Streaming `.nessus` → JSON-NL results pipeline.
//!
//! This crate turns Nessus v2 exports into typed records (scan metadata, hosts,
//! findings, compliance results) in memory bounded by the largest single record,
//! then filters, sorts, paginates and writes them as JSON-NL. It does no network
//! I/O and has no async runtime: callers run it on a blocking thread.
