//! The upstream registry client: token flow, manifest HEAD/GET, blob streams,
//! retries of spurious failures, and the rate-limit figures of every reply.
//! It knows nothing of the cache; `fetch` joins the two.

pub mod auth;
pub mod body;
pub mod error;
mod login;
pub mod ratelimit;
mod referrers;
#[cfg(test)]
mod replies_proptest;
pub mod retry;
mod tags;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use reqwest::Url;

pub use auth::Credentials;
use auth::{Challenge, TokenCache, TokenResponse};
pub use body::{LowSpeedLimit, Reply};
pub use error::{Failure, RegistryError};
pub use login::LoginCheck;
pub use ratelimit::RateLimit;
pub use retry::{DEFAULT_RETRIES, Retry, RetryPolicy};

use crate::oci::{MANIFEST_ACCEPT, normalize_media_type};
use crate::reference::{Digest, Target};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Error bodies and token replies are small; more than this is not read.
const MAX_SMALL_BODY: usize = 64 * 1024;
pub const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("dpx/", env!("CARGO_PKG_VERSION"));

/// Where the registry API of a host lives (from the config file).
pub type EndpointResolver = Arc<dyn Fn(&str) -> String + Send + Sync>;

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

pub struct RegistryClient {
    http: reqwest::Client,
    endpoints: EndpointResolver,
    tokens: TokenCache,
    /// Credentials given with `set_credentials`, by upstream host key.
    credentials: Mutex<HashMap<String, Credentials>>,
    lookup: Option<CredentialLookup>,
    /// What `lookup` answered, per upstream host key (one lookup per host).
    looked_up:
        Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Option<crate::credentials::Found>>>>>,
    /// Registries that challenged with Basic rather than a token realm.
    basic_hosts: Mutex<HashSet<String>>,
    rate_limits: Mutex<HashMap<String, RateLimit>>,
    retry: RetryPolicy,
    low_speed: LowSpeedLimit,
}

impl RegistryClient {
    pub fn new(
        endpoints: EndpointResolver,
        retry: RetryPolicy,
        low_speed: LowSpeedLimit,
    ) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // Redirects are followed by hand so Authorization never leaves its origin.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| RegistryError::Protocol {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(RegistryClient {
            http,
            endpoints,
            tokens: TokenCache::default(),
            credentials: Mutex::default(),
            lookup: None,
            looked_up: Mutex::default(),
            basic_hosts: Mutex::default(),
            rate_limits: Mutex::default(),
            retry,
            low_speed,
        })
    }

    /// The retry state for one operation the caller drives itself (a blob
    /// download with its resumes: `get_blob` tries once).
    pub fn retry(&self) -> Retry {
        self.retry.start()
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Runs `op` until it succeeds, fails for good, or the retry budget is spent.
    async fn retrying<T, F>(&self, mut op: impl FnMut() -> F) -> Result<T, RegistryError>
    where
        F: Future<Output = Result<T, RegistryError>>,
    {
        let mut retry = self.retry.start();
        loop {
            match op().await {
                Err(e) if retry.wait_after(&e).await => {}
                result => return result,
            }
        }
    }

    /// Credentials for one upstream host (`host[:port]` of its endpoint URL;
    /// Docker Hub as `docker.io`), ahead of any lookup.
    pub fn set_credentials(&self, host: &str, creds: Credentials) {
        if let Ok(mut c) = self.credentials.lock() {
            c.insert(crate::credentials::host_key(host), creds);
        }
    }

    /// Where credentials come from when a registry asks for them; without
    /// one, only `set_credentials` (or nothing: anonymous) is used.
    pub fn with_credential_lookup(mut self, lookup: CredentialLookup) -> Self {
        self.lookup = Some(lookup);
        self
    }

    /// The key credentials are held under for a registry: its endpoint's host.
    fn credential_key(&self, registry: &str) -> String {
        crate::credentials::endpoint_key(&self.endpoint(registry))
    }

    /// The last quota figures a registry reported, if any.
    pub fn rate_limit(&self, registry: &str) -> Option<RateLimit> {
        self.rate_limits.lock().ok()?.get(registry).cloned()
    }

    pub fn endpoint(&self, registry: &str) -> String {
        (self.endpoints)(registry)
    }

    /// HEAD a manifest: free on Docker Hub. `Ok(None)` when it does not exist.
    pub async fn head_manifest(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        self.retrying(|| self.head_manifest_once(registry, repo, target))
            .await
    }

    async fn head_manifest_once(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<Option<ManifestHead>, RegistryError> {
        let url = self.url(registry, repo, "manifests", &target.to_string());
        let resp = self
            .send(
                registry,
                repo,
                Method::HEAD,
                &url,
                Some(MANIFEST_ACCEPT),
                None,
            )
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
        self.retrying(|| self.head_blob_once(registry, repo, digest))
            .await
    }

    async fn head_blob_once(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<BlobHead>, RegistryError> {
        let url = self.url(registry, repo, "blobs", &digest.to_string());
        let resp = self
            .send(registry, repo, Method::HEAD, &url, None, None)
            .await?;
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
        self.retrying(|| self.get_manifest_once(registry, repo, target))
            .await
    }

    async fn get_manifest_once(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<FetchedManifest, RegistryError> {
        let url = self.url(registry, repo, "manifests", &target.to_string());
        let what = format!("manifest {repo}:{target}");
        let resp = self
            .send(
                registry,
                repo,
                Method::GET,
                &url,
                Some(MANIFEST_ACCEPT),
                None,
            )
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
        Ok(FetchedManifest {
            digest: actual,
            media_type,
            bytes,
        })
    }

    /// Start a blob download at `offset` (a `Range` request when non-zero).
    /// One try: the caller retries the whole download, resumes included,
    /// under one `retry()` budget.
    pub async fn get_blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<BlobResponse, RegistryError> {
        let url = self.url(registry, repo, "blobs", &digest.to_string());
        let range = (offset > 0).then(|| format!("bytes={offset}-"));
        let resp = self
            .send(registry, repo, Method::GET, &url, None, range.as_deref())
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

    fn url(&self, registry: &str, repo: &str, kind: &str, reference: &str) -> String {
        format!("{}/v2/{repo}/{kind}/{reference}", self.endpoint(registry))
    }

    /// One try of a request: token handling (a 401 is answered once with a
    /// fresh token) and redirects, no retries (see `retrying`). Returns the
    /// final reply whatever its status (callers map statuses with `check_status`).
    async fn send(
        &self,
        registry: &str,
        repo: &str,
        method: Method,
        url: &str,
        accept: Option<&str>,
        range: Option<&str>,
    ) -> Result<Reply, RegistryError> {
        let scope = format!("repository:{repo}:pull");
        let mut reauthorized = false;
        loop {
            let auth = self.authorization(registry, &scope);
            let resp = self
                .send_following_redirects(method.clone(), url, auth.as_deref(), accept, range)
                .await?;
            if let Some(rl) = RateLimit::from_headers(resp.headers())
                && let Ok(mut map) = self.rate_limits.lock()
            {
                map.insert(registry.to_string(), rl);
            }
            if resp.status() == StatusCode::UNAUTHORIZED
                && !reauthorized
                && self.authenticate(registry, &scope, resp.headers()).await?
            {
                reauthorized = true;
                continue;
            }
            return Ok(Reply::new(resp, self.low_speed));
        }
    }

    async fn send_following_redirects(
        &self,
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
            let mut req = self.http.request(method.clone(), current.clone());
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

    /// The Authorization header for a request: a cached Bearer token, or Basic
    /// credentials for registries that challenge with Basic.
    fn authorization(&self, registry: &str, scope: &str) -> Option<String> {
        if let Some(t) = self.tokens.get(registry, scope) {
            return Some(format!("Bearer {t}"));
        }
        let wants_basic = self.basic_hosts.lock().is_ok_and(|h| h.contains(registry));
        wants_basic
            .then(|| self.credentials_for(registry))
            .flatten()
            // encode_credentials writes the whole value, "Basic " included.
            .map(|c| http_auth::basic::encode_credentials(&c.username, &c.password))
    }

    /// Credentials already known for a registry's endpoint (no lookup).
    fn credentials_for(&self, registry: &str) -> Option<Credentials> {
        self.known_credentials(registry).map(|(c, _)| c)
    }

    /// Known credentials and where they came from.
    fn known_credentials(&self, registry: &str) -> Option<(Credentials, String)> {
        self.known_credentials_for_key(&self.credential_key(registry))
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
    async fn load_credentials(&self, registry: &str) -> Option<Credentials> {
        self.load_credentials_for_key(self.credential_key(registry))
            .await
    }

    /// The lookup for one upstream host key (`crate::credentials::endpoint_key`
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

    /// Answers a 401 challenge. Returns whether a retry can now succeed.
    async fn authenticate(
        &self,
        registry: &str,
        scope: &str,
        headers: &HeaderMap,
    ) -> Result<bool, RegistryError> {
        let values = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        match Challenge::parse(values) {
            Some(Challenge::Bearer { realm, service, .. }) => {
                self.tokens.forget(registry, scope);
                self.load_credentials(registry).await;
                let (token, lifetime) = self
                    .request_token(registry, &realm, service.as_deref(), scope)
                    .await?;
                self.tokens.put(registry, scope, token, lifetime);
                Ok(true)
            }
            Some(Challenge::Basic) if self.load_credentials(registry).await.is_some() => {
                if let Ok(mut hosts) = self.basic_hosts.lock() {
                    hosts.insert(registry.to_string());
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn request_token(
        &self,
        registry: &str,
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
        let mut req = self.http.get(url);
        // Credentials go to the realm that the registry named, and nowhere else.
        let credentials = self.known_credentials(registry);
        if let Some((c, _)) = &credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = self.send_request(req, realm).await.map_err(|e| match e {
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
        if !status.is_success() {
            let body = resp.prefix(MAX_SMALL_BODY).await;
            let key = self.credential_key(registry);
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
            Arc::new(|_: &str| "https://r.example".to_string()),
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
        client.basic_hosts.lock().unwrap().insert("r".to_string());
        assert_eq!(
            client.authorization("r", "repository:x:pull").as_deref(),
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
