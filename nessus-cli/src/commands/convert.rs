//! `nessus-cli convert`: a `.nessus` file or findings store to JSON-NL (or JSON) on stdout.

use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use anyhow::Context;
use nessus_schema::{IngestOptions, PageInfo, PageRequest, Query, QueryParams};

use super::{Input, open_input};
use crate::cli::{ConvertArgs, Format, GlobalArgs, Include};
use crate::exit::CliError;
use crate::output::{JsonArrayWriter, TrailingNewline};
use crate::progress;

pub(crate) fn run(_global: &GlobalArgs, args: &ConvertArgs) -> anyhow::Result<()> {
    let query = build_query(args)?;
    let input = open_input(&args.input)?;
    if args.cursor.is_some() && matches!(input, Input::File(..)) {
        // A cursor names a position in one ingested store; converting a file builds a new
        // temporary store each time, so no cursor can ever match it.
        return Err(CliError::Usage(
            "--cursor needs a findings store as input (cursors belong to one store); \
             use --page with a .nessus file"
                .to_owned(),
        )
        .into());
    }
    let started = Instant::now();
    let stdout = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let (info, input_bytes) = match args.format {
        Format::Jsonl => {
            let mut out = TrailingNewline::new(stdout);
            let result = write(input, &args.input, &mut out, &query)?;
            out.finish().context("cannot write to stdout")?;
            result
        }
        Format::Json => {
            let mut out = JsonArrayWriter::new(stdout);
            let result = write(input, &args.input, &mut out, &query)?;
            out.finish().context("cannot write to stdout")?;
            result
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        total = info.total,
        returned = info.returned,
        input_bytes,
        output_bytes = info.bytes_written,
        seconds,
        mb_per_s = input_bytes as f64 / 1e6 / seconds,
        "converted"
    );
    Ok(())
}

/// Validates the flags into a query. Without `--page` and `--cursor` (or with `--page 0`)
/// every finding is written: a command-line user asked for the whole file, so the byte
/// budget that protects agents does not apply.
fn build_query(args: &ConvertArgs) -> anyhow::Result<Query> {
    let filters = args
        .filter
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| CliError::Usage(format!("--filter is not valid JSON: {e}")))?;
    let params = QueryParams {
        schema_profile: args.profile.clone(),
        custom_fields: args.fields.clone(),
        filters,
        sort: args.sort.clone(),
        page: args.page,
        page_size: args.page_size,
        cursor: args.cursor.clone(),
        include_hosts: args.include.contains(&Include::Hosts),
        include_compliance: args.include.contains(&Include::Compliance),
        byte_budget: None,
        notices: Vec::new(),
    };
    let mut query = Query::from_params(&params)?;
    let everything = args.cursor.is_none()
        && (args.page == Some(0) || (args.page.is_none() && args.page_size.is_none()));
    if everything {
        query.page = PageRequest::All { byte_budget: None };
    }
    Ok(query)
}

/// Writes the response; returns what was written and how many input bytes were read.
fn write<W: Write>(
    input: Input,
    path: &Path,
    out: W,
    query: &Query,
) -> anyhow::Result<(PageInfo, u64)> {
    match input {
        Input::Store(store) => {
            let info = store.write_page(query, out)?;
            Ok((info, 0))
        }
        Input::File(reader, len) => {
            let mut options = IngestOptions {
                file_size_bytes: Some(len),
                ..IngestOptions::default()
            };
            let bar = progress::bytes_bar(len, "converting");
            if reader.metadata().is_ok_and(|m| m.is_file()) {
                // A regular file can be split and its halves parsed on two threads (same
                // output); the bar follows the bytes both threads have read.
                drop(reader);
                let read = Arc::new(AtomicU64::new(0));
                options.bytes_read = Some(Arc::clone(&read));
                let info = progress::follow(&bar, &read, || {
                    nessus_schema::convert_file_with(path, out, query, &options)
                })?;
                bar.finish_and_clear();
                return Ok((info, len));
            }
            let info =
                nessus_schema::convert_with(super::buffered(reader, &bar), out, query, &options)?;
            bar.finish_and_clear();
            Ok((info, len))
        }
    }
}
