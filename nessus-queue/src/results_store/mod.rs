//! Results in object storage (`server.results_url`): the one owner of the remote
//! layout, the upload after ingest, the manifest, the fetch and the delete. The local
//! [`ResultsDir`](crate::ResultsDir) stays the default; this is used only when a
//! results URL is configured.
//!
//! ```text
//! {prefix}/
//!   {task_id}/
//!     scan.nessus        the finished export (workers; imports keep no export)
//!     store/<files>      the findings store (nessus-schema)
//!     manifest.json      written LAST: every file above with its size and sha256
//! ```
//!
//! A reader trusts a task only once its manifest exists, so a half upload (a worker
//! killed mid-way) is never served; the next attempt uploads everything again and
//! rewrites the manifest. The API side's bounded local cache is [`cache`].

#[cfg(feature = "service")]
pub mod cache;
mod manifest;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::{Error, Result};

#[cfg(feature = "service")]
pub use cache::{CacheStats, ResultsCache};
pub use manifest::{Manifest, ManifestFile};

/// Name of the manifest object under a task's prefix.
pub const MANIFEST: &str = "manifest.json";
/// Name of the export object under a task's prefix.
pub const EXPORT: &str = "scan.nessus";
/// Folder of the findings store under a task's prefix.
pub const STORE: &str = "store";

/// Chunk size of uploads and of hashing (object_store's `BufWriter` switches to a
/// multipart upload above its capacity, so a 4 GiB export never sits in memory).
const CHUNK: usize = 1 << 20;

/// A results object store: where tasks' results live when `server.results_url` is set.
pub struct ResultsStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// Values that must never appear in an error text (secret access keys, tokens),
    /// scrubbed from every message as a second line of defence.
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for ResultsStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Only the URL: the client inside holds credentials.
        f.debug_struct("ResultsStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Environment variables whose values are secrets for the supported stores.
const SECRET_ENV: &[&str] = &[
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_STORAGE_MASTER_KEY",
    "AZURE_CLIENT_SECRET",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_STORAGE_TOKEN",
];

fn is_secret_key(key: &str) -> bool {
    let k = key.to_ascii_uppercase();
    SECRET_ENV.contains(&k.as_str()) || k.contains("SECRET") || k.ends_with("TOKEN")
}

impl ResultsStore {
    /// Opens the store `url` names (`s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`, `file:///abs/dir`). Credentials and endpoint come from
    /// the crate's standard environment variables (`AmazonS3Builder::from_env()` and
    /// the like); `options` (same names, any case: `AWS_ENDPOINT` or `aws_endpoint`)
    /// override them, for embedders and tests that must not change the process
    /// environment. Opening makes no request.
    pub fn open(url: &str, options: &[(String, SecretString)]) -> Result<Self> {
        let bad = |reason: String| Error::ResultsStore {
            what: format!("cannot use results_url {url}"),
            reason,
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let mut secrets: Vec<SecretString> = SECRET_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .filter(|v| !v.is_empty())
            .map(SecretString::from)
            .collect();
        secrets.extend(
            options
                .iter()
                .filter(|(k, v)| is_secret_key(k) && !v.expose_secret().is_empty())
                .map(|(_, v)| v.clone()),
        );
        let opts = || {
            options
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.expose_secret().to_owned()))
        };
        let mut prefix = parsed.path().trim_matches('/').to_owned();
        let store: Arc<dyn ObjectStore> = match parsed.scheme() {
            "s3" | "s3a" => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url);
                for (k, v) in opts() {
                    let key = k.parse().map_err(|_| bad(format!("unknown option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "gs" => {
                let mut b = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url);
                for (k, v) in opts() {
                    let key = k.parse().map_err(|_| bad(format!("unknown option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "az" | "abfs" | "abfss" => {
                let mut b = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
                for (k, v) in opts() {
                    let key = k.parse().map_err(|_| bad(format!("unknown option {k}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            "file" => {
                let dir = parsed
                    .to_file_path()
                    .map_err(|()| bad("file:// needs an absolute path".to_owned()))?;
                std::fs::create_dir_all(&dir).map_err(|e| bad(e.to_string()))?;
                prefix = String::new();
                Arc::new(
                    object_store::local::LocalFileSystem::new_with_prefix(&dir)
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            other => return Err(bad(format!("unsupported scheme {other}"))),
        };
        let prefix = ObjectPath::parse(&prefix).map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            url: url.to_owned(),
            store,
            prefix,
            secrets,
        })
    }

    /// The URL it was opened with (no credentials: the config refuses userinfo).
    pub fn url(&self) -> &str {
        &self.url
    }

    fn task_path(&self, task_id: &str) -> ObjectPath {
        self.prefix.clone().join(task_id)
    }

    fn object(&self, task_id: &str, rel: &str) -> ObjectPath {
        rel.split('/')
            .fold(self.task_path(task_id), |p, part| p.join(part))
    }

    /// An error about `what`, its text scrubbed of every known secret value.
    fn err(&self, what: impl Into<String>, e: impl std::fmt::Display) -> Error {
        let mut reason = e.to_string();
        for s in &self.secrets {
            reason = reason.replace(s.expose_secret(), "********");
        }
        Error::ResultsStore {
            what: what.into(),
            reason,
        }
    }

    /// Uploads a task directory (`scan.nessus` if present, `store/`), then the
    /// manifest. Idempotent: a retry uploads everything again and rewrites the
    /// manifest, so a reader never sees a manifest naming a file that is not there.
    pub async fn upload_task(&self, task_id: &str, task_dir: &Path) -> Result<Manifest> {
        if !crate::task::is_valid_task_id(task_id) {
            return Err(Error::invalid("task_id", "not a task id"));
        }
        let mut files = Vec::new();
        let export = task_dir.join(EXPORT);
        if tokio::fs::try_exists(&export).await.unwrap_or(false) {
            files.push((EXPORT.to_owned(), export));
        }
        let store = task_dir.join(STORE);
        for (rel, path) in walk(&store).map_err(|source| Error::Io {
            what: format!("cannot list {}", store.display()),
            source,
        })? {
            files.push((format!("{STORE}/{rel}"), path));
        }
        if !files.iter().any(|(rel, _)| rel.starts_with(STORE)) {
            return Err(Error::ResultsNotFound {
                task_id: task_id.to_owned(),
            });
        }
        let mut manifest = Manifest::new(task_id);
        for (rel, path) in files {
            let (size, sha256) = self.put_file(task_id, &rel, &path).await?;
            manifest.files.push(ManifestFile {
                path: rel,
                size,
                sha256,
            });
        }
        let body = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| self.err(format!("cannot encode the manifest of {task_id}"), e))?;
        self.store
            .put(&self.object(task_id, MANIFEST), PutPayload::from(body))
            .await
            .map_err(|e| self.err(format!("cannot write the manifest of {task_id}"), e))?;
        Ok(manifest)
    }

    /// Streams one file up while hashing it; returns its size and sha256.
    async fn put_file(&self, task_id: &str, rel: &str, path: &Path) -> Result<(u64, String)> {
        let what = || format!("cannot upload {rel} of {task_id}");
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|source| Error::Io {
                what: format!("cannot open {}", path.display()),
                source,
            })?;
        let mut w = object_store::buffered::BufWriter::with_capacity(
            Arc::clone(&self.store),
            self.object(task_id, rel),
            8 * CHUNK,
        );
        let mut hash = Sha256::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = file.read(&mut buf).await.map_err(|source| Error::Io {
                what: format!("cannot read {}", path.display()),
                source,
            })?;
            if n == 0 {
                break;
            }
            hash.update(&buf[..n]);
            size += n as u64;
            if let Err(e) = w.write_all(&buf[..n]).await {
                let _ = w.abort().await;
                return Err(self.err(what(), e));
            }
        }
        w.shutdown().await.map_err(|e| self.err(what(), e))?;
        Ok((size, hex::encode(hash.finalize())))
    }

    /// The manifest of a task, or `None` when there is none (never uploaded, half
    /// uploaded, or deleted): such a task has no results to serve.
    pub async fn manifest(&self, task_id: &str) -> Result<Option<Manifest>> {
        match self.store.get(&self.object(task_id, MANIFEST)).await {
            Ok(got) => {
                let bytes = got
                    .bytes()
                    .await
                    .map_err(|e| self.err(format!("cannot read the manifest of {task_id}"), e))?;
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| self.err(format!("the manifest of {task_id} is unreadable"), e))?;
                m.check(task_id)?;
                Ok(Some(m))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(format!("cannot read the manifest of {task_id}"), e)),
        }
    }

    /// Downloads the findings store of `task_id` into `dest` (created; must not
    /// exist), checking every file's size and sha256 against `manifest`. On an error
    /// `dest` may hold a part: the caller downloads into a temporary directory.
    pub async fn fetch_store(&self, manifest: &Manifest, dest: &Path) -> Result<u64> {
        let task_id = manifest.task_id.as_str();
        let io = |what: String| move |source| Error::Io { what, source };
        tokio::fs::create_dir_all(dest)
            .await
            .map_err(io(format!("cannot create {}", dest.display())))?;
        let mut total = 0u64;
        for f in manifest.store_files() {
            let rel = f.path.strip_prefix("store/").unwrap_or(&f.path);
            let target = dest.join(rel);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(io(format!("cannot create {}", parent.display())))?;
            }
            let what = || format!("cannot download {} of {task_id}", f.path);
            let got = self
                .store
                .get(&self.object(task_id, &f.path))
                .await
                .map_err(|e| self.err(what(), e))?;
            let mut stream = got.into_stream();
            let mut out = tokio::fs::File::create(&target)
                .await
                .map_err(io(format!("cannot create {}", target.display())))?;
            let mut hash = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.try_next().await.map_err(|e| self.err(what(), e))? {
                hash.update(&chunk);
                size += chunk.len() as u64;
                if size > f.size {
                    break;
                }
                out.write_all(&chunk)
                    .await
                    .map_err(io(format!("cannot write {}", target.display())))?;
            }
            out.flush()
                .await
                .map_err(io(format!("cannot write {}", target.display())))?;
            let sha = hex::encode(hash.finalize());
            if size != f.size || sha != f.sha256 {
                return Err(Error::ResultsStore {
                    what: format!("{} of {task_id} does not match its manifest", f.path),
                    reason: format!(
                        "{size} bytes, sha256 {sha}; expected {} bytes, {}",
                        f.size, f.sha256
                    ),
                });
            }
            total += size;
        }
        Ok(total)
    }

    /// Deletes every object of a task, the manifest first (so a partly deleted task
    /// is no longer served). Missing objects are not an error.
    pub async fn delete_task(&self, task_id: &str) -> Result<()> {
        if !crate::task::is_valid_task_id(task_id) {
            return Err(Error::invalid("task_id", "not a task id"));
        }
        match self.store.delete(&self.object(task_id, MANIFEST)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.err(format!("cannot delete the manifest of {task_id}"), e)),
        }
        let prefix = self.task_path(task_id);
        let objects: Vec<_> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .try_collect()
            .await
            .map_err(|e| self.err(format!("cannot list the objects of {task_id}"), e))?;
        for location in objects {
            match self.store.delete(&location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.err(format!("cannot delete {location}"), e)),
            }
        }
        Ok(())
    }

    /// Deletes one object of a task (`rel` as in the manifest). For repair tools and
    /// tests (a half upload is a task without `manifest.json`).
    pub async fn delete_object(&self, task_id: &str, rel: &str) -> Result<()> {
        match self.store.delete(&self.object(task_id, rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(format!("cannot delete {rel} of {task_id}"), e)),
        }
    }

    /// Writes one object of a task (`rel` as in the manifest). For repair tools and
    /// tests; uploads go through [`ResultsStore::upload_task`].
    pub async fn put_object(&self, task_id: &str, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.object(task_id, rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| self.err(format!("cannot write {rel} of {task_id}"), e))
    }

    /// The object names under a task's prefix (tests and operators' checks).
    pub async fn list_task(&self, task_id: &str) -> Result<Vec<String>> {
        let prefix = self.task_path(task_id);
        let mut names: Vec<String> = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| {
                m.location
                    .prefix_match(&prefix)
                    .map(|parts| {
                        parts
                            .map(|p| p.as_ref().to_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_default()
            })
            .try_collect()
            .await
            .map_err(|e| self.err(format!("cannot list the objects of {task_id}"), e))?;
        names.sort();
        Ok(names)
    }

    /// Readiness: one cheap request, a listing under a prefix that holds nothing
    /// (`{prefix}/.ready-probe/`). An empty answer proves the bucket exists and the
    /// credentials work; a missing bucket or refused credentials is an error (a HEAD
    /// would answer 404 for a missing bucket too, and look ready).
    pub async fn check(&self) -> Result<()> {
        let probe = self.prefix.clone().join(".ready-probe");
        let mut listing = self.store.list(Some(&probe));
        match listing.try_next().await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.err("the results store does not answer", e)),
        }
    }
}

/// Every regular file under `root` as (relative path with `/`, full path), sorted; an
/// absent root is empty.
fn walk(root: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root.to_path_buf())];
    while let Some((rel, dir)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push((child, entry.path()));
            } else if kind.is_file() {
                out.push((child, entry.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Total size of the regular files under `root` (0 when absent).
#[cfg(feature = "service")]
pub(crate) fn dir_size(root: &Path) -> u64 {
    walk(root)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}
