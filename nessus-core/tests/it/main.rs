//! Integration tests of `nessus-core`: the client against the simulator (real HTTP on
//! 127.0.0.1) and against recorded Nessus responses served by wiremock; config, target
//! policy, breaker and selection.

mod auth;
mod breaker;
mod clock;
mod config;
mod endpoints;
mod faults;
mod instance;
mod recorded;
mod retry;
mod scanner;
mod scanner_types;
mod support;
mod targets;
mod tls;
