//! Reading the pull quota without spending it: Docker Hub counts manifest
//! GETs, not HEADs, and answers a HEAD with the same `ratelimit-*` headers.

use std::time::Duration;

use http::{Method, StatusCode};

use super::{
    MANIFEST_ACCEPT, MAX_SMALL_BODY, RateLimit, RegistryClient, RegistryError, Upstream,
    check_status, retry_after,
};

/// The repository Docker documents for checking the quota.
pub const PREVIEW_REPO: &str = "ratelimitpreview/test";
pub const PREVIEW_TAG: &str = "latest";

/// What one quota check found.
#[derive(Debug, Clone)]
pub struct QuotaProbe {
    /// The figures on the HEAD reply itself; `None` when it carried none
    /// (an unlimited account, or a 429 without them).
    pub rate_limit: Option<RateLimit>,
    /// Whether credentials for the registry were there to send (signed in).
    pub authenticated: bool,
    /// Set when the registry or its token service answered 429.
    pub exhausted: Option<Exhausted>,
}

/// A 429: the quota is used up.
#[derive(Debug, Clone)]
pub struct Exhausted {
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// What the 429's error body said, or which service answered it.
    pub message: String,
}

impl RegistryClient {
    /// HEADs `repo:tag` on `registry` (never a GET) and reports the quota
    /// headers of the reply. A 429 is an answer here, not a failure to retry.
    pub async fn probe_quota(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<QuotaProbe, RegistryError> {
        // A 429 comes back as Ok(exhausted), so only real failures are retried.
        self.retrying(registry, |up| async move {
            self.probe_quota_once(&up, repo, tag).await
        })
        .await
    }

    async fn probe_quota_once(
        &self,
        up: &Upstream,
        repo: &str,
        tag: &str,
    ) -> Result<QuotaProbe, RegistryError> {
        let url = up.api_url(repo, "manifests", tag);
        // Looked up now, not only when challenged: "signed in" must not depend
        // on whether a challenge came before this line.
        let authenticated = self.load_credentials(up.host()).await.is_some();
        let exhausted = |retry_after, message| QuotaProbe {
            rate_limit: None,
            authenticated,
            exhausted: Some(Exhausted {
                retry_after,
                message,
            }),
        };
        let sent = self
            .send(up, repo, Method::HEAD, &url, Some(MANIFEST_ACCEPT), None)
            .await;
        let resp = match sent {
            Ok(resp) => resp,
            // From the token service: no token, no HEAD.
            Err(RegistryError::RateLimited {
                url,
                message,
                retry_after,
            }) => {
                return Ok(exhausted(
                    retry_after,
                    format!("the token service {url} answered 429: {message}"),
                ));
            }
            Err(e) => return Err(e),
        };
        let rate_limit = RateLimit::from_headers(resp.headers());
        if resp.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry_after = retry_after(resp.headers());
            // A HEAD reply has no body; a GET-like one may say why.
            let body = resp.prefix(MAX_SMALL_BODY).await;
            let body = String::from_utf8_lossy(&body);
            let message = super::distribution_message(&body)
                .unwrap_or_else(|| "429 Too Many Requests".to_string());
            return Ok(QuotaProbe {
                rate_limit,
                ..exhausted(retry_after, message)
            });
        }
        check_status(resp, &url, &format!("manifest {repo}:{tag}")).await?;
        Ok(QuotaProbe {
            rate_limit,
            authenticated,
            exhausted: None,
        })
    }
}
