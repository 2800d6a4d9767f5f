//! Pull-through logic: joins the registry client and the cache.
//!
//! - Tags: fresh within the TTL -> cache, no request; older -> HEAD (free on
//!   Docker Hub), GET only when the digest moved; upstream down -> stale cache.
//! - Digests: cache, else GET; never stale.
//! - Blobs: one download per digest, in this process (an in-flight map whose
//!   watchers see the bytes arrive) and across processes (a file lock).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oci_spec::image::ImageManifest;
use tokio::sync::watch;

use crate::cache::{BlobLock, BlobWriter, Cache, CacheError, TagRecord};
use crate::oci::{Manifest, ManifestError, Platform, PlatformChoice, describe_platform};
use crate::reference::{Digest, Reference, Target};
use crate::registry::{RegistryClient, RegistryError, RetryPolicy};

mod referrers;
pub use referrers::{EMPTY_INDEX, Referrers, filter_by_artifact_type};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "{reference} has no image for platform {wanted} (it has: {available}); pick one with --platform"
    )]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("{0}")]
    Shared(Arc<FetchError>),
    #[error("internal error: {0}")]
    Internal(String),
}

impl FetchError {
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            FetchError::Registry(e) => Some(e),
            FetchError::Shared(e) => e.registry(),
            _ => None,
        }
    }
}

/// Where a manifest answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Served from the cache without asking upstream.
    Cached,
    /// Upstream confirmed the cached digest with a HEAD.
    Revalidated,
    /// Fetched from upstream with a GET.
    Fetched,
    /// Upstream failed; the cached copy was served anyway.
    Stale,
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Cached => "hit",
            Freshness::Revalidated => "revalidated",
            Freshness::Fetched => "miss",
            Freshness::Stale => "stale",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolvedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
    pub freshness: Freshness,
}

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

/// One image of a pull: its manifest and the platform it was picked for.
#[derive(Debug)]
pub struct ResolvedImage {
    pub platform: Option<String>,
    pub digest: Digest,
    pub manifest: ImageManifest,
}

/// A reference resolved to its top manifest and the image manifests to fetch.
#[derive(Debug)]
pub struct ResolvedPull {
    pub top: ResolvedManifest,
    pub images: Vec<ResolvedImage>,
}

impl ResolvedPull {
    /// Every config and layer blob, each once, with its size.
    pub fn blobs(&self) -> Vec<(Digest, u64)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for img in &self.images {
            let descs = std::iter::once(img.manifest.config()).chain(img.manifest.layers());
            for d in descs {
                if let Ok(digest) = d.digest().to_string().parse::<Digest>()
                    && seen.insert(digest.clone())
                {
                    out.push((digest, d.size()));
                }
            }
        }
        out
    }
}

pub struct Fetcher {
    cache: Cache,
    client: RegistryClient,
    retry: RetryPolicy,
    inflight: Mutex<HashMap<Digest, watch::Receiver<BlobState>>>,
    /// Per-tag turns for upstream checks (`registry/repo:tag`).
    tag_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When each tag's last upstream check finished, and whether it failed.
    last_checks: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Fetcher {
    pub fn new(cache: Cache, client: RegistryClient, retry: RetryPolicy) -> Arc<Fetcher> {
        Arc::new(Fetcher {
            cache,
            client,
            retry,
            inflight: Mutex::default(),
            tag_locks: Mutex::default(),
            last_checks: Mutex::default(),
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// A tag's manifest, following the TTL / HEAD / stale rules.
    pub async fn manifest_by_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
    ) -> Result<ResolvedManifest, FetchError> {
        let arrived = Instant::now();
        if let Some(fresh) = self.cached_tag(registry, repo, tag, |r| r.is_fresh(ttl))? {
            return Ok(fresh);
        }
        // One upstream check per tag at a time: a burst of pulls of a stale or
        // cold tag costs one HEAD or GET, not one per client.
        let key = format!("{registry}/{repo}:{tag}");
        let lock = self.tag_lock(&key);
        let result = {
            let _turn = lock.lock().await;
            match self.check_finished_since(&key, arrived) {
                // The check of the client ahead of us answers for us too,
                // success or failure: no client waits out the same outage twice.
                Some(failed) => match self.cached_tag(registry, repo, tag, |_| true)? {
                    Some(m) if failed => Ok(ResolvedManifest {
                        freshness: Freshness::Stale,
                        ..m
                    }),
                    Some(m) => Ok(m),
                    None => self.check_tag(registry, repo, tag).await,
                },
                None => {
                    let result = self.check_tag(registry, repo, tag).await;
                    let failed = !matches!(&result, Ok(m) if m.freshness != Freshness::Stale);
                    self.note_check(&key, failed);
                    result
                }
            }
        };
        if let Ok(mut locks) = self.tag_locks.lock()
            && Arc::strong_count(&lock) == 2
        {
            locks.remove(&key);
        }
        result
    }

    /// Whether a check of `key` finished after `since`, and if so whether it failed.
    fn check_finished_since(&self, key: &str, since: Instant) -> Option<bool> {
        let checks = self.last_checks.lock().ok()?;
        checks
            .get(key)
            .filter(|(at, _)| *at >= since)
            .map(|(_, failed)| *failed)
    }

    fn note_check(&self, key: &str, failed: bool) {
        if let Ok(mut checks) = self.last_checks.lock() {
            checks.insert(key.to_string(), (Instant::now(), failed));
        }
    }

    /// The cached manifest of a tag, when its record passes `fresh`.
    fn cached_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        fresh: impl Fn(&TagRecord) -> bool,
    ) -> Result<Option<ResolvedManifest>, FetchError> {
        Ok(self
            .cached_tag_record(registry, repo, tag)?
            .filter(|(record, _)| fresh(record))
            .map(|(_, manifest)| manifest))
    }

    /// A tag's record and its manifest, when both are in the cache.
    fn cached_tag_record(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<Option<(TagRecord, ResolvedManifest)>, FetchError> {
        let Some(record) = self.cache.read_tag(registry, repo, tag)? else {
            return Ok(None);
        };
        Ok(self
            .cache
            .get_manifest(&record.digest)?
            .map(|(bytes, media_type)| {
                let manifest = ResolvedManifest {
                    digest: record.digest.clone(),
                    media_type,
                    bytes: Bytes::from(bytes),
                    freshness: Freshness::Cached,
                };
                (record, manifest)
            }))
    }

    fn tag_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.tag_locks.lock() {
            Ok(mut locks) => Arc::clone(locks.entry(key.to_string()).or_default()),
            // A poisoned table only loses the coalescing, not correctness.
            Err(_) => Arc::default(),
        }
    }

    /// Asks upstream about a tag that is stale or not cached: HEAD when we have
    /// it (free on Docker Hub), GET when it is new or moved, stale on outage.
    async fn check_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<ResolvedManifest, FetchError> {
        let Some((mut record, cached)) = self.cached_tag_record(registry, repo, tag)? else {
            return self.fetch_tag(registry, repo, tag).await;
        };
        let stale = |e: &RegistryError| {
            tracing::warn!(
                "{registry}/{repo}:{tag}: upstream failed ({e}); serving the cached manifest"
            );
            Ok(ResolvedManifest {
                freshness: Freshness::Stale,
                ..cached.clone()
            })
        };
        let target = Target::Tag(tag.to_string());
        match self.client.head_manifest(registry, repo, &target).await {
            Ok(Some(head)) if head.digest.as_ref() == Some(&record.digest) => {
                record.checked_at = crate::cache::now_secs();
                self.cache.write_tag(registry, repo, tag, &record)?;
                Ok(ResolvedManifest {
                    freshness: Freshness::Revalidated,
                    ..cached
                })
            }
            Ok(_) => match self.fetch_tag(registry, repo, tag).await {
                Err(FetchError::Registry(e)) if e.is_outage() => stale(&e),
                other => other,
            },
            Err(e) if e.is_outage() => stale(&e),
            Err(e) => Err(e.into()),
        }
    }

    async fn fetch_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<ResolvedManifest, FetchError> {
        let m = self
            .client
            .get_manifest(registry, repo, &Target::Tag(tag.to_string()))
            .await?;
        self.cache
            .put_manifest(&m.digest, &m.media_type, &m.bytes)?;
        let record = TagRecord::new(m.digest.clone(), m.media_type.clone());
        self.cache.write_tag(registry, repo, tag, &record)?;
        Ok(ResolvedManifest {
            digest: m.digest,
            media_type: m.media_type,
            bytes: m.bytes,
            freshness: Freshness::Fetched,
        })
    }

    /// A manifest by digest: from the cache, else one GET. Never stale.
    pub async fn manifest_by_digest(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<ResolvedManifest, FetchError> {
        if let Some((bytes, media_type)) = self.cache.get_manifest(digest)? {
            return Ok(ResolvedManifest {
                digest: digest.clone(),
                media_type,
                bytes: Bytes::from(bytes),
                freshness: Freshness::Cached,
            });
        }
        let m = self
            .client
            .get_manifest(registry, repo, &Target::Digest(digest.clone()))
            .await?;
        self.cache
            .put_manifest(&m.digest, &m.media_type, &m.bytes)?;
        Ok(ResolvedManifest {
            digest: m.digest,
            media_type: m.media_type,
            bytes: m.bytes,
            freshness: Freshness::Fetched,
        })
    }

    pub async fn manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
        ttl: Duration,
    ) -> Result<ResolvedManifest, FetchError> {
        match target {
            Target::Tag(t) => self.manifest_by_tag(registry, repo, t, ttl).await,
            Target::Digest(d) => self.manifest_by_digest(registry, repo, d).await,
        }
    }

    /// Resolves a reference to the image manifests a pull needs, fetching and
    /// caching the manifests on the way (the index and the chosen children).
    pub async fn resolve_pull(
        &self,
        reference: &Reference,
        choice: &PlatformChoice,
        ttl: Duration,
    ) -> Result<ResolvedPull, FetchError> {
        let (registry, repo) = (&reference.registry, &reference.repository);
        let top = self
            .manifest(registry, repo, &reference.target(), ttl)
            .await?;
        let images =
            match Manifest::parse(&top.media_type, &top.bytes)? {
                Manifest::Image(manifest) => vec![ResolvedImage {
                    platform: None,
                    digest: top.digest.clone(),
                    manifest: *manifest,
                }],
                Manifest::Index(index) => {
                    let chosen: Vec<_> = index
                        .manifests()
                        .iter()
                        .filter(|d| match choice {
                            PlatformChoice::All => true,
                            PlatformChoice::One(p) => p.matches(d),
                        })
                        // Attestation manifests carry platform unknown/unknown; skip them.
                        .filter(|d| {
                            d.platform()
                                .as_ref()
                                .is_none_or(|p| p.os().to_string() != "unknown")
                        })
                        .collect();
                    let wanted = match choice {
                        PlatformChoice::All => "any".to_string(),
                        PlatformChoice::One(p) => p.to_string(),
                    };
                    let chosen = match choice {
                        PlatformChoice::One(_) => chosen.into_iter().take(1).collect::<Vec<_>>(),
                        PlatformChoice::All => chosen,
                    };
                    if chosen.is_empty() {
                        let available: Vec<String> =
                            index.manifests().iter().map(describe_platform).collect();
                        return Err(FetchError::NoPlatform {
                            reference: reference.to_string(),
                            wanted,
                            available: available.join(", "),
                        });
                    }
                    let mut images = Vec::new();
                    for d in chosen {
                        let digest: Digest = d.digest().to_string().parse().map_err(|e| {
                            ManifestError::Malformed {
                                media_type: top.media_type.clone(),
                                message: format!("index entry: {e}"),
                            }
                        })?;
                        let child = self.manifest_by_digest(registry, repo, &digest).await?;
                        match Manifest::parse(&child.media_type, &child.bytes)? {
                            Manifest::Image(manifest) => images.push(ResolvedImage {
                                platform: Some(describe_platform(d)),
                                digest,
                                manifest: *manifest,
                            }),
                            Manifest::Index(_) => {
                                return Err(ManifestError::Malformed {
                                    media_type: child.media_type,
                                    message: "nested indexes are not supported".into(),
                                }
                                .into());
                            }
                        }
                    }
                    images
                }
            };
        Ok(ResolvedPull { top, images })
    }

    /// Makes sure a blob is cached: `Cached` at once, or the watch of a
    /// download that was already running or is started now.
    pub fn blob(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
    ) -> BlobFetch {
        if self.cache.has_blob(digest) {
            return BlobFetch::Cached;
        }
        let Ok(mut inflight) = self.inflight.lock() else {
            return BlobFetch::InFlight(failed_watch("in-flight table poisoned"));
        };
        if let Some(rx) = inflight.get(digest) {
            return BlobFetch::InFlight(rx.clone());
        }
        let (tx, rx) = watch::channel(BlobState::Queued);
        inflight.insert(digest.clone(), rx.clone());
        drop(inflight);
        // A task of its own: the download goes on even if the client that
        // asked first goes away, because others may be waiting on it.
        let this = Arc::clone(self);
        let (registry, repo, digest) = (registry.to_string(), repo.to_string(), digest.clone());
        tokio::spawn(async move {
            let result = this.download(&registry, &repo, &digest, size, &tx).await;
            if let Ok(mut map) = this.inflight.lock() {
                map.remove(&digest);
            }
            let _ = tx.send(match result {
                Ok(()) => BlobState::Done,
                Err(e) => BlobState::Failed(Arc::new(e)),
            });
        });
        BlobFetch::InFlight(rx)
    }

    async fn download(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
        tx: &watch::Sender<BlobState>,
    ) -> Result<(), FetchError> {
        let (cache, d) = (self.cache.clone(), digest.clone());
        let _lock = tokio::task::spawn_blocking(move || BlobLock::acquire(&cache, &d))
            .await
            .map_err(|e| FetchError::Internal(e.to_string()))??;
        // Another process may have finished it while we waited for the lock.
        if self.cache.has_blob(digest) {
            return Ok(());
        }
        let mut writer = BlobWriter::create(&self.cache, digest.clone(), size)?;
        let temp = writer.temp_path().to_path_buf();
        let mut total = size;
        let mut failures = 0;
        let source = BlobSource {
            registry,
            repo,
            digest,
        };
        loop {
            let before = writer.written();
            match self
                .download_once(&source, &mut total, &mut writer, &temp, tx)
                .await
            {
                Ok(()) => break,
                Err(e)
                    if e.registry().is_some_and(RegistryError::is_transient)
                        && failures < self.retry.retries =>
                {
                    // Progress earns the download a fresh set of retries.
                    failures = if writer.written() > before {
                        0
                    } else {
                        failures + 1
                    };
                    let delay = self.retry.delay(failures, None);
                    tracing::warn!(
                        "blob {digest}: {e}; resuming at byte {} in {:.1}s",
                        writer.written(),
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
        tokio::task::spawn_blocking(move || writer.commit())
            .await
            .map_err(|e| FetchError::Internal(e.to_string()))??;
        Ok(())
    }

    async fn download_once(
        &self,
        source: &BlobSource<'_>,
        total: &mut Option<u64>,
        writer: &mut BlobWriter,
        temp: &std::path::Path,
        tx: &watch::Sender<BlobState>,
    ) -> Result<(), FetchError> {
        let offset = writer.written();
        let mut blob = self
            .client
            .get_blob(source.registry, source.repo, source.digest, offset)
            .await?;
        if offset > 0 && !blob.resumed {
            writer.restart()?;
        }
        if total.is_none() && !blob.resumed {
            *total = blob.response.content_length();
        }
        let size = *total;
        tx.send_replace(BlobState::Downloading {
            temp: temp.to_path_buf(),
            written: writer.written(),
            total: size,
        });
        while let Some(chunk) = blob
            .response
            .chunk()
            .await
            .map_err(|e| RegistryError::from_reqwest(&blob.url, &e))?
        {
            // A disk write can block: let the runtime move other work off this thread.
            tokio::task::block_in_place(|| writer.write(&chunk))?;
            tx.send_replace(BlobState::Downloading {
                temp: temp.to_path_buf(),
                written: writer.written(),
                total: size,
            });
        }
        if let Some(size) = size
            && writer.written() < size
        {
            // Cut short without a transport error: resumable like one.
            return Err(RegistryError::Body {
                url: blob.url,
                reason: format!("ended after {} of {size} bytes", writer.written()),
            }
            .into());
        }
        Ok(())
    }
}

/// Where a blob comes from.
struct BlobSource<'a> {
    registry: &'a str,
    repo: &'a str,
    digest: &'a Digest,
}

fn failed_watch(message: &str) -> watch::Receiver<BlobState> {
    let (_tx, rx) = watch::channel(BlobState::Failed(Arc::new(FetchError::Internal(
        message.to_string(),
    ))));
    rx
}

/// The platform a pull picks when not told: the host's.
pub fn default_choice(platform: Option<Platform>, all: bool) -> PlatformChoice {
    if all {
        PlatformChoice::All
    } else {
        PlatformChoice::One(platform.unwrap_or_else(Platform::host))
    }
}
