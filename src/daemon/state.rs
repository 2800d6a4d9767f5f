//! One daemon per cache directory: its runtime directory, the lock the
//! serving process holds for as long as it runs, and the state file that
//! says where it listens.
//!
//! ```text
//! <runtime>/daemon.lock   held exclusively by the serving process; a looker
//!                         takes it shared for a moment: if it gets it, nobody serves
//! <runtime>/daemon.json   pid, address, start time, cache dir, version, log
//! <runtime>/start.lock    one `dpx daemon start` at a time
//! <runtime>/daemon.log    the started daemon's output (daemon.log.1, .2: older ones, see log.rs)
//! ```
//! `<runtime>` is `$XDG_RUNTIME_DIR/dpx/<hash of the cache dir>`, else the
//! cache's own `daemon/` directory. The lock, not the pid, says whether a
//! daemon runs: a pid in a state file may since belong to another process.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::DaemonError;
use crate::fsutil::{Access, AtomicWrite, Held, LockFile, Wait};

/// How often `dpx daemon start` tries the start lock again.
const START_POLL: Duration = Duration::from_millis(50);
/// How often a starting daemon tries its lock again (a looker holds it
/// shared for a moment only).
const ACQUIRE_POLL: Duration = Duration::from_millis(5);

/// Where one cache's daemon keeps its lock, state and log.
#[derive(Debug, Clone)]
pub struct RuntimeDir {
    dir: PathBuf,
}

/// What the serving process writes about itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct State {
    pub pid: u32,
    /// `127.0.0.1:PORT`; `None` while it is still binding.
    pub address: Option<String>,
    /// Unix seconds.
    pub started_at: u64,
    pub cache_dir: PathBuf,
    pub version: String,
    /// Set when `dpx daemon start` started it (its output goes there).
    pub log: Option<PathBuf>,
}

/// Whether a daemon serves the cache.
#[derive(Debug)]
pub enum Probe {
    Running(State),
    /// `stale`: the state a dead daemon left behind, now removed.
    NotRunning {
        stale: Option<State>,
    },
}

impl RuntimeDir {
    /// The runtime directory of the daemon for `cache_dir`.
    pub fn for_cache(cache_dir: &Path) -> RuntimeDir {
        let cache_dir = absolute(cache_dir);
        let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
            Some(runtime) if runtime.is_absolute() => {
                let hash = Sha256::digest(cache_dir.as_os_str().as_encoded_bytes());
                runtime.join("dpx").join(&hex::encode(hash)[..16])
            }
            _ => crate::cache::daemon_dir(&cache_dir),
        };
        RuntimeDir { dir }
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("daemon.log")
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }

    fn lock_path(&self) -> PathBuf {
        self.dir.join("daemon.lock")
    }

    /// Creates the directory (owner-only: it names a process and its port).
    pub fn create(&self) -> Result<(), DaemonError> {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| DaemonError::io("create", &self.dir, e))
    }

    fn open_lock(&self, name: &Path) -> Result<LockFile, DaemonError> {
        self.create()?;
        LockFile::open(name).map_err(|e| DaemonError::io("open", name, e))
    }

    /// Waits (up to `wait`) to be the one `dpx daemon start` at work.
    pub fn lock_start(&self, wait: Duration) -> Result<Held, DaemonError> {
        let path = self.dir.join("start.lock");
        let waited = self
            .open_lock(&path)?
            .lock_within(Access::Exclusive, Wait::up_to(wait, START_POLL))
            .map_err(|e| DaemonError::io("lock", &path, e))?;
        waited.map_err(|_| DaemonError::StartBusy {
            secs: wait.as_secs(),
            path,
        })
    }

    /// Whether a daemon serves this cache, cleaning up what a dead one left.
    pub fn probe(&self) -> Result<Probe, DaemonError> {
        let path = self.lock_path();
        if !self.dir.exists() {
            return Ok(Probe::NotRunning { stale: None });
        }
        let lock = self.open_lock(&path)?;
        match lock.try_lock(Access::Shared) {
            Ok(Ok(_looked)) => {
                // Nobody serves: a state file is a dead daemon's (killed -9, or
                // the machine went down). Removed under the lock, so a daemon
                // starting now cannot have written it.
                let stale = self.read_state()?;
                if stale.is_some() {
                    remove(&self.state_path())?;
                }
                Ok(Probe::NotRunning { stale })
            }
            Ok(Err(_held_elsewhere)) => {
                // A daemon holds it; it writes its state right after taking the
                // lock and its address right after binding.
                let deadline = Instant::now() + Duration::from_secs(5);
                loop {
                    let state = self.read_state()?;
                    match state {
                        Some(s) if s.address.is_some() || Instant::now() >= deadline => {
                            return Ok(Probe::Running(s));
                        }
                        // No state and the lock free again: it has stopped
                        // (a stopping daemon removes its state, then its lock).
                        None if self.is_free()? => {
                            return Ok(Probe::NotRunning { stale: None });
                        }
                        None if Instant::now() >= deadline => {
                            return Err(DaemonError::NoState {
                                path: self.state_path(),
                            });
                        }
                        _ => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }
            Err(e) => Err(DaemonError::io("lock", &path, e)),
        }
    }

    /// Whether the daemon lock is free now (its holder has exited).
    pub fn is_free(&self) -> Result<bool, DaemonError> {
        let path = self.lock_path();
        match self.open_lock(&path)?.try_lock(Access::Shared) {
            Ok(taken) => Ok(taken.is_ok()),
            Err(e) => Err(DaemonError::io("lock", &path, e)),
        }
    }

    fn read_state(&self) -> Result<Option<State>, DaemonError> {
        let path = self.state_path();
        match crate::operator_files::read(&path) {
            // An unreadable file is as good as none (written whole by rename).
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(DaemonError::io("read", &path, e)),
        }
    }

    /// Removes a dead daemon's state file (after `stop` had to kill it).
    pub fn clear_state(&self) -> Result<(), DaemonError> {
        remove(&self.state_path())
    }

    fn write_state(&self, state: &State) -> Result<(), DaemonError> {
        let path = self.state_path();
        let json = serde_json::to_vec_pretty(state)
            .map_err(|e| DaemonError::io("write", &path, io::Error::other(e)))?;
        AtomicWrite::new()
            .write(&path, &json)
            .map_err(|e| DaemonError::io("write", &path, e.source))
    }
}

/// The serving process's hold on its cache's daemon slot: the lock and the
/// state file, removed when it goes.
#[derive(Debug)]
pub struct Registration {
    runtime: RuntimeDir,
    state: State,
    _lock: Held,
}

impl Registration {
    /// Takes the daemon lock (polling up to `wait`: a looker holds it shared
    /// for a moment) and writes the state. `None`: another daemon has it.
    pub fn acquire(
        runtime: &RuntimeDir,
        cache_dir: &Path,
        log: Option<PathBuf>,
        wait: Duration,
    ) -> Result<Option<Registration>, DaemonError> {
        let path = runtime.lock_path();
        let waited = runtime
            .open_lock(&path)?
            .lock_within(Access::Exclusive, Wait::up_to(wait, ACQUIRE_POLL))
            .map_err(|e| DaemonError::io("lock", &path, e))?;
        let Ok(lock) = waited else {
            return Ok(None);
        };
        let state = State {
            pid: std::process::id(),
            address: None,
            started_at: crate::cache::now_secs(),
            cache_dir: absolute(cache_dir),
            version: env!("CARGO_PKG_VERSION").to_string(),
            log,
        };
        runtime.write_state(&state)?;
        Ok(Some(Registration {
            runtime: runtime.clone(),
            state,
            _lock: lock,
        }))
    }

    /// Records the address once bound: from now on lookers find it.
    pub fn set_address(&mut self, address: &str) -> Result<(), DaemonError> {
        self.state.address = Some(address.to_string());
        self.runtime.write_state(&self.state)
    }

    /// The daemon that holds the slot instead, for a message.
    pub fn holder(runtime: &RuntimeDir) -> Option<State> {
        runtime.read_state().ok().flatten()
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // Before the lock goes (with the file), so no looker sees it stale.
        let _ = remove(&self.runtime.state_path());
    }
}

fn remove(path: &Path) -> Result<(), DaemonError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(DaemonError::io("remove", path, e)),
    }
}

/// The path as one name for one directory: resolved when it exists, else
/// made absolute, so every dpx finds the same runtime directory for it.
pub fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_not_the_pid_says_whether_a_daemon_runs() {
        let dir = tempfile::tempdir().unwrap();
        let rt = RuntimeDir {
            dir: dir.path().join("rt"),
        };
        assert!(matches!(
            rt.probe().unwrap(),
            Probe::NotRunning { stale: None }
        ));
        let mut reg = Registration::acquire(&rt, dir.path(), None, Duration::ZERO)
            .unwrap()
            .unwrap();
        reg.set_address("127.0.0.1:1").unwrap();
        // A second would-be daemon does not get the slot.
        assert!(
            Registration::acquire(&rt, dir.path(), None, Duration::from_millis(50))
                .unwrap()
                .is_none()
        );
        match rt.probe().unwrap() {
            Probe::Running(s) => assert_eq!(s.address.as_deref(), Some("127.0.0.1:1")),
            other => panic!("{other:?}"),
        }
        // A state file naming a live process (this one) without the lock held: stale.
        let state = reg.state.clone();
        drop(reg);
        rt.write_state(&state).unwrap();
        match rt.probe().unwrap() {
            Probe::NotRunning { stale: Some(s) } => assert_eq!(s.pid, std::process::id()),
            other => panic!("{other:?}"),
        }
        assert!(
            rt.read_state().unwrap().is_none(),
            "the stale state is removed"
        );
    }
}
