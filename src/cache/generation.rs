//! A change counter shared by every dpx process using the cache:
//! `<root>/generation`, eight bytes mapped shared into each of them. A
//! process that replaces a tag record or removes a stored file adds one
//! after the change, so a copy kept in memory (the hot set) can tell with one
//! load, instead of a stat per file per request, that nothing it read has
//! changed since it last looked.
//!
//! Only dpx's own writes bump it: a file changed by hand, by a writer killed
//! between its change and the bump, or by a dpx that predates the counter is
//! not signalled, so readers still look at the files at least every
//! `RECHECK` (the hot set: a stat of each of its two files).

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an unchanged counter vouches for what a reader saw: the bound on
/// how late a change the counter does not signal is noticed.
pub const RECHECK: Duration = Duration::from_secs(1);

const FILE: &str = "generation";

/// The mapped counter; without one (the file could not be made or mapped)
/// there is no value, and readers check the files every time.
#[derive(Debug, Default)]
pub(super) struct Generation {
    map: Option<memmap2::MmapMut>,
}

impl Generation {
    /// Maps `<root>/generation`, creating it (zero) if needed.
    pub(super) fn open(root: &Path) -> Generation {
        match map(root) {
            Ok(map) => Generation { map: Some(map) },
            Err(e) => {
                tracing::debug!("no shared change counter in {}: {e}", root.display());
                Generation::default()
            }
        }
    }

    fn counter(&self) -> Option<&AtomicU64> {
        let map = self.map.as_ref()?;
        // SAFETY: the mapping is at least 8 bytes (checked when made) and
        // page-aligned, so aligned for an AtomicU64; it lives as long as
        // `self`. Every process touches these bytes only atomically.
        Some(unsafe { &*map.as_ptr().cast::<AtomicU64>() })
    }

    /// The counter now, or `None` when there is none.
    pub(super) fn current(&self) -> Option<u64> {
        self.counter().map(|c| c.load(Ordering::Acquire))
    }

    /// Says that something changed: call after the change is done.
    pub(super) fn bump(&self) {
        if let Some(c) = self.counter() {
            c.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Bumps when dropped: for an operation that may change files on any
    /// of its ways out (errors and interruptions included).
    pub(super) fn bump_when_done(&self) -> BumpOnDrop<'_> {
        BumpOnDrop(self)
    }
}

pub(super) struct BumpOnDrop<'a>(&'a Generation);

impl Drop for BumpOnDrop<'_> {
    fn drop(&mut self) {
        self.0.bump();
    }
}

fn map(root: &Path) -> std::io::Result<memmap2::MmapMut> {
    let file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join(FILE))?;
    // Only a new file: reserving again would touch an existing one's times.
    if file.metadata()?.len() < 8 {
        reserve(&file)?;
    }
    // SAFETY: the file is 8 bytes with storage behind them (`reserve`), and
    // dpx never shrinks it, so the mapped bytes stay backed; the other
    // writers are dpx processes using the same atomic operations.
    let map = unsafe { memmap2::MmapOptions::new().len(8).map_mut(&file)? };
    Ok(map)
}

/// Makes the file at least 8 bytes long with disk space behind them,
/// leaving any bytes it has as they are (two processes creating it at once
/// both do this; neither resets a counter in use). Without the space, the
/// first write to the mapped page on a full disk would be a SIGBUS, not an
/// error.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn reserve(file: &File) -> std::io::Result<()> {
    rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, 8)?;
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn reserve(_file: &File) -> std::io::Result<()> {
    Err(std::io::Error::other(
        "no way to reserve the counter's disk space on this platform",
    ))
}

/// What a reader keeps with what it read: the counter's value when it
/// last found the files unchanged, and when that was.
pub(super) struct Checked {
    generation: AtomicU64,
    /// Nanoseconds since `EPOCH`; `u64::MAX` when never vouched for.
    pub(super) at: AtomicU64,
}

/// The start of the clock `Checked::at` counts on.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

fn nanos_since_epoch() -> u64 {
    u64::try_from(EPOCH.elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

impl Checked {
    pub(super) fn new(generation: Option<u64>) -> Checked {
        let checked = Checked {
            generation: AtomicU64::new(0),
            at: AtomicU64::new(u64::MAX),
        };
        checked.record(generation);
        checked
    }

    /// The files were unchanged with the counter at `generation`.
    pub(super) fn record(&self, generation: Option<u64>) {
        if let Some(g) = generation {
            // A reader seeing the new time with the old value only stats
            // once more: the pair need not change as one.
            self.generation.store(g, Ordering::Relaxed);
            self.at.store(nanos_since_epoch(), Ordering::Relaxed);
        }
    }

    /// Whether the entry may be used without looking at its files: the
    /// counter is where it was when they were last found unchanged, and
    /// that was less than `RECHECK` ago.
    pub(super) fn vouches(&self, generation: Option<u64>) -> bool {
        self.vouches_at(generation, nanos_since_epoch())
    }

    pub(super) fn vouches_at(&self, generation: Option<u64>, now: u64) -> bool {
        let Some(g) = generation else {
            return false;
        };
        let at = self.at.load(Ordering::Relaxed);
        let recheck = u64::try_from(RECHECK.as_nanos()).unwrap_or(u64::MAX);
        at != u64::MAX
            && self.generation.load(Ordering::Relaxed) == g
            && now.saturating_sub(at) < recheck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_in_one_opening_is_seen_by_another_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Generation::open(dir.path()), Generation::open(dir.path()));
        let before = b.current().expect("a counter");
        a.bump();
        assert_eq!(b.current(), Some(before + 1));
        b.bump();
        assert_eq!(a.current(), Some(before + 2));
        // Opening again neither resets nor moves it.
        assert_eq!(Generation::open(dir.path()).current(), Some(before + 2));
    }

    #[test]
    fn without_a_file_there_is_no_counter_and_bumping_is_harmless() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no/such/dir");
        let g = Generation::open(&missing);
        assert_eq!(g.current(), None);
        g.bump();
        assert_eq!(g.current(), None);
    }
}
