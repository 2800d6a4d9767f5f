//! Spending the pull quota wisely. Every upstream reply's figures land here
//! (`observe`); the fetcher asks `spare_tag` before it would GET a cached
//! tag's manifest, and `take_pull` before any manifest GET:
//!
//! - after a 429 to a manifest GET, manifest GETs are held back (a 429 is
//!   not retried within the request either). Docker Hub's window rolls: each
//!   pull stops counting one window after it was made, so quota comes back a
//!   little at a time. One free probe at a time (a manifest HEAD, which Docker
//!   Hub does not count) looks whether it is back, first after the 429's
//!   `Retry-After` when given, else after `ProbeBackoff::start`, then at
//!   growing intervals up to `ProbeBackoff::max`; the probe is claimed in the
//!   cache's record, so one process probes for all. Any reply that shows quota
//!   left (a probe, `dpx ratelimit`, another process's pull) lifts the hold.
//!   HEADs are never held back;
//! - at or below `[ratelimit] reserve` remaining pulls, `dpx serve` answers a
//!   cached tag from the cache instead of spending a GET (the HEAD, free,
//!   still tells whether the cached digest is current), and a prefetch stops;
//! - `prefetch --max-pulls N` stops before the N+1st manifest GET.
//!
//! Figures and counts are kept in memory and written in batches with the
//! last-use times (`Fetcher::flush_usage`); what other processes wrote is
//! merged in at each batch. A hold begun or lifted is written at once
//! (`take_hold_changed`), and while one holds, every decision reads the
//! record first, so every process on the cache sees the same hold.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::sync::atomic::AtomicBool;

use crate::cache::{Hold, PullCounts, QuotaSeen, held, merge_seen, now_secs};
use crate::registry::{Asked, UpstreamReply};

/// The account name of requests without credentials.
pub const ANONYMOUS: &str = "anonymous";

/// How often a hold probes whether quota is back: `start` after the 429,
/// then twice as long after each probe that finds none, up to `max`
/// (`[ratelimit] probe_interval`, `probe_interval_max`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeBackoff {
    pub start: Duration,
    pub max: Duration,
}

impl Default for ProbeBackoff {
    fn default() -> ProbeBackoff {
        ProbeBackoff::from_config(&crate::config::RatelimitConfig::default())
    }
}

impl ProbeBackoff {
    pub fn from_config(ratelimit: &crate::config::RatelimitConfig) -> ProbeBackoff {
        let (start, max) = ratelimit.probe_intervals();
        ProbeBackoff { start, max }
    }
}

/// What a process may spend.
#[derive(Debug, Clone, Copy, Default)]
pub struct PullPolicy {
    /// `[ratelimit] reserve`: pulls to leave for whatever else shares the quota.
    pub reserve: Option<u64>,
    /// At the reserve, fail (a prefetch) rather than serve a cached tag stale (serve).
    pub stop_at_reserve: bool,
    /// `prefetch --max-pulls`: manifest GETs this process may send.
    pub max_pulls: Option<u64>,
    /// How a hold after a 429 probes for quota.
    pub probe: ProbeBackoff,
}

/// Docker Hub's rolling window when a reply does not say (`w=21600`).
const DEFAULT_WINDOW_SECS: u64 = 21_600;

/// Why a manifest is not asked upstream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaStop {
    #[error(
        "the pull quota of {identity} on {registry} is used up (429 Too Many Requests at {}); dpx sends it no manifest GET until a free check shows quota back, and looks again at {} (in {}s)",
        rfc3339(*since), rfc3339(*next_probe_at), next_probe_at.saturating_sub(now_secs())
    )]
    Held {
        registry: String,
        identity: String,
        since: u64,
        next_probe_at: u64,
    },
    #[error(
        "{registry} has {remaining} pulls left for {identity}, at or below the reserve of {reserve} ([ratelimit] reserve)"
    )]
    Reserve {
        registry: String,
        identity: String,
        remaining: u64,
        reserve: u64,
    },
    #[error("{max} manifest GETs spent, the most --max-pulls allows")]
    MaxPulls { max: u64 },
}

impl QuotaStop {
    /// Unix seconds when asking upstream may work again, when known.
    pub fn retry_at(&self) -> Option<u64> {
        match self {
            QuotaStop::Held { next_probe_at, .. } => Some(*next_probe_at),
            _ => None,
        }
    }

    /// Seconds until then, for a `Retry-After` (at least 1: 0 reads as "now").
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_at()
            .map(|at| at.saturating_sub(now_secs()).max(1))
    }
}

/// Unix seconds as an RFC 3339 time. A time past 9999-12-31T23:59:59Z (a
/// `Retry-After` can ask for one) is shown as that: humantime has no later
/// year, and `SystemTime` no time as far as u64::MAX seconds.
pub fn rfc3339(secs: u64) -> String {
    const LAST: u64 = 253_402_300_799;
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(secs.min(LAST)))
        .to_string()
}

/// Why a cached tag was served without the GET it needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spare {
    /// The remaining quota was at or below the reserve.
    Reserve,
    /// Held back after a 429.
    RateLimited,
}

impl Spare {
    pub fn as_str(self) -> &'static str {
        match self {
            Spare::Reserve => "reserve",
            Spare::RateLimited => "rate-limited",
        }
    }
}

#[derive(Default)]
struct Counters {
    cache_hits: AtomicU64,
    revalidated: AtomicU64,
    stale_upstream_failed: AtomicU64,
    stale_quota_saved: AtomicU64,
    upstream_manifest_gets: AtomicU64,
    upstream_manifest_heads: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> PullCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        PullCounts {
            cache_hits: get(&self.cache_hits),
            revalidated: get(&self.revalidated),
            stale_upstream_failed: get(&self.stale_upstream_failed),
            stale_quota_saved: get(&self.stale_quota_saved),
            upstream_manifest_gets: get(&self.upstream_manifest_gets),
            upstream_manifest_heads: get(&self.upstream_manifest_heads),
        }
    }
}

/// What a manifest request was answered with, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    CacheHit,
    Revalidated,
    StaleUpstreamFailed,
    StaleQuotaSaved,
    /// Fetched upstream: the GET is counted when its reply comes.
    Fetched,
}

#[derive(Default)]
pub struct Quota {
    policy: PullPolicy,
    /// The figures known, by (registry, identity): recorded ones merged with
    /// those seen here.
    figures: Mutex<HashMap<(String, String), QuotaSeen>>,
    /// Figures seen here and not yet written.
    unwritten: Mutex<Vec<QuotaSeen>>,
    counters: Counters,
    /// The counts already written (the next batch adds what is beyond).
    written: Mutex<PullCounts>,
    /// Manifest GETs this process has decided to send (`max_pulls`).
    pulls_taken: AtomicU64,
    /// Per registry, the tickets of manifest GETs let go whose reply has not
    /// come yet: the last remaining count seen does not include them
    /// (parallel prefetch jobs). A GET whose reply was seen leaves the list
    /// at once, though its ticket lives until its body is read, so its pull
    /// is never counted twice (in the figures and as under way).
    in_flight: Mutex<HashMap<String, VecDeque<u64>>>,
    next_ticket: AtomicU64,
    /// A hold began or was lifted here and is not yet written.
    hold_changed: AtomicBool,
}

impl Quota {
    pub fn new(policy: PullPolicy) -> Quota {
        Quota {
            policy,
            ..Quota::default()
        }
    }

    /// Records one upstream reply: its figures, a 429's pause, the counts.
    pub fn observe(&self, reply: &UpstreamReply) {
        // A request turned away for want of a token is no request at all.
        if reply.status == 401 {
            return;
        }
        match reply.asked {
            Asked::ManifestGet => {
                // A pull as Docker Hub counts them: a manifest GET answered
                // 200; one that failed (5xx, 429, 404) took no quota.
                if reply.status == 200 {
                    bump(&self.counters.upstream_manifest_gets);
                }
                // Its figures now include it. Replies are told in any order:
                // the oldest GET under way stands for the one answered.
                if reply.rate_limit.is_some()
                    && let Ok(mut in_flight) = self.in_flight.lock()
                    && let Some(tickets) = in_flight.get_mut(&reply.registry)
                {
                    tickets.pop_front();
                }
            }
            Asked::ManifestHead => bump(&self.counters.upstream_manifest_heads),
            Asked::Other => {}
        }
        // A 429 to a pull is the quota spent; to a HEAD (which Docker Hub
        // does not count) it is some other throttle, retried as usual.
        let refused = reply.status == 429 && reply.asked == Asked::ManifestGet;
        if reply.rate_limit.is_none() && !refused {
            return;
        }
        let account = reply
            .account
            .clone()
            .unwrap_or_else(|| ANONYMOUS.to_string());
        let rl = reply.rate_limit.as_ref();
        let now = now_secs();
        let mut seen = QuotaSeen {
            registry: reply.registry.clone(),
            identity: rl
                .and_then(|r| r.source.clone())
                .unwrap_or_else(|| account.clone()),
            account,
            authenticated: reply.account.is_some(),
            limit: rl.and_then(|r| r.limit),
            remaining: rl.and_then(|r| r.remaining),
            window_secs: rl.and_then(|r| r.window_secs),
            seen_at: now,
            hold: None,
        };
        let held_before = self.hold(&seen.registry, &seen.account).is_some();
        if refused {
            let start = self.policy.probe.start.as_secs().max(1);
            // A `Retry-After` wins: no probe before it (a second later, for the
            // clocks' difference: asking a moment early only earns another 429).
            // It never waits longer than one rate-limit window (6 hours on
            // Docker Hub when the reply says none): every pull counted has
            // aged out of a rolling window by then, so a far-future date is
            // wrong, and must not hold the cache for ever.
            let window = seen.window_secs.unwrap_or(DEFAULT_WINDOW_SECS).max(start);
            let first = reply
                .retry_after
                .map_or(start, |d| d.as_secs().saturating_add(1).min(window));
            let hold = Hold {
                since: now,
                next_probe_at: now.saturating_add(first),
                backoff_secs: start,
            };
            seen.hold = Some(hold);
            seen.remaining = seen.remaining.or(Some(0));
            self.hold_changed.store(true, Ordering::SeqCst);
            tracing::warn!(
                "{} answered 429 Too Many Requests (pull quota of {} used up); manifest GETs to it are held back until a free check shows quota again, the first at {}",
                seen.registry,
                seen.identity,
                rfc3339(hold.next_probe_at)
            );
        } else if held_before && seen.shows_quota_left() {
            self.hold_changed.store(true, Ordering::SeqCst);
            tracing::info!(
                "{} shows {} pulls left for {}: manifest GETs are no longer held back",
                seen.registry,
                seen.remaining.unwrap_or(0),
                seen.identity
            );
        }
        self.remember(vec![seen.clone()]);
        if let Ok(mut unwritten) = self.unwritten.lock() {
            unwritten.push(seen);
        }
    }

    fn remember(&self, seen: Vec<QuotaSeen>) {
        if let Ok(mut figures) = self.figures.lock() {
            let old: Vec<QuotaSeen> = figures.drain().map(|(_, v)| v).collect();
            for s in merge_seen(old, seen) {
                figures.insert((s.registry.clone(), s.identity.clone()), s);
            }
        }
    }

    /// The latest figures seen for requests to `registry` as `account`.
    fn latest(&self, registry: &str, account: &str) -> Option<QuotaSeen> {
        let figures = self.figures.lock().ok()?;
        figures
            .values()
            .filter(|s| s.registry == registry && s.account == account)
            .max_by_key(|s| s.seen_at)
            .cloned()
    }

    /// The hold on manifest GETs to `registry` as `account`, if one holds:
    /// the latest reply decides (`merge_seen`).
    pub fn hold(&self, registry: &str, account: &str) -> Option<Hold> {
        self.held(registry, account)?.hold
    }

    fn held(&self, registry: &str, account: &str) -> Option<QuotaSeen> {
        let figures = self.figures();
        held(&figures, registry, account).map(|i| figures[i].clone())
    }

    pub fn probe_backoff(&self) -> ProbeBackoff {
        self.policy.probe
    }

    /// Whether a hold began or ended here since the last call: it is to be
    /// written at once for the other processes.
    pub fn take_hold_changed(&self) -> bool {
        self.hold_changed.swap(false, Ordering::SeqCst)
    }

    /// The remaining count (less the GETs still under way) and identity
    /// when at or below the reserve.
    fn at_reserve(&self, registry: &str, account: &str) -> Option<(u64, String, u64)> {
        let reserve = self.policy.reserve?;
        let latest = self.latest(registry, account)?;
        let in_flight = self
            .in_flight
            .lock()
            .ok()
            .and_then(|f| f.get(registry).map(|t| t.len() as u64))
            .unwrap_or(0);
        let remaining = latest.remaining?.saturating_sub(in_flight);
        (remaining <= reserve).then_some((remaining, latest.identity, reserve))
    }

    /// Whether a cached tag that needs a GET should be served from the cache
    /// instead (`dpx serve` at the reserve, anyone during a hold).
    pub fn spare_tag(&self, registry: &str, account: &str) -> Option<Spare> {
        if self.hold(registry, account).is_some() {
            return Some(Spare::RateLimited);
        }
        if !self.policy.stop_at_reserve && self.at_reserve(registry, account).is_some() {
            return Some(Spare::Reserve);
        }
        None
    }

    /// Asks leave to send one manifest GET to `registry`; the GET counts as
    /// under way until the ticket is dropped.
    pub fn take_pull(&self, registry: &str, account: &str) -> Result<PullTicket<'_>, QuotaStop> {
        if let Some(latest) = self.held(registry, account)
            && let Some(hold) = latest.hold
        {
            return Err(QuotaStop::Held {
                registry: registry.to_string(),
                identity: latest.identity,
                since: hold.since,
                next_probe_at: hold.next_probe_at,
            });
        }
        if self.policy.stop_at_reserve
            && let Some((remaining, identity, reserve)) = self.at_reserve(registry, account)
        {
            return Err(QuotaStop::Reserve {
                registry: registry.to_string(),
                identity,
                remaining,
                reserve,
            });
        }
        if let Some(max) = self.policy.max_pulls {
            let taken = self
                .pulls_taken
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < max).then(|| n.saturating_add(1))
                });
            if taken.is_err() {
                return Err(QuotaStop::MaxPulls { max });
            }
        }
        let id = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight
                .entry(registry.to_string())
                .or_default()
                .push_back(id);
        }
        Ok(PullTicket {
            quota: self,
            registry: registry.to_string(),
            id,
        })
    }

    /// Counts one manifest request by how it was answered.
    pub fn count(&self, answered: Answered) {
        let c = &self.counters;
        match answered {
            Answered::CacheHit => bump(&c.cache_hits),
            Answered::Revalidated => bump(&c.revalidated),
            Answered::StaleUpstreamFailed => bump(&c.stale_upstream_failed),
            Answered::StaleQuotaSaved => bump(&c.stale_quota_saved),
            Answered::Fetched => {}
        }
    }

    /// This process's counts since it started.
    pub fn counts(&self) -> PullCounts {
        self.counters.snapshot()
    }

    /// The counts beyond the last batch written: what a reader of the
    /// record adds for this process's live figures.
    pub fn unwritten_counts(&self) -> PullCounts {
        match self.written.lock() {
            Ok(written) => difference(&self.counts(), &written),
            Err(_) => PullCounts::default(),
        }
    }

    /// The figures known to this process (recorded and seen), sorted.
    pub fn figures(&self) -> Vec<QuotaSeen> {
        let all = self
            .figures
            .lock()
            .map(|f| f.values().cloned().collect())
            .unwrap_or_default();
        merge_seen(all, Vec::new())
    }

    /// Takes what a batch should write: the figures seen since the last
    /// one, and the counts beyond what was written (`None`s when nothing).
    pub fn take_batch(&self) -> (Vec<QuotaSeen>, Option<PullCounts>) {
        let seen = self
            .unwritten
            .lock()
            .map(|mut u| std::mem::take(&mut *u))
            .unwrap_or_default();
        let now = self.counts();
        let delta = match self.written.lock() {
            Ok(mut written) => {
                let delta = difference(&now, &written);
                *written = now;
                delta
            }
            Err(_) => PullCounts::default(),
        };
        (seen, (!delta.is_zero()).then_some(delta))
    }

    /// Gives back a batch that could not be written, for the next one.
    pub fn untake_batch(&self, seen: Vec<QuotaSeen>, delta: Option<PullCounts>) {
        if let Ok(mut unwritten) = self.unwritten.lock() {
            unwritten.extend(seen);
        }
        if let (Some(delta), Ok(mut written)) = (delta, self.written.lock()) {
            *written = difference(&written, &delta);
        }
    }

    /// Takes in what every process recorded.
    pub fn absorb(&self, recorded: Vec<QuotaSeen>) {
        self.remember(recorded);
    }
}

/// Claims the one probe of the hold on `registry` as `account` in `figures`
/// (the cache's record, read under its lock) when it is due at `now`: moves
/// its next probe on by the grown backoff, so no other process probes
/// meanwhile. `None` when no hold is due (nothing to write).
pub fn claim_probe(
    figures: &mut [QuotaSeen],
    registry: &str,
    account: &str,
    now: u64,
    backoff: ProbeBackoff,
) -> Option<Hold> {
    let i = held(figures, registry, account)?;
    let hold = figures.get_mut(i)?.hold.as_mut()?;
    if hold.next_probe_at > now {
        return None;
    }
    let grown = hold
        .backoff_secs
        .saturating_mul(2)
        .clamp(backoff.start.as_secs().max(1), backoff.max.as_secs().max(1));
    hold.backoff_secs = grown;
    hold.next_probe_at = now.saturating_add(grown);
    Some(*hold)
}

/// A manifest GET under way (`take_pull`): held until it has ended, however
/// it ends (its reply's figures, if any, have been seen by then).
pub struct PullTicket<'a> {
    quota: &'a Quota,
    registry: String,
    id: u64,
}

impl Drop for PullTicket<'_> {
    fn drop(&mut self) {
        // Still listed when its GET ended without a reply (or another's
        // reply stood for it): it is under way no more either way.
        if let Ok(mut in_flight) = self.quota.in_flight.lock()
            && let Some(tickets) = in_flight.get_mut(&self.registry)
        {
            tickets.retain(|t| *t != self.id);
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

fn difference(a: &PullCounts, b: &PullCounts) -> PullCounts {
    PullCounts {
        cache_hits: a.cache_hits.saturating_sub(b.cache_hits),
        revalidated: a.revalidated.saturating_sub(b.revalidated),
        stale_upstream_failed: a
            .stale_upstream_failed
            .saturating_sub(b.stale_upstream_failed),
        stale_quota_saved: a.stale_quota_saved.saturating_sub(b.stale_quota_saved),
        upstream_manifest_gets: a
            .upstream_manifest_gets
            .saturating_sub(b.upstream_manifest_gets),
        upstream_manifest_heads: a
            .upstream_manifest_heads
            .saturating_sub(b.upstream_manifest_heads),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RateLimit;

    fn reply(asked: Asked, status: u16, remaining: Option<u64>) -> UpstreamReply {
        UpstreamReply {
            registry: "docker.io".into(),
            account: None,
            asked,
            status,
            rate_limit: remaining.and_then(|r| {
                let mut h = http::HeaderMap::new();
                h.insert("ratelimit-limit", "100;w=60".parse().unwrap());
                h.insert("ratelimit-remaining", format!("{r};w=60").parse().unwrap());
                h.insert("docker-ratelimit-source", "192.0.2.1".parse().unwrap());
                RateLimit::from_headers(&h)
            }),
            retry_after: None,
        }
    }

    #[test]
    fn reserve_spares_tags_in_serve_and_stops_prefetch() {
        let serve = Quota::new(PullPolicy {
            reserve: Some(5),
            ..PullPolicy::default()
        });
        serve.observe(&reply(Asked::ManifestHead, 200, Some(6)));
        assert_eq!(serve.spare_tag("docker.io", ANONYMOUS), None);
        serve.observe(&reply(Asked::ManifestHead, 200, Some(5)));
        assert_eq!(
            serve.spare_tag("docker.io", ANONYMOUS),
            Some(Spare::Reserve)
        );
        // Uncached content is still fetched.
        assert!(serve.take_pull("docker.io", ANONYMOUS).is_ok());
        assert_eq!(serve.spare_tag("ghcr.io", ANONYMOUS), None);

        let prefetch = Quota::new(PullPolicy {
            reserve: Some(5),
            stop_at_reserve: true,
            ..PullPolicy::default()
        });
        prefetch.observe(&reply(Asked::ManifestGet, 200, Some(7)));
        // Two GETs at once leave 5: a third would take the quota below.
        let first = prefetch.take_pull("docker.io", ANONYMOUS).expect("6 left");
        let second = prefetch.take_pull("docker.io", ANONYMOUS).expect("5 left");
        assert!(matches!(
            prefetch.take_pull("docker.io", ANONYMOUS),
            Err(QuotaStop::Reserve { remaining: 5, .. })
        ));
        // Their replies say 6 and then 5 left: still at the reserve.
        prefetch.observe(&reply(Asked::ManifestGet, 200, Some(6)));
        drop(first);
        prefetch.observe(&reply(Asked::ManifestGet, 200, Some(5)));
        drop(second);
        // A reply seen while its GET still holds its ticket (the body not yet
        // read) is not counted twice: 7 left, then one GET's reply says 6.
        let serial = Quota::new(PullPolicy {
            reserve: Some(5),
            stop_at_reserve: true,
            ..PullPolicy::default()
        });
        serial.observe(&reply(Asked::ManifestGet, 200, Some(7)));
        let first = serial.take_pull("docker.io", ANONYMOUS).expect("6 left");
        serial.observe(&reply(Asked::ManifestGet, 200, Some(6)));
        let second = serial.take_pull("docker.io", ANONYMOUS).expect("5 left");
        drop((first, second));
        assert_eq!(prefetch.spare_tag("docker.io", ANONYMOUS), None);
        assert!(matches!(
            prefetch.take_pull("docker.io", ANONYMOUS),
            Err(QuotaStop::Reserve { remaining: 5, .. })
        ));
    }

    #[test]
    fn a_429_holds_gets_until_a_reply_shows_quota_and_max_pulls_caps_gets() {
        let q = Quota::new(PullPolicy {
            max_pulls: Some(2),
            ..PullPolicy::default()
        });
        assert!(q.take_pull("docker.io", ANONYMOUS).is_ok());
        assert!(q.take_pull("docker.io", ANONYMOUS).is_ok());
        assert_eq!(
            q.take_pull("docker.io", ANONYMOUS).err(),
            Some(QuotaStop::MaxPulls { max: 2 })
        );
        let q = Quota::new(PullPolicy::default());
        q.observe(&reply(Asked::ManifestGet, 429, Some(0)));
        assert!(q.take_hold_changed(), "a new hold is written at once");
        let hold = q.hold("docker.io", ANONYMOUS).expect("held");
        // Not the reply's whole window (60 s here): the first probe after 30 s.
        assert!(hold.next_probe_at >= now_secs() + 29 && hold.next_probe_at <= now_secs() + 31);
        assert_eq!(
            q.spare_tag("docker.io", ANONYMOUS),
            Some(Spare::RateLimited)
        );
        assert!(matches!(
            q.take_pull("docker.io", ANONYMOUS),
            Err(QuotaStop::Held { .. })
        ));
        // Another account's quota is another's.
        assert!(q.take_pull("docker.io", "alice").is_ok());
        assert_eq!(q.counts().upstream_manifest_gets, 0, "a 429 is no pull");
        // A probe that finds none left keeps the hold; one that finds some lifts it.
        q.observe(&reply(Asked::ManifestHead, 200, Some(0)));
        assert!(q.hold("docker.io", ANONYMOUS).is_some());
        assert!(!q.take_hold_changed());
        q.observe(&reply(Asked::ManifestHead, 200, Some(1)));
        assert_eq!(q.hold("docker.io", ANONYMOUS), None);
        assert!(q.take_hold_changed(), "a lifted hold is written at once");
        assert!(q.take_pull("docker.io", ANONYMOUS).is_ok());
    }

    #[test]
    fn a_retry_after_beyond_the_window_holds_for_one_window_at_most() {
        for (remaining, window) in [(Some(0), 60), (None, DEFAULT_WINDOW_SECS)] {
            let q = Quota::new(PullPolicy::default());
            let mut r = reply(Asked::ManifestGet, 429, remaining);
            r.retry_after = Some(Duration::from_secs(u64::MAX / 2));
            q.observe(&r);
            let hold = q.hold("docker.io", ANONYMOUS).expect("held");
            assert!(hold.next_probe_at <= now_secs() + window, "{hold:?}");
            assert!(hold.next_probe_at + 1 >= now_secs() + window, "{hold:?}");
        }
        // A Retry-After within the window still wins over the first probe.
        let q = Quota::new(PullPolicy::default());
        let mut r = reply(Asked::ManifestGet, 429, None);
        r.retry_after = Some(Duration::from_secs(120));
        q.observe(&r);
        let hold = q.hold("docker.io", ANONYMOUS).expect("held");
        assert!(hold.next_probe_at >= now_secs() + 120 && hold.next_probe_at <= now_secs() + 122);
    }

    #[test]
    fn one_probe_claims_a_due_hold_and_the_backoff_grows_to_its_cap() {
        let backoff = ProbeBackoff {
            start: Duration::from_secs(30),
            max: Duration::from_secs(100),
        };
        let mut figures = vec![QuotaSeen {
            registry: "docker.io".into(),
            identity: "192.0.2.1".into(),
            account: ANONYMOUS.into(),
            authenticated: false,
            limit: Some(100),
            remaining: Some(0),
            window_secs: Some(21600),
            seen_at: 1000,
            hold: Some(Hold {
                since: 1000,
                next_probe_at: 1030,
                backoff_secs: 30,
            }),
        }];
        assert_eq!(
            claim_probe(&mut figures, "docker.io", ANONYMOUS, 1029, backoff),
            None
        );
        let first = claim_probe(&mut figures, "docker.io", ANONYMOUS, 1030, backoff).expect("due");
        assert_eq!((first.next_probe_at, first.backoff_secs), (1090, 60));
        assert_eq!(
            claim_probe(&mut figures, "docker.io", ANONYMOUS, 1030, backoff),
            None,
            "claimed: nobody else probes until the next one"
        );
        let second = claim_probe(&mut figures, "docker.io", ANONYMOUS, 1090, backoff).expect("due");
        assert_eq!((second.next_probe_at, second.backoff_secs), (1190, 100));
        assert_eq!(second.since, 1000);
        assert_eq!(
            claim_probe(&mut figures, "docker.io", "alice", 5000, backoff),
            None
        );
    }

    #[test]
    fn batches_carry_only_what_is_new() {
        let q = Quota::new(PullPolicy::default());
        q.observe(&reply(Asked::ManifestHead, 200, Some(9)));
        q.count(Answered::CacheHit);
        let (seen, delta) = q.take_batch();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            delta.map(|d| (d.cache_hits, d.upstream_manifest_heads)),
            Some((1, 1))
        );
        assert_eq!(q.take_batch(), (Vec::new(), None));
        q.count(Answered::CacheHit);
        let (seen, delta) = q.take_batch();
        q.untake_batch(seen, delta);
        let (_, delta) = q.take_batch();
        assert_eq!(delta.map(|d| d.cache_hits), Some(1));
        // 401s are not requests; failed GETs are no pulls.
        for status in [401, 404, 429, 500, 503] {
            q.observe(&reply(Asked::ManifestGet, status, None));
        }
        assert_eq!(q.counts().upstream_manifest_gets, 0);
        q.observe(&reply(Asked::ManifestGet, 200, Some(8)));
        assert_eq!(q.unwritten_counts().upstream_manifest_gets, 1);
    }
}
