//! Integration tests of `nessus-core`: the client against the simulator (real HTTP on
//! 127.0.0.1) and against recorded Nessus responses served by wiremock.

mod auth;
mod endpoints;
mod faults;
mod recorded;
mod retry;
mod scanner;
mod scanner_types;
mod support;
mod tls;
