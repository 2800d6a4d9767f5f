//! Referrers answers: which cached image index answered "what refers to this
//! digest" for a repository, and when upstream was last asked. The index
//! itself is stored like any manifest (by its digest).

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{Cache, CacheError, TagRecord, safe_component, write_atomic};
use crate::reference::Digest;

impl Cache {
    pub fn read_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
    ) -> Result<Option<TagRecord>, CacheError> {
        let path = self.referrers_path(registry, repo, subject)?;
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Read { path, source }),
        };
        // A record we can't read is as good as none: it will be asked again.
        Ok(serde_json::from_slice(&text).ok())
    }

    pub fn write_referrers(
        &self,
        registry: &str,
        repo: &str,
        subject: &Digest,
        record: &TagRecord,
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
        let mut path = self.root().join("index");
        for part in std::iter::once(registry)
            .chain(repo.split('/'))
            .chain(["referrers"])
        {
            path.push(safe_component(part)?);
        }
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
        let rec = TagRecord::new(Digest::of(b"index"), crate::oci::OCI_INDEX.into());
        cache
            .write_referrers("docker.io", "a/b", &subject, &rec)
            .unwrap();
        assert_eq!(
            cache.read_referrers("docker.io", "a/b", &subject).unwrap(),
            Some(rec)
        );
        assert_eq!(
            cache
                .read_tag("docker.io", "a/b", &format!("sha256-{}", subject.hex()))
                .unwrap(),
            None
        );
    }
}
