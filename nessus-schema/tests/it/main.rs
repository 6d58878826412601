//! Integration tests for nessus-schema: the real corpus, the predecessor's fixture ground
//! truth, hostile inputs, the findings store and the filter language.

mod aggregate;
mod answers;
mod corpus;
mod encodings;
mod export;
mod fixture;
mod hostile;
mod hosts;
mod naive;
mod props;
mod report;
mod split;
mod store;

use std::path::PathBuf;

/// Path of a corpus file.
pub(crate) fn corpus(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../corpus/nessus")).join(name)
}

/// The predecessor's fixture.
pub(crate) const FIXTURE: &str = "eafonin-nessus-api__sample_scan.nessus";
