//! The results directory and its layout: the one place that spells where a task's
//! export and findings store live. The worker, the service layer (import, results,
//! housekeeping) and the CLI all ask this type.
//!
//! ```text
//! {root}/
//!   {task_id}/
//!     scan.nessus.part   the export while it downloads
//!     scan.nessus        the finished export
//!     store/             the findings store (nessus-schema)
//!   .import-{uuid}/      an import being ingested (no task yet; safe to delete)
//! ```

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Prefix of staging directories; they hold no task and may be deleted at any time.
const STAGING_PREFIX: &str = ".import-";

/// The results root and the layout under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultsDir {
    root: PathBuf,
}

impl ResultsDir {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Everything kept for one task.
    pub fn task_dir(&self, task_id: &str) -> PathBuf {
        self.root.join(task_id)
    }

    /// The findings store of a task directory.
    pub fn store_in(task_dir: &Path) -> PathBuf {
        task_dir.join("store")
    }

    /// The findings store of a task.
    pub fn store_dir(&self, task_id: &str) -> PathBuf {
        Self::store_in(&self.task_dir(task_id))
    }

    /// The finished export of a task directory.
    pub fn export_in(task_dir: &Path) -> PathBuf {
        task_dir.join("scan.nessus")
    }

    /// The export of a task directory while it downloads (renamed when complete, so a
    /// crash never leaves a half file under the final name).
    pub fn partial_export_in(task_dir: &Path) -> PathBuf {
        task_dir.join("scan.nessus.part")
    }

    /// A fresh staging directory for an import (created).
    pub fn new_staging(&self) -> Result<PathBuf> {
        let dir = self
            .root
            .join(format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("cannot create {}", dir.display()),
            source,
        })?;
        Ok(dir)
    }

    /// Removes a task's directory; a missing one is not an error.
    pub fn remove_task(&self, task_id: &str) -> Result<()> {
        let dir = self.task_dir(task_id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(Error::Io {
                what: format!("cannot remove {}", dir.display()),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ResultsDir;
    use std::path::Path;

    #[test]
    fn layout() {
        let r = ResultsDir::new("/r");
        assert_eq!(r.task_dir("t1"), Path::new("/r/t1"));
        assert_eq!(r.store_dir("t1"), Path::new("/r/t1/store"));
        assert_eq!(
            ResultsDir::export_in(&r.task_dir("t1")),
            Path::new("/r/t1/scan.nessus")
        );
        assert_eq!(
            ResultsDir::partial_export_in(&r.task_dir("t1")),
            Path::new("/r/t1/scan.nessus.part")
        );
    }
}
