//! Temp files in `tmp/` that say whether their writer still lives: each is
//! locked (`flock`, exclusive) by its writer from creation until it is
//! renamed into place or deleted. The sweep removes only a temp file whose
//! lock it can take, so a starting process never deletes the write of one
//! under way (a blob download, a manifest, a tag record, an import), and a
//! dead writer's file goes at the next sweep: the kernel drops the lock with
//! the process. A lock belongs to the file itself, so no other record of the
//! writer (pid file, lock file naming it) can drift from the truth.

use std::fs::{self, File, TryLockError};
use std::io;

use super::Cache;
use super::locks::is_at;

/// Tries before giving up on a temp file that a sweep keeps deleting.
const CREATE_TRIES: usize = 3;

impl Cache {
    /// A new temp file in `tmp/` named `<prefix>XXXXXX`, locked by this
    /// process until it is persisted or dropped.
    pub(super) fn owned_temp(&self, prefix: &str) -> io::Result<tempfile::NamedTempFile> {
        let mut tries = 0;
        loop {
            let temp = tempfile::Builder::new()
                .prefix(prefix)
                .tempfile_in(self.tmp_dir())?;
            // A sweep may have seen it between its creation and our lock: it
            // deletes only while holding the lock, so a file still at its
            // path once we hold the lock is ours for good.
            let ours = match temp.as_file().try_lock() {
                Ok(()) => is_at(temp.as_file(), temp.path()),
                Err(TryLockError::WouldBlock) => false,
                Err(TryLockError::Error(e)) => return Err(e),
            };
            if ours {
                return Ok(temp);
            }
            tries += 1;
            if tries >= CREATE_TRIES {
                return Err(io::Error::other(
                    "temp files in the cache's tmp/ keep being deleted by another process",
                ));
            }
        }
    }
}

/// Removes `path`, a temp file, if no live writer holds it; its size when
/// removed. Deletes while holding the writer's lock, which `owned_temp`
/// checks for.
pub(super) fn remove_if_dead(path: &std::path::Path) -> Option<u64> {
    let meta = fs::symlink_metadata(path).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    let file = File::open(path).ok()?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => return None,
    }
    if !is_at(&file, path) {
        return None;
    }
    fs::remove_file(path).ok()?;
    Some(meta.len())
}
