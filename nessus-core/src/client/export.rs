//! Exports: request, bounded status polling, and streamed download with a size cap.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{
    NessusClient,
    request::{Call, transport_error},
};
use crate::{
    error::{Error, Result},
    models::{Chapter, ExportFile, ExportStatus, FileId},
    scanner::{ExportFormat, ScanId},
};

/// What to export.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Format.
    pub format: ExportFormat,
    /// Chapters for HTML (defaults to all of them; without any Nessus renders only a
    /// cover page).
    pub chapters: Vec<Chapter>,
    /// Export this run instead of the latest.
    pub history_id: Option<u64>,
}

impl ExportOptions {
    /// Export the latest run in `format` (HTML with every chapter).
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            chapters: if format == ExportFormat::Html {
                Chapter::ALL.to_vec()
            } else {
                Vec::new()
            },
            history_id: None,
        }
    }
}

impl NessusClient {
    /// `POST /scans/{id}/export`. Safe to repeat (it only prepares a file), so retried.
    pub async fn export_request(&self, id: ScanId, options: &ExportOptions) -> Result<ExportFile> {
        let mut body = json!({"format": options.format.as_str()});
        if !options.chapters.is_empty() {
            let chapters: Vec<&str> = options.chapters.iter().map(|c| c.as_str()).collect();
            body["chapters"] = Value::String(chapters.join(";"));
        }
        let mut call = Call::post(format!("/scans/{id}/export"), body).idempotent();
        if let Some(h) = options.history_id {
            call = call.query("history_id", h);
        }
        self.json(call).await
    }

    /// `GET /scans/{id}/export/{file}/status`.
    pub async fn export_status(&self, id: ScanId, file: &FileId) -> Result<ExportStatus> {
        self.json(Call::get(format!("/scans/{id}/export/{file}/status")))
            .await
    }

    /// Polls the export until it is ready, for at most `ExportPolling::timeout`. Small
    /// exports are ready within a second, so polling starts at 250 ms and doubles up to
    /// `ExportPolling::interval`.
    pub async fn wait_for_export(&self, id: ScanId, file: &FileId) -> Result<()> {
        let polling = self.inner.export;
        let started = Instant::now();
        let mut delay = polling.interval.min(Duration::from_millis(250));
        loop {
            match self.export_status(id, file).await {
                Ok(ExportStatus::Ready) => return Ok(()),
                Ok(ExportStatus::Error) => {
                    return Err(Error::ExportFailed {
                        scan_id: id.0,
                        file: file.to_string(),
                        reason: "Nessus reported status \"error\"".into(),
                    });
                }
                Ok(_) => {}
                Err(Error::Api {
                    status: 404,
                    message,
                    ..
                }) => {
                    return Err(Error::ExportFailed {
                        scan_id: id.0,
                        file: file.to_string(),
                        reason: message,
                    });
                }
                Err(e) => return Err(e),
            }
            if started.elapsed() + delay > polling.timeout {
                return Err(Error::ExportTimeout {
                    scan_id: id.0,
                    file: file.to_string(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(polling.interval);
        }
    }

    /// Streams `GET /scans/{id}/export/{file}/download` into `out`, failing with
    /// `ExportTooLarge` once more than `size_cap` bytes arrive. Returns the byte count.
    /// Not retried here (the writer may hold a partial body); [`Self::export_to_file`]
    /// retries whole downloads.
    pub async fn export_download<W>(
        &self,
        id: ScanId,
        file: &FileId,
        out: &mut W,
        size_cap: u64,
    ) -> Result<u64>
    where
        W: AsyncWrite + Unpin + Send,
    {
        let call = Call::get(format!("/scans/{id}/export/{file}/download"))
            .timeout(self.inner.export.timeout.max(Duration::from_secs(60)));
        let endpoint = call.endpoint();
        let mut resp = self.send(&call).await?;
        if let Some(len) = resp.content_length()
            && len > size_cap
        {
            return Err(Error::ExportTooLarge { limit: size_cap });
        }
        let mut written = 0u64;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| transport_error(&endpoint, e))?
        {
            written += chunk.len() as u64;
            if written > size_cap {
                return Err(Error::ExportTooLarge { limit: size_cap });
            }
            out.write_all(&chunk).await.map_err(writer_error)?;
        }
        out.flush().await.map_err(writer_error)?;
        Ok(written)
    }

    /// Requests an export, waits for it, and downloads it to `path` (replaced
    /// atomically: written to `path.part` then renamed). A broken download is retried
    /// from the start per the retry policy; the partial file is removed on failure.
    pub async fn export_to_file(
        &self,
        id: ScanId,
        options: &ExportOptions,
        path: &Path,
        size_cap: u64,
    ) -> Result<u64> {
        let export = self.export_request(id, options).await?;
        self.wait_for_export(id, &export.file).await?;
        let mut part = path.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let mut retry = 0;
        loop {
            let result = self.download_once(id, &export.file, &part, size_cap).await;
            match result {
                Ok(n) => {
                    tokio::fs::rename(&part, path)
                        .await
                        .map_err(|source| Error::Io {
                            action: "moving the export into place at",
                            path: path.to_owned(),
                            source,
                        })?;
                    return Ok(n);
                }
                Err(e) => {
                    let _ = tokio::fs::remove_file(&part).await;
                    let retryable = matches!(e, Error::Transport { .. });
                    match (retryable && retry < self.inner.retry.max_retries)
                        .then(|| self.inner.retry.delay(retry, None))
                        .flatten()
                    {
                        Some(d) => {
                            retry += 1;
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(e),
                    }
                }
            }
        }
    }

    async fn download_once(
        &self,
        id: ScanId,
        file: &FileId,
        part: &Path,
        size_cap: u64,
    ) -> Result<u64> {
        let io_err = |source| Error::Io {
            action: "writing export to",
            path: part.to_owned(),
            source,
        };
        let f = tokio::fs::File::create(part).await.map_err(io_err)?;
        let mut w = tokio::io::BufWriter::new(f);
        let n = self
            .export_download(id, file, &mut w, size_cap)
            .await
            .map_err(|e| match e {
                Error::Io { source, .. } => io_err(source),
                other => other,
            })?;
        w.into_inner().sync_all().await.map_err(io_err)?;
        Ok(n)
    }
}

fn writer_error(source: std::io::Error) -> Error {
    Error::Io {
        action: "writing export to",
        path: "the output writer".into(),
        source,
    }
}
