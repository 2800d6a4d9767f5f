//! `dpx cache ...`: the subcommands that look into the cache.

use std::process::ExitCode;

use super::{Context, cache_usage};
use crate::cli::CacheCommand;

pub async fn run(ctx: &Context, command: CacheCommand) -> anyhow::Result<ExitCode> {
    match command {
        CacheCommand::Ls => cache_usage::ls(ctx).await,
        CacheCommand::Du => cache_usage::du(ctx).await,
    }
}
