//! `dpx export -o FILE.tar IMAGE...`: cached images to an OCI layout archive.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, Finished, Output, run_blocking};
use crate::archive::{self, ExportSummary};
use crate::cli::ExportArgs;
use crate::exit::UsageError;
use crate::fsutil::AtomicWrite;
use crate::reference::Reference;
use crate::stdout::{print_json, quiet_on_broken_pipe};
use crate::units::human_bytes;

pub async fn run(ctx: &Context, args: ExportArgs) -> anyhow::Result<ExitCode> {
    if args.output.as_os_str() == "-" && ctx.output == Output::Json {
        return Err(UsageError(
            "--json and -o - both write to stdout; write the archive to a file with -o FILE.tar"
                .into(),
        )
        .into());
    }
    if args.output.as_os_str() == "-" && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(UsageError(
            "refusing to write a tar archive to a terminal; redirect stdout or use -o FILE.tar"
                .into(),
        )
        .into());
    }
    let refs = args
        .images
        .iter()
        .map(|s| s.parse().with_context(|| format!("cannot export {s:?}")))
        .collect::<anyhow::Result<Vec<Reference>>>()?;
    let cache = ctx.open_cache()?;
    let output = args.output.clone();
    let summary = match run_blocking(move |cancel| {
        if output.as_os_str() == "-" {
            let stdout = std::io::stdout().lock();
            let summary = archive::export(&cache, &refs, std::io::BufWriter::new(stdout), cancel);
            if let Err(archive::ExportError::Write(e)) = &summary {
                quiet_on_broken_pipe(Err::<(), _>(std::io::Error::new(e.kind(), e.to_string())))?;
            }
            return Ok(summary?);
        }
        write_file(&output, |file| archive::export(&cache, &refs, file, cancel))
    })
    .await?
    {
        Finished::Done(s) => s,
        Finished::Interrupted(code) => {
            eprintln!("interrupted; no archive written");
            return Ok(ExitCode::from(code));
        }
    };
    render(ctx.output, &summary, &args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes to a temp file next to `path`, renamed over it only when complete.
fn write_file(
    path: &Path,
    write: impl FnOnce(
        &mut std::io::BufWriter<&std::fs::File>,
    ) -> Result<ExportSummary, archive::ExportError>,
) -> anyhow::Result<ExportSummary> {
    let cannot = || format!("cannot write {}", path.display());
    AtomicWrite::new()
        .temp_name(".dpx-export-", "")
        .write_with(path, |file| {
            let mut out = std::io::BufWriter::new(file);
            let summary = write(&mut out)?;
            out.flush().with_context(cannot)?;
            Ok(summary)
        })
}

fn render(output: Output, summary: &ExportSummary, path: &Path) -> anyhow::Result<()> {
    for note in &summary.notes {
        eprintln!("note: {note}");
    }
    match output {
        Output::Json => {
            print_json(summary)?;
        }
        Output::Human => {
            for image in &summary.images {
                let name = image.name.as_deref().unwrap_or(&image.reference);
                eprintln!("exported {name} {}", image.digest);
            }
            eprintln!(
                "wrote {} ({} blobs, {})",
                if path.as_os_str() == "-" {
                    "stdout".into()
                } else {
                    path.display().to_string()
                },
                summary.blobs,
                human_bytes(summary.bytes)
            );
        }
        Output::Quiet => {}
    }
    Ok(())
}
