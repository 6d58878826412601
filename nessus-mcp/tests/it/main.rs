//! Integration tests: a real server (HTTP on 127.0.0.1, SQLite file, embedded
//! workers, in-process Nessus simulator) driven by the rmcp client.

mod approvals;
mod arguments;
mod compat;
mod contract;
mod edge;
mod export;
mod findings;
mod flow;
mod fuzz_http;
mod import;
mod logs;
mod oauth;
mod readiness;
mod schedules;
mod schema_check;
mod security;
mod stdio;
mod support;
mod tasks;
mod tenancy;
mod tools_list;
