//! Streams a byte range of a blob to one client, either from the store or from
//! the temp file of a download in progress, as the bytes arrive.
//!
//! While a download runs, the last byte is held back until the digest checks
//! out: a client can never receive a complete, wrong blob; on failure its
//! connection is cut and the engine retries.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use crate::fetch::{BlobState, FetchError};

const CHUNK: usize = 512 * 1024;

pub struct BlobStream {
    file: Option<tokio::fs::File>,
    /// Reads are sequential: one seek to the range start is enough.
    seeked: bool,
    /// The store path, for when the temp file has been renamed before we opened it.
    final_path: PathBuf,
    pos: u64,
    end: u64,
    /// Present while the blob is still downloading.
    progress: Option<watch::Receiver<BlobState>>,
}

impl BlobStream {
    /// A complete blob already in the store.
    pub fn complete(
        file: tokio::fs::File,
        final_path: PathBuf,
        start: u64,
        end: u64,
    ) -> BlobStream {
        BlobStream {
            file: Some(file),
            seeked: false,
            final_path,
            pos: start,
            end,
            progress: None,
        }
    }

    /// A blob being downloaded.
    pub fn growing(
        progress: watch::Receiver<BlobState>,
        final_path: PathBuf,
        start: u64,
        end: u64,
    ) -> BlobStream {
        BlobStream {
            file: None,
            seeked: false,
            final_path,
            pos: start,
            end,
            progress: Some(progress),
        }
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
            self.file = Some(self.open().await?);
        }
        let Some(file) = self.file.as_mut() else {
            return Err(std::io::Error::other("blob file not open"));
        };
        let want = (readable - self.pos).min(CHUNK as u64) as usize;
        if !self.seeked {
            file.seek(SeekFrom::Start(self.pos)).await?;
            self.seeked = true;
        }
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            let n = file.read(&mut buf[filled..]).await?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "blob file shorter than expected",
                ));
            }
            filled += n;
        }
        self.pos += want as u64;
        Ok(Some(buf.freeze()))
    }

    /// Waits until there is something past `pos` to read; returns how far we may read.
    async fn readable_end(&mut self) -> std::io::Result<u64> {
        loop {
            let Some(rx) = self.progress.as_mut() else {
                return Ok(self.end);
            };
            let state = rx.borrow_and_update().clone();
            let limit = match state {
                BlobState::Done => None,
                BlobState::Failed(e) => return Err(failed(&e)),
                BlobState::Queued => Some(0),
                // Hold back the final byte until the digest is verified.
                BlobState::Downloading {
                    written,
                    total,
                    temp,
                } => {
                    if self.file.is_none() && written > 0 {
                        self.file = open_either(&temp, &self.final_path).await;
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
            if rx.changed().await.is_err() {
                // The downloader is gone; its last word decides.
                let verdict = match &*rx.borrow() {
                    BlobState::Done => Ok(self.end),
                    BlobState::Failed(e) => Err(failed(e)),
                    _ => Err(std::io::Error::other("download ended without a result")),
                };
                self.progress = None;
                return verdict;
            }
        }
    }

    async fn open(&self) -> std::io::Result<tokio::fs::File> {
        tokio::fs::File::open(&self.final_path).await
    }
}

/// The temp file while it exists; the store path once it has been renamed.
async fn open_either(temp: &PathBuf, final_path: &PathBuf) -> Option<tokio::fs::File> {
    match tokio::fs::File::open(temp).await {
        Ok(f) => Some(f),
        Err(_) => tokio::fs::File::open(final_path).await.ok(),
    }
}

fn failed(e: &Arc<FetchError>) -> std::io::Error {
    std::io::Error::other(format!("upstream download failed: {e}"))
}
