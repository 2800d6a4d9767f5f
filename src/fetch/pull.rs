//! What a pull needs: a reference resolved to its image manifests, for a
//! platform.

use std::time::Duration;

use oci_spec::image::ImageManifest;

use crate::oci::{Manifest, ManifestError, Platform, PlatformChoice, describe_platform};
use crate::reference::{Digest, Reference};

use super::{FetchError, Fetcher, ResolvedManifest};

/// One image of a pull: its manifest and the platform it was picked for.
#[derive(Debug)]
pub struct ResolvedImage {
    pub platform: Option<String>,
    pub manifest: ImageManifest,
}

/// A reference resolved to its top manifest and the image manifests to fetch.
#[derive(Debug)]
pub struct ResolvedPull {
    pub top: ResolvedManifest,
    pub images: Vec<ResolvedImage>,
}

impl ResolvedPull {
    /// Every config and layer blob, each once, with its size.
    pub fn blobs(&self) -> Vec<(Digest, u64)> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for img in &self.images {
            let descs = std::iter::once(img.manifest.config()).chain(img.manifest.layers());
            for d in descs {
                if let Ok(digest) = d.digest().to_string().parse::<Digest>()
                    && seen.insert(digest.clone())
                {
                    out.push((digest, d.size()));
                }
            }
        }
        out
    }
}

impl Fetcher {
    /// Resolves a reference to the image manifests a pull needs, fetching and
    /// caching the manifests on the way (the index and the chosen children).
    pub async fn resolve_pull(
        &self,
        reference: &Reference,
        choice: &PlatformChoice,
        ttl: Duration,
    ) -> Result<ResolvedPull, FetchError> {
        let (registry, repo) = (&reference.registry, &reference.repository);
        let top = self
            .manifest(registry, repo, &reference.target(), ttl)
            .await?;
        let images =
            match Manifest::parse(&top.media_type, &top.bytes)? {
                Manifest::Image(manifest) => vec![ResolvedImage {
                    platform: None,
                    manifest: *manifest,
                }],
                Manifest::Index(index) => {
                    let chosen: Vec<_> = index
                        .manifests()
                        .iter()
                        .filter(|d| match choice {
                            PlatformChoice::All => true,
                            PlatformChoice::One(p) => p.matches(d),
                        })
                        // Attestation manifests carry platform unknown/unknown; skip them.
                        .filter(|d| {
                            d.platform()
                                .as_ref()
                                .is_none_or(|p| p.os().to_string() != "unknown")
                        })
                        .collect();
                    let wanted = match choice {
                        PlatformChoice::All => "any".to_string(),
                        PlatformChoice::One(p) => p.to_string(),
                    };
                    let chosen = match choice {
                        PlatformChoice::One(_) => chosen.into_iter().take(1).collect::<Vec<_>>(),
                        PlatformChoice::All => chosen,
                    };
                    if chosen.is_empty() {
                        let available: Vec<String> =
                            index.manifests().iter().map(describe_platform).collect();
                        return Err(FetchError::NoPlatform {
                            reference: reference.to_string(),
                            wanted,
                            available: available.join(", "),
                        });
                    }
                    let mut images = Vec::new();
                    for d in chosen {
                        let digest: Digest = d.digest().to_string().parse().map_err(|e| {
                            ManifestError::Malformed {
                                media_type: top.media_type.clone(),
                                message: format!("index entry: {e}"),
                            }
                        })?;
                        let child = self.manifest_by_digest(registry, repo, &digest).await?;
                        match Manifest::parse(&child.media_type, &child.bytes)? {
                            Manifest::Image(manifest) => images.push(ResolvedImage {
                                platform: Some(describe_platform(d)),
                                manifest: *manifest,
                            }),
                            Manifest::Index(_) => {
                                return Err(ManifestError::Malformed {
                                    media_type: child.media_type,
                                    message: "nested indexes are not supported".into(),
                                }
                                .into());
                            }
                        }
                    }
                    images
                }
            };
        Ok(ResolvedPull { top, images })
    }
}

/// The platform a pull picks when not told: the host's.
pub fn default_choice(platform: Option<Platform>, all: bool) -> PlatformChoice {
    if all {
        PlatformChoice::All
    } else {
        PlatformChoice::One(platform.unwrap_or_else(Platform::host))
    }
}
