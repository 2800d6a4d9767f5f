//! The cache as a whole: its layout version and the cache-wide lock.
//!
//! Every process that uses the cache (serve, pull, prefetch, an ordinary
//! purge) holds `<root>/.lock` shared for as long as it runs; a whole-cache
//! operation (`purge --all`, a layout change) holds it exclusively. The
//! exclusive holder writes "pid command" into the lock file; each shared
//! holder writes its own `locks/users/<pid>` file, so a waiter can say whom it
//! waits for (uv's cache does the same dance around its `.lock`).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CacheError;
use crate::fsutil::{Busy, Held, LockFile, Wait, written_line};

/// The layout this dpx reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// How long an ordinary user of the cache waits for a whole-cache operation.
pub const DEFAULT_SHARED_WAIT: Duration = Duration::from_secs(120);
/// How often a waiter tries the lock again.
const POLL: Duration = Duration::from_millis(100);
/// How long a wait goes unmentioned.
const ANNOUNCE_AFTER: Duration = Duration::from_secs(1);

/// How a process holds the cache.
pub use crate::fsutil::Access;

/// The held cache-wide lock; released when the last `Cache` clone goes.
#[derive(Debug)]
pub struct RootLock {
    _held: Held,
    /// A shared holder's `locks/users/<pid>` file, removed on release.
    user_file: Option<PathBuf>,
    access: Access,
}

impl RootLock {
    pub fn access(&self) -> Access {
        self.access
    }
}

impl Drop for RootLock {
    fn drop(&mut self) {
        if let Some(path) = &self.user_file {
            let _ = fs::remove_file(path);
        }
    }
}

/// This process, as a waiter should see it: "1234 (dpx serve --listen ...)".
fn describe_self() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut line = args.join(" ");
    if line.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str("...");
    }
    format!("{} (dpx {line})", std::process::id())
}

/// Takes the cache-wide lock: `try_lock` first, then polls for up to `wait`,
/// saying once after a second whom it waits for.
pub fn lock_root(root: &Path, access: Access, wait: Duration) -> Result<RootLock, CacheError> {
    let path = root.join(".lock");
    let file = LockFile::open(&path).map_err(|source| CacheError::Open {
        path: root.to_path_buf(),
        source,
    })?;
    let waiting = Wait::up_to(wait, POLL)
        .holder(|file| holders(root, file))
        .announce_after(ANNOUNCE_AFTER, |holders| {
            tracing::warn!(
                "waiting for {holders} to finish with the cache {}",
                root.display()
            );
        });
    let mut held = match file.lock_within(access, waiting) {
        Ok(Ok(held)) => held,
        Ok(Err(Busy { holder })) => {
            return Err(CacheError::Busy {
                path: root.to_path_buf(),
                holders: holder,
                exclusive: access == Access::Exclusive,
                secs: wait.as_secs(),
            });
        }
        Err(e) => return Err(CacheError::write(&path, e)),
    };
    if access == Access::Exclusive {
        // No shared holder is left: their files are leftovers of killed processes.
        if let Ok(entries) = fs::read_dir(root.join("locks/users")) {
            for e in entries.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
        held.describe(&describe_self());
    }
    Ok(RootLock {
        _held: held,
        user_file: None,
        access,
    })
}

impl RootLock {
    /// A shared holder names itself in `locks/users/<pid>` (once the layout
    /// is known to be ours), for the messages of whoever waits for it.
    pub fn register(&mut self, root: &Path) {
        if self.access != Access::Shared || self.user_file.is_some() {
            return;
        }
        let users = root.join("locks/users");
        let path = users.join(std::process::id().to_string());
        let written = fs::create_dir_all(&users)
            .and_then(|()| fs::write(&path, format!("{}\n", describe_self())));
        self.user_file = written.is_ok().then_some(path);
    }
}

/// Who holds the lock, as their files say: the exclusive holder's line, else
/// the shared holders' pids and commands.
fn holders(root: &Path, file: &mut File) -> String {
    let exclusive = written_line(file);
    if !exclusive.is_empty() {
        return format!("dpx process {exclusive}");
    }
    let mut users: Vec<String> = fs::read_dir(root.join("locks/users"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| process_may_live(&e.file_name().to_string_lossy()))
        .filter_map(|e| fs::read_to_string(e.path()).ok())
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    users.sort();
    match users.len() {
        0 => "another dpx process".to_string(),
        _ => format!("dpx processes {}", users.join(", ")),
    }
}

/// Whether the process `pid` may still run: a killed holder's file stays
/// behind, and should not be named as a holder. Only Linux can tell cheaply.
pub(super) fn process_may_live(pid: &str) -> bool {
    if cfg!(target_os = "linux") {
        Path::new("/proc").join(pid).exists()
    } else {
        true
    }
}

/// `VERSION` is written aside as `<this><pid>` first; a process killed
/// before it linked the file into place leaves it for the sweep.
const VERSION_ASIDE: &str = ".VERSION.";

/// Whether `name`, in the cache root, is a `VERSION` written aside by a
/// process that is gone.
pub(super) fn is_dead_version_aside(name: &str) -> bool {
    name.strip_prefix(VERSION_ASIDE)
        .filter(|pid| pid.parse::<u32>().is_ok())
        .is_some_and(|pid| !process_may_live(pid))
}

/// Checks the layout version at `root`, writing it into a new cache. A cache
/// written by another layout is refused, not misread.
pub fn check_version(root: &Path) -> Result<(), CacheError> {
    let path = root.join("VERSION");
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u32>() {
            Ok(LAYOUT_VERSION) => Ok(()),
            _ => Err(CacheError::Layout {
                path,
                found: text.trim().chars().take(40).collect(),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Before VERSION existed the layout was version 1 already.
            // Written aside and linked into place: a reader never sees it empty.
            let aside = root.join(format!("{VERSION_ASIDE}{}", std::process::id()));
            fs::write(&aside, format!("{LAYOUT_VERSION}\n"))
                .and_then(|()| File::open(&aside)?.sync_all())
                .map_err(|e| CacheError::write(&aside, e))?;
            let linked = fs::hard_link(&aside, &path);
            let _ = fs::remove_file(&aside);
            match linked {
                Ok(()) => Ok(()),
                // Another process wrote it meanwhile: read what it wrote.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => check_version(root),
                Err(e) => Err(CacheError::write(&path, e)),
            }
        }
        Err(source) => Err(CacheError::Read { path, source }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Cache;
    use super::*;

    #[test]
    fn a_new_cache_gets_version_1_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        Cache::open(dir.path()).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("VERSION")).unwrap(),
            "1\n"
        );
        Cache::open(dir.path()).unwrap();
    }

    #[test]
    fn another_layout_is_refused_and_left_alone() {
        for found in ["2", "garbage"] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join("VERSION"), found).unwrap();
            let err = Cache::open(dir.path()).unwrap_err().to_string();
            assert!(err.contains(&format!("layout version {found:?}")), "{err}");
            assert!(err.contains("reads version 1"), "{err}");
            assert!(err.contains("--cache-dir"), "{err}");
            // Nothing of ours was created in it.
            assert!(!dir.path().join("blobs").exists());
            assert!(!dir.path().join("locks").exists());
            assert_eq!(
                fs::read_to_string(dir.path().join("VERSION")).unwrap(),
                found
            );
        }
    }

    #[test]
    fn exclusive_and_shared_exclude_each_other_and_name_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let shared = Cache::open(dir.path()).unwrap();
        let err = Cache::open_exclusive(dir.path(), Duration::ZERO).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, CacheError::Busy { .. }), "{text}");
        assert!(
            text.contains(&std::process::id().to_string()),
            "names the holder: {text}"
        );
        // Shared users share.
        let second = Cache::open_with(dir.path(), Access::Shared, Duration::ZERO).unwrap();
        drop((shared, second));
        let exclusive = Cache::open_exclusive(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(exclusive.access(), Access::Exclusive);
        let err = Cache::open_with(dir.path(), Access::Shared, Duration::ZERO)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("dpx process {}", std::process::id())),
            "{err}"
        );
        drop(exclusive);
        Cache::open_with(dir.path(), Access::Shared, Duration::ZERO).unwrap();
    }
}
