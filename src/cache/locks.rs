//! Turns across processes: one dpx process at a time downloads a blob or asks
//! upstream for a manifest or a tag, whatever the number of processes sharing
//! the cache. Advisory file locks under `locks/`, taken without blocking (the
//! waiting is the caller's, so an interrupt can cancel it). The holder writes
//! its pid, and the temp file it fills, so a waiter can say whom it waits for
//! and whether that process is getting anywhere.

use std::fs::{self, File};
use std::io::Write;
use std::path::PathBuf;

use super::{Cache, CacheError, safe_component};
use crate::fsutil::{Access, Held, LockFile};
use crate::reference::Digest;

/// What a lock is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LockKey {
    /// Downloading a blob.
    Blob(Digest),
    /// Fetching a manifest by digest.
    Manifest(Digest),
    /// Checking or fetching a tag, `registry/repo:tag`.
    Tag(String),
}

impl LockKey {
    fn file_name(&self) -> String {
        match self {
            LockKey::Blob(d) => format!("{}.lock", d.hex()),
            LockKey::Manifest(d) => format!("manifest-{}.lock", d.hex()),
            // Hashed: a tag name is not a safe file name on every filesystem.
            LockKey::Tag(t) => format!("tag-{}.lock", Digest::of(t.as_bytes()).hex()),
        }
    }
}

/// A held lock; dropping it releases the turn.
#[derive(Debug)]
pub struct FileLock {
    held: Held,
    path: PathBuf,
}

impl FileLock {
    /// Records the temp file this process fills, so waiters can see progress.
    pub fn note_temp_file(&mut self, temp: &std::path::Path) {
        if let Some(name) = temp.file_name().and_then(|n| n.to_str()) {
            // Best effort: it only feeds a waiter's message and patience.
            let _ = writeln!(self.held.file(), "{name}");
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Whether `file` is (still) the file at `path`.
pub(super) fn is_at(file: &File, path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

/// Who holds a lock, as far as its file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: Option<u32>,
    /// Bytes in the holder's temp file, when it named one that still exists.
    pub progress: Option<u64>,
}

impl Cache {
    fn lock_path(&self, key: &LockKey) -> PathBuf {
        self.root.join("locks").join(key.file_name())
    }

    /// Takes the lock if it is free; `None` when another process holds it.
    /// Never blocks on the lock (it does touch the disk: call off the runtime).
    pub fn try_lock(&self, key: &LockKey) -> Result<Option<FileLock>, CacheError> {
        let path = self.lock_path(key);
        let mut tries = 0;
        let mut held = loop {
            let taken = LockFile::open(&path)
                .and_then(|file| file.try_lock(Access::Exclusive))
                .map_err(|e| CacheError::write(&path, e))?;
            let Ok(held) = taken else {
                return Ok(None);
            };
            // The sweep deletes orphaned lock files while holding them: a lock
            // taken on a file no longer at `path` is no lock; open it again.
            if is_at(held.file(), &path) {
                break held;
            }
            tries += 1;
            if tries >= 3 {
                return Ok(None);
            }
        };
        held.describe(&std::process::id().to_string());
        Ok(Some(FileLock { held, path }))
    }

    /// What the holder of a lock wrote about itself.
    pub fn lock_holder(&self, key: &LockKey) -> LockHolder {
        let Ok(text) = fs::read_to_string(self.lock_path(key)) else {
            return LockHolder::default();
        };
        let mut lines = text.lines();
        let pid = lines.next().and_then(|l| l.trim().parse().ok());
        let progress = lines
            .next()
            .and_then(|name| safe_component(name.trim()).ok())
            .and_then(|name| fs::metadata(self.tmp_dir().join(name)).ok())
            .map(|m| m.len());
        LockHolder { pid, progress }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_is_exclusive_and_names_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let key = LockKey::Tag("docker.io/library/a:1".into());
        let mut held = cache.try_lock(&key).unwrap().expect("free at first");
        // flock locks are per open file: a second open in this process conflicts too.
        assert!(cache.try_lock(&key).unwrap().is_none());
        let temp = dir.path().join("tmp/abc");
        fs::write(&temp, b"12345").unwrap();
        held.note_temp_file(&temp);
        assert_eq!(
            cache.lock_holder(&key),
            LockHolder {
                pid: Some(std::process::id()),
                progress: Some(5)
            }
        );
        // Other keys are independent.
        assert!(
            cache
                .try_lock(&LockKey::Manifest(Digest::of(b"x")))
                .unwrap()
                .is_some()
        );
        drop(held);
        assert!(cache.try_lock(&key).unwrap().is_some());
    }
}
