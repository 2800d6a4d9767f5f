//! `dpx import` (in progress).

pub async fn run(
    _ctx: &super::Context,
    _args: crate::cli::ImportArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("dpx import is not implemented yet")
}
