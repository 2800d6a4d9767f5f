//! The localhost registry endpoint (OCI distribution, pull side). Routes only
//! translate HTTP; `fetch` holds the pull-through logic.

mod blob_stream;
mod client_gate;
mod connection_io;
mod egress;
mod errors;
mod guessing;
mod lanes;
mod mapped_body;
mod metrics;
mod negotiate;
mod range;
mod referrers;
mod routes;
mod stats;
mod status_page;
mod tags;
mod tls;
mod watchers;
mod zero_copy;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::fetch::{BlobAnswer, CacheStatus, Fetcher, Freshness, TagHead};
use crate::metrics::{METRICS_PATH, Metrics, Outcome, RouteKind};
use crate::reference::{Digest, Target};
use blob_stream::BlobStream;
pub use client_gate::Gate;
use connection_io::ActivityIo;
pub use egress::Egress;
pub use errors::{ApiError, ErrorCode};
use mapped_body::MappedBody;
use range::BlobRange;
use routes::{Image, Route};
pub use stats::{STATUS_PATH, ServerStatus, Stats};
/// The status page's path (`status_page`).
pub const PAGE_PATH: &str = "/";
pub use tls::acceptor as tls_acceptor;

type Body = BoxBody<Bytes, std::io::Error>;
type ConnBuilder = hyper_util::server::conn::auto::Builder<TokioExecutor>;

/// How long in-flight responses may finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

// Header names checked once, at compile time, not per response.
const API_VERSION: HeaderName = HeaderName::from_static("docker-distribution-api-version");
const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub(super) const DPX_CACHE: HeaderName = HeaderName::from_static("x-dpx-cache");
pub(super) const DPX_STALE: HeaderName = HeaderName::from_static("x-dpx-stale");

pub struct Server {
    fetcher: Arc<Fetcher>,
    tag_ttl: Duration,
    limits: Limits,
    egress: Egress,
    stats: Arc<Stats>,
    access: ClientAccess,
    page: status_page::PageState,
    /// Whether answering an image manifest fetched from upstream starts
    /// fetching its blobs (`[serve] prefetch_blobs`, `fetch::prefetch`).
    prefetch: bool,
}

/// Who may use the server and over what: client auth and TLS, both off by default.
#[derive(Default)]
pub struct ClientAccess {
    pub gate: Option<Gate>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How many connections are served at once, and how long a quiet one is kept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Beyond it a new client gets a 503 and is closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers: from accept
    /// to the first request (TLS handshake and HTTP/2 preface included), and
    /// for each later HTTP/1 request's head once it has begun.
    pub header_timeout: Duration,
    /// A connection with no bytes either way and no request in flight is closed after this.
    /// An HTTP/1 connection between requests is closed after `header_timeout`
    /// if that is shorter: hyper's header clock starts when it waits for the next head.
    pub connection_idle_timeout: Duration,
    /// A write to the client that makes no progress for this long (it stopped
    /// reading) fails, and the connection is closed.
    pub send_timeout: Duration,
    /// The server stops after this long without a request (the caller's
    /// shutdown future waits for it); here only to be reported.
    pub idle_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: crate::config::DEFAULT_MAX_CONNECTIONS,
            header_timeout: crate::config::DEFAULT_HEADER_TIMEOUT,
            connection_idle_timeout: crate::config::DEFAULT_CONNECTION_IDLE_TIMEOUT,
            send_timeout: crate::config::DEFAULT_SEND_TIMEOUT,
            idle_timeout: None,
        }
    }
}

impl Server {
    pub fn with_access(
        fetcher: Arc<Fetcher>,
        tag_ttl: Duration,
        limits: Limits,
        egress: Egress,
        access: ClientAccess,
        prefetch: bool,
    ) -> Arc<Server> {
        Arc::new(Server {
            fetcher,
            tag_ttl,
            limits,
            egress,
            stats: Stats::new(),
            access,
            page: status_page::PageState::default(),
            prefetch,
        })
    }

    /// The live figures, and the idle clock a shutdown future can wait on.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (bounded).
    pub async fn run(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<()> {
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_timeout);
        let cap = connection_cap(self.limits.max_connections);
        let slots = Arc::new(Semaphore::new(cap));
        let refusals = Arc::new(Semaphore::new(PATIENT_REFUSALS));
        tokio::pin!(shutdown);
        let mut last_accept_warning: Option<Instant> = None;
        // Connections are served on lanes (see `lanes`); without them, here.
        let mut lanes = match lanes::Lanes::start(lanes::count()) {
            Ok(lanes) => Some(lanes),
            Err(e) => {
                tracing::warn!("cannot start the connection threads ({e}); serving on one runtime");
                None
            }
        };
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause rather than
                        // spin, and say so once a minute, not every pause.
                        if last_accept_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                            tracing::warn!("accept failed: {e}");
                            last_accept_warning = Some(Instant::now());
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            // Without it a response's head and its body go out as separate
            // small segments, and Nagle holds the second until the client's
            // delayed ACK: ~40 ms on every small blob.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set for {peer}: {e}");
            }
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                // Each refusal holds its socket up to 2 s; past a few dozen
                // at once they answer without waiting, so refusals cannot
                // take the descriptors the cap keeps free.
                match Arc::clone(&refusals).try_acquire_owned() {
                    Ok(permit) => {
                        let tls = self.access.tls.clone();
                        tokio::spawn(async move {
                            refuse_busy(stream, cap, tls).await;
                            drop(permit);
                        });
                    }
                    Err(_) => refuse_at_once(&stream, cap, self.access.tls.is_some()),
                }
                continue;
            };
            let serve = {
                let (this, builder, watcher) =
                    (Arc::clone(&self), builder.clone(), graceful.watcher());
                move |stream: TcpStream| {
                    tokio::spawn(this.serve_connection(stream, peer, builder, watcher, slot));
                }
            };
            let Some(lanes) = lanes.as_mut() else {
                serve(stream);
                continue;
            };
            // Taken off this runtime's reactor, registered with the lane's.
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!("connection from {peer}: {e}");
                    continue;
                }
            };
            let job: lanes::Job = Box::new(move || match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream),
                Err(e) => tracing::debug!("connection from {peer}: {e}"),
            });
            // A lane whose thread has gone: served here instead.
            if let Err(job) = lanes.run(job) {
                job();
            }
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
        if let Some(lanes) = lanes {
            let _ = tokio::task::spawn_blocking(move || lanes.close(Duration::from_secs(2))).await;
        }
        Ok(())
    }

    /// Serves one accepted connection until it ends, goes idle, or sends no
    /// request in time; its slot is given back then.
    async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        builder: ConnBuilder,
        watcher: hyper_util::server::graceful::Watcher,
        slot: tokio::sync::OwnedSemaphorePermit,
    ) {
        let activity = Arc::new(Activity::new());
        let this = Arc::clone(&self);
        let watched = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let this = Arc::clone(&this);
            let busy = Busy::start(Arc::clone(&watched));
            // A status poll, a scrape or the status page is no activity:
            // watching a daemon must not keep it up.
            let path = req.uri().path();
            let watching =
                matches!(path, STATUS_PATH | METRICS_PATH) || routes::page(path).is_some();
            let request = (!watching).then(|| this.stats.begin());
            async move {
                let resp = this.handle(req, peer).await;
                // The request counts as in flight until its body is done.
                Ok::<_, Infallible>(resp.map(|body| {
                    body.map_frame(move |frame| {
                        let _busy = (&busy, &request);
                        frame
                    })
                    .boxed()
                }))
            }
        });
        let io = ActivityIo::new(stream, Arc::clone(&activity), self.limits.send_timeout);
        let tls = self.access.tls.clone();
        let (idle_timeout, handshake_timeout) = (
            self.limits.connection_idle_timeout,
            self.limits.header_timeout,
        );
        let served = async {
            let result = match tls {
                None => {
                    watcher
                        .watch(builder.serve_connection_with_upgrades(TokioIo::new(io), service))
                        .await
                }
                // The handshake gets the headers' deadline: a client
                // that opens and says nothing holds no slot for long.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(io)).await {
                        Ok(Ok(tls)) => {
                            watcher
                                .watch(
                                    builder
                                        .serve_connection_with_upgrades(TokioIo::new(tls), service),
                                )
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("connection from {peer}: TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(
                                "connection from {peer}: no TLS handshake within {}s",
                                handshake_timeout.as_secs()
                            );
                            return;
                        }
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!("connection from {peer}: {e}");
            }
        };
        tokio::select! {
            () = served => {},
            () = activity.idle(idle_timeout) => {
                tracing::debug!("connection from {peer}: idle for {}s, closed", idle_timeout.as_secs());
            }
            () = activity.no_request_within(handshake_timeout) => {
                tracing::debug!(
                    "connection from {peer}: no request within {}s ([serve] header_timeout), closed",
                    handshake_timeout.as_secs()
                );
            }
        }
        drop(slot);
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        match req.uri().path() {
            STATUS_PATH => return self.status(&req, peer),
            METRICS_PATH => return Box::pin(self.metrics(&req, peer)).await,
            _ => {}
        }
        if let Some(page) = routes::page(req.uri().path()) {
            return Box::pin(self.page(page, &req, peer)).await;
        }
        let started = Instant::now();
        let route = RouteKind::of_path(req.uri().path());
        // Kept as they are (clones share their bytes) and formatted once,
        // into the log line: building strings per request showed in its profile.
        let (method, uri) = (req.method().clone(), req.uri().clone());
        let refused = match &self.access.gate {
            Some(gate) => Box::pin(gate.admit(&req, peer)).await,
            None => None,
        };
        let (mut resp, cache) = match refused {
            Some(answer) => (answer, CacheStatus::Untracked),
            None => match self.route(&req).await {
                Ok(r) => r,
                Err(e) => {
                    if e.status.is_server_error() {
                        tracing::warn!("{method} {}: {}", target_of(&uri), e.message);
                    }
                    (error_response(&e), CacheStatus::Untracked)
                }
            },
        };
        self.stats.count(cache);
        let outcome = metrics::outcome(cache, &resp);
        if method == Method::HEAD {
            *resp.body_mut() = empty();
        }
        resp.headers_mut()
            .insert(API_VERSION, HeaderValue::from_static("registry/2.0"));
        // What the body should carry, to tell a finished transfer from an abandoned one.
        let expected = match method {
            Method::HEAD => None,
            _ => resp
                .headers()
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok()),
        };
        // Set when the body fails on our side (a download that broke), so
        // the log line doesn't blame the client.
        let failed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut log = RequestLog {
            method,
            uri,
            cache,
            expected,
            sent: 0,
            started,
            failed: Arc::clone(&failed),
            counted: Counted {
                metrics: Arc::clone(self.fetcher.metrics()),
                route,
                status: resp.status().as_u16(),
                outcome,
            },
        };
        resp.map(|body| {
            body.map_err(move |e| {
                failed.store(true, std::sync::atomic::Ordering::Relaxed);
                e
            })
            .map_frame(move |frame| {
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

    /// `GET /_dpx/status`: the live figures as JSON, to loopback clients only
    /// (an activated socket may listen wider than serve's own bind would).
    fn status(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        if !peer.ip().is_loopback() {
            return error_response(&ApiError::new(
                ErrorCode::Denied,
                "the dpx status is answered only to clients on this machine",
            ));
        }
        if req.method() != Method::GET {
            return error_response(&ApiError::unsupported(
                "the dpx status endpoint answers GET only",
            ));
        }
        let mut status = self.stats.snapshot(self.limits.idle_timeout);
        status.quota = Some(stats::QuotaStatus {
            pulls: self.fetcher.pull_counts(),
            unwritten: self.fetcher.unwritten_pull_counts(),
            figures: self.fetcher.quota_figures(),
        });
        match serde_json::to_string(&status) {
            Ok(body) => json_response(StatusCode::OK, body),
            Err(e) => error_response(&ApiError::internal(&e.to_string())),
        }
    }

    /// Returns the response and its cache status for the log line.
    async fn route(
        &self,
        req: &Request<Incoming>,
    ) -> Result<(Response<Body>, CacheStatus), ApiError> {
        let route = routes::parse(req.uri().path(), req.uri().query())?;
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return Err(ApiError::unsupported(
                "dpx is a read-only mirror: only GET and HEAD are served",
            ));
        }
        if let Some(host) = upstream_host(&route) {
            self.egress.check(host)?;
        }
        match route {
            Route::Ping => Ok((
                json_response(StatusCode::OK, "{}".into()),
                CacheStatus::Untracked,
            )),
            Route::Manifest { image, target } => {
                // Made only when needed: most requests are answered from the cache.
                let what = || format!("manifest {}/{}:{target}", image.registry, image.repository);
                let fetch_err = |e: crate::fetch::FetchError| {
                    ApiError::from_fetch(&e, &what(), ErrorCode::ManifestUnknown)
                };
                let by_get = || async {
                    self.fetcher
                        .manifest(&image.registry, &image.repository, &target, self.tag_ttl)
                        .await
                        .map_err(fetch_err)
                };
                let m = match &target {
                    // A HEAD of a tag need not cost the pull a GET is.
                    Target::Tag(tag) if req.method() == Method::HEAD => match self
                        .fetcher
                        .head_by_tag(&image.registry, &image.repository, tag, self.tag_ttl)
                        .await
                        .map_err(fetch_err)?
                    {
                        TagHead::Manifest(m) => m,
                        TagHead::Upstream(known) => {
                            match negotiate::head_only(req.headers(), &known.media_type) {
                                Some(Ok(())) => return head_only_response(&known),
                                Some(Err(refused)) => return Err(refused),
                                None => by_get().await?,
                            }
                        }
                    },
                    _ => by_get().await?,
                };
                let m = negotiate::answer(&self.fetcher, &image, &target, req.headers(), m).await?;
                if self.prefetch && req.method() == Method::GET {
                    self.fetcher
                        .prefetch_image(&image.registry, &image.repository, &m);
                }
                let status = m.freshness.cache_status();
                let digest = m.digest.to_string();
                let etag = ["\"", &digest, "\""].concat();
                let bad_header = |e: http::header::InvalidHeaderValue| {
                    ApiError::internal(&format!("manifest {}: {e}", m.digest))
                };
                let content_type = HeaderValue::try_from(&m.media_type).map_err(bad_header)?;
                let etag = HeaderValue::try_from(etag).map_err(bad_header)?;
                let digest = HeaderValue::try_from(digest).map_err(bad_header)?;
                // Built in place, room for all the headers made at once: the
                // commonest response dpx sends.
                let length = HeaderValue::from(m.bytes.len());
                let mut resp = Response::new(full(m.bytes));
                let headers = resp.headers_mut();
                headers.reserve(8);
                headers.insert(header::CONTENT_TYPE, content_type);
                headers.insert(header::CONTENT_LENGTH, length);
                headers.insert(CONTENT_DIGEST, digest);
                headers.insert(header::ETAG, etag);
                headers.insert(DPX_CACHE, HeaderValue::from_static(status.as_str()));
                // Why a stale copy was served: the upstream failed, or the
                // pull quota was saved (`reserve`, `rate-limited`).
                if let Some(reason) = m.freshness.stale_reason() {
                    headers.insert(DPX_STALE, HeaderValue::from_static(reason));
                }
                match m.freshness {
                    Freshness::Stale => {
                        tracing::warn!("{}: upstream unavailable, served the cached copy", what());
                    }
                    Freshness::Spared(spare) => tracing::warn!(
                        "{}: served the cached copy without a pull upstream ({})",
                        what(),
                        spare.as_str()
                    ),
                    _ => {}
                }
                Ok((resp, status))
            }
            // Boxed, as the other routes and branches a cached manifest
            // does not take: a future is copied whole each time it moves, so
            // the commonest request's future is kept small.
            Route::Blob { image, digest } => Box::pin(self.blob(req, &image, &digest)).await,
            Route::TagList { image, name, page } => {
                Box::pin(tags::respond(
                    &self.fetcher,
                    self.tag_ttl,
                    &image,
                    &name,
                    &page,
                    req.uri(),
                ))
                .await
            }
            Route::Referrers {
                image,
                digest,
                artifact_type,
            } => {
                Box::pin(referrers::answer(
                    &self.fetcher,
                    &image,
                    &digest,
                    artifact_type.as_deref(),
                    self.tag_ttl,
                ))
                .await
            }
        }
    }

    async fn blob(
        &self,
        req: &Request<Incoming>,
        image: &Image,
        digest: &Digest,
    ) -> Result<(Response<Body>, CacheStatus), ApiError> {
        let what = format!("blob {digest} of {}/{}", image.registry, image.repository);
        let fetch_err =
            |e: crate::fetch::FetchError| ApiError::from_fetch(&e, &what, ErrorCode::BlobUnknown);
        let head = req.method() == Method::HEAD;
        // Kept with the response body: a prefetch of this blob's image goes
        // on while a client receives it.
        let interest = (!head).then(|| self.fetcher.client_interest(digest));
        let answer = self
            .fetcher
            .serve_blob(&image.registry, &image.repository, digest, head)
            .await
            .map_err(fetch_err)?;
        let (status, total) = (answer.cache_status(), answer.size());
        let range = req
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok());
        let (start, end, partial) = match BlobRange::parse(range, total) {
            BlobRange::Whole => (0, total, false),
            BlobRange::Part { start, end } => (start, end, true),
            BlobRange::Unsatisfiable => {
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
        let body = match answer {
            _ if head => empty(),
            BlobAnswer::Complete { file, .. } => {
                // The client's interest in the image lives as long as the body.
                MappedBody::new(file, start, end)
                    .map_frame(move |frame| {
                        let _held = &interest;
                        frame
                    })
                    .boxed()
            }
            BlobAnswer::InMemory(bytes) => {
                // The range was checked against the length: both fit.
                let index = |at: u64| usize::try_from(at).unwrap_or(usize::MAX).min(bytes.len());
                let part = bytes.slice(index(start)..index(end));
                Full::new(part)
                    .map_err(|never| match never {})
                    .map_frame(move |frame| {
                        let _held = &interest;
                        frame
                    })
                    .boxed()
            }
            BlobAnswer::Growing { progress, .. } => {
                let verdict = progress.clone();
                let stream = BlobStream::growing(
                    Arc::clone(&self.fetcher),
                    digest.clone(),
                    progress,
                    start,
                    end,
                )
                .with_interest(interest);
                first_chunk_first(stream, end - start, verdict)
                    .await
                    .map_err(fetch_err)?
            }
            BlobAnswer::SizeOnly(_) => empty(),
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
            .header(CONTENT_DIGEST, digest.to_string())
            .header(header::ETAG, format!("\"{digest}\""))
            .header(DPX_CACHE, status.as_str());
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

/// The upstream registry a route would contact. No wildcard arm: a new
/// route must say whether it goes upstream.
fn upstream_host(route: &Route) -> Option<&str> {
    match route {
        Route::Ping => None,
        Route::Manifest { image, .. }
        | Route::Blob { image, .. }
        | Route::TagList { image, .. }
        | Route::Referrers { image, .. } => Some(&image.registry),
    }
}

/// Raises the soft open-files limit to the hard one: each client connection
/// is a descriptor, and the default soft limit (often 1024) is reached first.
pub fn raise_fd_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!("open files limit: {n}"),
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// Refusals (connections beyond the cap) that may wait for their client to
/// read the 503; more at once are answered and closed without waiting.
const PATIENT_REFUSALS: usize = 64;

/// Descriptors kept for what is not a client: the listener, logs, the cache's
/// locks and files, upstream connections, and the patient refusals.
const FD_RESERVE: u64 = 64 + PATIENT_REFUSALS as u64;

/// `max_connections`, lowered to what the open-files limit allows (a client
/// can hold two descriptors: its socket and a blob file). Past the limit
/// accept fails, and new clients wait unanswered in the kernel's queue until
/// held ones time out, instead of getting the cap's 503 at once.
fn connection_cap(configured: usize) -> usize {
    #[cfg(unix)]
    if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
        let fits = usize::try_from(soft.saturating_sub(FD_RESERVE) / 2)
            .unwrap_or(usize::MAX)
            .max(1);
        if fits < configured {
            tracing::warn!(
                "the open files limit ({soft}) allows about {fits} client connections: serving at \
                 most {fits}, not [serve] max_connections = {configured}; raise the hard limit \
                 (ulimit -Hn, or LimitNOFILE= in a systemd unit) to serve more"
            );
            return fits;
        }
    }
    configured
}

/// Answers a connection beyond the cap with a 503 and closes it, without
/// waiting long for a client that does not read (or, over TLS, does not
/// finish its handshake).
async fn refuse_busy(stream: TcpStream, cap: usize, tls: Option<tokio_rustls::TlsAcceptor>) {
    match tls {
        None => refuse_busy_on(stream, cap).await,
        Some(acceptor) => {
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(2), acceptor.accept(stream)).await
            {
                refuse_busy_on(tls, cap).await;
            }
        }
    }
}

/// A refusal in a flood of them: the 503 if the socket takes it now (never
/// over TLS, which needs a handshake first), then closed.
fn refuse_at_once(stream: &TcpStream, cap: usize, tls: bool) {
    if !tls {
        let _ = stream.try_write(busy_reply(cap).as_bytes());
    }
}

async fn refuse_busy_on<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, cap: usize) {
    let reply = busy_reply(cap);
    let answer = async {
        stream.write_all(reply.as_bytes()).await?;
        // FIN, then drain what the client sent so closing does not reset
        // the connection before it reads the reply.
        stream.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tokio::io::AsyncReadExt::read(&mut stream, &mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
}

/// The 503 a connection beyond the cap gets, as raw HTTP/1.1.
fn busy_reply(cap: usize) -> String {
    let body = ApiError::new(
        ErrorCode::TooManyRequests,
        format!(
            "dpx serve has {cap} open connections, its limit ([serve] max_connections); retry shortly"
        ),
    )
    .with_status(StatusCode::SERVICE_UNAVAILABLE)
    .body();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\ndocker-distribution-api-version: registry/2.0\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// When a connection last moved a byte, and how many of its requests are in flight.
struct Activity {
    started: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
    /// Requests begun on the connection.
    requests: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once the connection has been quiet, with nothing in flight, for `timeout`.
    async fn idle(&self, timeout: Duration) {
        loop {
            let last = self.started + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + timeout;
            if Instant::now() >= deadline && self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            }
            let wake = deadline.max(Instant::now() + timeout.min(Duration::from_secs(1)));
            tokio::time::sleep_until(wake.into()).await;
        }
    }
}

impl Activity {
    /// Resolves when `timeout` has passed since accept without a request
    /// begun; never once one has. hyper's own header timeout starts only with
    /// a request's first byte, and the HTTP/1-or-2 detection before it has none.
    async fn no_request_within(&self, timeout: Duration) {
        tokio::time::sleep_until((self.started + timeout).into()).await;
        if self.requests.load(Ordering::Relaxed) > 0 {
            std::future::pending::<()>().await;
        }
    }
}

/// A request in flight on a connection, from its head to the end of its body.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Busy {
        activity.requests.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// The one log line per request, written when the response body is done
/// (sent in full, or dropped because the client went away), so that bytes
/// and duration cover the whole transfer and not just the headers.
struct RequestLog {
    method: Method,
    uri: http::Uri,
    cache: CacheStatus,
    expected: Option<u64>,
    sent: u64,
    started: Instant,
    failed: Arc<std::sync::atomic::AtomicBool>,
    counted: Counted,
}

/// Where a request is counted when it is done, and under which labels.
struct Counted {
    metrics: Arc<Metrics>,
    route: RouteKind,
    status: u16,
    outcome: Outcome,
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let c = &self.counted;
        c.metrics
            .request(c.route, c.status, c.outcome, self.sent, took);
        // Tenths of a millisecond as integers: formatting the float with a
        // precision showed in a cached manifest's profile.
        // (u64: a u128 formats slower.)
        let tenths = u64::try_from(took.as_micros() / 100).unwrap_or(u64::MAX);
        let ms = format_args!("{}.{}", tenths / 10, tenths % 10);
        let (sent, cache) = (self.sent, self.cache.as_str());
        let line = format_args!("{} {} {}", self.method, target_of(&self.uri), c.status);
        if self.failed.load(std::sync::atomic::Ordering::Relaxed) {
            // The cause is logged as an error where it happened.
            crate::daemon::log::request(format_args!(
                "{line} {sent}B {cache} {ms}ms incomplete: cut off after {sent} bytes by a failed download"
            ));
            return;
        }
        match self.expected {
            Some(expected) if sent < expected => crate::daemon::log::request(format_args!(
                "{line} {sent}B {cache} {ms}ms incomplete: client left after {sent} of {expected} bytes"
            )),
            _ => crate::daemon::log::request(format_args!("{line} {sent}B {cache} {ms}ms")),
        }
    }
}

/// A request's target as the client sent it: path and query.
fn target_of(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or(uri.path(), |p| p.as_str())
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    full(Bytes::new())
}

/// The body of a download in progress, from its first chunk on — and with
/// what follows at once (up to `READY_AHEAD`), or, when that is all but the
/// byte held back for the digest check, the check's verdict. A download that
/// fails by then (a wrong digest, more bytes than its size) is answered with
/// its error: a 200 whose body fails before hyper has flushed its head goes
/// unsent, and the client saw the connection close with no answer at all.
/// For the same reason a failure after this point waits one turn before it
/// reaches hyper, which flushes what it holds (the head, the bytes so far)
/// in that turn: the client sees a 200 cut short, not silence.
async fn first_chunk_first(
    s: BlobStream,
    len: u64,
    verdict: tokio::sync::watch::Receiver<crate::fetch::BlobState>,
) -> Result<Body, crate::fetch::FetchError> {
    use futures_util::{FutureExt, StreamExt};
    const READY_AHEAD: u64 = 1024 * 1024;
    let failure = |e: std::io::Error| match &*verdict.borrow() {
        crate::fetch::BlobState::Failed(f) => crate::fetch::FetchError::Shared(Arc::clone(f)),
        _ => crate::fetch::FetchError::Internal(e.to_string()),
    };
    let mut stream = Box::pin(s.into_stream());
    let mut head = Vec::new();
    let mut sent = 0u64;
    loop {
        let next = if sent == 0 || sent.saturating_add(1) >= len {
            stream.next().await
        } else if sent < READY_AHEAD {
            match stream.next().now_or_never() {
                Some(next) => next,
                None => break,
            }
        } else {
            break;
        };
        match next {
            Some(Ok(chunk)) => {
                sent = sent.saturating_add(chunk.len() as u64);
                head.push(Ok(chunk));
            }
            Some(Err(e)) => return Err(failure(e)),
            None => break,
        }
    }
    let body = futures_util::stream::iter(head)
        .chain(stream)
        .then(|item| async move {
            if item.is_err() {
                tokio::task::yield_now().await;
            }
            item
        });
    Ok(BodyExt::boxed(StreamBody::new(
        body.map(|r| r.map(Frame::data)),
    )))
}

/// The answer to a HEAD of an uncached tag, from the upstream's HEAD: the
/// headers a GET would carry, no manifest fetched.
fn head_only_response(
    known: &crate::fetch::HeadOnly,
) -> Result<(Response<Body>, CacheStatus), ApiError> {
    let resp = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, &known.media_type)
        .header(header::CONTENT_LENGTH, known.size)
        .header(CONTENT_DIGEST, known.digest.to_string())
        .header(header::ETAG, format!("\"{}\"", known.digest))
        .header(DPX_CACHE, CacheStatus::Miss.as_str())
        .body(empty())
        .map_err(|e| ApiError::internal(&e.to_string()))?;
    Ok((resp, CacheStatus::Miss))
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
    let mut resp = json_response(e.status, e.body());
    if let Some(secs) = e.retry_after
        && let Ok(v) = http::HeaderValue::try_from(secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

/// Connections the kernel completes while the accept loop catches up. At
/// tokio's 1024 a burst of connects (thousands of clients at once) overflows
/// the queue, and the dropped ones wait for SYN-ACK retries (1 s, 3 s, 7 s...)
/// before dpx even sees them. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 8192;

/// Binds the listen address, with an error that says what to do.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listen = || {
        let socket = match addr {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        // As TcpListener::bind: a restarted serve rebinds despite TIME_WAIT.
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(LISTEN_BACKLOG)
    };
    listen().map_err(|e| {
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
    use super::*;
    use std::io::{Read as _, Write as _};

    /// A 200,000-byte blob's download with 50,000 bytes stored: its
    /// progress sender, a client's stream of it, and the progress.
    fn halfway_download() -> (
        tokio::sync::watch::Sender<crate::fetch::BlobState>,
        BlobStream,
        tokio::sync::watch::Receiver<crate::fetch::BlobState>,
    ) {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[7u8; 50_000]).unwrap();
        let (tx, rx) = tokio::sync::watch::channel(crate::fetch::BlobState::Downloading {
            temp: std::path::PathBuf::from("unused"),
            written: 50_000,
            total: Some(200_000),
        });
        let stream = BlobStream::growing_file(file, rx.clone(), 200_000);
        (tx, stream, rx)
    }

    /// A download that fails after `first_chunk_first` has taken its first
    /// bytes: the client still gets the 200, those bytes, then the cut.
    #[tokio::test]
    async fn a_download_failing_after_the_first_chunk_still_sends_the_head() {
        let (tx, stream, rx) = halfway_download();
        let body = first_chunk_first(stream, 200_000, rx).await.unwrap();
        tx.send_replace(crate::fetch::BlobState::Failed(Arc::new(
            crate::fetch::FetchError::Internal("more bytes than its size".into()),
        )));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            got
        });
        let (sock, _) = listener.accept().await.unwrap();
        let body = std::sync::Mutex::new(Some(body));
        let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
            let body = body.lock().unwrap().take().unwrap_or_else(empty);
            let resp = Response::builder()
                .header(header::CONTENT_LENGTH, 200_000)
                .body(body)
                .unwrap();
            async move { Ok::<_, Infallible>(resp) }
        });
        let served = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(sock), service)
            .await;
        assert!(served.is_err(), "the body's failure ends the connection");
        let got = tokio::task::spawn_blocking(move || client.join().unwrap())
            .await
            .unwrap();
        let head_end = got.windows(4).position(|w| w == b"\r\n\r\n");
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "the client got {} bytes and no 200 head",
            got.len()
        );
        let body_len = got.len() - head_end.unwrap() - 4;
        assert_eq!(body_len, 50_000, "the bytes stored before the failure");
    }

    /// A download that has failed by the time its first bytes are read
    /// is answered with its error, not a 200.
    #[tokio::test]
    async fn a_download_failing_before_the_head_goes_is_an_error_answer() {
        let (tx, stream, rx) = halfway_download();
        // The downloader is gone without a verdict after 50,000 bytes.
        drop(tx);
        let got = first_chunk_first(stream, 200_000, rx).await;
        assert!(got.is_err(), "a body for a download that ended unverified");
    }
}
