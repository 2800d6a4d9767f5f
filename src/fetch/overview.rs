//! What the status page shows, gathered on request: the cached images and
//! their sizes, the pull counts per hour, the downloads under way, and how
//! each upstream last answered. Nothing here runs on the request path of a
//! pull except `Contacts`' notes (a lock and a map insert per upstream reply).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::UNIX_EPOCH;

use serde::Serialize;

use crate::cache::{PullStats, now_secs};

use super::{BlobState, FetchError, Fetcher};

/// The last contact with each upstream registry, as this process saw it.
#[derive(Default)]
pub(super) struct Contacts(Mutex<HashMap<String, Contact>>);

/// How an upstream registry last answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub registry: String,
    /// Unix seconds.
    pub at: u64,
    /// The HTTP status it answered, or `None` when no answer came.
    pub status: Option<u16>,
    /// Whether the answer was one of a working registry (not a 5xx, nor none).
    pub answers: bool,
    /// Why there was no good answer, when there was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

impl Contacts {
    /// An upstream reply came (any status: a 404 is a working registry).
    pub(super) fn replied(&self, registry: &str, status: u16) {
        let failing = status >= 500;
        self.note(Contact {
            registry: registry.to_string(),
            at: now_secs(),
            status: Some(status),
            answers: !failing,
            problem: failing.then(|| format!("answered HTTP {status}")),
        });
    }

    /// A request found no upstream to answer it (unreachable, cut off).
    pub(super) fn failed(&self, registry: &str, problem: String) {
        self.note(Contact {
            registry: registry.to_string(),
            at: now_secs(),
            status: None,
            answers: false,
            problem: Some(problem),
        });
    }

    fn note(&self, contact: Contact) {
        if let Ok(mut map) = self.0.lock() {
            map.insert(contact.registry.clone(), contact);
        }
    }

    fn all(&self) -> Vec<Contact> {
        let mut all: Vec<Contact> = self
            .0
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| a.registry.cmp(&b.registry));
        all
    }
}

/// One cached image (a tag), as `dpx cache ls` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CachedImage {
    pub registry: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub platforms: Vec<String>,
    pub size: u64,
    pub complete: bool,
    /// Unix seconds of the last use recorded on disk.
    pub last_used: u64,
}

/// The cache's content and its size against `[cache] max_size`.
#[derive(Debug, Clone, Serialize)]
pub struct CacheOverview {
    /// Bytes of all stored content, shared blobs counted once.
    pub size: u64,
    pub blobs: usize,
    /// `None`: no eviction.
    pub max_size: Option<u64>,
    pub images: Vec<CachedImage>,
}

/// A blob download under way in this process.
#[derive(Debug, Clone, Serialize)]
pub struct Download {
    pub digest: String,
    /// `registry/repository` it is fetched through.
    pub image: String,
    /// Bytes stored so far (0 while waiting for another process).
    pub received: u64,
    pub total: Option<u64>,
    /// Waiting for another dpx process downloading the same blob.
    pub queued: bool,
}

impl Fetcher {
    /// Notes that `registry` gave no usable answer (for the status page).
    pub(super) fn note_upstream_failure(&self, registry: &str, e: &FetchError) {
        if e.kind() == super::ErrorKind::Unavailable {
            self.contacts.failed(registry, e.to_string());
        }
    }

    /// How each upstream registry last answered this process.
    pub fn upstream_contacts(&self) -> Vec<Contact> {
        self.contacts.all()
    }

    /// Walks the cache (off the async workers): every cached image, and the
    /// cache's size against the `max_size` the evictor keeps.
    pub async fn cache_overview(&self) -> Result<CacheOverview, FetchError> {
        let max_size = self.max_size.get().copied();
        self.on_disk(move |cache| {
            let inv = cache.inventory()?;
            let images = inv
                .images(cache)
                .into_iter()
                .map(|i| CachedImage {
                    registry: i.registry,
                    repository: i.repository,
                    tag: i.tag,
                    digest: i.digest.to_string(),
                    platforms: i.platforms,
                    size: i.size,
                    complete: i.complete,
                    last_used: i.used.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                })
                .collect();
            Ok(CacheOverview {
                size: inv.total_size(),
                blobs: inv.blobs.len(),
                max_size,
                images,
            })
        })
        .await
    }

    /// The pull counts of every process on the cache, with this process's
    /// unwritten ones added to the current hour (read off the async workers).
    pub async fn pull_history(&self) -> Result<PullStats, FetchError> {
        let mut stats = self.on_disk(|c| c.read_pull_stats()).await?;
        let unwritten = self.quota.unwritten_counts();
        let now = now_secs();
        if !unwritten.is_zero() {
            stats.add_at(&unwritten, now);
        }
        stats.keep_recent(now);
        Ok(stats)
    }

    /// The blob downloads under way in this process.
    pub fn downloads(&self) -> Vec<Download> {
        let Ok(inflight) = self.inflight.lock() else {
            return Vec::new();
        };
        let mut all: Vec<Download> = inflight
            .iter()
            .filter_map(|(digest, entry)| {
                let (received, total, queued) = match &*entry.rx.borrow() {
                    BlobState::Queued => (0, None, true),
                    BlobState::Downloading { written, total, .. } => (*written, *total, false),
                    BlobState::Verified { total, .. } => (*total, Some(*total), false),
                    BlobState::Done | BlobState::Failed(_) => return None,
                };
                Some(Download {
                    digest: digest.to_string(),
                    image: entry.through.clone(),
                    received,
                    total,
                    queued,
                })
            })
            .collect();
        all.sort_by(|a, b| a.digest.cmp(&b.digest));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_contact_per_registry_wins() {
        let contacts = Contacts::default();
        contacts.replied("docker.io", 200);
        contacts.failed("ghcr.io", "cannot reach ghcr.io".into());
        contacts.replied("ghcr.io", 503);
        let all = contacts.all();
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].answers, all[0].status), (true, Some(200)));
        assert_eq!((all[1].answers, all[1].status), (false, Some(503)));
        contacts.failed("docker.io", "cannot reach".into());
        assert!(!contacts.all()[0].answers);
        assert_eq!(contacts.all()[0].problem.as_deref(), Some("cannot reach"));
    }
}
