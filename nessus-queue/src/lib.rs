//! Durable task queue for Nessus scans: the task state machine, SQLite (default)
//! and Redis backends, leases with fencing tokens, idempotent submission, queue
//! position and ETA, sealed ad-hoc credentials, the dead-letter queue,
//! housekeeping, and the audit trail ([`Queue::audit`], [`Queue::audit_list`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), nessus_queue::Error> {
//! use nessus_queue::{InstanceCapacity, NewTask, Queue, QueueConfig, ScanType, TaskStatus};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let queue = Queue::sqlite(dir.path().join("queue.db"), QueueConfig::default())?;
//! let req = NewTask::new(ScanType::Untrusted, "nessus", "10.0.0.5", "weekly");
//! let sub = queue.submit("alice", req.clone(), None, Some("key-1")).await?;
//! assert_eq!(sub.queue_position, Some(1));
//! // A retry with the same key returns the same task.
//! let again = queue.submit("alice", req, None, Some("key-1")).await?;
//! assert!(again.idempotent && again.task.task_id == sub.task.task_id);
//!
//! // A worker claims it; the scanner instance is chosen now.
//! let pools = vec![("nessus".to_owned(), vec![InstanceCapacity::new("scanner1", 2)])];
//! let claim = queue.claim("worker-1", &pools).await?.expect("a task");
//! assert_eq!(claim.task.instance.as_deref(), Some("scanner1"));
//! queue.complete(&claim.task.task_id, claim.token, Default::default()).await?;
//! let done = queue.get(&sub.task.task_id).await?.expect("exists");
//! assert_eq!(done.task.status, TaskStatus::Completed);
//! # Ok(()) }
//! ```

mod audit;
mod backend;
mod directory;
mod error;
pub mod findings;
pub mod hooks;
mod import;
pub mod limits;
mod queue;
mod redis_backend;
mod redis_con;
mod results_dir;
pub mod results_store;
pub mod schedule;
#[cfg(feature = "schema")]
mod schema_ingest;
mod scope;
mod secret;
#[cfg(feature = "service")]
pub mod service;
mod sqlite;
mod task;
#[cfg(feature = "testkit")]
pub mod testkit;
mod worker;

pub use audit::{
    AUDIT_MAX_DETAIL, AUDIT_MAX_ID, AUDIT_MAX_OUTCOME, AUDIT_MAX_PRINCIPAL, AUDIT_MAX_TARGETS,
    AuditAction, AuditEvent, AuditEventBuilder, AuditPage, AuditQuery,
};
pub use backend::{
    Backend, ClaimRequest, CreateOutcome, IdemReservation, InstanceCapacity, ListQuery, Page,
    PoolCounts, PrincipalCounts, QueueSnapshot, fair_ahead,
};
pub use directory::ConfigDirectory;
pub use error::{BackendKind, BoxError, Error, Result};
pub use import::IMPORT_POOL;
pub use queue::{
    Claim, DEFAULT_MAX_QUEUED_PER_PRINCIPAL, DlqPurge, HousekeepReport, ListTasks, Queue,
    QueueConfig, QueueStatus, ReapReport, Submitted, TaskPage, TaskView, request_hash,
};
pub use redis_backend::RedisBackend;
pub use redis_con::RedisTopology;
pub use results_dir::ResultsDir;
pub use results_store::ResultsStore;
pub use schedule::Schedule;
#[cfg(feature = "schema")]
pub use schema_ingest::SchemaIngest;
pub use scope::{Operation, Scope, Scopes};
pub use secret::{AdhocCredentials, KEY_ENV, SecretBox};
pub use sqlite::SqliteBackend;
pub use task::{
    ApprovalHold, CancelOutcome, Completion, Failure, Lease, NewTask, ResultsSummary, Review,
    ReviewDecision, ScanType, Task, TaskStatus, is_valid_task_id, new_task_id,
};
pub use worker::{Ingest, KeepExportOnly, ScannerDirectory, Worker, WorkerConfig};
