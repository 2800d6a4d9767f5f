//! Blob bytes from the page cache to a plain-TCP socket with `sendfile`,
//! without a copy through this process.
//!
//! hyper writes a body by handing its `Bytes` to the connection's writer; it
//! has no way to say "these bytes are a file". So a mapped window of a blob
//! (see `mapped_body`) is registered here by address while it is alive, and
//! the connection's writer, given a slice that lies inside a registered
//! window, sends the same bytes from the file with `sendfile` instead of
//! copying them out of the mapping. The mapping stays the fallback: under
//! TLS, or on a platform without `sendfile`, its bytes are written as they
//! are, and they are the same bytes (a stored blob never changes).
//!
//! On loopback this halves the copies (the page is handed to the socket, not
//! copied into it) and the mapping's pages are never touched, so they cost no
//! page faults either.

use std::collections::BTreeMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Live windows by start address: their length, file and offset in it.
static WINDOWS: Mutex<BTreeMap<usize, Source>> = Mutex::new(BTreeMap::new());
/// How many windows are live: every write checks this first, so a server
/// answering only manifests never takes the lock.
static LIVE: AtomicUsize = AtomicUsize::new(0);

#[derive(Clone)]
struct Source {
    len: usize,
    file: Arc<File>,
    offset: u64,
}

fn windows() -> MutexGuard<'static, BTreeMap<usize, Source>> {
    // A panic while holding the lock leaves a map that is still whole.
    WINDOWS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A mapped window of `file` at `offset`, registered while it lives: hand it
/// to `Bytes::from_owner`.
pub(super) struct Registered {
    map: memmap2::Mmap,
}

impl Registered {
    pub(super) fn new(map: memmap2::Mmap, file: &Arc<File>, offset: u64) -> Registered {
        if !map.is_empty() {
            let source = Source {
                len: map.len(),
                file: Arc::clone(file),
                offset,
            };
            windows().insert(map.as_ptr() as usize, source);
            LIVE.fetch_add(1, Ordering::Release);
        }
        Registered { map }
    }
}

impl AsRef<[u8]> for Registered {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Registered {
    // Runs before the mapping is unmapped (fields drop after this), so no
    // address in the map outlives its mapping.
    fn drop(&mut self) {
        if !self.map.is_empty() && windows().remove(&(self.map.as_ptr() as usize)).is_some() {
            LIVE.fetch_sub(1, Ordering::Release);
        }
    }
}

/// Where the bytes of `slice` come from, when it lies in a live window: the
/// file and the offset of its first byte.
///
/// Sound because a live window's addresses belong to its mapping alone, and
/// the caller's slice keeps that mapping alive while it is written.
pub(super) fn source_of(slice: &[u8]) -> Option<(Arc<File>, u64)> {
    source_at(slice.as_ptr() as usize, slice.len())
}

fn source_at(addr: usize, len: usize) -> Option<(Arc<File>, u64)> {
    if len == 0 || LIVE.load(Ordering::Acquire) == 0 {
        return None;
    }
    let windows = windows();
    let (&start, source) = windows.range(..=addr).next_back()?;
    let skip = addr - start;
    let fits = skip.checked_add(len).is_some_and(|end| end <= source.len);
    fits.then(|| (Arc::clone(&source.file), source.offset + skip as u64))
}

/// Sends up to `len` bytes of `file` from `offset` to `socket` without
/// blocking: the count sent, or `WouldBlock` when the socket is full.
#[cfg(target_os = "linux")]
pub(super) fn send(
    socket: &tokio::net::TcpStream,
    file: &File,
    offset: u64,
    len: usize,
) -> std::io::Result<usize> {
    let mut at = offset;
    // The socket is non-blocking (tokio's), so a full socket is EAGAIN; the
    // file's pages were found resident before the window was mapped (see
    // mapped_body), so this does not wait for the disk.
    socket.try_io(tokio::io::Interest::WRITABLE, || {
        rustix::fs::sendfile(socket, file, Some(&mut at), len).map_err(std::io::Error::from)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mapped(data: &[u8]) -> (Arc<File>, memmap2::Mmap) {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(data).unwrap();
        // SAFETY: a private temp file nobody else writes.
        let map = unsafe { memmap2::Mmap::map(&f) }.unwrap();
        (Arc::new(f), map)
    }

    #[test]
    fn a_slice_of_a_live_window_names_its_file_and_offset_until_dropped() {
        let (file, map) = mapped(&vec![7u8; 8192]);
        let window = Registered::new(map, &file, 1000);
        let bytes: &[u8] = window.as_ref();
        let (found, offset) = source_of(&bytes[100..200]).expect("registered");
        assert!(Arc::ptr_eq(&found, &file));
        assert_eq!(offset, 1100);
        assert_eq!(source_of(bytes).map(|s| s.1), Some(1000));
        assert_eq!(source_of(&bytes[8191..]).map(|s| s.1), Some(1000 + 8191));
        let (addr, len) = (bytes.as_ptr() as usize, bytes.len());
        drop(window);
        // Another test's window may be mapped at the same address by now:
        // what matters is that this file's is gone.
        assert!(source_at(addr, len).is_none_or(|(f, _)| !Arc::ptr_eq(&f, &file)));
    }

    #[test]
    fn memory_outside_every_window_has_no_source() {
        let (file, map) = mapped(&[1u8; 4096]);
        let _window = Registered::new(map, &file, 0);
        assert!(source_of(&[1u8; 64]).is_none());
        assert!(source_of(&[]).is_none());
        assert!(source_of(b"HTTP/1.1 200 OK\r\n").is_none());
    }
}
