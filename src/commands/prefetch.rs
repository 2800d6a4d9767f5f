//! `dpx prefetch`: warm the cache for images named on the command line, in
//! list files, or inside Dockerfiles, compose files and CI configs.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use super::pull::{Job, platform_choice, pull_all, render};
use crate::UsageError;
use crate::cli::PrefetchArgs;
use crate::fetch::default_choice;
use crate::imagelist::{self, ImageSpec};
use crate::oci::Platform;

pub async fn run(ctx: &Context, args: PrefetchArgs) -> anyhow::Result<ExitCode> {
    let mut specs: Vec<ImageSpec> = args
        .images
        .iter()
        .map(|r| ImageSpec {
            reference: r.clone(),
            platform: None,
        })
        .collect();
    for file in &args.files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read image list {}", file.display()))?;
        specs.extend(imagelist::parse_list(&text));
    }
    for file in &args.from {
        specs.extend(imagelist::images_from_file(file)?);
    }
    if specs.is_empty() {
        return Err(UsageError(
            "no images to prefetch: name them, or use -f FILE or --from FILE".into(),
        )
        .into());
    }
    let jobs = to_jobs(&specs, &args)?;
    let summary = pull_all(ctx, jobs, usize::from(args.jobs)).await?;
    render(ctx.output, &summary, true)
}

/// Validates every reference before any download: bad input changes nothing.
fn to_jobs(specs: &[ImageSpec], args: &PrefetchArgs) -> anyhow::Result<Vec<Job>> {
    let mut jobs: Vec<Job> = Vec::new();
    let mut errors = Vec::new();
    for spec in specs {
        let reference = match spec.reference.parse() {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("{:?}: {e}", spec.reference));
                continue;
            }
        };
        // A platform pinned in the file wins over the command line's default.
        let choice = match &spec.platform {
            Some(p) if !args.platform.all_platforms => match p.parse::<Platform>() {
                Ok(p) => default_choice(Some(p), false),
                Err(e) => {
                    errors.push(format!("{:?}: {e}", spec.reference));
                    continue;
                }
            },
            _ => platform_choice(&args.platform),
        };
        let duplicate = jobs.iter().any(|j| {
            j.reference == reference && format!("{:?}", j.choice) == format!("{choice:?}")
        });
        if !duplicate {
            jobs.push(Job { reference, choice });
        }
    }
    if !errors.is_empty() {
        return Err(UsageError(format!(
            "invalid image references:\n  {}",
            errors.join("\n  ")
        ))
        .into());
    }
    Ok(jobs)
}
