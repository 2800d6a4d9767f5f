//! `GET /`: the status page a person opens in a browser. The HTML, script and
//! style are static files built into the binary; the script fetches
//! `/_dpx/page.json` every few seconds and fills the page with DOM text
//! nodes (never markup: repository names come from outside).
//!
//! Nothing reachable from the page changes anything (GET and HEAD only, no
//! forms), and every answer carries headers that keep other sites from
//! framing the page or reading it. The figures are gathered only when the
//! page asks, and the cache walk behind them at most every `WALK_EVERY`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde::Serialize;

use super::errors::ApiError;
use super::routes::Page;
use super::{Body, Server, error_response, full};
use crate::fetch::{CacheOverview, Contact, Download, HourCounts, PullCounts, QuotaSeen};

const HTML: &str = include_str!("status_page/page.html");
const SCRIPT: &str = include_str!("status_page/page.js");
const STYLE: &str = include_str!("status_page/page.css");

/// Scripts, styles and fetches from dpx itself only; no inline script, no
/// framing, no forms, no plugins, no `<base>`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

/// The least time between two walks of the cache for the page.
const WALK_EVERY: Duration = Duration::from_secs(5);

/// The last walk of the cache, kept for `WALK_EVERY`; the lock makes
/// pages asking at once share one walk.
#[derive(Default)]
pub struct PageState {
    overview: tokio::sync::Mutex<Option<(Instant, Arc<CacheOverview>)>>,
}

/// What `/_dpx/page.json` answers.
#[derive(Serialize)]
struct PageData<'a> {
    version: &'static str,
    pid: u32,
    /// Unix seconds, now and at start.
    now: u64,
    started_at: u64,
    requests: u64,
    in_flight: usize,
    upstreams: Vec<Contact>,
    quota: Vec<QuotaSeen>,
    cache: Option<&'a CacheOverview>,
    /// Why `cache` (or `pulls`) is missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
    pulls: Option<Pulls>,
    downloads: Vec<Download>,
}

/// Manifest requests answered from the cache against GETs sent upstream.
#[derive(Serialize)]
struct Pulls {
    since: u64,
    totals: PullCounts,
    /// Manifest requests answered without a GET upstream (cache hits,
    /// revalidations, stale answers).
    from_cache: u64,
    upstream_gets: u64,
    /// The last 24 hours, oldest first, one entry per hour (zeros included).
    hours: Vec<Hour>,
}

#[derive(Serialize)]
struct Hour {
    hour: u64,
    from_cache: u64,
    upstream_gets: u64,
}

impl Server {
    /// Answers one of the page's routes: the same access rule as the
    /// registry routes, GET and HEAD only.
    pub(super) async fn page(
        &self,
        page: Page,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let mut resp = self
            .admit_watcher(req, peer)
            .await
            .unwrap_or_else(|| match *req.method() {
                Method::GET | Method::HEAD => Response::new(super::empty()),
                _ => error_response(
                    &ApiError::unsupported("the status page answers GET only")
                        .with_status(StatusCode::METHOD_NOT_ALLOWED),
                ),
            });
        if resp.status() == StatusCode::OK {
            resp = match page {
                Page::Html => file(HTML, "text/html; charset=utf-8"),
                Page::Script => file(SCRIPT, "text/javascript; charset=utf-8"),
                Page::Style => file(STYLE, "text/css; charset=utf-8"),
                Page::Data => self.page_data().await,
            };
        }
        protect(resp.headers_mut());
        if req.method() == Method::HEAD {
            *resp.body_mut() = super::empty();
        }
        resp
    }

    async fn page_data(&self) -> Response<Body> {
        let status = self.stats.snapshot(self.limits.idle_timeout);
        let mut problems = Vec::new();
        let cache = match self.cache_overview().await {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(format!("the cache cannot be read: {e}"));
                None
            }
        };
        let now = crate::fetch::now_secs();
        let pulls = match self.fetcher.pull_history().await {
            Ok(stats) => Some(Pulls {
                since: stats.since,
                from_cache: stats.counts.answered_without_get(),
                upstream_gets: stats.counts.upstream_manifest_gets,
                totals: stats.counts,
                hours: last_day(&stats.hours, now),
            }),
            Err(e) => {
                problems.push(format!("the pull counts cannot be read: {e}"));
                None
            }
        };
        let data = PageData {
            version: env!("CARGO_PKG_VERSION"),
            pid: status.pid,
            now,
            started_at: status.started_at,
            requests: status.requests,
            in_flight: status.in_flight,
            upstreams: self.fetcher.upstream_contacts(),
            quota: self.fetcher.quota_figures(),
            cache: cache.as_deref(),
            problems,
            pulls,
            downloads: self.fetcher.downloads(),
        };
        match serde_json::to_string(&data) {
            Ok(body) => super::json_response(StatusCode::OK, body),
            Err(e) => error_response(&ApiError::internal(&e.to_string())),
        }
    }

    /// The cache's content, walked again when the last walk is older than
    /// `WALK_EVERY`.
    async fn cache_overview(&self) -> Result<Arc<CacheOverview>, crate::fetch::FetchError> {
        let mut last = self.page.overview.lock().await;
        if let Some((at, overview)) = &*last
            && at.elapsed() < WALK_EVERY
        {
            return Ok(Arc::clone(overview));
        }
        let overview = Arc::new(self.fetcher.cache_overview().await?);
        *last = Some((Instant::now(), Arc::clone(&overview)));
        Ok(overview)
    }
}

/// 24 hourly entries up to `now`'s hour, zeros where nothing was counted.
fn last_day(hours: &[HourCounts], now: u64) -> Vec<Hour> {
    let current = now - now % 3600;
    (0..crate::fetch::HOURS_KEPT)
        .rev()
        .map(|back| {
            let hour = current.saturating_sub(back * 3600);
            let counts = hours
                .iter()
                .find(|h| h.hour == hour)
                .map(|h| h.counts)
                .unwrap_or_default();
            Hour {
                hour,
                from_cache: counts.answered_without_get(),
                upstream_gets: counts.upstream_manifest_gets,
            }
        })
        .collect()
}

fn file(text: &'static str, content_type: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from_static(text.as_bytes())));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    resp
}

/// The headers every answer of the page carries: no framing, no sniffing,
/// no referrer, no reading from other origins, no caching.
fn protect(headers: &mut http::HeaderMap) {
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-resource-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_has_24_hours_with_gaps_filled() {
        let now = 100 * 3600 + 10;
        let hours = [HourCounts {
            hour: 99 * 3600,
            counts: PullCounts {
                cache_hits: 3,
                revalidated: 1,
                upstream_manifest_gets: 2,
                ..PullCounts::default()
            },
        }];
        let day = last_day(&hours, now);
        assert_eq!(day.len(), 24);
        assert_eq!(day[23].hour, 100 * 3600);
        assert_eq!((day[22].from_cache, day[22].upstream_gets), (4, 2));
        assert_eq!(day.iter().map(|h| h.from_cache).sum::<u64>(), 4);
    }
}
