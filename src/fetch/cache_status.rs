//! How a request was answered, in the words of the log line and the
//! `X-Dpx-Cache` header.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache without asking upstream.
    Hit,
    /// Fetched from upstream (or, for a HEAD, described by it).
    Miss,
    /// Upstream confirmed the cached copy.
    Revalidated,
    /// The cached copy, without upstream's word that it is current.
    Stale,
    /// Nothing a cache status describes: a ping, a tag list, an error, a refusal.
    Untracked,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Revalidated => "revalidated",
            CacheStatus::Stale => "stale",
            CacheStatus::Untracked => "-",
        }
    }
}
