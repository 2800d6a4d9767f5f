//! Sweeping what dead processes left behind, without racing live ones: a
//! temp file is dead when its writer's lock on it is free (`cache::temp`);
//! a lock file is orphaned when its lock is free: it is deleted while held,
//! and `try_lock` re-opens a lock file that went away under it; a holder
//! file or a `VERSION` written aside is dead when the process it names is.

use std::fs::{self, TryLockError};

use super::{Cache, CacheError, locks::is_at, temp::remove_if_dead};

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
        let entries = fs::read_dir(&locks).map_err(|source| CacheError::Read {
            path: locks.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if !entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.ends_with(".lock"))
            {
                continue;
            }
            let Ok(file) = fs::OpenOptions::new().read(true).write(true).open(&path) else {
                continue;
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => continue,
            }
            // Free: its holder is gone. Remove it while we still hold it.
            if is_at(&file, &path) && fs::remove_file(&path).is_ok() {
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
            report.add_temp(remove_if_dead(&entry.path()));
        }
        // `VERSION` as a process killed while creating the cache left it.
        for entry in fs::read_dir(&self.root).into_iter().flatten().flatten() {
            let dead = entry
                .file_name()
                .to_str()
                .is_some_and(super::root::is_dead_version_aside);
            let len = entry.metadata().map_or(0, |m| m.len());
            if dead && fs::remove_file(entry.path()).is_ok() {
                report.add_temp(Some(len));
            }
        }
        Ok(report)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{BlobWriter, LockKey};
    use crate::reference::Digest;

    #[test]
    fn dead_temp_files_and_free_locks_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        // A live download, whether or not it holds (or named itself in) its blob lock.
        let live = Digest::of(b"live");
        let mut held = cache
            .try_lock(&LockKey::Blob(live.clone()))
            .unwrap()
            .unwrap();
        let mut w = BlobWriter::create(&cache, live.clone(), None).unwrap();
        w.write(b"abc").unwrap();
        held.note_temp_file(w.temp_path());
        let unlocked = BlobWriter::create(&cache, Digest::of(b"manifest"), None).unwrap();
        // A small write under way (a tag record, a manifest's media type).
        let small = cache.owned_temp(".tmp").unwrap();
        // Dead writers' files, blob-named or not: nobody holds their lock.
        let dead = dir
            .path()
            .join(format!("tmp/{}.abc123", &Digest::of(b"dead").hex()[..12]));
        fs::write(&dead, b"12345").unwrap();
        let dead_small = dir.path().join("tmp/.tmpAbCdEf");
        fs::write(&dead_small, b"{}").unwrap();
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
                lock_files: 2,
                bytes: 7
            }
        );
        assert!(!report.is_empty());
        assert!(!dead.exists());
        assert!(!dead_small.exists());
        assert!(!gone.exists());
        // The free lock's file is gone; the live download's stays.
        let lock_files = fs::read_dir(dir.path().join("locks"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".lock"))
            .count();
        assert_eq!(lock_files, 1, "only the live blob's lock file is left");
        assert!(ours.exists());
        assert!(w.temp_path().exists());
        assert!(unlocked.temp_path().exists());
        assert!(small.path().exists());
        // The live lock still works, and a swept lock can be taken again.
        assert!(cache.try_lock(&LockKey::Blob(live)).unwrap().is_none());
        assert!(
            cache
                .try_lock(&LockKey::Tag("docker.io/x:1".into()))
                .unwrap()
                .is_some()
        );
        // Once their writers are gone, their files go too.
        let path = unlocked.temp_path().to_path_buf();
        let file = fs::File::open(&path).unwrap();
        drop(unlocked);
        fs::write(&path, b"left").unwrap();
        drop(file);
        assert_eq!(cache.sweep().unwrap().temp_files, 1);
        assert!(!path.exists());
    }

    #[test]
    fn a_report_is_empty_only_when_nothing_was_removed() {
        assert!(SweepReport::default().is_empty());
        for report in [
            SweepReport {
                temp_files: 1,
                ..SweepReport::default()
            },
            SweepReport {
                lock_files: 1,
                ..SweepReport::default()
            },
        ] {
            assert!(!report.is_empty(), "{report:?}");
        }
    }

    #[test]
    fn a_version_file_a_dead_process_wrote_aside_goes_a_live_ones_stays() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        // What a process killed between writing VERSION aside and linking it
        // into place leaves (the first open of a new cache).
        let dead = dir.path().join(format!(".VERSION.{}", u32::MAX));
        fs::write(&dead, "1\n").unwrap();
        let live = dir.path().join(format!(".VERSION.{}", std::process::id()));
        fs::write(&live, "1\n").unwrap();
        let report = cache.sweep().unwrap();
        assert!(!dead.exists(), "the dead process's file is swept");
        assert!(live.exists(), "a live process's file is its own");
        assert_eq!(report.temp_files, 1);
        assert_eq!(report.bytes, 2);
    }
}
