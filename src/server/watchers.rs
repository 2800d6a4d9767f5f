//! Who may read what dpx shows about itself (`/metrics`, the status page):
//! anyone on this machine, and from elsewhere whom the client-access gate
//! admits, as for the registry routes. A browser on this machine is also the
//! way in for a site that points its own name at 127.0.0.1 (DNS rebinding),
//! so what is admitted without credentials must be addressed by a local name.

use std::net::{IpAddr, SocketAddr};

use http::{Request, Response, header};
use hyper::body::Incoming;

use super::errors::{ApiError, ErrorCode};
use super::{Body, Server, error_response};

impl Server {
    /// `None` when `req` may read the observation routes, else the refusal.
    pub(super) async fn admit_watcher(
        &self,
        req: &Request<Incoming>,
        peer: SocketAddr,
    ) -> Option<Response<Body>> {
        let gate = self.access.gate.as_ref();
        if peer.ip().to_canonical().is_loopback() || gate.is_none() {
            return (!names_this_machine(req)).then(|| {
                error_response(&ApiError::new(
                    ErrorCode::Denied,
                    "dpx answers this page to requests addressed to localhost or an IP \
                     address (another name may be a site rebinding its name to this machine)",
                ))
            });
        }
        gate?.admit(req, peer).await
    }
}

/// Whether the request names this machine as a browser on it would:
/// `localhost` or an IP address. A page open to any `Host` can be read by
/// a site that points its own name at 127.0.0.1 (DNS rebinding).
pub(super) fn names_this_machine<B>(req: &Request<B>) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    let Some(host) = host else {
        // HTTP/1.0 without a Host: no browser sends that.
        return true;
    };
    let Ok(authority) = host.parse::<http::uri::Authority>() else {
        return false;
    };
    let name = authority.host();
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_host(host: &str) -> Request<()> {
        Request::builder()
            .uri("/")
            .header(header::HOST, host)
            .body(())
            .unwrap()
    }

    #[test]
    fn only_local_names_reach_the_open_page() {
        for ok in [
            "127.0.0.1:5000",
            "localhost:5000",
            "LOCALHOST",
            "[::1]:5000",
            "10.1.2.3",
        ] {
            assert!(names_this_machine(&with_host(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:5000",
            "127.0.0.1.nip.io",
            "a b",
        ] {
            assert!(!names_this_machine(&with_host(bad)), "{bad}");
        }
    }
}
