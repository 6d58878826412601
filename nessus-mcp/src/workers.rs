//! Embedded workers: the glue between the config (scanners, credential
//! profiles), the Nessus client, the queue's worker runtime and the findings
//! store lives in `nessus-queue` (shared with `nessus-cli worker`).

pub use nessus_queue::{ConfigDirectory, SchemaIngest};
