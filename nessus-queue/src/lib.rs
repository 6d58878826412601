//! Durable task queue for Nessus scans: the task state machine, SQLite (default)
//! and Redis backends, leases with fencing, idempotency, and the worker runtime.
