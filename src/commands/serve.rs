//! `dpx serve`: the localhost registry mirror.

use std::process::ExitCode;

use std::net::SocketAddr;
use std::sync::Arc;

use super::Context;
use crate::cli::ServeArgs;
use crate::config::DEFAULT_LISTEN;
use crate::exit::UsageError;
use crate::server::{Egress, Limits, Server, bind, raise_fd_limit, spawn_evictor};

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args
        .listen
        .or_else(|| ctx.config.serve.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr = loopback_addr(&listen)?;
    // A container engine waits on us: fail over to the stale cache quickly
    // rather than retrying a dead upstream for long.
    // At the reserve, cached tags are served stale rather than spending a pull.
    let policy = crate::fetch::PullPolicy {
        reserve: ctx.config.ratelimit.reserve,
        ..Default::default()
    };
    let fetcher = ctx.fetcher_with(1, policy)?;
    // Before the listening line, which tells scripts the server is ready.
    raise_fd_limit();
    let listener = bind(addr).await?;
    let addr = listener.local_addr()?;
    // The one listening line (plain, whatever the log format: scripts wait for it).
    eprintln!(
        "dpx serve: listening on http://{addr} (cache {}, tag TTL {}s)",
        ctx.cache_dir.display(),
        ctx.config.tag_ttl().as_secs()
    );
    if let Some(max_size) = ctx.config.cache.max_size {
        spawn_evictor(ctx.open_cache()?, max_size);
    }
    let serve = &ctx.config.serve;
    let limits = Limits {
        max_connections: serve.max_connections(),
        header_timeout: serve.header_timeout(),
        idle_timeout: serve.idle_timeout(),
    };
    let egress = Egress::new(
        serve.registries.clone(),
        ctx.config.registries.keys().cloned(),
    );
    fetcher.spawn_sweep();
    let flusher = fetcher.spawn_usage_flusher();
    Server::with(Arc::clone(&fetcher), ctx.config.tag_ttl(), limits, egress)
        .run(listener, shutdown_signal())
        .await?;
    flusher.abort();
    fetcher.flush_usage().await;
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

/// The listen address, which must be loopback: without client authentication
/// anyone who can reach the port could read every cached (even private) image
/// and fill the disk with images of their choosing.
fn loopback_addr(listen: &str) -> Result<SocketAddr, UsageError> {
    let addr: SocketAddr = match listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => listen.parse(),
    }
    .map_err(|_| {
        UsageError(format!(
            "invalid listen address {listen:?}: use IP:PORT, e.g. 127.0.0.1:5000"
        ))
    })?;
    if !addr.ip().is_loopback() {
        return Err(UsageError(format!(
            "refusing to listen on {addr}: dpx serve has no client authentication yet, so it \
             listens on loopback only (127.0.0.1:PORT or [::1]:PORT)"
        )));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::loopback_addr;

    #[test]
    fn only_loopback_addresses() {
        for ok in ["127.0.0.1:5000", "[::1]:0", "localhost:5000", "127.0.0.2:1"] {
            assert!(loopback_addr(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0.0.0.0:5000",
            "[::]:5000",
            "192.0.2.1:5000",
            "5000",
            "localhost",
            "x:1",
        ] {
            assert!(loopback_addr(bad).is_err(), "{bad}");
        }
    }
}
