//! `dpx ratelimit --cached`: the last pull-quota figures any dpx process saw
//! on an upstream reply, by registry and identity, read from the cache's
//! record (`cache::quota`) without any network request.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::ratelimit::RateLimitReport;
use super::{Context, Output};
use crate::cache::now_secs;
use crate::stdout::{with_stdout, write_json};

/// The `--json` document: the figures in `dpx ratelimit --json`'s schema.
#[derive(Serialize)]
struct Cached {
    figures: Vec<RateLimitReport>,
}

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let seen = tokio::task::spawn_blocking(move || cache.read_quota_seen())
        .await
        .context("the worker thread failed")??;
    let cached = Cached {
        figures: seen.into_iter().map(RateLimitReport::from).collect(),
    };
    with_stdout(|out| {
        if ctx.output == Output::Json {
            return write_json(out, &cached);
        }
        if cached.figures.is_empty() {
            if ctx.output == Output::Human {
                writeln!(
                    out,
                    "no rate-limit figures seen yet: dpx records them from every upstream reply that carries them (Docker Hub's ratelimit-* headers)"
                )?;
            }
            return Ok(());
        }
        for f in &cached.figures {
            if ctx.output == Output::Quiet {
                let remaining = f.remaining.map_or("?".to_string(), |r| r.to_string());
                let source = f.source.as_deref().unwrap_or("?");
                writeln!(out, "{}\t{source}\t{remaining}", f.registry)?;
                continue;
            }
            writeln!(out, "{}", describe(f, now_secs()))?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One line: registry, whom it counts against, the figures, when seen, and
/// the hold after a 429 while one holds.
pub(super) fn describe(f: &RateLimitReport, now: u64) -> String {
    let source = f.source.as_deref().unwrap_or("?");
    let account = f.account.as_deref().unwrap_or("?");
    let who = if f.authenticated == Some(true) {
        format!("{source} (signed in as {account})")
    } else {
        format!("{source} (anonymous)")
    };
    let figures = match (f.remaining, f.limit) {
        (Some(r), Some(l)) => format!("{r} of {l} pulls left"),
        (Some(r), None) => format!("{r} pulls left"),
        (None, Some(l)) => format!("limit {l} pulls"),
        (None, None) => "no figures".to_string(),
    };
    let window = f
        .window_seconds
        .map(|w| {
            format!(
                " per {}",
                humantime::format_duration(Duration::from_secs(w))
            )
        })
        .unwrap_or_default();
    let ago = humantime::format_duration(Duration::from_secs(now.saturating_sub(f.observed_at)));
    let held = f
        .hold
        .map(|h| format!("; manifest GETs {}", h.describe()))
        .unwrap_or_default();
    format!(
        "{}: {who}: {figures}{window}, seen {} ({ago} ago){held}",
        f.registry, f.observed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_whom_what_and_when() {
        let f = RateLimitReport::from(crate::cache::QuotaSeen {
            registry: "docker.io".into(),
            identity: "192.0.2.1".into(),
            account: "anonymous".into(),
            authenticated: false,
            limit: Some(100),
            remaining: Some(76),
            window_secs: Some(21600),
            seen_at: 1_800_000_000,
            hold: None,
        });
        assert_eq!(
            describe(&f, 1_800_000_120),
            "docker.io: 192.0.2.1 (anonymous): 76 of 100 pulls left per 6h, seen 2027-01-15T08:00:00Z (2m ago)"
        );
    }
}
