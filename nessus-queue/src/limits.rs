//! Length limits on what a caller may store in a task: one table, read by
//! [`NewTask`](crate::NewTask) validation (so submit and import share it) and by the
//! service layer's query checks. Limits are in bytes of UTF-8.
//!
//! Generous for real use (a scan name is a line, a target list a few hundred hosts or
//! CIDRs), small enough that a listing of 1,000 tasks stays a few MiB.

use crate::error::{Error, Result};

/// A scan name.
pub const NAME_MAX: usize = 512;
/// A scan description.
pub const DESCRIPTION_MAX: usize = 8 * 1024;
/// The target list as submitted (and the canonical list stored).
pub const TARGETS_MAX: usize = 64 * 1024;
/// An idempotency key.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;
/// How many `custom_fields` a results query may name.
pub const CUSTOM_FIELDS_MAX: usize = 64;
/// One field name in `custom_fields`.
pub const FIELD_NAME_MAX: usize = 64;
/// A results query's filters, serialised as JSON.
pub const FILTERS_MAX: usize = 16 * 1024;
/// A results cursor.
pub const CURSOR_MAX: usize = 4 * 1024;
/// An admin's reason for approving or rejecting a scan.
pub const REVIEW_REASON_MAX: usize = 2 * 1024;

/// The free-text fields of a task against their limits, first, so nothing after
/// this walks (or parses) a 7 MiB string. Submit checks them before the target policy
/// parses the targets; task validation checks them again for every other path.
pub fn check_task_text(name: &str, description: &str, targets: &str) -> Result<()> {
    check_len("name", name, NAME_MAX)?;
    check_len("description", description, DESCRIPTION_MAX)?;
    check_len("targets", targets, TARGETS_MAX)
}

/// `Err(TooLong)` naming `field` and `limit` when `value` is longer.
pub fn check_len(field: &'static str, value: &str, limit: usize) -> Result<()> {
    if value.len() > limit {
        Err(Error::TooLong {
            field,
            actual: value.len(),
            limit,
        })
    } else {
        Ok(())
    }
}

/// A `.nessus` file sent inline with an import (bigger files go through the server's
/// import directory).
pub const INLINE_IMPORT_MAX: usize = 4 << 20;
