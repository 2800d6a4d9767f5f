//! Lock files: advisory `flock`s, shared or exclusive, that the kernel drops
//! with the process, so a killed holder never leaves a lock behind. Taking
//! one tries first and then, when asked, waits a bounded time, polling (the
//! waiter stays interruptible and can say whom it waits for). An exclusive
//! holder may write a line about itself into the file for waiters to name.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How a lock is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// With any other shared holders; excludes an exclusive one.
    Shared,
    Exclusive,
}

/// An open lock file, not (yet) held.
#[derive(Debug)]
pub struct LockFile {
    file: File,
}

/// A held lock, released when dropped.
#[derive(Debug)]
pub struct Held {
    file: File,
}

/// The lock was still held by someone else when the wait ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy {
    /// Who holds it, as [`Wait::holder`] describes them.
    pub holder: String,
}

/// Tells whom a wait is for, once it has lasted a while.
type Announce<'a> = Box<dyn FnMut(&str) + 'a>;

/// How long and how to wait for a lock.
pub struct Wait<'a> {
    limit: Duration,
    poll: Duration,
    holder: Box<dyn FnMut(&mut File) -> String + 'a>,
    announce: Option<(Duration, Announce<'a>)>,
}

impl<'a> Wait<'a> {
    /// Tries every `poll` for up to `limit`; the holder is named by the line
    /// it wrote into the lock file ([`Held::describe`]).
    pub fn up_to(limit: Duration, poll: Duration) -> Self {
        Wait {
            limit,
            poll,
            holder: Box::new(written_line),
            announce: None,
        }
    }

    /// Names the holder some other way (read when needed, not at every poll).
    pub fn holder(mut self, describe: impl FnMut(&mut File) -> String + 'a) -> Self {
        self.holder = Box::new(describe);
        self
    }

    /// Once the wait has lasted `after`, tells `say` whom it waits for (once).
    pub fn announce_after(mut self, after: Duration, say: impl FnMut(&str) + 'a) -> Self {
        self.announce = Some((after, Box::new(say)));
        self
    }
}

impl LockFile {
    /// Opens `path`, creating it empty when missing (never truncating what a
    /// holder wrote).
    pub fn open(path: &Path) -> io::Result<LockFile> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        Ok(LockFile { file })
    }

    /// Takes the lock if it is free now; the unheld file back when another
    /// process holds it.
    pub fn try_lock(self, access: Access) -> io::Result<Result<Held, LockFile>> {
        let tried = match access {
            Access::Shared => self.file.try_lock_shared(),
            Access::Exclusive => self.file.try_lock(),
        };
        match tried {
            Ok(()) => Ok(Ok(Held { file: self.file })),
            Err(TryLockError::WouldBlock) => Ok(Err(self)),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    /// Takes the lock, blocking for as long as it takes: only for locks held
    /// for moments, off the async runtime.
    pub fn lock(self, access: Access) -> io::Result<Held> {
        match access {
            Access::Shared => self.file.lock_shared()?,
            Access::Exclusive => self.file.lock()?,
        }
        Ok(Held { file: self.file })
    }

    /// Takes the lock: tries first, then polls within `wait`'s bound; who
    /// holds it when the time is up.
    pub fn lock_within(self, access: Access, mut wait: Wait<'_>) -> io::Result<Result<Held, Busy>> {
        let started = Instant::now();
        let mut unheld = self;
        loop {
            unheld = match unheld.try_lock(access)? {
                Ok(held) => return Ok(Ok(held)),
                Err(unheld) => unheld,
            };
            let waited = started.elapsed();
            if waited >= wait.limit {
                let holder = (wait.holder)(&mut unheld.file);
                return Ok(Err(Busy { holder }));
            }
            if let Some((after, _)) = &wait.announce
                && waited >= *after
                && let Some((_, mut say)) = wait.announce.take()
            {
                say(&(wait.holder)(&mut unheld.file));
            }
            std::thread::sleep(wait.poll.min(wait.limit.saturating_sub(waited)));
        }
    }
}

impl Held {
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Replaces the file's text with `line`, for waiters to name this holder.
    /// Best effort: it only feeds their messages.
    pub fn describe(&mut self, line: &str) {
        let _ = self
            .file
            .set_len(0)
            .and_then(|()| self.file.rewind())
            .and_then(|()| writeln!(self.file, "{line}"));
    }
}

/// The text a holder wrote into the lock file, trimmed; empty when none.
pub fn written_line(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    text.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_millis(5);

    fn open(dir: &tempfile::TempDir) -> LockFile {
        LockFile::open(&dir.path().join("x.lock")).unwrap()
    }

    #[test]
    fn shared_holders_share_and_exclude_an_exclusive_one() {
        let dir = tempfile::tempdir().unwrap();
        let first = open(&dir).try_lock(Access::Shared).unwrap().unwrap();
        let second = open(&dir).try_lock(Access::Shared).unwrap().unwrap();
        assert!(open(&dir).try_lock(Access::Exclusive).unwrap().is_err());
        drop(first);
        assert!(open(&dir).try_lock(Access::Exclusive).unwrap().is_err());
        drop(second);
        let exclusive = open(&dir).try_lock(Access::Exclusive).unwrap().unwrap();
        assert!(open(&dir).try_lock(Access::Shared).unwrap().is_err());
        assert!(open(&dir).try_lock(Access::Exclusive).unwrap().is_err());
        drop(exclusive);
        open(&dir).lock(Access::Exclusive).unwrap();
    }

    #[test]
    fn a_bounded_wait_names_the_holder_and_says_so_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut holder = open(&dir).try_lock(Access::Exclusive).unwrap().unwrap();
        holder.describe("a much longer line that an earlier holder left");
        holder.describe("1234 (dpx purge --all)");
        let mut said = Vec::new();
        let wait = Wait::up_to(Duration::from_millis(30), POLL)
            .announce_after(Duration::ZERO, |who| said.push(who.to_string()));
        let busy = open(&dir)
            .lock_within(Access::Shared, wait)
            .unwrap()
            .unwrap_err();
        assert_eq!(busy.holder, "1234 (dpx purge --all)");
        assert_eq!(said, ["1234 (dpx purge --all)"]);

        let wait = Wait::up_to(Duration::ZERO, POLL).holder(|_| "someone else".into());
        let busy = open(&dir)
            .lock_within(Access::Exclusive, wait)
            .unwrap()
            .unwrap_err();
        assert_eq!(busy.holder, "someone else");
    }

    #[test]
    fn a_wait_ends_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let holder = open(&dir).try_lock(Access::Exclusive).unwrap().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let release = std::thread::spawn(move || {
            // Released once the waiter has tried at least once.
            rx.recv().unwrap();
            drop(holder);
        });
        let mut tx = Some(tx);
        let wait =
            Wait::up_to(Duration::from_secs(60), POLL).announce_after(Duration::ZERO, |_| {
                let _ = tx.take().map(|tx| tx.send(()));
            });
        let held = open(&dir).lock_within(Access::Exclusive, wait).unwrap();
        assert!(held.is_ok(), "{held:?}");
        release.join().unwrap();
    }
}
