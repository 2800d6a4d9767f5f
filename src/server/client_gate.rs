//! Client auth on the HTTP side, as registries do it: a 401 with a Bearer
//! challenge naming `/token`, where a dpx user's Basic credentials buy a
//! JWT, which every other request then carries. Only consulted when client
//! auth is on; the default (loopback, no auth) pays nothing for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};

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
    pub async fn admit<B>(&self, req: &Request<B>, peer: SocketAddr) -> Option<Response<Body>> {
        if req.uri().path() == TOKEN_PATH {
            return Some(self.token(req, peer).await);
        }
        self.refusal(req, peer)
    }

    /// Every registry route needs a valid token that, for a repository's
    /// route, grants pulling the repository named in the path. `None`: admitted.
    fn refusal<B>(&self, req: &Request<B>, peer: SocketAddr) -> Option<Response<Body>> {
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
    async fn token<B>(&self, req: &Request<B>, peer: SocketAddr) -> Response<Body> {
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
    fn challenge<B>(
        &self,
        req: &Request<B>,
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
        let too_long = format!("{}.example:5000", "a".repeat(250));
        for bad in ["evil\",x=\"", "user@host", "a b", "", too_long.as_str()] {
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

    const PASSWORD: &str = "right-password";

    fn gate(tls: bool) -> Gate {
        let auth = Arc::new(ClientAuth::for_tests(PASSWORD));
        Gate::new(auth, tls, "127.0.0.1:5000".parse().unwrap())
    }

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const LOCAL: &str = "127.0.0.1:40000";
    const REMOTE: &str = "192.0.2.7:40000";

    fn get(uri: &str, authorization: Option<&str>) -> Request<()> {
        let mut b = Request::builder()
            .uri(uri)
            .header(header::HOST, "dpx.test:5000");
        if let Some(a) = authorization {
            b = b.header(header::AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    fn basic_auth(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn www_authenticate(resp: &Response<Body>) -> String {
        resp.headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }

    async fn json(resp: Response<Body>) -> serde_json::Value {
        use http_body_util::BodyExt as _;
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    /// A token for `scope`, as `/token` issues it to the right password.
    async fn token_for(gate: &Gate, scope: &str) -> String {
        let req = get(
            &format!("/token?service=dpx&scope={scope}"),
            Some(&basic_auth("dpx", PASSWORD)),
        );
        let resp = gate.admit(&req, peer(LOCAL)).await.expect("an answer");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.as_bytes()),
            Some(&b"no-store"[..])
        );
        let body = json(resp).await;
        assert_eq!(body["token"], body["access_token"]);
        assert!(body["expires_in"].as_u64().is_some_and(|n| n > 0));
        body["token"].as_str().expect("a token").to_string()
    }

    #[tokio::test]
    async fn a_request_without_a_token_is_challenged_to_the_token_endpoint() {
        let g = gate(false);
        let resp = g
            .admit(&get("/v2/library/alpine/manifests/3", None), peer(LOCAL))
            .await;
        let resp = resp.expect("refused");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            www_authenticate(&resp),
            "Bearer realm=\"http://dpx.test:5000/token\",service=\"dpx\",scope=\"repository:library/alpine:pull\""
        );
        let resp = gate(true)
            .admit(&get("/v2/", None), peer(REMOTE))
            .await
            .expect("refused");
        assert_eq!(
            www_authenticate(&resp),
            "Bearer realm=\"https://dpx.test:5000/token\",service=\"dpx\""
        );
    }

    #[tokio::test]
    async fn a_token_admits_the_repositories_it_grants_only() {
        let g = gate(false);
        let token = token_for(&g, "repository:library/alpine:pull").await;
        let bearer = format!("Bearer {token}");
        let admitted = |path: &str| get(path, Some(&bearer));
        assert!(
            g.admit(&admitted("/v2/library/alpine/manifests/3"), peer(LOCAL))
                .await
                .is_none()
        );
        assert!(g.admit(&admitted("/v2/"), peer(LOCAL)).await.is_none());
        let other = g
            .admit(&admitted("/v2/library/redis/manifests/7"), peer(LOCAL))
            .await
            .expect("refused");
        assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
        assert!(
            www_authenticate(&other)
                .ends_with(",scope=\"repository:library/redis:pull\",error=\"insufficient_scope\"")
        );
        let forged = g
            .admit(&get("/v2/", Some(&format!("Bearer {token}x"))), peer(LOCAL))
            .await
            .expect("refused");
        assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
        assert!(www_authenticate(&forged).ends_with(",error=\"invalid_token\""));
        // A token that went over plain HTTP from another machine is not taken.
        let remote = g
            .admit(&admitted("/v2/"), peer(REMOTE))
            .await
            .expect("refused");
        assert_eq!(remote.status(), StatusCode::FORBIDDEN);
        assert!(
            gate(true)
                .admit(&admitted("/v2/"), peer(REMOTE))
                .await
                .is_none(),
            "over HTTPS a remote client's token is taken"
        );
    }

    #[tokio::test]
    async fn the_token_endpoint_answers_get_with_basic_credentials_only() {
        let g = gate(false);
        let with = |method: Method, uri: &str, auth: Option<String>| {
            let mut req = get(uri, auth.as_deref());
            *req.method_mut() = method;
            req
        };
        let right = Some(basic_auth("dpx", PASSWORD));
        let status = |resp: Option<Response<Body>>| resp.map(|r| r.status());
        assert_eq!(
            status(
                g.admit(&with(Method::POST, "/token", right.clone()), peer(LOCAL))
                    .await
            ),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(
                g.admit(&with(Method::PUT, "/token", right.clone()), peer(LOCAL))
                    .await
            ),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            status(
                g.admit(&with(Method::HEAD, "/token", right.clone()), peer(LOCAL))
                    .await
            ),
            Some(StatusCode::OK)
        );
        assert_eq!(
            status(
                g.admit(&with(Method::GET, "/token", right.clone()), peer(REMOTE))
                    .await
            ),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            status(
                g.admit(
                    &with(Method::GET, "/token?service=other", right.clone()),
                    peer(LOCAL)
                )
                .await
            ),
            Some(StatusCode::BAD_REQUEST)
        );
        let none = g
            .admit(&with(Method::GET, "/token", None), peer(LOCAL))
            .await
            .expect("answer");
        assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www_authenticate(&none), "Basic realm=\"dpx\"");
        let wrong = g
            .admit(
                &with(Method::GET, "/token", Some(basic_auth("dpx", "wrong"))),
                peer(LOCAL),
            )
            .await
            .expect("answer");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(www_authenticate(&wrong), "Basic realm=\"dpx\"");
    }

    #[tokio::test]
    async fn wrong_passwords_lock_the_address_out_with_a_retry_after() {
        let g = gate(false);
        let wrong = get("/token", Some(&basic_auth("dpx", "wrong")));
        let mut statuses = Vec::new();
        for _ in 0..7 {
            statuses.push(g.admit(&wrong, peer(LOCAL)).await.expect("answer").status());
        }
        assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
        let locked = g
            .admit(
                &get("/token", Some(&basic_auth("dpx", PASSWORD))),
                peer(LOCAL),
            )
            .await
            .expect("answer");
        assert_eq!(
            locked.status(),
            StatusCode::TOO_MANY_REQUESTS,
            "{statuses:?}"
        );
        assert!(locked.headers().get(header::RETRY_AFTER).is_some());
    }

    #[test]
    fn a_lockout_asks_for_whole_seconds_rounded_up() {
        let retry_after = |wait: Duration| {
            let resp = too_many_guesses(wait);
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            resp.headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(retry_after(Duration::from_secs(3)), "3");
        assert_eq!(retry_after(Duration::from_millis(1500)), "2");
        assert_eq!(retry_after(Duration::ZERO), "1");
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
