//! dpx: a pull-through cache for container images on the local machine.
//!
//! Data flows one way: the CLI or HTTP edge calls `fetch` (the pull-through
//! rules), which joins `registry` (upstream) and `cache` (the store).

pub(crate) mod archive;
pub mod cache;
pub mod cli;
pub(crate) mod client_access;
pub(crate) mod commands;
pub(crate) mod config;
pub mod credentials;
pub(crate) mod daemon;
pub(crate) mod engines;
pub(crate) mod exit;
pub(crate) mod fetch;
pub(crate) mod fsutil;
pub(crate) mod imagelist;
pub(crate) mod interrupt;
pub(crate) mod metrics;
pub(crate) mod oci;
pub(crate) mod operator_files;
pub(crate) mod printable;
pub(crate) mod progress;
#[cfg(test)]
pub(crate) mod proptest_cases;
pub mod reference;
pub mod registry;
pub(crate) mod server;
pub(crate) mod stdout;
pub(crate) mod units;

use std::process::ExitCode;

use crate::cli::{Cli, Command};
use crate::commands::Context;

use crate::exit::UsageError;

pub fn main() -> ExitCode {
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let mut cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // For `dpx config show`: whether --config and --cache-dir came from a flag or the env.
    cli.global.origins = cli::GlobalOrigins {
        config: matches.value_source("config"),
        cache_dir: matches.value_source("cache_dir"),
    };
    // The server's one-line-per-request log is its main output.
    let serving = matches!(cli.command, Command::Serve(_));
    let log_guard = init_logging(
        cli.global.verbose,
        cli.global.quiet,
        serving,
        cli.global.json,
    );
    match &cli.command {
        Command::Completions { shell } => {
            let script = commands::docs::completions(*shell);
            if cli.global.json {
                return print_json_value(&serde_json::json!({
                    "shell": shell.to_string(),
                    "script": String::from_utf8_lossy(&script),
                }));
            }
            return print_all(&script);
        }
        Command::Config {
            command: cli::ConfigCommand::Path,
        } => {
            return commands::config_show::path(&cli.global).unwrap_or_else(|e| report(&e));
        }
        // Without loading the config: these fix one that does not load.
        Command::Config {
            command: cli::ConfigCommand::Set { key, value },
        } => {
            return commands::config_edit::set(&cli.global, key, value)
                .unwrap_or_else(|e| report(&e));
        }
        Command::Config {
            command: cli::ConfigCommand::Unset { key },
        } => {
            return commands::config_edit::unset(&cli.global, key).unwrap_or_else(|e| report(&e));
        }
        Command::Config {
            command: cli::ConfigCommand::Edit,
        } => return commands::config_edit::edit(&cli.global).unwrap_or_else(|e| report(&e)),
        Command::Man(args) => {
            if let Some(dir) = &args.dir {
                return match commands::docs::write_pages(dir) {
                    Ok(pages) if cli.global.json => {
                        print_json_value(&serde_json::json!({"dir": dir, "pages": pages}))
                    }
                    Ok(_) => ExitCode::SUCCESS,
                    Err(e) => report(
                        &anyhow::Error::from(e)
                            .context(format!("cannot write the man pages into {}", dir.display())),
                    ),
                };
            }
            let mut text = Vec::new();
            return match commands::docs::main_page(&mut text) {
                Ok(()) if cli.global.json => print_json_value(&serde_json::json!({
                    "page": "dpx.1",
                    "roff": String::from_utf8_lossy(&text),
                })),
                Ok(()) => print_all(&text),
                Err(e) => report(&anyhow::Error::from(e)),
            };
        }
        // Before any thread: taking the socket unsets LISTEN_FDS and LISTEN_PID.
        Command::Serve(_) => daemon::activation::capture(),
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
            Command::Ratelimit(args) if args.cached => commands::ratelimit_cached::run(&ctx).await,
            Command::Ratelimit(args) => commands::ratelimit::run(&ctx, args).await,
            Command::Stats => commands::stats::run(&ctx).await,
            Command::Setup { command } => commands::setup::run(&ctx, &cli.global, command).await,
            Command::Env(args) => commands::env::run(&ctx, args).await,
            Command::Doctor(args) => commands::doctor::run(&ctx, args).await,
            Command::Config { command } => {
                commands::config_show::run(&ctx, &cli.global, command).await
            }
            Command::Completions { .. } | Command::Man(_) => Ok(ExitCode::SUCCESS),
            Command::Daemon { command } => commands::daemon::run(&ctx, &cli.global, command).await,
            Command::Login(args) => commands::login::login(&ctx, args).await,
            Command::Logout(args) => commands::login::logout(&ctx, args).await,
        }
    });
    // Dropping the runtime cancels unfinished downloads; their temp files go
    // with them. It waits for blocking work: a credential helper is not.
    credentials::docker::stop_helpers();
    drop(runtime);
    // The last queued log lines are written before anything else is said.
    drop(log_guard);
    match result {
        Ok(code) => code,
        Err(e) => report(&e),
    }
}

fn print_json_value(value: &serde_json::Value) -> ExitCode {
    match stdout::print_json(value) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&anyhow::Error::from(e).context("cannot write to stdout")),
    }
}

fn print_all(bytes: &[u8]) -> ExitCode {
    match stdout::with_stdout(|out| out.write_all(bytes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => report(&anyhow::Error::from(e).context("cannot write to stdout")),
    }
}

/// Runs a command until it ends or Ctrl-C or SIGTERM; on either the
/// command's futures are dropped, which removes its partial downloads.
async fn interruptible(
    fut: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::select! {
        // Polled first, so the handler is in place before the command starts
        // its first download (tokio registers it on the first poll).
        biased;
        code = interrupt::stop_signal() => {
            eprintln!("{}; partial downloads removed", interrupt::stopped_by(code));
            Ok(ExitCode::from(code))
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
    if err.chain().any(|c| c.is::<exit::AuthError>()) {
        return ExitCode::from(exit::AUTH_FAILED);
    }
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
/// everything. `serve --json` logs one JSON object per line. `serve` writes
/// its log on a thread of its own; the guard returned writes what is queued
/// when dropped.
fn init_logging(
    verbose: u8,
    quiet: bool,
    serving: bool,
    json: bool,
) -> Option<daemon::log::Flusher> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) if serving => "dpx=info",
        (false, 0) => "dpx=warn",
        (false, 1) => "dpx=info,dpx::upstream=debug",
        (false, 2) => "dpx=debug",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_env("DPX_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    // stderr; the daemon's log file rotates by size. Other commands write
    // each line at once, in order with what they print.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = if serving {
        daemon::log::buffered(!json && !ansi)
    } else {
        (BoxMakeWriter::new(daemon::log::writer), None)
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(daemon::log_clock::LogClock)
        .with_target(false);
    let _ = if json && serving {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.with_ansi(ansi).try_init()
    };
    guard
}
