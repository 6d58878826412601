//! `nessus-gen`: writes a large `.nessus` file built from real corpus hosts.
//!
//! ```text
//! nessus-gen --size 100MB --out /tmp/100mb.nessus [--seed N]
//! ```

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use nessus_tests::generator::{GenOptions, Generator, corpus_dir, parse_size};

const USAGE: &str = "usage: nessus-gen --size SIZE --out FILE [--seed N] [--corpus DIR]
  SIZE: bytes, or with a unit: KB/MB/GB (decimal) or KiB/MiB/GiB (binary), e.g. 100MB";

fn main() {
    if let Err(error) = run() {
        eprintln!("nessus-gen: {error:#}");
        std::process::exit(2);
    }
}

fn run() -> anyhow::Result<()> {
    let mut size = None;
    let mut out = None;
    let mut seed = 1;
    let mut corpus = corpus_dir();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .with_context(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--size" => size = Some(parse_size(&value()?)?),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--seed" => {
                seed = value()?
                    .parse()
                    .context("--seed must be an unsigned integer")?
            }
            "--corpus" => corpus = PathBuf::from(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let (Some(target_bytes), Some(out)) = (size, out) else {
        bail!("--size and --out are required\n{USAGE}");
    };

    let started = Instant::now();
    let generator = Generator::from_corpus(&corpus)?;
    let file =
        std::fs::File::create(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let summary = generator.write(file, &GenOptions { target_bytes, seed })?;
    eprintln!(
        "wrote {} ({} bytes, {} hosts, {} findings, from {} corpus hosts) in {:.1?}",
        out.display(),
        summary.bytes,
        summary.hosts,
        summary.report_items,
        generator.template_count(),
        started.elapsed()
    );
    Ok(())
}
