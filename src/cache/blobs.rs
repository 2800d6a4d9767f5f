//! Writing blobs: temp file in `tmp/`, hashed while written, fsynced, verified,
//! renamed into place. Dropping an uncommitted writer deletes its temp file, so
//! an error, a panic or Ctrl-C leaves nothing half-written in the store.

use std::fs::{self, File};
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{Cache, CacheError};
use crate::reference::Digest;

pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    digest: Digest,
    expected_size: Option<u64>,
    dest: PathBuf,
}

impl BlobWriter {
    pub fn create(
        cache: &Cache,
        digest: Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, CacheError> {
        let dest = cache.blob_path(&digest);
        let file = tempfile::Builder::new()
            .prefix(&format!("{}.", &digest.hex()[..12]))
            .tempfile_in(cache.tmp_dir())
            .map_err(|e| CacheError::write(&cache.tmp_dir(), e))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            digest,
            expected_size,
            dest,
        })
    }

    /// Where the bytes are being written; readers may follow it while it grows.
    pub fn temp_path(&self) -> &Path {
        self.file.path()
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), CacheError> {
        if let Some(limit) = self.expected_size
            && self.written + data.len() as u64 > limit
        {
            return Err(CacheError::SizeMismatch {
                what: format!("blob {}", self.digest),
                expected: limit,
                actual: self.written + data.len() as u64,
            });
        }
        self.file
            .write_all(data)
            .map_err(|e| CacheError::write(&self.dest, e))?;
        self.hasher.update(data);
        self.written += data.len() as u64;
        Ok(())
    }

    /// Start over (the server ignored our Range request).
    pub fn restart(&mut self) -> Result<(), CacheError> {
        let f = self.file.as_file_mut();
        f.set_len(0).map_err(|e| CacheError::write(&self.dest, e))?;
        f.rewind().map_err(|e| CacheError::write(&self.dest, e))?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    /// Verify size and digest, make durable, and move into the store.
    pub fn commit(self) -> Result<PathBuf, CacheError> {
        let what = format!("blob {}", self.digest);
        if let Some(expected) = self.expected_size
            && expected != self.written
        {
            return Err(CacheError::SizeMismatch {
                what,
                expected,
                actual: self.written,
            });
        }
        let actual = Digest::from_hex(&hex::encode(self.hasher.finalize()))
            .map_err(|e| CacheError::UnsafePath(e.to_string()))?;
        if actual != self.digest {
            return Err(CacheError::DigestMismatch {
                what,
                expected: self.digest,
                actual,
            });
        }
        self.file
            .as_file()
            .sync_all()
            .map_err(|e| CacheError::write(&self.dest, e))?;
        let dir = self
            .dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        fs::create_dir_all(&dir).map_err(|e| CacheError::write(&dir, e))?;
        self.file
            .persist(&self.dest)
            .map_err(|e| CacheError::write(&self.dest, e.error))?;
        // The rename is durable only once the directory is synced.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(self.dest)
    }
}

/// An exclusive advisory lock on one blob, shared by every dpx process using
/// the cache, so a blob is downloaded once however many processes want it.
pub struct BlobLock {
    _file: File,
}

impl BlobLock {
    /// Blocks until the lock is ours; call from a blocking thread.
    pub fn acquire(cache: &Cache, digest: &Digest) -> Result<BlobLock, CacheError> {
        let path = cache
            .root()
            .join("locks")
            .join(format!("{}.lock", digest.hex()));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| CacheError::write(&path, e))?;
        file.lock()
            .map_err(|e: io::Error| CacheError::write(&path, e))?;
        Ok(BlobLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        (dir, cache)
    }

    fn tmp_is_empty(cache: &Cache) -> bool {
        fs::read_dir(cache.tmp_dir()).unwrap().next().is_none()
    }

    #[test]
    fn good_blob_lands_in_place() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello");
        let mut w = BlobWriter::create(&cache, digest.clone(), Some(5)).unwrap();
        w.write(b"hel").unwrap();
        w.write(b"lo").unwrap();
        let path = w.commit().unwrap();
        assert_eq!(fs::read(path).unwrap(), b"hello");
        assert!(cache.has_blob(&digest));
        assert!(tmp_is_empty(&cache));
    }

    #[test]
    fn wrong_bytes_are_not_stored() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello");
        let mut w = BlobWriter::create(&cache, digest.clone(), None).unwrap();
        w.write(b"jello").unwrap();
        assert!(matches!(w.commit(), Err(CacheError::DigestMismatch { .. })));
        assert!(!cache.has_blob(&digest));
        assert!(tmp_is_empty(&cache));
    }

    #[test]
    fn short_and_long_bodies_are_refused() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello");
        let mut w = BlobWriter::create(&cache, digest.clone(), Some(5)).unwrap();
        w.write(b"hel").unwrap();
        assert!(matches!(w.commit(), Err(CacheError::SizeMismatch { .. })));
        let mut w = BlobWriter::create(&cache, digest.clone(), Some(5)).unwrap();
        assert!(w.write(b"hello!").is_err());
        drop(w);
        assert!(!cache.has_blob(&digest));
        assert!(tmp_is_empty(&cache));
    }

    #[test]
    fn restart_resets_the_hash() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello");
        let mut w = BlobWriter::create(&cache, digest, Some(5)).unwrap();
        w.write(b"xx").unwrap();
        w.restart().unwrap();
        w.write(b"hello").unwrap();
        assert!(w.commit().is_ok());
    }
}
