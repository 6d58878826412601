//! Cross-crate end-to-end and fault tests live in this package's `tests/` folder.
//!
//! The library part holds test and benchmark utilities shared by those tests and by the
//! `nessus-gen` and `bench-schema` binaries.

pub mod generator;
