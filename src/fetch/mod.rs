//! Pull-through logic: joins the registry client and the cache. One file per
//! concern: `tags` (freshness), `manifests` (by digest), `blobs` (single-flight
//! downloads), `members` (membership), `turns` (one at a time, across
//! processes), `holds` and `quota` (the pull quota), `chores` (background work),
//! `pull` (what a pull needs).

use foldhash::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheError, LockKey};
use crate::metrics::Metrics;
use crate::reference::Digest;
use crate::registry::RegistryClient;

mod blobs;
mod cache_status;
mod chores;
mod error;
mod figures;
mod holds;
mod manifests;
mod members;
mod overview;
mod prefetch;
mod pull;
mod tags;
mod turns;
mod unwritten;
/// The quota record's figures and counts, and the clock they are kept by.
pub use crate::cache::{HOURS_KEPT, HourCounts, PullCounts, QuotaSeen, now_secs};
pub use blobs::{BlobAnswer, BlobFetch, BlobState, wait_blob};
pub use cache_status::CacheStatus;
pub use error::{ErrorKind, FetchError};
pub use manifests::{Freshness, ResolvedManifest};
pub use overview::{CacheOverview, Contact, Download};
pub use prefetch::Interest;
pub use pull::default_choice;
pub use tags::{HeadOnly, TagHead};

mod tag_list;

mod referrers;
pub use referrers::filter_by_artifact_type;

pub mod quota;
#[cfg(test)]
mod quota_proptest;
use quota::Quota;
pub use quota::{PullPolicy, QuotaStop, Spare};

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

pub struct Fetcher {
    /// This fetcher, for work that outlives a request (a write behind an
    /// answer, a prefetch).
    me: Weak<Fetcher>,
    cache: Cache,
    client: RegistryClient,
    limits: Limits,
    /// Downloads under way (`blobs::Inflight`).
    inflight: Mutex<HashMap<Digest, blobs::Inflight>>,
    /// Manifests answered and not yet on disk (`unwritten`).
    unwritten: Mutex<unwritten::Unwritten>,
    /// Prefetches under way (`prefetch`).
    prefetches: Mutex<Vec<Arc<prefetch::Prefetch>>>,
    /// Turns inside this process for upstream checks of one tag or fetches of
    /// one manifest; `LockKey` files are the turns across processes.
    turns: Mutex<HashMap<LockKey, Arc<tokio::sync::Mutex<()>>>>,
    /// When each tag's last upstream check finished, and how.
    last_checks: Mutex<HashMap<String, (Instant, tags::CheckOutcome)>>,
    /// Blob sizes from the manifests seen (verified by their digests), so a
    /// blob asked for by digest alone is held to its size.
    sizes: Mutex<HashMap<Digest, u64>>,
    /// What each manifest seen names, so a cache hit doesn't parse it again;
    /// cleared with `sizes`.
    named: Mutex<HashMap<Digest, manifests::Named>>,
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
    /// How each upstream last answered (the status page).
    contacts: Arc<overview::Contacts>,
    /// `[cache] max_size`, once the evictor keeps the cache within it.
    max_size: std::sync::OnceLock<u64>,
    /// What `GET /metrics` exports: the registry client and the server count into it.
    metrics: Arc<Metrics>,
    /// The last walk of the blob store, for scrapes that come often.
    blob_totals: Mutex<Option<figures::BlobTotals>>,
}

impl Fetcher {
    /// A fetcher that spends the pull quota as `policy` says.
    pub fn with_policy(
        cache: Cache,
        client: RegistryClient,
        limits: Limits,
        policy: PullPolicy,
    ) -> Arc<Fetcher> {
        let quota = Arc::new(Quota::new(policy));
        let observer = Arc::clone(&quota);
        let contacts = Arc::new(overview::Contacts::default());
        let seen = Arc::clone(&contacts);
        client.observe(Arc::new(move |reply| {
            observer.observe(reply);
            seen.replied(&reply.registry, reply.status);
        }));
        let metrics = Arc::new(Metrics::default());
        client.count_into(Arc::clone(&metrics));
        Arc::new_cyclic(|me| Fetcher {
            me: me.clone(),
            cache,
            client,
            limits,
            inflight: Mutex::default(),
            unwritten: Mutex::default(),
            prefetches: Mutex::default(),
            turns: Mutex::default(),
            last_checks: Mutex::default(),
            sizes: Mutex::default(),
            named: Mutex::default(),
            heads: Mutex::default(),
            quota,
            quota_loaded: tokio::sync::OnceCell::new(),
            must_store: std::sync::atomic::AtomicBool::new(false),
            contacts,
            max_size: std::sync::OnceLock::new(),
            metrics,
            blob_totals: Mutex::default(),
        })
    }

    /// Makes a failure to cache a fetched manifest or tag record an error
    /// (for commands whose point is to fill the cache).
    pub fn require_stored(&self) {
        self.must_store
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn must_store(&self) -> bool {
        self.must_store.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A cache write failed: the fetch's error when the cache must hold what
    /// is fetched, else a warning and `Ok(false)` (not stored).
    fn stored_or_warn(&self, e: FetchError, what: String) -> Result<bool, FetchError> {
        if self.must_store() {
            return Err(e);
        }
        tracing::warn!("{what}: {e}");
        Ok(false)
    }

    /// The counters this fetcher, its registry client and a server count into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
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
}
