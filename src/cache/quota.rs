//! Two small JSON records about the upstream pull quota, shared by every dpx
//! process on the cache and kept across restarts:
//!
//! - `quota/ratelimits.json`: the last rate-limit figures seen per registry
//!   and identity (and the hold on manifest GETs after a 429);
//! - `quota/stats.json`: cumulative counts of manifest requests answered
//!   from the cache and of manifest requests sent upstream, and the same
//!   counts per hour for the last 24 hours (the status page's chart).
//!
//! Processes write them in batches (see `fetch::quota`), each a
//! read-merge-write under a lock file, so no process loses another's update.

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, read_record, write_atomic};
use crate::fsutil::{Access, Held, LockFile};

/// The rate-limit figures of one upstream reply, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaSeen {
    /// The registry host, e.g. `docker.io`.
    pub registry: String,
    /// Whom the quota counts against: the reply's `docker-ratelimit-source`
    /// (an IP when anonymous, an account id when signed in), else `account`.
    pub identity: String,
    /// The account dpx asked as: a user name, or "anonymous".
    pub account: String,
    /// Whether the request carried credentials.
    pub authenticated: bool,
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// The quota window in seconds (`w=`).
    pub window_secs: Option<u64>,
    /// Unix seconds when the reply was seen.
    pub seen_at: u64,
    /// After a 429 to a manifest GET: manifest GETs are held back until a
    /// reply shows quota left (`fetch::quota`). Older records' `paused_until`
    /// (a fixed end, up to the whole window) is read as no hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}

/// Manifest GETs held back after a 429, until a free probe (a manifest HEAD)
/// or any other reply shows quota left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Unix seconds of the 429 that began the hold.
    pub since: u64,
    /// Unix seconds from which one probe may look whether quota is back: the
    /// 429's `Retry-After` when it gave one, else a backoff.
    pub next_probe_at: u64,
    /// The wait before the probe after next (grows up to a cap).
    pub backoff_secs: u64,
}

impl QuotaSeen {
    fn key(&self) -> (String, String) {
        (self.registry.clone(), self.identity.clone())
    }

    /// Whether this reply shows quota left, which ends any hold before it.
    pub fn shows_quota_left(&self) -> bool {
        self.hold.is_none() && self.remaining.is_some_and(|r| r > 0)
    }
}

/// Keeps, per registry and identity, the figures seen last. A hold lasts
/// until a later reply shows quota left (for the same account: the identity
/// a 429 was recorded under may differ from the one a later reply names); a
/// later reply that shows none keeps it (a probe moves its next probe on).
pub fn merge_seen(old: Vec<QuotaSeen>, new: Vec<QuotaSeen>) -> Vec<QuotaSeen> {
    let mut by_key: HashMap<(String, String), QuotaSeen> = HashMap::new();
    for seen in old.into_iter().chain(new) {
        match by_key.get_mut(&seen.key()) {
            Some(kept) => {
                let (older, mut newer) = if seen.seen_at >= kept.seen_at {
                    (kept.hold, seen)
                } else {
                    (seen.hold, kept.clone())
                };
                if !newer.shows_quota_left() {
                    newer.hold = match (older, newer.hold) {
                        (Some(o), Some(n)) => Some(Hold {
                            since: o.since.min(n.since),
                            ..n
                        }),
                        (o, n) => n.or(o),
                    };
                }
                *kept = newer;
            }
            None => {
                by_key.insert(seen.key(), seen);
            }
        }
    }
    let mut all: Vec<QuotaSeen> = by_key.into_values().collect();
    // A reply with quota left ends the older holds of its account too; one
    // in the same second as well (seconds are all a record keeps, and a
    // hold kept wrongly costs a wait, lifted wrongly only one more 429).
    let lifted: Vec<(String, String, u64)> = all
        .iter()
        .filter(|s| s.shows_quota_left())
        .map(|s| (s.registry.clone(), s.account.clone(), s.seen_at))
        .collect();
    for s in all.iter_mut().filter(|s| s.hold.is_some()) {
        if lifted
            .iter()
            .any(|(r, a, at)| *r == s.registry && *a == s.account && *at >= s.seen_at)
        {
            s.hold = None;
        }
    }
    all.sort_by(|a, b| (&a.registry, &a.identity).cmp(&(&b.registry, &b.identity)));
    all
}

/// The record of the hold on manifest GETs to `registry` as `account`, if
/// one holds: the latest held record of the account (`merge_seen` has ended
/// those a later reply with quota left lifted, under any identity).
pub fn held(figures: &[QuotaSeen], registry: &str, account: &str) -> Option<usize> {
    figures
        .iter()
        .enumerate()
        .filter(|(_, s)| s.registry == registry && s.account == account && s.hold.is_some())
        .max_by_key(|(_, s)| s.seen_at)
        .map(|(i, _)| i)
}

/// Manifest requests by how they were answered, and what went upstream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullCounts {
    /// Answered from the cache without asking upstream (a tag within its
    /// TTL, or a manifest by digest).
    pub cache_hits: u64,
    /// Tags answered from the cache after a HEAD upstream (free on Docker
    /// Hub) confirmed the cached digest.
    pub revalidated: u64,
    /// Answered from the cache because the upstream failed.
    pub stale_upstream_failed: u64,
    /// Answered from the cache instead of spending a pull: the quota was at
    /// the reserve, or paused after a 429.
    pub stale_quota_saved: u64,
    /// Manifest GETs the upstream answered 200: each is a pull on Docker
    /// Hub (one that failed is not counted there, nor here).
    pub upstream_manifest_gets: u64,
    /// Manifest HEADs sent upstream (not counted as pulls by Docker Hub).
    pub upstream_manifest_heads: u64,
}

impl PullCounts {
    pub fn add(&mut self, other: &PullCounts) {
        self.cache_hits = self.cache_hits.saturating_add(other.cache_hits);
        self.revalidated = self.revalidated.saturating_add(other.revalidated);
        self.stale_upstream_failed = self
            .stale_upstream_failed
            .saturating_add(other.stale_upstream_failed);
        self.stale_quota_saved = self
            .stale_quota_saved
            .saturating_add(other.stale_quota_saved);
        self.upstream_manifest_gets = self
            .upstream_manifest_gets
            .saturating_add(other.upstream_manifest_gets);
        self.upstream_manifest_heads = self
            .upstream_manifest_heads
            .saturating_add(other.upstream_manifest_heads);
    }

    pub fn is_zero(&self) -> bool {
        *self == PullCounts::default()
    }

    /// Manifest requests answered without a GET upstream.
    pub fn answered_without_get(&self) -> u64 {
        self.cache_hits
            .saturating_add(self.revalidated)
            .saturating_add(self.stale_upstream_failed)
            .saturating_add(self.stale_quota_saved)
    }
}

/// The cumulative counts on disk, and since when they are counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullStats {
    /// Unix seconds of the first count recorded.
    pub since: u64,
    /// Unix seconds of the last batch written.
    pub updated_at: u64,
    #[serde(flatten)]
    pub counts: PullCounts,
    /// The counts per hour, oldest first, for the last `HOURS_KEPT` hours
    /// (a record written before they were kept has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hours: Vec<HourCounts>,
}

/// How many hourly buckets `stats.json` keeps.
pub const HOURS_KEPT: u64 = 24;

/// The counts of the batches written in one hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HourCounts {
    /// Unix seconds of the hour's start (a multiple of 3600).
    pub hour: u64,
    #[serde(flatten)]
    pub counts: PullCounts,
}

impl PullStats {
    /// Adds `delta` to the totals and to the bucket of the hour `now` is in,
    /// dropping buckets older than `HOURS_KEPT` hours.
    pub fn add_at(&mut self, delta: &PullCounts, now: u64) {
        if self.since == 0 {
            self.since = now;
        }
        self.updated_at = now;
        self.counts.add(delta);
        let hour = now - now % 3600;
        match self.hours.iter_mut().find(|h| h.hour == hour) {
            Some(bucket) => bucket.counts.add(delta),
            None => self.hours.push(HourCounts {
                hour,
                counts: *delta,
            }),
        }
        self.keep_recent(now);
    }

    /// Keeps only the buckets of the last `HOURS_KEPT` hours up to `now`'s,
    /// oldest first (a clock set back leaves no bucket from the future).
    pub fn keep_recent(&mut self, now: u64) {
        let current = now - now % 3600;
        let oldest = current.saturating_sub((HOURS_KEPT - 1) * 3600);
        self.hours.retain(|h| h.hour >= oldest && h.hour <= current);
        self.hours.sort_by_key(|h| h.hour);
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct SeenRecord {
    figures: Vec<QuotaSeen>,
}

impl Cache {
    fn quota_path(&self, name: &str) -> PathBuf {
        self.root.join("quota").join(name)
    }

    /// The rate-limit figures recorded by any process (empty when none).
    pub fn read_quota_seen(&self) -> Result<Vec<QuotaSeen>, CacheError> {
        Ok(
            read_record::<SeenRecord>(self.quota_path("ratelimits.json"))?
                .unwrap_or_default()
                .figures,
        )
    }

    /// Merges `new` into the recorded figures (`merge_seen`) and returns the
    /// result. Blocking: call off the async workers.
    pub fn merge_quota_seen(&self, new: Vec<QuotaSeen>) -> Result<Vec<QuotaSeen>, CacheError> {
        let path = self.quota_path("ratelimits.json");
        let _lock = self.record_lock("ratelimits")?;
        let old = read_record::<SeenRecord>(path.clone())?.unwrap_or_default();
        let figures = merge_seen(old.figures, new);
        self.write_quota_seen(figures)
    }

    /// Reads the recorded figures, lets `change` edit them, and writes them
    /// back when it says so (`Some`), all under the record's lock: how one
    /// process claims the one probe of a hold. Returns what `change` said and
    /// the figures now recorded. Blocking: call off the async workers.
    pub fn update_quota_seen<T>(
        &self,
        change: impl FnOnce(&mut Vec<QuotaSeen>) -> Option<T>,
    ) -> Result<(Option<T>, Vec<QuotaSeen>), CacheError> {
        let path = self.quota_path("ratelimits.json");
        let _lock = self.record_lock("ratelimits")?;
        let mut figures = read_record::<SeenRecord>(path)?.unwrap_or_default().figures;
        match change(&mut figures) {
            Some(said) => Ok((Some(said), self.write_quota_seen(figures)?)),
            None => Ok((None, figures)),
        }
    }

    fn write_quota_seen(&self, figures: Vec<QuotaSeen>) -> Result<Vec<QuotaSeen>, CacheError> {
        let path = self.quota_path("ratelimits.json");
        let record = SeenRecord { figures };
        let json = serde_json::to_vec_pretty(&record)
            .map_err(|e| CacheError::write(&path, io::Error::other(e)))?;
        write_atomic(self, &path, &json)?;
        Ok(record.figures)
    }

    /// The cumulative counts of every process (zero when none recorded).
    pub fn read_pull_stats(&self) -> Result<PullStats, CacheError> {
        Ok(read_record(self.quota_path("stats.json"))?.unwrap_or_default())
    }

    /// Adds one process's counts since its last batch to the cumulative
    /// ones. Blocking: call off the async workers.
    pub fn add_pull_counts(&self, delta: &PullCounts) -> Result<PullStats, CacheError> {
        let path = self.quota_path("stats.json");
        let _lock = self.record_lock("stats")?;
        let mut stats: PullStats = read_record(path.clone())?.unwrap_or_default();
        stats.add_at(delta, super::now_secs());
        let json = serde_json::to_vec_pretty(&stats)
            .map_err(|e| CacheError::write(&path, io::Error::other(e)))?;
        write_atomic(self, &path, &json)?;
        Ok(stats)
    }

    /// The lock of one record's read-merge-write: held for a few
    /// milliseconds, so waiting for it (blocking) is fine off the runtime.
    fn record_lock(&self, name: &str) -> Result<Held, CacheError> {
        let path = self.root.join("locks").join(format!("record-{name}.lock"));
        loop {
            let held = LockFile::open(&path)
                .and_then(|file| file.lock(Access::Exclusive))
                .map_err(|e| CacheError::write(&path, e))?;
            // The sweep removes free lock files: one no longer at `path` is no lock.
            if super::locks::is_at(held.file(), &path) {
                return Ok(held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(since: u64) -> Option<Hold> {
        Some(Hold {
            since,
            next_probe_at: since + 30,
            backoff_secs: 30,
        })
    }

    fn seen(identity: &str, remaining: u64, at: u64, hold: Option<Hold>) -> QuotaSeen {
        QuotaSeen {
            registry: "docker.io".into(),
            identity: identity.into(),
            account: "anonymous".into(),
            authenticated: false,
            limit: Some(100),
            remaining: Some(remaining),
            window_secs: Some(21600),
            seen_at: at,
            hold,
        }
    }

    #[test]
    fn the_latest_figures_win_and_holds_last_until_quota_shows() {
        let merged = merge_seen(
            vec![seen("a", 0, 100, held(100)), seen("b", 5, 100, None)],
            vec![seen("a", 0, 200, None), seen("b", 7, 50, None)],
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].seen_at, 200);
        assert_eq!(merged[0].hold, held(100), "a reply with none left keeps it");
        assert_eq!(merged[1].remaining, Some(5), "an older reply loses");
        // A later reply with quota left lifts it, whichever side it is on.
        for (old, new) in [
            (seen("a", 0, 100, held(100)), seen("a", 1, 300, None)),
            (seen("a", 1, 300, None), seen("a", 0, 100, held(100))),
        ] {
            let merged = merge_seen(vec![old], vec![new]);
            assert_eq!((merged[0].remaining, merged[0].hold), (Some(1), None));
        }
        // Two holds: the later one's next probe, the first one's start.
        let later = Hold {
            since: 150,
            next_probe_at: 400,
            backoff_secs: 60,
        };
        let merged = merge_seen(
            vec![seen("a", 0, 100, held(100))],
            vec![seen("a", 0, 150, Some(later))],
        );
        assert_eq!(
            merged[0].hold,
            Some(Hold {
                since: 100,
                ..later
            })
        );
        // The same account under another identity lifts it too.
        let merged = merge_seen(
            vec![seen("anonymous", 0, 100, held(100))],
            vec![seen("192.0.2.1", 3, 200, None)],
        );
        assert!(merged.iter().all(|s| s.hold.is_none()), "{merged:?}");
        // ... also in the same second (records keep whole seconds).
        let merged = merge_seen(
            vec![seen("anonymous", 0, 100, held(100))],
            vec![seen("192.0.2.1", 3, 100, None)],
        );
        assert!(merged.iter().all(|s| s.hold.is_none()), "{merged:?}");
    }

    #[test]
    fn only_a_reply_without_a_hold_and_with_quota_left_shows_quota_left() {
        assert!(seen("a", 1, 100, None).shows_quota_left());
        assert!(!seen("a", 0, 100, None).shows_quota_left());
        assert!(!seen("a", 1, 100, held(100)).shows_quota_left());
        let unknown = QuotaSeen {
            remaining: None,
            ..seen("a", 1, 100, None)
        };
        assert!(!unknown.shows_quota_left());
    }

    #[test]
    fn of_two_replies_in_the_same_second_the_one_merged_last_wins() {
        let merged = merge_seen(vec![seen("a", 5, 100, None)], vec![seen("a", 7, 100, None)]);
        assert_eq!(merged[0].remaining, Some(7));
    }

    #[test]
    fn quota_left_lifts_only_its_own_registrys_and_accounts_holds() {
        let mut ghcr = seen("a", 9, 200, None);
        ghcr.registry = "ghcr.io".into();
        let mut ci = seen("ci-id", 9, 200, None);
        ci.account = "ci".into();
        let merged = merge_seen(vec![seen("a", 0, 100, held(100))], vec![ghcr, ci]);
        let docker = merged
            .iter()
            .find(|s| s.registry == "docker.io" && s.account == "anonymous")
            .expect("the held record");
        assert_eq!(docker.hold, held(100));
    }

    #[test]
    fn the_hold_is_the_latest_held_record_of_the_registry_and_account() {
        let mut ghcr = seen("a", 0, 500, held(500));
        ghcr.registry = "ghcr.io".into();
        let mut ci = seen("ci-id", 0, 400, held(400));
        ci.account = "ci".into();
        let figures = vec![
            seen("a", 0, 100, held(100)),
            seen("b", 0, 300, held(300)),
            seen("c", 0, 350, None),
            ghcr,
            ci,
        ];
        assert_eq!(super::held(&figures, "docker.io", "anonymous"), Some(1));
        assert_eq!(super::held(&figures, "docker.io", "ci"), Some(4));
        assert_eq!(super::held(&figures, "ghcr.io", "anonymous"), Some(3));
        assert_eq!(super::held(&figures, "quay.io", "anonymous"), None);
        assert_eq!(super::held(&figures[2..3], "docker.io", "anonymous"), None);
    }

    #[test]
    fn an_update_writes_only_what_the_change_says_to() {
        let (_dir, cache) = crate::cache::testing::temp_cache();
        cache
            .merge_quota_seen(vec![seen("a", 10, 100, None)])
            .unwrap();
        let (said, figures) = cache.update_quota_seen(|_| None::<()>).unwrap();
        assert_eq!((said, figures.len()), (None, 1), "the figures as read");
        let (said, figures) = cache
            .update_quota_seen(|f| {
                f[0].remaining = Some(3);
                Some("claimed")
            })
            .unwrap();
        assert_eq!((said, figures[0].remaining), (Some("claimed"), Some(3)));
        assert_eq!(cache.read_quota_seen().unwrap()[0].remaining, Some(3));
    }
    #[test]
    fn a_record_with_the_old_fixed_pause_reads_as_no_hold() {
        let old = r#"{"registry":"docker.io","identity":"a","account":"anonymous","authenticated":false,"limit":100,"remaining":0,"window_secs":21600,"seen_at":1,"paused_until":99999999999}"#;
        let s: QuotaSeen = serde_json::from_str(old).unwrap();
        assert_eq!(s.hold, None);
    }

    #[test]
    fn records_survive_reopening_and_counts_add_up() {
        let (dir, cache) = crate::cache::testing::temp_cache();
        assert!(cache.read_quota_seen().unwrap().is_empty());
        cache
            .merge_quota_seen(vec![seen("a", 10, 100, None)])
            .unwrap();
        cache
            .merge_quota_seen(vec![seen("b", 3, 100, None)])
            .unwrap();
        let delta = PullCounts {
            cache_hits: 2,
            upstream_manifest_gets: 1,
            ..PullCounts::default()
        };
        cache.add_pull_counts(&delta).unwrap();
        cache.add_pull_counts(&delta).unwrap();
        drop(cache);
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.read_quota_seen().unwrap().len(), 2);
        let stats = cache.read_pull_stats().unwrap();
        assert_eq!(stats.counts.cache_hits, 4);
        assert_eq!(stats.counts.upstream_manifest_gets, 2);
        assert!(stats.since > 0);
        assert_eq!(stats.hours.len(), 1, "both batches in this hour");
        assert_eq!(stats.hours[0].counts, stats.counts);
    }

    #[test]
    fn hourly_buckets_keep_the_last_day_only() {
        let one = PullCounts {
            cache_hits: 1,
            ..PullCounts::default()
        };
        let mut stats = PullStats::default();
        let start = 1_000 * 3600;
        for h in 0..30 {
            stats.add_at(&one, start + h * 3600 + 59);
        }
        stats.add_at(&one, start + 29 * 3600 + 120);
        assert_eq!(stats.hours.len(), HOURS_KEPT as usize);
        assert_eq!(stats.hours[0].hour, start + 6 * 3600);
        assert_eq!(stats.hours[23].hour, start + 29 * 3600);
        assert_eq!(stats.hours[23].counts.cache_hits, 2);
        assert_eq!(stats.counts.cache_hits, 31, "the totals keep everything");
        // A clock set back: no bucket stays in its future.
        stats.add_at(&one, start + 10 * 3600);
        assert_eq!(stats.hours.last().map(|h| h.hour), Some(start + 10 * 3600));
        assert!(stats.hours.len() <= HOURS_KEPT as usize);
    }

    #[test]
    fn a_stats_record_without_hours_still_reads() {
        let old = r#"{"since":5,"updated_at":9,"cache_hits":3,"revalidated":0,"stale_upstream_failed":0,"stale_quota_saved":0,"upstream_manifest_gets":2,"upstream_manifest_heads":1}"#;
        let s: PullStats = serde_json::from_str(old).unwrap();
        assert_eq!((s.counts.cache_hits, s.hours.len()), (3, 0));
        // And an older dpx reading a new record ignores the buckets.
        let mut new = s.clone();
        new.add_at(&s.counts, 7200);
        let json = serde_json::to_string(&new).unwrap();
        let back: PullStats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, new);
    }
}
