//! What the client tells its owner about every upstream reply: what was
//! asked, the status, and the quota figures the reply carried. `fetch::quota`
//! turns these into the recorded figures, the pause after a 429, and the
//! counts of manifest GETs and HEADs actually sent.

use std::sync::Arc;
use std::time::Duration;

use super::RateLimit;

/// What a request asked for, as far as the quota is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// A manifest GET: one pull on Docker Hub.
    ManifestGet,
    /// A manifest HEAD: free on Docker Hub.
    ManifestHead,
    /// Anything else (blobs, tag lists, referrers, the token service's registry pings).
    Other,
}

/// One upstream reply (after redirects), before its status is acted on.
#[derive(Debug, Clone)]
pub struct UpstreamReply {
    pub registry: String,
    /// The user name the request was made as; `None` when anonymous.
    pub account: Option<String>,
    pub asked: Asked,
    pub status: u16,
    pub rate_limit: Option<RateLimit>,
    /// The reply's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

/// Called for every upstream reply; must be cheap (no I/O).
pub type ReplyObserver = Arc<dyn Fn(&UpstreamReply) + Send + Sync>;
