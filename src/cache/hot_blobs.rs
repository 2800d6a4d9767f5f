//! Small stored blobs (image configs, mostly) kept in memory, so a request
//! for one is answered without opening its file on a blocking thread: each
//! pull asks for its image's config, and opening it cost more than the rest
//! of the request.
//!
//! A stored blob never changes, only goes (purge, verify): an entry is used
//! while the cache's change counter vouches for it (see `generation`), and
//! otherwise the blob is opened and read again, which renews the entry.
//! Bounded by bytes like the hot set of tags.

use std::fs;
use std::io::{self, Read};

use bytes::Bytes;

use super::bounded::{Bounded, Cost};
use super::generation::Checked;
use super::{Cache, CacheError};
use crate::reference::Digest;

/// Blobs up to this size are kept; larger ones are sent from their file.
pub const MAX_BLOB: u64 = 64 * 1024;

/// A stored blob as `Cache::open_stored_blob` gives it.
#[derive(Debug)]
pub enum StoredBlob {
    /// A small blob's bytes, read whole.
    Small(Bytes),
    /// A larger blob's file, opened, and its length.
    File(fs::File, u64),
}

pub(super) struct Entry {
    bytes: Bytes,
    checked: Checked,
}

impl Cost for Entry {
    fn cost(&self, hex: &str) -> usize {
        hex.len() + self.bytes.len() + std::mem::size_of::<Entry>()
    }
}

/// The small-blob hot set, by digest hex.
pub(super) type HotBlobs = Bounded<Entry>;

impl Cache {
    /// A small stored blob's bytes from memory, when read lately and the
    /// change counter vouches that nothing was removed since. No I/O.
    pub fn hot_blob(&self, digest: &Digest) -> Option<Bytes> {
        let entry = self.hot_blobs.get(digest.hex())?;
        entry
            .checked
            .vouches(self.generation.current())
            .then(|| entry.bytes.clone())
    }

    /// A stored blob: a small one read whole (and kept in memory for
    /// `hot_blob`), a larger one opened. `None` when it is not cached.
    /// Blocking: call off the async workers.
    pub fn open_stored_blob(&self, digest: &Digest) -> Result<Option<StoredBlob>, CacheError> {
        // Read before the file: a removal after it bumps it past this.
        let generation = self.generation.current();
        let Some((file, len)) = self.open_blob(digest)? else {
            return Ok(None);
        };
        if len > MAX_BLOB {
            return Ok(Some(StoredBlob::File(file, len)));
        }
        let path = || self.blob_path(digest);
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.take(len)
            .read_to_end(&mut buf)
            .map_err(|source| CacheError::Read {
                path: path(),
                source,
            })?;
        if buf.len() as u64 != len {
            // A stored blob does not shrink: this one is damaged.
            return Err(CacheError::Read {
                path: path(),
                source: io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file shorter than it was",
                ),
            });
        }
        let bytes = Bytes::from(buf);
        self.hot_blobs.insert(
            digest.hex().to_string(),
            Entry {
                bytes: bytes.clone(),
                checked: Checked::new(generation),
            },
        );
        Ok(Some(StoredBlob::Small(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::testing::temp_cache;

    use crate::cache::testing::store_blob as stored;

    #[test]
    fn a_small_blob_read_once_is_answered_from_memory_until_something_is_removed() {
        let (_dir, cache) = temp_cache();
        let d = stored(&cache, b"{\"config\":1}");
        assert_eq!(cache.hot_blob(&d), None, "not read yet");
        match cache.open_stored_blob(&d).unwrap() {
            Some(StoredBlob::Small(b)) => assert_eq!(&b[..], b"{\"config\":1}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(cache.hot_blob(&d).as_deref(), Some(&b"{\"config\":1}"[..]));
        // Any removal by dpx moves the counter: the blob is opened again.
        cache.generation.bump();
        assert_eq!(cache.hot_blob(&d), None);
        assert!(cache.open_stored_blob(&d).unwrap().is_some());
        assert!(cache.hot_blob(&d).is_some());
        fs::remove_file(cache.blob_path(&d)).unwrap();
        cache.generation.bump();
        assert_eq!(cache.hot_blob(&d), None);
        assert!(cache.open_stored_blob(&d).unwrap().is_none());
    }

    #[test]
    fn a_large_blob_is_opened_not_kept() {
        let (_dir, cache) = temp_cache();
        let data = vec![7u8; usize::try_from(MAX_BLOB).unwrap() + 1];
        let d = stored(&cache, &data);
        match cache.open_stored_blob(&d).unwrap() {
            Some(StoredBlob::File(_, len)) => assert_eq!(len, MAX_BLOB + 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(cache.hot_blob(&d), None);
        // The largest kept size is kept.
        let d = stored(&cache, &data[1..]);
        assert!(matches!(
            cache.open_stored_blob(&d).unwrap(),
            Some(StoredBlob::Small(_))
        ));
        assert!(cache.hot_blob(&d).is_some());
    }
}
