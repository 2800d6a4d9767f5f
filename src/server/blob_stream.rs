//! Streams a byte range of a blob being downloaded to one client, from the
//! download's temp file (or the store, once it is renamed there), as the
//! bytes arrive. A complete blob goes out as `MappedBody`.
//!
//! While a download runs, the last byte is held back until the digest checks
//! out: a client can never receive a complete, wrong blob; on failure its
//! connection is cut and the engine retries.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;

use crate::fetch::{BlobState, FetchError, Fetcher, Interest};
use crate::reference::Digest;

use super::mapped_body;

pub struct BlobStream {
    file: Option<Arc<std::fs::File>>,
    /// Opens the download's file (the cache owns the paths).
    source: Option<(Arc<Fetcher>, Digest)>,
    pos: u64,
    end: u64,
    /// Present while the blob is still downloading.
    progress: Option<watch::Receiver<BlobState>>,
    /// The client's interest, held as long as the response (`fetch::prefetch`).
    _interest: Option<Interest>,
}

impl BlobStream {
    /// A blob being downloaded. The temp file only grows (a restarted
    /// download checks and skips what it already has), so a byte count seen
    /// once stays readable.
    pub fn growing(
        fetcher: Arc<Fetcher>,
        digest: Digest,
        progress: watch::Receiver<BlobState>,
        start: u64,
        end: u64,
    ) -> BlobStream {
        BlobStream {
            file: None,
            source: Some((fetcher, digest)),
            pos: start,
            end,
            progress: Some(progress),
            _interest: None,
        }
    }

    /// A download whose file is already open (tests: no fetcher).
    #[cfg(test)]
    pub(super) fn growing_file(
        file: std::fs::File,
        progress: watch::Receiver<BlobState>,
        end: u64,
    ) -> BlobStream {
        BlobStream {
            file: Some(Arc::new(file)),
            source: None,
            pos: 0,
            end,
            progress: Some(progress),
            _interest: None,
        }
    }

    /// Holds a client's interest in the blob until the stream is dropped.
    pub fn with_interest(mut self, interest: Option<Interest>) -> BlobStream {
        self._interest = interest;
        self
    }

    pub fn into_stream(
        self,
    ) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            match s.next_chunk().await {
                Ok(Some(b)) => Some((Ok(b), s)),
                Ok(None) => None,
                Err(e) => {
                    s.pos = s.end;
                    Some((Err(e), s))
                }
            }
        })
    }

    async fn next_chunk(&mut self) -> std::io::Result<Option<Bytes>> {
        if self.pos >= self.end {
            return Ok(None);
        }
        let readable = self.readable_end().await?;
        if self.file.is_none() {
            match self.open(None).await {
                Ok(f) => self.file = Some(Arc::new(f)),
                Err(e) => return Err(self.explain(e).await),
            }
        }
        let Some(file) = self.file.as_ref() else {
            return Err(std::io::Error::other("blob file not open"));
        };
        // Mapped windows, as for a complete blob: what was written is in
        // the page cache, and the temp file only grows.
        let want = (readable - self.pos).min(mapped_body::WINDOW);
        let bytes = mapped_body::window(file, self.pos, want).await?;
        if bytes.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "blob file shorter than expected",
            ));
        }
        self.pos += bytes.len() as u64;
        Ok(Some(bytes))
    }

    /// Waits until there is something past `pos` to read; returns how far we may read.
    async fn readable_end(&mut self) -> std::io::Result<u64> {
        loop {
            let state = match self.progress.as_mut() {
                Some(rx) => rx.borrow_and_update().clone(),
                None => return Ok(self.end),
            };
            let limit = match state {
                BlobState::Done => None,
                // Every byte is in and matches the digest: the rest may go
                // (from the temp file, or the store once it is moved there).
                BlobState::Verified { temp, .. } => {
                    if self.file.is_none() {
                        match self.open(Some(temp)).await {
                            Ok(f) => self.file = Some(Arc::new(f)),
                            Err(e) => return Err(self.explain(e).await),
                        }
                    }
                    None
                }
                BlobState::Failed(e) => return Err(failed(&e)),
                BlobState::Queued => Some(0),
                // Hold back the final byte until the digest is verified.
                BlobState::Downloading {
                    written,
                    total,
                    temp,
                } => {
                    if self.file.is_none() && written > 0 {
                        self.file = self.open(Some(temp)).await.ok().map(Arc::new);
                    }
                    Some(written.min(total.map_or(u64::MAX, |t| t.saturating_sub(1))))
                }
            };
            match limit {
                None => {
                    self.progress = None;
                    return Ok(self.end);
                }
                Some(l) if l > self.pos => return Ok(l.min(self.end)),
                Some(_) => {}
            }
            let Some(rx) = self.progress.as_mut() else {
                return Ok(self.end);
            };
            if rx.changed().await.is_err() {
                // The downloader is gone; its last word decides.
                let verdict = match &*rx.borrow() {
                    BlobState::Done | BlobState::Verified { .. } => Ok(self.end),
                    BlobState::Failed(e) => Err(failed(e)),
                    _ => Err(std::io::Error::other("download ended without a result")),
                };
                self.progress = None;
                return verdict;
            }
        }
    }

    /// A file gone missing mid-download: the download's own failure when
    /// that is what removed it (so the log names the cause), else `e`.
    async fn explain(&mut self, e: std::io::Error) -> std::io::Error {
        let Some(rx) = self.progress.as_mut() else {
            return e;
        };
        loop {
            if let BlobState::Failed(f) = &*rx.borrow_and_update() {
                return failed(f);
            }
            if matches!(&*rx.borrow(), BlobState::Done) || rx.changed().await.is_err() {
                return e;
            }
        }
    }

    /// The download's temp file while it exists, else the stored blob.
    async fn open(&self, temp: Option<std::path::PathBuf>) -> std::io::Result<std::fs::File> {
        let Some((fetcher, digest)) = &self.source else {
            return Err(std::io::Error::other("blob file not open"));
        };
        let opened = match temp {
            Some(temp) => fetcher.open_download(temp, digest).await,
            None => match fetcher.open_blob(digest).await {
                Ok(Some((file, _))) => Ok(file),
                Ok(None) => Err(FetchError::Internal(format!("blob {digest} vanished"))),
                Err(e) => Err(e),
            },
        };
        opened.map_err(|e| std::io::Error::other(e.to_string()))
    }
}

/// Cuts the client off; the cause goes to the log as an error (a full disk
/// is not a client that left).
fn failed(e: &Arc<FetchError>) -> std::io::Error {
    tracing::error!("blob download failed, client cut off: {e}");
    std::io::Error::other(format!("upstream download failed: {e}"))
}
