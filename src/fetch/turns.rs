//! Turns: one upstream check of a tag or fetch of a digest at a time, inside
//! this process (an async mutex per key) and across processes (a lock file).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{FileLock, LockHolder, LockKey};

use super::{FetchError, Fetcher};

/// How often a waiter tries a lock another process holds.
pub(super) const LOCK_POLL: Duration = Duration::from_millis(100);
/// How long a wait for another process goes unmentioned.
pub(super) const LOCK_ANNOUNCE_AFTER: Duration = Duration::from_secs(1);

impl Fetcher {
    /// Runs `work` in this process's turn for `key`.
    pub(super) async fn in_turn<T>(&self, key: &LockKey, work: impl Future<Output = T>) -> T {
        let lock = match self.turns.lock() {
            Ok(mut turns) => Arc::clone(turns.entry(key.clone()).or_default()),
            // A poisoned table only loses the coalescing, not correctness.
            Err(_) => Arc::default(),
        };
        let out = {
            let _turn = lock.lock().await;
            work.await
        };
        if let Ok(mut turns) = self.turns.lock()
            && Arc::strong_count(&lock) == 2
        {
            turns.remove(key);
        }
        out
    }

    /// Waits for this process's turn across processes: tries the lock, then
    /// polls it, a future an interrupt can drop at any point (a blocking
    /// `flock` would hold up the runtime's shutdown). Says whom it waits for,
    /// and gives up on a holder that makes no progress for `lock_timeout`.
    /// Also returns whether it had to wait.
    pub(super) async fn process_turn(
        &self,
        key: LockKey,
        doing: &str,
    ) -> Result<(FileLock, bool), FetchError> {
        let started = Instant::now();
        let mut last_progress = (Instant::now(), None);
        let mut announced = false;
        let mut waited = false;
        loop {
            let k = key.clone();
            let (lock, holder) = self
                .on_disk(move |c| {
                    Ok(match c.try_lock(&k)? {
                        Some(lock) => (Some(lock), LockHolder::default()),
                        None => (None, c.lock_holder(&k)),
                    })
                })
                .await?;
            if let Some(lock) = lock {
                return Ok((lock, waited));
            }
            waited = true;
            if holder.progress != last_progress.1 {
                last_progress = (Instant::now(), holder.progress);
            }
            let pid = holder
                .pid
                .map_or_else(|| "?".to_string(), |p| p.to_string());
            if !announced && started.elapsed() >= LOCK_ANNOUNCE_AFTER {
                tracing::warn!("waiting for dpx process {pid} which is {doing}");
                announced = true;
            }
            if last_progress.0.elapsed() >= self.limits.lock_timeout {
                return Err(FetchError::Stalled {
                    pid,
                    doing: doing.to_string(),
                    secs: self.limits.lock_timeout.as_secs(),
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }
}
