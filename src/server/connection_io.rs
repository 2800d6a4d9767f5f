//! The client socket as hyper sees it: every byte read or written counts as
//! the connection's activity, a write that makes no progress for
//! `send_timeout` fails, and a slice of a mapped blob window goes out with
//! `sendfile` (see `zero_copy`).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::Activity;
use super::zero_copy;

/// The client socket, noting every byte read or written in `Activity`, and
/// failing a write that makes no progress for `send_timeout`.
pub(super) struct ActivityIo {
    inner: TcpStream,
    activity: Arc<Activity>,
    send_timeout: Duration,
    /// Armed while a write waits on a full socket; reset by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl ActivityIo {
    pub(super) fn new(inner: TcpStream, activity: Arc<Activity>, send_timeout: Duration) -> Self {
        ActivityIo {
            inner,
            activity,
            send_timeout,
            stalled: None,
        }
    }

    /// What a write's poll becomes: progress resets the stall clock; waiting
    /// past `send_timeout` is an error (hyper then closes the connection).
    fn watch_write(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match poll {
            Poll::Pending => {
                let timeout = self.send_timeout;
                let stall = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "the client read nothing for {}s ([serve] send_timeout)",
                            timeout.as_secs()
                        ),
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
            ready => {
                self.stalled = None;
                if matches!(ready, Poll::Ready(Ok(n)) if n > 0) {
                    self.activity.touch();
                }
                ready
            }
        }
    }
}

impl ActivityIo {
    /// Writes a prefix of `bufs`: a slice of a mapped blob window goes with
    /// `sendfile` (see `zero_copy`), the slices before it as they are.
    #[cfg(target_os = "linux")]
    fn write_some(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let mapped = bufs
            .iter()
            .enumerate()
            .find_map(|(i, b)| zero_copy::source_of(b).map(|s| (i, s, b.len())));
        let Some((i, (file, offset), len)) = mapped else {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        };
        if bufs[..i].iter().any(|b| !b.is_empty()) {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, &bufs[..i]);
        }
        loop {
            ready!(self.inner.poll_write_ready(cx))?;
            match zero_copy::send(&self.inner, &file, offset, len) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn write_some(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}

impl AsyncRead for ActivityIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for ActivityIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = self.write_some(cx, &[std::io::IoSlice::new(buf)]);
        self.watch_write(cx, poll)
    }

    // Vectored writes pass through, so hyper keeps writing headers and body
    // chunks without copying them into one buffer first.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = self.write_some(cx, bufs);
        self.watch_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::{IoSlice, Write};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Writes all of `bufs` the way hyper does: a vectored write, then past
    /// what it took, again.
    async fn write_all_vectored(io: &mut ActivityIo, bufs: &[&[u8]]) {
        let mut parts: Vec<&[u8]> = bufs.to_vec();
        while parts.iter().any(|p| !p.is_empty()) {
            let slices: Vec<IoSlice<'_>> = parts.iter().map(|p| IoSlice::new(p)).collect();
            let mut n = io.write_vectored(&slices).await.unwrap();
            assert!(n > 0);
            for part in parts.iter_mut() {
                let take = n.min(part.len());
                *part = &part[take..];
                n -= take;
            }
        }
    }

    #[tokio::test]
    async fn a_mapped_window_goes_out_from_the_file_with_the_bytes_before_it() {
        let len = 3 * 1024 * 1024 + 17;
        let on_disk: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&on_disk).unwrap();
        let file = Arc::new(file);
        // A private mapping changed in memory: what the client receives
        // tells which way the bytes went (the file's: sendfile; the
        // mapping's: a copy).
        // SAFETY: a temp file only this test has.
        let mut map = unsafe { memmap2::MmapOptions::new().offset(4096).map_copy(&*file) }.unwrap();
        map.fill(b'm');
        let window = zero_copy::Registered::new(map.make_read_only().unwrap(), &file, 4096);

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut client, server) = (client.unwrap(), accepted.unwrap().0);
        let activity = Arc::new(Activity::new());
        let mut io = ActivityIo::new(server, Arc::clone(&activity), Duration::from_secs(10));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            client.read_to_end(&mut got).await.unwrap();
            got
        });
        write_all_vectored(&mut io, &[b"head\r\n", window.as_ref(), b"tail"]).await;
        io.shutdown().await.unwrap();
        let got = reader.await.unwrap();

        let mut want = b"head\r\n".to_vec();
        want.extend_from_slice(&on_disk[4096..]);
        want.extend_from_slice(b"tail");
        assert_eq!(got.len(), want.len());
        assert!(got == want, "the window's bytes did not come from the file");
    }
}
