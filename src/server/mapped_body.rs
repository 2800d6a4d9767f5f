//! A byte range of a complete, stored blob, sent as memory-mapped windows:
//! the file's pages go from the page cache to the socket with one copy (the
//! kernel's, into the socket), and no buffer is allocated, zeroed or filled;
//! on a plain-TCP connection with none at all (each window is registered
//! with `zero_copy`, and the connection's writer sends it with `sendfile`).
//!
//! Each window is mapped only while hyper writes it (its `Bytes` owns the
//! mapping and unmaps it when dropped), so a stream holds at most about one
//! window of the file in this process's resident set. Touching a page that is
//! not in the page cache is disk I/O: a window that `mincore` does not find
//! wholly resident is mapped and faulted in on a blocking thread; a resident
//! one is mapped on the spot.
//!
//! A stored blob is never written again (it appears by rename, complete, and
//! goes by unlink), and a download's temp file only grows, so a mapped window
//! cannot shrink under us.

use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use super::zero_copy::Registered;

/// Bytes mapped and handed to hyper at a time: large enough that the
/// per-window syscalls (about 20 µs a window, 40 ms per GB) stay small beside
/// the copy, small enough that a hundred parallel streams (32 clients
/// pulling 3 layers at a time) stay within about 50 MB of mapped pages (with
/// 1 MiB windows bench/run's workload 4 peaked at 68 MB of mapped file pages,
/// 88–108 MB resident in all).
pub(super) const WINDOW: u64 = 512 * 1024;

/// Below this a blob is read into memory instead: mapping a page costs more
/// than copying it.
const SMALL: u64 = 64 * 1024;

pub struct MappedBody {
    file: Arc<File>,
    pos: u64,
    end: u64,
    /// A window being faulted in on a blocking thread.
    faulting: Option<JoinHandle<io::Result<Bytes>>>,
}

impl MappedBody {
    /// Bytes `[start, end)` of `file`, a complete blob at least `end` bytes long.
    pub fn new(file: File, start: u64, end: u64) -> MappedBody {
        MappedBody {
            file: Arc::new(file),
            pos: start,
            end: end.max(start),
            faulting: None,
        }
    }

    /// The next window, mapped here when its pages are all in memory, else
    /// on a blocking thread.
    fn poll_window(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Bytes>> {
        if self.faulting.is_none() {
            let len = (self.end - self.pos).min(WINDOW);
            match window_if_resident(&self.file, self.pos, len) {
                Ok(Some(bytes)) => return Poll::Ready(Ok(bytes)),
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let (file, pos) = (Arc::clone(&self.file), self.pos);
            self.faulting = Some(tokio::task::spawn_blocking(move || {
                window_faulted_in(&file, pos, len)
            }));
        }
        let Some(handle) = self.faulting.as_mut() else {
            return Poll::Ready(Err(io::Error::other("no window pending")));
        };
        let joined = ready!(Pin::new(handle).poll(cx));
        self.faulting = None;
        Poll::Ready(joined.unwrap_or_else(|e| Err(io::Error::other(e.to_string()))))
    }
}

impl Body for MappedBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match ready!(this.poll_window(cx)) {
            Ok(bytes) if bytes.is_empty() => {
                this.pos = this.end;
                Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file shorter than expected",
                ))))
            }
            Ok(bytes) => {
                this.pos += bytes.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Err(e) => {
                this.pos = this.end;
                Poll::Ready(Some(Err(e)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pos >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.pos)
    }
}

/// `len` bytes at `pos` of `file` (which holds them): mapped, or read when
/// small, right here when they are in memory, else on a blocking thread.
pub(super) async fn window(file: &Arc<File>, pos: u64, len: u64) -> io::Result<Bytes> {
    if let Some(bytes) = window_if_resident(file, pos, len)? {
        return Ok(bytes);
    }
    let file = Arc::clone(file);
    tokio::task::spawn_blocking(move || window_faulted_in(&file, pos, len))
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
}

/// `len` bytes at `pos`, when no page of them needs the disk; `None` when
/// one does (or residency cannot be told).
fn window_if_resident(file: &Arc<File>, pos: u64, len: u64) -> io::Result<Option<Bytes>> {
    if len <= SMALL {
        // One read of a few pages: the copy is cheaper than a mapping, but
        // it must not wait for the disk either.
        return read_if_cached(file, pos, len);
    }
    let map = map(file, pos, len, false)?;
    if !resident(&map) {
        return Ok(None);
    }
    Ok(Some(Bytes::from_owner(Registered::new(map, file, pos))))
}

/// `len` bytes at `pos`, faulted in (blocking: call off the async workers).
fn window_faulted_in(file: &Arc<File>, pos: u64, len: u64) -> io::Result<Bytes> {
    if len <= SMALL {
        let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
        read_exact_at(file, &mut buf, pos)?;
        return Ok(Bytes::from(buf));
    }
    let map = map(file, pos, len, true)?;
    Ok(Bytes::from_owner(Registered::new(map, file, pos)))
}

fn map(file: &File, pos: u64, len: u64, populate: bool) -> io::Result<memmap2::Mmap> {
    // A mapped page past the end of the file faults (SIGBUS) when touched.
    if file.metadata()?.len() < pos.saturating_add(len) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "blob file shorter than expected",
        ));
    }
    let mut options = memmap2::MmapOptions::new();
    options
        .offset(pos)
        .len(usize::try_from(len).map_err(io::Error::other)?);
    if populate {
        options.populate();
    }
    // SAFETY: the file holds these bytes (checked above) and is never
    // truncated or rewritten (see the module doc): they stay as they are.
    unsafe { options.map(file) }
}

/// A small read served from the page cache, or `None` when it would wait
/// for the disk (`RWF_NOWAIT`), where the platform can tell.
#[cfg(target_os = "linux")]
fn read_if_cached(file: &File, pos: u64, len: u64) -> io::Result<Option<Bytes>> {
    use rustix::io::{ReadWriteFlags, preadv2};
    let mut buf = vec![0; usize::try_from(len).map_err(io::Error::other)?];
    let mut filled = 0;
    while filled < buf.len() {
        let at = pos + filled as u64;
        match preadv2(
            file,
            &mut [io::IoSliceMut::new(&mut buf[filled..])],
            at,
            ReadWriteFlags::NOWAIT,
        ) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob file shorter than expected",
                ));
            }
            Ok(n) => filled += n,
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::OPNOTSUPP) => return Ok(None),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(Bytes::from(buf)))
}

#[cfg(not(target_os = "linux"))]
fn read_if_cached(_file: &File, _pos: u64, _len: u64) -> io::Result<Option<Bytes>> {
    Ok(None)
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, pos)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut pos: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, pos)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

/// Whether every page of `map` is in the page cache (`mincore`).
#[cfg(unix)]
fn resident(map: &memmap2::Mmap) -> bool {
    let page = page_size();
    // mincore wants a page-aligned start: memmap2 maps from the page that
    // holds the offset, so round the address down to it.
    let addr = map.as_ptr() as usize;
    let start = addr - addr % page;
    let len = addr + map.len() - start;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: [start, start + len) lies within the mapping memmap2 made
    // (from the page holding the offset), and `vec` has one byte per page.
    let rc = unsafe { libc::mincore(start as *mut libc::c_void, len, vec.as_mut_ptr()) };
    rc == 0 && vec.iter().all(|v| v & 1 == 1)
}

#[cfg(not(unix))]
fn resident(_map: &memmap2::Mmap) -> bool {
    false
}

#[cfg(unix)]
fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        usize::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn blob(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, &data).unwrap();
        (f, data)
    }

    async fn collect(file: &tempfile::NamedTempFile, start: u64, end: u64) -> Vec<u8> {
        let f = file.reopen().unwrap();
        let body = MappedBody::new(f, start, end);
        body.collect().await.unwrap().to_bytes().to_vec()
    }

    #[tokio::test]
    async fn sends_every_range_of_small_and_large_blobs_exactly() {
        for len in [0, 1, 1000, 64 * 1024, 64 * 1024 + 1, 5 * 1024 * 1024 + 123] {
            let (f, data) = blob(len);
            assert_eq!(collect(&f, 0, len as u64).await, data, "whole, len {len}");
            if len > 10 {
                // Unaligned starts and ends, across window boundaries.
                let (s, e) = (len / 3 + 1, len - 3);
                assert_eq!(collect(&f, s as u64, e as u64).await, &data[s..e]);
            }
        }
    }

    #[tokio::test]
    async fn a_file_shorter_than_said_is_an_error_not_a_short_body() {
        for len in [100usize, 3 * 1024 * 1024] {
            let (f, _) = blob(len);
            let body = MappedBody::new(f.reopen().unwrap(), 0, len as u64 + 10);
            assert!(body.collect().await.is_err(), "len {len}");
        }
    }

    #[test]
    fn frames_are_whole_windows() {
        let (f, _) = blob(5 * 1024 * 1024);
        let mut body = MappedBody::new(f.reopen().unwrap(), 0, 5 * 1024 * 1024);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let first = rt.block_on(body.frame()).unwrap().unwrap();
        assert_eq!(first.data_ref().unwrap().len() as u64, WINDOW);
        assert_eq!(body.size_hint().exact(), Some(5 * 1024 * 1024 - WINDOW));
    }
}
