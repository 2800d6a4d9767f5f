//! `serve`'s log lines on their way to stderr: gathered in memory and written
//! by a thread of their own a few times a second, one write for many lines.
//!
//! A queue that woke its writer for every line (tracing-appender's does) costs
//! a thread wake-up and a context switch per request, about a fifth of the
//! CPU a cached manifest costs. Here a line only appends to a buffer; the
//! writer wakes on a timer, when the buffer grows large, or when a line asks
//! to go out at once ([`LineQueue::push_now`], start-up lines). Nothing is
//! dropped: a buffer at its cap makes the logging thread wait for the writer,
//! and dropping the [`Flusher`] writes what is left.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in memory.
const TICK: Duration = Duration::from_millis(50);
/// A buffer this large is written without waiting for the tick.
const WAKE_AT: usize = 256 * 1024;
/// A buffer this large makes the logging threads wait (stderr is stuck or
/// slow): lossless, and memory stays bounded.
const CAP: usize = 8 * 1024 * 1024;

struct State {
    lines: Vec<u8>,
    /// The writer should not wait for the tick.
    hurry: bool,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer.
    wake: Condvar,
    /// Wakes threads waiting for room.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while appending left whole lines or a
        // partial one: still worth writing.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The queue's writing end, cheap to clone (tracing's `MakeWriter`).
#[derive(Clone)]
pub struct LineQueue {
    shared: Arc<Shared>,
}

/// Writes what is queued when dropped, then stops the writer thread: keep it
/// until the program ends.
#[must_use = "dropping the flusher stops the log"]
pub struct Flusher {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the writer thread; `out` gets whole lines, many at a time.
pub fn start<W: Write + Send + 'static>(mut out: W) -> io::Result<(LineQueue, Flusher)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            lines: Vec::new(),
            hurry: false,
            closed: false,
        }),
        wake: Condvar::new(),
        drained: Condvar::new(),
    });
    let for_thread = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("dpx-log".into())
        .spawn(move || write_until_closed(&for_thread, &mut out))?;
    Ok((
        LineQueue {
            shared: Arc::clone(&shared),
        },
        Flusher {
            shared,
            thread: Some(thread),
        },
    ))
}

fn write_until_closed(shared: &Shared, out: &mut impl Write) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared.lock();
            if !state.hurry && !state.closed {
                state = shared
                    .wake
                    .wait_timeout(state, TICK)
                    .map(|(s, _)| s)
                    .unwrap_or_else(|p| p.into_inner().0);
            }
            std::mem::swap(&mut batch, &mut state.lines);
            state.hurry = false;
            state.closed
        };
        shared.drained.notify_all();
        if !batch.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
        }
        if closed && shared.lock().lines.is_empty() {
            return;
        }
    }
}

impl LineQueue {
    /// Queues `line` (whole lines) to go out with the next batch.
    pub fn push(&self, line: &[u8]) {
        self.append(line, false);
    }

    /// Queues `line` and has the writer write it now.
    pub fn push_now(&self, line: &[u8]) {
        self.append(line, true);
    }

    fn append(&self, line: &[u8], now: bool) {
        let mut state = self.shared.lock();
        while state.lines.len() >= CAP && !state.closed {
            state = self
                .shared
                .drained
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        if state.closed {
            // Shutting down: the writer may be gone already.
            drop(state);
            let _ = io::stderr().write_all(line);
            return;
        }
        state.lines.extend_from_slice(line);
        if now || state.lines.len() >= WAKE_AT {
            state.hurry = true;
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

impl Write for LineQueue {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LineQueue {
    type Writer = LineQueue;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        self.shared.drained.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` the test can read back, counting the writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_arrives_in_order_and_many_lines_share_a_write() {
        let sink = Sink::default();
        let (queue, flusher) = start(sink.clone()).unwrap();
        let mut want = Vec::new();
        for n in 0..10_000 {
            let line = format!("line {n}\n");
            queue.push(line.as_bytes());
            want.extend_from_slice(line.as_bytes());
        }
        drop(flusher);
        let (got, writes) = sink.0.lock().unwrap().clone();
        assert_eq!(got, want);
        assert!(writes < 100, "{writes} writes for 10,000 lines");
    }

    #[test]
    fn a_line_pushed_now_goes_out_before_the_tick() {
        let sink = Sink::default();
        let (queue, _flusher) = start(sink.clone()).unwrap();
        // Let the writer settle into its wait first.
        std::thread::sleep(Duration::from_millis(5));
        queue.push_now(b"listening\n");
        let deadline = std::time::Instant::now() + TICK / 2;
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(std::time::Instant::now() < deadline, "not written at once");
            std::thread::yield_now();
        }
        assert_eq!(sink.0.lock().unwrap().0, b"listening\n");
    }

    #[test]
    fn a_full_buffer_waits_for_the_writer_and_loses_nothing() {
        /// Writes slowly, so the queue fills up.
        struct Slow(Sink);
        impl Write for Slow {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let (queue, flusher) = start(Slow(sink.clone())).unwrap();
        let line = vec![b'x'; 64 * 1024];
        let lines = 3 * CAP / line.len();
        for _ in 0..lines {
            queue.push(&line);
            assert!(queue.shared.lock().lines.len() <= CAP + line.len());
        }
        drop(flusher);
        assert_eq!(sink.0.lock().unwrap().0.len(), lines * line.len());
    }
}
