//! The hot set: tag records and the small manifests they point at, kept in
//! memory so a cached tag is answered without reading three files on a
//! blocking thread.
//!
//! Another process (`dpx pull`, `dpx purge`) may change the cache at any
//! time, so an entry is only used while both files are the ones it was read
//! from: a lookup compares the tag record's and the manifest blob's identity
//! (inode, size, change time) with what it saw when it read them. Every
//! write of either file is a new inode (temp + rename), a removal makes the
//! stat fail, so any change finished before the lookup is seen.
//!
//! Those two stats are skipped while the cache's change counter
//! (`generation`) has not moved since an entry was last checked, for up to
//! `generation::RECHECK`: every dpx process bumps it after such a change, so
//! a change by dpx is still seen by the next lookup, and one it is not told
//! of (a file changed by hand) within that bound. On a busy server the stats
//! were a fifth of a cached manifest's CPU.
//!
//! Bounded by bytes: beyond the budget, entries go until a quarter is free.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::bounded::{Bounded, Cost};
use super::generation::Checked;
use super::tags::TagRecord;
use super::{Cache, CacheError};

/// Manifests larger than this are read from disk each time.
pub const MAX_MANIFEST: usize = 64 * 1024;

/// A cached tag: its record, and its manifest's bytes and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedTag {
    pub record: TagRecord,
    pub manifest: Bytes,
    pub media_type: String,
}

/// Which file a path named when it was read: a replaced or removed file
/// does not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    #[cfg(unix)]
    dev: u64,
    #[cfg(unix)]
    ino: u64,
    #[cfg(unix)]
    ctime: (i64, i64),
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Stamp {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Stamp {
            len: meta.len(),
            #[cfg(unix)]
            dev: meta.dev(),
            #[cfg(unix)]
            ino: meta.ino(),
            #[cfg(unix)]
            ctime: (meta.ctime(), meta.ctime_nsec()),
            modified: meta.modified().ok(),
        }
    }

    fn still(&self, path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == *self)
    }
}

pub(super) struct Entry {
    tag: CachedTag,
    record_path: PathBuf,
    record_stamp: Stamp,
    manifest_path: PathBuf,
    manifest_stamp: Stamp,
    checked: Checked,
}

impl Cost for Entry {
    fn cost(&self, key: &str) -> usize {
        key.len()
            + self.tag.manifest.len()
            + self.tag.media_type.len()
            + self.record_path.as_os_str().len()
            + self.manifest_path.as_os_str().len()
            + std::mem::size_of::<Entry>()
    }
}

/// The tag hot set.
pub(super) type HotSet = Bounded<Entry>;

/// `registry/repo:tag` (`concat`, not `format!`: once per request).
fn key(registry: &str, repo: &str, tag: &str) -> String {
    [registry, "/", repo, ":", tag].concat()
}

impl Cache {
    /// A tag's record and manifest from the hot set, when both files are
    /// still the ones read. Never reads file contents; two stats, unless
    /// the change counter vouches for them (see the module doc).
    pub fn hot_tag(&self, registry: &str, repo: &str, tag: &str) -> Option<CachedTag> {
        let key = key(registry, repo, tag);
        let e = self.hot.get(&key)?;
        // Read before the stats: a change after them bumps it past this.
        let generation = self.generation.current();
        if e.checked.vouches(generation) {
            return Some(e.tag.clone());
        }
        if e.record_stamp.still(&e.record_path) && e.manifest_stamp.still(&e.manifest_path) {
            e.checked.record(generation);
            return Some(e.tag.clone());
        }
        self.hot.remove(&key);
        None
    }

    /// A tag's record and manifest from disk (blocking), remembered in the
    /// hot set when the manifest is small. `None` when either is missing.
    pub fn read_tag_and_manifest(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<Option<CachedTag>, CacheError> {
        let record_path = self.tag_path(registry, repo, tag)?;
        // Read before the files: a change after reading them bumps it.
        let generation = self.generation.current();
        // Each file is stamped from the descriptor its bytes come from: a
        // file replaced meanwhile leaves an entry that never matches again.
        let Some((text, record_stamp)) = read_stamped(&record_path, usize::MAX)? else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<TagRecord>(&text) else {
            // Unreadable is as good as absent: the tag is asked again.
            return Ok(None);
        };
        let Some((manifest, media_type)) = self.get_manifest(&record.digest)? else {
            return Ok(None);
        };
        let manifest_path = self.blob_path(&record.digest);
        let tag_entry = CachedTag {
            record,
            manifest: Bytes::from(manifest),
            media_type,
        };
        if tag_entry.manifest.len() <= MAX_MANIFEST
            && let Ok(meta) = fs::metadata(&manifest_path)
            && meta.len() == tag_entry.manifest.len() as u64
        {
            // A stored blob is immutable: the file whose size matches what
            // was read is the one read, unless replaced, which changes its inode.
            self.hot.insert(
                key(registry, repo, tag),
                Entry {
                    tag: tag_entry.clone(),
                    record_path,
                    record_stamp,
                    manifest_path,
                    manifest_stamp: Stamp::of(&meta),
                    checked: Checked::new(generation),
                },
            );
        }
        Ok(Some(tag_entry))
    }
}

/// A file's bytes (up to `max`) and the stamp of the file they came from.
fn read_stamped(path: &Path, max: usize) -> Result<Option<(Vec<u8>, Stamp)>, CacheError> {
    let read_err = |source| CacheError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    };
    let stamp = Stamp::of(&file.metadata().map_err(read_err)?);
    let mut bytes = Vec::new();
    file.take(u64::try_from(max).unwrap_or(u64::MAX))
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(Some((bytes, stamp)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::bounded::BUDGET;
    use crate::cache::generation::RECHECK;
    use crate::cache::testing::cache_with_manifest;
    use crate::reference::Digest;
    use std::sync::atomic::Ordering;

    fn tagged() -> (tempfile::TempDir, Cache, Digest) {
        let (dir, cache, _, d) = cache_with_manifest();
        cache
            .write_tag("docker.io", "library/a", "1", &TagRecord::new(d.clone()))
            .unwrap();
        (dir, cache, d)
    }

    #[test]
    fn a_read_tag_is_answered_from_memory_until_its_record_changes() {
        let (_dir, cache, d) = tagged();
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
        let read = cache
            .read_tag_and_manifest("docker.io", "library/a", "1")
            .unwrap()
            .unwrap();
        assert_eq!(read.record.digest, d);
        assert_eq!(
            cache.hot_tag("docker.io", "library/a", "1"),
            Some(read.clone())
        );
        // Rewritten (another process checked it upstream): read again.
        let mut newer = read.record.clone();
        newer.checked_at += 5;
        cache
            .write_tag("docker.io", "library/a", "1", &newer)
            .unwrap();
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
        let again = cache
            .read_tag_and_manifest("docker.io", "library/a", "1")
            .unwrap()
            .unwrap();
        assert_eq!(again.record, newer);
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), Some(again));
    }

    /// A tag read once (so held in memory), then `file` of it removed the
    /// way dpx's own removals (purge, verify) do it: removed, then the
    /// change counter bumped.
    fn read_then_removed(
        file: impl Fn(&Cache, &Digest) -> std::path::PathBuf,
    ) -> (tempfile::TempDir, Cache) {
        let (dir, cache, d) = tagged();
        cache
            .read_tag_and_manifest("docker.io", "library/a", "1")
            .unwrap();
        fs::remove_file(file(&cache, &d)).unwrap();
        cache.generation.bump();
        (dir, cache)
    }

    #[test]
    fn a_removed_record_or_manifest_is_not_answered() {
        let (_dir, cache) = read_then_removed(|c, d| c.blob_path(d));
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
        assert_eq!(
            cache
                .read_tag_and_manifest("docker.io", "library/a", "1")
                .unwrap(),
            None
        );

        let (_dir, cache) =
            read_then_removed(|c, _| c.tag_path("docker.io", "library/a", "1").unwrap());
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
    }

    /// Every entry's last check made older than `RECHECK`.
    fn age(cache: &Cache) {
        for e in cache.hot.values() {
            e.checked.at.store(u64::MAX, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_change_by_hand_that_no_counter_signals_is_seen_once_the_check_is_old() {
        let (_dir, cache, d) = tagged();
        let read = cache.read_tag_and_manifest("docker.io", "library/a", "1");
        let read = read.unwrap().unwrap();
        fs::remove_file(cache.blob_path(&d)).unwrap();
        // Within the bound the counter vouches for the entry ...
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), Some(read));
        // ... past it the files are looked at.
        age(&cache);
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
    }

    #[test]
    fn a_tag_rewritten_by_another_process_is_seen_by_the_next_lookup() {
        let (dir, cache, d) = tagged();
        cache
            .read_tag_and_manifest("docker.io", "library/a", "1")
            .unwrap();
        assert!(cache.hot_tag("docker.io", "library/a", "1").is_some());
        // Another process: its own Cache, its own mapping of the counter.
        let other = Cache::open(dir.path()).unwrap();
        let mut newer = TagRecord::new(d);
        newer.checked_at += 7;
        other
            .write_tag("docker.io", "library/a", "1", &newer)
            .unwrap();
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
        let again = cache.read_tag_and_manifest("docker.io", "library/a", "1");
        assert_eq!(again.unwrap().unwrap().record, newer);
        // And a purge there (any removal) likewise.
        assert!(cache.hot_tag("docker.io", "library/a", "1").is_some());
        let policy = crate::cache::purge::Policy {
            all: true,
            ..Default::default()
        };
        other.purge(&policy, |_| {}).unwrap();
        assert_eq!(cache.hot_tag("docker.io", "library/a", "1"), None);
    }

    #[test]
    fn a_check_vouches_only_for_its_counter_value_and_only_for_a_while() {
        let recheck = u64::try_from(RECHECK.as_nanos()).unwrap();
        let checked = Checked::new(Some(5));
        let at = checked.at.load(Ordering::Relaxed);
        assert!(checked.vouches_at(Some(5), at));
        assert!(checked.vouches_at(Some(5), at + recheck - 1));
        assert!(!checked.vouches_at(Some(5), at + recheck));
        assert!(!checked.vouches_at(Some(6), at));
        assert!(!checked.vouches_at(None, at));
        // Never checked against a counter: never vouched for.
        let never = Checked::new(None);
        assert!(!never.vouches_at(Some(0), 0));
        never.record(Some(9));
        assert!(never.vouches(Some(9)));
    }

    #[test]
    fn the_set_stays_within_its_byte_budget() {
        let hot = HotSet::default();
        let (_dir, cache, d) = tagged();
        let record_path = cache.tag_path("docker.io", "library/a", "1").unwrap();
        let meta = fs::metadata(&record_path).unwrap();
        let entry = |size: usize| Entry {
            tag: CachedTag {
                record: TagRecord::new(d.clone()),
                manifest: Bytes::from(vec![b'x'; size]),
                media_type: crate::oci::OCI_MANIFEST.into(),
            },
            record_path: record_path.clone(),
            record_stamp: Stamp::of(&meta),
            manifest_path: record_path.clone(),
            manifest_stamp: Stamp::of(&meta),
            checked: Checked::new(None),
        };
        for n in 0..1000 {
            hot.insert(format!("k{n}"), entry(MAX_MANIFEST));
            assert!(hot.bytes() <= BUDGET, "{} after {n}", hot.bytes());
        }
        let (count, held) = hot.held();
        assert!(count > 50 && count < 130, "{count} entries");
        // The accounting matches what is held.
        assert_eq!(held, hot.bytes());
        // Too large for the set: not kept.
        hot.insert("huge".into(), entry(BUDGET / 2));
        assert!(hot.get("huge").is_none());
    }

    #[test]
    fn a_large_manifest_is_read_but_not_kept() {
        let (_dir, cache) = crate::cache::testing::temp_cache();
        let layers: Vec<String> = (0..1000)
            .map(|i| {
                format!(
                    r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{:064x}","size":{i}}}"#,
                    i
                )
            })
            .collect();
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}},"layers":[{}]}}"#,
            layers.join(",")
        );
        assert!(body.len() > MAX_MANIFEST);
        let d = Digest::of(body.as_bytes());
        cache
            .put_manifest(&d, crate::oci::OCI_MANIFEST, body.as_bytes())
            .unwrap();
        cache
            .write_tag("docker.io", "library/big", "1", &TagRecord::new(d))
            .unwrap();
        let read = cache
            .read_tag_and_manifest("docker.io", "library/big", "1")
            .unwrap()
            .unwrap();
        assert_eq!(read.manifest.len(), body.len());
        assert_eq!(cache.hot_tag("docker.io", "library/big", "1"), None);
    }
}
