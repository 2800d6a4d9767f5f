//! `dpx pull`: fetch images into the cache, print their digests.

use std::process::ExitCode;

use anyhow::Context as _;

use super::Context;
use super::pulling::{Job, platform_choice, pull_all, render};
use crate::cli::PullArgs;

pub async fn run(ctx: &Context, args: PullArgs) -> anyhow::Result<ExitCode> {
    let choice = platform_choice(&args.platform);
    let jobs = args
        .images
        .iter()
        .map(|s| {
            Ok(Job {
                reference: s.parse().with_context(|| format!("cannot pull {s:?}"))?,
                choice: choice.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let summary = pull_all(ctx, jobs, 4).await?;
    let code = render(ctx.output, &summary, false)?;
    // Only the quota stopped it: the exit code says so (a retry later works).
    let left = summary.images.iter().filter(|i| i.stopped).count();
    if left > 0 && left == summary.images_failed {
        return Ok(ExitCode::from(crate::exit::QUOTA));
    }
    Ok(code)
}
