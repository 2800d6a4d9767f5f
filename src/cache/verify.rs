//! `dpx cache verify`: every blob re-hashed against its name (manifests are
//! blobs too), then the records that point at blobs checked: a media-type
//! sidecar needs its manifest blob, a tag record needs its manifest. What is
//! wrong is removed (unless `keep`), blobs first, so a removed manifest's
//! sidecar and tags are reported in the same run.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{Cache, CacheError, TagRecord};
use crate::reference::Digest;

/// Hashing reads in pieces this big.
const READ_BUF: usize = 1 << 20;

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// blob, manifest-sidecar or tag
    pub kind: &'static str,
    /// The digest, or the tag as registry/repository:tag.
    pub name: String,
    pub reason: String,
    /// Bytes the file took (what removing it reclaims).
    pub bytes: u64,
    pub removed: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs: usize,
    pub bytes: u64,
    pub manifests: usize,
    pub tags: usize,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// What the caller hears while blobs are hashed.
pub trait VerifyProgress: Sync {
    /// Before hashing: how many blobs and bytes there are.
    fn start(&self, _blobs: usize, _bytes: u64) {}
    /// Another `bytes` hashed.
    fn hashed(&self, _bytes: u64) {}
}

impl VerifyProgress for () {}

struct BlobFile {
    path: PathBuf,
    /// The digest its name claims; `None` for a file whose name is no digest.
    digest: Option<Digest>,
    name: String,
    size: u64,
}

impl Cache {
    /// Checks the whole cache with `threads` hashing threads; removes what is
    /// wrong unless `keep`. `cancel` stops it early (Ctrl-C) with an error.
    pub fn verify(
        &self,
        keep: bool,
        threads: usize,
        progress: &dyn VerifyProgress,
        cancel: &AtomicBool,
    ) -> Result<VerifyReport, CacheError> {
        // Whatever it removes, on whichever way out.
        let _changed = self.generation.bump_when_done();
        let mut report = VerifyReport::default();
        let files = self.blob_files()?;
        report.blobs = files.len();
        report.bytes = files.iter().map(|f| f.size).sum();
        progress.start(files.len(), report.bytes);

        let problems = Mutex::new(Vec::new());
        let next = AtomicUsize::new(0);
        let first_error = Mutex::new(None);
        std::thread::scope(|scope| {
            for _ in 0..threads.max(1) {
                scope.spawn(|| {
                    let mut buf = vec![0; READ_BUF];
                    loop {
                        if cancel.load(Ordering::Relaxed) {
                            return;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(file) = files.get(i) else { return };
                        match check_blob(file, &mut buf, progress) {
                            Ok(None) => {}
                            Ok(Some(reason)) => {
                                let removed = !keep && remove(&file.path);
                                lock(&problems).push(Problem {
                                    kind: "blob",
                                    name: file.name.clone(),
                                    reason,
                                    bytes: file.size,
                                    removed,
                                });
                            }
                            Err(e) => {
                                lock(&first_error).get_or_insert(e);
                                cancel.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = lock(&first_error).take() {
            return Err(e);
        }
        if cancel.load(Ordering::Relaxed) {
            return Err(CacheError::Internal("verification interrupted".into()));
        }
        let mut problems = problems.into_inner().unwrap_or_else(|e| e.into_inner());
        problems.sort_by(|a, b| a.name.cmp(&b.name));
        report.problems = problems;

        report.manifests = self.check_sidecars(keep, &mut report.problems)?;
        report.tags = self.check_tags(keep, &mut report.problems)?;
        Ok(report)
    }

    /// Every file under blobs/sha256/, with the digest its name claims.
    fn blob_files(&self) -> Result<Vec<BlobFile>, CacheError> {
        let root = self.root.join("blobs/sha256");
        let mut files = Vec::new();
        for prefix in read_dir(&root)? {
            let prefix_name = prefix.file_name().to_string_lossy().into_owned();
            let prefix_path = prefix.path();
            let kind = prefix.file_type().map_err(|source| CacheError::Read {
                path: prefix_path.clone(),
                source,
            })?;
            if !kind.is_dir() {
                files.push(stray(prefix_path, prefix_name)?);
                continue;
            }
            for entry in read_dir(&prefix_path)? {
                let name = entry.file_name().to_string_lossy().into_owned();
                let digest = Digest::from_hex(&name)
                    .ok()
                    .filter(|_| name.starts_with(&prefix_name));
                let is_file = entry.file_type().is_ok_and(|t| t.is_file());
                let mut file = stray(entry.path(), name)?;
                if is_file {
                    file.digest = digest;
                }
                files.push(file);
            }
        }
        Ok(files)
    }

    /// Media-type sidecars whose manifest blob is missing, or that are empty;
    /// and manifests that are not what their sidecar says (a page of HTML, a
    /// type dpx does not serve), which go with their sidecar.
    fn check_sidecars(&self, keep: bool, problems: &mut Vec<Problem>) -> Result<usize, CacheError> {
        let dir = self.root.join("manifests/sha256");
        let mut count = 0;
        for entry in read_dir(&dir)? {
            count += 1;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let size = entry.metadata().map_or(0, |m| m.len());
            let reason = match name.strip_suffix(".json").map(Digest::from_hex) {
                Some(Ok(digest)) => {
                    let media_type = read_capped(&path, MAX_MEDIA_TYPE).unwrap_or_default();
                    let media_type = String::from_utf8_lossy(&media_type);
                    let blob = self.blob_path(&digest);
                    if !blob.is_file() {
                        Some("its manifest blob is missing".to_string())
                    } else if media_type.trim().is_empty() {
                        Some("the media type is empty or unreadable".to_string())
                    } else if let Some(reason) = not_a_manifest(&blob, &media_type) {
                        let size = fs::metadata(&blob).map_or(0, |m| m.len());
                        problems.push(Problem {
                            kind: "manifest",
                            name: digest.to_string(),
                            reason,
                            bytes: size,
                            removed: !keep && remove(&blob),
                        });
                        Some("its manifest is not one dpx can serve".to_string())
                    } else {
                        None
                    }
                }
                _ => Some("the name is not <sha256 hex>.json".to_string()),
            };
            if let Some(reason) = reason {
                problems.push(Problem {
                    kind: "manifest-sidecar",
                    name,
                    reason,
                    bytes: size,
                    removed: !keep && remove(&path),
                });
            }
        }
        Ok(count)
    }

    /// Tag records (index/<registry>/<repo>/tags/<tag>.json) that cannot be
    /// read or whose manifest (blob and media type) is not in the cache.
    fn check_tags(&self, keep: bool, problems: &mut Vec<Problem>) -> Result<usize, CacheError> {
        let index = self.root.join("index");
        let mut records = Vec::new();
        collect_tag_records(&index, &mut records)?;
        for path in &records {
            let name = path
                .strip_prefix(&index)
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let record = fs::read(path)
                .ok()
                .and_then(|b| serde_json::from_slice::<TagRecord>(&b).ok());
            let reason = match record {
                None => Some("the record cannot be read".to_string()),
                Some(r) if self.get_manifest(&r.digest).ok().flatten().is_none() => {
                    Some(format!("its manifest {} is not in the cache", r.digest))
                }
                Some(_) => None,
            };
            if let Some(reason) = reason {
                problems.push(Problem {
                    kind: "tag",
                    name,
                    reason,
                    bytes: fs::metadata(path).map_or(0, |m| m.len()),
                    removed: !keep && remove(path),
                });
            }
        }
        Ok(records.len())
    }
}

/// Longer than any media type a sidecar holds.
const MAX_MEDIA_TYPE: u64 = 1024;

/// Why a stored manifest is not one dpx may serve, if it is not: too large,
/// of a type dpx does not serve, or not parsing as its type.
fn not_a_manifest(blob: &Path, media_type: &str) -> Option<String> {
    let cap = crate::oci::MAX_MANIFEST_BYTES as u64;
    let bytes = match read_capped(blob, cap.saturating_add(1)) {
        Ok(b) => b,
        Err(e) => return Some(format!("cannot read it: {e}")),
    };
    if bytes.len() as u64 > cap {
        return Some(format!("it is larger than {cap} bytes"));
    }
    crate::oci::Manifest::check(media_type.trim(), &bytes)
        .err()
        .map(|e| e.to_string())
}

/// At most `cap` bytes of a file.
fn read_capped(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(cap).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Hashes one blob file: `Some(reason)` when it does not match its name.
fn check_blob(
    file: &BlobFile,
    buf: &mut [u8],
    progress: &dyn VerifyProgress,
) -> Result<Option<String>, CacheError> {
    let Some(expected) = &file.digest else {
        return Ok(Some(
            "not a blob: the name is not the sha256 hex of a file in its <ab>/ folder".into(),
        ));
    };
    let mut f = match fs::File::open(&file.path) {
        Ok(f) => f,
        // Removed meanwhile (a purge): nothing left to be wrong.
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CacheError::Read {
                path: file.path.clone(),
                source,
            });
        }
    };
    let mut hasher = Sha256::new();
    loop {
        let n = match f.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(CacheError::Read {
                    path: file.path.clone(),
                    source,
                });
            }
        };
        hasher.update(&buf[..n]);
        progress.hashed(n as u64);
    }
    let actual = hex::encode(hasher.finalize());
    Ok((actual != expected.hex()).then(|| format!("its content hashes to sha256:{actual}")))
}

/// A file under blobs/ with no digest yet: the caller sets it once the name checks out.
fn stray(path: PathBuf, name: String) -> Result<BlobFile, CacheError> {
    // symlink_metadata: a link is reported, never followed.
    let size = fs::symlink_metadata(&path)
        .map_err(|source| CacheError::Read {
            path: path.clone(),
            source,
        })?
        .len();
    Ok(BlobFile {
        path,
        digest: None,
        name,
        size,
    })
}

fn collect_tag_records(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), CacheError> {
    for entry in read_dir(dir)? {
        let path = entry.path();
        // file_type() does not follow symlinks: a link is never walked into.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            collect_tag_records(&path, out)?;
        } else if kind.is_file()
            && path.extension().is_some_and(|e| e == "json")
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "tags")
        {
            out.push(path);
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, CacheError> {
    let read_err = |source| CacheError::Read {
        path: dir.to_path_buf(),
        source,
    };
    match fs::read_dir(dir) {
        Ok(entries) => entries.collect::<Result<Vec<_>, _>>().map_err(read_err),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(read_err(e)),
    }
}

/// Removes a file (or a stray directory or link); whether it went.
fn remove(path: &Path) -> bool {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!("cannot remove {}: {e}", path.display());
            false
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cache::testing::temp_cache as cache;

    use crate::cache::testing::store_blob as put_blob;

    #[test]
    fn a_clean_cache_is_clean() {
        let (_dir, cache) = cache();
        put_blob(&cache, b"layer");
        let m = crate::cache::testing::MANIFEST;
        let md = Digest::of(m);
        cache
            .put_manifest(&md, crate::oci::OCI_MANIFEST, m)
            .unwrap();
        cache
            .write_tag("docker.io", "library/a", "1", &TagRecord::new(md))
            .unwrap();
        let r = cache
            .verify(false, 2, &(), &AtomicBool::new(false))
            .unwrap();
        assert!(r.is_clean(), "{:?}", r.problems);
        assert_eq!((r.blobs, r.manifests, r.tags), (2, 1, 1));
    }

    #[test]
    fn a_corrupt_manifest_takes_its_sidecar_and_tag_with_it() {
        let (_dir, cache) = cache();
        let good = put_blob(&cache, b"layer");
        let m = crate::cache::testing::MANIFEST;
        let md = Digest::of(m);
        cache
            .put_manifest(&md, crate::oci::OCI_MANIFEST, m)
            .unwrap();
        cache
            .write_tag("docker.io", "library/a", "1", &TagRecord::new(md.clone()))
            .unwrap();
        let mut changed = m.to_vec();
        changed.push(b'\n');
        fs::write(cache.blob_path(&md), changed).unwrap();

        let kept = cache.verify(true, 2, &(), &AtomicBool::new(false)).unwrap();
        // With --keep the corrupt manifest is still there, so only it is wrong.
        assert_eq!(kept.problems.len(), 1, "{:?}", kept.problems);
        assert!(!kept.problems[0].removed);
        assert!(cache.blob_path(&md).exists());

        let r = cache
            .verify(false, 2, &(), &AtomicBool::new(false))
            .unwrap();
        let kinds: Vec<_> = r.problems.iter().map(|p| (p.kind, p.removed)).collect();
        assert_eq!(
            kinds,
            [("blob", true), ("manifest-sidecar", true), ("tag", true)]
        );
        assert!(!cache.blob_path(&md).exists());
        assert!(cache.blob_path(&good).exists());
        assert!(
            cache
                .read_tag("docker.io", "library/a", "1")
                .unwrap()
                .is_none()
        );
        let again = cache
            .verify(false, 2, &(), &AtomicBool::new(false))
            .unwrap();
        assert!(again.is_clean(), "{:?}", again.problems);
    }

    #[test]
    fn misnamed_files_are_problems() {
        let (dir, cache) = cache();
        let d = put_blob(&cache, b"x");
        // Right content, wrong folder; and a name that is no digest.
        let wrong = dir.path().join("blobs/sha256/00").join(d.hex());
        fs::create_dir_all(wrong.parent().unwrap()).unwrap();
        fs::write(&wrong, b"x").unwrap();
        fs::write(dir.path().join("blobs/sha256/00/junk"), b"x").unwrap();
        let r = cache
            .verify(false, 1, &(), &AtomicBool::new(false))
            .unwrap();
        assert_eq!(r.problems.len(), 2, "{:?}", r.problems);
        assert!(!wrong.exists());
        assert!(cache.blob_path(&d).exists());
    }
}
