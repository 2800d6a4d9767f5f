//! Background chores: writing the recorded uses and the quota figures,
//! sweeping what dead processes left, keeping the cache within `max_size`.

use std::sync::Arc;

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
