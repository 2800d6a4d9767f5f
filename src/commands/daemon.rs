//! `dpx daemon start|stop|status|logs|ensure`: `dpx serve` in the background,
//! one per cache directory, started on demand.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Output, run_blocking};
use crate::cli::{DaemonCommand, DaemonStartArgs, GlobalArgs};
use crate::daemon::{self, Launch, Probe, RuntimeDir, State};
use crate::exit;
use crate::server::ServerStatus;
use crate::stdout::{print_json, with_stdout};
use crate::units::human_bytes;

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    command: DaemonCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        DaemonCommand::Start(args) => start(ctx, global, &args, false).await,
        DaemonCommand::Ensure(args) => start(ctx, global, &args, true).await,
        DaemonCommand::Stop => stop(ctx).await,
        DaemonCommand::Status { ensure, start } => status(ctx, global, ensure, &start).await,
        DaemonCommand::Logs { follow } => logs(ctx, follow).await,
    }
}

/// What `start` and `ensure` print with `--json`.
#[derive(Serialize)]
struct StartReport<'a> {
    address: &'a str,
    url: String,
    pid: u32,
    /// False: it was running already.
    started: bool,
    cache_dir: &'a std::path::Path,
    log: Option<&'a std::path::Path>,
}

/// `dpx daemon status --json`.
#[derive(Serialize)]
pub struct DaemonStatus {
    pub running: bool,
    pub cache_dir: std::path::PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// The status page's URL (`GET /` of the daemon).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Bytes of content in the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<std::path::PathBuf>,
    /// The daemon's live figures (requests, hits, misses, uptime; the
    /// rate-limit figures and pulls saved are `server.quota`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerStatus>,
}

fn runtime(ctx: &Context) -> RuntimeDir {
    RuntimeDir::for_cache(&ctx.cache_dir)
}

/// Tells about what a dead daemon left behind (it was cleaned up).
fn report_stale(stale: Option<&State>) {
    if let Some(s) = stale {
        eprintln!(
            "dpx daemon: the daemon that ran as pid {} ({}) is gone without stopping \
             (killed, or the machine restarted); removed what it left behind",
            s.pid,
            s.address.as_deref().unwrap_or("no address yet")
        );
    }
}

/// This binary as `dpx serve --daemon`, with the flags that pick its cache and config.
fn launch(ctx: &Context, global: &GlobalArgs, args: &DaemonStartArgs) -> anyhow::Result<Launch> {
    let exe = std::env::current_exe().context("cannot find the dpx binary to start")?;
    let mut global_args: Vec<OsString> = vec!["--cache-dir".into(), ctx.cache_dir.clone().into()];
    if let Some(config) = &global.config {
        global_args.push("--config".into());
        global_args.push(daemon::absolute(config).into());
    }
    for _ in 0..global.verbose {
        global_args.push("-v".into());
    }
    let mut serve_args: Vec<OsString> = Vec::new();
    if let Some(listen) = &args.listen {
        serve_args.push("--listen".into());
        serve_args.push(listen.into());
    }
    if let Some(t) = args.idle_timeout {
        serve_args.push("--idle-timeout".into());
        serve_args.push(format!("{}s", t.as_secs()).into());
    }
    Ok(Launch {
        exe,
        global_args,
        serve_args,
    })
}

async fn ensure_running(
    ctx: &Context,
    global: &GlobalArgs,
    args: &DaemonStartArgs,
) -> anyhow::Result<daemon::Started> {
    // The cache dir exists before its name is resolved, as the daemon sees it.
    let dir = ctx.cache_dir.clone();
    tokio::task::spawn_blocking(move || std::fs::create_dir_all(&dir))
        .await?
        .with_context(|| {
            format!(
                "cannot create the cache directory {}",
                ctx.cache_dir.display()
            )
        })?;
    let launch = launch(ctx, global, args)?;
    let started = daemon::start(&runtime(ctx), &launch).await?;
    report_stale(started.stale.as_ref());
    Ok(started)
}

async fn start(
    ctx: &Context,
    global: &GlobalArgs,
    args: &DaemonStartArgs,
    quiet_if_running: bool,
) -> anyhow::Result<ExitCode> {
    let started = ensure_running(ctx, global, args).await?;
    let (state, address) = (&started.state, &started.address);
    if ctx.output == Output::Json {
        print_json(&StartReport {
            address,
            url: format!("http://{address}"),
            pid: state.pid,
            started: started.started,
            cache_dir: &ctx.cache_dir,
            log: state.log.as_deref(),
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    if ctx.output == Output::Human && (started.started || !quiet_if_running) {
        let what = if started.started {
            "started"
        } else {
            "already running"
        };
        eprintln!(
            "dpx daemon: {what} (pid {}) on http://{address}, cache {}",
            state.pid,
            ctx.cache_dir.display()
        );
        let asked = args
            .listen
            .as_deref()
            .and_then(|l| crate::daemon::listen::listen_addr(l).ok());
        if let Some(asked) = asked
            && !started.started
            && asked.port() != 0
            && address.parse().ok() != Some(asked)
        {
            let listen = asked;
            eprintln!(
                "dpx daemon: it listens on {address}, not {listen}; to move it: `dpx daemon stop`, then start it again"
            );
        }
    }
    let line = format!("{address}\n");
    with_stdout(|out| out.write_all(line.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}

async fn stop(ctx: &Context) -> anyhow::Result<ExitCode> {
    let (stopped, probe) = daemon::stop(&runtime(ctx)).await?;
    if let Probe::NotRunning { stale } = &probe {
        report_stale(stale.as_ref());
    }
    if ctx.output == Output::Json {
        print_json(&serde_json::json!({
            "stopped": stopped.is_some(),
            "pid": stopped.as_ref().map(|s| s.pid),
        }))?;
    } else if ctx.output == Output::Human {
        match &stopped {
            Some(s) => eprintln!("dpx daemon: stopped (pid {})", s.pid),
            None => eprintln!(
                "dpx daemon: not running for the cache {}",
                ctx.cache_dir.display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn status(
    ctx: &Context,
    global: &GlobalArgs,
    ensure: bool,
    args: &DaemonStartArgs,
) -> anyhow::Result<ExitCode> {
    let state = if ensure {
        Some(ensure_running(ctx, global, args).await?.state)
    } else {
        let rt = runtime(ctx);
        match tokio::task::spawn_blocking(move || rt.probe()).await?? {
            Probe::Running(s) => Some(s),
            Probe::NotRunning { stale } => {
                report_stale(stale.as_ref());
                None
            }
        }
    };
    let Some(state) = state else {
        return not_running(ctx);
    };
    let address = state
        .address
        .clone()
        .ok_or(daemon::DaemonError::NoAddress { pid: state.pid })?;
    let server = match daemon::status(&address).await {
        Ok(s) => s,
        // Closed its listener and finishing in-flight requests: wait for it
        // to go, rather than call a stopping daemon broken.
        Err(e) if daemon::wait_stopped(&runtime(ctx)).await? => {
            tracing::debug!("the daemon stopped while asked: {e}");
            return not_running(ctx);
        }
        Err(e) => return Err(e.into()),
    };
    let cache = ctx.open_cache()?;
    let cache_size = tokio::task::spawn_blocking(move || cache.inventory())
        .await??
        .total_size();
    let report = DaemonStatus {
        running: true,
        cache_dir: ctx.cache_dir.clone(),
        status_page: Some(format!("http://{address}{}", crate::server::PAGE_PATH)),
        address: Some(address),
        pid: Some(state.pid),
        cache_size: Some(cache_size),
        log: state.log.clone(),
        server: Some(server),
    };
    if ctx.output == Output::Json {
        print_json(&report)?;
    } else {
        let text = render(&report);
        with_stdout(|out| out.write_all(text.as_bytes()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `status` of a cache no daemon serves: exit 1.
fn not_running(ctx: &Context) -> anyhow::Result<ExitCode> {
    let report = DaemonStatus {
        running: false,
        cache_dir: ctx.cache_dir.clone(),
        address: None,
        status_page: None,
        pid: None,
        cache_size: None,
        log: None,
        server: None,
    };
    if ctx.output == Output::Json {
        print_json(&report)?;
    } else {
        let line = format!(
            "not running (cache {}); start it with `dpx daemon start`\n",
            ctx.cache_dir.display()
        );
        with_stdout(|out| out.write_all(line.as_bytes()))?;
    }
    Ok(ExitCode::from(exit::FAILURE))
}

fn render(r: &DaemonStatus) -> String {
    let mut text = String::from("running\n");
    let mut line = |k: &str, v: String| text.push_str(&format!("  {k:<10} {v}\n"));
    if let Some(a) = &r.address {
        line("address", format!("http://{a}"));
    }
    if let Some(page) = &r.status_page {
        line(
            "page",
            format!("{page} (status page, open it in a browser)"),
        );
    }
    if let Some(p) = r.pid {
        line("pid", p.to_string());
    }
    if let Some(s) = &r.server {
        line(
            "uptime",
            humantime::format_duration(Duration::from_secs(s.uptime_secs)).to_string(),
        );
    }
    line(
        "cache",
        format!(
            "{} ({})",
            r.cache_dir.display(),
            human_bytes(r.cache_size.unwrap_or(0))
        ),
    );
    if let Some(s) = &r.server {
        line(
            "requests",
            format!(
                "{} served, {} in flight; {} hits, {} misses ({} revalidated, {} stale)",
                s.requests, s.in_flight, s.hits, s.misses, s.revalidated, s.stale
            ),
        );
        line(
            "idle stop",
            match s.idle_timeout_secs {
                Some(t) => format!(
                    "after {} without a request (idle for {})",
                    humantime::format_duration(Duration::from_secs(t)),
                    humantime::format_duration(Duration::from_secs(s.idle_secs))
                ),
                None => "never".into(),
            },
        );
        if let Some(q) = &s.quota {
            let p = &q.pulls;
            line(
                "manifests",
                format!(
                    "{} from the cache, {} revalidated by HEAD, {} stale; upstream: {} GETs (pulls), {} HEADs",
                    p.cache_hits,
                    p.revalidated,
                    p.stale_upstream_failed.saturating_add(p.stale_quota_saved),
                    p.upstream_manifest_gets,
                    p.upstream_manifest_heads
                ),
            );
            for f in &q.figures {
                let figures = match (f.remaining, f.limit) {
                    (Some(r), Some(l)) => format!("{r} of {l} pulls left"),
                    (Some(r), None) => format!("{r} pulls left"),
                    _ => "no figures".to_string(),
                };
                line(
                    "quota",
                    format!("{} as {}: {figures}", f.registry, f.identity),
                );
            }
        }
    }
    if let Some(l) = &r.log {
        line("log", l.display().to_string());
    }
    text
}

async fn logs(ctx: &Context, follow: bool) -> anyhow::Result<ExitCode> {
    let path = runtime(ctx).log_path();
    if ctx.output == Output::Json {
        if follow {
            return Err(crate::exit::UsageError(
                "--follow streams the log as text: drop --json (or drop --follow for the log as one JSON document)"
                    .into(),
            )
            .into());
        }
        let shown = path.clone();
        // The log as a document: its last MAX_JSON_LOG bytes at most.
        let text = tokio::task::spawn_blocking(move || log_tail(&path, MAX_JSON_LOG))
            .await
            .context("the log reader failed")?
            .map_err(|e| {
                anyhow::anyhow!(
                    "no daemon log at {}: {e}; the log is written by a daemon that `dpx daemon start` started",
                    shown.display()
                )
            })?;
        let text = String::from_utf8_lossy(&text);
        print_json(&serde_json::json!({
            "file": shown,
            "lines": text.lines().collect::<Vec<_>>(),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let done = run_blocking(move |cancel: &AtomicBool| print_log(&path, follow, cancel)).await?;
    Ok(match done {
        super::Finished::Done(()) | super::Finished::Interrupted(_) => ExitCode::SUCCESS,
    })
}

/// How much of the log `dpx daemon logs --json` shows (its end).
const MAX_JSON_LOG: u64 = 8 * 1024 * 1024;

/// The last `max` bytes of a file, from the first whole line in them.
fn log_tail(path: &std::path::Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Seek as _, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    if start > 0
        && let Some(i) = bytes.iter().position(|b| *b == b'\n')
    {
        bytes.drain(..=i);
    }
    Ok(bytes)
}

/// Copies the log to stdout; with `follow`, goes on with what is appended
/// (from the start again when a new daemon's log replaces it) until cancelled.
fn print_log(path: &std::path::Path, follow: bool, cancel: &AtomicBool) -> anyhow::Result<()> {
    let open = |path: &std::path::Path| {
        std::fs::File::open(path).map_err(|e| {
            anyhow::anyhow!(
                "no daemon log at {}: {e}; the log is written by a daemon that `dpx daemon start` \
                 started (one that systemd started logs to its journal: journalctl --user -u dpx)",
                path.display()
            )
        })
    };
    let mut file = open(path)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n > 0 {
            with_stdout(|out| out.write_all(&buf[..n]))?;
            continue;
        }
        if !follow || cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
        // Rotated (a new daemon started): read the new file from its start.
        use std::os::unix::fs::MetadataExt;
        let replaced = match (std::fs::metadata(path), file.metadata()) {
            (Ok(now), Ok(open)) => now.ino() != open.ino(),
            _ => false,
        };
        if replaced && let Ok(f) = open(path) {
            file = f;
            file.seek(SeekFrom::Start(0))?;
        }
    }
}
