//! `dpx stats`: how many manifest requests the cache answered and how many
//! went upstream, summed over every dpx process that used this cache
//! (`cache::quota`). No network.

use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Output};
use crate::cache::PullStats;
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
    let stats = tokio::task::spawn_blocking(move || cache.read_pull_stats())
        .await
        .context("the worker thread failed")??;
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
