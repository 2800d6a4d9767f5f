//! Sweeping what dead processes left behind, without racing live ones: a
//! temp file of a blob download is dead when nobody holds that blob's lock
//! (the downloader takes it before creating the file and names the file in
//! it); a lock file is orphaned when its lock is free: it is deleted while
//! held, and `try_lock` re-opens a lock file that went away under it.

use std::collections::HashSet;
use std::fs::{self, File, TryLockError};
use std::io::Read;
use std::time::{Duration, SystemTime};

use super::{Cache, CacheError, locks::is_at};

/// Temp files no lock names (small-file writes) are this old before they go.
const UNNAMED_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub temp_files: usize,
    pub lock_files: usize,
    /// Bytes of the temp files removed.
    pub bytes: u64,
}

impl Cache {
    /// Removes the temp files of dead downloads and orphaned lock files.
    /// Blocking; safe while other processes download (their locks tell).
    pub fn sweep(&self) -> Result<SweepReport, CacheError> {
        let mut report = SweepReport::default();
        let locks = self.root.join("locks");
        // Temp files named by, or belonging to the blob of, a lock held now.
        let mut live_names = HashSet::new();
        let mut live_prefixes = HashSet::new();
        let entries = fs::read_dir(&locks).map_err(|source| CacheError::Read {
            path: locks.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Some(stem) = name.strip_suffix(".lock") else {
                continue;
            };
            let Ok(mut file) = fs::OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    for temp in named_temps(&mut file) {
                        live_names.insert(temp);
                    }
                    // A blob download names its temp file a moment after
                    // creating it: its digest's prefix covers the gap.
                    if stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()) {
                        live_prefixes.insert(format!("{}.", &stem[..12]));
                    }
                    continue;
                }
                Err(TryLockError::Error(_)) => continue,
            }
            // Free: its holder is gone. Remove its temp files, then the lock
            // file itself while we still hold it.
            if !is_at(&file, &path) {
                continue;
            }
            for temp in named_temps(&mut file) {
                report.add_temp(self.remove_temp(&temp));
            }
            if fs::remove_file(&path).is_ok() {
                report.lock_files += 1;
            }
        }
        // Shared holders' files of processes that died without removing them.
        for entry in fs::read_dir(locks.join("users"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !super::root::process_may_live(&pid) && fs::remove_file(entry.path()).is_ok() {
                report.lock_files += 1;
            }
        }
        let tmp = self.tmp_dir();
        let entries = fs::read_dir(&tmp).map_err(|source| CacheError::Read {
            path: tmp.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if live_names.contains(&name) {
                continue;
            }
            let blob_temp = name.len() > 13
                && name.as_bytes()[12] == b'.'
                && name[..12].bytes().all(|b| b.is_ascii_hexdigit());
            let dead = if blob_temp {
                !live_prefixes.contains(&name[..13])
            } else {
                // Not a download's: an atomic small write, which takes
                // milliseconds; only an old one is a leftover.
                entry
                    .metadata()
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age > UNNAMED_TEMP_AGE)
            };
            if dead {
                report.add_temp(self.remove_temp(&name));
            }
        }
        Ok(report)
    }

    /// Removes `tmp/<name>`; its size when it was removed.
    fn remove_temp(&self, name: &str) -> Option<u64> {
        let name = super::safe_component(name).ok()?;
        let path = self.tmp_dir().join(name);
        let len = fs::symlink_metadata(&path).ok()?.len();
        fs::remove_file(&path).ok()?;
        Some(len)
    }
}

impl SweepReport {
    fn add_temp(&mut self, removed: Option<u64>) {
        if let Some(len) = removed {
            self.temp_files += 1;
            self.bytes = self.bytes.saturating_add(len);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.temp_files == 0 && self.lock_files == 0
    }
}

/// The temp file names a lock file's holder wrote (after its pid line).
fn named_temps(file: &mut File) -> Vec<String> {
    let mut text = String::new();
    if std::io::Seek::rewind(file)
        .and_then(|_| file.read_to_string(&mut text))
        .is_err()
    {
        return Vec::new();
    }
    text.lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{BlobWriter, LockKey};
    use crate::reference::Digest;

    #[test]
    fn dead_downloads_and_free_locks_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        // A live download: lock held, temp file named.
        let live = Digest::of(b"live");
        let mut held = cache
            .try_lock(&LockKey::Blob(live.clone()))
            .unwrap()
            .unwrap();
        let mut w = BlobWriter::create(&cache, live.clone(), None).unwrap();
        w.write(b"abc").unwrap();
        held.note_temp_file(w.temp_path());
        // A download that has its lock but has not named its file yet.
        let early = Digest::of(b"early");
        let _early_lock = cache
            .try_lock(&LockKey::Blob(early.clone()))
            .unwrap()
            .unwrap();
        let early_w = BlobWriter::create(&cache, early, None).unwrap();
        // A dead one: its lock released (the process died), file left.
        let dead = Digest::of(b"dead");
        let dead_path = dir.path().join(format!("tmp/{}.abc123", &dead.hex()[..12]));
        fs::write(&dead_path, b"12345").unwrap();
        let mut lock = cache
            .try_lock(&LockKey::Blob(dead.clone()))
            .unwrap()
            .unwrap();
        lock.note_temp_file(&dead_path);
        drop(lock);
        // A dead download whose lock file is gone too.
        let lone = dir
            .path()
            .join(format!("tmp/{}.xyz", &Digest::of(b"lone").hex()[..12]));
        fs::write(&lone, b"123").unwrap();
        // A fresh small-file temp of another process.
        let small = dir.path().join("tmp/.tmpAbCdEf");
        fs::write(&small, b"{}").unwrap();
        // The holder file of a process long gone (ours stays).
        let gone = dir.path().join(format!("locks/users/{}", u32::MAX));
        fs::write(&gone, "4294967295 (dpx serve)\n").unwrap();
        let ours = dir
            .path()
            .join(format!("locks/users/{}", std::process::id()));
        // An orphaned tag lock.
        drop(
            cache
                .try_lock(&LockKey::Tag("docker.io/x:1".into()))
                .unwrap(),
        );
        let report = cache.sweep().unwrap();
        assert_eq!(
            report,
            SweepReport {
                temp_files: 2,
                lock_files: 3,
                bytes: 8
            }
        );
        assert!(!dead_path.exists());
        assert!(!lone.exists());
        assert!(small.exists());
        assert!(!gone.exists());
        assert!(ours.exists());
        assert!(w.temp_path().exists());
        assert!(early_w.temp_path().exists());
        // The live lock still works, and a swept lock can be taken again.
        assert!(cache.try_lock(&LockKey::Blob(live)).unwrap().is_none());
        assert!(cache.try_lock(&LockKey::Blob(dead)).unwrap().is_some());
    }
}
