//! Manifests by digest (never stale, one GET however many ask), what each
//! names, and where an answer came from.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::cache::LockKey;
use crate::oci::Manifest;
use crate::reference::{Digest, Target};
use crate::registry::FetchedManifest;

use super::members::Content;
use super::quota::Answered;
use super::{CacheStatus, FetchError, Fetcher, Spare};

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
    /// The cached copy was served instead of the GET the tag needed, to
    /// save the pull quota.
    Spared(Spare),
}

impl Freshness {
    /// What the log line and the `X-Dpx-Cache` header say of it.
    pub fn cache_status(self) -> CacheStatus {
        match self {
            Freshness::Cached => CacheStatus::Hit,
            Freshness::Revalidated => CacheStatus::Revalidated,
            Freshness::Fetched => CacheStatus::Miss,
            Freshness::Stale | Freshness::Spared(_) => CacheStatus::Stale,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.cache_status().as_str()
    }

    /// Whether the cached copy was served without upstream's word that it is current.
    pub fn is_stale(self) -> bool {
        matches!(self, Freshness::Stale | Freshness::Spared(_))
    }

    /// Why a stale copy was served (the `X-Dpx-Stale` header), if it was.
    pub fn stale_reason(self) -> Option<&'static str> {
        match self {
            Freshness::Stale => Some("upstream-unavailable"),
            Freshness::Spared(spare) => Some(spare.as_str()),
            _ => None,
        }
    }

    fn answered(self) -> Answered {
        match self {
            Freshness::Cached => Answered::CacheHit,
            Freshness::Revalidated => Answered::Revalidated,
            Freshness::Fetched => Answered::Fetched,
            Freshness::Stale => Answered::StaleUpstreamFailed,
            Freshness::Spared(_) => Answered::StaleQuotaSaved,
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

/// Blob sizes remembered from manifests; beyond it the table starts over.
pub(super) const MAX_KNOWN_SIZES: usize = 100_000;

/// The digests and sizes one manifest names.
pub(super) type Named = Arc<[(Digest, u64)]>;

impl Fetcher {
    /// A manifest from the cache by digest.
    pub(super) async fn cached_manifest(
        &self,
        digest: &Digest,
    ) -> Result<Option<ResolvedManifest>, FetchError> {
        if let Some(m) = self.unwritten_manifest(digest) {
            return Ok(Some(m));
        }
        let d = digest.clone();
        let found = self.on_disk(move |c| c.get_manifest(&d)).await?;
        Ok(found.map(|(bytes, media_type)| ResolvedManifest {
            digest: digest.clone(),
            media_type,
            bytes: Bytes::from(bytes),
            freshness: Freshness::Cached,
        }))
    }

    /// Caches a manifest the upstream vouched for. With the disk full or
    /// read-only the answer is still good: unless the cache must hold it
    /// (`require_stored`), it is served and the failure is a warning.
    /// Returns whether it was stored.
    pub(super) async fn store_manifest(&self, m: &FetchedManifest) -> Result<bool, FetchError> {
        let (digest, media_type, bytes) = (m.digest.clone(), m.media_type.clone(), m.bytes.clone());
        match self
            .on_disk(move |c| c.put_manifest(&digest, &media_type, &bytes))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => self.stored_or_warn(e, format!("manifest {} not cached", m.digest)),
        }
    }

    /// After a tag record was written for `m`, read from the cache before:
    /// marks it used, or stores it again if a purge took it meanwhile, so the
    /// record never points at nothing (`Cache::keep_manifest_of_record`).
    pub(super) async fn restore_if_purged(&self, m: &ResolvedManifest) -> Result<(), FetchError> {
        let (digest, media_type, bytes) = (m.digest.clone(), m.media_type.clone(), m.bytes.clone());
        let kept = self
            .on_disk(move |c| c.keep_manifest_of_record(&digest, &media_type, &bytes))
            .await;
        match kept {
            Ok(()) => Ok(()),
            Err(e) => self
                .stored_or_warn(e, format!("manifest {} not cached", m.digest))
                .map(|_| ()),
        }
    }

    /// A manifest by digest: from the cache, else one GET however many
    /// clients and processes ask at once. Never stale. A cached manifest is
    /// only served under a repository it belongs to (`require_member`).
    pub async fn manifest_by_digest(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<ResolvedManifest, FetchError> {
        let m = self
            .manifest_by_digest_anywhere(registry, repo, digest)
            .await?;
        if m.freshness == Freshness::Cached {
            self.require_member(registry, repo, digest, Content::Manifest)
                .await?;
        }
        Ok(self.noted(registry, repo, m).await)
    }

    pub(super) async fn manifest_by_digest_anywhere(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<ResolvedManifest, FetchError> {
        if let Some(m) = self.cached_manifest(digest).await? {
            return Ok(m);
        }
        let key = LockKey::Manifest(digest.clone());
        // Boxed: the upstream path's state is large, and a future is copied
        // whole each time it moves; the cached path above stays small.
        Box::pin(self.in_turn(&key, async {
            // A client ahead of us in this process may have fetched it.
            if let Some(m) = self.cached_manifest(digest).await? {
                return Ok(m);
            }
            let doing = format!("fetching manifest {digest}");
            let (lock, waited) = self.process_turn(key.clone(), &doing).await?;
            if waited && let Some(m) = self.cached_manifest(digest).await? {
                return Ok(m);
            }
            let target = Target::Digest(digest.clone());
            let m = self.get_manifest_upstream(registry, repo, &target).await?;
            self.keep_manifest(registry, repo, None, &m).await?;
            // Written behind the answer: the turn is held until it is on disk.
            self.hold_until_written(&m.digest, lock);
            Ok(ResolvedManifest {
                digest: m.digest,
                media_type: m.media_type,
                bytes: m.bytes,
                freshness: Freshness::Fetched,
            })
        }))
        .await
    }

    /// Remembers the sizes of the blobs and manifests a manifest names, and
    /// links the manifest and all it names to the repository it was served
    /// through (no disk when this process already knows the links).
    pub(super) async fn noted(
        &self,
        registry: &str,
        repo: &str,
        m: ResolvedManifest,
    ) -> ResolvedManifest {
        self.quota.count(m.freshness.answered());
        self.cache.record_blob_use(&m.digest);
        // Served before through this repository, and its named sizes still
        // remembered: nothing to parse, link or look up blob by blob.
        if self.cache.whole_manifest_linked(registry, repo, &m.digest)
            && self
                .named
                .lock()
                .is_ok_and(|named| named.contains_key(&m.digest))
        {
            return m;
        }
        let named = self.named_by(&m);
        let members: Vec<Digest> = std::iter::once(m.digest.clone())
            .chain(named.iter().map(|(d, _)| d.clone()))
            .collect();
        if self.cache.links_known(registry, repo, &members)
            || self.link_best_effort(registry, repo, members).await
        {
            self.cache
                .note_whole_manifest_linked(registry, repo, &m.digest);
        }
        m
    }

    /// The digests and sizes a manifest names, parsed once per process; the
    /// sizes are remembered for the downloads they bound.
    pub(super) fn named_by(&self, m: &ResolvedManifest) -> Named {
        if let Some(named) = self
            .named
            .lock()
            .ok()
            .and_then(|n| n.get(&m.digest).cloned())
        {
            return named;
        }
        let named: Named = named_descriptors(&m.media_type, &m.bytes).into();
        if let Ok(mut sizes) = self.sizes.lock() {
            if sizes.len() > MAX_KNOWN_SIZES {
                sizes.clear();
                if let Ok(mut all) = self.named.lock() {
                    all.clear();
                }
            }
            for (digest, size) in named.iter() {
                sizes.insert(digest.clone(), *size);
            }
        }
        if let Ok(mut all) = self.named.lock() {
            all.insert(m.digest.clone(), Arc::clone(&named));
        }
        named
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
}

/// The digests (and sizes) a manifest names: an index's children, an
/// image's config and layers.
pub(super) fn named_descriptors(media_type: &str, bytes: &[u8]) -> Vec<(Digest, u64)> {
    let descriptors = match Manifest::parse(media_type, bytes) {
        Ok(Manifest::Image(image)) => std::iter::once(image.config().clone())
            .chain(image.layers().iter().cloned())
            .collect(),
        Ok(Manifest::Index(index)) => index.manifests().clone(),
        Err(_) => Vec::new(),
    };
    descriptors
        .into_iter()
        .filter_map(|d| Some((d.digest().to_string().parse().ok()?, d.size())))
        .collect()
}
