//! What a fetch can fail with.

use std::sync::Arc;
use std::time::Duration;

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
    /// A prefetch stopped because no client wanted the blob any more
    /// (`fetch::prefetch`); no client ever waits on such a download.
    #[error("the prefetch of blob {digest} was stopped: no client asked for it")]
    Abandoned { digest: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What went wrong, in the terms a client of dpx is answered in: the
/// server maps each kind to a registry error, and needs no registry or
/// cache type to do it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Gave up waiting for another dpx process that made no progress.
    Stalled,
    /// Not asked upstream, to save the pull quota: dpx looks again at
    /// `retry_at` (unix seconds), in `retry_after_secs`.
    QuotaSaved {
        retry_at: Option<u64>,
        retry_after_secs: Option<u64>,
    },
    /// The disk holding the cache is full.
    DiskFull,
    /// The content exists, but not in the repository asked for.
    NotMember,
    /// Neither in the cache nor upstream.
    NotFound,
    /// The upstream refused with a 429.
    RateLimited { retry_after: Option<Duration> },
    /// The upstream wants other credentials (401).
    Unauthorized,
    /// The upstream refused the credentials it has (403, or a non-public host).
    Denied,
    /// The upstream is down, unreachable or failing (5xx, a cut body).
    Unavailable,
    /// The upstream answered, with something dpx cannot use.
    BadUpstreamReply,
    /// Nothing the upstream did: a bad manifest, a cache failure, a bug.
    Internal,
}

impl FetchError {
    /// Which kind of failure this is (`ErrorKind`).
    pub fn kind(&self) -> ErrorKind {
        if self.is_stalled() {
            return ErrorKind::Stalled;
        }
        if let Some(stop) = self.quota_stop() {
            return ErrorKind::QuotaSaved {
                retry_at: stop.retry_at(),
                retry_after_secs: stop.retry_after_secs(),
            };
        }
        if self.is_disk_full() {
            return ErrorKind::DiskFull;
        }
        if self.is_not_member() {
            return ErrorKind::NotMember;
        }
        if self.is_refused_upstream_bytes() {
            return ErrorKind::BadUpstreamReply;
        }
        let Some(reg) = self.registry() else {
            return ErrorKind::Internal;
        };
        match reg {
            RegistryError::NotFound { .. } => ErrorKind::NotFound,
            RegistryError::RateLimited { retry_after, .. } => ErrorKind::RateLimited {
                retry_after: *retry_after,
            },
            RegistryError::Denied { status, .. } | RegistryError::LoginRefused { status, .. } => {
                if *status == 401 {
                    ErrorKind::Unauthorized
                } else {
                    ErrorKind::Denied
                }
            }
            RegistryError::NonPublic { .. } => ErrorKind::Denied,
            e if e.is_upstream_failure() => ErrorKind::Unavailable,
            _ => ErrorKind::BadUpstreamReply,
        }
    }

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

    /// Whether the cache refused what the upstream sent: bytes that do not
    /// hash to their digest, more or fewer than their size, or different on a
    /// resumed download. The upstream's fault, not dpx's.
    pub fn is_refused_upstream_bytes(&self) -> bool {
        match self {
            FetchError::Cache(
                CacheError::DigestMismatch { .. }
                | CacheError::SizeMismatch { .. }
                | CacheError::TooLarge { .. }
                | CacheError::Diverged { .. },
            ) => true,
            FetchError::Shared(e) => e.is_refused_upstream_bytes(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: RegistryError) -> ErrorKind {
        FetchError::Shared(Arc::new(FetchError::Registry(e))).kind()
    }

    #[test]
    fn registry_failures_have_the_kinds_the_server_answers_with() {
        let denied = |status| RegistryError::Denied {
            url: "http://up".into(),
            status,
            message: "no".into(),
        };
        assert_eq!(kind(denied(401)), ErrorKind::Unauthorized);
        assert_eq!(kind(denied(403)), ErrorKind::Denied);
        let missing = RegistryError::NotFound {
            what: "m".into(),
            url: "http://up".into(),
        };
        assert_eq!(kind(missing), ErrorKind::NotFound);
        let down = RegistryError::Unreachable {
            url: "http://up".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(kind(down), ErrorKind::Unavailable);
        let refused = RegistryError::RateLimited {
            url: "http://up".into(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(7)),
        };
        assert_eq!(
            kind(refused),
            ErrorKind::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let garbled = RegistryError::Protocol {
            url: "http://up".into(),
            message: "not json".into(),
        };
        assert_eq!(kind(garbled), ErrorKind::Unavailable);
        let odd = RegistryError::Status {
            url: "http://up".into(),
            status: 418,
            message: "teapot".into(),
            retry_after: None,
        };
        assert_eq!(kind(odd), ErrorKind::BadUpstreamReply);
        assert_eq!(FetchError::Internal("x".into()).kind(), ErrorKind::Internal);
    }

    /// The cache's checks of what an upstream sent (digest, size) fail because
    /// of the upstream's bytes: a bad reply (502), not a dpx bug (500).
    #[test]
    fn upstream_bytes_the_cache_refuses_are_a_bad_upstream_reply() {
        let digest = |hex: &str| -> crate::reference::Digest {
            format!("sha256:{}", hex.repeat(64)).parse().unwrap()
        };
        let refused = [
            CacheError::DigestMismatch {
                what: "blob".into(),
                expected: digest("a"),
                actual: digest("b"),
            },
            CacheError::SizeMismatch {
                what: "blob".into(),
                expected: 10,
                actual: 5,
            },
            CacheError::TooLarge {
                what: "blob".into(),
                limit: 10,
                exact: true,
            },
            CacheError::Diverged {
                what: "blob".into(),
                offset: 3,
            },
        ];
        for e in refused {
            let shared = FetchError::Shared(Arc::new(FetchError::Cache(e)));
            assert_eq!(shared.kind(), ErrorKind::BadUpstreamReply, "{shared}");
        }
        let disk = CacheError::Read {
            path: "/x".into(),
            source: std::io::Error::other("broken disk"),
        };
        assert_eq!(FetchError::Cache(disk).kind(), ErrorKind::Internal);
    }
}
