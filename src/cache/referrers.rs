//! Referrers answers: which cached image index answered "what refers to this
//! digest" for a repository, and when upstream was last asked. The index
//! itself is stored like any manifest (by its digest).

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, now_secs, read_record, safe_component, write_atomic};
use crate::reference::Digest;

/// Which cached image index answered, and when upstream was last asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferrersRecord {
    /// The index, stored like any manifest.
    pub digest: Digest,
    /// Unix seconds.
    pub checked_at: u64,
}

impl ReferrersRecord {
    pub fn new(digest: Digest) -> ReferrersRecord {
        ReferrersRecord {
            digest,
            checked_at: now_secs(),
        }
    }

    /// Whether upstream was asked within `ttl` (the tag TTL).
    pub fn is_fresh(&self, ttl: std::time::Duration) -> bool {
        now_secs().saturating_sub(self.checked_at) < ttl.as_secs()
    }
}

impl Cache {
    pub fn read_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
    ) -> Result<Option<ReferrersRecord>, CacheError> {
        read_record(self.referrers_path(registry, repo, subject)?)
    }

    pub fn write_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
        record: &ReferrersRecord,
    ) -> Result<(), CacheError> {
        let path = self.referrers_path(registry, repo, subject)?;
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| CacheError::write(&path, io::Error::other(e)))?;
        write_atomic(self, &path, &json)
    }

    /// `index/<registry>/<repo>/referrers/<hex>.json`, next to the tags.
    fn referrers_path(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
    ) -> Result<PathBuf, CacheError> {
        let mut path = self.repo_dir(registry, repo)?;
        path.push("referrers");
        path.push(format!("{}.json", safe_component(subject.hex())?));
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_apart_from_tags() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let subject = Digest::of(b"subject");
        assert_eq!(
            cache.read_referrers("docker.io", "a/b", &subject).unwrap(),
            None
        );
        let mut rec = ReferrersRecord::new(Digest::of(b"index"));
        assert!(rec.is_fresh(std::time::Duration::from_secs(60)));
        assert!(!rec.is_fresh(std::time::Duration::ZERO));
        rec.checked_at -= 120;
        cache
            .write_referrers("docker.io", "a/b", &subject, &rec)
            .unwrap();
        let read = cache.read_referrers("docker.io", "a/b", &subject).unwrap();
        assert_eq!(read, Some(rec));
        assert!(read.is_some_and(|r| !r.is_fresh(std::time::Duration::from_secs(60))));
        assert_eq!(
            cache
                .read_tag("docker.io", "a/b", &format!("sha256-{}", subject.hex()))
                .unwrap(),
            None
        );
    }
}
