//! Feeds arbitrary bytes to the streaming parser; any input must end in records or a typed
//! error, never a panic, and memory stays within the (small) record limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nessus_schema::{Limits, NessusReader, SummaryBuilder};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_record_bytes: 1 << 20,
        max_depth: 64,
    };
    let mut summary = SummaryBuilder::default();
    for record in NessusReader::with_limits(data, limits) {
        match record {
            Ok(r) => summary.add(&r),
            Err(e) => {
                // Errors must render (Display walks every variant's fields).
                let _ = e.to_string();
                break;
            }
        }
    }
    let _ = summary.finish(data.len() as u64);
});
