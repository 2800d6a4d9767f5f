//! The upstream registry client: token flow, manifest HEAD/GET, blob streams,
//! retries of spurious failures, and the rate-limit figures of every reply.
//! It knows nothing of the cache; `fetch` joins the two.

pub mod address;
pub mod body;
pub mod error;
mod login_check;
pub mod observe;
pub mod probe;
pub mod ratelimit;
mod referrers;
#[cfg(test)]
mod replies_proptest;
pub mod retry;
mod tags;
pub mod upstream;
pub mod upstream_token;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use reqwest::Url;

pub use crate::credentials::Credentials;
pub use body::{LowSpeedLimit, Reply};
pub use error::{Failure, RegistryError};
pub use login_check::LoginCheck;
pub use observe::{Asked, ReplyObserver, UpstreamReply};
pub use probe::{Exhausted, QuotaProbe};
pub use ratelimit::RateLimit;
pub use retry::{DEFAULT_RETRIES, Retry, RetryPolicy};
use upstream::Failover;
pub use upstream::{Route, Upstream};
use upstream_token::{Challenge, TokenCache, TokenResponse};

use crate::metrics::{Answer, Metrics, Upstream as UpstreamKind};
use crate::oci::{MANIFEST_ACCEPT, normalize_media_type};
use crate::reference::HostKey;
use crate::reference::{Digest, Target};

pub use crate::oci::MAX_MANIFEST_BYTES;
/// Error bodies and token replies are small; more than this is not read.
const MAX_SMALL_BODY: usize = 64 * 1024;
pub const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("dpx/", env!("CARGO_PKG_VERSION"));

/// Where a logical registry (`docker.io`) is fetched from: its upstreams in
/// order of preference, never empty (from the config file and environment).
pub type EndpointResolver = Arc<dyn Fn(&str) -> Vec<Upstream> + Send + Sync>;

/// Finds the credentials for an upstream host key (`host[:port]`, Docker Hub
/// as `docker.io`). Blocking (files, helpers, keyring): the client calls it
/// on a blocking thread, once per host, at the host's first challenge.
pub type CredentialLookup = Arc<dyn Fn(&str) -> Option<crate::credentials::Found> + Send + Sync>;

/// A manifest as received, digest verified.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// What a HEAD tells about a manifest without spending a pull.
#[derive(Debug, Clone)]
pub struct ManifestHead {
    /// Registries should send it; when one doesn't, staleness can't be decided by HEAD.
    pub digest: Option<Digest>,
    /// The Content-Type, parameters dropped (a GET reads the manifest's type from it).
    pub media_type: Option<String>,
    /// From Content-Length: the size a GET's body would have.
    pub size: Option<u64>,
}

/// What a HEAD tells about a blob without downloading it.
#[derive(Debug, Clone)]
pub struct BlobHead {
    /// From Content-Length, when the upstream sent one.
    pub size: Option<u64>,
}

/// An open blob download.
pub struct BlobResponse {
    pub url: String,
    pub response: Reply,
    /// True when the server honoured our `Range` (206); false means the body starts at 0.
    pub resumed: bool,
}

/// Tokens, credentials, Basic hosts and quota figures are kept per upstream
/// host (`Upstream::host`), not per logical registry: a team tier and Docker
/// Hub behind the same `docker.io` have their own.
pub struct RegistryClient {
    http: reqwest::Client,
    endpoints: EndpointResolver,
    /// Each registry's upstreams, resolved once.
    upstreams: Mutex<HashMap<String, Arc<[Upstream]>>>,
    failover: Arc<Failover>,
    tokens: TokenCache,
    /// Credentials given with `set_credentials`, by upstream host key.
    credentials: Mutex<HashMap<String, Credentials>>,
    lookup: Option<CredentialLookup>,
    /// What `lookup` answered, per upstream host key (one lookup per host).
    looked_up:
        Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<crate::credentials::Found>>>>>,
    /// Upstream hosts that challenged with Basic rather than a token realm.
    basic_hosts: Mutex<HashSet<String>>,
    rate_limits: Mutex<HashMap<String, RateLimit>>,
    /// Told of every reply (`observe`), when set.
    observer: std::sync::OnceLock<ReplyObserver>,
    /// Counts every request and its answer (`count_into`), when set.
    metrics: std::sync::OnceLock<Arc<Metrics>>,
    retry: RetryPolicy,
    low_speed: LowSpeedLimit,
    /// Set by `public_only_except`: registries it does not name connect to public addresses only.
    public_only: Option<PublicOnlyClient>,
}

/// The HTTP client for registries a client named (`dpx serve`'s `?ns=`, prefix
/// hosts): its resolver drops non-public addresses, and IP literals are checked
/// before each request (see `address`).
struct PublicOnlyClient {
    http: reqwest::Client,
    /// Registries the config file names (lower case): their upstreams, realms
    /// and redirects may be anywhere, the user chose them.
    trusted: HashSet<String>,
}

/// Which addresses one operation may connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Any,
    PublicOnly,
}

fn http_client(
    resolver: Option<Arc<address::PublicOnly>>,
) -> Result<reqwest::Client, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        // Redirects are followed by hand so Authorization never leaves its origin.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10));
    if let Some(r) = resolver {
        // A proxy would resolve names itself, past the filter.
        builder = builder.dns_resolver(r).no_proxy();
    }
    builder.build().map_err(|e| RegistryError::Protocol {
        url: String::new(),
        message: format!("cannot build HTTP client: {e}"),
    })
}

impl RegistryClient {
    pub fn new(
        endpoints: EndpointResolver,
        retry: RetryPolicy,
        low_speed: LowSpeedLimit,
    ) -> Result<Self, RegistryError> {
        let http = http_client(None)?;
        Ok(RegistryClient {
            http,
            endpoints,
            upstreams: Mutex::default(),
            failover: Arc::default(),
            tokens: TokenCache::default(),
            credentials: Mutex::default(),
            lookup: None,
            looked_up: Mutex::default(),
            basic_hosts: Mutex::default(),
            rate_limits: Mutex::default(),
            observer: std::sync::OnceLock::new(),
            metrics: std::sync::OnceLock::new(),
            retry,
            low_speed,
            public_only: None,
        })
    }

    /// For `dpx serve`: every registry but `trusted` (those the config file
    /// names, Docker Hub) is reached at public addresses only — checked on
    /// each connection, so DNS that changes its answer cannot get around it.
    pub fn public_only_except(
        mut self,
        trusted: impl IntoIterator<Item = String>,
    ) -> Result<Self, RegistryError> {
        self.public_only = Some(PublicOnlyClient {
            http: http_client(Some(address::PublicOnly::resolver()))?,
            trusted: trusted
                .into_iter()
                .map(|r| r.to_ascii_lowercase())
                .collect(),
        });
        Ok(self)
    }

    fn reach(&self, registry: &str) -> Reach {
        match &self.public_only {
            Some(p) if !p.trusted.contains(&registry.to_ascii_lowercase()) => Reach::PublicOnly,
            _ => Reach::Any,
        }
    }

    /// A request to `url` with the client `reach` allows (an IP literal
    /// checked here: no resolver sees it).
    fn request(
        &self,
        reach: Reach,
        method: Method,
        url: &Url,
    ) -> Result<reqwest::RequestBuilder, RegistryError> {
        match (&self.public_only, reach) {
            (Some(p), Reach::PublicOnly) => {
                address::check_literal(url).map_err(|e| RegistryError::NonPublic {
                    url: url.to_string(),
                    host: e.host,
                })?;
                Ok(p.http.request(method, url.clone()))
            }
            _ => Ok(self.http.request(method, url.clone())),
        }
    }

    /// The retry state for one operation the caller drives itself (a blob
    /// download with its resumes: `get_blob` tries once).
    pub fn retry(&self) -> Retry {
        self.retry.start()
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Runs `op` (one try) on the registry's upstream until it succeeds,
    /// fails for good, or the retry budget is spent; then on the next
    /// upstream if it failed to answer (see `upstream` for the rules).
    async fn retrying<T, F>(
        &self,
        registry: &str,
        op: impl FnMut(Upstream) -> F,
    ) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        self.retrying_unless(registry, |_| false, op).await
    }

    /// `retrying`, except that an error `is_final` says so ends the operation
    /// at once: no retry, no fallback.
    async fn retrying_unless<T, F>(
        &self,
        registry: &str,
        is_final: impl Fn(&RegistryError) -> bool,
        mut op: impl FnMut(Upstream) -> F,
    ) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        let mut route = self.route(registry)?;
        loop {
            let up = route.upstream().clone();
            let result = route
                .retry_policy()
                .run_unless(&is_final, || op(up.clone()))
                .await;
            if let Err(e) = &result
                && is_final(e)
            {
                return result;
            }
            if !route.next_after(&result) {
                return result;
            }
        }
    }

    /// The registry's upstreams in order of preference.
    pub fn upstreams(&self, registry: &str) -> Arc<[Upstream]> {
        if let Ok(map) = self.upstreams.lock()
            && let Some(u) = map.get(registry)
        {
            return Arc::clone(u);
        }
        let resolved: Arc<[Upstream]> = (self.endpoints)(registry)
            .into_iter()
            .map(|u| u.serving(registry))
            .collect();
        if let Ok(mut map) = self.upstreams.lock() {
            map.insert(registry.to_string(), Arc::clone(&resolved));
        }
        resolved
    }

    /// The way one operation takes along the registry's upstreams (a caller
    /// that drives its own tries, as a blob download does, uses it with `get_blob`).
    pub fn route(&self, registry: &str) -> Result<Route, RegistryError> {
        Route::new(
            registry,
            self.upstreams(registry),
            self.retry,
            Arc::clone(&self.failover),
        )
        .ok_or_else(|| RegistryError::Protocol {
            url: registry.to_string(),
            message: "no upstream is configured for this registry".into(),
        })
    }

    /// The upstream `registry` is fetched from now.
    fn upstream_in_use(&self, registry: &str) -> Option<Upstream> {
        let upstreams = self.upstreams(registry);
        let index = self.failover.in_use(registry);
        upstreams.get(index).or(upstreams.first()).cloned()
    }

    /// Credentials for one upstream host (`Upstream::host`; Docker Hub's
    /// aliases are one), ahead of any lookup.
    pub fn set_credentials(&self, host: &str, creds: Credentials) {
        if let Ok(mut c) = self.credentials.lock() {
            c.insert(HostKey::of_registry(host).into_string(), creds);
        }
    }

    /// Where credentials come from when an upstream asks for them; without
    /// one, only `set_credentials` (or nothing: anonymous) is used.
    pub fn with_credential_lookup(mut self, lookup: CredentialLookup) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// The last quota figures the registry's upstreams reported, if any: the
    /// one in use first.
    pub fn rate_limit(&self, registry: &str) -> Option<RateLimit> {
        let upstreams = self.upstreams(registry);
        let in_use = self.failover.in_use(registry);
        let map = self.rate_limits.lock().ok()?;
        let preferred = upstreams.get(in_use).into_iter();
        preferred
            .chain(upstreams.iter())
            .find_map(|u| map.get(u.host()).cloned())
    }

    /// Has `observer` told of every upstream reply from now on (once; a
    /// second observer is ignored and `false` returned).
    pub fn observe(&self, observer: ReplyObserver) -> bool {
        self.observer.set(observer).is_ok()
    }

    /// Has every upstream request counted in `metrics` from now on (once).
    pub fn count_into(&self, metrics: Arc<Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Counts one request of `kind` and how it ended.
    fn count(&self, kind: UpstreamKind, result: &Result<reqwest::Response, RegistryError>) {
        if let Some(m) = self.metrics.get() {
            let answer = match result {
                Ok(resp) => Answer::Status(resp.status().as_u16()),
                Err(RegistryError::Unreachable { .. }) => Answer::Unreachable,
                Err(_) => Answer::Failed,
            };
            m.upstream(kind, answer);
        }
    }

    /// The user name requests to `registry` are made as now (at the
    /// upstream in use); `None` when anonymous.
    pub fn account(&self, registry: &str) -> Option<String> {
        let up = self.upstream_in_use(registry)?;
        self.credentials_for(up.host()).map(|c| c.username)
    }

    /// The API base URL of the upstream `registry` is fetched from now.
    pub fn endpoint(&self, registry: &str) -> String {
        self.upstream_in_use(registry)
            .map(|u| u.url().to_string())
            .unwrap_or_default()
    }

    /// Where `<repo>/<kind>/<reference>` of `registry` is fetched from now
    /// (for messages).
    pub fn api_url(&self, registry: &str, repo: &str, kind: &str, reference: &str) -> String {
        self.upstream_in_use(registry)
            .map(|u| u.api_url(repo, kind, reference))
            .unwrap_or_default()
    }

    /// HEAD a manifest: free on Docker Hub. `Ok(None)` when it does not exist.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        self.retrying(registry, |up| async move {
            self.head_manifest_once(&up, repo, target).await
        })
        .await
    }

    async fn head_manifest_once(
        &self,
        up: &Upstream,
        repo: &str,
        target: &Target,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let url = up.api_url(repo, "manifests", &target.to_string());
        let resp = self
            .send(up, repo, Method::HEAD, &url, Some(MANIFEST_ACCEPT), None)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check_status(resp, &url, "manifest").await?;
        Ok(Some(ManifestHead::from_headers(resp.headers())))
    }

    /// HEAD a blob: its size without a download. `Ok(None)` when it does not exist.
    pub async fn head_blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<BlobHead>, RegistryError> {
        self.retrying(registry, |up| async move {
            self.head_blob_once(&up, repo, digest).await
        })
        .await
    }

    async fn head_blob_once(
        &self,
        up: &Upstream,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<BlobHead>, RegistryError> {
        let url = up.api_url(repo, "blobs", &digest.to_string());
        let resp = self.send(up, repo, Method::HEAD, &url, None, None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check_status(resp, &url, &format!("blob {digest}")).await?;
        // From the header: a HEAD reply's body is empty whatever it announces.
        let size = header_str(resp.headers(), header::CONTENT_LENGTH.as_str())
            .and_then(|n| n.trim().parse().ok());
        Ok(Some(BlobHead { size }))
    }

    /// GET a manifest (one pull on Docker Hub), keeping its exact bytes and verifying its digest.
    pub async fn get_manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<FetchedManifest, RegistryError> {
        // A 429 to a pull is the quota spent: not retried, nor asked of a
        // fallback (the fetcher pauses manifest requests until the window allows).
        let quota_spent = |e: &RegistryError| matches!(e, RegistryError::RateLimited { .. });
        self.retrying_unless(registry, quota_spent, |up| async move {
            self.get_manifest_once(&up, repo, target).await
        })
        .await
    }

    async fn get_manifest_once(
        &self,
        up: &Upstream,
        repo: &str,
        target: &Target,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = up.api_url(repo, "manifests", &target.to_string());
        let what = format!("manifest {repo}:{target}");
        let resp = self
            .send(up, repo, Method::GET, &url, Some(MANIFEST_ACCEPT), None)
            .await?;
        let resp = check_status(resp, &url, &what).await?;
        let head = ManifestHead::from_headers(resp.headers());
        let media_type = head.media_type.unwrap_or_default();
        let claimed = head.digest;
        let bytes = resp.bytes(MAX_MANIFEST_BYTES as u64).await?;
        let actual = Digest::of(&bytes);
        let expected = match target {
            Target::Digest(d) => Some(d.clone()),
            Target::Tag(_) => claimed,
        };
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected,
                actual,
            });
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            sniff_media_type(&bytes).unwrap_or(media_type)
        } else {
            media_type
        };
        // A captive portal's page, a proxy's error: nothing that is not the
        // manifest it claims to be goes further (and so is never cached).
        crate::oci::Manifest::check(&media_type, &bytes).map_err(|e| RegistryError::Protocol {
            url: url.clone(),
            message: format!("{what} is not a manifest dpx can use: {e}"),
        })?;
        Ok(FetchedManifest {
            digest: actual,
            media_type,
            bytes,
        })
    }

    /// Start a blob download from `up` at `offset` (a `Range` request when
    /// non-zero). One try: the caller retries the whole download, resumes
    /// included, under its `route()`'s budget, and falls over with it.
    pub async fn get_blob(
        &self,
        up: &Upstream,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobResponse, RegistryError> {
        let url = up.api_url(repo, "blobs", &digest.to_string());
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let resp = self
            .send(up, repo, Method::GET, &url, None, range.as_deref())
            .await?;
        let final_url = resp.url().to_string();
        let resp = check_status(resp, &url, &format!("blob {digest}")).await?;
        let resumed = offset > 0 && resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok(BlobResponse {
            url: final_url,
            response: resp,
            resumed,
        })
    }

    /// One try of a request: token handling (a 401 is answered once with a
    /// fresh token) and redirects, no retries (see `retrying`). Returns the
    /// final reply whatever its status (callers map statuses with `check_status`).
    async fn send(
        &self,
        up: &Upstream,
        repo: &str,
        method: Method,
        url: &str,
        accept: Option<&str>,
        range: Option<&str>,
    ) -> Result<Reply, RegistryError> {
        let scope = format!("repository:{}:pull", up.repository(repo));
        let host = up.host();
        let reach = self.reach(up.registry());
        let mut reauthorized = false;
        loop {
            let auth = self.authorization(host, &scope);
            let resp = self
                .send_following_redirects(
                    reach,
                    method.clone(),
                    url,
                    auth.as_deref(),
                    accept,
                    range,
                )
                .await;
            self.count(UpstreamKind::of_url(url, method == Method::HEAD), &resp);
            let resp = resp?;
            let rate_limit = RateLimit::from_headers(resp.headers());
            if let Some(rl) = &rate_limit
                && let Ok(mut map) = self.rate_limits.lock()
            {
                map.insert(host.to_string(), rl.clone());
            }
            self.tell(up, repo, &method, url, &resp, rate_limit);
            if resp.status() == StatusCode::UNAUTHORIZED
                && !reauthorized
                && self
                    .authenticate(reach, host, &scope, resp.headers())
                    .await?
            {
                reauthorized = true;
                continue;
            }
            return Ok(Reply::new(resp, self.low_speed));
        }
    }

    /// Tells the observer about a reply, if there is one.
    fn tell(
        &self,
        up: &Upstream,
        repo: &str,
        method: &Method,
        url: &str,
        resp: &reqwest::Response,
        rate_limit: Option<RateLimit>,
    ) {
        let Some(observer) = self.observer.get() else {
            return;
        };
        // `url` is one `Upstream::api_url` built: its path says what it asks for.
        let manifests = up.api_url(repo, "manifests", "");
        let asked = match *method {
            _ if !url.starts_with(&manifests) => Asked::Other,
            Method::GET => Asked::ManifestGet,
            Method::HEAD => Asked::ManifestHead,
            _ => Asked::Other,
        };
        observer(&UpstreamReply {
            registry: up.registry().to_string(),
            account: self.credentials_for(up.host()).map(|c| c.username),
            asked,
            status: resp.status().as_u16(),
            rate_limit,
            retry_after: retry_after(resp.headers()),
        });
    }

    async fn send_following_redirects(
        &self,
        reach: Reach,
        method: Method,
        url: &str,
        auth: Option<&str>,
        accept: Option<&str>,
        range: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let origin = Url::parse(url).map_err(|e| RegistryError::Protocol {
            url: url.to_string(),
            message: format!("invalid URL: {e}"),
        })?;
        let mut current = origin.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.request(reach, method.clone(), &current)?;
            // Docker Hub sends blobs from a CDN on another host: the token stays home.
            if same_origin(&current, &origin)
                && let Some(a) = auth
            {
                req = req.header(header::AUTHORIZATION, a);
            }
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            if let Some(r) = range {
                req = req.header(header::RANGE, r);
            }
            let resp = self.send_request(req, current.as_str()).await?;
            let status = resp.status().as_u16();
            tracing::debug!(target: "dpx::upstream", "upstream {method} {current} {status}");
            if !resp.status().is_redirection() {
                return Ok(resp);
            }
            let location =
                header_str(resp.headers(), header::LOCATION.as_str()).ok_or_else(|| {
                    RegistryError::Protocol {
                        url: current.to_string(),
                        message: format!("{} without a Location header", resp.status()),
                    }
                })?;
            current = current
                .join(location)
                .map_err(|e| RegistryError::Protocol {
                    url: current.to_string(),
                    message: format!("bad redirect Location {location:?}: {e}"),
                })?;
        }
        Err(RegistryError::Protocol {
            url: url.to_string(),
            message: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    /// Sends one HTTP request and waits for its head, no longer than the
    /// low-speed time (bodies are held to the limit by `Reply`).
    async fn send_request(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let wait = if self.low_speed.is_enabled() {
            self.low_speed.time
        } else {
            Duration::from_secs(60)
        };
        match tokio::time::timeout(wait, req.send()).await {
            Ok(result) => result.map_err(|e| RegistryError::from_reqwest(url, &e)),
            Err(_) => Err(RegistryError::Unreachable {
                url: url.to_string(),
                reason: format!("no reply within {}", humantime::format_duration(wait)),
            }),
        }
    }

    /// The Authorization header for a request to an upstream host: a cached
    /// Bearer token, or Basic credentials for hosts that challenge with Basic.
    fn authorization(&self, host: &str, scope: &str) -> Option<String> {
        if let Some(t) = self.tokens.get(host, scope) {
            return Some(format!("Bearer {t}"));
        }
        let wants_basic = self.basic_hosts.lock().is_ok_and(|h| h.contains(host));
        wants_basic
            .then(|| self.credentials_for(host))
            .flatten()
            // encode_credentials writes the whole value, "Basic " included.
            .map(|c| http_auth::basic::encode_credentials(&c.username, &c.password))
    }

    /// Credentials already known for a registry's endpoint (no lookup).
    fn credentials_for(&self, host: &str) -> Option<Credentials> {
        self.known_credentials(host).map(|(c, _)| c)
    }

    /// Known credentials and where they came from.
    fn known_credentials(&self, host: &str) -> Option<(Credentials, String)> {
        self.known_credentials_for_key(&HostKey::of_registry(host).into_string())
    }

    /// Known credentials of an upstream host key (one endpoint of a registry).
    fn known_credentials_for_key(&self, key: &str) -> Option<(Credentials, String)> {
        if let Some(c) = self.credentials.lock().ok()?.get(key).cloned() {
            return Some((c, "set by the caller".to_string()));
        }
        let cell = self.looked_up.lock().ok()?.get(key).cloned()?;
        cell.get()?
            .as_ref()
            .map(|f| (f.credentials.clone(), f.source.clone()))
    }

    /// Looks a registry's credentials up on first need (off the runtime,
    /// once per host, concurrent callers waiting for the one lookup).
    async fn load_credentials(&self, host: &str) -> Option<Credentials> {
        self.load_credentials_for_key(HostKey::of_registry(host).into_string())
            .await
    }

    /// The lookup for one upstream host key (`HostKey::of_endpoint(url).folded()`
    /// of the endpoint URL a request goes to).
    async fn load_credentials_for_key(&self, key: String) -> Option<Credentials> {
        if let Some(c) = self.credentials.lock().ok()?.get(&key).cloned() {
            return Some(c);
        }
        let lookup = self.lookup.clone()?;
        let cell = {
            let mut map = self.looked_up.lock().ok()?;
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let found = cell
            .get_or_init(|| async move {
                tokio::task::spawn_blocking(move || lookup(&key))
                    .await
                    .ok()
                    .flatten()
            })
            .await;
        found.as_ref().map(|f| f.credentials.clone())
    }

    /// Answers a 401 challenge of an upstream host. Returns whether a retry can now succeed.
    async fn authenticate(
        &self,
        reach: Reach,
        host: &str,
        scope: &str,
        headers: &HeaderMap,
    ) -> Result<bool, RegistryError> {
        let values = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        match Challenge::parse(values) {
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.tokens.forget(host, scope);
                self.load_credentials(host).await;
                let (token, lifetime) = self
                    .request_token(reach, host, &realm, service.as_deref(), scope)
                    .await?;
                self.tokens.put(host, scope, token, lifetime);
                Ok(true)
            }
            Some(Challenge::Basic) if self.load_credentials(host).await.is_some() => {
                if let Ok(mut hosts) = self.basic_hosts.lock() {
                    hosts.insert(host.to_string());
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn request_token(
        &self,
        reach: Reach,
        host: &str,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<(String, Duration), RegistryError> {
        let token_err = |message: String| RegistryError::Token {
            realm: realm.to_string(),
            message,
        };
        let mut url =
            Url::parse(realm).map_err(|e| token_err(format!("invalid realm URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            q.append_pair("scope", scope);
        }
        let mut req = self.request(reach, Method::GET, &url)?;
        // Credentials go to the realm that the registry named, and nowhere else.
        let credentials = self.known_credentials(host);
        if let Some((c, _)) = &credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = self.send_request(req, realm).await;
        self.count(UpstreamKind::Token, &resp);
        let resp = resp.map_err(|e| match e {
            RegistryError::Protocol { message, .. } => token_err(message),
            spurious => spurious,
        })?;
        let resp = Reply::new(resp, self.low_speed);
        let status = resp.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            // The token server is having trouble: as spurious as the registry's.
            let retry_after = retry_after(resp.headers());
            let body = resp.prefix(MAX_SMALL_BODY).await;
            return Err(status_error(status, retry_after, &body, realm, "token"));
        }
        if credentials.is_some()
            && (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN)
        {
            // An answer, not an outage: no retry, and no fallback past it.
            let body = resp.prefix(MAX_SMALL_BODY).await;
            let body = String::from_utf8_lossy(&body);
            return Err(RegistryError::LoginRefused {
                realm: realm.to_string(),
                host: HostKey::of_registry(host).into_string(),
                status: status.as_u16(),
                message: distribution_message(&body)
                    .unwrap_or_else(|| first_line(&body).to_string()),
            });
        }
        if !status.is_success() {
            let body = resp.prefix(MAX_SMALL_BODY).await;
            let key = HostKey::of_registry(host).into_string();
            let hint = match (&credentials, status) {
                (Some((c, source)), StatusCode::UNAUTHORIZED) => format!(
                    " (the credentials of user {} from {source} were refused: log in again with `dpx login {key}`)",
                    c.username
                ),
                (None, StatusCode::UNAUTHORIZED) => format!(
                    " (anonymous access was refused: check the image name, or log in with `dpx login {key}`)"
                ),
                _ => String::new(),
            };
            let body = String::from_utf8_lossy(&body);
            return Err(token_err(format!("{status}{hint}: {}", first_line(&body))));
        }
        let body = resp
            .bytes(MAX_SMALL_BODY as u64)
            .await
            .map_err(|e| match e {
                RegistryError::Protocol { message, .. } => token_err(message),
                spurious => spurious,
            })?;
        TokenResponse::parse(&body)
            .map_err(|e| token_err(format!("invalid token response: {e}")))?
            .into_token()
            .ok_or_else(|| token_err("the response carries neither token nor access_token".into()))
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    header_str(headers, header::RETRY_AFTER.as_str())
        .and_then(|v| retry::parse_retry_after(v, SystemTime::now()))
}

impl ManifestHead {
    fn from_headers(headers: &HeaderMap) -> ManifestHead {
        ManifestHead {
            digest: header_str(headers, "docker-content-digest").and_then(|d| d.parse().ok()),
            media_type: header_str(headers, header::CONTENT_TYPE.as_str())
                .map(|t| normalize_media_type(t).to_string()),
            size: header_str(headers, header::CONTENT_LENGTH.as_str())
                .and_then(|n| n.trim().parse().ok()),
        }
    }
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Turns a non-success status into a typed error, reading (a bounded part of)
/// the distribution error body for its message.
async fn check_status(resp: Reply, url: &str, what: &str) -> Result<Reply, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers());
    let body = resp.prefix(MAX_SMALL_BODY).await;
    Err(status_error(status, retry_after, &body, url, what))
}

/// The typed error for a non-success reply with this body.
fn status_error(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    url: &str,
    what: &str,
) -> RegistryError {
    let body = String::from_utf8_lossy(body);
    let message = distribution_message(&body).unwrap_or_else(|| first_line(&body).to_string());
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let url = url.to_string();
    match status {
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            what: what.to_string(),
            url,
        },
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Denied {
            url,
            status: status.as_u16(),
            message,
        },
        StatusCode::TOO_MANY_REQUESTS => RegistryError::RateLimited {
            url,
            message,
            retry_after,
        },
        _ => RegistryError::Status {
            url,
            status: status.as_u16(),
            message,
            retry_after,
        },
    }
}

/// `{"errors":[{"code":"X","message":"Y"}]}` -> "X: Y".
fn distribution_message(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let e = v.get("errors")?.get(0)?;
    let code = e.get("code").and_then(|c| c.as_str()).unwrap_or("");
    let msg = e.get("message").and_then(|c| c.as_str()).unwrap_or("");
    Some(
        format!("{code}: {msg}")
            .trim_matches([' ', ':'])
            .to_string(),
    )
}

/// Registries that answer `application/json` or nothing: the manifest says what it is.
fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if let Some(t) = v.get("mediaType").and_then(|t| t.as_str()) {
        return Some(t.to_string());
    }
    if v.get("manifests").is_some() {
        Some(crate::oci::OCI_INDEX.to_string())
    } else if v.get("layers").is_some() {
        Some(crate::oci::OCI_MANIFEST.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let a = Url::parse("https://registry-1.docker.io/v2/x").unwrap();
        let b = Url::parse("https://production.cloudflare.docker.com/x").unwrap();
        let c = Url::parse("https://registry-1.docker.io:443/other").unwrap();
        assert!(!same_origin(&a, &b));
        assert!(same_origin(&a, &c));
    }

    #[test]
    fn basic_registries_get_one_basic_prefix() {
        let client = RegistryClient::new(
            Arc::new(|_: &str| vec![Upstream::new("https://r.example", None)]),
            RetryPolicy::default(),
            LowSpeedLimit::default(),
        )
        .unwrap();
        client.set_credentials(
            "r.example",
            Credentials {
                username: "u".into(),
                password: "pw-real".into(),
            },
        );
        client
            .basic_hosts
            .lock()
            .unwrap()
            .insert("r.example".to_string());
        assert_eq!(
            client
                .authorization("r.example", "repository:x:pull")
                .as_deref(),
            Some("Basic dTpwdy1yZWFs")
        );
    }

    #[test]
    fn distribution_error_messages() {
        assert_eq!(
            distribution_message(
                r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#
            )
            .as_deref(),
            Some("TOOMANYREQUESTS: slow down")
        );
        assert_eq!(distribution_message("<html>"), None);
    }
}
