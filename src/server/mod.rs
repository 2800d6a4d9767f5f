//! The localhost registry endpoint (OCI distribution, pull side). Routes only
//! translate HTTP; `fetch` holds the pull-through logic.

mod blob_stream;
mod errors;
mod negotiate;
mod referrers;
mod routes;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::fetch::{BlobFetch, BlobState, Fetcher, Freshness};
use crate::reference::Digest;
use blob_stream::BlobStream;
pub use errors::ApiError;
use routes::{Image, Route};

type Body = BoxBody<Bytes, std::io::Error>;

/// How long in-flight responses may finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Server {
    fetcher: Arc<Fetcher>,
    tag_ttl: Duration,
}

impl Server {
    pub fn new(fetcher: Arc<Fetcher>, tag_ttl: Duration) -> Arc<Server> {
        Arc::new(Server { fetcher, tag_ttl })
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (bounded).
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            let this = Arc::clone(&self);
            let service = hyper::service::service_fn(move |req| {
                let this = Arc::clone(&this);
                async move { Ok::<_, Infallible>(this.handle(req, peer).await) }
            });
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let conn = graceful.watch(conn.into_owned());
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!("connection from {peer}: {e}");
                }
            });
        }
        drop(listener);
        tracing::info!(
            "shutting down: waiting up to {}s for in-flight requests",
            DRAIN_TIMEOUT.as_secs()
        );
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish in time; closing them");
        }
        Ok(())
    }

    async fn handle(&self, req: Request<Incoming>, _peer: SocketAddr) -> Response<Body> {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req
            .uri()
            .path_and_query()
            .map_or_else(|| req.uri().path().to_string(), |p| p.to_string());
        let (mut resp, cache) = match self.route(&req).await {
            Ok(r) => r,
            Err(e) => (error_response(&e), "-"),
        };
        if method == Method::HEAD {
            *resp.body_mut() = empty();
        }
        resp.headers_mut().insert(
            "docker-distribution-api-version",
            HeaderValue::from_static("registry/2.0"),
        );
        // What the body should carry, to tell a finished transfer from an abandoned one.
        let expected = match method {
            Method::HEAD => None,
            _ => resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        };
        let mut log = RequestLog {
            line: format!("{method} {path} {}", resp.status().as_u16()),
            cache,
            expected,
            sent: 0,
            started,
        };
        resp.map(|body| {
            body.map_frame(move |frame| {
                // Borrow the whole struct so the closure owns it (not just
                // the `sent` field) and the line is written when the body goes.
                let log = &mut log;
                if let Some(data) = frame.data_ref() {
                    log.sent += data.len() as u64;
                }
                frame
            })
            .boxed()
        })
    }

    /// Returns the response and its cache status for the log line.
    async fn route(
        &self,
        req: &Request<Incoming>,
    ) -> Result<(Response<Body>, &'static str), ApiError> {
        let route = routes::parse(req.uri().path(), req.uri().query())?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::unsupported(
                "dpx is a read-only mirror: only GET and HEAD are served",
            ));
        }
        match route {
            Route::Ping => Ok((json_response(StatusCode::OK, "{}".into()), "-")),
            Route::Manifest { image, target } => {
                let what = format!("manifest {}/{}:{target}", image.registry, image.repository);
                let m = self
                    .fetcher
                    .manifest(&image.registry, &image.repository, &target, self.tag_ttl)
                    .await
                    .map_err(|e| ApiError::from_fetch(&e, &what, "MANIFEST_UNKNOWN"))?;
                let m = negotiate::answer(&self.fetcher, &image, &target, req.headers(), m).await?;
                let status = m.freshness.as_str();
                let resp = Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_TYPE, &m.media_type)
                    .header(header::CONTENT_LENGTH, m.bytes.len())
                    .header("docker-content-digest", m.digest.to_string())
                    .header(header::ETAG, format!("\"{}\"", m.digest))
                    .header("x-dpx-cache", status)
                    .body(full(m.bytes))
                    .map_err(|e| ApiError::internal(&e.to_string()))?;
                if m.freshness == Freshness::Stale {
                    tracing::warn!("{what}: upstream unavailable, served the cached copy");
                }
                Ok((resp, status))
            }
            Route::Blob { image, digest } => self.blob(req, &image, &digest).await,
            Route::Referrers {
                image,
                digest,
                artifact_type,
            } => {
                referrers::answer(
                    &self.fetcher,
                    &image,
                    &digest,
                    artifact_type.as_deref(),
                    self.tag_ttl,
                )
                .await
            }
        }
    }

    async fn blob(
        &self,
        req: &Request<Incoming>,
        image: &Image,
        digest: &Digest,
    ) -> Result<(Response<Body>, &'static str), ApiError> {
        let what = format!("blob {digest} of {}/{}", image.registry, image.repository);
        let cache = self.fetcher.cache();
        let final_path = cache.blob_path(digest);
        let (total, source, status) =
            match self
                .fetcher
                .blob(&image.registry, &image.repository, digest, None)
            {
                BlobFetch::Cached => {
                    let file = tokio::fs::File::open(&final_path)
                        .await
                        .map_err(|e| ApiError::internal(&format!("{what}: {e}")))?;
                    let len = file
                        .metadata()
                        .await
                        .map_err(|e| ApiError::internal(&format!("{what}: {e}")))?
                        .len();
                    (len, Source::Complete(file), "hit")
                }
                BlobFetch::InFlight(rx) => {
                    let total = wait_for_size(rx.clone(), &final_path)
                        .await
                        .map_err(|e| ApiError::from_fetch(&e, &what, "BLOB_UNKNOWN"))?;
                    (total, Source::Growing(rx), "miss")
                }
            };
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(|r| parse_range(r, total));
        let (start, end, partial) = match range {
            None => (0, total, false),
            Some(Some((s, e))) => (s, e, true),
            Some(None) => {
                return Ok((
                    Response::builder()
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{total}"))
                        .body(empty())
                        .map_err(|e| ApiError::internal(&e.to_string()))?,
                    status,
                ));
            }
        };
        let body = match source {
            Source::Complete(f) if req.method() != Method::HEAD => {
                stream_body(BlobStream::complete(f, final_path, start, end))
            }
            Source::Growing(rx) if req.method() != Method::HEAD => {
                stream_body(BlobStream::growing(rx, final_path, start, end))
            }
            _ => empty(),
        };
        let mut builder = Response::builder()
            .status(if partial {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            })
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, end - start)
            .header(header::ACCEPT_RANGES, "bytes")
            .header("docker-content-digest", digest.to_string())
            .header(header::ETAG, format!("\"{digest}\""))
            .header("x-dpx-cache", status);
        if partial {
            builder = builder.header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", end - 1),
            );
        }
        let resp = builder
            .body(body)
            .map_err(|e| ApiError::internal(&e.to_string()))?;
        Ok((resp, status))
    }
}

/// The one log line per request, written when the response body is done
/// (sent in full, or dropped because the client went away), so that bytes
/// and duration cover the whole transfer and not just the headers.
struct RequestLog {
    line: String,
    cache: &'static str,
    expected: Option<u64>,
    sent: u64,
    started: Instant,
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let (line, sent, cache) = (&self.line, self.sent, self.cache);
        match self.expected {
            Some(expected) if sent < expected => tracing::info!(
                "{line} {sent}B {cache} {ms:.1}ms incomplete: client left after {sent} of {expected} bytes"
            ),
            _ => tracing::info!("{line} {sent}B {cache} {ms:.1}ms"),
        }
    }
}

enum Source {
    Complete(tokio::fs::File),
    Growing(tokio::sync::watch::Receiver<BlobState>),
}

/// Waits until a download knows its size (from the upstream Content-Length),
/// or has finished.
async fn wait_for_size(
    mut rx: tokio::sync::watch::Receiver<BlobState>,
    final_path: &std::path::Path,
) -> Result<u64, crate::fetch::FetchError> {
    loop {
        match &*rx.borrow_and_update() {
            BlobState::Downloading { total: Some(t), .. } => return Ok(*t),
            BlobState::Failed(e) => return Err(crate::fetch::FetchError::Shared(e.clone())),
            BlobState::Done => break,
            _ => {}
        }
        if rx.changed().await.is_err() {
            break;
        }
    }
    crate::fetch::wait_blob(rx).await?;
    tokio::fs::metadata(final_path)
        .await
        .map(|m| m.len())
        .map_err(|e| {
            crate::fetch::FetchError::Internal(format!("blob vanished after download: {e}"))
        })
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` -> half-open [start, end); `None` if unsatisfiable.
fn parse_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (total.saturating_sub(n), total)
        }
        (a, "") => (a.parse().ok()?, total),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(total),
        ),
    };
    (start < end && start < total).then_some((start, end))
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

fn stream_body(s: BlobStream) -> Body {
    use futures_util::StreamExt;
    BodyExt::boxed(StreamBody::new(s.into_stream().map(|r| r.map(Frame::data))))
}

fn json_response(status: StatusCode, body: String) -> Response<Body> {
    let len = body.len();
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.status, e.body())
}

/// Binds the listen address, with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
            "; another program (maybe another dpx serve) uses it: pick another with --listen or DPX_LISTEN"
        } else {
            ""
        };
        anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
        assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-1", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
    }
}
