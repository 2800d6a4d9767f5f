//! The server's live figures (requests, cache hits and misses) and its idle
//! clock, kept in atomics so the request path pays a few relaxed adds; read
//! by `GET /_dpx/status` and by the idle stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::fetch::{CacheStatus, PullCounts, QuotaSeen};

/// The status endpoint's path: outside `/v2/`, so no registry client asks it.
pub const STATUS_PATH: &str = "/_dpx/status";

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    started_unix: u64,
    requests: AtomicU64,
    hit: AtomicU64,
    miss: AtomicU64,
    revalidated: AtomicU64,
    stale: AtomicU64,
    in_flight: AtomicUsize,
    /// When the last request ended, in ms since `started`.
    last_ms: AtomicU64,
}

/// What `GET /_dpx/status` answers (JSON). `dpx daemon status` reads it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerStatus {
    pub pid: u32,
    pub version: String,
    /// Unix seconds.
    pub started_at: u64,
    pub uptime_secs: u64,
    /// Requests served (the status endpoint's own are not counted).
    pub requests: u64,
    pub in_flight: usize,
    /// Seconds since the last request ended (or since start).
    pub idle_secs: u64,
    /// `None`: the server never stops for being idle.
    pub idle_timeout_secs: Option<u64>,
    /// Manifest and blob answers by cache status: served from the cache
    /// (`hit`, and `revalidated`/`stale` tags) or fetched upstream (`miss`).
    pub hits: u64,
    pub misses: u64,
    pub revalidated: u64,
    pub stale: u64,
    /// The pull quota as this server sees it; filled by `snapshot`'s caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaStatus>,
}

/// The rate-limit figures last seen and the manifest requests this server
/// answered without spending a pull.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaStatus {
    pub pulls: PullCounts,
    /// The part of `pulls` not yet written to the cache's record (`dpx stats`
    /// adds it to the record for live figures).
    #[serde(default)]
    pub unwritten: PullCounts,
    pub figures: Vec<QuotaSeen>,
}

impl Stats {
    pub fn new() -> Arc<Stats> {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Arc::new(Stats {
            started: Instant::now(),
            started_unix,
            requests: AtomicU64::new(0),
            hit: AtomicU64::new(0),
            miss: AtomicU64::new(0),
            revalidated: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_ms: AtomicU64::new(0),
        })
    }

    /// A request begins; it is in flight (and the server not idle) until
    /// the returned guard goes with the response body.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Counts a response by the cache status it carries in the log line.
    pub fn count(&self, cache: CacheStatus) {
        let counter = match cache {
            CacheStatus::Hit => &self.hit,
            CacheStatus::Miss => &self.miss,
            CacheStatus::Revalidated => &self.revalidated,
            CacheStatus::Stale => &self.stale,
            CacheStatus::Untracked => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn since_start_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.since_start_ms().saturating_sub(last))
    }

    /// Resolves once no request has been in flight for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            let idle = self.idle_for();
            let busy = self.in_flight.load(Ordering::Relaxed) > 0;
            if !busy && idle >= timeout {
                return;
            }
            // Check again when the timeout could first be reached; while a
            // request is in flight, once a second (or once a timeout).
            let wait = if busy {
                timeout.min(Duration::from_secs(1))
            } else {
                timeout.saturating_sub(idle)
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }

    pub fn snapshot(&self, idle_timeout: Option<Duration>) -> ServerStatus {
        ServerStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: self.started_unix,
            uptime_secs: self.started.elapsed().as_secs(),
            requests: self.requests.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            idle_secs: self.idle_for().as_secs(),
            idle_timeout_secs: idle_timeout.map(|t| t.as_secs()),
            hits: self.hit.load(Ordering::Relaxed),
            misses: self.miss.load(Ordering::Relaxed),
            revalidated: self.revalidated.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            quota: None,
        }
    }
}

/// A request in flight, for the idle clock; dropped with the response body.
pub struct InFlight(Arc<Stats>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let now = self.0.since_start_ms();
        self.0.last_ms.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_in_flight_requests_and_then_the_timeout() {
        let stats = Stats::new();
        let request = stats.begin();
        let timeout = Duration::from_millis(100);
        let idle = stats.idle(timeout);
        tokio::pin!(idle);
        // In flight for longer than the timeout: not idle.
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut idle)
                .await
                .is_err()
        );
        drop(request);
        stats.count(CacheStatus::Hit);
        stats.count(CacheStatus::Miss);
        stats.count(CacheStatus::Untracked);
        let s = stats.snapshot(Some(timeout));
        assert_eq!((s.requests, s.hits, s.misses, s.in_flight), (1, 1, 1, 0));
        tokio::time::timeout(Duration::from_secs(30), idle)
            .await
            .expect("idle after the timeout");
    }
}
