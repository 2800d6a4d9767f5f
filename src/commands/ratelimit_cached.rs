//! `dpx ratelimit --cached`: the last pull-quota figures any dpx process saw
//! on an upstream reply, by registry and identity, read from the cache's
//! record (`cache::quota`) without any network request.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Output};
use crate::cache::{QuotaSeen, now_secs};
use crate::fetch::quota::rfc3339;
use crate::stdout::{with_stdout, write_json};

/// The `--json` document: stable field names.
#[derive(Serialize)]
struct Cached {
    figures: Vec<Figure>,
}

#[derive(Serialize)]
pub(super) struct Figure {
    registry: String,
    /// Whom the quota counts against: the source IP or account id the
    /// registry named, else the account dpx asked as.
    identity: String,
    /// The account dpx asked as: a user name, or "anonymous".
    account: String,
    authenticated: bool,
    limit: Option<u64>,
    remaining: Option<u64>,
    window_secs: Option<u64>,
    /// When the reply was seen: Unix seconds and RFC 3339.
    seen_at: u64,
    seen: String,
    /// After a 429: when dpx asks for manifests again (Unix seconds), while that is ahead.
    paused_until: Option<u64>,
}

impl From<QuotaSeen> for Figure {
    fn from(s: QuotaSeen) -> Figure {
        Figure {
            seen: rfc3339(s.seen_at),
            paused_until: s.paused_until.filter(|u| *u > now_secs()),
            registry: s.registry,
            identity: s.identity,
            account: s.account,
            authenticated: s.authenticated,
            limit: s.limit,
            remaining: s.remaining,
            window_secs: s.window_secs,
            seen_at: s.seen_at,
        }
    }
}

pub async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let seen = tokio::task::spawn_blocking(move || cache.read_quota_seen())
        .await
        .context("the worker thread failed")??;
    let cached = Cached {
        figures: seen.into_iter().map(Figure::from).collect(),
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
                writeln!(out, "{}\t{}\t{remaining}", f.registry, f.identity)?;
                continue;
            }
            writeln!(out, "{}", describe(f, now_secs()))?;
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One line: registry, whom it counts against, the figures, when seen.
pub(super) fn describe(f: &Figure, now: u64) -> String {
    let who = if f.authenticated {
        format!("{} (signed in as {})", f.identity, f.account)
    } else {
        format!("{} (anonymous)", f.identity)
    };
    let figures = match (f.remaining, f.limit) {
        (Some(r), Some(l)) => format!("{r} of {l} pulls left"),
        (Some(r), None) => format!("{r} pulls left"),
        (None, Some(l)) => format!("limit {l} pulls"),
        (None, None) => "no figures".to_string(),
    };
    let window = f
        .window_secs
        .map(|w| {
            format!(
                " per {}",
                humantime::format_duration(Duration::from_secs(w))
            )
        })
        .unwrap_or_default();
    let ago = humantime::format_duration(Duration::from_secs(now.saturating_sub(f.seen_at)));
    let paused = f
        .paused_until
        .map(|u| format!("; after a 429, no manifest requests until {}", rfc3339(u)))
        .unwrap_or_default();
    format!(
        "{}: {who}: {figures}{window}, seen {} ({ago} ago){paused}",
        f.registry, f.seen
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_says_whom_what_and_when() {
        let f = Figure::from(QuotaSeen {
            registry: "docker.io".into(),
            identity: "192.0.2.1".into(),
            account: "anonymous".into(),
            authenticated: false,
            limit: Some(100),
            remaining: Some(76),
            window_secs: Some(21600),
            seen_at: 1_800_000_000,
            paused_until: None,
        });
        assert_eq!(
            describe(&f, 1_800_000_120),
            "docker.io: 192.0.2.1 (anonymous): 76 of 100 pulls left per 6h, seen 2027-01-15T08:00:00Z (2m ago)"
        );
    }
}
