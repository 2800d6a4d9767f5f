//! The process figures every Prometheus exporter gives (`process_*`), read
//! from `/proc` at scrape time. Blocking reads: call it off the async workers.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFigures {
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

impl ProcessFigures {
    /// This process's figures; a figure `/proc` does not give is `None`.
    pub fn read() -> ProcessFigures {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
        let open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64);
        ProcessFigures {
            resident_bytes: resident_bytes(&status),
            open_fds,
            max_fds: max_fds(&limits),
        }
    }
}

/// `VmRSS:    1234 kB` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.strip_prefix("Max open files")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        assert_eq!(
            resident_bytes("Name:\tdpx\nVmRSS:\t    2048 kB\nVmData: 1 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(resident_bytes("Name:\tdpx\n"), None);
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_fds(limits), Some(1024));
        assert_eq!(max_fds("Max open files  unlimited unlimited files"), None);
    }

    #[test]
    fn reads_this_process() {
        let p = ProcessFigures::read();
        assert!(p.resident_bytes.is_some_and(|b| b > 0), "{p:?}");
        assert!(p.open_fds.is_some_and(|n| n > 0), "{p:?}");
    }
}
