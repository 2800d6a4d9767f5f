//! The content-addressed store; the only code that touches cache files.
//!
//! ```text
//! <root>/CACHEDIR.TAG
//! <root>/blobs/sha256/<ab>/<hex>                 immutable content (layers, configs, manifests)
//! <root>/tmp/                                    partial downloads and writes, each locked by
//!                                                its writer (`temp`), same filesystem
//! <root>/locks/<hex>.lock                        one writer per blob across processes
//! <root>/locks/{manifest,tag}-<hex>.lock         one upstream fetch per manifest / tag
//! <root>/manifests/sha256/<hex>.json             a manifest blob's media type
//! <root>/index/<registry>/<repo>/tags/<tag>.json tag -> manifest digest, fetched/checked times
//! <root>/index/<registry>/<repo>/_tag_list.json  the repository's tag list, fetched time
//! <root>/index/<registry>/<repo>/_links/<hex>    empty: blob or manifest <hex> belongs to the repo
//! <root>/VERSION                                 layout version ("1")
//! <root>/generation                              change counter, mapped by every user (`generation`)
//! <root>/.lock                                   cache-wide lock: shared by users, exclusive for
//!                                                whole-cache operations (holder's "pid (command)")
//! <root>/locks/users/<pid>                       a shared holder's "pid (command)"
//! <root>/quota/{ratelimits,stats}.json           quota figures seen, manifest request counts
//! <root>/daemon/                                 the daemon's lock, state and log, when there is
//!                                                no XDG runtime dir (see `daemon_dir`)
//! ```
//! A blob file that exists is complete and verified: it only appears by rename
//! after its digest checked out.

mod blobs;
mod bounded;
mod disk;
mod generation;
mod hot;
mod hot_blobs;
mod inventory;
mod locks;
mod members;
mod purge;
mod quota;
mod referrers;
mod root;
mod sweep;
mod tag_list;
mod tags;
mod temp;
pub mod usage;
mod verify;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use blobs::{BackgroundWriter, BlobWriter};
pub use disk::free_space;
pub use hot::CachedTag;
pub use hot_blobs::StoredBlob;
pub use inventory::{BlobEntry, ImageSummary, Inventory, ManifestEntry, TagEntry, TempEntry};
pub use locks::{FileLock, LockHolder, LockKey};
pub use purge::{
    ImageSelector, NoSuchImage, Plan, Policy, PurgeError, Removal, Summary, plan, stored_count,
};
pub use quota::{HOURS_KEPT, Hold, HourCounts, PullCounts, PullStats, QuotaSeen, held, merge_seen};
pub use referrers::ReferrersRecord;
pub use root::{Access, DEFAULT_SHARED_WAIT, LAYOUT_VERSION};
pub use sweep::SweepReport;
pub use tag_list::TagListRecord;
pub use tags::{TagRecord, now_secs};
pub use verify::{Problem, VerifyProgress, VerifyReport};

use crate::reference::Digest;

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by dpx.\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "cannot use cache directory {path}: {source}; pick another with --cache-dir or DPX_CACHE_DIR, or fix its permissions"
    )]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "cannot use cache directory {path}: {file} is a file, not a directory; pick another \
         directory with --cache-dir or DPX_CACHE_DIR (or [cache] dir), or move the file away"
    )]
    NotADirectory { path: PathBuf, file: PathBuf },
    #[error("cannot write {path}: {source}{hint}")]
    Write {
        path: PathBuf,
        source: io::Error,
        hint: &'static str,
    },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{what}: expected {expected}, received content hashing to {actual}; not stored")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: expected {expected} bytes, received {actual}; not stored")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what} is larger than {limit} bytes{}; not stored",
        if *exact { ", the size its manifest or the upstream gave" } else { " ([cache] max_blob_size)" }
    )]
    TooLarge {
        what: String,
        limit: u64,
        exact: bool,
    },
    #[error(
        "{what}: the upstream sent different bytes at offset {offset} when the download was retried; not stored"
    )]
    Diverged { what: String, offset: u64 },
    #[error(
        "the cache {} has layout version {found:?} ({path}), but this dpx reads version {}; \
         use the dpx that wrote it, or point this one at another directory with --cache-dir or DPX_CACHE_DIR",
        path.parent().unwrap_or(path).display(), root::LAYOUT_VERSION, path = path.display()
    )]
    Layout { path: PathBuf, found: String },
    #[error(
        "{holders} {} the cache {} and did not let go within {secs}s; wait for it to finish or stop it, then try again",
        if *exclusive { "still use" } else { "holds" }, path.display()
    )]
    Busy {
        path: PathBuf,
        holders: String,
        exclusive: bool,
        secs: u64,
    },
    #[error("{digest} is not a manifest dpx can store: {source}; not stored")]
    NotAManifest {
        digest: Digest,
        source: crate::oci::ManifestError,
    },
    #[error("refusing unsafe cache path component {0:?}")]
    UnsafePath(String),
    #[error("internal error in the cache: {0}")]
    Internal(String),
}

impl CacheError {
    pub fn write(path: &Path, source: io::Error) -> CacheError {
        // By kind, not errno: tempfile wraps the OS error with its path.
        let hint = match source.kind() {
            io::ErrorKind::StorageFull => {
                " (ENOSPC: the disk is full: free space or use another --cache-dir)"
            }
            io::ErrorKind::ReadOnlyFilesystem => {
                " (the filesystem is read-only: use another --cache-dir)"
            }
            io::ErrorKind::PermissionDenied => {
                " (permission denied: use another --cache-dir or fix its permissions)"
            }
            _ => "",
        };
        CacheError::Write {
            path: path.to_path_buf(),
            source,
            hint,
        }
    }
}

/// An open cache. Clones share the cache-wide lock, held until the last goes.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    lock: std::sync::Arc<root::RootLock>,
    members: std::sync::Arc<members::Members>,
    usage: std::sync::Arc<usage::Usage>,
    /// Tag records and small manifests read lately, checked on each use.
    hot: std::sync::Arc<hot::HotSet>,
    /// Small blobs read lately (`hot_blobs`).
    hot_blobs: std::sync::Arc<hot_blobs::HotBlobs>,
    /// Bumped after every change of a tag record or removal of a stored
    /// file, by any dpx process: what lets the hot set skip its stats.
    generation: std::sync::Arc<generation::Generation>,
}

/// The cache dir itself, or the nearest of its parents, when it exists as
/// something other than a directory (a file where the cache should be).
fn file_in_the_way(root: &Path) -> Option<PathBuf> {
    root.ancestors()
        .find(|p| p.exists())
        .filter(|p| !p.is_dir())
        .map(Path::to_path_buf)
}

impl Cache {
    /// Opens (creating if needed) a cache at `root` as one of its ordinary
    /// users (shared lock); fails early if it can't be written.
    pub fn open(root: &Path) -> Result<Cache, CacheError> {
        Cache::open_with(root, Access::Shared, DEFAULT_SHARED_WAIT)
    }

    /// Opens the cache for a whole-cache operation: no other process uses it
    /// until this `Cache` (and its clones) are dropped. Waits up to `wait`.
    pub fn open_exclusive(root: &Path, wait: std::time::Duration) -> Result<Cache, CacheError> {
        Cache::open_with(root, Access::Exclusive, wait)
    }

    /// Blocks (up to `wait`) while another process holds the cache the other
    /// way: call it before the runtime's work starts, or off it.
    pub fn open_with(
        root: &Path,
        access: Access,
        wait: std::time::Duration,
    ) -> Result<Cache, CacheError> {
        let open_err = |source| CacheError::Open {
            path: root.to_path_buf(),
            source,
        };
        if let Some(file) = file_in_the_way(root) {
            return Err(CacheError::NotADirectory {
                path: root.to_path_buf(),
                file,
            });
        }
        fs::create_dir_all(root).map_err(open_err)?;
        let mut lock = root::lock_root(root, access, wait)?;
        root::check_version(root)?;
        lock.register(root);
        for dir in [
            "blobs/sha256",
            "tmp",
            "locks/users",
            "manifests/sha256",
            "index",
        ] {
            fs::create_dir_all(root.join(dir)).map_err(open_err)?;
        }
        let tag = root.join("CACHEDIR.TAG");
        if !tag.exists() {
            fs::write(&tag, CACHEDIR_TAG).map_err(open_err)?;
        }
        // Probe writability now rather than after a download.
        tempfile::NamedTempFile::new_in(root.join("tmp")).map_err(open_err)?;
        Ok(Cache {
            root: root.to_path_buf(),
            lock: std::sync::Arc::new(lock),
            members: std::sync::Arc::default(),
            usage: std::sync::Arc::new(usage::Usage::from_env()),
            hot: std::sync::Arc::default(),
            hot_blobs: std::sync::Arc::default(),
            generation: std::sync::Arc::new(generation::Generation::open(root)),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// How this process holds the cache.
    pub fn access(&self) -> Access {
        self.lock.access()
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.hex();
        self.root.join("blobs/sha256").join(&hex[..2]).join(hex)
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A stored blob, opened, with its length; `None` when it is not cached.
    pub fn open_blob(&self, digest: &Digest) -> Result<Option<(fs::File, u64)>, CacheError> {
        let path = self.blob_path(digest);
        let file = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Read { path, source }),
        };
        let len = file
            .metadata()
            .map_err(|source| CacheError::Read { path, source })?
            .len();
        Ok(Some((file, len)))
    }

    /// A blob being downloaded into `temp`: the temp file while it exists,
    /// the stored blob once it has been renamed into place.
    pub fn open_download(&self, temp: &Path, digest: &Digest) -> Result<fs::File, CacheError> {
        if temp.parent() != Some(self.tmp_dir().as_path()) {
            return Err(CacheError::UnsafePath(temp.display().to_string()));
        }
        match fs::File::open(temp) {
            Ok(f) => Ok(f),
            Err(_) => {
                let path = self.blob_path(digest);
                fs::File::open(&path).map_err(|source| CacheError::Read { path, source })
            }
        }
    }

    /// Stores a manifest (verified against `digest`) with its media type.
    /// Only a body that parses as the type it claims is written, nothing before.
    pub fn put_manifest(
        &self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), CacheError> {
        crate::oci::Manifest::check(media_type, bytes).map_err(|source| {
            CacheError::NotAManifest {
                digest: digest.clone(),
                source,
            }
        })?;
        if !self.has_blob(digest) {
            let mut w = BlobWriter::create(self, digest.clone(), Some(bytes.len() as u64))?;
            w.write(bytes)?;
            w.commit()?;
        }
        let meta = self.manifest_meta_path(digest);
        write_atomic(self, &meta, media_type.as_bytes())
    }

    /// A stored manifest's bytes and media type.
    pub fn get_manifest(&self, digest: &Digest) -> Result<Option<(Vec<u8>, String)>, CacheError> {
        let meta = self.manifest_meta_path(digest);
        // A sidecar we can't read (or an empty one, after a crash) is a miss:
        // the manifest is fetched and the sidecar written again.
        let media_type = match fs::read_to_string(&meta) {
            Ok(t) if crate::oci::is_manifest_type(&t) => t,
            // One no dpx stores now (an older one stored anything): a miss too.
            Ok(_) => return Ok(None),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(
                        "cannot read {}: {e}; fetching the manifest again",
                        meta.display()
                    );
                }
                return Ok(None);
            }
        };
        let path = self.blob_path(digest);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some((bytes, media_type))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CacheError::Read { path, source }),
        }
    }

    fn manifest_meta_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("manifests/sha256")
            .join(format!("{}.json", digest.hex()))
    }

    /// `index/<registry>/<repo>`: where a repository's records live (its
    /// tags, links, tag list and referrers), every component checked.
    fn repo_dir(&self, registry: &str, repo: &str) -> Result<PathBuf, CacheError> {
        let mut path = self.root.join("index");
        for part in std::iter::once(registry).chain(repo.split('/')) {
            path.push(safe_component(part)?);
        }
        Ok(path)
    }

    fn tag_path(&self, registry: &str, repo: &str, tag: &str) -> Result<PathBuf, CacheError> {
        let mut path = self.repo_dir(registry, repo)?;
        path.push("tags");
        path.push(format!("{}.json", safe_component(tag)?));
        Ok(path)
    }
}

/// Where the daemon serving the cache at `root` keeps its lock, state file
/// and log when the machine has no XDG runtime directory (`src/daemon`).
pub fn daemon_dir(root: &Path) -> PathBuf {
    root.join("daemon")
}

/// A JSON record: `None` when absent, and when unreadable (it is as good as
/// none: what it recorded is asked again).
fn read_record<T: serde::de::DeserializeOwned>(path: PathBuf) -> Result<Option<T>, CacheError> {
    match fs::read(&path) {
        Ok(text) => Ok(serde_json::from_slice(&text).ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CacheError::Read { path, source }),
    }
}

/// Refuses anything that could climb out of the cache, even though references
/// are validated before they get here.
fn safe_component(part: &str) -> Result<&str, CacheError> {
    if part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\', '\0']) {
        return Err(CacheError::UnsafePath(part.to_string()));
    }
    Ok(part)
}

/// Writes a small file by temp + fsync + rename + directory fsync, like the
/// blobs: readers never see half of it, and after a crash it is either whole
/// or absent.
fn write_atomic(cache: &Cache, path: &Path, data: &[u8]) -> Result<(), CacheError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(cache.root());
    fs::create_dir_all(dir).map_err(|e| CacheError::write(dir, e))?;
    let mut tmp = cache
        .owned_temp(".tmp")
        .map_err(|e| CacheError::write(path, e))?;
    tmp.write_all(data)
        .map_err(|e| CacheError::write(path, e))?;
    // A purge removes a repository's directories once they are empty, maybe
    // between our create_dir_all and the rename: make them again and retry.
    crate::fsutil::commit_remaking_dir(tmp, path, || fs::create_dir_all(dir).map(|()| true))
        .map_err(|e| CacheError::write(path, e))
}

/// Fixtures for the cache's unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Cache, Digest};

    /// An empty cache in a temp dir (kept alive by the returned guard).
    pub fn temp_cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        (dir, cache)
    }

    /// Stores `data` as a blob (written, verified, renamed in); its digest.
    pub fn store_blob(cache: &Cache, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        let mut w = super::BlobWriter::create(cache, d.clone(), None).unwrap();
        w.write(data).unwrap();
        w.commit().unwrap();
        d
    }

    /// A small OCI image manifest (its config and layer are not stored).
    pub const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

    /// A cache holding one small OCI manifest, and that manifest's bytes and digest.
    pub fn cache_with_manifest() -> (tempfile::TempDir, Cache, &'static [u8], Digest) {
        let (dir, cache) = temp_cache();
        let body: &[u8] = MANIFEST;
        let d = Digest::of(body);
        cache
            .put_manifest(&d, crate::oci::OCI_MANIFEST, body)
            .unwrap();
        (dir, cache, body, d)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::cache_with_manifest;
    use super::*;

    #[test]
    fn manifest_roundtrip_and_layout() {
        let (dir, cache, body, d) = cache_with_manifest();
        let (bytes, mt) = cache.get_manifest(&d).unwrap().unwrap();
        assert_eq!(bytes, body);
        assert_eq!(mt, crate::oci::OCI_MANIFEST);
        assert!(
            cache
                .blob_path(&d)
                .starts_with(dir.path().join("blobs/sha256"))
        );
        assert!(dir.path().join("CACHEDIR.TAG").exists());
    }

    #[test]
    fn an_empty_media_type_sidecar_is_a_miss() {
        let (_dir, cache, body, d) = cache_with_manifest();
        fs::write(cache.manifest_meta_path(&d), "").unwrap();
        assert_eq!(cache.get_manifest(&d).unwrap(), None);
        // Storing it again repairs the sidecar.
        cache
            .put_manifest(&d, crate::oci::OCI_MANIFEST, body)
            .unwrap();
        assert!(cache.get_manifest(&d).unwrap().is_some());
    }

    #[test]
    fn only_manifests_of_the_type_they_claim_are_stored_or_read() {
        let (dir, cache) = super::testing::temp_cache();
        let html: &[u8] = b"<html>Sign in</html>";
        let d = Digest::of(html);
        for media_type in ["text/html", crate::oci::OCI_MANIFEST] {
            assert!(matches!(
                cache.put_manifest(&d, media_type, html),
                Err(CacheError::NotAManifest { .. })
            ));
        }
        assert!(!cache.has_blob(&d), "nothing written before the check");
        assert!(!cache.manifest_meta_path(&d).exists());
        // A sidecar of another type (as an older dpx wrote) is a miss.
        let (_dir, cache, _, d) = cache_with_manifest();
        fs::write(cache.manifest_meta_path(&d), "text/html").unwrap();
        assert_eq!(cache.get_manifest(&d).unwrap(), None);
        drop(dir);
    }

    #[test]
    fn tag_paths_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        assert!(cache.tag_path("docker.io", "library/alpine", "3").is_ok());
        assert!(cache.tag_path("docker.io", "a/../../b", "x").is_err());
        assert!(cache.tag_path("..", "a", "x").is_err());
        assert!(cache.tag_path("docker.io", "a", "..").is_err());
    }
}
