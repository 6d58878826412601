//! The manifest: the last object of an upload, naming every file with its size and
//! sha256. Its presence is what makes a task's results servable.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Format version written into every manifest.
const FORMAT: u32 = 1;

/// What one upload of a task's results holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Manifest {
    /// Format version (1).
    pub format: u32,
    /// The task.
    pub task_id: String,
    /// Every file, relative to the task's prefix (`scan.nessus`, `store/meta.json`…).
    pub files: Vec<ManifestFile>,
}

/// One file of a [`Manifest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ManifestFile {
    /// Path under the task's prefix, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lower-case hex.
    pub sha256: String,
}

impl Manifest {
    pub(crate) fn new(task_id: &str) -> Self {
        Self {
            format: FORMAT,
            task_id: task_id.to_owned(),
            files: Vec::new(),
        }
    }

    /// The findings store's files.
    pub fn store_files(&self) -> impl Iterator<Item = &ManifestFile> {
        self.files.iter().filter(|f| f.path.starts_with("store/"))
    }

    /// Bytes of the findings store (what a cache holds for it).
    pub fn store_bytes(&self) -> u64 {
        self.store_files().map(|f| f.size).sum()
    }

    /// Refuses a manifest that is not for `task_id`, of an unknown format, or naming
    /// paths that could leave the download directory.
    pub(crate) fn check(&self, task_id: &str) -> Result<()> {
        let bad = |reason: String| Error::ResultsStore {
            what: format!("the manifest of {task_id} is not usable"),
            reason,
        };
        if self.format != FORMAT {
            return Err(bad(format!("unknown format {}", self.format)));
        }
        if self.task_id != task_id {
            return Err(bad(format!("names task {}", self.task_id)));
        }
        for f in &self.files {
            let unsafe_part = f
                .path
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == ".." || p.contains('\\'));
            if unsafe_part || f.sha256.len() != 64 {
                return Err(bad(format!("bad entry {:?}", f.path)));
            }
        }
        if self.store_files().next().is_none() {
            return Err(bad("no findings store".to_owned()));
        }
        Ok(())
    }
}
