//! `dpx cache ls` and `dpx cache du`: what the cache holds and how much disk it takes.

use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use serde::Serialize;

use crate::cache::{Cache, Inventory};
use crate::commands::{Context, Output};
use crate::reference::Digest;
use crate::units::human_bytes;

/// `dpx cache ls`: the cached images.
pub async fn ls(ctx: &Context) -> anyhow::Result<ExitCode> {
    on_inventory(ctx, |cache, inv, output| {
        print_ls(output, &images(cache, inv))
    })
    .await
}

/// `dpx cache du`: disk use, shared blobs counted once.
pub async fn du(ctx: &Context) -> anyhow::Result<ExitCode> {
    on_inventory(ctx, |_, inv, output| print_du(output, &usage(inv))).await
}

/// Walks the cache and renders, on one blocking task.
async fn on_inventory(
    ctx: &Context,
    render: impl FnOnce(&Cache, &Inventory, Output) -> std::io::Result<()> + Send + 'static,
) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let output = ctx.output;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let inv = cache.inventory()?;
        render(&cache, &inv, output)?;
        Ok(())
    })
    .await
    .context("the cache task failed")??;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Serialize)]
struct Image {
    registry: String,
    repository: String,
    tag: String,
    digest: Digest,
    platforms: Vec<String>,
    /// Bytes of everything the tag reaches that is stored.
    size: u64,
    /// False when content the image needs is gone (e.g. `cache verify`
    /// removed a corrupt blob): the next pull fetches it again.
    complete: bool,
    /// RFC 3339, UTC.
    last_used: String,
    #[serde(skip)]
    used: SystemTime,
}

/// `just now`, `42s ago`, `5m ago`, `3h ago`, `12d ago`.
fn ago(now: SystemTime, then: SystemTime) -> String {
    let secs = now.duration_since(then).map_or(0, |d| d.as_secs());
    match secs {
        0..=4 => "just now".to_string(),
        5..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}m ago", secs / 60),
        3600..=86_399 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

fn images(cache: &Cache, inv: &Inventory) -> Vec<Image> {
    inv.images(cache)
        .into_iter()
        .map(|i| Image {
            registry: i.registry,
            repository: i.repository,
            tag: i.tag,
            digest: i.digest,
            platforms: i.platforms,
            size: i.size,
            complete: i.complete,
            last_used: humantime::format_rfc3339_seconds(i.used).to_string(),
            used: i.used,
        })
        .collect()
}

fn print_ls(output: Output, images: &[Image]) -> std::io::Result<()> {
    crate::stdout::with_stdout(|out| {
        if output == Output::Json {
            return crate::stdout::write_json(out, &images);
        }
        if output == Output::Human {
            writeln!(
                out,
                "{:<40} {:<16} {:<19} {:<24} {:>10}  LAST USED",
                "IMAGE", "TAG", "DIGEST", "PLATFORMS", "SIZE"
            )?;
        }
        let now = SystemTime::now();
        for i in images {
            let platforms = match (i.platforms.is_empty(), i.complete) {
                (true, false) => "incomplete".to_string(),
                (false, false) => format!("{} (incomplete)", i.platforms.join(",")),
                (true, true) => "-".to_string(),
                (false, true) => i.platforms.join(","),
            };
            writeln!(
                out,
                "{:<40} {:<16} {:<19} {:<24} {:>10}  {}",
                format!("{}/{}", i.registry, i.repository),
                i.tag,
                format!("sha256:{}", &i.digest.hex()[..12]),
                platforms,
                human_bytes(i.size),
                ago(now, i.used),
            )?;
        }
        if output == Output::Human && images.iter().any(|i| !i.complete) {
            eprintln!(
                "incomplete: content the image needs was removed (dpx cache verify removes what \
                 is corrupt); dpx pull IMAGE fetches it again"
            );
        }
        Ok(())
    })
}

#[derive(Debug, Default, Serialize)]
struct Usage {
    /// Every stored blob and manifest.
    total: u64,
    blobs: usize,
    /// Content no tag reaches (pulled by digest, or left by forgotten tags).
    untagged: u64,
    /// Files in tmp/ (downloads in progress or leftovers).
    temp: u64,
    /// Each registry's content, shared blobs counted once.
    registries: BTreeMap<String, u64>,
    /// Each `registry/repository`'s content, shared blobs counted once.
    repositories: BTreeMap<String, u64>,
}

fn usage(inv: &Inventory) -> Usage {
    let mut by_registry: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
    let mut by_repo: BTreeMap<String, HashSet<Digest>> = BTreeMap::new();
    let mut tagged = HashSet::new();
    for t in &inv.tags {
        let reach = inv.reach(&t.digest);
        by_registry
            .entry(t.registry.clone())
            .or_default()
            .extend(reach.iter().cloned());
        by_repo
            .entry(format!("{}/{}", t.registry, t.repo))
            .or_default()
            .extend(reach.iter().cloned());
        tagged.extend(reach);
    }
    let total = inv.total_size();
    Usage {
        total,
        blobs: inv.blobs.len(),
        untagged: total.saturating_sub(inv.size_of(&tagged)),
        temp: inv.temps.iter().fold(0u64, |s, t| s.saturating_add(t.size)),
        registries: by_registry
            .into_iter()
            .map(|(k, v)| (k, inv.size_of(&v)))
            .collect(),
        repositories: by_repo
            .into_iter()
            .map(|(k, v)| (k, inv.size_of(&v)))
            .collect(),
    }
}

fn print_du(output: Output, u: &Usage) -> std::io::Result<()> {
    crate::stdout::with_stdout(|out| {
        if output == Output::Json {
            return crate::stdout::write_json(out, u);
        }
        writeln!(
            out,
            "{:>10}  total ({} blobs)",
            human_bytes(u.total),
            u.blobs
        )?;
        if output == Output::Quiet {
            return Ok(());
        }
        for (name, size) in &u.registries {
            writeln!(out, "{:>10}  {name}", human_bytes(*size))?;
        }
        for (name, size) in &u.repositories {
            writeln!(out, "{:>10}    {name}", human_bytes(*size))?;
        }
        writeln!(out, "{:>10}  untagged", human_bytes(u.untagged))?;
        if u.temp > 0 {
            writeln!(out, "{:>10}  temp files", human_bytes(u.temp))?;
        }
        Ok(())
    })
}
