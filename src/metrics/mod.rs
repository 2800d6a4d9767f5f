//! What `GET /metrics` exports (Prometheus text format). The counters live
//! here, in fixed arrays of atomics indexed by label enums, so the request
//! path and the fetches pay a few relaxed adds: no lock, no allocation.
//! Figures only worth reading when asked (quota, cache size, the process)
//! are gathered at scrape time and handed to `encode` in a `Scrape`.

mod exposition;
mod histogram;
mod process;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use exposition::{CONTENT_TYPE, CacheFigures, FetchFigures, QuotaRow, Scrape, encode};
pub use process::ProcessFigures;

use histogram::Histogram;

/// The metrics endpoint's path: outside `/v2/`, as Prometheus expects it.
pub const METRICS_PATH: &str = "/metrics";

/// What a client request asked for (the `route` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Manifest,
    Blob,
    Tags,
    Referrers,
    /// `/v2/`, the token endpoint, unknown paths.
    Other,
}

impl RouteKind {
    const ALL: [RouteKind; 5] = [
        RouteKind::Manifest,
        RouteKind::Blob,
        RouteKind::Tags,
        RouteKind::Referrers,
        RouteKind::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            RouteKind::Manifest => "manifest",
            RouteKind::Blob => "blob",
            RouteKind::Tags => "tags",
            RouteKind::Referrers => "referrers",
            RouteKind::Other => "other",
        }
    }

    /// The kind of a registry path (`/v2/<name>/<kind>/<reference>`), without
    /// parsing it: the request's own parse decides what it gets.
    pub fn of_path(path: &str) -> RouteKind {
        let Some(rest) = path.strip_prefix("/v2/") else {
            return RouteKind::Other;
        };
        let mut parts = rest.rsplitn(3, '/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(_), Some("manifests"), Some(_)) => RouteKind::Manifest,
            (Some(_), Some("blobs"), Some(_)) => RouteKind::Blob,
            (Some("list"), Some("tags"), Some(_)) => RouteKind::Tags,
            (Some(_), Some("referrers"), Some(_)) => RouteKind::Referrers,
            _ => RouteKind::Other,
        }
    }
}

/// How a request was answered (the `cache` label): the `X-Dpx-Cache`
/// status, with a stale answer told apart by why (`X-Dpx-Stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Hit,
    Miss,
    Revalidated,
    /// Served from the cache because the upstream failed.
    Stale,
    /// Served from the cache to keep the pull quota's reserve.
    Reserve,
    /// Served from the cache during a hold after a 429.
    RateLimited,
    /// No cache status: a ping, a tag list, an error, a refusal.
    None,
}

impl Outcome {
    const ALL: [Outcome; 7] = [
        Outcome::Hit,
        Outcome::Miss,
        Outcome::Revalidated,
        Outcome::Stale,
        Outcome::Reserve,
        Outcome::RateLimited,
        Outcome::None,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Outcome::Hit => "hit",
            Outcome::Miss => "miss",
            Outcome::Revalidated => "revalidated",
            Outcome::Stale => "stale",
            Outcome::Reserve => "reserve",
            Outcome::RateLimited => "rate_limited",
            Outcome::None => "none",
        }
    }

    /// Whether the bytes came from the cache.
    fn is_cached(self) -> bool {
        !matches!(self, Outcome::Miss | Outcome::None)
    }
}

/// The status class label of a reply (`1xx` .. `5xx`).
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class_index(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

/// What a request to an upstream asked for (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// A pull on Docker Hub: the requests its rate limit counts.
    ManifestGet,
    ManifestHead,
    BlobGet,
    BlobHead,
    /// A token from the registry's token service.
    Token,
    /// Tag lists, referrers, pings.
    Other,
}

impl Upstream {
    const ALL: [Upstream; 6] = [
        Upstream::ManifestGet,
        Upstream::ManifestHead,
        Upstream::BlobGet,
        Upstream::BlobHead,
        Upstream::Token,
        Upstream::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Upstream::ManifestGet => "manifest_get",
            Upstream::ManifestHead => "manifest_head",
            Upstream::BlobGet => "blob_get",
            Upstream::BlobHead => "blob_head",
            Upstream::Token => "token",
            Upstream::Other => "other",
        }
    }

    /// The kind of a registry API URL (`.../v2/<name>/<kind>/<reference>`)
    /// asked with `head` or GET.
    pub fn of_url(url: &str, head: bool) -> Upstream {
        let mut parts = url.rsplitn(3, '/');
        match (parts.next(), parts.next(), head) {
            (Some(_), Some("manifests"), false) => Upstream::ManifestGet,
            (Some(_), Some("manifests"), true) => Upstream::ManifestHead,
            (Some(_), Some("blobs"), false) => Upstream::BlobGet,
            (Some(_), Some("blobs"), true) => Upstream::BlobHead,
            _ => Upstream::Other,
        }
    }
}

/// How an upstream answered (the `answer` label): its status class, 401
/// (a token wanted) and 429 (a rate limit) apart, or no reply at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// No reply: refused, reset, timed out, unresolvable.
    Unreachable,
    /// No usable reply: a redirect loop, TLS, a malformed head.
    Failed,
}

const ANSWERS: [&str; 8] = [
    "2xx",
    "3xx",
    "401",
    "429",
    "4xx",
    "5xx",
    "unreachable",
    "error",
];

impl Answer {
    fn index(self) -> usize {
        match self {
            Answer::Status(401) => 2,
            Answer::Status(429) => 3,
            Answer::Status(200..=299) => 0,
            Answer::Status(300..=399) => 1,
            Answer::Status(400..=499) => 4,
            Answer::Status(500..=599) => 5,
            Answer::Unreachable => 6,
            Answer::Status(_) | Answer::Failed => 7,
        }
    }
}

/// What an upstream body was (the `kind` label of the bytes fetched).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Manifest,
    Blob,
}

const BODIES: [&str; 2] = ["manifest", "blob"];

const ROUTES: usize = RouteKind::ALL.len();
const OUTCOMES: usize = Outcome::ALL.len();
const UPSTREAMS: usize = Upstream::ALL.len();

/// The counters. One per process (`Fetcher` owns it); the server and the
/// registry client count into it.
#[derive(Debug)]
pub struct Metrics {
    /// By route, status class and outcome.
    requests: [AtomicU64; ROUTES * CLASSES.len() * OUTCOMES],
    /// Response body bytes sent, by route and outcome.
    sent: [AtomicU64; ROUTES * OUTCOMES],
    /// From the request's head to the end of its body, by route.
    latency: [Histogram; ROUTES],
    /// By kind and answer.
    upstream: [AtomicU64; UPSTREAMS * ANSWERS.len()],
    upstream_bytes: [AtomicU64; BODIES.len()],
    /// Removed to keep `max_size`: tags, manifests, blobs.
    evicted: [AtomicU64; 3],
    evicted_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            requests: [const { AtomicU64::new(0) }; ROUTES * CLASSES.len() * OUTCOMES],
            sent: [const { AtomicU64::new(0) }; ROUTES * OUTCOMES],
            latency: [const { Histogram::new() }; ROUTES],
            upstream: [const { AtomicU64::new(0) }; UPSTREAMS * ANSWERS.len()],
            upstream_bytes: [const { AtomicU64::new(0) }; BODIES.len()],
            evicted: [const { AtomicU64::new(0) }; 3],
            evicted_bytes: AtomicU64::new(0),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// One client request done (its body sent, or the client gone).
    pub fn request(
        &self,
        route: RouteKind,
        status: u16,
        outcome: Outcome,
        sent: u64,
        took: Duration,
    ) {
        let (r, o) = (route as usize, outcome as usize);
        let i = (r * CLASSES.len() + class_index(status)) * OUTCOMES + o;
        add(&self.requests[i], 1);
        add(&self.sent[r * OUTCOMES + o], sent);
        self.latency[r].observe(took);
    }

    /// One request to an upstream, and how it was answered.
    pub fn upstream(&self, kind: Upstream, answer: Answer) {
        add(
            &self.upstream[kind as usize * ANSWERS.len() + answer.index()],
            1,
        );
    }

    /// Body bytes received from an upstream.
    pub fn upstream_bytes(&self, body: Body, n: u64) {
        add(&self.upstream_bytes[body as usize], n);
    }

    /// One eviction pass's removals.
    pub fn evicted(&self, tags: u64, manifests: u64, blobs: u64, bytes: u64) {
        add(&self.evicted[0], tags);
        add(&self.evicted[1], manifests);
        add(&self.evicted[2], blobs);
        add(&self.evicted_bytes, bytes);
    }

    /// Entries evicted so far.
    pub fn evictions(&self) -> u64 {
        self.evicted.iter().map(get).fold(0, u64::saturating_add)
    }

    /// Upstream requests of `kind` answered `answer` so far.
    pub fn upstream_count(&self, kind: Upstream, answer: Answer) -> u64 {
        get(&self.upstream[kind as usize * ANSWERS.len() + answer.index()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path() {
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            RouteKind::of_path("/v2/library/alpine/manifests/3"),
            RouteKind::Manifest
        );
        assert_eq!(
            RouteKind::of_path(&format!("/v2/ghcr.io/a/b/blobs/{d}")),
            RouteKind::Blob
        );
        assert_eq!(RouteKind::of_path("/v2/a/tags/list"), RouteKind::Tags);
        assert_eq!(
            RouteKind::of_path(&format!("/v2/a/referrers/{d}")),
            RouteKind::Referrers
        );
        for other in [
            "/v2/",
            "/v2",
            "/token",
            "/",
            "/v2/manifests/x",
            "/v2/a/tags/x",
        ] {
            assert_eq!(RouteKind::of_path(other), RouteKind::Other, "{other}");
        }
    }

    #[test]
    fn upstream_kinds_by_url() {
        let u = "https://registry-1.docker.io/v2/library/alpine/manifests/3.20";
        assert_eq!(Upstream::of_url(u, false), Upstream::ManifestGet);
        assert_eq!(Upstream::of_url(u, true), Upstream::ManifestHead);
        let b = "http://127.0.0.1:5000/v2/a/blobs/sha256:00";
        assert_eq!(Upstream::of_url(b, false), Upstream::BlobGet);
        assert_eq!(Upstream::of_url(b, true), Upstream::BlobHead);
        assert_eq!(
            Upstream::of_url("http://h/v2/a/tags/list", false),
            Upstream::Other
        );
        assert_eq!(Upstream::of_url("http://h/v2/", false), Upstream::Other);
    }

    #[test]
    fn answers_by_status() {
        let label = |a: Answer| ANSWERS[a.index()];
        assert_eq!(label(Answer::Status(200)), "2xx");
        assert_eq!(label(Answer::Status(307)), "3xx");
        assert_eq!(label(Answer::Status(401)), "401");
        assert_eq!(label(Answer::Status(404)), "4xx");
        assert_eq!(label(Answer::Status(429)), "429");
        assert_eq!(label(Answer::Status(503)), "5xx");
        assert_eq!(label(Answer::Status(99)), "error");
        assert_eq!(label(Answer::Unreachable), "unreachable");
        assert_eq!(class_index(101), 0);
        assert_eq!(class_index(0), 0);
        assert_eq!(class_index(999), 4);
    }
}
