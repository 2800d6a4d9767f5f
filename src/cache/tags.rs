//! Tag records: which manifest a tag pointed at, and when we last asked.

use std::fs;
use std::io;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, read_record, write_atomic};
use crate::reference::Digest;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub digest: Digest,
    /// Unix seconds when the manifest was fetched from upstream.
    pub fetched_at: u64,
    /// Unix seconds when upstream last confirmed the digest (HEAD or GET).
    pub checked_at: u64,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TagRecord {
    pub fn new(digest: Digest) -> TagRecord {
        let now = now_secs();
        TagRecord {
            digest,
            fetched_at: now,
            checked_at: now,
        }
    }

    /// Whether upstream confirmed the tag within `ttl`.
    pub fn is_fresh(&self, ttl: Duration) -> bool {
        now_secs().saturating_sub(self.checked_at) < ttl.as_secs()
    }
}

impl Cache {
    pub fn read_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<Option<TagRecord>, CacheError> {
        read_record(self.tag_path(registry, repo, tag)?)
    }

    pub fn write_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        record: &TagRecord,
    ) -> Result<(), CacheError> {
        let path = self.tag_path(registry, repo, tag)?;
        let json = serde_json::to_vec_pretty(record)
            .map_err(|e| CacheError::write(&path, io::Error::other(e)))?;
        write_atomic(self, &path, &json)?;
        self.generation.bump();
        Ok(())
    }

    /// The manifest digests the repository's tag records point at.
    pub fn tag_digests(&self, registry: &str, repo: &str) -> Result<Vec<Digest>, CacheError> {
        let dir = self.repo_dir(registry, repo)?.join("tags");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Read { path: dir, source }),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| fs::read(e.path()).ok())
            .filter_map(|b| serde_json::from_slice::<TagRecord>(&b).ok())
            .map(|r| r.digest)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_freshness() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.read_tag("docker.io", "library/a", "1").unwrap(), None);
        let mut rec = TagRecord::new(Digest::of(b"m"));
        cache
            .write_tag("docker.io", "library/a", "1", &rec)
            .unwrap();
        assert_eq!(
            cache.read_tag("docker.io", "library/a", "1").unwrap(),
            Some(rec.clone())
        );
        assert!(rec.is_fresh(Duration::from_secs(60)));
        assert!(!rec.is_fresh(Duration::ZERO));
        rec.checked_at -= 120;
        assert!(!rec.is_fresh(Duration::from_secs(60)));
    }
}
