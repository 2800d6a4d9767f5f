//! `dpx serve`: the localhost registry mirror.

use std::process::ExitCode;

use super::Context;
use crate::cli::ServeArgs;
use crate::config::DEFAULT_LISTEN;
use crate::registry::RetryPolicy;
use crate::server::{Server, bind};

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args
        .listen
        .or_else(|| ctx.config.serve.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    // A container engine waits on us: fail over to the stale cache quickly
    // rather than retrying a dead upstream for long.
    let retry = RetryPolicy {
        retries: 1,
        ..RetryPolicy::default()
    };
    let fetcher = ctx.fetcher(retry)?;
    let listener = bind(&listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(
        "dpx serve listening on http://{addr} (cache {}, tag TTL {}s)",
        ctx.cache_dir.display(),
        ctx.config.tag_ttl().as_secs()
    );
    eprintln!("dpx serve: listening on http://{addr}");
    Server::new(fetcher, ctx.config.tag_ttl())
        .run(listener, shutdown_signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
