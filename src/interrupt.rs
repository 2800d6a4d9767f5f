//! Ctrl-C (SIGINT) and SIGTERM stop a command the same way: its futures are
//! dropped, which removes its partial downloads and temp files, and the
//! process exits with the signal's conventional code (128 + its number).
//! Without a handler SIGTERM would kill the process on the spot and leave
//! them behind.

use crate::exit;

/// Resolves at the first SIGINT or SIGTERM with the exit code for it. The
/// handlers are in place from the first poll.
pub async fn stop_signal() -> u8 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => exit::INTERRUPTED,
                _ = term.recv() => exit::TERMINATED,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    exit::INTERRUPTED
}

/// What to say on stderr when `code` (from `stop_signal`) stopped a command.
pub fn stopped_by(code: u8) -> &'static str {
    if code == exit::TERMINATED {
        "terminated"
    } else {
        "interrupted"
    }
}
