//! A repository's tag list as the upstream last gave it, and when.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Cache, CacheError, now_secs, read_record, write_atomic};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagListRecord {
    /// In the upstream's order.
    pub tags: Vec<String>,
    /// Unix seconds when the upstream sent it.
    pub fetched_at: u64,
}

impl TagListRecord {
    pub fn new(tags: Vec<String>) -> TagListRecord {
        TagListRecord {
            tags,
            fetched_at: now_secs(),
        }
    }

    /// Whether the upstream sent it within `ttl`.
    pub fn is_fresh(&self, ttl: Duration) -> bool {
        now_secs().saturating_sub(self.fetched_at) < ttl.as_secs()
    }
}

impl Cache {
    pub fn read_tag_list(
        &self,
        registry: &str,
        repo: &str,
    ) -> Result<Option<TagListRecord>, CacheError> {
        read_record(self.tag_list_path(registry, repo)?)
    }

    pub fn write_tag_list(
        &self,
        registry: &str,
        repo: &str,
        record: &TagListRecord,
    ) -> Result<(), CacheError> {
        let path = self.tag_list_path(registry, repo)?;
        let json = serde_json::to_vec(record)
            .map_err(|e| CacheError::write(&path, io::Error::other(e)))?;
        write_atomic(self, &path, &json)
    }

    /// `index/<registry>/<repo>/_tag_list.json`: a repository path component
    /// never starts with `_`, so no repository's directory can take its name.
    fn tag_list_path(&self, registry: &str, repo: &str) -> Result<PathBuf, CacheError> {
        Ok(self.repo_dir(registry, repo)?.join("_tag_list.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_freshness_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert_eq!(cache.read_tag_list("docker.io", "library/a").unwrap(), None);
        let mut rec = TagListRecord::new(vec!["b".into(), "a".into()]);
        cache
            .write_tag_list("docker.io", "library/a", &rec)
            .unwrap();
        assert_eq!(
            cache.read_tag_list("docker.io", "library/a").unwrap(),
            Some(rec.clone())
        );
        assert!(
            dir.path()
                .join("index/docker.io/library/a/_tag_list.json")
                .is_file()
        );
        assert!(rec.is_fresh(Duration::from_secs(60)));
        assert!(!rec.is_fresh(Duration::ZERO));
        rec.fetched_at -= 120;
        assert!(!rec.is_fresh(Duration::from_secs(60)));
        assert!(cache.read_tag_list("docker.io", "a/../../b").is_err());
        assert!(cache.read_tag_list("..", "a").is_err());
    }

    #[test]
    fn an_unreadable_list_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let path = dir.path().join("index/docker.io/library/a/_tag_list.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{trunc").unwrap();
        assert_eq!(cache.read_tag_list("docker.io", "library/a").unwrap(), None);
    }
}
