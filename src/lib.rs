//! dpx: a pull-through cache for container images on the local machine.
//!
//! Data flows one way: the CLI or HTTP edge calls `fetch` (the pull-through
//! rules), which joins `registry` (upstream) and `cache` (the store).

pub mod archive;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod config;
pub mod exit;
pub mod fetch;
pub mod imagelist;
pub mod oci;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod serve_auth;
pub mod server;
pub mod stdout;
pub mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::commands::Context;

use crate::exit::UsageError;

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server's one-line-per-request log is its main output.
    let serving = matches!(cli.command, Command::Serve(_));
    init_logging(
        cli.global.verbose,
        cli.global.quiet,
        serving,
        cli.global.json,
    );
    match &cli.command {
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Rendered to memory first: clap_complete panics on a failed write.
            let mut text = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "dpx", &mut text);
            return print_all(&text);
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            return match clap_mangen::Man::new(cmd).render(&mut text) {
                Ok(()) => print_all(&text),
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
            Command::Purge(args) => commands::purge::run(&ctx, args).await,
            Command::Cache { command } => commands::cache::run(&ctx, command).await,
            Command::Export(args) => commands::export::run(&ctx, args).await,
            Command::Import(args) => commands::import::run(&ctx, args).await,
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

fn print_all(bytes: &[u8]) -> ExitCode {
    match stdout::with_stdout(|out| out.write_all(bytes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&anyhow::Error::from(e).context("cannot write to stdout")),
    }
}

/// Runs a command until it ends or Ctrl-C; on Ctrl-C the command's futures
/// are dropped, which removes its partial downloads.
async fn interruptible(
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::select! {
        // Polled first, so the handler is in place before the command starts
        // its first download (tokio registers it on the first poll).
        biased;
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted; partial downloads removed");
            Ok(ExitCode::from(exit::INTERRUPTED))
        }
        r = fut => r,
    }
}

/// Prints an error as one chain and picks the exit code.
fn report(err: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", error_chain(err));
    let usage = err.chain().any(|c| {
        c.is::<UsageError>()
            || c.is::<reference::ReferenceError>()
            || c.is::<config::ConfigError>()
            || c.is::<imagelist::ImageListError>()
    });
    ExitCode::from(if usage { exit::USAGE } else { exit::FAILURE })
}

/// The error and its causes, one per line; a cause whose text the message
/// before it already contains (a `{source}` in the format) is not repeated.
fn error_chain(err: &anyhow::Error) -> String {
    let mut msg = err.to_string();
    let mut previous = msg.clone();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        if !previous.contains(&text) {
            msg.push_str(&format!("\n  caused by: {text}"));
        }
        previous = text;
    }
    msg
}

/// Log levels: `serve` logs a line per request by default; `-v` adds the
/// upstream requests (method, URL, status), `-vv` dpx's debug lines, `-vvv`
/// everything. `serve --json` logs one JSON object per line.
fn init_logging(verbose: u8, quiet: bool, serving: bool, json: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) if serving => "dpx=info",
        (false, 0) => "dpx=warn",
        (false, 1) => "dpx=info,dpx::upstream=debug",
        (false, 2) => "dpx=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("DPX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json && serving {
        builder.json().flatten_event(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}
