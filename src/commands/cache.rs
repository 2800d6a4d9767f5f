//! `dpx cache ls|du|verify|path`: looking into and after the cache itself.

use std::process::ExitCode;

use indicatif::ProgressBar;

mod usage;

use super::{Context, Finished, Output, run_blocking};
use crate::cache::{VerifyProgress, VerifyReport};
use crate::cli::{CacheCommand, VerifyArgs};
use crate::exit;
use crate::progress::Progress;
use crate::stdout::{print_json, with_stdout};
use crate::units::human_bytes;

pub async fn run(ctx: &Context, command: CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Ls => usage::ls(ctx).await,
        CacheCommand::Du => usage::du(ctx).await,
        CacheCommand::Verify(args) => verify(ctx, args).await,
        CacheCommand::Path if ctx.output == Output::Json => {
            print_json(&serde_json::json!({ "path": ctx.cache_dir }))?;
            Ok(ExitCode::SUCCESS)
        }
        CacheCommand::Path => {
            let line = format!("{}\n", ctx.cache_dir.display());
            with_stdout(|out| out.write_all(line.as_bytes()))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

struct Bar(ProgressBar);

impl VerifyProgress for Bar {
    fn start(&self, _blobs: usize, bytes: u64) {
        self.0.set_length(bytes);
    }
    fn hashed(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

async fn verify(ctx: &Context, args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let progress = Progress::new(ctx.output == Output::Human);
    let bar = Bar(progress.blob_bar("verifying", 0));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let keep = args.keep;
    let started = std::time::Instant::now();
    let report = match run_blocking(move |cancel| {
        let report = cache.verify(keep, threads, &bar, cancel);
        bar.0.finish_and_clear();
        Ok(report?)
    })
    .await?
    {
        Finished::Done(r) => r,
        Finished::Interrupted(code) => {
            eprintln!("interrupted; what was found so far is left as it was");
            return Ok(ExitCode::from(code));
        }
    };
    render(ctx.output, &report, keep, started.elapsed().as_secs_f64())?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::FAILURE)
    })
}

fn render(output: Output, report: &VerifyReport, keep: bool, seconds: f64) -> anyhow::Result<()> {
    let removed = report.problems.iter().filter(|p| p.removed).count();
    if output == Output::Json {
        let json = serde_json::json!({
            "ok": report.is_clean(),
            "blobs": report.blobs,
            "bytes": report.bytes,
            "manifests": report.manifests,
            "tags": report.tags,
            "problems": report.problems,
            "removed": removed,
            "seconds": seconds,
        });
        print_json(&json)?;
        return Ok(());
    }
    for p in &report.problems {
        let action = if p.removed {
            "removed"
        } else if keep {
            "kept"
        } else {
            "could not remove"
        };
        eprintln!("{action} {} {}: {}", p.kind, p.name, p.reason);
    }
    if output == Output::Human {
        let summary = format!(
            "checked {} blobs ({}), {} manifests, {} tags in {seconds:.1}s: {}",
            report.blobs,
            human_bytes(report.bytes),
            report.manifests,
            report.tags,
            match (report.problems.len(), keep) {
                (0, _) => "all good".to_string(),
                (1, true) => "1 problem, nothing removed (--keep)".to_string(),
                (1, false) => format!("1 problem, {removed} removed"),
                (n, true) => format!("{n} problems, nothing removed (--keep)"),
                (n, false) => format!("{n} problems, {removed} removed"),
            }
        );
        eprintln!("{summary}");
    }
    Ok(())
}
