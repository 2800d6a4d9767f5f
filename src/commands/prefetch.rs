//! `dpx prefetch`: warm the cache for images named on the command line, in
//! list files, or inside Dockerfiles, compose files and CI configs.

use std::process::ExitCode;

use serde::Serialize;

use super::pulling::{Job, Summary, platform_choice, pull_all_with, render};
use super::{Context, Output};
use crate::cli::PrefetchArgs;
use crate::exit::UsageError;
use crate::fetch::{PullPolicy, default_choice};
use crate::imagelist::{self, ImageSpec, Origin};
use crate::oci::{Platform, PlatformChoice};

pub async fn run(ctx: &Context, args: PrefetchArgs) -> anyhow::Result<ExitCode> {
    let mut specs: Vec<ImageSpec> = args
        .images
        .iter()
        .map(|r| ImageSpec {
            reference: r.clone(),
            platform: None,
            origin: None,
        })
        .collect();
    for file in &args.files {
        specs.extend(imagelist::list_from_file(file)?);
    }
    for path in &args.from {
        let found = imagelist::images_from_path(path)?;
        for skipped in &found.skipped {
            eprintln!("warning: {skipped}");
        }
        specs.extend(found.specs);
    }
    if specs.is_empty() {
        return Err(UsageError(
            "no images to prefetch: name them, or use -f FILE or --from PATH".into(),
        )
        .into());
    }
    let jobs = to_jobs(&specs, &args)?;
    if args.dry_run {
        return dry_run(ctx, &jobs);
    }
    let jobs = jobs.into_iter().map(|(job, _)| job).collect();
    let policy = PullPolicy {
        reserve: ctx.config.ratelimit.reserve,
        stop_at_reserve: true,
        max_pulls: args.max_pulls,
        ..PullPolicy::default()
    };
    let summary = pull_all_with(ctx, jobs, usize::from(args.jobs), policy).await?;
    let code = render(ctx.output, &summary, true)?;
    match &summary.stopped {
        Some(reason) => {
            report_stop(&summary, reason);
            Ok(ExitCode::from(crate::exit::QUOTA))
        }
        None => Ok(code),
    }
}

/// Says why the prefetch stopped, what it fetched and what is left.
fn report_stop(summary: &Summary, reason: &str) {
    let left: Vec<&str> = summary
        .images
        .iter()
        .filter(|i| i.stopped)
        .map(|i| i.reference.as_str())
        .collect();
    let done = summary.images.iter().filter(|i| i.error.is_none()).count();
    eprintln!(
        "error: prefetch stopped to save the pull quota: {reason}\n  \
         {done} of {} images fetched or already current ({} manifest GETs sent upstream); \
         {} left: {}\n  \
         run it again when the quota allows, or raise --max-pulls / lower [ratelimit] reserve",
        summary.images.len(),
        summary.manifest_requests.upstream_manifest_gets,
        left.len(),
        left.join(", ")
    );
}

/// What `--dry-run` shows for one image.
#[derive(Serialize)]
struct Planned {
    reference: String,
    platform: String,
    /// `FILE:LINE`, or null for a reference named on the command line.
    source: Option<String>,
}

fn dry_run(ctx: &Context, jobs: &[(Job, Option<Origin>)]) -> anyhow::Result<ExitCode> {
    let planned: Vec<Planned> = jobs
        .iter()
        .map(|(job, origin)| Planned {
            reference: job.reference.to_string(),
            platform: match &job.choice {
                PlatformChoice::One(p) => p.to_string(),
                PlatformChoice::All => "all".to_string(),
            },
            source: origin.as_ref().map(ToString::to_string),
        })
        .collect();
    crate::stdout::with_stdout(|out| {
        if ctx.output == Output::Json {
            return crate::stdout::write_json(out, &planned);
        }
        for p in &planned {
            let source = p.source.as_deref().unwrap_or("command line");
            if ctx.output == Output::Quiet {
                writeln!(out, "{}", p.reference)?;
            } else {
                writeln!(out, "{}\t{}\t{source}", p.reference, p.platform)?;
            }
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Validates every reference before any download: bad input changes nothing.
fn to_jobs(specs: &[ImageSpec], args: &PrefetchArgs) -> anyhow::Result<Vec<(Job, Option<Origin>)>> {
    let mut jobs: Vec<(Job, Option<Origin>)> = Vec::new();
    let mut errors = Vec::new();
    for spec in specs {
        let reference = match spec.reference.parse() {
            Ok(r) => r,
            Err(e) => {
                errors.push(located(spec, &e));
                continue;
            }
        };
        // A platform pinned in the file wins over the command line's default.
        let choice = match &spec.platform {
            Some(p) if !args.platform.all_platforms => match p.parse::<Platform>() {
                Ok(p) => default_choice(Some(p), false),
                Err(e) => {
                    errors.push(located(spec, &e));
                    continue;
                }
            },
            _ => platform_choice(&args.platform),
        };
        let duplicate = jobs
            .iter()
            .any(|(j, _)| j.reference == reference && j.choice == choice);
        if !duplicate {
            jobs.push((Job { reference, choice }, spec.origin.clone()));
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

/// `"REF" (FILE:LINE): error`, for a reference that came from a file.
fn located(spec: &ImageSpec, e: &dyn std::fmt::Display) -> String {
    match &spec.origin {
        Some(o) => format!("{:?} ({o}): {e}", spec.reference),
        None => format!("{:?}: {e}", spec.reference),
    }
}
