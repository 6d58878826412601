//! One-call conversion for the command line.

use std::io::{BufRead, Write};

use crate::error::{Error, Result};
use crate::query::Query;
use crate::store::{IngestOptions, PageInfo, Store};

/// Converts a `.nessus` stream to JSON-NL for `query`.
///
/// The schema line states the total before any record, and the default order is by
/// severity, so the input is first ingested into a temporary store (removed afterwards)
/// and the page is served from it. Memory stays bounded as for [`Store::ingest`]: the
/// largest record plus 64 bytes per finding; the temporary store takes about as much disk
/// as the input.
pub fn convert<R: BufRead, W: Write>(reader: R, writer: W, query: &Query) -> Result<PageInfo> {
    convert_with(reader, writer, query, &IngestOptions::default())
}

/// [`convert`] with ingest options (limits, source file size).
pub fn convert_with<R: BufRead, W: Write>(
    reader: R,
    writer: W,
    query: &Query,
    options: &IngestOptions,
) -> Result<PageInfo> {
    let tmp = tempfile::Builder::new()
        .prefix("nessus-convert-")
        .tempdir()
        .map_err(|e| Error::io("creating a temporary directory", e))?;
    let store = Store::ingest_with(reader, &tmp.path().join("store"), options)?;
    store.write_page(query, writer)
}
