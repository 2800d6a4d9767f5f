//! Tag lists through the cache: fresh within the tag TTL -> the cached list,
//! no request; older -> the upstream's list (free on Docker Hub); upstream
//! down -> the last list, stale.

use std::time::Duration;

use super::{FetchError, Fetcher, Freshness};
use crate::cache::TagListRecord;

/// A repository's tags, in the upstream's order, and where they came from.
#[derive(Debug, Clone)]
pub struct ResolvedTagList {
    pub tags: Vec<String>,
    pub freshness: Freshness,
}

impl Fetcher {
    pub async fn tag_list(
        &self,
        registry: &str,
        repo: &str,
        ttl: Duration,
    ) -> Result<ResolvedTagList, FetchError> {
        let (r, p) = (registry.to_string(), repo.to_string());
        let cached = self
            .on_disk(move |cache| cache.read_tag_list(&r, &p))
            .await?;
        if let Some(record) = &cached
            && record.is_fresh(ttl)
        {
            return Ok(ResolvedTagList {
                tags: record.tags.clone(),
                freshness: Freshness::Cached,
            });
        }
        match self.client.list_tags(registry, repo).await {
            Ok(tags) => {
                let record = TagListRecord::new(tags);
                let tags = record.tags.clone();
                // The list is in hand: failing to keep it costs only a later request.
                let (r, p) = (registry.to_string(), repo.to_string());
                if let Err(e) = self
                    .on_disk(move |cache| cache.write_tag_list(&r, &p, &record))
                    .await
                {
                    tracing::warn!("{registry}/{repo}: tag list not kept in the cache: {e}");
                }
                Ok(ResolvedTagList {
                    tags,
                    freshness: Freshness::Fetched,
                })
            }
            Err(e) if e.is_upstream_failure() => match cached {
                Some(record) => {
                    tracing::warn!(
                        "{registry}/{repo}: upstream failed ({e}); serving the cached tag list"
                    );
                    Ok(ResolvedTagList {
                        tags: record.tags,
                        freshness: Freshness::Stale,
                    })
                }
                None => Err(e.into()),
            },
            Err(e) => Err(e.into()),
        }
    }
}
