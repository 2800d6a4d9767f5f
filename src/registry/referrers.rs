//! The referrers API of an upstream (`GET /v2/<name>/referrers/<digest>`).

use http::{Method, StatusCode};

use super::{MAX_MANIFEST_BYTES, RegistryClient, RegistryError, Upstream, check_status};
use crate::oci::OCI_INDEX;
use crate::reference::Digest;

impl RegistryClient {
    /// The image index of manifests whose `subject` is `digest`, unfiltered.
    /// `Ok(None)` when the registry has no referrers API: the spec forbids a
    /// 404 from a registry that has one (distribution 2.8 and Docker Hub
    /// answer 404), so the caller falls back to the referrers tag schema.
    pub async fn get_referrers(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        self.retrying(registry, |up| async move {
            self.get_referrers_once(&up, repo, digest).await
        })
        .await
    }

    async fn get_referrers_once(
        &self,
        up: &Upstream,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<bytes::Bytes>, RegistryError> {
        let url = up.api_url(repo, "referrers", &digest.to_string());
        let resp = self
            .send(up, repo, Method::GET, &url, Some(OCI_INDEX), None)
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = check_status(resp, &url, &format!("referrers of {repo}@{digest}")).await?;
        resp.bytes(MAX_MANIFEST_BYTES as u64).await.map(Some)
    }
}
