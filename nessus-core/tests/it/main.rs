//! Integration tests of `nessus-core`: the client against the simulator and against
//! recorded Nessus responses.

mod scanner_types;
