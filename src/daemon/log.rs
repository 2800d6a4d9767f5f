//! The daemon's log, rotated by size. `dpx daemon start` points the daemon's
//! stdout and stderr at `daemon.log`; once the daemon has written `max`
//! bytes there, the files shift (`daemon.log` -> `.1` -> `.2`, the oldest
//! dropped) and a new `daemon.log` takes over both descriptors, so panics and
//! stray prints land in the current file too. The log lines go through
//! [`writer`], which counts them and rotates between two lines, never inside one.
//!
//! `serve` logs a line per request: there [`buffered`] hands the lines to a
//! thread of their own, which writes them in batches (one write for many
//! lines), so a request never waits for the log file nor wakes a thread.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

pub use super::log_queue::Flusher;
use super::log_queue::{self, LineQueue};

/// The size a daemon log file is rotated at (`10MiB`, `64KiB`, bytes).
pub const MAX_SIZE_VAR: &str = "DPX_LOG_MAX_SIZE";
const DEFAULT_MAX_SIZE: u64 = 10 * 1024 * 1024;
/// Files kept: `daemon.log` and this many older ones.
const KEEP_OLD: usize = 2;

struct Rotation {
    path: PathBuf,
    max: u64,
    written: AtomicU64,
    /// One rotation at a time.
    rotating: Mutex<()>,
}

static ROTATION: OnceLock<Rotation> = OnceLock::new();

/// The rotation size from [`MAX_SIZE_VAR`], else 10 MiB.
pub fn max_size() -> u64 {
    let Some(text) = std::env::var(MAX_SIZE_VAR).ok().filter(|v| !v.is_empty()) else {
        return DEFAULT_MAX_SIZE;
    };
    match text.parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() >= 1024 => size.as_u64(),
        _ => {
            tracing::warn!("{MAX_SIZE_VAR}={text:?} is not a size of at least 1KiB; using 10MiB");
            DEFAULT_MAX_SIZE
        }
    }
}

/// Makes room for a new `daemon.log`: each kept file moves up one number,
/// the oldest is removed. Nothing to do when there is no log.
pub fn shift(log: &Path) -> io::Result<()> {
    let numbered = |n: usize| {
        let mut name = log.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    for n in (1..KEEP_OLD).rev() {
        match std::fs::rename(numbered(n), numbered(n + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    match std::fs::rename(log, numbered(1)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Rotates `log` by size from now on, when this process's stderr is that file
/// (a daemon `dpx daemon start` started; anything else is left alone).
#[cfg(unix)]
pub fn rotate_by_size(log: PathBuf) {
    use std::os::fd::AsFd as _;
    use std::os::unix::fs::MetadataExt as _;
    let stderr = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .and_then(|fd| std::fs::File::from(fd).metadata());
    let (Ok(stderr), Ok(file)) = (stderr, std::fs::metadata(&log)) else {
        return;
    };
    if (stderr.dev(), stderr.ino()) != (file.dev(), file.ino()) {
        return;
    }
    let _ = ROTATION.set(Rotation {
        path: log,
        max: max_size(),
        written: AtomicU64::new(file.len()),
        rotating: Mutex::new(()),
    });
}

#[cfg(not(unix))]
pub fn rotate_by_size(_log: PathBuf) {}

/// The log writer (`tracing_subscriber`'s `MakeWriter`): stderr, counted
/// while the daemon log rotates.
pub fn writer() -> Writer {
    Writer
}

/// One log line's writer; the line is whole when it is dropped.
pub struct Writer;

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = io::stderr().write(buf)?;
        if let Some(r) = ROTATION.get() {
            r.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Some(r) = ROTATION.get()
            && r.written.load(Ordering::Relaxed) >= r.max
        {
            r.rotate();
        }
    }
}

/// Lines written on a thread of their own, in batches ([`log_queue`]);
/// nothing is dropped. The flusher writes what is queued when dropped: keep
/// it until the program ends. Falls back to writing each line at once when
/// no thread can be started. `plain_text`: `tracing` writes the log as plain
/// text, no JSON, no colours ([`request`] then writes its lines itself).
pub fn buffered(
    plain_text: bool,
) -> (
    tracing_subscriber::fmt::writer::BoxMakeWriter,
    Option<Flusher>,
) {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    match log_queue::start(Batches) {
        Ok((queue, flusher)) => {
            let _ = QUEUE.set(Queue {
                lines: queue.clone(),
                plain_text,
            });
            (BoxMakeWriter::new(queue), Some(flusher))
        }
        Err(e) => {
            eprintln!("cannot start the log's writer thread ({e}); writing each line at once");
            (BoxMakeWriter::new(writer), None)
        }
    }
}

/// The buffered log's queue, once `buffered` made it.
static QUEUE: OnceLock<Queue> = OnceLock::new();

struct Queue {
    lines: LineQueue,
    /// The log is plain text without colours (a daemon's log file, a pipe).
    plain_text: bool,
}

/// Logs `serve`'s line for a request, at `INFO` under `dpx::server`.
///
/// The busiest line dpx writes: one per request. Through `tracing`'s
/// formatter it cost a tenth of a cached manifest's instructions (the
/// message is re-read a character at a time for escape sequences); so when
/// the log is plain text and buffered, the line is written here in the very
/// same form (`<time>  INFO <line>`). Its text is made by the server from a
/// request target `http` already limited to visible ASCII, numbers and fixed
/// words, so it has nothing to escape. Otherwise, and whenever `tracing`
/// would not log it, it goes through `tracing`.
pub fn request(line: std::fmt::Arguments<'_>) {
    if !tracing::enabled!(target: "dpx::server", tracing::Level::INFO) {
        return;
    }
    match QUEUE.get() {
        Some(queue) if queue.plain_text => {
            use std::fmt::Write as _;
            LINE.with_borrow_mut(|text| {
                text.clear();
                let written = super::log_clock::write_stamp(std::time::SystemTime::now(), text)
                    .and_then(|()| text.write_str("  INFO "))
                    .and_then(|()| text.write_fmt(line))
                    .and_then(|()| text.write_char('\n'));
                if written.is_ok() {
                    queue.lines.push(text.as_bytes());
                }
            });
        }
        _ => tracing::info!(target: "dpx::server", "{line}"),
    }
}

thread_local! {
    /// A request line's text, reused.
    static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Prints a plain line on stderr in order with the log, at once: through the
/// log's queue when it is buffered (else a warning logged before would come
/// out after it), straight to stderr otherwise.
pub fn say(line: &str) {
    let text = format!("{line}\n");
    match QUEUE.get() {
        Some(queue) => queue.lines.push_now(text.as_bytes()),
        None => {
            let _ = io::stderr().write_all(text.as_bytes());
        }
    }
}

/// Whole lines to stderr (the queue hands over only whole lines), counted
/// for rotation.
struct Batches;

impl Write for Batches {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(r) = ROTATION.get() else {
            return io::stderr().write(buf);
        };
        // A batch holds many lines: write up to the line that crosses the
        // limit, rotate, and leave the rest to the next call (`write_all`).
        let room = r.max.saturating_sub(r.written.load(Ordering::Relaxed));
        let part = usize::try_from(room)
            .ok()
            .filter(|&room| room < buf.len())
            .and_then(|room| {
                let from = room.saturating_sub(1);
                let newline = buf.get(from..)?.iter().position(|&b| b == b'\n')?;
                Some(from + newline + 1)
            })
            .unwrap_or(buf.len());
        let n = io::stderr().write(buf.get(..part).unwrap_or(buf))?;
        r.written.fetch_add(n as u64, Ordering::Relaxed);
        // Only between two lines.
        if n == part
            && buf.get(..n).is_some_and(|w| w.ends_with(b"\n"))
            && r.written.load(Ordering::Relaxed) >= r.max
        {
            r.rotate();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl Rotation {
    fn rotate(&self) {
        let Ok(_one) = self.rotating.lock() else {
            return;
        };
        // Another line's writer may have rotated meanwhile.
        if self.written.load(Ordering::Relaxed) < self.max {
            return;
        }
        match self.reopen() {
            Ok(()) => self.written.store(0, Ordering::Relaxed),
            Err(e) => {
                // Keep writing where we are; try again after another `max`.
                self.written.store(0, Ordering::Relaxed);
                eprintln!("cannot rotate the log {}: {e}", self.path.display());
            }
        }
    }

    #[cfg(unix)]
    fn reopen(&self) -> io::Result<()> {
        shift(&self.path)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        rustix::stdio::dup2_stdout(&file)?;
        rustix::stdio::dup2_stderr(&file)?;
        Ok(())
    }

    #[cfg(not(unix))]
    fn reopen(&self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifting_keeps_a_bounded_number_of_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("daemon.log");
        for n in 0..5 {
            std::fs::write(&log, format!("run {n}")).unwrap();
            shift(&log).unwrap();
        }
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["daemon.log.1", "daemon.log.2"]);
        let newest = std::fs::read_to_string(dir.path().join("daemon.log.1")).unwrap();
        assert_eq!(newest, "run 4");
        // No log yet: nothing to shift.
        shift(&dir.path().join("none.log")).unwrap();
    }
}
