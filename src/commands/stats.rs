//! `dpx stats`: how many manifest requests the cache answered and how many
//! went upstream, summed over every dpx process that used this cache
//! (`cache::quota`), with the counts the running daemon has not yet written
//! (asked over loopback). No upstream request.

use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Output};
use crate::cache::{PullCounts, PullStats};
use crate::daemon::{self, Probe, RuntimeDir};
use crate::fetch::quota::rfc3339;
use crate::stdout::{with_stdout, write_json};

#[derive(Serialize)]
struct Report {
    #[serde(flatten)]
    stats: PullStats,
    /// Manifest requests answered without a manifest GET upstream.
    answered_without_get: u64,
}

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let mut stats = tokio::task::spawn_blocking(move || cache.read_pull_stats())
        .await
        .context("the worker thread failed")??;
    // The running daemon writes its counts in batches: ask it for the rest.
    if let Some(unwritten) = daemon_unwritten(ctx).await
        && !unwritten.is_zero()
    {
        if stats.since == 0 {
            stats.since = crate::cache::now_secs();
        }
        stats.counts.add(&unwritten);
        stats.updated_at = crate::cache::now_secs();
    }
    let report = Report {
        answered_without_get: stats.counts.answered_without_get(),
        stats,
    };
    with_stdout(|out| {
        if ctx.output == Output::Json {
            return write_json(out, &report);
        }
        let c = &report.stats.counts;
        if report.stats.since == 0 {
            writeln!(
                out,
                "no manifest requests counted yet (dpx pull, prefetch and serve count them)"
            )?;
            return Ok(());
        }
        writeln!(
            out,
            "manifest requests since {} (all dpx processes on this cache):",
            rfc3339(report.stats.since)
        )?;
        writeln!(
            out,
            "  answered without a GET upstream: {}",
            report.answered_without_get
        )?;
        writeln!(out, "    from the cache, no request:     {}", c.cache_hits)?;
        writeln!(out, "    revalidated by a HEAD:          {}", c.revalidated)?;
        writeln!(
            out,
            "    stale, upstream failing:        {}",
            c.stale_upstream_failed
        )?;
        writeln!(
            out,
            "    stale, to save the quota:       {}",
            c.stale_quota_saved
        )?;
        writeln!(
            out,
            "  sent upstream: {} manifest GETs (pulls on Docker Hub), {} HEADs (free)",
            c.upstream_manifest_gets, c.upstream_manifest_heads
        )?;
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The counts the running daemon of this cache has not yet written, when one
/// runs and answers (else the record alone is the answer).
async fn daemon_unwritten(ctx: &Context) -> Option<PullCounts> {
    let runtime = RuntimeDir::for_cache(&ctx.cache_dir);
    let probe = tokio::task::spawn_blocking(move || runtime.probe())
        .await
        .ok()?;
    let Ok(Probe::Running(state)) = probe else {
        return None;
    };
    match daemon::status(state.address.as_deref()?).await {
        Ok(status) => status.quota.map(|q| q.unwritten),
        Err(e) => {
            tracing::debug!("the daemon's live counts are not read: {e}");
            None
        }
    }
}
