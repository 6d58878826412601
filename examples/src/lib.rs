//! Runnable examples of embedding the nessus-mcp libraries; each lives in
//! `examples/examples/` and runs with one command:
//!
//! * `cargo run -p nessus-examples --example list_scans` lists the scans of a Nessus
//!   server (an in-process simulator when `NESSUS_URL` is not set).
//! * `cargo run -p nessus-examples --example create_launch_wait -- 192.0.2.10` creates,
//!   launches, waits for and exports a scan through the `Scanner` trait (a TLS simulator
//!   when `NESSUS_URL` is not set).
//! * `cargo run -p nessus-examples --example sim -- 127.0.0.1:8834 [--tls]` serves the
//!   simulator in the foreground for other clients (`scripts/pytenable_sim.sh` uses it).
