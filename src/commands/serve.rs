//! `dpx serve`: the localhost registry mirror.

use std::process::ExitCode;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Context, Output};
use crate::cli::ServeArgs;
use crate::client_access::{self, AuthError, ClientAuth};
use crate::daemon::listen::{check_exposure, configured_addr};
use crate::daemon::{REGISTER_WAIT, Registration, RuntimeDir, activation};
use crate::exit::UsageError;
use crate::server::{
    ClientAccess, Egress, Gate, Limits, Server, Stats, bind, raise_fd_limit, tls_acceptor,
};
use tokio_rustls::TlsAcceptor;

pub async fn run(ctx: &Context, args: ServeArgs) -> anyhow::Result<ExitCode> {
    if args.print_password || args.reset_password || args.hash_password {
        return password_command(ctx, &args).await;
    }
    let addr = configured_addr(&ctx.config, args.listen.as_deref())?;
    let auth_on = client_access::enabled(&ctx.config, args.auth);
    check_exposure(addr, auth_on, args.insecure_no_auth)?;
    let (client_auth, tls) = load_secrets(ctx, &args, auth_on).await?;
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
    let fetcher = ctx.serve_fetcher(policy)?;
    // After the cache dir exists, so its name resolves as the daemon commands see it.
    let (registration, holder) = register(ctx, args.daemon).await?;
    if args.daemon {
        crate::daemon::log::rotate_by_size(RuntimeDir::for_cache(&ctx.cache_dir).log_path());
    }
    // Before the listening line, which tells scripts the server is ready.
    raise_fd_limit();
    let listener = listen(addr, auth_on, args.insecure_no_auth, holder.as_ref()).await?;
    if let Some(h) = &holder {
        tracing::info!(
            "dpx (pid {}) on {} is this cache's daemon; `dpx daemon` commands will not see this serve",
            h.pid,
            h.address.as_deref().unwrap_or("an address not yet known")
        );
    }
    let addr = listener.local_addr()?;
    let registration = match registration {
        Some(r) => publish_address(r, addr, args.daemon).await?,
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let gate = match client_auth {
        Some((auth, created)) => Some(client_gate(ctx, auth, created, tls.is_some(), addr)?),
        None => None,
    };
    let say = crate::daemon::log::say;
    say(&format!(
        "dpx serve: status page: {}",
        page_url(scheme, addr)
    ));
    // The one listening line, last (plain, whatever the log format: scripts wait for it).
    say(&format!(
        "dpx serve: listening on {scheme}://{addr} (cache {}, tag TTL {}s{})",
        ctx.cache_dir.display(),
        ctx.config.tag_ttl().as_secs(),
        if auth_on { ", client auth on" } else { "" }
    ));
    if let Some(max_size) = ctx.config.cache.max_size {
        fetcher.spawn_evictor(max_size);
    }
    let limits = limits(ctx, &args);
    let idle_timeout = limits.idle_timeout;
    let egress = Egress::new(ctx.config.serve.registries.clone());
    fetcher.spawn_sweep();
    let flusher = fetcher.spawn_usage_flusher();
    let access = ClientAccess { gate, tls };
    let server = Server::with_access(
        Arc::clone(&fetcher),
        ctx.config.tag_ttl(),
        limits,
        egress,
        access,
        ctx.config.serve.prefetch_blobs(),
    );
    let shutdown = stop_on_signal_or_idle(server.stats(), idle_timeout);
    server.run(listener, shutdown).await?;
    flusher.abort();
    fetcher.flush_usage().await;
    // The state file goes last: until then lookers see this daemon stopping.
    if let Some(r) = registration {
        let _ = tokio::task::spawn_blocking(move || drop(r)).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a browser on this machine opens the status page: the listening
/// address, or loopback when it listens on every address.
fn page_url(scheme: &str, addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("{scheme}://{addr}{}", crate::server::PAGE_PATH)
}

/// The client-auth secrets and the TLS certificate, read once, off the async
/// threads, and kept in memory: no request touches the disk for them.
async fn load_secrets(
    ctx: &Context,
    args: &ServeArgs,
    auth_on: bool,
) -> anyhow::Result<(Option<(ClientAuth, bool)>, Option<TlsAcceptor>)> {
    let tls_files = match (args.tls_cert.clone(), args.tls_key.clone()) {
        (Some(cert), Some(key)) => Some((cert, key)),
        _ => ctx
            .config
            .serve
            .tls_cert
            .clone()
            .zip(ctx.config.serve.tls_key.clone()),
    };
    let config = Arc::clone(&ctx.config);
    tokio::task::spawn_blocking(move || {
        let auth = if auth_on {
            Some(ClientAuth::load(&config).map_err(|e| match e {
                // A wrong [serve.auth.users] table is bad input (exit 2).
                AuthError::BadHash { .. } | AuthError::ReservedUser => {
                    anyhow::Error::from(UsageError(e.to_string()))
                }
                other => other.into(),
            })?)
        } else {
            None
        };
        let tls = match tls_files {
            Some((cert, key)) => Some(tls_acceptor(&cert, &key)?),
            None => None,
        };
        Ok::<_, anyhow::Error>((auth, tls))
    })
    .await
    .context("the worker thread failed")?
}

/// The socket systemd handed over, else `addr` bound now.
async fn listen(
    addr: SocketAddr,
    auth_on: bool,
    insecure_no_auth: bool,
    holder: Option<&crate::daemon::State>,
) -> anyhow::Result<tokio::net::TcpListener> {
    Ok(
        match activation::inherited()
            .map_err(|e| anyhow::anyhow!("cannot use the socket handed over by systemd: {e}"))?
        {
            Some(inherited) => {
                // The same rule as for an address of our own choosing.
                check_exposure(inherited.local_addr()?, auth_on, insecure_no_auth)?;
                tokio::net::TcpListener::from_std(inherited)?
            }
            None => match bind(addr).await {
                Ok(listener) => listener,
                // The port is taken by this cache's own server: say that, once.
                Err(e) => match holder.filter(|h| serves_on(h, addr)) {
                    Some(h) => anyhow::bail!(
                        "dpx serve (pid {}) already serves this cache on {addr}; use it (dpx daemon \
                         status shows it), or stop it first (dpx daemon stop)",
                        h.pid
                    ),
                    None => return Err(e),
                },
            },
        },
    )
}

/// Writes the address we listen on into the state file, for `dpx daemon`;
/// a daemon must manage it, a foreground serve goes on without it.
async fn publish_address(
    mut registration: Registration,
    addr: SocketAddr,
    daemon: bool,
) -> anyhow::Result<Option<Registration>> {
    let address = addr.to_string();
    match tokio::task::spawn_blocking(move || {
        registration.set_address(&address).map(|()| registration)
    })
    .await?
    {
        Ok(r) => Ok(Some(r)),
        Err(e) if daemon => Err(e.into()),
        Err(e) => {
            tracing::warn!("{e}; `dpx daemon` commands will not see this serve");
            Ok(None)
        }
    }
}

/// The client-auth gate, saying where a newly generated password is.
fn client_gate(
    ctx: &Context,
    auth: ClientAuth,
    created: bool,
    tls: bool,
    addr: SocketAddr,
) -> anyhow::Result<Gate> {
    if created {
        crate::daemon::log::say(&format!(
            "dpx serve: generated a password for the user `{}` in {}; show it with `dpx serve --print-password`",
            client_access::DPX_USER,
            client_access::password_path(&ctx.config)?.display()
        ));
    }
    if !tls && !addr.ip().to_canonical().is_loopback() {
        tracing::warn!(
            "client auth is on but without --tls-cert/--tls-key: only clients on this machine can log in (passwords and tokens are refused over plain HTTP from elsewhere)"
        );
    }
    Ok(Gate::new(Arc::new(auth), tls, addr))
}

/// Connection limits from `[serve]`; `--idle-timeout` wins over the file.
fn limits(ctx: &Context, args: &ServeArgs) -> Limits {
    let serve = &ctx.config.serve;
    let idle_timeout = match args.idle_timeout {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(t),
        None => serve.idle_timeout(args.daemon),
    };
    Limits {
        max_connections: serve.max_connections(),
        header_timeout: serve.header_timeout(),
        connection_idle_timeout: serve.connection_idle_timeout(),
        send_timeout: serve.send_timeout(),
        idle_timeout,
    }
}

/// Resolves on SIGINT/SIGTERM, or after `idle_timeout` without a request.
async fn stop_on_signal_or_idle(stats: Arc<Stats>, idle_timeout: Option<std::time::Duration>) {
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
    // Requests waiting on a credential helper end now, not at its deadline.
    crate::credentials::docker::stop_helpers();
}

/// Whether the server `state` describes listens on `addr`.
fn serves_on(state: &crate::daemon::State, addr: SocketAddr) -> bool {
    state
        .address
        .as_deref()
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .is_some_and(|a| {
            a.port() == addr.port()
                && (a.ip() == addr.ip() || a.ip().is_unspecified() || addr.ip().is_unspecified())
        })
}

/// Takes this cache's daemon slot (lock and state file), so `dpx daemon`
/// finds this server. A daemon must have it; a foreground serve goes on
/// without it when another server holds it, and gets that server's state.
async fn register(
    ctx: &Context,
    daemon: bool,
) -> anyhow::Result<(Option<Registration>, Option<crate::daemon::State>)> {
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
            return Ok((None, None));
        }
    };
    if taken.is_some() {
        return Ok((taken, None));
    }
    let holder = tokio::task::spawn_blocking(move || Registration::holder(&runtime)).await?;
    if daemon {
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
        anyhow::bail!(
            "{who} already serves the cache {}; use it, or stop it with `dpx daemon stop`",
            ctx.cache_dir.display()
        );
    }
    Ok((None, holder))
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

/// `--print-password`, `--reset-password`, `--hash-password`: a secret on
/// stdout alone, for `docker login --password-stdin` or a config file.
async fn password_command(ctx: &Context, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if ctx.output == Output::Json {
        return Err(UsageError(
            "the password options print the secret alone (for docker login --password-stdin): drop --json".into(),
        )
        .into());
    }
    let config = Arc::clone(&ctx.config);
    let secret = if args.hash_password {
        let mut password = String::new();
        std::io::stdin()
            .read_line(&mut password)
            .context("cannot read the password from stdin")?;
        let password = password.trim_end_matches(['\n', '\r']).to_string();
        if password.is_empty() {
            return Err(UsageError(
                "no password on stdin: e.g. `printf %s \"$PASSWORD\" | dpx serve --hash-password`"
                    .into(),
            )
            .into());
        }
        tokio::task::spawn_blocking(move || client_access::hash_password(&password)).await??
    } else if args.reset_password {
        let password =
            tokio::task::spawn_blocking(move || client_access::reset_dpx_password(&config))
                .await??;
        eprintln!(
            "dpx serve: new password for the user `{}` (a running dpx serve keeps the old one until restarted)",
            client_access::DPX_USER
        );
        password
    } else {
        let (password, _) =
            tokio::task::spawn_blocking(move || client_access::dpx_password(&config)).await??;
        eprintln!(
            "dpx serve: the password of the user `{}` (docker login -u {} --password-stdin HOST:PORT)",
            client_access::DPX_USER,
            client_access::DPX_USER
        );
        password
    };
    crate::stdout::with_stdout(|out| writeln!(out, "{secret}"))?;
    Ok(ExitCode::SUCCESS)
}
