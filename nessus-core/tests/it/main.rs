//! Integration tests of `nessus-core`: the client against the simulator and against
//! recorded Nessus responses; config, target policy, breaker and selection.

mod auth;
mod endpoints;
mod faults;
mod recorded;
mod retry;
mod scanner;
mod scanner_types;
mod support;
mod tls;
mod targets;
