//! Ingest: streams a `.nessus` once into the store files (`findings.bin`,
//! `index.bin` sorted into the default order, `hosts.jsonl`, `compliance.jsonl`,
//! `meta.json`).

use std::fs::{self, File};
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use super::row::{Tables, fnv, ranks, row_for};
use super::{FORMAT, IngestOptions, MAGIC, Meta, NONE_U8, ROW_BYTES, io_at};
use crate::codec::{self, Dictionary};
use crate::error::{Error, Result};
use crate::parser::NessusReader;
use crate::record::Record;
use crate::runs::{RunLimits, RunSorter};
use crate::summary::SummaryBuilder;

pub(super) fn write_store<R: BufRead>(
    reader: R,
    dir: &Path,
    options: &IngestOptions,
) -> Result<()> {
    let create = |name: &str| -> Result<BufWriter<File>> {
        let path = dir.join(name);
        let f = File::create(&path).map_err(io_at(&path, "creating"))?;
        Ok(BufWriter::with_capacity(1 << 20, f))
    };
    let findings_path = dir.join("findings.bin");
    let (hosts_path, compliance_path, index_path) = (
        dir.join("hosts.jsonl"),
        dir.join("compliance.jsonl"),
        dir.join("index.bin"),
    );
    let mut findings = create("findings.bin")?;
    let mut hosts = create("hosts.jsonl")?;
    let mut compliance = create("compliance.jsonl")?;
    pub(super) fn werr(p: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
        io_at(p, "writing")
    }
    findings.write_all(MAGIC).map_err(werr(&findings_path))?;
    let mut offset = MAGIC.len() as u64;

    let mut parser = NessusReader::with_limits(reader, options.limits);
    let mut summary = SummaryBuilder::default();
    let mut tables = Tables::default();
    let mut dict = Dictionary::default();
    // Rows are sorted into the default order externally (bounded memory, see `runs`).
    let mut rows = RunSorter::new(RunLimits::default());
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut ncompliance = 0u64;
    while let Some(record) = parser.next_record()? {
        summary.add(&record);
        match record {
            Record::Scan(_) => {}
            Record::Host(h) => {
                tables.describe_host(&h);
                serde_json::to_writer(&mut hosts, &h)
                    .map_err(|e| Error::io("writing hosts.jsonl", e.into()))?;
                hosts.write_all(b"\n").map_err(werr(&hosts_path))?;
            }
            Record::Finding(f) => {
                if rows.len() == u64::from(u32::MAX) {
                    return Err(Error::store(dir, "more than 4 billion findings"));
                }
                buf.clear();
                if !codec::encode(&f, &mut dict, &mut buf) {
                    return Err(Error::store(dir, "more than 65536 distinct field names"));
                }
                let len = buf.len() as u32;
                findings
                    .write_all(&len.to_le_bytes())
                    .and_then(|()| findings.write_all(&buf))
                    .map_err(werr(&findings_path))?;
                let row = row_for(&f, &mut tables, offset + 4, len);
                let severity = match row.severity {
                    NONE_U8 => -1,
                    s => i16::from(s),
                };
                rows.push(
                    row.host,
                    severity,
                    row.port,
                    row.plugin_id,
                    &row.to_bytes(),
                    ROW_BYTES as u64,
                )
                .map_err(|e| Error::io("writing a temporary file", e))?;
                offset += 4 + u64::from(len);
            }
            Record::Compliance(c) => {
                ncompliance += 1;
                serde_json::to_writer(&mut compliance, &c)
                    .map_err(|e| Error::io("writing compliance.jsonl", e.into()))?;
                compliance
                    .write_all(b"\n")
                    .map_err(werr(&compliance_path))?;
            }
        }
    }
    let file_size = options.file_size_bytes.unwrap_or(parser.bytes_read());
    let summary = summary.finish(file_size);

    let rank = ranks(&tables.hosts);
    let count = rows.len();
    let mut sorted = rows
        .finish(&rank)
        .map_err(|e| Error::io("writing a temporary file", e))?;
    let mut index = create("index.bin")?;
    for pos in 0..count {
        let row = sorted
            .line(pos)
            .map_err(|e| Error::io("reading a temporary file", e))?;
        index.write_all(row.bytes).map_err(werr(&index_path))?;
    }
    for (name, w) in [
        ("findings.bin", findings),
        ("hosts.jsonl", hosts),
        ("compliance.jsonl", compliance),
        ("index.bin", index),
    ] {
        let path = dir.join(name);
        let f = w
            .into_inner()
            .map_err(|e| Error::io(format!("flushing {}", path.display()), e.into_error()))?;
        f.sync_all().map_err(io_at(&path, "syncing"))?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let meta = Meta {
        format: FORMAT,
        store_id: format!(
            "{:016x}",
            fnv(&[
                &nanos.to_le_bytes(),
                &std::process::id().to_le_bytes(),
                &offset.to_le_bytes()
            ])
        ),
        summary,
        fields: dict.names().iter().map(|n| n.to_string()).collect(),
        hosts: tables.hosts,
        plugins: tables.plugins,
        protocols: tables.protocols,
        findings: count,
        compliance: ncompliance,
    };
    let meta_path = dir.join("meta.json");
    let text = serde_json::to_vec(&meta).map_err(|e| Error::io("encoding meta.json", e.into()))?;
    fs::write(&meta_path, text).map_err(io_at(&meta_path, "writing"))?;
    Ok(())
}
