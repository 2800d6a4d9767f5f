//! What Linux's /proc says about a running process: its memory and its open
//! descriptors, for tests that bound what hostile clients can make dpx hold.

use std::time::Duration;

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM` = peak RSS).
pub fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resident memory now, in KiB.
pub fn rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmRSS")
}

/// The highest resident memory the process has had, in KiB.
pub fn peak_rss_kb(pid: u32) -> u64 {
    status_kb(pid, "VmHWM")
}

/// How many descriptors the process has open.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

/// Waits (up to `timeout`) until the process has at most `bound` descriptors
/// open; returns the last count seen.
pub fn wait_for_fds_at_most(pid: u32, bound: usize, timeout: Duration) -> usize {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let n = open_fds(pid);
        if n <= bound || std::time::Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Raises this test process's open-files limit to at least `want` (soft up
/// to the hard limit; the hard limit too when running as root).
pub fn raise_nofile(want: u64) {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("getrlimit");
    if soft >= want {
        return;
    }
    let hard = hard.max(want);
    rlimit::setrlimit(rlimit::Resource::NOFILE, want, hard)
        .unwrap_or_else(|e| panic!("cannot raise RLIMIT_NOFILE to {want} (hard {hard}): {e}"));
}
