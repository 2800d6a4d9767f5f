//! "What refers to this digest" (signatures, SBOMs, attestations) through the
//! cache, whatever the upstream supports:
//!
//! - an upstream with the referrers API answers with an image index, kept
//!   like a tag: fresh within the tag TTL (no upstream request), asked again
//!   after it, served stale when the upstream is down;
//! - an upstream without it (404: distribution 2.8, Docker Hub today) is read
//!   through the spec's referrers tag schema, the `sha256-<hex>` tag of the
//!   repository, fetched through the normal tag path (so it is cached too);
//! - no such tag: an empty image index, as the spec asks.

use bytes::Bytes;

use super::{FetchError, Fetcher, Freshness};
use crate::cache::ReferrersRecord;
use crate::oci::OCI_INDEX;
use crate::reference::Digest;
use crate::registry::RegistryError;

/// The spec's answer when nothing refers to a digest.
pub const EMPTY_INDEX: &str =
    r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

/// An image index of referrers, unfiltered.
#[derive(Debug, Clone)]
pub struct Referrers {
    pub bytes: Bytes,
    pub freshness: Freshness,
}

impl Fetcher {
    pub async fn referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
        ttl: std::time::Duration,
    ) -> Result<Referrers, FetchError> {
        let cached = self.cached_referrers(registry, repo, subject).await?;
        if let Some((record, bytes)) = &cached
            && record.is_fresh(ttl)
        {
            return Ok(Referrers {
                bytes: bytes.clone(),
                freshness: Freshness::Cached,
            });
        }
        let answer = match self.client.get_referrers(registry, repo, subject).await {
            Ok(Some(bytes)) => {
                if !is_index(&bytes) {
                    return Err(RegistryError::Protocol {
                        url: format!("{registry}/{repo} referrers of {subject}"),
                        message: "the upstream answered with something other than an image index"
                            .into(),
                    }
                    .into());
                }
                Ok(bytes)
            }
            Ok(None) => self.referrers_tag(registry, repo, subject, ttl).await,
            Err(e) => Err(FetchError::Registry(e)),
        };
        match answer {
            Ok(bytes) => {
                self.store_referrers(registry, repo, subject, bytes.clone())
                    .await?;
                Ok(Referrers {
                    bytes,
                    freshness: Freshness::Fetched,
                })
            }
            Err(e) => match cached {
                Some((_, bytes))
                    if e.registry().is_some_and(RegistryError::is_upstream_failure) =>
                {
                    tracing::warn!(
                        "{registry}/{repo}: referrers of {subject}: upstream failed ({e}); serving the cached answer"
                    );
                    Ok(Referrers {
                        bytes,
                        freshness: Freshness::Stale,
                    })
                }
                _ => Err(e),
            },
        }
    }

    /// The referrers tag schema: the index tagged `sha256-<hex>`, or an empty
    /// index when there is no such tag.
    async fn referrers_tag(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
        ttl: std::time::Duration,
    ) -> Result<Bytes, FetchError> {
        let tag = format!("sha256-{}", subject.hex());
        match self.manifest_by_tag(registry, repo, &tag, ttl).await {
            Ok(m) if is_index(&m.bytes) => Ok(m.bytes),
            Ok(m) => {
                tracing::warn!(
                    "{registry}/{repo}:{tag} is a {} rather than the image index the referrers tag schema asks for; answering no referrers",
                    m.media_type
                );
                Ok(Bytes::from_static(EMPTY_INDEX.as_bytes()))
            }
            Err(e) if matches!(e.registry(), Some(RegistryError::NotFound { .. })) => {
                Ok(Bytes::from_static(EMPTY_INDEX.as_bytes()))
            }
            Err(e) => Err(e),
        }
    }

    /// The cached answer and its record (one blocking task: two small reads).
    async fn cached_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
    ) -> Result<Option<(ReferrersRecord, Bytes)>, FetchError> {
        let (registry, repo, subject) = (registry.to_string(), repo.to_string(), subject.clone());
        self.on_disk(move |cache| {
            let Some(record) = cache.read_referrers(&registry, &repo, &subject)? else {
                return Ok(None);
            };
            Ok(cache
                .get_manifest(&record.digest)?
                .map(|(bytes, _)| (record, Bytes::from(bytes))))
        })
        .await
    }

    /// Keeps an answer: the index as a manifest unless it is cached already
    /// (the referrers tag stored it, with its own media type), then the record
    /// naming it (one blocking task).
    async fn store_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
        bytes: Bytes,
    ) -> Result<(), FetchError> {
        let (registry, repo, subject) = (registry.to_string(), repo.to_string(), subject.clone());
        self.on_disk(move |cache| {
            let digest = Digest::of(&bytes);
            if !cache.has_blob(&digest) {
                cache.put_manifest(&digest, OCI_INDEX, &bytes)?;
            }
            cache.write_referrers(&registry, &repo, &subject, &ReferrersRecord::new(digest))
        })
        .await
    }
}

/// A JSON object with a `manifests` array: all a referrers answer needs.
fn is_index(bytes: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(bytes)
        .is_ok_and(|v| v.get("manifests").is_some_and(serde_json::Value::is_array))
}

/// Keeps the referrers of one `artifactType` (the API's filter).
pub fn filter_by_artifact_type(bytes: &[u8], artifact_type: &str) -> Option<Vec<u8>> {
    let mut index: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    index
        .get_mut("manifests")?
        .as_array_mut()?
        .retain(|m| m.get("artifactType").and_then(|t| t.as_str()) == Some(artifact_type));
    serde_json::to_vec(&index).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtering_keeps_one_artifact_type() {
        let index = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"digest": "sha256:a", "artifactType": "application/x.sig"},
            {"digest": "sha256:b", "artifactType": "application/x.sbom"},
            {"digest": "sha256:c"},
        ]})
        .to_string();
        let kept: serde_json::Value = serde_json::from_slice(
            &filter_by_artifact_type(index.as_bytes(), "application/x.sig").unwrap(),
        )
        .unwrap();
        assert_eq!(kept["manifests"].as_array().unwrap().len(), 1);
        assert_eq!(kept["manifests"][0]["digest"], "sha256:a");
        assert_eq!(kept["schemaVersion"], 2);
        assert!(filter_by_artifact_type(b"not json", "x").is_none());
        assert!(is_index(EMPTY_INDEX.as_bytes()));
        assert!(!is_index(br#"{"layers":[]}"#));
    }
}
