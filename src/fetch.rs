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

use crate::cache::{
    BackgroundWriter, BlobWriter, Cache, CacheError, FileLock, LockHolder, LockKey, TagRecord,
};
use crate::oci::{Manifest, ManifestError, Platform, PlatformChoice, describe_platform};
use crate::reference::{Digest, Reference, Target};
use crate::registry::{FetchedManifest, RegistryClient, RegistryError, Upstream};

mod tag_list;
pub use tag_list::ResolvedTagList;

mod referrers;
pub use referrers::{EMPTY_INDEX, Referrers, filter_by_artifact_type};

pub mod quota;
#[cfg(test)]
mod quota_proptest;
use quota::{Answered, Quota};
pub use quota::{PullPolicy, QuotaStop, Spare};

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
    #[error(
        "dpx process {pid} has been {doing} and made no progress for {secs}s; gave up waiting for it (stop that process if it is stuck, or raise [cache] lock_timeout)"
    )]
    Stalled {
        pid: String,
        doing: String,
        secs: u64,
    },
    #[error(
        "{what} is cached through another repository, and {repo} neither names it in a cached manifest nor has it upstream"
    )]
    NotMember { what: String, repo: String },
    /// Not asked upstream, to save the pull quota (`fetch::quota`).
    #[error(transparent)]
    Quota(#[from] QuotaStop),
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

    /// Whether the content exists, but not in the repository asked for.
    pub fn is_not_member(&self) -> bool {
        match self {
            FetchError::NotMember { .. } => true,
            FetchError::Shared(e) => e.is_not_member(),
            _ => false,
        }
    }

    /// Why the upstream was not asked, when it was to save the pull quota.
    pub fn quota_stop(&self) -> Option<&QuotaStop> {
        match self {
            FetchError::Quota(q) => Some(q),
            FetchError::Shared(e) => e.quota_stop(),
            _ => None,
        }
    }

    /// Whether it failed because the disk holding the cache is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            FetchError::Cache(CacheError::Write { source, .. }) => {
                source.kind() == std::io::ErrorKind::StorageFull
            }
            FetchError::Shared(e) => e.is_disk_full(),
            _ => false,
        }
    }

    /// Whether we gave up waiting for another dpx process.
    pub fn is_stalled(&self) -> bool {
        match self {
            FetchError::Stalled { .. } => true,
            FetchError::Shared(e) => e.is_stalled(),
            _ => false,
        }
    }
}

/// Manifest GETs and a hold after a 429 (`Fetcher::hold_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoldState {
    /// No hold: GETs may go.
    Free,
    /// Held, and this request sends the one probe.
    ProbeNow,
    /// Held; the next probe is not yet due, or another sends it.
    Held,
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
    /// The cached copy was served instead of the GET the tag needed, to
    /// save the pull quota.
    Spared(Spare),
}

impl Freshness {
    pub fn as_str(self) -> &'static str {
        match self {
            Freshness::Cached => "hit",
            Freshness::Revalidated => "revalidated",
            Freshness::Fetched => "miss",
            Freshness::Stale | Freshness::Spared(_) => "stale",
        }
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

/// What a client's HEAD of a tag is answered with.
#[derive(Debug, Clone)]
pub enum TagHead {
    /// The manifest itself (cached, or fetched): a GET's headers.
    Manifest(ResolvedManifest),
    /// An uncached tag, as the upstream's HEAD described it: what a GET
    /// would send, without the pull a GET costs.
    Upstream(HeadOnly),
}

/// A manifest's headers, from an upstream HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadOnly {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl HeadOnly {
    /// `None` unless the HEAD said everything a client's HEAD needs, of a
    /// manifest dpx could fetch and serve.
    fn from_head(head: crate::registry::ManifestHead) -> Option<HeadOnly> {
        let media_type = head
            .media_type
            .filter(|t| crate::oci::is_manifest_type(t))?;
        let size = head
            .size
            .filter(|n| *n <= crate::oci::MAX_MANIFEST_BYTES as u64)?;
        Some(HeadOnly {
            digest: head.digest?,
            media_type,
            size,
        })
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

/// Bounds on what a fetch accepts and how long it waits for others.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The largest blob taken when neither a manifest nor the upstream says its size.
    pub max_blob_size: u64,
    /// How long to wait for another dpx process that makes no progress.
    pub lock_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_blob_size: crate::config::DEFAULT_MAX_BLOB_SIZE,
            lock_timeout: crate::config::DEFAULT_LOCK_TIMEOUT,
        }
    }
}

/// How an upstream check of a tag ended, for the clients that waited on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CheckOutcome {
    Succeeded,
    /// The cached copy was served, marked this way.
    Failed(Freshness),
}

/// How often a waiter tries a lock another process holds.
const LOCK_POLL: Duration = Duration::from_millis(100);
/// How long a wait for another process goes unmentioned.
const LOCK_ANNOUNCE_AFTER: Duration = Duration::from_secs(1);
/// Check results older than this can answer no waiting client any more.
const CHECK_MEMORY: Duration = Duration::from_secs(10 * 60);
/// Blob sizes remembered from manifests; beyond it the table starts over.
const MAX_KNOWN_SIZES: usize = 100_000;
/// Upstream HEADs of uncached tags remembered; beyond it the table starts over.
const MAX_KNOWN_HEADS: usize = 10_000;

/// The digests and sizes one manifest names.
type Named = Arc<[(Digest, u64)]>;

pub struct Fetcher {
    cache: Cache,
    client: RegistryClient,
    limits: Limits,
    /// Downloads under way, with the `registry/repo` each goes through.
    inflight: Mutex<HashMap<Digest, (watch::Receiver<BlobState>, String)>>,
    /// Turns inside this process for upstream checks of one tag or fetches of
    /// one manifest; `LockKey` files are the turns across processes.
    turns: Mutex<HashMap<LockKey, Arc<tokio::sync::Mutex<()>>>>,
    /// When each tag's last upstream check finished, and how.
    last_checks: Mutex<HashMap<String, (Instant, CheckOutcome)>>,
    /// Blob sizes from the manifests seen (verified by their digests), so a
    /// blob asked for by digest alone is held to its size.
    sizes: Mutex<HashMap<Digest, u64>>,
    /// What each manifest seen names, so a cache hit doesn't parse it again;
    /// cleared with `sizes`.
    named: Mutex<HashMap<Digest, Named>>,
    /// What upstream HEADs said of uncached tags, and when: a client's HEAD
    /// within the tag TTL is answered from it (a GET still fetches and verifies).
    heads: Mutex<HashMap<String, (Instant, HeadOnly)>>,
    /// The pull quota: figures seen, pauses, the reserve, the counts.
    quota: Arc<Quota>,
    /// Set once the recorded quota figures have been read.
    quota_loaded: tokio::sync::OnceCell<()>,
    /// Whether what is fetched must end up cached (`pull`, `prefetch`): a
    /// failed cache write is then the fetch's error. Otherwise (`serve`) the
    /// answer is still good to send, and the failure is a warning.
    must_store: std::sync::atomic::AtomicBool,
}

impl Fetcher {
    pub fn new(cache: Cache, client: RegistryClient, limits: Limits) -> Arc<Fetcher> {
        Fetcher::with_policy(cache, client, limits, PullPolicy::default())
    }

    /// A fetcher that spends the pull quota as `policy` says.
    pub fn with_policy(
        cache: Cache,
        client: RegistryClient,
        limits: Limits,
        policy: PullPolicy,
    ) -> Arc<Fetcher> {
        let quota = Arc::new(Quota::new(policy));
        let observer = Arc::clone(&quota);
        client.observe(Arc::new(move |reply| observer.observe(reply)));
        Arc::new(Fetcher {
            cache,
            client,
            limits,
            inflight: Mutex::default(),
            turns: Mutex::default(),
            last_checks: Mutex::default(),
            sizes: Mutex::default(),
            named: Mutex::default(),
            heads: Mutex::default(),
            quota,
            quota_loaded: tokio::sync::OnceCell::new(),
            must_store: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Makes a failure to cache a fetched manifest or tag record an error
    /// (for commands whose point is to fill the cache).
    pub fn require_stored(&self) {
        self.must_store
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// A cache write failed: the fetch's error when the cache must hold what
    /// is fetched, else a warning and `Ok(false)` (not stored).
    fn stored_or_warn(&self, e: FetchError, what: String) -> Result<bool, FetchError> {
        if self.must_store.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(e);
        }
        tracing::warn!("{what}: {e}");
        Ok(false)
    }

    pub fn client(&self) -> &RegistryClient {
        &self.client
    }

    /// Runs one cache operation on a blocking thread: disk I/O and fsync
    /// never hold up the async workers.
    async fn on_disk<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Cache) -> Result<T, CacheError> + Send + 'static,
    ) -> Result<T, FetchError> {
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || op(&cache))
            .await
            .map_err(|e| FetchError::Internal(e.to_string()))?
            .map_err(FetchError::from)
    }

    /// Notes a use of a blob (in memory; see `cache::usage`).
    pub fn record_blob_use(&self, digest: &Digest) {
        self.cache.record_blob_use(digest);
    }

    /// Writes the recorded uses (`cache::usage`), and the quota figures and
    /// counts (`fetch::quota`), off the async workers.
    pub async fn flush_usage(&self) {
        if let Err(e) = self.on_disk(|c| c.flush_usage()).await {
            tracing::debug!("last-use times not recorded: {e}");
        }
        self.flush_quota().await;
    }

    /// Writes the quota figures seen and the counts since the last batch,
    /// merged with what other processes wrote, and takes theirs in.
    async fn flush_quota(&self) {
        self.load_quota().await;
        let (seen, delta) = self.quota.take_batch();
        let (seen_w, delta_w) = (seen.clone(), delta);
        let written = self
            .on_disk(move |c| {
                if let Some(delta) = &delta_w {
                    c.add_pull_counts(delta)?;
                }
                // Nothing new: only read what others wrote (no write, no fsync).
                if seen_w.is_empty() {
                    c.read_quota_seen()
                } else {
                    c.merge_quota_seen(seen_w)
                }
            })
            .await;
        match written {
            Ok(all) => self.quota.absorb(all),
            Err(e) => {
                tracing::debug!("quota figures and counts not recorded: {e}");
                self.quota.untake_batch(seen, delta);
            }
        }
    }

    /// Reads the recorded quota figures once, before the first decision
    /// that needs them.
    async fn load_quota(&self) {
        self.quota_loaded
            .get_or_init(|| async {
                match self.on_disk(|c| c.read_quota_seen()).await {
                    Ok(recorded) => self.quota.absorb(recorded),
                    Err(e) => tracing::debug!("recorded quota figures not read: {e}"),
                }
            })
            .await;
    }

    /// This process's counts of manifest requests, by how they were
    /// answered, and of manifest requests sent upstream, since it started.
    pub fn pull_counts(&self) -> crate::cache::PullCounts {
        self.quota.counts()
    }

    /// The counts not yet written to the cache's record.
    pub fn unwritten_pull_counts(&self) -> crate::cache::PullCounts {
        self.quota.unwritten_counts()
    }

    /// The rate-limit figures this process knows: recorded ones and those
    /// seen since, the latest per registry and identity.
    pub fn quota_figures(&self) -> Vec<crate::cache::QuotaSeen> {
        self.quota.figures()
    }

    /// Whom requests to `registry` count against before any reply says: the
    /// account dpx asks as.
    fn account(&self, registry: &str) -> String {
        self.client
            .account(registry)
            .unwrap_or_else(|| quota::ANONYMOUS.to_string())
    }

    /// Leave to send one manifest GET (a pull on Docker Hub), held while it
    /// runs. During a hold, a due probe (a HEAD of the wanted manifest, free)
    /// is sent first: quota it shows lifts the hold.
    async fn take_pull(
        &self,
        registry: &str,
        account: &str,
        repo: &str,
        target: &Target,
    ) -> Result<quota::PullTicket<'_>, FetchError> {
        if self.hold_state(registry, account).await == HoldState::ProbeNow {
            let probe = self.client.head_manifest(registry, repo, target).await;
            if let Err(e) = probe {
                tracing::debug!("{registry}: the quota probe failed ({e}); the hold stays");
            }
            self.write_hold_changes().await;
        }
        Ok(self.quota.take_pull(registry, account)?)
    }

    /// Whether manifest GETs to `registry` as `account` are held back after
    /// a 429, read from the cache's record (another process may have lifted
    /// it); when a probe is due, claims it there, so one process probes.
    async fn hold_state(&self, registry: &str, account: &str) -> HoldState {
        self.load_quota().await;
        if self.quota.hold(registry, account).is_none() {
            return HoldState::Free;
        }
        let (r, a, backoff) = (
            registry.to_string(),
            account.to_string(),
            self.quota.probe_backoff(),
        );
        let claimed = self
            .on_disk(move |c| {
                c.update_quota_seen(|figures| {
                    quota::claim_probe(figures, &r, &a, crate::cache::now_secs(), backoff)
                })
            })
            .await;
        match claimed {
            Ok((claimed, recorded)) => {
                self.quota.absorb(recorded);
                match (claimed, self.quota.hold(registry, account)) {
                    (_, None) => HoldState::Free,
                    (Some(hold), Some(_)) => {
                        tracing::info!(
                            "{registry}: probing whether pull quota is back (a free manifest HEAD); the next probe is not before {}",
                            quota::rfc3339(hold.next_probe_at)
                        );
                        HoldState::ProbeNow
                    }
                    (None, Some(_)) => HoldState::Held,
                }
            }
            Err(e) => {
                tracing::debug!("the quota record cannot be read: {e}");
                HoldState::Held
            }
        }
    }

    /// Writes a hold begun or lifted here at once, for the other processes.
    async fn write_hold_changes(&self) {
        if self.quota.take_hold_changed() {
            self.flush_quota().await;
        }
    }

    /// Flushes recorded uses every `FLUSH_INTERVAL` until dropped (then flush once more).
    pub fn spawn_usage_flusher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::cache::usage::FLUSH_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                this.flush_usage().await;
            }
        })
    }

    /// Sweeps what dead processes left in the cache (`Cache::sweep`), in the
    /// background: a start-up chore that nothing waits for.
    pub fn spawn_sweep(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            match this.on_disk(|c| c.sweep()).await {
                Ok(r) if !r.is_empty() => tracing::info!(
                    "swept the cache: {} temp files of dead downloads ({} bytes), {} orphaned lock files",
                    r.temp_files,
                    r.bytes,
                    r.lock_files
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot sweep the cache: {e}"),
            }
        })
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

    /// A tag's manifest, following the TTL / HEAD / stale rules.
    pub async fn manifest_by_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
    ) -> Result<ResolvedManifest, FetchError> {
        let arrived = Instant::now();
        let before = self.cached_tag_record(registry, repo, tag).await?;
        if let Some((record, fresh)) = &before
            && record.is_fresh(ttl)
        {
            self.cache.record_tag_use(registry, repo, tag);
            return Ok(self.noted(registry, repo, fresh.clone()).await);
        }
        // One upstream check per tag at a time: a burst of pulls of a stale or
        // cold tag costs one HEAD or GET, not one per client.
        let name = format!("{registry}/{repo}:{tag}");
        let key = LockKey::Tag(name.clone());
        let result = self
            .in_turn(&key, async {
                match self.check_finished_since(&name, arrived) {
                    // The check of the client ahead of us answers for us too,
                    // success or failure: no client waits out the same outage twice.
                    Some(outcome) => match self.cached_tag_record(registry, repo, tag).await? {
                        Some((_, m)) => match outcome {
                            CheckOutcome::Failed(freshness) => {
                                Ok(ResolvedManifest { freshness, ..m })
                            }
                            CheckOutcome::Succeeded => Ok(m),
                        },
                        None => self.check_tag(registry, repo, tag, None).await,
                    },
                    None => {
                        let result = self
                            .check_tag_in_turn(registry, repo, tag, &key, before)
                            .await;
                        let outcome = match &result {
                            Ok(m) if m.freshness.is_stale() => CheckOutcome::Failed(m.freshness),
                            Ok(_) => CheckOutcome::Succeeded,
                            Err(_) => CheckOutcome::Failed(Freshness::Stale),
                        };
                        self.note_check(&name, outcome);
                        result
                    }
                }
            })
            .await;
        self.cache.record_tag_use(registry, repo, tag);
        Ok(self.noted(registry, repo, result?).await)
    }

    /// Answers a client's HEAD of a tag. A cached tag follows the GET's
    /// rules; an uncached one is answered from a HEAD upstream (free on Docker
    /// Hub, where a GET is a pull), remembered for the tag TTL, without
    /// fetching the manifest: the next GET fetches and verifies it.
    pub async fn head_by_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
    ) -> Result<TagHead, FetchError> {
        let by_get = || async {
            Ok(TagHead::Manifest(
                self.manifest_by_tag(registry, repo, tag, ttl).await?,
            ))
        };
        if self.cached_tag_record(registry, repo, tag).await?.is_some() {
            return by_get().await;
        }
        let name = format!("{registry}/{repo}:{tag}");
        if let Some(known) = self.remembered_head(&name, ttl) {
            return Ok(TagHead::Upstream(known));
        }
        let target = Target::Tag(tag.to_string());
        let head = match self.client.head_manifest(registry, repo, &target).await {
            Ok(Some(head)) => head,
            Ok(None) => {
                return Err(RegistryError::NotFound {
                    what: format!("manifest {repo}:{tag}"),
                    url: self.client.api_url(registry, repo, "manifests", tag),
                }
                .into());
            }
            // A HEAD refused for what it is (405, 400): the GET tells.
            Err(RegistryError::Status { status, .. }) if status < 500 => return by_get().await,
            Err(e) => return Err(e.into()),
        };
        let Some(known) = HeadOnly::from_head(head) else {
            // No digest, size or manifest type said: only a GET tells.
            return by_get().await;
        };
        if self.cached_manifest(&known.digest).await?.is_some() {
            // Cached under another name: the tag's record is all that was missing.
            let record = TagRecord::new(known.digest.clone());
            self.write_tag_best_effort(registry, repo, tag, record)
                .await;
        } else if let Ok(mut heads) = self.heads.lock() {
            if heads.len() >= MAX_KNOWN_HEADS {
                heads.clear();
            }
            heads.insert(name, (Instant::now(), known.clone()));
        }
        Ok(TagHead::Upstream(known))
    }

    /// Writes the records of the tags whose upstream HEAD named `digest`,
    /// now that their manifest is cached (an engine HEADs a tag, then GETs
    /// its digest): the tags are then as cached as a GET of them leaves them.
    async fn record_heads_of(&self, registry: &str, repo: &str, digest: &Digest) {
        let prefix = format!("{registry}/{repo}:");
        let named: Vec<(String, Duration)> = match self.heads.lock() {
            Ok(mut heads) => {
                let named: Vec<(String, Duration)> = heads
                    .iter()
                    .filter(|(name, (_, h))| name.starts_with(&prefix) && h.digest == *digest)
                    .map(|(name, (at, _))| (name.clone(), at.elapsed()))
                    .collect();
                for (name, _) in &named {
                    heads.remove(name);
                }
                named
            }
            Err(_) => return,
        };
        for (name, age) in named {
            let mut record = TagRecord::new(digest.clone());
            // Checked when the HEAD was answered, not now.
            record.checked_at = record.checked_at.saturating_sub(age.as_secs());
            let tag = &name[prefix.len()..];
            self.write_tag_best_effort(registry, repo, tag, record)
                .await;
        }
    }

    /// An upstream HEAD's answer for `name` younger than `ttl`.
    fn remembered_head(&self, name: &str, ttl: Duration) -> Option<HeadOnly> {
        let heads = self.heads.lock().ok()?;
        let (at, known) = heads.get(name)?;
        (at.elapsed() < ttl).then(|| known.clone())
    }

    /// Checks a tag upstream in this process's turn across processes. When
    /// another process checked it while we waited, its answer is ours; when
    /// that process is stuck, the cached copy (`before`) beats an error.
    async fn check_tag_in_turn(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        key: &LockKey,
        before: Option<(TagRecord, ResolvedManifest)>,
    ) -> Result<ResolvedManifest, FetchError> {
        let doing = format!("checking tag {registry}/{repo}:{tag} upstream");
        let error = match self.process_turn(key.clone(), &doing).await {
            // The lock is held until the check is done.
            Ok((_lock, waited)) => {
                // Read again in our turn (one read, handed to the check).
                let current = self.cached_tag_record(registry, repo, tag).await?;
                if waited
                    && let Some((record, m)) = &current
                    && before.as_ref().is_none_or(|(old, _)| old != record)
                {
                    return Ok(m.clone());
                }
                return self.check_tag(registry, repo, tag, current).await;
            }
            Err(e) => e,
        };
        match before {
            Some((_, m)) if error.is_stalled() => {
                tracing::warn!("{error}; serving the cached manifest");
                Ok(ResolvedManifest {
                    freshness: Freshness::Stale,
                    ..m
                })
            }
            _ => Err(error),
        }
    }

    /// Runs `work` in this process's turn for `key`.
    async fn in_turn<T>(&self, key: &LockKey, work: impl Future<Output = T>) -> T {
        let lock = match self.turns.lock() {
            Ok(mut turns) => Arc::clone(turns.entry(key.clone()).or_default()),
            // A poisoned table only loses the coalescing, not correctness.
            Err(_) => Arc::default(),
        };
        let out = {
            let _turn = lock.lock().await;
            work.await
        };
        if let Ok(mut turns) = self.turns.lock()
            && Arc::strong_count(&lock) == 2
        {
            turns.remove(key);
        }
        out
    }

    /// Waits for this process's turn across processes: tries the lock, then
    /// polls it, a future an interrupt can drop at any point (a blocking
    /// `flock` would hold up the runtime's shutdown). Says whom it waits for,
    /// and gives up on a holder that makes no progress for `lock_timeout`.
    /// Also returns whether it had to wait.
    async fn process_turn(
        &self,
        key: LockKey,
        doing: &str,
    ) -> Result<(FileLock, bool), FetchError> {
        let started = Instant::now();
        let mut last_progress = (Instant::now(), None);
        let mut announced = false;
        let mut waited = false;
        loop {
            let k = key.clone();
            let (lock, holder) = self
                .on_disk(move |c| {
                    Ok(match c.try_lock(&k)? {
                        Some(lock) => (Some(lock), LockHolder::default()),
                        None => (None, c.lock_holder(&k)),
                    })
                })
                .await?;
            if let Some(lock) = lock {
                return Ok((lock, waited));
            }
            waited = true;
            if holder.progress != last_progress.1 {
                last_progress = (Instant::now(), holder.progress);
            }
            let pid = holder
                .pid
                .map_or_else(|| "?".to_string(), |p| p.to_string());
            if !announced && started.elapsed() >= LOCK_ANNOUNCE_AFTER {
                tracing::warn!("waiting for dpx process {pid} which is {doing}");
                announced = true;
            }
            if last_progress.0.elapsed() >= self.limits.lock_timeout {
                return Err(FetchError::Stalled {
                    pid,
                    doing: doing.to_string(),
                    secs: self.limits.lock_timeout.as_secs(),
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Whether a check of `key` finished after `since`, and how.
    fn check_finished_since(&self, key: &str, since: Instant) -> Option<CheckOutcome> {
        let checks = self.last_checks.lock().ok()?;
        checks
            .get(key)
            .filter(|(at, _)| *at >= since)
            .map(|(_, outcome)| *outcome)
    }

    fn note_check(&self, key: &str, outcome: CheckOutcome) {
        if let Ok(mut checks) = self.last_checks.lock() {
            // Only clients waiting for a turn read these; old ones serve nobody.
            checks.retain(|_, (at, _)| at.elapsed() < CHECK_MEMORY);
            checks.insert(key.to_string(), (Instant::now(), outcome));
        }
    }

    /// A tag's record and its manifest, when both are in the cache.
    async fn cached_tag_record(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<Option<(TagRecord, ResolvedManifest)>, FetchError> {
        let (registry, repo, tag) = (registry.to_string(), repo.to_string(), tag.to_string());
        self.on_disk(move |c| {
            let Some(record) = c.read_tag(&registry, &repo, &tag)? else {
                return Ok(None);
            };
            Ok(c.get_manifest(&record.digest)?.map(|(bytes, media_type)| {
                let manifest = ResolvedManifest {
                    digest: record.digest.clone(),
                    media_type,
                    bytes: Bytes::from(bytes),
                    freshness: Freshness::Cached,
                };
                (record, manifest)
            }))
        })
        .await
    }

    /// A manifest from the cache by digest.
    async fn cached_manifest(
        &self,
        digest: &Digest,
    ) -> Result<Option<ResolvedManifest>, FetchError> {
        let d = digest.clone();
        let found = self.on_disk(move |c| c.get_manifest(&d)).await?;
        Ok(found.map(|(bytes, media_type)| ResolvedManifest {
            digest: digest.clone(),
            media_type,
            bytes: Bytes::from(bytes),
            freshness: Freshness::Cached,
        }))
    }

    /// Asks upstream about a tag that is stale or not cached: HEAD when we have
    /// it (free on Docker Hub), GET when it is new or moved, stale on outage.
    /// `current` is the tag's cache entry as read in this check's turn.
    async fn check_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        current: Option<(TagRecord, ResolvedManifest)>,
    ) -> Result<ResolvedManifest, FetchError> {
        let Some((mut record, cached)) = current else {
            return self.fetch_tag(registry, repo, tag).await;
        };
        let stale = |e: &RegistryError| {
            tracing::debug!(
                "{registry}/{repo}:{tag}: upstream failed ({e}); serving the cached manifest"
            );
            // A 429 is the quota speaking, not an outage.
            let freshness = match e {
                RegistryError::RateLimited { .. } => Freshness::Spared(Spare::RateLimited),
                _ => Freshness::Stale,
            };
            Ok(ResolvedManifest {
                freshness,
                ..cached.clone()
            })
        };
        let spared = |spare: Spare| {
            tracing::info!(
                "{registry}/{repo}:{tag}: served the cached manifest without asking upstream for it ({})",
                spare.as_str()
            );
            Ok(ResolvedManifest {
                freshness: Freshness::Spared(spare),
                ..cached.clone()
            })
        };
        let account = self.account(registry);
        // Held after a 429: served as cached, unless the probe is due: then
        // the HEAD below is the probe.
        if self.hold_state(registry, &account).await == HoldState::Held {
            return spared(Spare::RateLimited);
        }
        let target = Target::Tag(tag.to_string());
        let head = self.client.head_manifest(registry, repo, &target).await;
        self.write_hold_changes().await;
        match head {
            Ok(Some(head)) if head.digest.as_ref() == Some(&record.digest) => {
                record.checked_at = crate::cache::now_secs();
                self.write_tag_best_effort(registry, repo, tag, record)
                    .await;
                Ok(ResolvedManifest {
                    freshness: Freshness::Revalidated,
                    ..cached
                })
            }
            // Gone upstream: the GET says so (or the pause answers).
            Ok(None) => match self.fetch_tag(registry, repo, tag).await {
                Err(FetchError::Registry(e)) if e.is_upstream_failure() => stale(&e),
                Err(FetchError::Quota(QuotaStop::Held { .. })) => spared(Spare::RateLimited),
                other => other,
            },
            // Moved (or no digest said): the GET is a pull. The HEAD's reply
            // has just told the remaining quota.
            Ok(Some(_)) => match self.quota.spare_tag(registry, &account) {
                Some(spare) => spared(spare),
                None => match self.fetch_tag(registry, repo, tag).await {
                    Err(FetchError::Registry(e)) if e.is_upstream_failure() => stale(&e),
                    Err(FetchError::Quota(QuotaStop::Held { .. })) => spared(Spare::RateLimited),
                    other => other,
                },
            },
            Err(e) if e.is_upstream_failure() => stale(&e),
            Err(e) => Err(e.into()),
        }
    }

    async fn fetch_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<ResolvedManifest, FetchError> {
        let account = self.account(registry);
        let target = Target::Tag(tag.to_string());
        let _pull = self.take_pull(registry, &account, repo, &target).await?;
        let m = self.client.get_manifest(registry, repo, &target).await;
        self.write_hold_changes().await;
        let m = m?;
        if self.store_manifest(&m).await? {
            let record = TagRecord::new(m.digest.clone());
            let (r, p, t) = (registry.to_string(), repo.to_string(), tag.to_string());
            if let Err(e) = self
                .on_disk(move |c| c.write_tag(&r, &p, &t, &record))
                .await
            {
                self.stored_or_warn(
                    e,
                    format!("{registry}/{repo}:{tag}: tag record not written"),
                )?;
            }
        }
        Ok(ResolvedManifest {
            digest: m.digest,
            media_type: m.media_type,
            bytes: m.bytes,
            freshness: Freshness::Fetched,
        })
    }

    /// Caches a manifest the upstream vouched for. With the disk full or
    /// read-only the answer is still good: unless the cache must hold it
    /// (`require_stored`), it is served and the failure is a warning.
    /// Returns whether it was stored.
    async fn store_manifest(&self, m: &FetchedManifest) -> Result<bool, FetchError> {
        let (digest, media_type, bytes) = (m.digest.clone(), m.media_type.clone(), m.bytes.clone());
        match self
            .on_disk(move |c| c.put_manifest(&digest, &media_type, &bytes))
            .await
        {
            Ok(()) => Ok(true),
            Err(e) => self.stored_or_warn(e, format!("manifest {} not cached", m.digest)),
        }
    }

    /// Records a tag check of a cached manifest. Best effort: a record that
    /// could not be written only means asking again next time.
    async fn write_tag_best_effort(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        record: TagRecord,
    ) {
        let (r, p, t) = (registry.to_string(), repo.to_string(), tag.to_string());
        if let Err(e) = self
            .on_disk(move |c| c.write_tag(&r, &p, &t, &record))
            .await
        {
            tracing::warn!("{registry}/{repo}:{tag}: tag record not updated: {e}");
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

    async fn manifest_by_digest_anywhere(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<ResolvedManifest, FetchError> {
        if let Some(m) = self.cached_manifest(digest).await? {
            return Ok(m);
        }
        let key = LockKey::Manifest(digest.clone());
        self.in_turn(&key, async {
            // A client ahead of us in this process may have fetched it.
            if let Some(m) = self.cached_manifest(digest).await? {
                return Ok(m);
            }
            let doing = format!("fetching manifest {digest}");
            let (_lock, waited) = self.process_turn(key.clone(), &doing).await?;
            if waited && let Some(m) = self.cached_manifest(digest).await? {
                return Ok(m);
            }
            let account = self.account(registry);
            let target = Target::Digest(digest.clone());
            let _pull = self.take_pull(registry, &account, repo, &target).await?;
            let m = self.client.get_manifest(registry, repo, &target).await;
            self.write_hold_changes().await;
            let m = m?;
            if self.store_manifest(&m).await? {
                self.record_heads_of(registry, repo, digest).await;
            }
            Ok(ResolvedManifest {
                digest: m.digest,
                media_type: m.media_type,
                bytes: m.bytes,
                freshness: Freshness::Fetched,
            })
        })
        .await
    }

    /// Remembers the sizes of the blobs and manifests a manifest names, and
    /// links the manifest and all it names to the repository it was served
    /// through (no disk when this process already knows the links).
    async fn noted(&self, registry: &str, repo: &str, m: ResolvedManifest) -> ResolvedManifest {
        self.quota.count(m.freshness.answered());
        self.cache.record_blob_use(&m.digest);
        let named = self.named_by(&m);
        let members: Vec<Digest> = std::iter::once(m.digest.clone())
            .chain(named.iter().map(|(d, _)| d.clone()))
            .collect();
        if !self.cache.links_known(registry, repo, &members) {
            self.link_best_effort(registry, repo, members).await;
        }
        m
    }

    /// The digests and sizes a manifest names, parsed once per process; the
    /// sizes are remembered for the downloads they bound.
    fn named_by(&self, m: &ResolvedManifest) -> Named {
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

    /// Records membership. Best effort: a missing link costs a HEAD later.
    async fn link_best_effort(&self, registry: &str, repo: &str, digests: Vec<Digest>) {
        let (r, p) = (registry.to_string(), repo.to_string());
        if let Err(e) = self.on_disk(move |c| c.link(&r, &p, &digests)).await {
            tracing::warn!("{registry}/{repo}: membership not recorded: {e}");
        }
    }

    /// Makes sure cached content may be served under `repo`: it was pulled
    /// through it (a link), or a cached manifest of the repository names it,
    /// or the upstream has it there (a HEAD, free on Docker Hub). The last
    /// two record the link. Otherwise `NotMember`: the registry would say
    /// unknown, and another repository's private layers stay out of reach.
    pub async fn require_member(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        content: Content,
    ) -> Result<(), FetchError> {
        if self
            .cache
            .links_known(registry, repo, std::slice::from_ref(digest))
        {
            return Ok(());
        }
        let (r, p, d) = (registry.to_string(), repo.to_string(), digest.clone());
        let found = self
            .on_disk(move |c| {
                Ok(c.is_linked(&r, &p, &d)? || named_by_cached_manifest(c, &r, &p, &d))
            })
            .await?;
        let found = found
            || match content {
                Content::Blob => self
                    .client
                    .head_blob(registry, repo, digest)
                    .await?
                    .is_some(),
                Content::Manifest => self
                    .client
                    .head_manifest(registry, repo, &Target::Digest(digest.clone()))
                    .await?
                    .is_some(),
            };
        if !found {
            let what = match content {
                Content::Blob => format!("blob {digest}"),
                Content::Manifest => format!("manifest {digest}"),
            };
            return Err(FetchError::NotMember {
                what,
                repo: format!("{registry}/{repo}"),
            });
        }
        self.link_best_effort(registry, repo, vec![digest.clone()])
            .await;
        Ok(())
    }

    /// A blob's size as a manifest seen by this process gave it.
    fn known_size(&self, digest: &Digest) -> Option<u64> {
        self.sizes.lock().ok()?.get(digest).copied()
    }

    /// A blob's size from the upstream, without downloading it (for a HEAD
    /// request).
    pub async fn blob_size(
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
    pub async fn blob(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        digest: &Digest,
        size: Option<u64>,
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
            match inflight.get(digest) {
                Some((rx, other)) => Err((rx.clone(), *other != through)),
                None => {
                    let (tx, rx) = watch::channel(BlobState::Queued);
                    inflight.insert(digest.clone(), (rx.clone(), through));
                    Ok((tx, rx))
                }
            }
        };
        let (tx, rx) = match joined {
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
        writer.commit().await?;
        self.link_best_effort(registry, repo, vec![digest.clone()])
            .await;
        Ok(())
    }

    async fn download_once(
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
struct BlobSource<'a> {
    repo: &'a str,
    digest: &'a Digest,
}

/// What a digest names, for membership checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Blob,
    Manifest,
}

/// The digests (and sizes) a manifest names: an index's children, an
/// image's config and layers.
fn named_descriptors(media_type: &str, bytes: &[u8]) -> Vec<(Digest, u64)> {
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

/// Whether a cached manifest of the repository (a tagged or linked one, or
/// a child of a tagged or linked index) names `digest`. Reads the disk: the
/// slow path, for content linked before links were recorded.
fn named_by_cached_manifest(cache: &Cache, registry: &str, repo: &str, digest: &Digest) -> bool {
    let mut roots = cache.tag_digests(registry, repo).unwrap_or_default();
    roots.extend(cache.linked(registry, repo).unwrap_or_default());
    let names = |d: &Digest| -> Vec<Digest> {
        match cache.get_manifest(d) {
            Ok(Some((bytes, media_type))) => named_descriptors(&media_type, &bytes)
                .into_iter()
                .map(|(d, _)| d)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        // A tagged manifest belongs to its repository.
        if root == *digest {
            return true;
        }
        if !seen.insert(root.clone()) {
            continue;
        }
        for child in names(&root) {
            if child == *digest {
                return true;
            }
            // One level down: an index's image manifests.
            if seen.insert(child.clone()) && names(&child).contains(digest) {
                return true;
            }
        }
    }
    false
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
