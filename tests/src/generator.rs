//! Large `.nessus` file generator for benchmarks and scale tests.
//!
//! It builds a well-formed `NessusClientData_v2` document of any size by replicating the
//! real `ReportHost` elements of the vendored corpus (`corpus/nessus/`), byte for byte, and
//! giving every copy a fresh identity: `ReportHost@name` and the `host-ip`, `host-fqdn`,
//! `host-rdns` and `netbios-name` host properties are rewritten so that no two generated hosts
//! collide. Everything else (findings, plugin output, CDATA, entities, CRLFs, compliance
//! items) is the real data.
//!
//! The corpus hosts are parsed once into [`Generator`] (a few MB of templates); writing is
//! then a stream of slices, so memory stays constant however large the output is. The host
//! sequence depends only on the seed, so a `(size, seed)` pair always yields the same bytes.
//!
//! ```no_run
//! use nessus_tests::generator::{GenOptions, Generator, parse_size};
//!
//! let generator = Generator::from_corpus(&nessus_tests::generator::corpus_dir())?;
//! let file = std::fs::File::create("/tmp/100mb.nessus")?;
//! let summary = generator.write(file, &GenOptions { target_bytes: parse_size("100MB")?, seed: 7 })?;
//! println!("{} hosts, {} findings", summary.hosts, summary.report_items);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod naming;
mod size;
mod template;

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

pub use size::parse_size;

use naming::{HostIdentity, SplitMix64};
use template::{HostTemplate, Segment};

/// The corpus file whose `Policy` block heads every generated document.
///
/// A real policy of moderate size (about 110 KB) keeps the header realistic without
/// dominating a 2 MB file.
const HEADER_SOURCE: &str = "libnessus__nessus_forgedReport_ReportItem.nessus";

/// Errors of the generator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenError {
    /// Reading the corpus or writing the output failed.
    #[error("{context}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A corpus file the generator needs is not well-formed XML.
    #[error("corpus file {file} is not usable: {reason}")]
    Corpus {
        /// The corpus file name.
        file: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The corpus holds no host the generator could replicate.
    #[error("no replicable ReportHost found in {dir}")]
    NoHosts {
        /// The corpus directory searched.
        dir: String,
    },
    /// A size argument could not be understood.
    #[error("invalid size {input:?}: {reason}")]
    InvalidSize {
        /// The size as given.
        input: String,
        /// Why it was rejected.
        reason: &'static str,
    },
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// Approximate output size in bytes. Hosts are appended while the document is smaller
    /// than this, so the result exceeds it by at most one host (and always holds one host).
    pub target_bytes: u64,
    /// Seed of the host sequence and of the address range.
    pub seed: u64,
}

/// What a [`Generator::write`] call produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSummary {
    /// Bytes written.
    pub bytes: u64,
    /// `ReportHost` elements written.
    pub hosts: u64,
    /// `ReportItem` elements written.
    pub report_items: u64,
}

/// Host templates taken from the corpus, ready to be replicated.
#[derive(Debug)]
pub struct Generator {
    header: Vec<u8>,
    templates: Vec<HostTemplate>,
}

/// The vendored corpus folder of `.nessus` files (`<repo>/corpus/nessus`).
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus"))
}

impl Generator {
    /// Loads every well-formed `NessusClientData_v2` file of `dir` and keeps its hosts as
    /// templates. Files that are not v2 documents (fragments, the v1 format, malformed or
    /// empty files) are skipped: they are in the corpus precisely because they are broken.
    pub fn from_corpus(dir: &Path) -> Result<Self, GenError> {
        let mut names: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|source| GenError::Io {
                context: format!("cannot list corpus directory {}", dir.display()),
                source,
            })?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.is_file())
            .collect();
        // read_dir order is filesystem-dependent; sorting keeps the output deterministic.
        names.sort();

        let mut templates = Vec::new();
        let mut header = None;
        for path in &names {
            let bytes = fs::read(path).map_err(|source| GenError::Io {
                context: format!("cannot read corpus file {}", path.display()),
                source,
            })?;
            let Ok(doc) = template::parse_document(&bytes) else {
                continue;
            };
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if file_name == HEADER_SOURCE {
                header = Some(bytes[..doc.report_start].to_vec());
            }
            templates.extend(doc.hosts);
        }

        let header = header.ok_or_else(|| GenError::Corpus {
            file: HEADER_SOURCE.to_owned(),
            reason: "missing or not a well-formed NessusClientData_v2 document".to_owned(),
        })?;
        if templates.is_empty() {
            return Err(GenError::NoHosts {
                dir: dir.display().to_string(),
            });
        }
        Ok(Self { header, templates })
    }

    /// Number of distinct corpus hosts the generator draws from.
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// Streams one generated document into `out`.
    pub fn write<W: Write>(&self, out: W, options: &GenOptions) -> Result<GenSummary, GenError> {
        let io_err = |source| GenError::Io {
            context: "cannot write the generated document".to_owned(),
            source,
        };
        let mut out = CountingWriter {
            inner: BufWriter::with_capacity(1 << 20, out),
            written: 0,
        };
        let report_open = format!(
            "<Report name=\"generated {} bytes seed {}\" xmlns:cm=\"http://www.nessus.org/cm\">\n",
            options.target_bytes, options.seed
        );
        let footer = b"</Report>\n</NessusClientData_v2>\n";

        out.write_all(&self.header).map_err(io_err)?;
        out.write_all(report_open.as_bytes()).map_err(io_err)?;

        let mut rng = SplitMix64::new(options.seed);
        let first_address = rng.next_u64();
        let mut hosts = 0;
        let mut report_items = 0;
        while hosts == 0 || out.written + (footer.len() as u64) < options.target_bytes {
            // The index is bounded by the template count, so the cast cannot truncate.
            let pick = (rng.next_u64() % self.templates.len() as u64) as usize;
            let template = &self.templates[pick];
            let identity = HostIdentity::new(first_address, hosts);
            write_host(&mut out, template, &identity).map_err(io_err)?;
            out.write_all(b"\n").map_err(io_err)?;
            hosts += 1;
            report_items += template.report_items;
        }
        out.write_all(footer).map_err(io_err)?;
        out.flush().map_err(io_err)?;
        Ok(GenSummary {
            bytes: out.written,
            hosts,
            report_items,
        })
    }

    /// Generates `path` unless it already exists, writing to a temporary sibling first so an
    /// interrupted run never leaves a truncated file behind. Returns `None` when the file was
    /// already there.
    pub fn ensure_file(
        &self,
        path: &Path,
        options: &GenOptions,
    ) -> Result<Option<GenSummary>, GenError> {
        if path.is_file() {
            return Ok(None);
        }
        let io_err = |context: String| move |source| GenError::Io { context, source };
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .map_err(io_err(format!("cannot create {}", parent.display())))?;
        }
        let partial = path.with_extension("partial");
        let file = fs::File::create(&partial)
            .map_err(io_err(format!("cannot create {}", partial.display())))?;
        let summary = self.write(file, options)?;
        fs::rename(&partial, path).map_err(io_err(format!(
            "cannot move {} to {}",
            partial.display(),
            path.display()
        )))?;
        Ok(Some(summary))
    }
}

fn write_host<W: Write>(
    out: &mut W,
    template: &HostTemplate,
    identity: &HostIdentity,
) -> io::Result<()> {
    for segment in &template.segments {
        match segment {
            Segment::Literal(range) => out.write_all(&template.bytes[range.clone()])?,
            Segment::ReportHostOpen => {
                let name = if template.named_by_ip {
                    identity.ip()
                } else {
                    identity.fqdn()
                };
                write!(out, "<ReportHost name=\"{name}\">")?;
            }
            Segment::HostIp => write!(out, "{}", identity.ip())?,
            Segment::HostFqdn => out.write_all(identity.fqdn().as_bytes())?,
            Segment::NetbiosName => out.write_all(identity.netbios().as_bytes())?,
        }
    }
    Ok(())
}

/// Counts bytes so the generator knows when the target size is reached.
struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;
    use quick_xml::events::Event;
    use std::collections::HashSet;

    fn generate(target: u64, seed: u64) -> (Vec<u8>, GenSummary) {
        let generator = Generator::from_corpus(&corpus_dir()).expect("corpus loads");
        let mut out = Vec::new();
        let summary = generator
            .write(
                &mut out,
                &GenOptions {
                    target_bytes: target,
                    seed,
                },
            )
            .expect("generation succeeds");
        (out, summary)
    }

    /// Re-reads a generated document: it must be well-formed, and every host must carry a
    /// distinct name and a host-ip equal to a distinct address.
    fn check_document(bytes: &[u8], summary: &GenSummary) {
        let mut reader = Reader::from_reader(bytes);
        let mut buf = Vec::new();
        let (mut hosts, mut items) = (0, 0);
        let mut names = HashSet::new();
        let mut ips = HashSet::new();
        let mut in_host_ip = false;
        loop {
            match reader.read_event_into(&mut buf).expect("well-formed XML") {
                Event::Start(e) if e.name().as_ref() == "ReportHost" => {
                    hosts += 1;
                    let name = e
                        .try_get_attribute("name")
                        .expect("attribute parses")
                        .expect("ReportHost has a name");
                    assert!(names.insert(name.value.into_owned()), "duplicate host name");
                }
                Event::Start(e) | Event::Empty(e) if e.name().as_ref() == "ReportItem" => {
                    items += 1;
                }
                Event::Start(e) if e.name().as_ref() == "tag" => {
                    in_host_ip = e
                        .try_get_attribute("name")
                        .ok()
                        .flatten()
                        .is_some_and(|a| a.value == "host-ip");
                }
                Event::Text(t) if in_host_ip => {
                    let ip = t
                        .xml_content(quick_xml::XmlVersion::Implicit1_0)
                        .into_owned();
                    assert!(ip.starts_with("10."), "host-ip rewritten: {ip}");
                    assert!(ips.insert(ip), "duplicate host-ip");
                }
                Event::End(_) => in_host_ip = false,
                Event::Eof => break,
                _ => {}
            }
            buf.clear();
        }
        assert_eq!(hosts, summary.hosts);
        assert_eq!(items, summary.report_items);
        assert_eq!(bytes.len() as u64, summary.bytes);
    }

    #[test]
    fn generated_document_is_well_formed_with_unique_hosts() {
        let (bytes, summary) = generate(3_000_000, 1);
        assert!(summary.bytes >= 3_000_000);
        assert!(summary.hosts > 1);
        check_document(&bytes, &summary);
    }

    #[test]
    fn same_seed_gives_same_bytes_and_other_seed_differs() {
        let (a, _) = generate(1_500_000, 42);
        let (b, _) = generate(1_500_000, 42);
        let (c, _) = generate(1_500_000, 43);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn tiny_target_still_holds_one_host() {
        let (bytes, summary) = generate(1, 0);
        assert_eq!(summary.hosts, 1);
        check_document(&bytes, &summary);
    }
}
