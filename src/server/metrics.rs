//! `GET /metrics`: the Prometheus exposition of the counters (`crate::metrics`)
//! and the figures read at scrape time.

use std::net::SocketAddr;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::fetch::{CacheStatus, Spare};
use crate::metrics::{Outcome, ProcessFigures, Scrape};

use super::errors::ApiError;
use super::{Body, Server, error_response, full};

impl Server {
    /// Who may scrape: `Server::admit_watcher` (this machine, or whom the
    /// client-access gate admits).
    pub(super) async fn metrics(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        if let Some(refused) = self.admit_watcher(req, peer).await {
            return refused;
        }
        if req.method() != Method::GET {
            return error_response(&ApiError::unsupported(
                "the dpx metrics endpoint answers GET only",
            ));
        }
        let fetch = self.fetcher.figures().await;
        // /proc reads are file reads: off the async workers.
        let process = tokio::task::spawn_blocking(ProcessFigures::read)
            .await
            .unwrap_or_default();
        let status = self.stats.snapshot(None);
        let scrape = Scrape {
            fetch,
            process,
            started_at: status.started_at,
            requests_in_flight: status.in_flight as u64,
        };
        match crate::metrics::encode(self.fetcher.metrics(), scrape) {
            Ok(text) => {
                let len = text.len();
                let mut resp = Response::new(full(text.into()));
                *resp.status_mut() = StatusCode::OK;
                let headers = resp.headers_mut();
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
                );
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
                resp
            }
            Err(e) => error_response(&ApiError::internal(&format!("encoding the metrics: {e}"))),
        }
    }
}

/// The cache label of an answer: its `X-Dpx-Cache` status, a stale one
/// told apart by its `X-Dpx-Stale` reason.
pub(super) fn outcome(cache: CacheStatus, resp: &Response<Body>) -> Outcome {
    match cache {
        CacheStatus::Hit => Outcome::Hit,
        CacheStatus::Miss => Outcome::Miss,
        CacheStatus::Revalidated => Outcome::Revalidated,
        CacheStatus::Untracked => Outcome::None,
        CacheStatus::Stale => {
            let reason = resp
                .headers()
                .get(super::DPX_STALE)
                .map(HeaderValue::as_bytes);
            match reason {
                Some(r) if r == Spare::Reserve.as_str().as_bytes() => Outcome::Reserve,
                Some(r) if r == Spare::RateLimited.as_str().as_bytes() => Outcome::RateLimited,
                _ => Outcome::Stale,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stale(reason: Option<&'static str>) -> Response<Body> {
        let mut resp = Response::new(super::super::empty());
        if let Some(r) = reason {
            resp.headers_mut()
                .insert(crate::server::DPX_STALE, HeaderValue::from_static(r));
        }
        resp
    }

    #[test]
    fn stale_answers_are_told_apart_by_their_reason() {
        let cases = [
            (Some("reserve"), Outcome::Reserve),
            (Some("rate-limited"), Outcome::RateLimited),
            (Some("upstream-unavailable"), Outcome::Stale),
            (None, Outcome::Stale),
        ];
        for (reason, want) in cases {
            assert_eq!(
                outcome(CacheStatus::Stale, &stale(reason)),
                want,
                "{reason:?}"
            );
        }
        assert_eq!(
            outcome(CacheStatus::Hit, &stale(Some("reserve"))),
            Outcome::Hit
        );
        assert_eq!(outcome(CacheStatus::Untracked, &stale(None)), Outcome::None);
    }
}
