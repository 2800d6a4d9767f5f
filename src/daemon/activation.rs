//! Socket activation (the systemd `LISTEN_FDS`/`LISTEN_PID` protocol): a
//! listening socket handed over by systemd or `systemd-socket-activate`, so
//! the first connection to the port starts dpx.

use std::net::TcpListener;
use std::sync::Mutex;

/// The inherited socket, taken from the environment before the runtime's
/// threads start (taking it unsets `LISTEN_*`, which is not thread-safe).
static INHERITED: Mutex<Option<std::io::Result<TcpListener>>> = Mutex::new(None);

/// Takes the first inherited listening socket, if this process was given
/// one. Call it once, early in `main`, before any thread starts.
pub fn capture() {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return;
    }
    if fds.len() > 1 {
        tracing::warn!(
            "{} sockets were handed over; dpx serves on the first only",
            fds.len()
        );
    }
    let taken = fds.take_tcp_listener(0).and_then(|l| {
        l.ok_or_else(|| {
            std::io::Error::other(
                "the socket handed over (LISTEN_FDS) is not a TCP listening socket; \
                 dpx serves TCP: use ListenStream=127.0.0.1:PORT in the .socket unit",
            )
        })
    });
    if let Ok(mut slot) = INHERITED.lock() {
        *slot = Some(taken);
    }
}

/// The socket `capture` took, ready for tokio (non-blocking); `None` when
/// dpx was not socket-activated.
pub fn inherited() -> std::io::Result<Option<TcpListener>> {
    let taken = INHERITED.lock().ok().and_then(|mut slot| slot.take());
    match taken {
        None => Ok(None),
        Some(Err(e)) => Err(e),
        Some(Ok(listener)) => {
            listener.set_nonblocking(true)?;
            Ok(Some(listener))
        }
    }
}
