//! Last-use times, recorded cheaply. The contract with eviction: the last use
//! of a blob or manifest is the mtime of its file in `blobs/`, and of a tag the
//! mtime of its tag record. A use (served, pulled, prefetched) only goes into
//! an in-memory batch; `flush_usage`, run off the async workers every
//! `FLUSH_INTERVAL` and at exit, moves a file's mtime forward when it is more
//! than `GRANULARITY` behind. No request waits for a disk write.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Cache, CacheError};
use crate::reference::Digest;

/// How often a long-running process writes its batch.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(30);
/// How stale a recorded time may be: eviction works in days, not minutes.
pub const GRANULARITY: Duration = Duration::from_secs(60 * 60);

/// What was used. The file's path is worked out when the batch is written,
/// not per use: a cached manifest is served tens of thousands of times a
/// second, and building two paths per request showed in its profile.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Used {
    Blob(Digest),
    Tag {
        registry: String,
        repo: String,
        tag: String,
    },
}

/// Uses not yet written.
#[derive(Debug, Default)]
pub struct Usage {
    pending: Mutex<HashMap<Used, SystemTime>>,
    /// What was noted in the current second (the second, and a hash of
    /// each key): a use noted again within it changes nothing the batch
    /// needs, so it costs no key built and no allocation.
    this_second: Mutex<(u64, foldhash::HashSet<u64>)>,
    /// Off only to measure what recording costs (`DPX_RECORD_USE=0`).
    disabled: bool,
}

impl Usage {
    pub fn from_env() -> Usage {
        Usage {
            disabled: std::env::var_os("DPX_RECORD_USE").is_some_and(|v| v == "0"),
            ..Usage::default()
        }
    }

    /// Notes the use `key` hashes to, building it (`used`) only when it is
    /// the first such note this second.
    fn note(&self, key: impl Hash, used: impl FnOnce() -> Used) {
        if self.disabled {
            return;
        }
        let now = SystemTime::now();
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let hash = foldhash::fast::FixedState::default().hash_one(key);
        if let Ok(mut noted) = self.this_second.lock() {
            if noted.0 != second {
                *noted = (second, foldhash::HashSet::default());
            }
            if !noted.1.insert(hash) {
                return;
            }
        }
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(used(), now);
        }
    }
}

impl Cache {
    /// Notes a use of a blob or manifest (in memory only).
    pub fn record_blob_use(&self, digest: &Digest) {
        self.usage.note(digest.hex(), || Used::Blob(digest.clone()));
    }

    /// Notes a use of a tag (in memory only).
    pub fn record_tag_use(&self, registry: &str, repo: &str, tag: &str) {
        self.usage.note((registry, repo, tag), || Used::Tag {
            registry: registry.to_string(),
            repo: repo.to_string(),
            tag: tag.to_string(),
        });
    }

    /// Writes the batch: moves each used file's mtime to its last use when the
    /// stored one is more than `GRANULARITY` older. Files gone meanwhile are
    /// skipped. Blocking: call off the async workers. Returns how many files
    /// were touched.
    pub fn flush_usage(&self) -> Result<usize, CacheError> {
        let batch = match self.usage.pending.lock() {
            Ok(mut pending) => std::mem::take(&mut *pending),
            Err(_) => return Err(CacheError::Internal("usage batch poisoned".into())),
        };
        let mut touched = 0;
        for (what, used) in batch {
            let path = match what {
                Used::Blob(digest) => self.blob_path(&digest),
                Used::Tag {
                    registry,
                    repo,
                    tag,
                } => match self.tag_path(&registry, &repo, &tag) {
                    Ok(path) => path,
                    // A name no tag record can have: nothing to touch.
                    Err(_) => continue,
                },
            };
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let behind = meta
                .modified()
                .ok()
                .and_then(|m| used.duration_since(m).ok());
            if behind.is_some_and(|b| b < GRANULARITY) {
                continue;
            }
            // Setting times needs ownership, not write access.
            let set = std::fs::File::open(&path).and_then(|f| f.set_modified(used));
            match set {
                Ok(()) => touched += 1,
                Err(e) => tracing::debug!("cannot record the use of {}: {e}", path.display()),
            }
        }
        Ok(touched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mtime(path: &std::path::Path) -> SystemTime {
        std::fs::metadata(path).unwrap().modified().unwrap()
    }

    #[test]
    fn every_use_is_in_the_batch_once_however_often_it_is_noted() {
        let (_dir, cache, _, d) = crate::cache::testing::cache_with_manifest();
        for _ in 0..1000 {
            cache.record_blob_use(&d);
            cache.record_tag_use("docker.io", "library/a", "1");
        }
        cache.record_tag_use("docker.io", "library/a", "2");
        cache.record_blob_use(&Digest::of(b"other"));
        let pending = cache.usage.pending.lock().unwrap();
        let mut noted: Vec<String> = pending.keys().map(|u| format!("{u:?}")).collect();
        noted.sort();
        assert_eq!(noted.len(), 4, "{noted:?}");
        assert!(pending.contains_key(&Used::Blob(d.clone())));
        assert!(pending.contains_key(&Used::Tag {
            registry: "docker.io".into(),
            repo: "library/a".into(),
            tag: "2".into(),
        }));
    }

    #[test]
    fn uses_move_old_mtimes_forward_only_when_flushed_and_coarsely() {
        let (_dir, cache, _, d) = crate::cache::testing::cache_with_manifest();
        let path = cache.blob_path(&d);
        let old = SystemTime::now() - Duration::from_secs(10 * 24 * 3600);
        std::fs::File::open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        cache.record_blob_use(&d);
        // Recording alone writes nothing.
        assert_eq!(mtime(&path), old);
        assert_eq!(cache.flush_usage().unwrap(), 1);
        let new = mtime(&path);
        assert!(new > old + Duration::from_secs(9 * 24 * 3600));
        // A recent mtime is left alone; an empty batch touches nothing.
        cache.record_blob_use(&d);
        assert_eq!(cache.flush_usage().unwrap(), 0);
        assert_eq!(cache.flush_usage().unwrap(), 0);
        // Tags too; a file that went away is skipped.
        let rec = crate::cache::TagRecord::new(d.clone());
        cache
            .write_tag("docker.io", "library/a", "1", &rec)
            .unwrap();
        let tag = cache.tag_path("docker.io", "library/a", "1").unwrap();
        std::fs::File::open(&tag)
            .unwrap()
            .set_modified(old)
            .unwrap();
        cache.record_tag_use("docker.io", "library/a", "1");
        cache.record_blob_use(&Digest::of(b"gone"));
        assert_eq!(cache.flush_usage().unwrap(), 1);
        assert!(mtime(&tag) > old);
    }
}
