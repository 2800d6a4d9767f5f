//! PLACEHOLDER for the boundary helper's `Cache::sweep()` (same signature and
//! report): removes temp files of dead downloads and orphaned lock files,
//! keeping those whose lock is held. Purge calls it from one place
//! (`Cache::execute`); at merge, the real `sweep.rs` replaces this file.

use super::{Cache, CacheError};

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub temp_files: usize,
    pub lock_files: usize,
    /// Bytes of the temp files removed.
    pub bytes: u64,
}

impl Cache {
    /// Stub: removes nothing (a live download's temp file must never go).
    pub fn sweep(&self) -> Result<SweepReport, CacheError> {
        Ok(SweepReport::default())
    }
}
