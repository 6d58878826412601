//! Findings stores on disk, opened once and shared between calls.
//!
//! Opening a store reads its index; pages are then served from it without
//! touching the `.nessus` XML. Store I/O is blocking, so callers run it on the
//! blocking pool: a large page never stalls other tool calls.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use nessus_schema::Store;

/// How many open stores to keep.
const CAPACITY: usize = 32;

/// The directory holding a task's findings store.
pub fn store_dir(results_dir: &Path, task_id: &str) -> PathBuf {
    results_dir.join(task_id).join("store")
}

/// A small cache of open stores keyed by task id.
#[derive(Debug, Default)]
pub(crate) struct StoreCache {
    open: Mutex<HashMap<String, Arc<Store>>>,
}

/// Why a store could not be opened.
#[derive(Debug)]
pub(crate) enum OpenError {
    /// No store on disk for this task.
    Missing,
    /// The store exists but could not be read.
    Broken(nessus_schema::Error),
}

impl StoreCache {
    /// The store of `task_id`, opening it if needed (blocking).
    pub(crate) fn get(&self, results_dir: &Path, task_id: &str) -> Result<Arc<Store>, OpenError> {
        if let Some(s) = self.lock().get(task_id) {
            return Ok(s.clone());
        }
        let dir = store_dir(results_dir, task_id);
        if !dir.exists() {
            return Err(OpenError::Missing);
        }
        let store = Arc::new(Store::open(&dir).map_err(OpenError::Broken)?);
        let mut open = self.lock();
        if open.len() >= CAPACITY {
            // Any entry will do: stores are cheap to reopen, and the common
            // access pattern is paging through one task at a time.
            if let Some(k) = open.keys().next().cloned() {
                open.remove(&k);
            }
        }
        open.insert(task_id.to_owned(), store.clone());
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Store>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
