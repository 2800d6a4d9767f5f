//! What the fetch layer tells `GET /metrics` at scrape time: the quota
//! figures, the downloads under way, the store's size against `max_size`.

use std::time::{Duration, Instant};

use crate::metrics::{CacheFigures, FetchFigures, QuotaRow};

use super::Fetcher;

/// A walk of the blob store is kept this long: scrapes may come every few
/// seconds, and a walk of a large store is thousands of stats.
const WALK_KEPT: Duration = Duration::from_secs(10);

/// One walk's result, and when it was made.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlobTotals {
    at: Instant,
    /// `cache::stored_count()` and the evictions then: a blob stored or
    /// evicted since makes it old.
    stored: (u64, u64),
    figures: CacheFigures,
}

impl Fetcher {
    /// The figures for a scrape (the store's walk off the async workers).
    pub async fn figures(&self) -> FetchFigures {
        let quota = self
            .quota
            .figures()
            .into_iter()
            .map(|s| QuotaRow {
                held: s.hold.is_some(),
                registry: s.registry,
                identity: s.identity,
                limit: s.limit,
                remaining: s.remaining,
                window_secs: s.window_secs,
                seen_at: s.seen_at,
            })
            .collect();
        let downloads_in_flight = self.inflight.lock().map_or(0, |m| m.len() as u64);
        FetchFigures {
            quota,
            downloads_in_flight,
            cache: self.cache_figures().await,
            max_size: self.max_size.get().copied(),
        }
    }

    async fn cache_figures(&self) -> Option<CacheFigures> {
        let stored = (crate::cache::stored_count(), self.metrics.evictions());
        let kept = self.blob_totals.lock().ok().and_then(|t| *t);
        if let Some(t) = kept
            && t.stored == stored
            && t.at.elapsed() < WALK_KEPT
        {
            return Some(t.figures);
        }
        match self.on_disk(|c| c.blob_totals()).await {
            Ok((blobs, bytes)) => {
                let figures = CacheFigures { bytes, blobs };
                if let Ok(mut t) = self.blob_totals.lock() {
                    *t = Some(BlobTotals {
                        at: Instant::now(),
                        stored,
                        figures,
                    });
                }
                Some(figures)
            }
            Err(e) => {
                tracing::debug!("the cache's size for /metrics: {e}");
                None
            }
        }
    }
}
