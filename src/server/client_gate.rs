//! Client auth on the HTTP side, as registries do it: a 401 with a Bearer
//! challenge naming `/token`, where a dpx user's Basic credentials buy a
//! JWT, which every other request then carries. Only consulted when client
//! auth is on; the default (loopback, no auth) pays nothing for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use super::errors::{ApiError, ErrorCode};
use super::guessing::Guessing;
use super::{Body, json_response, routes};
use crate::client_access::{ClientAuth, SERVICE, pull_grants};

/// The path of the token endpoint (the challenge's realm).
pub const TOKEN_PATH: &str = "/token";

pub struct Gate {
    auth: Arc<ClientAuth>,
    /// Password checks at once: an Argon2 check takes ~19 MiB and a core,
    /// so a flood of token requests queues here instead of exhausting memory.
    checks: Arc<tokio::sync::Semaphore>,
    /// Wrong passwords per address and user, to slow guessing.
    guessing: Guessing,
    /// Whether clients reach us over HTTPS.
    tls: bool,
    /// The realm's host when a request names none.
    listen: SocketAddr,
}

impl Gate {
    pub fn new(auth: Arc<ClientAuth>, tls: bool, listen: SocketAddr) -> Gate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Gate {
            auth,
            checks: Arc::new(tokio::sync::Semaphore::new(cores)),
            guessing: Guessing::default(),
            tls,
            listen,
        }
    }

    /// `None` when the request may go on to its route; else the answer.
    pub async fn admit(&self, req: &Request<Incoming>, peer: SocketAddr) -> Option<Response<Body>> {
        if req.uri().path() == TOKEN_PATH {
            return Some(self.token(req, peer).await);
        }
        self.refusal(req, peer)
    }

    /// Every registry route needs a valid token that, for a repository's
    /// route, grants pulling the repository named in the path. `None`: admitted.
    fn refusal(&self, req: &Request<Incoming>, peer: SocketAddr) -> Option<Response<Body>> {
        let name = routes::repository_name(req.uri().path());
        let Some(token) = bearer(req.headers()) else {
            return Some(self.challenge(
                req,
                name,
                None,
                "authentication required: log in to this dpx serve first (docker login HOST:PORT)",
            ));
        };
        if !private_channel(self.tls, peer) {
            return Some(plain_http_refused());
        }
        let claims = match self.auth.signer.verify(token) {
            Ok(c) => c,
            Err(e) => {
                return Some(self.challenge(req, name, Some("invalid_token"), &e.to_string()));
            }
        };
        match name {
            Some(name) if !claims.may_pull(name) => Some(self.challenge(
                req,
                Some(name),
                Some("insufficient_scope"),
                &format!("the token does not grant pulling repository {name}"),
            )),
            _ => None,
        }
    }

    /// `GET /token?service=dpx&scope=repository:NAME:pull` with Basic credentials.
    async fn token(&self, req: &Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        match *req.method() {
            Method::GET | Method::HEAD => {}
            // containerd tries an OAuth POST first and falls back to GET on a 404.
            Method::POST => {
                return error(
                    StatusCode::NOT_FOUND,
                    ErrorCode::Unsupported,
                    "no OAuth token endpoint: use GET /token with Basic credentials",
                );
            }
            _ => {
                return error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    ErrorCode::Unsupported,
                    "the token endpoint answers GET",
                );
            }
        }
        if !private_channel(self.tls, peer) {
            return plain_http_refused();
        }
        let query = req.uri().query().unwrap_or("");
        let params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service")
            && service != SERVICE
        {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::Unsupported,
                &format!("this token service is {SERVICE:?}, not the one asked for"),
            );
        }
        let Some((user, password)) = basic(req.headers()) else {
            return basic_challenge(
                "a token needs the user name and password of a dpx user: run docker login HOST:PORT (the password: dpx serve --print-password)",
            );
        };
        // Locked out: no password is checked, right or wrong.
        if let Some(wait) = self.guessing.wait(peer.ip(), &user, Instant::now()) {
            return too_many_guesses(wait);
        }
        let auth = Arc::clone(&self.auth);
        let checked_user = user.clone();
        let Ok(permit) = Arc::clone(&self.checks).acquire_owned().await else {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "dpx serve is shutting down",
            );
        };
        let ok = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            auth.check_password(&checked_user, &password)
        })
        .await
        .unwrap_or(false);
        if !ok {
            self.count_failure(peer, &user);
            return basic_challenge("wrong user name or password for this dpx serve");
        }
        self.guessing.succeeded(peer.ip(), &user);
        let grants = pull_grants(
            params
                .iter()
                .filter(|(k, _)| k == "scope")
                .map(|(_, v)| v.as_str()),
        );
        let issued = match self.auth.signer.issue(&user, grants) {
            Ok(i) => i,
            Err(e) => {
                return error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::Unknown,
                    &format!("cannot sign a token: {e}"),
                );
            }
        };
        let body = serde_json::json!({
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": humantime::format_rfc3339_seconds(issued.issued_at).to_string(),
        });
        let mut resp = json_response(StatusCode::OK, body.to_string());
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        resp
    }

    /// Counts a wrong password; logs the first of a burst and each lockout, not every guess.
    fn count_failure(&self, peer: SocketAddr, user: &str) {
        let (first, lockouts) = self.guessing.failed(peer.ip(), user, Instant::now());
        if first {
            tracing::warn!(
                "token request from {peer}: wrong password (user {user:?}); more from this address are logged only when they lock it out"
            );
        }
        for l in lockouts {
            tracing::warn!(
                "token requests: {} wrong passwords for {} (the last from {peer}, user {user:?}); its token requests get 429 for {}s",
                l.failures,
                l.key,
                l.duration.as_secs()
            );
        }
    }

    /// 401 with `WWW-Authenticate: Bearer realm=...,service="dpx"[,scope][,error]`.
    fn challenge(
        &self,
        req: &Request<Incoming>,
        name: Option<&str>,
        error_kind: Option<&str>,
        message: &str,
    ) -> Response<Body> {
        let scheme = if self.tls { "https" } else { "http" };
        let host = request_host(req).unwrap_or_else(|| self.listen.to_string());
        let mut value =
            format!("Bearer realm=\"{scheme}://{host}{TOKEN_PATH}\",service=\"{SERVICE}\"");
        if let Some(name) = name.filter(|n| quotable(n)) {
            value.push_str(&format!(",scope=\"repository:{name}:pull\""));
        }
        if let Some(kind) = error_kind {
            value.push_str(&format!(",error=\"{kind}\""));
        }
        let mut resp = error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        resp
    }
}

/// 429 with a Retry-After, for an address or user locked out by wrong passwords.
fn too_many_guesses(wait: Duration) -> Response<Body> {
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .max(1);
    let mut resp = error(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::TooManyRequests,
        &format!("too many wrong passwords: try again in {secs}s"),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    resp
}

/// HTTPS, or a client on this machine: where a password or token can't be overheard.
fn private_channel(tls: bool, peer: SocketAddr) -> bool {
    tls || peer.ip().to_canonical().is_loopback()
}

/// The host and port the client addressed (HTTP/2 `:authority`, else
/// `Host`), if it is a plain `host[:port]`: it goes into a header.
fn request_host<B>(req: &Request<B>) -> Option<String> {
    let host = match req.uri().authority() {
        Some(a) => a.as_str().to_string(),
        None => req.headers().get(header::HOST)?.to_str().ok()?.to_string(),
    };
    let authority: http::uri::Authority = host.parse().ok()?;
    let plain = !host.is_empty()
        && host.len() <= 255
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plain.then(|| authority.as_str().to_string())
}

/// A repository name that can stand in a quoted header parameter.
fn quotable(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// `Authorization: Basic base64(user:password)`.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn basic_challenge(message: &str) -> Response<Body> {
    let mut resp = error(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"dpx\""),
    );
    resp
}

fn plain_http_refused() -> Response<Body> {
    error(
        StatusCode::FORBIDDEN,
        ErrorCode::Denied,
        "dpx serve takes passwords and tokens over plain HTTP only from this machine: \
         start it with --tls-cert and --tls-key and use https",
    )
}

fn error(status: StatusCode, code: ErrorCode, message: &str) -> Response<Body> {
    let e = ApiError::new(code, message).with_status(status);
    json_response(e.status, e.body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_travel_only_over_tls_or_loopback() {
        let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(private_channel(false, peer("127.0.0.1:1")));
        assert!(private_channel(false, peer("127.9.8.7:1")));
        assert!(private_channel(false, peer("[::1]:1")));
        assert!(private_channel(false, peer("[::ffff:127.0.0.1]:1")));
        assert!(!private_channel(false, peer("192.0.2.7:1")));
        assert!(!private_channel(false, peer("[2001:db8::1]:1")));
        assert!(private_channel(true, peer("192.0.2.7:1")));
    }

    #[test]
    fn authorization_headers_are_parsed_strictly() {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic ZHB4OnM6ZWNyZXQ="),
        );
        assert_eq!(basic(&h), Some(("dpx".into(), "s:ecret".into())));
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def.ghi"),
        );
        assert_eq!(bearer(&h), Some("abc.def.ghi"));
        assert_eq!(basic(&h), None);
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert_eq!(basic(&h), None);
    }

    #[test]
    fn the_realm_host_is_the_one_addressed_if_plain() {
        let with_host = |h: &str| {
            Request::builder()
                .uri("/v2/")
                .header(header::HOST, h)
                .body(())
                .unwrap()
        };
        assert_eq!(
            request_host(&with_host("127.0.0.1:5000")).as_deref(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(
            request_host(&with_host("[::1]:5000")).as_deref(),
            Some("[::1]:5000")
        );
        assert_eq!(
            request_host(&with_host("dpx.example:443")).as_deref(),
            Some("dpx.example:443")
        );
        for bad in ["evil\",x=\"", "user@host", "a b", ""] {
            assert_eq!(request_host(&with_host(bad)), None, "{bad}");
        }
        let h2 = Request::builder()
            .uri("https://h2.example:8443/v2/")
            .body(())
            .unwrap();
        assert_eq!(request_host(&h2).as_deref(), Some("h2.example:8443"));
    }

    #[test]
    fn only_plain_names_go_into_a_challenge() {
        assert!(quotable("library/alpine"));
        assert!(!quotable("a\"b"));
        assert!(!quotable("a b"));
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]
        /// No `Authorization` or `Host` value panics the gate's parsing.
        #[test]
        fn any_authorization_or_host(
            value in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            text in "(Basic|Bearer|basic) \\PC{0,80}",
        ) {
            for v in [value.clone(), text.into_bytes()] {
                let Ok(v) = HeaderValue::from_bytes(&v) else { continue };
                let mut h = HeaderMap::new();
                h.insert(header::AUTHORIZATION, v.clone());
                let _ = basic(&h);
                let _ = bearer(&h);
                let mut req = Request::new(());
                req.headers_mut().insert(header::HOST, v);
                let _ = request_host(&req);
            }
        }
    }
}
