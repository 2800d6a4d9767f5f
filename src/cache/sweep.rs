//! PLACEHOLDER for the boundary helper's `Cache::sweep()`: removes temp files
//! of dead downloads and orphaned lock files, keeping those whose lock is
//! held. Purge calls it through this single call site; the coordinator wires
//! the real one in at merge time.

use super::Cache;

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy)]
pub struct SweepReport {
    pub temp_files: usize,
    pub lock_files: usize,
}

impl Cache {
    /// Stub: removes nothing (a live download's temp file must never go).
    pub fn sweep(&self) -> SweepReport {
        SweepReport::default()
    }
}
