//! OCI image layout archives (a tar of `oci-layout`, `index.json` and
//! `blobs/sha256/<hex>`): what `dpx export` writes and `dpx import` reads, and
//! what `skopeo copy oci-archive:` and `podman load` understand. Blobs come
//! from and go to the cache through its own handles and writers.

mod export;
mod import;

pub use export::{ExportError, ExportSummary, export};
pub use import::{ImportSummary, import};

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

/// The annotation naming an image in index.json (the OCI image spec's).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's and `docker save`'s full image name; podman and docker read it.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Reads through to `inner`, hashing and counting; stops with an error once
/// `cancel` is set (Ctrl-C).
struct Hashing<'a, R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    cancel: &'a AtomicBool,
}

impl<'a, R: Read> Hashing<'a, R> {
    fn new(inner: R, cancel: &'a AtomicBool) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
            cancel,
        }
    }

    fn hex(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not ErrorKind::Interrupted: io::copy would retry that forever.
            return Err(io::Error::other("interrupted"));
        }
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}
