//! Lanes: a thread per core, each running a single-threaded runtime, and
//! each accepted connection served whole on one of them (nginx's worker
//! processes, as threads). A connection's requests, its timers and the work
//! its requests start (a download, a prefetch) stay on its lane's thread.
//!
//! Why not the work-stealing runtime every other command uses: under load it
//! moved connection tasks between its workers and woke idle workers to steal
//! them. With lanes, on this project's 2-core benchmark machine (bench/run,
//! 7 repetitions before and after), cached manifest GETs at 16 connections
//! went from 96k to 113k requests/s (p99 1.55 to 1.45 ms), at 64 from 105k
//! to 126k; small blobs at 16 from 95k to 109k (p99 1.79 to 1.07 ms); cold
//! and warm pulls did not change.
//! The cost: a lane busy with one connection's CPU work (parsing a large
//! manifest) delays its other connections, not the whole server's.

use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

/// What a lane runs for a connection: it is called on the lane's thread,
/// inside its runtime, so sockets it registers and tasks it spawns are the
/// lane's.
pub(super) type Job = Box<dyn FnOnce() + Send>;

/// Tasks still running when the lanes close get this long to end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

pub(super) struct Lanes {
    senders: Vec<mpsc::UnboundedSender<Job>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl Lanes {
    /// Starts `n` lanes (at least one).
    pub(super) fn start(n: usize) -> std::io::Result<Lanes> {
        let mut lanes = Lanes {
            senders: Vec::new(),
            threads: Vec::new(),
            next: 0,
        };
        for i in 0..n.max(1) {
            // Built here, so a runtime that cannot start is this call's error.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            let thread = std::thread::Builder::new()
                .name(format!("dpx-lane-{i}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        while let Some(job) = rx.recv().await {
                            job();
                        }
                    });
                    runtime.shutdown_timeout(CLOSE_TIMEOUT);
                })?;
            lanes.senders.push(tx);
            lanes.threads.push(thread);
        }
        Ok(lanes)
    }

    /// Hands `job` to the next lane in turn; gives it back if that lane has
    /// stopped (its thread panicked).
    pub(super) fn run(&mut self, job: Job) -> Result<(), Job> {
        let Some(lane) = self.senders.get(self.next) else {
            return Err(job);
        };
        self.next = (self.next + 1) % self.senders.len();
        lane.send(job).map_err(|e| e.0)
    }

    /// Closes every lane: the tasks still running on them are stopped
    /// (within `CLOSE_TIMEOUT`), and this returns once their threads end,
    /// or after `wait` at most.
    pub(super) fn close(mut self, wait: Duration) {
        self.senders.clear();
        let (done_tx, done_rx) = std_mpsc::channel();
        let threads = std::mem::take(&mut self.threads);
        // Joined on a thread of its own, so that the wait is bounded.
        let _ = std::thread::Builder::new()
            .name("dpx-lanes-close".into())
            .spawn(move || {
                for t in threads {
                    let _ = t.join();
                }
                let _ = done_tx.send(());
            });
        let _ = done_rx.recv_timeout(wait);
    }
}

/// One lane per core this process may use.
pub(super) fn count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn jobs_run_on_the_lanes_in_turn_inside_their_runtimes() {
        let mut lanes = Lanes::start(2).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (done_tx, done_rx) = std_mpsc::channel();
        for _ in 0..4 {
            let (seen, done) = (Arc::clone(&seen), done_tx.clone());
            let job: Job = Box::new(move || {
                let name = std::thread::current().name().unwrap_or("").to_string();
                // Inside the lane's runtime: a task can be spawned there.
                tokio::spawn(async move {
                    seen.lock().unwrap().push(name);
                    done.send(()).unwrap();
                });
            });
            assert!(lanes.run(job).is_ok());
        }
        for _ in 0..4 {
            done_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        let mut names = seen.lock().unwrap().clone();
        names.sort();
        assert_eq!(
            names,
            ["dpx-lane-0", "dpx-lane-0", "dpx-lane-1", "dpx-lane-1"]
        );
        lanes.close(Duration::from_secs(10));
    }

    #[test]
    fn closing_stops_what_still_runs_on_the_lanes() {
        let mut lanes = Lanes::start(1).unwrap();
        let (started_tx, started_rx) = std_mpsc::channel();
        let stopped = Arc::new(Mutex::new(false));
        struct OnDrop(Arc<Mutex<bool>>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = true;
            }
        }
        let guard = OnDrop(Arc::clone(&stopped));
        let job: Job = Box::new(move || {
            tokio::spawn(async move {
                let _guard = guard;
                started_tx.send(()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        assert!(lanes.run(job).is_ok());
        started_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        lanes.close(Duration::from_secs(10));
        assert!(*stopped.lock().unwrap(), "a task outlived its lane");
    }
}
