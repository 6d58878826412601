//! Test support shared by the workspace's test suites and benchmarks (feature
//! `testkit`, enabled only by test code): a `redis-server` of the test's own on a
//! free loopback port (or a Sentinel set, a Cluster, another binary such as Valkey), a kill-on-drop child-process guard, a quick simulator, a
//! client for it, a fixed scanner directory and one-instance pools, and where a batch of
//! tasks stands.
//!
//! Nothing here is for production: it favours brevity (fixed credentials, fixed
//! timeouts) over configurability. Failures are returned as errors, never panics,
//! so a benchmark binary can report them too.

mod process;
mod scanners;
mod tasks;
mod topology;

pub use process::{ChildGuard, RedisServer, binary_on_path, free_port};
pub use scanners::{SMALL_CORPUS, StaticDirectory, sim_client, simulator, single_pool};
pub use tasks::{not_completed, terminal_count};
pub use topology::{RedisClusterSet, RedisSentinelSet, SENTINEL_MASTER};
