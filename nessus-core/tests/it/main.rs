//! Integration tests of `nessus-core`: the client against the simulator and against
//! recorded Nessus responses; config, target policy, breaker and selection.

mod breaker;
mod config;
mod instance;
mod scanner_types;
mod targets;
