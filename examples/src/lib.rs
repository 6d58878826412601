//! Runnable examples of embedding the nessus-mcp libraries; each lives in
//! `examples/examples/` and runs with `cargo run -p nessus-examples --example NAME`.
