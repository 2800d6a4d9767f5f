//! `dpx export` (in progress).

pub async fn run(
    _ctx: &super::Context,
    _args: crate::cli::ExportArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("dpx export is not implemented yet")
}
