//! What a fetch can fail with.

use std::sync::Arc;

use crate::cache::CacheError;
use crate::oci::ManifestError;
use crate::registry::RegistryError;

use super::QuotaStop;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(
        "{reference} has no image for platform {wanted} (it has: {available}); pick one with --platform"
    )]
    NoPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("{0}")]
    Shared(Arc<FetchError>),
    #[error(
        "dpx process {pid} has been {doing} and made no progress for {secs}s; gave up waiting for it (stop that process if it is stuck, or raise [cache] lock_timeout)"
    )]
    Stalled {
        pid: String,
        doing: String,
        secs: u64,
    },
    #[error(
        "{what} is cached through another repository, and {repo} neither names it in a cached manifest nor has it upstream"
    )]
    NotMember { what: String, repo: String },
    /// Not asked upstream, to save the pull quota (`fetch::quota`).
    #[error(transparent)]
    Quota(#[from] QuotaStop),
    #[error("internal error: {0}")]
    Internal(String),
}

impl FetchError {
    pub fn registry(&self) -> Option<&RegistryError> {
        match self {
            FetchError::Registry(e) => Some(e),
            FetchError::Shared(e) => e.registry(),
            _ => None,
        }
    }

    /// Whether the content exists, but not in the repository asked for.
    pub fn is_not_member(&self) -> bool {
        match self {
            FetchError::NotMember { .. } => true,
            FetchError::Shared(e) => e.is_not_member(),
            _ => false,
        }
    }

    /// Why the upstream was not asked, when it was to save the pull quota.
    pub fn quota_stop(&self) -> Option<&QuotaStop> {
        match self {
            FetchError::Quota(q) => Some(q),
            FetchError::Shared(e) => e.quota_stop(),
            _ => None,
        }
    }

    /// Whether it failed because the disk holding the cache is full.
    pub fn is_disk_full(&self) -> bool {
        match self {
            FetchError::Cache(CacheError::Write { source, .. }) => {
                source.kind() == std::io::ErrorKind::StorageFull
            }
            FetchError::Shared(e) => e.is_disk_full(),
            _ => false,
        }
    }

    /// Whether we gave up waiting for another dpx process.
    pub fn is_stalled(&self) -> bool {
        match self {
            FetchError::Stalled { .. } => true,
            FetchError::Shared(e) => e.is_stalled(),
            _ => false,
        }
    }
}
