//! Manifests answered before they are on disk. A fetched manifest is verified
//! in memory (its digest, the size cap and its media type: the registry
//! client checks all three) and answered at once; writing it, its sidecar and
//! its tag record (each fsynced) runs beside the answer on a blocking thread,
//! as one job, so a shutdown that has begun it lets it finish. Until it is
//! written, this process's other clients are answered from the verified bytes
//! in memory, and the turn across processes (the lock file) stays held, so no
//! one fetches the manifest again meanwhile. Commands whose point is to fill
//! the cache (`require_stored`) still write before they go on.

use std::collections::HashMap;

use bytes::Bytes;

use crate::cache::{Cache, FileLock, TagRecord};
use crate::reference::Digest;
use crate::registry::FetchedManifest;

use super::manifests::{Freshness, ResolvedManifest};
use super::{FetchError, Fetcher};

/// What is answered and not yet written.
#[derive(Default)]
pub(super) struct Unwritten {
    /// digest -> (media type, verified bytes)
    manifests: HashMap<Digest, (String, Bytes)>,
    /// `registry/repo:tag` -> the digest its record will name
    tags: HashMap<String, Digest>,
    /// Turns across processes held until the digest is written.
    locks: HashMap<Digest, Vec<FileLock>>,
}

/// A tag whose record is written with its manifest.
pub(super) struct TagName<'a> {
    pub registry: &'a str,
    pub repo: &'a str,
    pub tag: &'a str,
}

impl TagName<'_> {
    fn key(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repo, self.tag)
    }
}

impl Fetcher {
    /// Caches a manifest just fetched (and the record of `tag`, when it was
    /// fetched by tag): behind the answer, or before it when the cache must
    /// hold it. `Ok(false)` when it could not be stored (a warning).
    pub(super) async fn keep_manifest(
        &self,
        registry: &str,
        repo: &str,
        tag: Option<&str>,
        m: &FetchedManifest,
    ) -> Result<(), FetchError> {
        let tag = tag.map(|tag| TagName {
            registry,
            repo,
            tag,
        });
        if self.must_store() || self.me.upgrade().is_none() {
            return self.store_now(registry, repo, tag, m).await;
        }
        self.write_behind(registry, repo, tag, m);
        Ok(())
    }

    /// The write on the response path: its failure is the fetch's error
    /// when the cache must hold what is fetched.
    async fn store_now(
        &self,
        registry: &str,
        repo: &str,
        tag: Option<TagName<'_>>,
        m: &FetchedManifest,
    ) -> Result<(), FetchError> {
        if !self.store_manifest(m).await? {
            return Ok(());
        }
        match tag {
            Some(t) => {
                let record = TagRecord::new(m.digest.clone());
                let (r, p, g) = (
                    t.registry.to_string(),
                    t.repo.to_string(),
                    t.tag.to_string(),
                );
                if let Err(e) = self
                    .on_disk(move |c| c.write_tag(&r, &p, &g, &record))
                    .await
                {
                    self.stored_or_warn(e, format!("{}: tag record not written", t.key()))?;
                }
            }
            None => self.record_heads_of(registry, repo, &m.digest).await,
        }
        Ok(())
    }

    /// Remembers the verified manifest and writes it on a blocking thread.
    fn write_behind(
        &self,
        registry: &str,
        repo: &str,
        tag: Option<TagName<'_>>,
        m: &FetchedManifest,
    ) {
        let Some(this) = self.me.upgrade() else {
            return;
        };
        // The tags whose records this write makes: the one fetched, or those
        // an upstream HEAD said name this digest (an engine HEADs a tag,
        // then GETs its digest). Answered from memory until written.
        let records = match &tag {
            Some(t) => vec![(t.tag.to_string(), TagRecord::new(m.digest.clone()))],
            None => self.heads_naming(registry, repo, &m.digest),
        };
        let keys: Vec<String> = records
            .iter()
            .map(|(t, _)| format!("{registry}/{repo}:{t}"))
            .collect();
        if let Ok(mut u) = self.unwritten.lock() {
            u.manifests
                .insert(m.digest.clone(), (m.media_type.clone(), m.bytes.clone()));
            for key in &keys {
                u.tags.insert(key.clone(), m.digest.clone());
            }
        }
        let (registry, repo) = (registry.to_string(), repo.to_string());
        let (digest, media_type, bytes) = (m.digest.clone(), m.media_type.clone(), m.bytes.clone());
        // Not awaited: the client has its answer. One blocking job writes all.
        drop(tokio::task::spawn_blocking(move || {
            this.write_now(&registry, &repo, records, &digest, &media_type, &bytes);
            if let Ok(mut u) = this.unwritten.lock() {
                u.manifests.remove(&digest);
                for key in &keys {
                    if u.tags.get(key) == Some(&digest) {
                        u.tags.remove(key);
                    }
                }
                // Dropping the locks lets other processes take their turn.
                u.locks.remove(&digest);
            }
        }));
    }

    /// The writes themselves (on a blocking thread); a failure is a
    /// warning: the next request fetches the manifest again.
    fn write_now(
        &self,
        registry: &str,
        repo: &str,
        records: Vec<(String, TagRecord)>,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) {
        let cache: &Cache = &self.cache;
        if let Err(e) = cache.put_manifest(digest, media_type, bytes) {
            tracing::warn!("manifest {digest} not cached: {e}");
            return;
        }
        for (tag, record) in records {
            if let Err(e) = cache.write_tag(registry, repo, &tag, &record) {
                tracing::warn!("{registry}/{repo}:{tag}: tag record not written: {e}");
            }
        }
    }

    /// Keeps this process's turn across processes for `digest` until the
    /// manifest is written (at once when it already is).
    pub(super) fn hold_until_written(&self, digest: &Digest, lock: FileLock) {
        if let Ok(mut u) = self.unwritten.lock()
            && u.manifests.contains_key(digest)
        {
            u.locks.entry(digest.clone()).or_default().push(lock);
        }
    }

    /// A manifest answered and not yet written.
    pub(super) fn unwritten_manifest(&self, digest: &Digest) -> Option<ResolvedManifest> {
        let u = self.unwritten.lock().ok()?;
        let (media_type, bytes) = u.manifests.get(digest)?;
        Some(ResolvedManifest {
            digest: digest.clone(),
            media_type: media_type.clone(),
            bytes: bytes.clone(),
            freshness: Freshness::Cached,
        })
    }

    /// A tag fetched and answered whose record is not yet written, with its
    /// manifest.
    pub(super) fn unwritten_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Option<(TagRecord, ResolvedManifest)> {
        let digest = {
            let unwritten = self.unwritten.lock().ok()?;
            // Mostly empty: a cached tag's request should not pay for the key.
            if unwritten.tags.is_empty() {
                return None;
            }
            unwritten
                .tags
                .get(&format!("{registry}/{repo}:{tag}"))?
                .clone()
        };
        let m = self.unwritten_manifest(&digest)?;
        Some((TagRecord::new(digest), m))
    }
}
