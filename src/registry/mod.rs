//! The upstream registry client: token flow, manifest HEAD/GET, blob streams,
//! retries with backoff, and the rate-limit figures of every reply.
//! It knows nothing of the cache; `fetch` joins the two.

pub mod auth;
pub mod error;
pub mod ratelimit;
mod referrers;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use reqwest::Url;

pub use auth::Credentials;
use auth::{Challenge, TokenCache, TokenResponse};
pub use error::RegistryError;
pub use ratelimit::RateLimit;

use crate::oci::{MANIFEST_ACCEPT, normalize_media_type};
use crate::reference::{Digest, Target};

/// Manifests larger than this are refused (the distribution spec suggests 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("dpx/", env!("CARGO_PKG_VERSION"));

/// How hard to try before giving up on a transient failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with jitter, or the server's Retry-After when shorter than the cap.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(d) = retry_after {
            return d.min(self.max_delay);
        }
        let exp = self.base_delay.saturating_mul(1 << attempt.min(16));
        let jitter = exp.mul_f64(fastrand::f64() * 0.5);
        (exp + jitter).min(self.max_delay)
    }
}

/// Where the registry API of a host lives (from the config file).
pub type EndpointResolver = Arc<dyn Fn(&str) -> String + Send + Sync>;

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
    pub media_type: Option<String>,
}

/// An open blob download.
pub struct BlobResponse {
    pub url: String,
    pub response: reqwest::Response,
    /// True when the server honoured our `Range` (206); false means the body starts at 0.
    pub resumed: bool,
}

pub struct RegistryClient {
    http: reqwest::Client,
    endpoints: EndpointResolver,
    tokens: TokenCache,
    credentials: Mutex<HashMap<String, Credentials>>,
    /// Registries that challenged with Basic rather than a token realm.
    basic_hosts: Mutex<HashSet<String>>,
    rate_limits: Mutex<HashMap<String, RateLimit>>,
    retry: RetryPolicy,
}

impl RegistryClient {
    pub fn new(endpoints: EndpointResolver, retry: RetryPolicy) -> Result<Self, RegistryError> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            // Redirects are followed by hand so Authorization never leaves its origin.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
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
            basic_hosts: Mutex::default(),
            rate_limits: Mutex::default(),
            retry,
        })
    }

    pub fn set_credentials(&self, registry: &str, creds: Credentials) {
        if let Ok(mut c) = self.credentials.lock() {
            c.insert(registry.to_string(), creds);
        }
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
        let headers = resp.headers();
        Ok(Some(ManifestHead {
            digest: header_str(headers, "docker-content-digest").and_then(|d| d.parse().ok()),
            media_type: header_str(headers, header::CONTENT_TYPE.as_str())
                .map(|t| normalize_media_type(t).to_string()),
        }))
    }

    /// GET a manifest (one pull on Docker Hub), keeping its exact bytes and verifying its digest.
    pub async fn get_manifest(
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
        let media_type = header_str(resp.headers(), header::CONTENT_TYPE.as_str())
            .map(|t| normalize_media_type(t).to_string())
            .unwrap_or_default();
        let claimed: Option<Digest> =
            header_str(resp.headers(), "docker-content-digest").and_then(|d| d.parse().ok());
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(RegistryError::Protocol {
                url,
                message: format!("{what} is larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let bytes = read_limited(resp, &url, MAX_MANIFEST_BYTES).await?;
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

    /// One logical request: token handling, redirects, retries of transient failures.
    /// Returns the final response whatever its status (callers map statuses).
    async fn send(
        &self,
        registry: &str,
        repo: &str,
        method: Method,
        url: &str,
        accept: Option<&str>,
        range: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let scope = format!("repository:{repo}:pull");
        let mut attempt = 0;
        let mut reauthorized = false;
        loop {
            let auth = self.authorization(registry, &scope);
            let result = self
                .send_following_redirects(method.clone(), url, auth.as_deref(), accept, range)
                .await;
            let failure = match result {
                Ok(resp) => {
                    if let Some(rl) = RateLimit::from_headers(resp.headers())
                        && let Ok(mut map) = self.rate_limits.lock()
                    {
                        map.insert(registry.to_string(), rl);
                    }
                    let status = resp.status();
                    if status == StatusCode::UNAUTHORIZED && !reauthorized {
                        reauthorized = true;
                        if self.authenticate(registry, &scope, resp.headers()).await? {
                            continue;
                        }
                        return Ok(resp);
                    }
                    if !(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) {
                        return Ok(resp);
                    }
                    if attempt >= self.retry.retries {
                        return Ok(resp);
                    }
                    let retry_after = retry_after(resp.headers());
                    (format!("{url} answered {status}"), retry_after)
                }
                Err(e) if attempt < self.retry.retries => (e.to_string(), None),
                Err(e) => return Err(e),
            };
            let delay = self.retry.delay(attempt, failure.1);
            attempt += 1;
            tracing::warn!(
                "{}; retrying in {:.1}s ({} tries left)",
                failure.0,
                delay.as_secs_f64(),
                self.retry.retries + 1 - attempt
            );
            tokio::time::sleep(delay).await;
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
            let resp = req
                .send()
                .await
                .map_err(|e| RegistryError::from_reqwest(current.as_str(), &e))?;
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
            .map(|c| {
                format!(
                    "Basic {}",
                    http_auth::basic::encode_credentials(&c.username, &c.password)
                )
            })
    }

    fn credentials_for(&self, registry: &str) -> Option<Credentials> {
        self.credentials.lock().ok()?.get(registry).cloned()
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
                let (token, lifetime) = self
                    .request_token(registry, &realm, service.as_deref(), scope)
                    .await?;
                self.tokens.put(registry, scope, token, lifetime);
                Ok(true)
            }
            Some(Challenge::Basic) if self.credentials_for(registry).is_some() => {
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
        if let Some(c) = self.credentials_for(registry) {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().await.map_err(|e| {
            let e = RegistryError::from_reqwest(realm, &e);
            match e {
                RegistryError::Unreachable { .. } => e,
                other => token_err(other.to_string()),
            }
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let hint = if status == StatusCode::UNAUTHORIZED {
                " (check the stored credentials)"
            } else {
                ""
            };
            return Err(token_err(format!("{status}{hint}: {}", first_line(&body))));
        }
        let body: TokenResponse = resp
            .json()
            .await
            .map_err(|e| token_err(format!("invalid token response: {e}")))?;
        body.into_token()
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
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn first_line(s: &str) -> &str {
    let line = s.lines().next().unwrap_or("").trim();
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// Turns a non-success status into a typed error, reading the distribution
/// error body for its message.
async fn check_status(
    resp: reqwest::Response,
    url: &str,
    what: &str,
) -> Result<reqwest::Response, RegistryError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = retry_after(resp.headers());
    let body = resp.text().await.unwrap_or_default();
    let message = distribution_message(&body).unwrap_or_else(|| first_line(&body).to_string());
    let message = if message.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        message
    };
    let url = url.to_string();
    Err(match status {
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
        },
    })
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

async fn read_limited(
    mut resp: reqwest::Response,
    url: &str,
    limit: usize,
) -> Result<Bytes, RegistryError> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| RegistryError::from_reqwest(url, &e))?
    {
        if buf.len() + chunk.len() > limit {
            return Err(RegistryError::Protocol {
                url: url.to_string(),
                message: format!("body larger than {limit} bytes"),
            });
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
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
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.delay(0, None) >= Duration::from_millis(200));
        assert!(p.delay(0, None) <= Duration::from_millis(300));
        assert_eq!(p.delay(20, None), p.max_delay);
        assert_eq!(
            p.delay(0, Some(Duration::from_secs(1))),
            Duration::from_secs(1)
        );
        assert_eq!(p.delay(0, Some(Duration::from_secs(600))), p.max_delay);
    }

    #[test]
    fn origins() {
        let a = Url::parse("https://registry-1.docker.io/v2/x").unwrap();
        let b = Url::parse("https://production.cloudflare.docker.com/x").unwrap();
        let c = Url::parse("https://registry-1.docker.io:443/other").unwrap();
        assert!(!same_origin(&a, &b));
        assert!(same_origin(&a, &c));
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
