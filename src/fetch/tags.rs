//! Tags: fresh within the TTL -> cache, no request; older -> HEAD (free on
//! Docker Hub), GET only when the digest moved; upstream down -> stale cache.
//! One check per tag at a time, whose outcome answers the clients that waited.

use std::time::{Duration, Instant};

use crate::cache::{LockKey, TagRecord};
use crate::reference::{Digest, Target};
use crate::registry::RegistryError;

use super::holds::HoldState;
use super::{FetchError, Fetcher, Freshness, QuotaStop, ResolvedManifest, Spare};

/// What a client's HEAD of a tag is answered with.
#[derive(Debug, Clone)]
pub enum TagHead {
    /// The manifest itself (cached, or fetched): a GET's headers.
    Manifest(ResolvedManifest),
    /// An uncached tag, as the upstream's HEAD described it: what a GET
    /// would send, without the pull a GET costs.
    Upstream(HeadOnly),
}

/// A manifest's headers, from an upstream HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadOnly {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
}

impl HeadOnly {
    /// `None` unless the HEAD said everything a client's HEAD needs, of a
    /// manifest dpx could fetch and serve.
    fn from_head(head: crate::registry::ManifestHead) -> Option<HeadOnly> {
        let media_type = head
            .media_type
            .filter(|t| crate::oci::is_manifest_type(t))?;
        let size = head
            .size
            .filter(|n| *n <= crate::oci::MAX_MANIFEST_BYTES as u64)?;
        Some(HeadOnly {
            digest: head.digest?,
            media_type,
            size,
        })
    }
}

/// How an upstream check of a tag ended, for the clients that waited on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckOutcome {
    Succeeded,
    /// The cached copy was served, marked this way.
    Failed(Freshness),
}

/// Check results older than this can answer no waiting client any more.
pub(super) const CHECK_MEMORY: Duration = Duration::from_secs(10 * 60);
/// Upstream HEADs of uncached tags remembered; beyond it the table starts over.
pub(super) const MAX_KNOWN_HEADS: usize = 10_000;

impl Fetcher {
    /// A tag's manifest, following the TTL / HEAD / stale rules.
    pub async fn manifest_by_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
    ) -> Result<ResolvedManifest, FetchError> {
        let arrived = Instant::now();
        let before = self.cached_tag_record(registry, repo, tag).await?;
        self.manifest_by_tag_from(registry, repo, tag, ttl, arrived, before)
            .await
    }

    /// [`Fetcher::manifest_by_tag`] once the tag's cached record (`before`,
    /// read when the request `arrived`) is known.
    async fn manifest_by_tag_from(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
        arrived: Instant,
        before: Option<(TagRecord, ResolvedManifest)>,
    ) -> Result<ResolvedManifest, FetchError> {
        if let Some((record, fresh)) = &before
            && record.is_fresh(ttl)
        {
            self.cache.record_tag_use(registry, repo, tag);
            return Ok(self.noted(registry, repo, fresh.clone()).await);
        }
        // One upstream check per tag at a time: a burst of pulls of a stale or
        // cold tag costs one HEAD or GET, not one per client.
        let name = format!("{registry}/{repo}:{tag}");
        let key = LockKey::Tag(name.clone());
        // Boxed: the upstream check's state is large, and a future is copied
        // whole each time it moves; the fresh path above stays small.
        let result = Box::pin(self.in_turn(&key, async {
            match self.check_finished_since(&name, arrived) {
                // The check of the client ahead of us answers for us too,
                // success or failure: no client waits out the same outage twice.
                Some(outcome) => match self.cached_tag_record(registry, repo, tag).await? {
                    Some((_, m)) => match outcome {
                        CheckOutcome::Failed(freshness) => Ok(ResolvedManifest { freshness, ..m }),
                        CheckOutcome::Succeeded => Ok(m),
                    },
                    None => self.check_tag(registry, repo, tag, None).await,
                },
                None => {
                    let result = self
                        .check_tag_in_turn(registry, repo, tag, &key, before)
                        .await;
                    let outcome = match &result {
                        Ok(m) if m.freshness.is_stale() => CheckOutcome::Failed(m.freshness),
                        Ok(_) => CheckOutcome::Succeeded,
                        Err(e) => {
                            self.note_upstream_failure(registry, e);
                            CheckOutcome::Failed(Freshness::Stale)
                        }
                    };
                    self.note_check(&name, outcome);
                    result
                }
            }
        }))
        .await;
        self.cache.record_tag_use(registry, repo, tag);
        Ok(self.noted(registry, repo, result?).await)
    }

    /// Answers a client's HEAD of a tag. A cached tag follows the GET's
    /// rules; an uncached one is answered from a HEAD upstream (free on Docker
    /// Hub, where a GET is a pull), remembered for the tag TTL, without
    /// fetching the manifest: the next GET fetches and verifies it.
    pub async fn head_by_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        ttl: Duration,
    ) -> Result<TagHead, FetchError> {
        let by_get = || async {
            Ok(TagHead::Manifest(
                self.manifest_by_tag(registry, repo, tag, ttl).await?,
            ))
        };
        let arrived = Instant::now();
        if let Some(cached) = self.cached_tag_record(registry, repo, tag).await? {
            // Read once: the GET's rules start from the same record.
            let m = self
                .manifest_by_tag_from(registry, repo, tag, ttl, arrived, Some(cached))
                .await?;
            return Ok(TagHead::Manifest(m));
        }
        let name = format!("{registry}/{repo}:{tag}");
        if let Some(known) = self.remembered_head(&name, ttl) {
            return Ok(TagHead::Upstream(known));
        }
        let target = Target::Tag(tag.to_string());
        // Boxed: a cached tag's answer above should not carry this state.
        let head = match Box::pin(self.client.head_manifest(registry, repo, &target)).await {
            Ok(Some(head)) => head,
            Ok(None) => {
                return Err(RegistryError::NotFound {
                    what: format!("manifest {repo}:{tag}"),
                    url: self.client.api_url(registry, repo, "manifests", tag),
                }
                .into());
            }
            // A HEAD refused for what it is (405, 400): the GET tells.
            Err(RegistryError::Status { status, .. }) if status < 500 => return by_get().await,
            Err(e) => return Err(e.into()),
        };
        let Some(known) = HeadOnly::from_head(head) else {
            // No digest, size or manifest type said: only a GET tells.
            return by_get().await;
        };
        if let Some(cached) = self.cached_manifest(&known.digest).await? {
            // Cached under another name: the tag's record is all that was missing.
            let record = TagRecord::new(known.digest.clone());
            self.write_tag_best_effort(registry, repo, tag, record)
                .await;
            self.restore_if_purged(&cached).await?;
        } else if let Ok(mut heads) = self.heads.lock() {
            if heads.len() >= MAX_KNOWN_HEADS {
                heads.clear();
            }
            heads.insert(name, (Instant::now(), known.clone()));
        }
        Ok(TagHead::Upstream(known))
    }

    /// Writes the records of the tags whose upstream HEAD named `digest`,
    /// now that their manifest is cached (an engine HEADs a tag, then GETs
    /// its digest): the tags are then as cached as a GET of them leaves them.
    pub(super) async fn record_heads_of(&self, registry: &str, repo: &str, digest: &Digest) {
        for (tag, record) in self.heads_naming(registry, repo, digest) {
            self.write_tag_best_effort(registry, repo, &tag, record)
                .await;
        }
    }

    /// The tags whose upstream HEAD named `digest`, taken from the table,
    /// each with the record it gets now that its manifest is cached.
    pub(super) fn heads_naming(
        &self,
        registry: &str,
        repo: &str,
        digest: &Digest,
    ) -> Vec<(String, TagRecord)> {
        let prefix = format!("{registry}/{repo}:");
        let named: Vec<(String, Duration)> = match self.heads.lock() {
            Ok(mut heads) => {
                let named: Vec<(String, Duration)> = heads
                    .iter()
                    .filter(|(name, (_, h))| name.starts_with(&prefix) && h.digest == *digest)
                    .map(|(name, (at, _))| (name.clone(), at.elapsed()))
                    .collect();
                for (name, _) in &named {
                    heads.remove(name);
                }
                named
            }
            Err(_) => return Vec::new(),
        };
        named
            .into_iter()
            .map(|(name, age)| {
                let mut record = TagRecord::new(digest.clone());
                // Checked when the HEAD was answered, not now.
                record.checked_at = record.checked_at.saturating_sub(age.as_secs());
                (name[prefix.len()..].to_string(), record)
            })
            .collect()
    }

    /// An upstream HEAD's answer for `name` younger than `ttl`.
    pub(super) fn remembered_head(&self, name: &str, ttl: Duration) -> Option<HeadOnly> {
        let heads = self.heads.lock().ok()?;
        let (at, known) = heads.get(name)?;
        (at.elapsed() < ttl).then(|| known.clone())
    }

    /// Checks a tag upstream in this process's turn across processes. When
    /// another process checked it while we waited, its answer is ours; when
    /// that process is stuck, the cached copy (`before`) beats an error.
    pub(super) async fn check_tag_in_turn(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        key: &LockKey,
        before: Option<(TagRecord, ResolvedManifest)>,
    ) -> Result<ResolvedManifest, FetchError> {
        let doing = format!("checking tag {registry}/{repo}:{tag} upstream");
        let error = match self.process_turn(key.clone(), &doing).await {
            // The lock is held until the check is done.
            Ok((lock, waited)) => {
                // Read again in our turn (one read, handed to the check).
                let current = self.cached_tag_record(registry, repo, tag).await?;
                if waited
                    && let Some((record, m)) = &current
                    && before.as_ref().is_none_or(|(old, _)| old != record)
                {
                    return Ok(m.clone());
                }
                let checked = self.check_tag(registry, repo, tag, current).await;
                // A fetched manifest written behind its answer keeps the turn
                // until it is on disk.
                if let Ok(m) = &checked {
                    self.hold_until_written(&m.digest, lock);
                }
                return checked;
            }
            Err(e) => e,
        };
        match before {
            Some((_, m)) if error.is_stalled() => {
                tracing::warn!("{error}; serving the cached manifest");
                Ok(ResolvedManifest {
                    freshness: Freshness::Stale,
                    ..m
                })
            }
            _ => Err(error),
        }
    }

    /// Whether a check of `key` finished after `since`, and how.
    pub(super) fn check_finished_since(&self, key: &str, since: Instant) -> Option<CheckOutcome> {
        let checks = self.last_checks.lock().ok()?;
        checks
            .get(key)
            .filter(|(at, _)| *at >= since)
            .map(|(_, outcome)| *outcome)
    }

    pub(super) fn note_check(&self, key: &str, outcome: CheckOutcome) {
        if let Ok(mut checks) = self.last_checks.lock() {
            // Only clients waiting for a turn read these; old ones serve nobody.
            checks.retain(|_, (at, _)| at.elapsed() < CHECK_MEMORY);
            checks.insert(key.to_string(), (Instant::now(), outcome));
        }
    }

    /// A tag's record and its manifest, when both are in the cache: from
    /// the cache's hot set when neither file changed, else read from disk.
    pub(super) async fn cached_tag_record(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<Option<(TagRecord, ResolvedManifest)>, FetchError> {
        // Answered, and not yet written: the verified bytes in memory.
        if let Some(found) = self.unwritten_tag(registry, repo, tag) {
            return Ok(Some(found));
        }
        let found = match self.cache.hot_tag(registry, repo, tag) {
            Some(hot) => Some(hot),
            None => {
                let (registry, repo, tag) =
                    (registry.to_string(), repo.to_string(), tag.to_string());
                self.on_disk(move |c| c.read_tag_and_manifest(&registry, &repo, &tag))
                    .await?
            }
        };
        Ok(found.map(|t| {
            let manifest = ResolvedManifest {
                digest: t.record.digest.clone(),
                media_type: t.media_type,
                bytes: t.manifest,
                freshness: Freshness::Cached,
            };
            (t.record, manifest)
        }))
    }

    /// Asks upstream about a tag that is stale or not cached: HEAD when we have
    /// it (free on Docker Hub), GET when it is new or moved, stale on outage.
    /// `current` is the tag's cache entry as read in this check's turn.
    pub(super) async fn check_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        current: Option<(TagRecord, ResolvedManifest)>,
    ) -> Result<ResolvedManifest, FetchError> {
        let Some((mut record, cached)) = current else {
            return self.fetch_tag(registry, repo, tag).await;
        };
        let stale = |e: &RegistryError| {
            if e.is_upstream_failure() {
                self.contacts.failed(registry, e.to_string());
            }
            tracing::debug!(
                "{registry}/{repo}:{tag}: upstream failed ({e}); serving the cached manifest"
            );
            // A 429 is the quota speaking, not an outage.
            let freshness = match e {
                RegistryError::RateLimited { .. } => Freshness::Spared(Spare::RateLimited),
                _ => Freshness::Stale,
            };
            Ok(ResolvedManifest {
                freshness,
                ..cached.clone()
            })
        };
        let spared = |spare: Spare| {
            tracing::info!(
                "{registry}/{repo}:{tag}: served the cached manifest without asking upstream for it ({})",
                spare.as_str()
            );
            Ok(ResolvedManifest {
                freshness: Freshness::Spared(spare),
                ..cached.clone()
            })
        };
        let account = self.account(registry);
        // Held after a 429: served as cached, unless the probe is due: then
        // the HEAD below is the probe.
        if self.hold_state(registry, &account).await == HoldState::Held {
            return spared(Spare::RateLimited);
        }
        let target = Target::Tag(tag.to_string());
        let head = self.client.head_manifest(registry, repo, &target).await;
        self.write_hold_changes().await;
        match head {
            Ok(Some(head)) if head.digest.as_ref() == Some(&record.digest) => {
                record.checked_at = crate::cache::now_secs();
                self.write_tag_best_effort(registry, repo, tag, record)
                    .await;
                self.restore_if_purged(&cached).await?;
                Ok(ResolvedManifest {
                    freshness: Freshness::Revalidated,
                    ..cached
                })
            }
            // Gone upstream: the GET says so (or the pause answers).
            Ok(None) => match self.fetch_tag(registry, repo, tag).await {
                Err(FetchError::Registry(e)) if e.is_upstream_failure() => stale(&e),
                Err(FetchError::Quota(QuotaStop::Held { .. })) => spared(Spare::RateLimited),
                other => other,
            },
            // Moved (or no digest said): the GET is a pull. The HEAD's reply
            // has just told the remaining quota.
            Ok(Some(_)) => match self.quota.spare_tag(registry, &account) {
                Some(spare) => spared(spare),
                None => match self.fetch_tag(registry, repo, tag).await {
                    Err(FetchError::Registry(e)) if e.is_upstream_failure() => stale(&e),
                    Err(FetchError::Quota(QuotaStop::Held { .. })) => spared(Spare::RateLimited),
                    other => other,
                },
            },
            Err(e) if e.is_upstream_failure() => stale(&e),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn fetch_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> Result<ResolvedManifest, FetchError> {
        let target = Target::Tag(tag.to_string());
        let m = self.get_manifest_upstream(registry, repo, &target).await?;
        self.keep_manifest(registry, repo, Some(tag), &m).await?;
        Ok(ResolvedManifest {
            digest: m.digest,
            media_type: m.media_type,
            bytes: m.bytes,
            freshness: Freshness::Fetched,
        })
    }

    /// Records a tag check of a cached manifest. Best effort: a record that
    /// could not be written only means asking again next time.
    pub(super) async fn write_tag_best_effort(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
        record: TagRecord,
    ) {
        let (r, p, t) = (registry.to_string(), repo.to_string(), tag.to_string());
        if let Err(e) = self
            .on_disk(move |c| c.write_tag(&r, &p, &t, &record))
            .await
        {
            tracing::warn!("{registry}/{repo}:{tag}: tag record not updated: {e}");
        }
    }
}
