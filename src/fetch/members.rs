//! Membership: cached content is served only under a repository it
//! belongs to, so another repository's private layers stay out of reach.

use crate::cache::Cache;
use crate::reference::{Digest, Target};

use super::manifests::named_descriptors;
use super::{FetchError, Fetcher};

impl Fetcher {
    /// Records membership. Best effort: a missing link costs a HEAD later.
    /// Returns whether the links are written.
    pub(super) async fn link_best_effort(
        &self,
        registry: &str,
        repo: &str,
        digests: Vec<Digest>,
    ) -> bool {
        let (r, p) = (registry.to_string(), repo.to_string());
        match self.on_disk(move |c| c.link(&r, &p, &digests)).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("{registry}/{repo}: membership not recorded: {e}");
                false
            }
        }
    }

    /// Makes sure cached content may be served under `repo`: it was pulled
    /// through it (a link), or a cached manifest of the repository names it,
    /// or the upstream has it there (a HEAD, free on Docker Hub). The last
    /// two record the link. Otherwise `NotMember`: the registry would say
    /// unknown, and another repository's private layers stay out of reach.
    pub async fn require_member(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
        content: Content,
    ) -> Result<(), FetchError> {
        if self
            .cache
            .links_known(registry, repo, std::slice::from_ref(digest))
        {
            return Ok(());
        }
        let (r, p, d) = (registry.to_string(), repo.to_string(), digest.clone());
        let found = self
            .on_disk(move |c| {
                Ok(c.is_linked(&r, &p, &d)? || named_by_cached_manifest(c, &r, &p, &d))
            })
            .await?;
        // Boxed: an upstream request's future is large, and the cached
        // path's future (copied whole when it moves) should not carry it.
        let found = found
            || match content {
                Content::Blob => Box::pin(self.client.head_blob(registry, repo, digest))
                    .await?
                    .is_some(),
                Content::Manifest => Box::pin(self.client.head_manifest(
                    registry,
                    repo,
                    &Target::Digest(digest.clone()),
                ))
                .await?
                .is_some(),
            };
        if !found {
            let what = match content {
                Content::Blob => format!("blob {digest}"),
                Content::Manifest => format!("manifest {digest}"),
            };
            return Err(FetchError::NotMember {
                what,
                repo: format!("{registry}/{repo}"),
            });
        }
        self.link_best_effort(registry, repo, vec![digest.clone()])
            .await;
        Ok(())
    }
}

/// What a digest names, for membership checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Blob,
    Manifest,
}

/// Whether a cached manifest of the repository (a tagged or linked one, or
/// a child of a tagged or linked index) names `digest`. Reads the disk: the
/// slow path, for content linked before links were recorded.
pub(super) fn named_by_cached_manifest(
    cache: &Cache,
    registry: &str,
    repo: &str,
    digest: &Digest,
) -> bool {
    let mut roots = cache.tag_digests(registry, repo).unwrap_or_default();
    roots.extend(cache.linked(registry, repo).unwrap_or_default());
    let names = |d: &Digest| -> Vec<Digest> {
        match cache.get_manifest(d) {
            Ok(Some((bytes, media_type))) => named_descriptors(&media_type, &bytes)
                .into_iter()
                .map(|(d, _)| d)
                .collect(),
            _ => Vec::new(),
        }
    };
    let mut seen = std::collections::HashSet::new();
    for root in roots {
        // A tagged manifest belongs to its repository.
        if root == *digest {
            return true;
        }
        if !seen.insert(root.clone()) {
            continue;
        }
        for child in names(&root) {
            if child == *digest {
                return true;
            }
            // One level down: an index's image manifests.
            if seen.insert(child.clone()) && names(&child).contains(digest) {
                return true;
            }
        }
    }
    false
}
