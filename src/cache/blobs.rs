//! Writing blobs: temp file in `tmp/`, hashed while written, fsynced, verified,
//! renamed into place. Dropping an uncommitted writer deletes its temp file, so
//! an error, a panic or Ctrl-C leaves nothing half-written in the store.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::{Cache, CacheError};
use crate::reference::Digest;

pub struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    digest: Digest,
    expected_size: Option<u64>,
    /// The most bytes accepted when the exact size is not known.
    limit: Option<u64>,
    /// After a restart: how far the new body has matched what was written.
    replayed: Option<u64>,
    dest: PathBuf,
}

impl BlobWriter {
    pub fn create(
        cache: &Cache,
        digest: Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWriter, CacheError> {
        let dest = cache.blob_path(&digest);
        let file = cache
            .owned_temp(&format!("{}.", &digest.hex()[..12]))
            .map_err(|e| CacheError::write(&cache.tmp_dir(), e))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            digest,
            expected_size,
            limit: None,
            replayed: None,
            dest,
        })
    }

    /// Refuses more than `limit` bytes (for a blob of unknown size).
    pub fn with_limit(mut self, limit: u64) -> BlobWriter {
        self.limit = Some(limit);
        self
    }

    /// Where the bytes are being written; readers may follow it while it grows.
    pub fn temp_path(&self) -> &Path {
        self.file.path()
    }

    /// The sha256 (hex) of what was written so far.
    pub fn content_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// Bytes in the temp file; it never shrinks, so readers can trust it.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Where the upstream body should go on from: the end of the file, or
    /// during a restart's replay, how far the new body has got.
    pub fn resume_offset(&self) -> u64 {
        self.replayed.unwrap_or(self.written)
    }

    pub fn write(&mut self, data: &[u8]) -> Result<(), CacheError> {
        let data = self.replay(data)?;
        let after = self.written.saturating_add(data.len() as u64);
        if let Some(limit) = self.expected_size.or(self.limit)
            && after > limit
        {
            return Err(CacheError::TooLarge {
                what: format!("blob {}", self.digest),
                limit,
                exact: self.expected_size.is_some(),
            });
        }
        self.file
            .write_all(data)
            .map_err(|e| CacheError::write(&self.dest, e))?;
        self.hasher.update(data);
        self.written = after;
        Ok(())
    }

    /// Start over (the server ignored our Range request): the new body's
    /// first bytes are checked against those already written and skipped, so
    /// the file never shrinks under a reader that trusts its length.
    pub fn restart(&mut self) {
        if self.written > 0 {
            self.replayed = Some(0);
        }
    }

    /// Consumes the part of `data` that repeats bytes already written,
    /// checking it matches; returns the new part.
    fn replay<'a>(&mut self, data: &'a [u8]) -> Result<&'a [u8], CacheError> {
        use std::os::unix::fs::FileExt;
        let Some(at) = self.replayed else {
            return Ok(data);
        };
        let n = usize::try_from(self.written.saturating_sub(at))
            .unwrap_or(usize::MAX)
            .min(data.len());
        let mut old = vec![0; n];
        self.file
            .as_file()
            .read_exact_at(&mut old, at)
            .map_err(|source| CacheError::Read {
                path: self.file.path().to_path_buf(),
                source,
            })?;
        if old != data[..n] {
            return Err(CacheError::Diverged {
                what: format!("blob {}", self.digest),
                offset: at,
            });
        }
        let at = at.saturating_add(n as u64);
        self.replayed = (at < self.written).then_some(at);
        Ok(&data[n..])
    }

    /// Checks the size and digest of what was written.
    pub fn verify(&self) -> Result<(), CacheError> {
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
        let actual = Digest::from_hex(&self.content_hex())
            .map_err(|e| CacheError::UnsafePath(e.to_string()))?;
        if actual != self.digest {
            return Err(CacheError::DigestMismatch {
                what,
                expected: self.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Verify size and digest, make durable, and move into the store.
    pub fn commit(self) -> Result<PathBuf, CacheError> {
        self.verify()?;
        let dir = self
            .dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        fs::create_dir_all(&dir).map_err(|e| CacheError::write(&dir, e))?;
        crate::fsutil::commit(self.file, &self.dest)
            .map_err(|e| CacheError::write(&self.dest, e))?;
        super::purge::note_stored();
        Ok(self.dest)
    }
}

/// A `BlobWriter` on a blocking thread of its own, fed through a channel: the
/// download's disk writes and fsync stay off the async workers, with one
/// blocking task per download rather than one per chunk. Dropping it (say on
/// Ctrl-C) ends the thread, which drops the writer and its temp file.
pub struct BackgroundWriter {
    commands: mpsc::Sender<Command>,
    thread: Option<tokio::task::JoinHandle<Result<BlobWriter, CacheError>>>,
    temp: PathBuf,
}

enum Command {
    Write(Bytes),
    Restart,
    /// Answers with the resume offset once everything queued before it is written.
    ResumeOffset(oneshot::Sender<u64>),
}

impl BackgroundWriter {
    /// Starts the thread; `on_written` hears the byte count after every write.
    pub fn start(
        mut writer: BlobWriter,
        on_written: impl Fn(u64) + Send + 'static,
    ) -> BackgroundWriter {
        let temp = writer.temp_path().to_path_buf();
        // A few chunks of slack between the network and the disk.
        let (commands, mut rx) = mpsc::channel(16);
        let thread = tokio::task::spawn_blocking(move || {
            while let Some(command) = rx.blocking_recv() {
                match command {
                    Command::Write(data) => {
                        writer.write(&data)?;
                        on_written(writer.written());
                    }
                    Command::Restart => writer.restart(),
                    Command::ResumeOffset(reply) => {
                        let _ = reply.send(writer.resume_offset());
                    }
                }
            }
            Ok(writer)
        });
        BackgroundWriter {
            commands,
            thread: Some(thread),
            temp,
        }
    }

    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    pub async fn write(&mut self, data: Bytes) -> Result<(), CacheError> {
        if self.commands.send(Command::Write(data)).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// See `BlobWriter::restart`.
    pub async fn restart(&mut self) -> Result<(), CacheError> {
        if self.commands.send(Command::Restart).await.is_err() {
            return Err(self.failure().await);
        }
        Ok(())
    }

    /// `BlobWriter::resume_offset`, after every write queued so far.
    pub async fn resume_offset(&mut self) -> Result<u64, CacheError> {
        let (reply, answer) = oneshot::channel();
        if self
            .commands
            .send(Command::ResumeOffset(reply))
            .await
            .is_err()
        {
            return Err(self.failure().await);
        }
        match answer.await {
            Ok(n) => Ok(n),
            Err(_) => Err(self.failure().await),
        }
    }

    /// Writes what is queued, then verifies and stores the blob;
    /// `on_verified` hears (with the temp file's path) once the digest
    /// matches, before the fsync and rename.
    pub async fn commit(
        self,
        on_verified: impl FnOnce(&Path) + Send + 'static,
    ) -> Result<PathBuf, CacheError> {
        let BackgroundWriter {
            commands, thread, ..
        } = self;
        // Closing the channel lets the thread finish the queue and hand the writer back.
        drop(commands);
        let writer = join(thread).await?;
        tokio::task::spawn_blocking(move || {
            writer.verify()?;
            on_verified(writer.temp_path());
            writer.commit()
        })
        .await
        .map_err(|e| CacheError::Internal(e.to_string()))?
    }

    /// Why the thread stopped taking commands.
    async fn failure(&mut self) -> CacheError {
        match join(self.thread.take()).await {
            Err(e) => e,
            Ok(_) => CacheError::Internal("the blob writer stopped".into()),
        }
    }
}

async fn join(
    thread: Option<tokio::task::JoinHandle<Result<BlobWriter, CacheError>>>,
) -> Result<BlobWriter, CacheError> {
    match thread {
        Some(t) => t.await.map_err(|e| CacheError::Internal(e.to_string()))?,
        None => Err(CacheError::Internal("the blob writer stopped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cache::testing::temp_cache as cache;

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
    fn a_restart_skips_the_matching_prefix_and_never_shrinks_the_file() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello world");
        let mut w = BlobWriter::create(&cache, digest.clone(), Some(11)).unwrap();
        w.write(b"hello").unwrap();
        w.restart();
        w.write(b"hel").unwrap();
        assert_eq!(w.written(), 5, "the replayed prefix adds nothing");
        assert_eq!(
            w.resume_offset(),
            3,
            "a resumed body goes on with the replay"
        );
        assert_eq!(fs::metadata(w.temp_path()).unwrap().len(), 5);
        w.write(b"lo world").unwrap();
        assert_eq!(w.resume_offset(), 11);
        assert_eq!(w.written(), 11);
        w.commit().unwrap();
        assert_eq!(fs::read(cache.blob_path(&digest)).unwrap(), b"hello world");
    }

    #[test]
    fn a_restart_whose_bytes_differ_is_refused() {
        let (_d, cache) = cache();
        let mut w = BlobWriter::create(&cache, Digest::of(b"hello"), None).unwrap();
        w.write(b"hel").unwrap();
        w.restart();
        assert!(matches!(w.write(b"jel"), Err(CacheError::Diverged { .. })));
    }

    #[test]
    fn a_limit_caps_a_blob_of_unknown_size() {
        let (_d, cache) = cache();
        let mut w = BlobWriter::create(&cache, Digest::of(b"hello"), None)
            .unwrap()
            .with_limit(4);
        w.write(b"hell").unwrap();
        assert!(matches!(w.write(b"o"), Err(CacheError::TooLarge { .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_background_writer_stores_and_reports_progress() {
        let (_d, cache) = cache();
        let digest = Digest::of(b"hello");
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let seen2 = std::sync::Arc::clone(&seen);
        let w = BlobWriter::create(&cache, digest.clone(), Some(5)).unwrap();
        let mut bg = BackgroundWriter::start(w, move |n| {
            seen2.store(n, std::sync::atomic::Ordering::SeqCst)
        });
        bg.write(Bytes::from_static(b"hel")).await.unwrap();
        assert_eq!(bg.resume_offset().await.unwrap(), 3);
        assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 3);
        bg.write(Bytes::from_static(b"lo")).await.unwrap();
        let verified = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let heard = std::sync::Arc::clone(&verified);
        bg.commit(move |_| heard.store(true, std::sync::atomic::Ordering::SeqCst))
            .await
            .unwrap();
        assert!(verified.load(std::sync::atomic::Ordering::SeqCst));
        assert!(cache.has_blob(&digest));
        assert!(tmp_is_empty(&cache));
        // A failed write surfaces on the next call, and nothing is left behind.
        let w = BlobWriter::create(&cache, digest, Some(1)).unwrap();
        let mut bg = BackgroundWriter::start(w, |_| {});
        bg.write(Bytes::from_static(b"toolong")).await.unwrap();
        assert!(matches!(
            bg.resume_offset().await,
            Err(CacheError::TooLarge { .. })
        ));
        drop(bg);
        assert!(tmp_is_empty(&cache));
    }
}
