//! `dpx ratelimit --cached`: the last pull-quota figures any dpx process saw
//! on an upstream reply, by registry and identity, read from the cache's
//! record (`cache::quota`) without any network request.

use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use super::quota_report::{RateLimitReport, describe};
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
