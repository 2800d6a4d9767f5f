//! Typed upstream failures, and the one classification (`RegistryError::failure`)
//! that decides whether to retry and whether a cached copy may stand in.

use std::time::Duration;

use crate::printable::printable;
use crate::reference::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {}: {}", printable(.url), printable(.reason))]
    Unreachable { url: String, reason: String },
    #[error("{} not found at {}", printable(.what), printable(.url))]
    NotFound { what: String, url: String },
    #[error(
        "{} refused access ({status}): {}; if the image is private, log in first",
        printable(.url),
        printable(.message)
    )]
    Denied {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{} answered 429 Too Many Requests: {}", printable(.url), printable(.message))]
    RateLimited {
        url: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{} answered {status}: {}", printable(.url), printable(.message))]
    Status {
        url: String,
        status: u16,
        message: String,
        /// The server's `Retry-After`, when it sent one (503s may).
        retry_after: Option<Duration>,
    },
    #[error("{}: expected {expected}, received content hashing to {actual}", printable(.what))]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("token request to {} failed: {}", printable(.realm), printable(.message))]
    Token { realm: String, message: String },
    /// The token service turned the credentials for an upstream host down.
    #[error(
        "{} refused the credentials for {host} ({status}): {}; `dpx login --list` \
         shows where they come from, `dpx login {host}` replaces them",
        printable(.realm),
        printable(.message)
    )]
    LoginRefused {
        realm: String,
        host: String,
        status: u16,
        message: String,
    },
    #[error("unexpected reply from {}: {}", printable(.url), printable(.message))]
    Protocol { url: String, message: String },
    #[error("download from {} broke off: {}", printable(.url), printable(.reason))]
    Body { url: String, reason: String },
    /// A registry the config file does not name led to a non-public address
    /// (the same words whatever is listening there: no port scanning).
    #[error(
        "{host} is not a public address: dpx serve connects to loopback, private and link-local \
         addresses only for registries with a [registries.\"HOST\"] table in the config file"
    )]
    NonPublic { url: String, host: String },
}

/// What a failure says about the upstream, which decides what happens next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// May pass if tried again shortly (cargo's "spurious"): connection
    /// failures, timeouts, 5xx, 429, a body cut short or too slow.
    Spurious,
    /// The upstream is broken in a way that trying again won't fix (a redirect
    /// loop, an oversized or malformed reply, TLS, the token server): no retry,
    /// but a cached copy may stand in for its answer.
    Broken,
    /// The upstream answered: the thing doesn't exist, access is denied, or the
    /// content is not what was asked for. Final.
    Answer,
}

impl RegistryError {
    pub fn failure(&self) -> Failure {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::RateLimited { .. }
            | RegistryError::Body { .. } => Failure::Spurious,
            RegistryError::Status { status, .. } if *status >= 500 => Failure::Spurious,
            RegistryError::Token { .. } | RegistryError::Protocol { .. } => Failure::Broken,
            RegistryError::Status { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::Denied { .. }
            | RegistryError::LoginRefused { .. }
            | RegistryError::NonPublic { .. }
            | RegistryError::DigestMismatch { .. } => Failure::Answer,
        }
    }

    /// Worth trying again (after `retry_after`, when the server said).
    pub fn is_spurious(&self) -> bool {
        self.failure() == Failure::Spurious
    }

    /// The upstream failed to answer (as opposed to answering "no"): a cached
    /// copy may be served instead.
    pub fn is_upstream_failure(&self) -> bool {
        self.failure() != Failure::Answer
    }

    /// How long the server asked us to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::RateLimited { retry_after, .. }
            | RegistryError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Maps a transport error, telling spurious failures (refused or reset
    /// connections, timeouts, a body cut short) from permanent ones (TLS, a
    /// reply hyper cannot parse, such as a head too large).
    pub fn from_reqwest(url: &str, e: &reqwest::Error) -> RegistryError {
        // reqwest's own text repeats the URL; the innermost cause says what happened.
        let mut root: &dyn std::error::Error = e;
        while let Some(s) = root.source() {
            root = s;
        }
        let url = url.to_string();
        if let Some(refused) =
            causes(e).find_map(|c| c.downcast_ref::<super::address::NonPublicAddress>())
        {
            return RegistryError::NonPublic {
                url,
                host: refused.host.clone(),
            };
        }
        if e.is_timeout() {
            return RegistryError::Unreachable {
                url,
                reason: format!("timed out: {root}"),
            };
        }
        if let Some(reason) = permanent_cause(e) {
            return RegistryError::Protocol {
                url,
                message: format!("{reason}: {root}"),
            };
        }
        if e.is_connect() {
            RegistryError::Unreachable {
                url,
                reason: format!("connection failed: {root}"),
            }
        } else if e.is_body() || e.is_decode() || is_cut_short(e) {
            RegistryError::Body {
                url,
                reason: format!("connection lost: {root}"),
            }
        } else {
            RegistryError::Protocol {
                url,
                message: format!("request failed: {root}"),
            }
        }
    }
}

/// Every error in `e`'s chain, including what an `io::Error` wraps (its
/// `source()` skips the wrapped error itself, where rustls puts its verdict).
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(e), |err| match err.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => err.source(),
    })
}

/// Causes in an error's chain that no retry fixes.
fn permanent_cause(e: &reqwest::Error) -> Option<&'static str> {
    causes(e).find_map(|err| {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && (h.is_parse() || h.is_parse_status() || h.is_parse_too_large() || h.is_user())
        {
            return Some("malformed reply");
        }
        // rustls reports certificate and handshake failures as InvalidData.
        err.downcast_ref::<std::io::Error>()
            .filter(|io| io.kind() == std::io::ErrorKind::InvalidData)
            .map(|_| "TLS or protocol failure")
    })
}

/// A reply that broke off: the connection closed or reset mid-message.
fn is_cut_short(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind::*;
    causes(e).any(|err| {
        err.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message() || h.is_closed() || h.is_canceled())
            || err.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut
                )
            })
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};

    use super::*;

    fn status(status: u16, retry_after: Option<Duration>) -> RegistryError {
        RegistryError::Status {
            url: "u".into(),
            status,
            message: "m".into(),
            retry_after,
        }
    }

    #[test]
    fn each_failure_says_whether_to_retry_and_whether_a_cached_copy_may_stand_in() {
        let s = |s: &str| s.to_string();
        let d = Digest::of(b"");
        let cases = [
            (
                RegistryError::Unreachable {
                    url: s("u"),
                    reason: s("r"),
                },
                Failure::Spurious,
            ),
            (
                RegistryError::RateLimited {
                    url: s("u"),
                    message: s("m"),
                    retry_after: None,
                },
                Failure::Spurious,
            ),
            (
                RegistryError::Body {
                    url: s("u"),
                    reason: s("r"),
                },
                Failure::Spurious,
            ),
            (status(500, None), Failure::Spurious),
            (status(503, None), Failure::Spurious),
            (status(499, None), Failure::Answer),
            (status(404, None), Failure::Answer),
            (
                RegistryError::Token {
                    realm: s("r"),
                    message: s("m"),
                },
                Failure::Broken,
            ),
            (
                RegistryError::Protocol {
                    url: s("u"),
                    message: s("m"),
                },
                Failure::Broken,
            ),
            (
                RegistryError::NotFound {
                    what: s("w"),
                    url: s("u"),
                },
                Failure::Answer,
            ),
            (
                RegistryError::Denied {
                    url: s("u"),
                    status: 403,
                    message: s("m"),
                },
                Failure::Answer,
            ),
            (
                RegistryError::LoginRefused {
                    realm: s("r"),
                    host: s("h"),
                    status: 401,
                    message: s("m"),
                },
                Failure::Answer,
            ),
            (
                RegistryError::NonPublic {
                    url: s("u"),
                    host: s("h"),
                },
                Failure::Answer,
            ),
            (
                RegistryError::DigestMismatch {
                    what: s("w"),
                    expected: d.clone(),
                    actual: d,
                },
                Failure::Answer,
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.failure(), want, "{err}");
            assert_eq!(err.is_spurious(), want == Failure::Spurious, "{err}");
            assert_eq!(err.is_upstream_failure(), want != Failure::Answer, "{err}");
        }
    }

    #[test]
    fn only_429s_and_statuses_carry_the_servers_wait() {
        let wait = Some(Duration::from_secs(7));
        let limited = RegistryError::RateLimited {
            url: "u".into(),
            message: "m".into(),
            retry_after: wait,
        };
        assert_eq!(limited.retry_after(), wait);
        assert_eq!(status(503, wait).retry_after(), wait);
        assert_eq!(status(503, None).retry_after(), None);
        let cut = RegistryError::Body {
            url: "u".into(),
            reason: "r".into(),
        };
        assert_eq!(cut.retry_after(), None);
    }

    /// A one-connection server on loopback that does `serve` with what it accepts.
    fn upstream(serve: impl FnOnce(TcpStream) + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(stream);
            }
        });
        addr
    }

    /// Reads the request head, then answers `reply` and closes.
    fn answering(reply: &'static [u8]) -> impl FnOnce(TcpStream) + Send + 'static {
        move |mut s| {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        }
    }

    /// What `from_reqwest` makes of a GET of `url` (the body read to the end).
    async fn failure_of(url: String) -> RegistryError {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let result = match client.get(&url).send().await {
            Ok(resp) => resp.bytes().await.map(|_| ()),
            Err(e) => Err(e),
        };
        let e = result.expect_err("the request should fail");
        RegistryError::from_reqwest(&url, &e)
    }

    #[tokio::test]
    async fn a_refused_connection_is_unreachable() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(
            matches!(&e, RegistryError::Unreachable { reason, .. } if reason.starts_with("connection failed")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_is_unreachable() {
        let addr = upstream(|s| {
            std::thread::sleep(Duration::from_secs(2));
            drop(s);
        });
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(
            matches!(&e, RegistryError::Unreachable { reason, .. } if reason.starts_with("timed out")),
            "{e:?}"
        );
    }

    #[tokio::test]
    async fn a_connection_closed_before_the_reply_is_cut_short() {
        let addr = upstream(|mut s| {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
        });
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(matches!(e, RegistryError::Body { .. }), "{e:?}");
        assert!(e.is_spurious());
    }

    #[tokio::test]
    async fn a_body_shorter_than_its_length_is_cut_short() {
        let addr = upstream(answering(
            b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nabc",
        ));
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(matches!(e, RegistryError::Body { .. }), "{e:?}");
    }

    #[tokio::test]
    async fn a_reply_that_is_not_http_is_malformed_and_not_retried() {
        let addr = upstream(answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"));
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(
            matches!(&e, RegistryError::Protocol { message, .. } if message.starts_with("malformed reply")),
            "{e:?}"
        );
        assert_eq!(e.failure(), Failure::Broken);
    }

    #[tokio::test]
    async fn a_redirect_loop_is_broken_not_cut_short() {
        // One keep-alive connection answering every request with a redirect to itself.
        let addr = upstream(|mut s| {
            let mut buf = [0u8; 4096];
            while s.read(&mut buf).is_ok_and(|n| n > 0) {
                let reply = b"HTTP/1.1 302 Found\r\nlocation: /again\r\ncontent-length: 0\r\n\r\n";
                if s.write_all(reply).is_err() {
                    break;
                }
            }
        });
        let e = failure_of(format!("http://{addr}/")).await;
        assert!(
            matches!(&e, RegistryError::Protocol { message, .. } if message.starts_with("request failed")),
            "{e:?}"
        );
        assert_eq!(e.failure(), Failure::Broken);
    }

    #[tokio::test]
    async fn plain_http_where_tls_was_expected_is_a_tls_failure() {
        let addr = upstream(answering(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
        ));
        let e = failure_of(format!("https://{addr}/")).await;
        assert!(
            matches!(&e, RegistryError::Protocol { message, .. } if message.starts_with("TLS or protocol failure")),
            "{e:?}"
        );
    }
}
