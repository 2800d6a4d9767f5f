//! Where `dpx serve` listens (the flag or `DPX_LISTEN`, else `[serve] listen`,
//! else 127.0.0.1:5000), and whether it may listen there without client auth.

use std::net::SocketAddr;

use crate::config::{Config, DEFAULT_LISTEN};
use crate::exit::UsageError;

/// Where serve listens: the flag (or `DPX_LISTEN`), else `[serve] listen`,
/// else 127.0.0.1:5000.
pub fn configured_addr(config: &Config, flag: Option<&str>) -> Result<SocketAddr, UsageError> {
    let listen = flag
        .or(config.serve.listen.as_deref())
        .unwrap_or(DEFAULT_LISTEN);
    listen_addr(listen)
}

/// The listen address: `IP:PORT` or `localhost:PORT`.
pub fn listen_addr(listen: &str) -> Result<SocketAddr, UsageError> {
    match listen.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}").parse(),
        None => listen.parse(),
    }
    .map_err(|_| {
        UsageError(format!(
            "invalid listen address {listen:?}: use IP:PORT, e.g. 127.0.0.1:5000"
        ))
    })
}

/// Off loopback (anything outside 127.0.0.0/8 and ::1, `0.0.0.0` included),
/// anyone who can reach the port could read every cached (even private)
/// image and fill the disk with images of their choosing: that needs client
/// auth, or the explicit `--insecure-no-auth`.
pub fn check_exposure(
    addr: SocketAddr,
    auth_on: bool,
    insecure_no_auth: bool,
) -> Result<(), UsageError> {
    if addr.ip().to_canonical().is_loopback() || auth_on {
        return Ok(());
    }
    if insecure_no_auth {
        tracing::warn!(
            "listening on {addr} without client authentication (--insecure-no-auth): anyone who can reach it can read every cached image and make dpx download any image"
        );
        return Ok(());
    }
    Err(UsageError(format!(
        "refusing to listen on {addr}: without client authentication dpx serve listens on loopback only \
         (127.0.0.1:PORT or [::1]:PORT); turn it on with --auth (or [serve.auth] enabled = true), \
         or pass --insecure-no-auth to let anyone who can reach {addr} read every cached image"
    )))
}

#[cfg(test)]
mod tests {
    use super::{check_exposure, listen_addr};

    fn allowed(listen: &str, auth: bool, insecure: bool) -> bool {
        check_exposure(listen_addr(listen).unwrap(), auth, insecure).is_ok()
    }

    #[test]
    fn off_loopback_needs_auth_or_the_explicit_insecure_flag() {
        for ok in [
            "127.0.0.1:5000",
            "[::1]:0",
            "localhost:5000",
            "127.0.0.2:1",
            "[::ffff:127.0.0.1]:1",
        ] {
            assert!(allowed(ok, false, false), "{ok}");
        }
        for off in ["0.0.0.0:5000", "[::]:5000", "192.0.2.1:5000"] {
            assert!(!allowed(off, false, false), "{off}");
            assert!(allowed(off, true, false), "{off}");
            assert!(allowed(off, false, true), "{off}");
        }
        let err = check_exposure(listen_addr("0.0.0.0:1").unwrap(), false, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--auth") && err.contains("--insecure-no-auth"),
            "{err}"
        );
        for bad in ["5000", "localhost", "x:1"] {
            assert!(listen_addr(bad).is_err(), "{bad}");
        }
    }
}
