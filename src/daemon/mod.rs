//! The on-demand daemon: `dpx serve` started in the background for one cache
//! directory, found again through its lock and state file, asked for its
//! live figures over `GET /_dpx/status`, stopped with SIGTERM.

pub mod activation;
pub mod listen;
pub mod log;
pub mod log_clock;
mod log_queue;
mod state;
pub mod v2_probe;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub use state::{Probe, Registration, RuntimeDir, State, absolute};
use v2_probe::V2Probe;

use crate::server::{STATUS_PATH, ServerStatus};

/// How long `dpx daemon start` waits for the daemon to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a start waits for other starts of the same cache's daemon.
const START_LOCK_TIMEOUT: Duration = Duration::from_secs(90);
/// SIGTERM lets in-flight responses finish (10 s in serve), then SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a daemon waits for a looker's momentary hold on its lock.
pub const REGISTER_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "another `dpx daemon start` for this cache did not finish within {secs}s (it holds {path}); \
         wait for it, or stop it"
    )]
    StartBusy { secs: u64, path: PathBuf },
    #[error(
        "a daemon holds this cache's daemon lock but wrote no state file ({path}); \
         try again in a moment, or stop it with `dpx daemon stop`"
    )]
    NoState { path: PathBuf },
    #[error("cannot start the daemon ({exe}): {source}")]
    Spawn {
        exe: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the daemon exited while starting ({status}); the end of its log ({log}):\n{tail}\n\
         see the whole log with `dpx daemon logs`"
    )]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "the daemon (pid {pid}) did not answer within {secs}s; it is still running: \
         see its log with `dpx daemon logs` ({log}), or stop it with `dpx daemon stop`"
    )]
    StartTimeout { pid: u32, secs: u64, log: PathBuf },
    #[error("the daemon (pid {pid}) runs but does not say its address yet; try again in a moment")]
    NoAddress { pid: u32 },
    #[error("cannot signal the daemon (pid {pid}): {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error("the daemon (pid {pid}) did not exit after SIGKILL; check it with `ps {pid}`")]
    Unkillable { pid: u32 },
    #[error("the daemon on {address} did not answer its status: {message}")]
    Status { address: String, message: String },
}

impl DaemonError {
    fn io(what: &'static str, path: &Path, source: std::io::Error) -> DaemonError {
        DaemonError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to run the daemon: this dpx binary, with the global flags that pick
/// the config and cache, as `dpx serve --daemon`.
#[derive(Debug, Clone)]
pub struct Launch {
    pub exe: PathBuf,
    /// Global flags before `serve` (`--cache-dir` (absolute), `--config`, `-v`).
    pub global_args: Vec<OsString>,
    /// Flags after `serve` (`--listen`, `--idle-timeout`).
    pub serve_args: Vec<OsString>,
}

/// What `start` found or did.
#[derive(Debug)]
pub struct Started {
    pub state: State,
    /// The address it answers on.
    pub address: String,
    /// False: it was running already.
    pub started: bool,
    /// What a dead daemon had left behind, cleaned up on the way.
    pub stale: Option<State>,
}

/// The daemon's address, once it answers `GET /v2/`; starts it if no daemon
/// serves the cache. Concurrent calls start one daemon and all get its address.
pub async fn start(runtime: &RuntimeDir, launch: &Launch) -> Result<Started, DaemonError> {
    let rt = runtime.clone();
    let (start_lock, probe) = blocking(move || {
        let lock = rt.lock_start(START_LOCK_TIMEOUT)?;
        let probe = rt.probe()?;
        Ok((lock, probe))
    })
    .await?;
    let v2 = loopback_probe();
    let stale = match probe {
        Probe::Running(state) => match wait_for_answer(&v2, runtime, &state).await? {
            Some(address) => {
                return Ok(Started {
                    state,
                    address,
                    started: false,
                    stale: None,
                });
            }
            // It was stopping (idle, or `dpx daemon stop`): start another.
            None => None,
        },
        Probe::NotRunning { stale } => stale,
    };
    let rt = runtime.clone();
    let launch = launch.clone();
    let mut child = blocking(move || spawn(&rt, &launch)).await?;
    let log = runtime.log_path();
    let deadline = Instant::now() + START_TIMEOUT;
    let pid = child.id();
    let result = loop {
        if let Ok(Some(status)) = child.try_wait() {
            // It may have lost a race with a daemon not started by `start`
            // (a foreground `dpx serve`): then that one is the answer.
            let rt = runtime.clone();
            if let Probe::Running(state) = blocking(move || rt.probe()).await?
                && let Some(address) = wait_for_answer(&v2, runtime, &state).await?
            {
                break Ok(Started {
                    state,
                    address,
                    started: false,
                    stale,
                });
            }
            let log2 = log.clone();
            let tail = blocking(move || Ok(log_tail(&log2, 20))).await?;
            break Err(DaemonError::Exited { status, log, tail });
        }
        let rt = runtime.clone();
        if let Probe::Running(state) = blocking(move || rt.probe()).await?
            && state.pid == pid
            && let Some(address) = state.address.clone()
            && v2.answers(&address).await
        {
            break Ok(Started {
                state,
                address,
                started: true,
                stale,
            });
        }
        if Instant::now() >= deadline {
            break Err(DaemonError::StartTimeout {
                pid,
                secs: START_TIMEOUT.as_secs(),
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    drop(start_lock);
    result
}

/// Re-runs this binary as `dpx serve --daemon` in its own session, its
/// output appended to the log (the previous daemon's log kept as `.1`; the
/// daemon rotates it by size, see `log`).
fn spawn(runtime: &RuntimeDir, launch: &Launch) -> Result<std::process::Child, DaemonError> {
    runtime.create()?;
    let log = runtime.log_path();
    if std::fs::metadata(&log).is_ok_and(|m| m.len() > 0) {
        self::log::shift(&log).map_err(|e| DaemonError::io("rotate", &log, e))?;
    }
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(|e| DaemonError::io("open", &log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| DaemonError::io("open", &log, e))?;
    Command::new(&launch.exe)
        .args(&launch.global_args)
        .arg("serve")
        .arg("--daemon")
        .args(&launch.serve_args)
        // Its sockets are its own, not ours (and never the activated one).
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|source| DaemonError::Spawn {
            exe: launch.exe.clone(),
            source,
        })
}

/// Waits for a running daemon's address and first answer; `None` when it
/// stops meanwhile.
async fn wait_for_answer(
    probe: &V2Probe,
    runtime: &RuntimeDir,
    state: &State,
) -> Result<Option<String>, DaemonError> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut state = state.clone();
    loop {
        if let Some(address) = &state.address
            && probe.answers(address).await
        {
            return Ok(Some(address.clone()));
        }
        if Instant::now() >= deadline {
            return Err(match state.address {
                None => DaemonError::NoAddress { pid: state.pid },
                Some(_) => DaemonError::StartTimeout {
                    pid: state.pid,
                    secs: START_TIMEOUT.as_secs(),
                    log: state.log.unwrap_or_else(|| runtime.log_path()),
                },
            });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        let rt = runtime.clone();
        match blocking(move || rt.probe()).await? {
            Probe::Running(s) => state = s,
            Probe::NotRunning { .. } => return Ok(None),
        }
    }
}

/// Stops the daemon: SIGTERM, up to 20 s for in-flight requests, then
/// SIGKILL. `None`: none was running.
pub async fn stop(runtime: &RuntimeDir) -> Result<(Option<State>, Probe), DaemonError> {
    let rt = runtime.clone();
    let probe = blocking(move || rt.probe()).await?;
    let Probe::Running(state) = &probe else {
        return Ok((None, probe));
    };
    let state = state.clone();
    let pid = state.pid;
    signal(pid, rustix::process::Signal::TERM)?;
    if !wait_free(runtime, STOP_TIMEOUT).await? {
        tracing::warn!(
            "the daemon (pid {pid}) did not stop within {}s of SIGTERM; killing it",
            STOP_TIMEOUT.as_secs()
        );
        signal(pid, rustix::process::Signal::KILL)?;
        if !wait_free(runtime, Duration::from_secs(5)).await? {
            return Err(DaemonError::Unkillable { pid });
        }
        let rt = runtime.clone();
        blocking(move || rt.clear_state()).await?;
    }
    Ok((Some(state), probe))
}

fn signal(pid: u32, sig: rustix::process::Signal) -> Result<(), DaemonError> {
    let raw = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    let Some(target) = raw else {
        return Err(DaemonError::Signal {
            pid,
            source: std::io::Error::other("not a valid pid"),
        });
    };
    match rustix::process::kill_process(target, sig) {
        Ok(()) => Ok(()),
        // Gone already: what we wanted.
        Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(DaemonError::Signal {
            pid,
            source: e.into(),
        }),
    }
}

/// Whether a daemon that stopped answering lets go of its lock within the
/// time a graceful stop takes (it is draining, then gone).
pub async fn wait_stopped(runtime: &RuntimeDir) -> Result<bool, DaemonError> {
    wait_free(runtime, STOP_TIMEOUT).await
}

/// Whether the daemon lock was let go within `timeout`.
async fn wait_free(runtime: &RuntimeDir, timeout: Duration) -> Result<bool, DaemonError> {
    let deadline = Instant::now() + timeout;
    loop {
        let rt = runtime.clone();
        if blocking(move || rt.is_free()).await? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The running daemon's live figures.
pub async fn status(address: &str) -> Result<ServerStatus, DaemonError> {
    let fail = |message: String| DaemonError::Status {
        address: address.to_string(),
        message,
    };
    let resp = client()
        .get(format!("http://{address}{STATUS_PATH}"))
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(fail(format!("HTTP {}", resp.status())));
    }
    resp.json().await.map_err(|e| fail(e.to_string()))
}

/// The `/v2/` probe of a starting daemon's address.
fn loopback_probe() -> V2Probe {
    V2Probe::new(Duration::from_secs(2), Duration::from_secs(5))
}

/// A client for our own loopback endpoint: no proxy, short deadlines.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// The last `lines` lines of a log file ("" when unreadable).
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs file work (locks, state files) off the async worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, DaemonError> + Send + 'static,
) -> Result<T, DaemonError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| DaemonError::Io {
            what: "run",
            path: PathBuf::from("a worker thread"),
            source: std::io::Error::other(e),
        })?
}
