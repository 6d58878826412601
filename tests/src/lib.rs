//! Cross-crate end-to-end and fault tests live in this package's `tests/` folder.
