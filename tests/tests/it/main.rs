//! End-to-end fault tests with real processes.

mod crash;
mod outage;
mod support;
