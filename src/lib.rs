//! dpx: a pull-through cache for container images on the local machine.
//!
//! Data flows one way: the CLI or HTTP edge calls `fetch` (the pull-through
//! rules), which joins `registry` (upstream) and `cache` (the store).

pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod fetch;
pub mod imagelist;
pub mod oci;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod server;
pub mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Context;

/// Exit codes a shell script can branch on.
pub mod exit {
    /// Something failed (network, upstream, disk).
    pub const FAILURE: u8 = 1;
    /// The input was wrong: a malformed reference, a bad config file or flag.
    pub const USAGE: u8 = 2;
    /// Interrupted by Ctrl-C.
    pub const INTERRUPTED: u8 = 130;
}

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's one-line-per-request log is its main output.
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(cli.global.verbose, cli.global.quiet, serving);
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "dpx", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            return match clap_mangen::Man::new(cmd).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => report(&anyhow::Error::from(e)),
            };
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(&anyhow::Error::from(e).context("cannot start the async runtime")),
    };
    let result = runtime.block_on(async {
        let ctx = Context::new(&cli.global)?;
        match cli.command {
            Command::Pull(args) => interruptible(commands::pull::run(&ctx, args)).await,
            Command::Prefetch(args) => interruptible(commands::prefetch::run(&ctx, args)).await,
            Command::Serve(args) => commands::serve::run(&ctx, args).await,
            Command::Completions { .. } | Command::Man => Ok(ExitCode::SUCCESS),
        }
    });
    // Dropping the runtime cancels unfinished downloads; their temp files go with them.
    drop(runtime);
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

/// Runs a command until it ends or Ctrl-C; on Ctrl-C the command's futures
/// are dropped, which removes its partial downloads.
async fn interruptible(
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::select! {
        r = fut => r,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted; partial downloads removed");
            Ok(ExitCode::from(exit::INTERRUPTED))
        }
    }
}

/// Prints an error as one chain and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    let mut msg = format!("error: {err}");
    for cause in err.chain().skip(1) {
        msg.push_str(&format!("\n  caused by: {cause}"));
    }
    eprintln!("{msg}");
    let usage = err.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<reference::ReferenceError>()
            || c.is::<config::ConfigError>()
            || c.is::<imagelist::ImageListError>()
    });
    ExitCode::from(if usage { exit::USAGE } else { exit::FAILURE })
}

fn init_logging(verbose: u8, quiet: bool, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) if serving => "dpx=info",
        (false, 0) => "dpx=warn",
        (false, 1) => "dpx=info",
        (false, 2) => "dpx=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("DPX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
