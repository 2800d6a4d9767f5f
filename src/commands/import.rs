//! `dpx import FILE.tar`: an OCI layout archive's images into the cache.

use std::process::ExitCode;

use super::{Context, Finished, Output, run_blocking};
use crate::archive::{self, ImportSummary};
use crate::cli::ImportArgs;
use crate::stdout::print_json;
use crate::units::human_bytes;

pub async fn run(ctx: &Context, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let cache = ctx.open_cache()?;
    let path = args.archive.clone();
    let summary =
        match run_blocking(move |cancel| Ok(archive::import(&cache, &path, cancel)?)).await? {
            Finished::Done(s) => s,
            Finished::Interrupted(code) => {
                eprintln!("interrupted; nothing was imported");
                return Ok(ExitCode::from(code));
            }
        };
    render(ctx.output, &summary)?;
    Ok(ExitCode::SUCCESS)
}

fn render(output: Output, summary: &ImportSummary) -> anyhow::Result<()> {
    for note in &summary.notes {
        eprintln!("note: {note}");
    }
    match output {
        Output::Json => {
            print_json(summary)?;
        }
        Output::Human => {
            for image in &summary.images {
                eprintln!(
                    "imported {} {}",
                    image.name.as_deref().unwrap_or("(no name)"),
                    image.digest
                );
            }
            eprintln!(
                "added {} blobs ({}), {} already cached",
                summary.blobs_added,
                human_bytes(summary.bytes_added),
                summary.blobs_present
            );
        }
        Output::Quiet => {}
    }
    Ok(())
}
