//! The pull quota as the fetches spend it: whom a request counts against,
//! leave for each manifest GET, and the hold after a 429 (one probe across
//! processes). The figures themselves are `quota.rs`.

use crate::reference::Target;
use crate::registry::FetchedManifest;

use super::quota;
use super::{FetchError, Fetcher};

/// Manifest GETs and a hold after a 429 (`Fetcher::hold_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoldState {
    /// No hold: GETs may go.
    Free,
    /// Held, and this request sends the one probe.
    ProbeNow,
    /// Held; the next probe is not yet due, or another sends it.
    Held,
}

impl Fetcher {
    /// Whom requests to `registry` count against before any reply says: the
    /// account dpx asks as.
    pub(super) fn account(&self, registry: &str) -> String {
        self.client
            .account(registry)
            .unwrap_or_else(|| quota::ANONYMOUS.to_string())
    }

    /// Leave to send one manifest GET (a pull on Docker Hub), held while it
    /// runs. During a hold, a due probe (a HEAD of the wanted manifest, free)
    /// is sent first: quota it shows lifts the hold.
    pub(super) async fn take_pull(
        &self,
        registry: &str,
        account: &str,
        repo: &str,
        target: &Target,
    ) -> Result<quota::PullTicket<'_>, FetchError> {
        if self.hold_state(registry, account).await == HoldState::ProbeNow {
            let probe = self.client.head_manifest(registry, repo, target).await;
            if let Err(e) = probe {
                tracing::debug!("{registry}: the quota probe failed ({e}); the hold stays");
            }
            self.write_hold_changes().await;
        }
        Ok(self.quota.take_pull(registry, account)?)
    }

    /// Whether manifest GETs to `registry` as `account` are held back after
    /// a 429, read from the cache's record (another process may have lifted
    /// it); when a probe is due, claims it there, so one process probes.
    pub(super) async fn hold_state(&self, registry: &str, account: &str) -> HoldState {
        self.load_quota().await;
        if self.quota.hold(registry, account).is_none() {
            return HoldState::Free;
        }
        let (r, a, backoff) = (
            registry.to_string(),
            account.to_string(),
            self.quota.probe_backoff(),
        );
        let claimed = self
            .on_disk(move |c| {
                c.update_quota_seen(|figures| {
                    quota::claim_probe(figures, &r, &a, crate::cache::now_secs(), backoff)
                })
            })
            .await;
        match claimed {
            Ok((claimed, recorded)) => {
                self.quota.absorb(recorded);
                match (claimed, self.quota.hold(registry, account)) {
                    (_, None) => HoldState::Free,
                    (Some(hold), Some(_)) => {
                        tracing::info!(
                            "{registry}: probing whether pull quota is back (a free manifest HEAD); the next probe is not before {}",
                            quota::rfc3339(hold.next_probe_at)
                        );
                        HoldState::ProbeNow
                    }
                    (None, Some(_)) => HoldState::Held,
                }
            }
            Err(e) => {
                tracing::debug!("the quota record cannot be read: {e}");
                HoldState::Held
            }
        }
    }

    /// One manifest GET upstream (a pull on Docker Hub), with leave from the
    /// quota for as long as it runs; a hold it begins or lifts is written at
    /// once, and its bytes are counted for `/metrics`.
    pub(super) async fn get_manifest_upstream(
        &self,
        registry: &str,
        repo: &str,
        target: &Target,
    ) -> Result<FetchedManifest, FetchError> {
        let account = self.account(registry);
        let _pull = self.take_pull(registry, &account, repo, target).await?;
        let m = self.client.get_manifest(registry, repo, target).await;
        self.write_hold_changes().await;
        let m = m?;
        self.metrics
            .upstream_bytes(crate::metrics::Body::Manifest, m.bytes.len() as u64);
        Ok(m)
    }

    /// Writes a hold begun or lifted here at once, for the other processes.
    pub(super) async fn write_hold_changes(&self) {
        if self.quota.take_hold_changed() {
            self.flush_quota().await;
        }
    }
}
