//! Which repositories each blob and manifest was pulled through, like
//! distribution's per-repository links: `index/<registry>/<repo>/_links/<hex>`,
//! one empty file per member. (`_links` cannot be a repository path component:
//! those start with a letter or digit.) A lost link only costs an upstream
//! HEAD, so links are not fsynced.
//!
//! Each process keeps the links it has seen in memory, read per repository on
//! first use, so the check on the hot path touches no disk.

use foldhash::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use super::{Cache, CacheError};
use crate::reference::Digest;

/// The links this process knows, by `registry/repo`.
#[derive(Debug, Default)]
pub struct Members {
    repos: Mutex<HashMap<String, HashSet<String>>>,
    /// `registry/repo@hex` of manifests known linked with all they name: a
    /// cached manifest served again costs one look-up, not one per blob.
    /// Emptied whenever a link is forgotten (purges; rare).
    whole: Mutex<HashSet<String>>,
}

impl Cache {
    fn links_dir(&self, registry: &str, repo: &str) -> Result<PathBuf, CacheError> {
        Ok(self.repo_dir(registry, repo)?.join("_links"))
    }

    /// The digests linked to a repository, as the disk says now.
    pub fn linked(&self, registry: &str, repo: &str) -> Result<Vec<Digest>, CacheError> {
        let dir = self.links_dir(registry, repo)?;
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(CacheError::Read { path: dir, source }),
        };
        Ok(entries
            .flatten()
            .filter_map(|e| {
                format!("sha256:{}", e.file_name().to_str()?)
                    .parse::<Digest>()
                    .ok()
            })
            .collect())
    }

    /// Whether `digest` is known to belong to the repository. In memory when
    /// this process has seen the link; one directory read per repository, and
    /// one `stat` for a digest not (yet) linked, which another process may
    /// have linked since.
    pub fn is_linked(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Result<bool, CacheError> {
        let key = format!("{registry}/{repo}");
        let hex = digest.hex();
        if let Some(known) = self.members.known(&key, hex) {
            if known {
                return Ok(true);
            }
            let linked = self.links_dir(registry, repo)?.join(hex).exists();
            if linked {
                self.members.insert(&key, [hex.to_string()]);
            }
            return Ok(linked);
        }
        let all: Vec<String> = self
            .linked(registry, repo)?
            .into_iter()
            .map(|d| d.hex().to_string())
            .collect();
        let found = all.iter().any(|h| h == hex);
        self.members.insert(&key, all);
        Ok(found)
    }

    /// Whether all of `digests` are linked as far as this process knows,
    /// without touching the disk (`false` when it does not know).
    pub fn links_known(&self, registry: &str, repo: &str, digests: &[Digest]) -> bool {
        self.members
            .all_known(&[registry, "/", repo].concat(), digests)
    }

    /// Whether the manifest and everything it names are known linked to the
    /// repository ([`Cache::note_whole_manifest_linked`] said so since the
    /// last link was forgotten).
    pub fn whole_manifest_linked(&self, registry: &str, repo: &str, manifest: &Digest) -> bool {
        let key = whole_key(registry, repo, manifest);
        self.members
            .whole
            .lock()
            .is_ok_and(|whole| whole.contains(&key))
    }

    /// Notes that the manifest and all it names are linked to the repository.
    pub fn note_whole_manifest_linked(&self, registry: &str, repo: &str, manifest: &Digest) {
        if let Ok(mut whole) = self.members.whole.lock() {
            whole.insert(whole_key(registry, repo, manifest));
        }
    }

    /// Links `digests` to the repository; writes only the links this process
    /// has not seen.
    pub fn link(&self, registry: &str, repo: &str, digests: &[Digest]) -> Result<(), CacheError> {
        let key = format!("{registry}/{repo}");
        let new: Vec<&Digest> = digests
            .iter()
            .filter(|d| self.members.known(&key, d.hex()) != Some(true))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let dir = self.links_dir(registry, repo)?;
        fs::create_dir_all(&dir).map_err(|e| CacheError::write(&dir, e))?;
        for d in &new {
            let path = dir.join(d.hex());
            fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(|e| CacheError::write(&path, e))?;
        }
        self.members
            .insert(&key, new.iter().map(|d| d.hex().to_string()));
        Ok(())
    }

    /// Removes a link (for purge); a missing one is fine.
    pub fn unlink(&self, registry: &str, repo: &str, digest: &Digest) -> Result<(), CacheError> {
        let path = self.links_dir(registry, repo)?.join(digest.hex());
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(CacheError::write(&path, e)),
        }
        self.members
            .remove(&format!("{registry}/{repo}"), digest.hex());
        Ok(())
    }
}

/// `registry/repo@hex` (`concat`, not `format!`: once per request).
fn whole_key(registry: &str, repo: &str, manifest: &Digest) -> String {
    [registry, "/", repo, "@", manifest.hex()].concat()
}

impl Members {
    /// Forgets a digest in every repository (its content and links are gone).
    pub(super) fn forget(&self, hex: &str) {
        if let Ok(mut repos) = self.repos.lock() {
            for set in repos.values_mut() {
                set.remove(hex);
            }
        }
        self.forget_whole();
    }

    /// Whichever manifest the forgotten link belonged to is no longer whole.
    fn forget_whole(&self) {
        if let Ok(mut whole) = self.whole.lock() {
            whole.clear();
        }
    }

    /// `None` when the repository's links were never read in this process.
    fn known(&self, key: &str, hex: &str) -> Option<bool> {
        let repos = self.repos.lock().ok()?;
        repos.get(key).map(|set| set.contains(hex))
    }

    /// Whether all of `digests` are known linked: one lock and one look-up
    /// of the repository, however many digests (a manifest names them all).
    fn all_known(&self, key: &str, digests: &[Digest]) -> bool {
        let Ok(repos) = self.repos.lock() else {
            return false;
        };
        repos
            .get(key)
            .is_some_and(|set| digests.iter().all(|d| set.contains(d.hex())))
    }

    fn insert(&self, key: &str, hexes: impl IntoIterator<Item = String>) {
        if let Ok(mut repos) = self.repos.lock() {
            repos.entry(key.to_string()).or_default().extend(hexes);
        }
    }

    fn remove(&self, key: &str, hex: &str) {
        if let Ok(mut repos) = self.repos.lock()
            && let Some(set) = repos.get_mut(key)
        {
            set.remove(hex);
        }
        self.forget_whole();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_per_repository_and_seen_across_processes() {
        let dir = tempfile::tempdir().unwrap();
        let a = Cache::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        assert!(!a.is_linked("docker.io", "library/a", &d).unwrap());
        a.link("docker.io", "library/a", std::slice::from_ref(&d))
            .unwrap();
        assert!(a.is_linked("docker.io", "library/a", &d).unwrap());
        assert!(a.links_known("docker.io", "library/a", std::slice::from_ref(&d)));
        assert!(!a.is_linked("docker.io", "library/b", &d).unwrap());
        assert!(
            dir.path()
                .join("index/docker.io/library/a/_links")
                .join(d.hex())
                .is_file()
        );
        // Another process (its own memory) sees the link on disk, also after
        // it read the repository's links once.
        let b = Cache::open(dir.path()).unwrap();
        assert!(!b.is_linked("docker.io", "library/b", &d).unwrap());
        a.link("docker.io", "library/b", std::slice::from_ref(&d))
            .unwrap();
        assert!(b.is_linked("docker.io", "library/b", &d).unwrap());
        assert_eq!(b.linked("docker.io", "library/a").unwrap(), vec![d.clone()]);
        b.unlink("docker.io", "library/a", &d).unwrap();
        assert!(!b.is_linked("docker.io", "library/a", &d).unwrap());
        assert!(a.link("..", "x", std::slice::from_ref(&d)).is_err());
    }

    #[test]
    fn a_whole_manifest_is_per_repository_and_forgotten_with_any_link() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let (m, layer) = (Digest::of(b"manifest"), Digest::of(b"layer"));
        assert!(!c.whole_manifest_linked("docker.io", "library/a", &m));
        c.note_whole_manifest_linked("docker.io", "library/a", &m);
        assert!(c.whole_manifest_linked("docker.io", "library/a", &m));
        assert!(!c.whole_manifest_linked("docker.io", "library/b", &m));
        assert!(!c.whole_manifest_linked("docker.io", "library/a", &layer));
        // Unlinking anything (a purge) forgets it.
        c.unlink("docker.io", "library/a", &layer).unwrap();
        assert!(!c.whole_manifest_linked("docker.io", "library/a", &m));
        c.note_whole_manifest_linked("docker.io", "library/a", &m);
        c.members.forget(layer.hex());
        assert!(!c.whole_manifest_linked("docker.io", "library/a", &m));
    }
}
