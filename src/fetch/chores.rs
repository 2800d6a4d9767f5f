//! Background chores: writing the recorded uses and the quota figures,
//! sweeping what dead processes left, keeping the cache within `max_size`.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::{Cache, Policy, stored_count};
use crate::metrics::Metrics;

use super::Fetcher;

impl Fetcher {
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
    pub(super) async fn flush_quota(&self) {
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
    pub(super) async fn load_quota(&self) {
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
}

/// The least time between two checks: a check walks the whole cache.
const CHECK_EVERY: Duration = Duration::from_secs(5);

impl Fetcher {
    /// `[cache] max_size`: evicts the least recently used content in the
    /// background, at start and then, at most every few seconds, only after
    /// new blobs came in. Runs until the process ends.
    pub fn spawn_evictor(&self, max_size: u64) {
        let _ = self.max_size.set(max_size);
        let cache = self.cache.clone();
        let metrics = Arc::clone(&self.metrics);
        tokio::spawn(async move {
            let mut seen = None;
            let mut warned = false;
            loop {
                let now = stored_count();
                if seen != Some(now) {
                    seen = Some(now);
                    let (cache, metrics) = (cache.clone(), Arc::clone(&metrics));
                    // One blocking task per check: the walk and the removals are disk work.
                    let result = tokio::task::spawn_blocking(move || {
                        evict(&cache, &metrics, max_size, warned)
                    })
                    .await;
                    match result {
                        Ok(w) => warned = w,
                        Err(e) => tracing::warn!("cache eviction stopped: {e}"),
                    }
                }
                tokio::time::sleep(CHECK_EVERY).await;
            }
        });
    }
}

/// One eviction pass; returns whether the warning that `max_size` is below
/// one image has been given (`warned`: before this pass), so it is given once.
fn evict(cache: &Cache, metrics: &Metrics, max_size: u64, warned: bool) -> bool {
    let policy = Policy {
        max_size: Some(max_size),
        ..Policy::default()
    };
    let human = |n| bytesize::ByteSize::b(n).display().iec().to_string();
    let summary = cache.purge(&policy, |r| {
        tracing::info!("evicted {} {} ({})", r.kind, r.name, human(r.size));
    });
    let over = summary.as_ref().ok().and_then(|s| s.over_max_size.clone());
    if let Some(kept) = &over
        && !warned
    {
        tracing::warn!(
            "[cache] max_size {} is below the size of one image: keeping the most recently used, {kept}, though the cache stays over it; raise max_size",
            human(max_size)
        );
    }
    if let Ok(s) = &summary {
        metrics.evicted(
            s.tags as u64,
            s.manifests as u64,
            s.blobs as u64,
            s.bytes_reclaimed,
        );
    }
    match summary {
        Ok(s) if s.tags + s.manifests + s.blobs > 0 => tracing::info!(
            "cache over its max_size {}: evicted {} tags, {} manifests, {} blobs, {} reclaimed ({} -> {})",
            human(max_size),
            s.tags,
            s.manifests,
            s.blobs,
            human(s.bytes_reclaimed),
            human(s.size_before),
            human(s.size_after)
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot keep the cache within max_size: {e}"),
    }
    warned || over.is_some()
}
