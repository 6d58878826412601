//! Integration tests of nessus-core (one binary).

mod targets;
