//! Test support shared by the workspace's test suites and benchmarks (feature
//! `testkit`, enabled only by test code): a `redis-server` of the test's own on a
//! free loopback port, a kill-on-drop child-process guard, a quick simulator, a
//! client for it, a fixed scanner directory and one-instance pools.
//!
//! Nothing here is for production: it favours brevity (fixed credentials, fixed
//! timeouts) over configurability. Failures are returned as errors, never panics,
//! so a benchmark binary can report them too.

mod process;
mod scanners;

pub use process::{ChildGuard, RedisServer, free_port};
pub use scanners::{SMALL_CORPUS, StaticDirectory, sim_client, simulator, single_pool};
