//! Blobs: one download per digest, in this process (an in-flight map whose
//! watchers see the bytes arrive) and across processes (a file lock).

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::watch;

use crate::cache::{BackgroundWriter, BlobWriter, CacheError, LockKey, StoredBlob};
use crate::reference::Digest;
use crate::registry::{RegistryError, Upstream};

use super::members::Content;
use super::{CacheStatus, FetchError, Fetcher};

/// Progress of one blob download, as its watchers see it.
#[derive(Debug, Clone)]
pub enum BlobState {
    /// Waiting for another process that is downloading the same blob.
    Queued,
    /// Bytes arriving in `temp`; `written` of them so far, of `total` when known.
    Downloading {
        temp: PathBuf,
        written: u64,
        total: Option<u64>,
    },
    /// All `total` bytes are in `temp` and match the digest; being made
    /// durable and moved into the store. A client may have its last byte now.
    Verified {
        temp: PathBuf,
        total: u64,
    },
    /// Verified and in the store.
    Done,
    Failed(Arc<FetchError>),
}

/// The answer to "make sure this blob is cached".
pub enum BlobFetch {
    Cached,
    /// A download (ours or a concurrent one) is under way.
    InFlight(watch::Receiver<BlobState>),
}

/// A download under way, as the in-flight table keeps it.
pub(super) struct Inflight {
    pub(super) rx: watch::Receiver<BlobState>,
    /// The `registry/repo` it goes through.
    pub(super) through: String,
    /// Whether a client (not only a prefetch) waits on it: then it is never abandoned.
    client: bool,
    /// Stops a prefetch's download (`Fetcher::abandon`).
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Who asks for a blob download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Asker {
    /// A client of dpx, or a command: it waits for the bytes.
    Client,
    /// A prefetch (`fetch::prefetch`): its download may be abandoned while
    /// no client has joined it.
    Prefetch,
}

/// What to send a client that asked for a blob.
pub enum BlobAnswer {
    /// In the store: opened, so a purge meanwhile cannot take the bytes
    /// away from under the client, with its length.
    Complete { file: std::fs::File, len: u64 },
    /// In the store and small: its bytes, read whole (see `cache::hot_blobs`).
    InMemory(bytes::Bytes),
    /// Being downloaded, its size known and its first bytes stored: follow
    /// `progress` as the bytes arrive.
    Growing {
        total: u64,
        progress: watch::Receiver<BlobState>,
    },
    /// A HEAD of a blob not cached: the upstream's word on its size, no download.
    SizeOnly(u64),
}

impl BlobAnswer {
    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        match self {
            BlobAnswer::Complete { len, .. } => *len,
            BlobAnswer::InMemory(bytes) => bytes.len() as u64,
            BlobAnswer::Growing { total, .. } => *total,
            BlobAnswer::SizeOnly(size) => *size,
        }
    }

    pub fn cache_status(&self) -> CacheStatus {
        match self {
            BlobAnswer::Complete { .. } | BlobAnswer::InMemory(_) => CacheStatus::Hit,
            BlobAnswer::Growing { .. } | BlobAnswer::SizeOnly(_) => CacheStatus::Miss,
        }
    }
}

/// Waits for a download to finish.
pub async fn wait_blob(mut rx: watch::Receiver<BlobState>) -> Result<(), FetchError> {
    loop {
        match &*rx.borrow_and_update() {
            BlobState::Done => return Ok(()),
            BlobState::Failed(e) => return Err(FetchError::Shared(e.clone())),
            _ => {}
        }
        if rx.changed().await.is_err() {
            // The sender is gone without a verdict: the task died.
            return match &*rx.borrow() {
                BlobState::Done => Ok(()),
                BlobState::Failed(e) => Err(FetchError::Shared(e.clone())),
                _ => Err(FetchError::Internal(
                    "download task ended without a result".into(),
                )),
            };
        }
    }
}

impl Fetcher {
    /// Notes a use of a blob (in memory; see `cache::usage`).
    fn record_blob_use(&self, digest: &Digest) {
        self.cache.record_blob_use(digest);
    }

    /// A client's request of a blob under `registry/repo`: the stored blob
    /// (if the repository may see it), or for a HEAD the upstream's size,
    /// else a download to follow, started or joined.
    pub async fn serve_blob(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        digest: &Digest,
        head: bool,
    ) -> Result<BlobAnswer, FetchError> {
        // A small blob read lately: from memory, no blocking thread.
        let stored = match self.cache.hot_blob(digest) {
            Some(bytes) => Some(StoredBlob::Small(bytes)),
            None => {
                let d = digest.clone();
                self.on_disk(move |c| c.open_stored_blob(&d)).await?
            }
        };
        if let Some(stored) = stored {
            self.require_member(registry, repo, digest, Content::Blob)
                .await?;
            self.record_blob_use(digest);
            return Ok(match stored {
                StoredBlob::Small(bytes) => BlobAnswer::InMemory(bytes),
                StoredBlob::File(file, len) => BlobAnswer::Complete { file, len },
            });
        }
        // A HEAD costs no download: the upstream's HEAD answers it.
        if head {
            let size = self.blob_size(registry, repo, digest).await?;
            return Ok(BlobAnswer::SizeOnly(size));
        }
        match self.blob(registry, repo, digest, None).await {
            // Stored between our look and the download's.
            BlobFetch::Cached => {
                self.require_member(registry, repo, digest, Content::Blob)
                    .await?;
                match self.open_blob(digest).await? {
                    Some((file, len)) => Ok(BlobAnswer::Complete { file, len }),
                    None => Err(FetchError::Internal(format!(
                        "blob {digest} vanished from the cache"
                    ))),
                }
            }
            BlobFetch::InFlight(progress) => {
                let total = self.wait_for_size(progress.clone(), digest).await?;
                Ok(BlobAnswer::Growing { total, progress })
            }
        }
    }

    /// Waits until a download knows its size (from the manifest or the
    /// upstream) and has stored its first bytes, or has finished: a download
    /// that cannot store anything (the disk is full) is an error answer, not
    /// a 200 whose body stops at byte 0.
    async fn wait_for_size(
        &self,
        mut rx: watch::Receiver<BlobState>,
        digest: &Digest,
    ) -> Result<u64, FetchError> {
        loop {
            match &*rx.borrow_and_update() {
                BlobState::Downloading {
                    total: Some(t),
                    written,
                    ..
                } if *written > 0 => return Ok(*t),
                BlobState::Verified { total, .. } => return Ok(*total),
                BlobState::Failed(e) => return Err(FetchError::Shared(e.clone())),
                BlobState::Done => break,
                _ => {}
            }
            if rx.changed().await.is_err() {
                break;
            }
        }
        wait_blob(rx).await?;
        match self.open_blob(digest).await? {
            Some((_, len)) => Ok(len),
            None => Err(FetchError::Internal("blob vanished after download".into())),
        }
    }

    /// A stored blob, opened, with its length; `None` when it is not cached.
    pub async fn open_blob(
        &self,
        digest: &Digest,
    ) -> Result<Option<(std::fs::File, u64)>, FetchError> {
        let d = digest.clone();
        self.on_disk(move |c| c.open_blob(&d)).await
    }

    /// A blob being downloaded into `temp` (or already moved into the store).
    pub async fn open_download(
        &self,
        temp: PathBuf,
        digest: &Digest,
    ) -> Result<std::fs::File, FetchError> {
        let d = digest.clone();
        self.on_disk(move |c| c.open_download(&temp, &d)).await
    }

    /// A blob's size as a manifest seen by this process gave it.
    pub(super) fn known_size(&self, digest: &Digest) -> Option<u64> {
        self.sizes.lock().ok()?.get(digest).copied()
    }

    /// A blob's size from the upstream, without downloading it (for a HEAD
    /// request).
    async fn blob_size(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<u64, FetchError> {
        let Some(head) = self.client.head_blob(registry, repo, digest).await? else {
            return Err(RegistryError::NotFound {
                what: format!("blob {digest}"),
                url: self
                    .client
                    .api_url(registry, repo, "blobs", &digest.to_string()),
            }
            .into());
        };
        let Some(size) = head.size else {
            return Err(FetchError::Internal(format!(
                "the upstream answered a HEAD of blob {digest} without a Content-Length"
            )));
        };
        if let Ok(mut sizes) = self.sizes.lock() {
            sizes.insert(digest.clone(), size);
        }
        self.link_best_effort(registry, repo, vec![digest.clone()])
            .await;
        Ok(size)
    }

    /// Makes sure a blob is cached: `Cached` at once, or the watch of a
    /// download that was already running or is started now.
    pub async fn blob(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> BlobFetch {
        self.blob_for(registry, repo, digest, size, Asker::Client)
            .await
    }

    /// `blob`, for a client or a prefetch: one download per digest whoever
    /// asks, joined by all.
    pub(super) async fn blob_for(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        asker: Asker,
    ) -> BlobFetch {
        let d = digest.clone();
        if let Ok(true) = self.on_disk(move |c| Ok(c.has_blob(&d))).await {
            self.cache.record_blob_use(digest);
            return BlobFetch::Cached;
        }
        let through = format!("{registry}/{repo}");
        let joined = {
            let Ok(mut inflight) = self.inflight.lock() else {
                return BlobFetch::InFlight(failed_watch("in-flight table poisoned"));
            };
            match inflight.get_mut(digest) {
                Some(running) => {
                    // Joined under the table's lock: `abandon` sees it.
                    running.client |= asker == Asker::Client;
                    Err((running.rx.clone(), running.through != through))
                }
                None => {
                    let (tx, rx) = watch::channel(BlobState::Queued);
                    let (stop, stopped) = match asker {
                        Asker::Prefetch => {
                            let (stop, stopped) = tokio::sync::oneshot::channel();
                            (Some(stop), Some(stopped))
                        }
                        Asker::Client => (None, None),
                    };
                    inflight.insert(
                        digest.clone(),
                        Inflight {
                            rx: rx.clone(),
                            through,
                            client: asker == Asker::Client,
                            stop,
                        },
                    );
                    Ok((tx, rx, stopped))
                }
            }
        };
        let (tx, rx, stopped) = match joined {
            Ok(started) => started,
            Err((rx, elsewhere)) => {
                // Joining a download through another repository needs this
                // one's membership, as a cached blob would.
                if elsewhere
                    && let Err(e) = self
                        .require_member(registry, repo, digest, Content::Blob)
                        .await
                {
                    let (_tx, failed) = watch::channel(BlobState::Failed(Arc::new(e)));
                    return BlobFetch::InFlight(failed);
                }
                return BlobFetch::InFlight(rx);
            }
        };
        // A task of its own: the download goes on even if the client that
        // asked first goes away, because others may be waiting on it.
        let this = Arc::clone(self);
        let tx = Arc::new(tx);
        let (registry, repo, digest) = (registry.to_string(), repo.to_string(), digest.clone());
        let ours = rx.clone();
        tokio::spawn(async move {
            let download = this.download(&registry, &repo, &digest, size, &tx);
            let result = match stopped {
                // Dropping the download removes its temp file and its lock.
                Some(stopped) => tokio::select! {
                    r = download => r,
                    Ok(()) = stopped => Err(FetchError::Abandoned {
                        digest: digest.to_string(),
                    }),
                },
                None => download.await,
            };
            if let Ok(mut map) = this.inflight.lock()
                && map.get(&digest).is_some_and(|d| d.rx.same_channel(&ours))
            {
                map.remove(&digest);
            }
            let _ = tx.send(match result {
                Ok(()) => BlobState::Done,
                Err(e) => BlobState::Failed(Arc::new(e)),
            });
        });
        BlobFetch::InFlight(rx)
    }

    pub(super) async fn download(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        tx: &Arc<watch::Sender<BlobState>>,
    ) -> Result<(), FetchError> {
        let doing = format!("downloading blob {digest}");
        let (lock, _) = self
            .process_turn(LockKey::Blob(digest.clone()), &doing)
            .await?;
        // Another process may have finished it while we waited for the lock,
        // maybe through another repository.
        let d = digest.clone();
        if self.on_disk(move |c| Ok(c.has_blob(&d))).await? {
            return self
                .require_member(registry, repo, digest, Content::Blob)
                .await;
        }
        // The size to hold the body to: the manifest's, else the upstream's
        // word; with neither, `max_blob_size` caps it.
        let size = match size.or_else(|| self.known_size(digest)) {
            Some(s) => Some(s),
            None => match self.client.head_blob(registry, repo, digest).await {
                Ok(head) => head.and_then(|h| h.size),
                Err(e) => {
                    tracing::debug!("blob {digest}: HEAD failed ({e}); the GET will tell");
                    None
                }
            },
        };
        let (d, limit) = (digest.clone(), self.limits.max_blob_size);
        let writer = self
            .on_disk(move |c| {
                let writer = BlobWriter::create(c, d, size)?.with_limit(limit);
                let mut lock = lock;
                lock.note_temp_file(writer.temp_path());
                Ok((writer, lock))
            })
            .await?;
        let (writer, _lock) = writer;
        let progress = Arc::clone(tx);
        let mut writer = BackgroundWriter::start(writer, move |n| {
            progress.send_modify(|state| {
                if let BlobState::Downloading { written, .. } = state {
                    *written = n;
                }
            });
        });
        let mut total = size;
        // Every try of this download on one upstream, resumes included,
        // spends one budget; a failing upstream hands the rest to the next
        // (same bytes: the digest names them).
        let mut route = self.client.route(registry)?;
        let mut retry = route.retry_policy().start();
        let source = BlobSource { repo, digest };
        loop {
            let upstream = route.upstream().clone();
            let result = self
                .download_once(&source, &upstream, &mut total, &mut writer, tx)
                .await;
            let Err(e) = result else {
                route.reached();
                break;
            };
            let Some(reg) = e.registry() else {
                return Err(e);
            };
            match retry.next_delay(reg) {
                Some(delay) => {
                    tracing::warn!(
                        "blob {digest}: {e}; resuming at byte {} in {:.1}s ({} of {} retries)",
                        writer.resume_offset().await?,
                        delay.as_secs_f64(),
                        retry.failures(),
                        route.retry_policy().retries,
                    );
                    tokio::time::sleep(delay).await;
                }
                None if route.fall_over(reg) => {
                    retry = route.retry_policy().start();
                }
                None => return Err(e),
            }
        }
        // The client's last byte waits for the digest, not for the fsync
        // and rename that make the blob visible in the store.
        let verified = Arc::clone(tx);
        let total = writer.resume_offset().await?;
        writer
            .commit(move |temp| {
                verified.send_replace(BlobState::Verified {
                    temp: temp.to_path_buf(),
                    total,
                });
            })
            .await?;
        self.link_best_effort(registry, repo, vec![digest.clone()])
            .await;
        Ok(())
    }

    pub(super) async fn download_once(
        &self,
        source: &BlobSource<'_>,
        upstream: &Upstream,
        total: &mut Option<u64>,
        writer: &mut BackgroundWriter,
        tx: &watch::Sender<BlobState>,
    ) -> Result<(), FetchError> {
        let offset = writer.resume_offset().await?;
        let mut blob = self
            .client
            .get_blob(upstream, source.repo, source.digest, offset)
            .await?;
        if offset > 0 && !blob.resumed {
            // The body starts at 0: the writer checks and skips what it has.
            writer.restart().await?;
        }
        if total.is_none() && !blob.resumed {
            *total = blob.response.content_length();
            if let Some(n) = *total
                && n > self.limits.max_blob_size
            {
                return Err(CacheError::TooLarge {
                    what: format!("blob {}", source.digest),
                    limit: self.limits.max_blob_size,
                    exact: false,
                }
                .into());
            }
        }
        let size = *total;
        // What readers may read never goes down, even while a restart replays.
        let readable = match &*tx.borrow() {
            BlobState::Downloading { written, .. } => offset.max(*written),
            _ => offset,
        };
        tx.send_replace(BlobState::Downloading {
            temp: writer.temp_path().to_path_buf(),
            written: readable,
            total: size,
        });
        while let Some(chunk) = blob.response.chunk().await? {
            self.metrics
                .upstream_bytes(crate::metrics::Body::Blob, chunk.len() as u64);
            writer.write(chunk).await?;
        }
        let got = writer.resume_offset().await?;
        if let Some(size) = size
            && got < size
        {
            // Cut short without a transport error: resumable like one.
            return Err(RegistryError::Body {
                url: blob.url,
                reason: format!("ended after {got} of {size} bytes"),
            }
            .into());
        }
        Ok(())
    }
}

/// Which blob of which repository (the upstream is the route's).
pub(super) struct BlobSource<'a> {
    repo: &'a str,
    digest: &'a Digest,
}

pub(super) fn failed_watch(message: &str) -> watch::Receiver<BlobState> {
    let (_tx, rx) = watch::channel(BlobState::Failed(Arc::new(FetchError::Internal(
        message.to_string(),
    ))));
    rx
}

impl Fetcher {
    /// Stops a prefetch's download that no client has joined: it leaves the
    /// table under its lock (a client asking later starts its own), and its
    /// task drops it. Returns whether it was stopped.
    pub(super) fn abandon(&self, digest: &Digest, rx: &watch::Receiver<BlobState>) -> bool {
        let Ok(mut inflight) = self.inflight.lock() else {
            return false;
        };
        let ours = inflight
            .get(digest)
            .is_some_and(|d| d.rx.same_channel(rx) && !d.client);
        if !ours {
            return false;
        }
        match inflight.remove(digest).and_then(|d| d.stop) {
            Some(stop) => stop.send(()).is_ok(),
            None => false,
        }
    }
}
