//! `[cache] max_size`: keeps the cache in budget while `dpx serve` runs,
//! evicting the least recently used content in the background. It checks at
//! start and then, at most every few seconds, only after new blobs came in.

use std::time::Duration;

use crate::cache::{Cache, Policy, stored_count};

/// The least time between two checks: a check walks the whole cache.
const CHECK_EVERY: Duration = Duration::from_secs(5);

/// Runs until the process ends.
pub fn spawn_evictor(cache: Cache, max_size: u64) {
    tokio::spawn(async move {
        let mut seen = None;
        let mut warned = false;
        loop {
            let now = stored_count();
            if seen != Some(now) {
                seen = Some(now);
                let cache = cache.clone();
                // One blocking task per check: the walk and the removals are disk work.
                let result =
                    tokio::task::spawn_blocking(move || evict(&cache, max_size, warned)).await;
                match result {
                    Ok(w) => warned = w,
                    Err(e) => tracing::warn!("cache eviction stopped: {e}"),
                }
            }
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
}

/// One eviction pass; returns whether the warning that `max_size` is below
/// one image has been given (`warned`: before this pass), so it is given once.
fn evict(cache: &Cache, max_size: u64, warned: bool) -> bool {
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
