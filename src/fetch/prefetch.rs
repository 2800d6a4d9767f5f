//! Prefetch: when `serve` answers an image manifest it has just fetched, it
//! knows every blob the client asks for next, and starts fetching the config
//! and the layers it does not hold, a few streams at a time, through the same
//! single-flight downloads the client's GETs join (nothing is fetched twice).
//!
//! Order: the config, then the layers from the last to the first. A client
//! fetches from the front (engines: 3 at a time), so the two meet in the
//! middle: up to twice the client's streams run upstream, and neither waits
//! on a blob the other is already fetching.
//!
//! When it stops: a prefetch goes on while its image has a client, that is
//! while a client is receiving one of the image's blobs, or asked for one
//! (or finished receiving one) within the last `PREFETCH_GRACE`, counted from
//! the manifest's answer at first. Then it starts nothing more, and the
//! downloads it started that no client joined are abandoned (their temp
//! files go with them); those a client joined go on as that client's. A
//! manifest only inspected (an index, a HEAD, a cached manifest) starts none.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::watch;

use crate::oci::Manifest;
use crate::reference::Digest;

use super::blobs::{Asker, BlobFetch, BlobState, wait_blob};
use super::{Fetcher, Freshness, ResolvedManifest};

/// Downloads one prefetch runs at once (engines pull 3 layers at a time).
const PREFETCH_STREAMS: usize = 3;
/// How long a prefetch goes on without a client asking for its image's blobs.
const PREFETCH_GRACE: Duration = Duration::from_secs(3);
/// How often a prefetch looks whether its image still has a client.
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// One image's prefetch, and the clients that want its blobs.
pub(super) struct Prefetch {
    manifest: Digest,
    blobs: Vec<Digest>,
    /// Client responses of its blobs now open.
    receiving: AtomicUsize,
    /// When a client last asked for, or finished receiving, one of its blobs.
    last_wanted: Mutex<Instant>,
}

impl Prefetch {
    fn wanted(&self) -> bool {
        self.receiving.load(Ordering::SeqCst) > 0
            || self
                .last_wanted
                .lock()
                .is_ok_and(|at| at.elapsed() < PREFETCH_GRACE)
    }

    fn touch(&self) {
        if let Ok(mut at) = self.last_wanted.lock() {
            *at = Instant::now();
        }
    }
}

/// A client's request of a blob, kept while its response is open: the
/// prefetches of images naming the blob go on meanwhile.
pub struct Interest(Vec<Arc<Prefetch>>);

impl Drop for Interest {
    fn drop(&mut self) {
        for p in &self.0 {
            p.receiving.fetch_sub(1, Ordering::SeqCst);
            p.touch();
        }
    }
}

impl Fetcher {
    /// Notes a client's request of a blob; hold the answer until its
    /// response is done.
    pub fn client_interest(&self, digest: &Digest) -> Interest {
        let wanting: Vec<Arc<Prefetch>> = match self.prefetches.lock() {
            Ok(all) => all
                .iter()
                .filter(|p| p.blobs.contains(digest))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        for p in &wanting {
            p.receiving.fetch_add(1, Ordering::SeqCst);
            p.touch();
        }
        Interest(wanting)
    }

    /// Starts prefetching the blobs of `m` when it is an image manifest just
    /// fetched from upstream (see the module's comment); returns at once.
    pub fn prefetch_image(&self, registry: &str, repo: &str, m: &ResolvedManifest) {
        if m.freshness != Freshness::Fetched {
            return;
        }
        let Ok(Manifest::Image(image)) = Manifest::parse(&m.media_type, &m.bytes) else {
            return;
        };
        let Some(this) = self.me.upgrade() else {
            return;
        };
        let layers = image.layers().iter().rev();
        let order: Vec<(Digest, u64)> = std::iter::once(image.config())
            .chain(layers)
            .filter_map(|d| Some((d.digest().to_string().parse().ok()?, d.size())))
            .collect();
        let job = Arc::new(Prefetch {
            manifest: m.digest.clone(),
            blobs: order.iter().map(|(d, _)| d.clone()).collect(),
            receiving: AtomicUsize::new(0),
            last_wanted: Mutex::new(Instant::now()),
        });
        match self.prefetches.lock() {
            // One prefetch per image at a time: another client's joins it.
            Ok(mut all) if !all.iter().any(|p| p.manifest == m.digest) => {
                all.push(Arc::clone(&job));
            }
            _ => return,
        }
        let (registry, repo) = (registry.to_string(), repo.to_string());
        tokio::spawn(async move {
            this.run_prefetch(&registry, &repo, &job, order).await;
            if let Ok(mut all) = this.prefetches.lock() {
                all.retain(|p| !Arc::ptr_eq(p, &job));
            }
        });
    }

    async fn run_prefetch(
        self: &Arc<Self>,
        registry: &str,
        repo: &str,
        job: &Prefetch,
        order: Vec<(Digest, u64)>,
    ) {
        let mut queue = order.into_iter();
        let mut started: Vec<(Digest, watch::Receiver<BlobState>)> = Vec::new();
        let mut running = FuturesUnordered::new();
        let mut watch = tokio::time::interval(WATCH_EVERY);
        loop {
            while running.len() < PREFETCH_STREAMS && job.wanted() {
                let Some((digest, size)) = queue.next() else {
                    break;
                };
                let fetch = self
                    .blob_for(registry, repo, &digest, Some(size), Asker::Prefetch)
                    .await;
                if let BlobFetch::InFlight(rx) = fetch {
                    started.push((digest, rx.clone()));
                    running.push(wait_blob(rx));
                }
            }
            if running.is_empty() {
                return;
            }
            tokio::select! {
                done = running.next() => {
                    if let Some(Err(e)) = done {
                        tracing::debug!("prefetch of {}: {e}", job.manifest);
                    }
                }
                _ = watch.tick() => {
                    if !job.wanted() {
                        let abandoned = started
                            .iter()
                            .filter(|(digest, rx)| self.abandon(digest, rx))
                            .count();
                        tracing::info!(
                            "prefetch of {}: no client wants it; {abandoned} download(s) abandoned",
                            job.manifest
                        );
                        return;
                    }
                }
            }
        }
    }
}
