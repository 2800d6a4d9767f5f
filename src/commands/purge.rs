//! `dpx purge`: remove content from the cache by age, size budget, image, or
//! reachability; `--dry-run` shows the plan instead.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;

use super::{Context, Output};
use crate::cache::{ImageSelector, Policy, Summary, plan};
use crate::cli::PurgeArgs;
use crate::exit::UsageError;
use crate::reference::Reference;
use crate::units::human_bytes;

pub async fn run(ctx: &Context, args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let policy = Policy {
        older_than: args.older_than,
        max_size: args.max_size,
        images: args
            .images
            .iter()
            .map(|s| selector(s))
            .collect::<Result<_, _>>()?,
        unreferenced: args.unreferenced,
        all: args.all,
    };
    if args.all && !args.yes && !args.dry_run && !confirm_all(ctx)? {
        eprintln!("nothing removed");
        return Ok(ExitCode::SUCCESS);
    }
    let cache = ctx.open_cache()?;
    let output = ctx.output;
    let dry_run = args.dry_run;
    // The walk and the removals are disk work: one blocking task for all of it.
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let inv = cache.inventory()?;
        let plan = plan(&inv, &policy, SystemTime::now()).map_err(|e| UsageError(e.to_string()))?;
        let summary = if dry_run {
            if output == Output::Human {
                crate::stdout::with_stdout(|out| {
                    for r in &plan.removals {
                        writeln!(
                            out,
                            "would remove {} {} ({})",
                            r.kind,
                            r.name,
                            human_bytes(r.size)
                        )?;
                    }
                    Ok(())
                })?;
            }
            Summary::of_plan(&plan)
        } else {
            let verbose = output == Output::Human;
            cache.execute(&plan, |r| {
                if verbose {
                    tracing::info!("removed {} {} ({})", r.kind, r.name, human_bytes(r.size));
                }
            })
        };
        if let Some(kept) = &summary.over_max_size {
            tracing::warn!(
                "--max-size is below the size of one image: kept the most recently used, {kept}, though the cache stays over it"
            );
        }
        report(output, dry_run, &plan, &summary)?;
        Ok(())
    })
    .await
    .context("the purge task failed")??;
    Ok(ExitCode::SUCCESS)
}

/// `alpine` forgets every tag of the repository; `alpine:3` one tag;
/// `alpine@sha256:...` one manifest.
fn selector(input: &str) -> Result<ImageSelector, UsageError> {
    let r: Reference = input
        .parse()
        .map_err(|e| UsageError(format!("--image {input:?}: {e}")))?;
    let last = input.rsplit('/').next().unwrap_or(input);
    let registry = r.registry;
    let repo = r.repository;
    Ok(match (r.digest, r.tag) {
        (Some(digest), _) => ImageSelector::Digest {
            registry,
            repo,
            digest,
        },
        (None, Some(tag)) if last.contains(':') => ImageSelector::Tag {
            registry,
            repo,
            tag,
        },
        _ => ImageSelector::Repository { registry, repo },
    })
}

/// Asks on a terminal; refuses when nobody can answer.
fn confirm_all(ctx: &Context) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "dpx purge --all removes the whole cache: add --yes to confirm when stdin is not a terminal"
                .into(),
        )
        .into());
    }
    eprint!(
        "Remove everything in the cache {}? [y/N] ",
        ctx.cache_dir.display()
    );
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

fn report(
    output: Output,
    dry_run: bool,
    plan: &crate::cache::Plan,
    s: &Summary,
) -> std::io::Result<()> {
    crate::stdout::with_stdout(|out| match output {
        Output::Json => {
            let mut v = serde_json::to_value(s).map_err(std::io::Error::other)?;
            v["dry_run"] = dry_run.into();
            if dry_run {
                v["would_remove"] =
                    serde_json::to_value(&plan.removals).map_err(std::io::Error::other)?;
            }
            crate::stdout::write_json(out, &v)
        }
        Output::Quiet => Ok(()),
        Output::Human => {
            let verb = if dry_run { "would remove" } else { "removed" };
            writeln!(
                out,
                "{verb} {} tags, {} manifests, {} blobs: {} reclaimed ({} -> {})",
                s.tags,
                s.manifests,
                s.blobs,
                human_bytes(s.bytes_reclaimed),
                human_bytes(s.size_before),
                human_bytes(s.size_after),
            )?;
            if s.kept_in_use > 0 {
                writeln!(out, "kept {} items used while the purge ran", s.kept_in_use)?;
            }
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert!(matches!(
            selector("alpine").unwrap(),
            ImageSelector::Repository { repo, .. } if repo == "library/alpine"
        ));
        assert!(matches!(
            selector("alpine:latest").unwrap(),
            ImageSelector::Tag { tag, .. } if tag == "latest"
        ));
        assert!(matches!(
            selector("localhost:5000/app").unwrap(),
            ImageSelector::Repository { registry, .. } if registry == "localhost:5000"
        ));
        let d = format!("alpine@sha256:{}", "a".repeat(64));
        assert!(matches!(
            selector(&d).unwrap(),
            ImageSelector::Digest { .. }
        ));
        assert!(selector("Bad Name").is_err());
    }
}
