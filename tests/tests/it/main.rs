//! End-to-end fault tests with real processes.

mod chaos;
mod crash;
mod nodes;
mod outage;
mod support;
