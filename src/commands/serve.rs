//! `dpx serve`: the localhost registry mirror.

use std::process::ExitCode;

use std::net::SocketAddr;
use std::sync::Arc;

use super::Context;
use crate::cli::ServeArgs;
use crate::config::DEFAULT_LISTEN;
use crate::daemon::{REGISTER_WAIT, Registration, RuntimeDir, activation};
use crate::exit::UsageError;
use crate::server::{Egress, Limits, Server, bind, raise_fd_limit, spawn_evictor};

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args
        .listen
        .or_else(|| ctx.config.serve.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
    let addr = loopback_addr(&listen)?;
    if args.daemon {
        // Started by `dpx daemon start`: out of the starter's session, so
        // its terminal closing (SIGHUP) or Ctrl-C does not reach us.
        let _ = rustix::process::setsid();
    }
    // A container engine waits on us: fail over to the stale cache quickly
    // rather than retrying a dead upstream for long.
    // At the reserve, cached tags are served stale rather than spending a pull.
    let policy = crate::fetch::PullPolicy {
        reserve: ctx.config.ratelimit.reserve,
        ..Default::default()
    };
    let fetcher = ctx.fetcher_with(1, policy)?;
    // After the cache dir exists, so its name resolves as the daemon commands see it.
    let registration = register(ctx, args.daemon).await?;
    // Before the listening line, which tells scripts the server is ready.
    raise_fd_limit();
    let listener = match activation::inherited()
        .map_err(|e| anyhow::anyhow!("cannot use the socket handed over by systemd: {e}"))?
    {
        Some(inherited) => {
            let addr = inherited.local_addr()?;
            if !addr.ip().is_loopback() {
                return Err(UsageError(format!(
                    "refusing the socket on {addr} handed over by systemd: dpx serve has no client \
                     authentication yet, so it listens on loopback only (ListenStream=127.0.0.1:PORT)"
                ))
                .into());
            }
            tokio::net::TcpListener::from_std(inherited)?
        }
        None => bind(addr).await?,
    };
    let addr = listener.local_addr()?;
    let registration = match registration {
        Some(mut r) => {
            let address = addr.to_string();
            match tokio::task::spawn_blocking(move || r.set_address(&address).map(|()| r)).await? {
                Ok(r) => Some(r),
                Err(e) if args.daemon => return Err(e.into()),
                Err(e) => {
                    tracing::warn!("{e}; `dpx daemon` commands will not see this serve");
                    None
                }
            }
        }
        None => None,
    };
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
    let idle_timeout = match args.idle_timeout {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(t),
        None => serve.idle_timeout(args.daemon),
    };
    let limits = Limits {
        max_connections: serve.max_connections(),
        header_timeout: serve.header_timeout(),
        connection_idle_timeout: serve.connection_idle_timeout(),
        idle_timeout,
    };
    let egress = Egress::new(
        serve.registries.clone(),
        ctx.config.registries.keys().cloned(),
    );
    fetcher.spawn_sweep();
    let flusher = fetcher.spawn_usage_flusher();
    let server = Server::with(Arc::clone(&fetcher), ctx.config.tag_ttl(), limits, egress);
    let stats = server.stats();
    let shutdown = async move {
        match idle_timeout {
            Some(timeout) => tokio::select! {
                () = shutdown_signal() => {}
                () = stats.idle(timeout) => tracing::info!(
                    "no request for {}: stopping ([serve] idle_timeout)",
                    humantime::format_duration(timeout)
                ),
            },
            None => shutdown_signal().await,
        }
    };
    server.run(listener, shutdown).await?;
    flusher.abort();
    fetcher.flush_usage().await;
    // The state file goes last: until then lookers see this daemon stopping.
    if let Some(r) = registration {
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Takes this cache's daemon slot (lock and state file), so `dpx daemon`
/// finds this server. A daemon must have it; a foreground serve goes on
/// without it when another server holds it.
async fn register(ctx: &Context, daemon: bool) -> anyhow::Result<Option<Registration>> {
    let runtime = RuntimeDir::for_cache(&ctx.cache_dir);
    let cache_dir = ctx.cache_dir.clone();
    let log = daemon.then(|| runtime.log_path());
    let rt = runtime.clone();
    let wait = if daemon {
        REGISTER_WAIT
    } else {
        std::time::Duration::from_millis(200)
    };
    let taken =
        tokio::task::spawn_blocking(move || Registration::acquire(&rt, &cache_dir, log, wait))
            .await?;
    let taken = match taken {
        Ok(t) => t,
        Err(e) if daemon => return Err(e.into()),
        // A foreground serve works without it, only unseen by `dpx daemon`.
        Err(e) => {
            tracing::warn!("{e}; `dpx daemon` commands will not see this serve");
            return Ok(None);
        }
    };
    if taken.is_none() {
        let holder = tokio::task::spawn_blocking(move || Registration::holder(&runtime)).await?;
        let who = holder.map_or_else(
            || "another dpx serve".to_string(),
            |s| {
                format!(
                    "dpx (pid {}) on {}",
                    s.pid,
                    s.address.as_deref().unwrap_or("an address not yet known")
                )
            },
        );
        if daemon {
            anyhow::bail!(
                "{who} already serves the cache {}; use it, or stop it with `dpx daemon stop`",
                ctx.cache_dir.display()
            );
        }
        tracing::info!(
            "{who} is this cache's daemon; `dpx daemon` commands will not see this serve"
        );
    }
    Ok(taken)
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
pub(crate) fn loopback_addr(listen: &str) -> Result<SocketAddr, UsageError> {
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
