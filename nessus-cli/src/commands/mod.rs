//! One module per subcommand; each exposes `run(&GlobalArgs, &Args)`.

pub(crate) mod audit;
pub(crate) mod backend;
pub(crate) mod config;
pub(crate) mod convert;
pub(crate) mod diff;
pub(crate) mod export;
pub(crate) mod findings;
pub(crate) mod import;
pub(crate) mod queue;
pub(crate) mod scanners;
pub(crate) mod sim;
pub(crate) mod worker;

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use anyhow::Context;
use nessus_schema::Store;

use crate::exit::CliError;

/// A findings store is a directory holding `meta.json`; anything else is read as a
/// `.nessus` file.
pub(crate) enum Input {
    /// An ingested findings store.
    Store(Box<Store>),
    /// A `.nessus` file and its size in bytes.
    File(File, u64),
}

/// Opens `path` as a store or a file, with input errors (exit code 3) that say which path
/// is wrong.
pub(crate) fn open_input(path: &Path) -> anyhow::Result<Input> {
    if path.is_dir() {
        if !path.join("meta.json").is_file() {
            return Err(CliError::Input(format!(
                "{} is a directory but not a findings store (no meta.json)",
                path.display()
            ))
            .into());
        }
        let store = Store::open(path)
            .with_context(|| format!("cannot open findings store {}", path.display()))?;
        return Ok(Input::Store(Box::new(store)));
    }
    let file = File::open(path)
        .map_err(|e| CliError::Input(format!("cannot open {}: {e}", path.display())))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Input::File(file, len))
}

/// Buffers `file` for the parser, counting bytes on `bar` as they are read.
///
/// The bar wraps the file, not the buffer: the parser consumes a buffer in many tiny steps,
/// and ticking the bar at each would cost more than the parsing (a clock read per step).
pub(crate) fn buffered(file: File, bar: &indicatif::ProgressBar) -> Box<dyn BufRead> {
    const CAPACITY: usize = 1 << 16;
    if bar.is_hidden() {
        Box::new(BufReader::with_capacity(CAPACITY, file))
    } else {
        Box::new(BufReader::with_capacity(CAPACITY, bar.wrap_read(file)))
    }
}

/// Pretty JSON on stdout, newline-terminated.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value).context("cannot write to stdout")?;
    writeln!(out).context("cannot write to stdout")
}

/// Human-readable text on stdout. Control characters other than the layout's line
/// breaks are escaped here, whatever the caller did ([`crate::terminal`]).
pub(crate) fn print_text(text: &str) -> anyhow::Result<()> {
    io::stdout()
        .lock()
        .write_all(crate::terminal::safe_lines(text).as_bytes())
        .context("cannot write to stdout")
}
