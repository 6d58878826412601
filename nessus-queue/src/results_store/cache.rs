//! The API side's bounded local cache of findings stores fetched from a
//! [`ResultsStore`].
//!
//! - A store is fetched on first use: download into `{dir}/.fetch-{uuid}/`, every file
//!   checked against the manifest (size, sha256), then one `rename` to `{dir}/{task_id}`,
//!   so a complete directory under a task's name is always a verified copy.
//! - One download per store at a time: concurrent readers of the same task wait for
//!   the first one's download (a per-task async lock) and then share it.
//! - Least recently used stores are evicted once the cache holds more than
//!   `max_bytes`. `nessus_schema::Store` re-opens its files by path on every query
//!   (no mmap, no handles kept), so deleting the directory of an open store would
//!   break it: an entry whose `Arc<Store>` is held by a query in flight (strong count
//!   above the cache's own) is pinned and skipped; the cache may exceed its cap while
//!   every store is in use, and shrinks at the next insert.
//! - Directories left by an earlier run are adopted (sized, opened on first use);
//!   abandoned `.fetch-*` and `.evict-*` directories are removed. An evicted store's
//!   directory is renamed aside under the cache lock and deleted after it, so a
//!   fetch of the same task right after never loses its fresh copy.
//!
//! The cache is per process: two processes sharing one cache directory could evict
//! each other's stores; give each API node its own (the default
//! `{data_dir}/results-cache` is).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nessus_schema::Store;

use super::{ResultsStore, dir_size};
use crate::error::{Error, Result};

/// Stores downloaded at once (of different tasks; one task is one download anyway).
const MAX_DOWNLOADS: usize = 4;

/// Prefix of download directories (never a task id, so never served).
const FETCH_PREFIX: &str = ".fetch-";
/// Prefix an evicted store is renamed to before it is deleted: the rename happens
/// under the cache lock, so a fetch of the same task right after cannot have its
/// fresh copy deleted by the eviction.
const EVICT_PREFIX: &str = ".evict-";

struct Entry {
    /// Opened on first use (adopted directories start closed).
    store: Option<Arc<Store>>,
    bytes: u64,
    /// Logical clock of the last use (LRU order).
    used: u64,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    total: u64,
    clock: u64,
}

/// Counters of a cache (tests, `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Stores held.
    pub stores: usize,
    /// Bytes held.
    pub bytes: u64,
    /// Downloads done since start.
    pub fetches: u64,
    /// Stores evicted since start.
    pub evictions: u64,
}

/// A bounded, LRU-evicted local cache of stores from a [`ResultsStore`].
pub struct ResultsCache {
    remote: Arc<ResultsStore>,
    dir: PathBuf,
    max_bytes: u64,
    state: Mutex<State>,
    /// One download per task at a time.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Downloads of different tasks at once: a burst of first reads must not open
    /// hundreds of transfers and fill the disk with half-fetched stores.
    downloads: tokio::sync::Semaphore,
    stats: Mutex<(u64, u64)>,
}

impl std::fmt::Debug for ResultsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultsCache")
            .field("remote", &self.remote)
            .field("dir", &self.dir)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ResultsCache {
    /// A cache in `dir` (created on the first fetch) of at most `max_bytes`,
    /// adopting what an earlier run left there.
    pub fn new(remote: Arc<ResultsStore>, dir: impl Into<PathBuf>, max_bytes: u64) -> Result<Self> {
        let dir = dir.into();
        let mut state = State::default();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                if name.starts_with(FETCH_PREFIX) || name.starts_with(EVICT_PREFIX) {
                    // A download that never finished (this process or a crashed one).
                    let _ = std::fs::remove_dir_all(&path);
                } else if crate::task::is_valid_task_id(&name) && path.is_dir() {
                    let bytes = dir_size(&path);
                    state.total += bytes;
                    state.entries.insert(
                        name,
                        Entry {
                            store: None,
                            bytes,
                            used: 0,
                        },
                    );
                }
            }
        }
        Ok(Self {
            remote,
            dir,
            max_bytes,
            state: Mutex::new(state),
            gates: Mutex::default(),
            downloads: tokio::sync::Semaphore::new(MAX_DOWNLOADS),
            stats: Mutex::default(),
        })
    }

    /// The object store behind.
    pub fn remote(&self) -> &Arc<ResultsStore> {
        &self.remote
    }

    /// What the cache holds now.
    pub fn stats(&self) -> CacheStats {
        let s = lock(&self.state);
        let (fetches, evictions) = *lock(&self.stats);
        CacheStats {
            stores: s.entries.len(),
            bytes: s.total,
            fetches,
            evictions,
        }
    }

    /// Whether a task's store is held locally now.
    pub fn contains(&self, task_id: &str) -> bool {
        lock(&self.state).entries.contains_key(task_id)
    }

    /// The store of `task_id`, from the cache or fetched now. Hold the `Arc` only
    /// while querying: while it is held the store is pinned (never evicted).
    pub async fn get(&self, task_id: &str) -> Result<Arc<Store>> {
        if !crate::task::is_valid_task_id(task_id) {
            return Err(Error::ResultsNotFound {
                task_id: task_id.to_owned(),
            });
        }
        if let Some(s) = self.cached(task_id).await? {
            return Ok(s);
        }
        let gate = lock(&self.gates)
            .entry(task_id.to_owned())
            .or_default()
            .clone();
        let result = {
            let _one = gate.lock().await;
            match self.cached(task_id).await {
                Ok(Some(s)) => Ok(s),
                Ok(None) => self.fetch(task_id).await,
                Err(e) => Err(e),
            }
        };
        let mut gates = lock(&self.gates);
        // The map's own reference plus ours: nobody else waits on this gate.
        if Arc::strong_count(&gate) <= 2 {
            gates.remove(task_id);
        }
        result
    }

    /// A cached store, opening an adopted directory on first use.
    async fn cached(&self, task_id: &str) -> Result<Option<Arc<Store>>> {
        {
            let mut s = lock(&self.state);
            s.clock += 1;
            let now = s.clock;
            // One stat per read: a copy deleted behind our back (an operator, or
            // another process sharing the directory) is fetched again rather than
            // failing every query.
            let present = self.dir.join(task_id).join("meta.json").is_file();
            match s.entries.get_mut(task_id) {
                None => return Ok(None),
                Some(e) if !present => {
                    let bytes = e.bytes;
                    s.entries.remove(task_id);
                    s.total = s.total.saturating_sub(bytes);
                    return Ok(None);
                }
                Some(e) => {
                    e.used = now;
                    if let Some(store) = &e.store {
                        return Ok(Some(store.clone()));
                    }
                }
            }
        }
        let dir = self.dir.join(task_id);
        let opened =
            crate::service::blocking(move || Store::open(&dir).map_err(Error::Query)).await;
        let mut s = lock(&self.state);
        match opened {
            Ok(store) => {
                let store = Arc::new(store);
                match s.entries.get_mut(task_id) {
                    Some(e) => {
                        let kept = e.store.get_or_insert(store).clone();
                        Ok(Some(kept))
                    }
                    // Evicted meanwhile: fetch again.
                    None => Ok(None),
                }
            }
            Err(e) => {
                // A broken adopted copy: forget it and fetch again.
                tracing::warn!(task_id, error = %e, "cached findings store unreadable; fetching again");
                if let Some(old) = s.entries.remove(task_id) {
                    s.total = s.total.saturating_sub(old.bytes);
                }
                let moved = self.move_aside(task_id);
                drop(s);
                if let Some(dir) = moved {
                    let _ = std::fs::remove_dir_all(dir);
                }
                Ok(None)
            }
        }
    }

    async fn fetch(&self, task_id: &str) -> Result<Arc<Store>> {
        // Never closed, so acquiring cannot fail.
        let _permit = self.downloads.acquire().await.ok();
        let Some(manifest) = self.remote.manifest(task_id).await? else {
            // No manifest: never uploaded, half uploaded or deleted.
            return Err(Error::ResultsNotFound {
                task_id: task_id.to_owned(),
            });
        };
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|source| Error::Io {
                what: format!("cannot create {}", self.dir.display()),
                source,
            })?;
        let tmp = self
            .dir
            .join(format!("{FETCH_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        let started = std::time::Instant::now();
        let fetched = self.remote.fetch_store(&manifest, &tmp).await;
        let bytes = match fetched {
            Ok(b) => b,
            Err(e) => {
                let _ = tokio::fs::remove_dir_all(&tmp).await;
                return Err(e);
            }
        };
        let dest = self.dir.join(task_id);
        // A leftover directory under the name (not in the map) is replaced.
        let _ = tokio::fs::remove_dir_all(&dest).await;
        if let Err(source) = tokio::fs::rename(&tmp, &dest).await {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(Error::Io {
                what: format!("cannot move a fetched store to {}", dest.display()),
                source,
            });
        }
        let d = dest.clone();
        let store = Arc::new(
            crate::service::blocking(move || Store::open(&d).map_err(Error::Query)).await?,
        );
        tracing::info!(
            task_id,
            bytes,
            ms = started.elapsed().as_millis() as u64,
            "fetched a findings store"
        );
        lock(&self.stats).0 += 1;
        let evicted = {
            let mut s = lock(&self.state);
            s.clock += 1;
            let used = s.clock;
            s.total += bytes;
            s.entries.insert(
                task_id.to_owned(),
                Entry {
                    store: Some(store.clone()),
                    bytes,
                    used,
                },
            );
            self.evict(&mut s, task_id)
        };
        for dir in evicted {
            if let Err(e) = tokio::fs::remove_dir_all(&dir).await {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an evicted store");
            }
        }
        Ok(store)
    }

    /// Picks least recently used, unpinned entries (never `keep`) until the total fits;
    /// removes them from the map, renames their directories out of the way and
    /// returns the new paths (deleted by the caller, outside the lock).
    fn evict(&self, s: &mut State, keep: &str) -> Vec<PathBuf> {
        let mut out = Vec::new();
        while s.total > self.max_bytes {
            // Pinned: a query holds the Arc (the map's own is one). Readers clone
            // the Arc only under this lock, so the count cannot rise meanwhile.
            let victim = s
                .entries
                .iter()
                .filter(|(id, e)| {
                    id.as_str() != keep
                        && e.store.as_ref().is_none_or(|st| Arc::strong_count(st) == 1)
                })
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| id.clone());
            let Some(id) = victim else {
                tracing::debug!(
                    total = s.total,
                    cap = self.max_bytes,
                    "results cache over its cap; every other store is in use"
                );
                break;
            };
            if let Some(e) = s.entries.remove(&id) {
                s.total = s.total.saturating_sub(e.bytes);
            }
            lock(&self.stats).1 += 1;
            if let Some(moved) = self.move_aside(&id) {
                out.push(moved);
            }
        }
        out
    }

    /// Renames a task's directory to a `.evict-*` name; `None` when there is none.
    fn move_aside(&self, task_id: &str) -> Option<PathBuf> {
        let from = self.dir.join(task_id);
        let to = self
            .dir
            .join(format!("{EVICT_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        match std::fs::rename(&from, &to) {
            Ok(()) => Some(to),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::warn!(task_id, error = %e, "could not move an evicted store aside; deleting in place");
                let _ = std::fs::remove_dir_all(&from);
                None
            }
        }
    }

    /// Forgets a task's store and deletes its local copy (housekeeping purged the
    /// task). Unlike eviction this does not wait for queries in flight: the task is
    /// gone, so a query of it still running may fail, which is what a purge means.
    pub fn forget(&self, task_id: &str) {
        if !crate::task::is_valid_task_id(task_id) {
            return;
        }
        let moved = {
            let mut s = lock(&self.state);
            if let Some(e) = s.entries.remove(task_id) {
                s.total = s.total.saturating_sub(e.bytes);
            }
            self.move_aside(task_id)
        };
        if let Some(dir) = moved {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Path of the cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
