//! Forged client tokens and password guessing against `dpx serve` with
//! client access on (issue 19): every forgery is a 401 with the Bearer
//! challenge and a distribution-spec error body on every route, and nothing
//! goes upstream for it; thousands of wrong Basic logins at `/token` are
//! slowed (429 with `Retry-After`) and leave the server's memory bounded.
//! (tests/it/serve_auth.rs covers issuing tokens and the first forgeries;
//! this is the full table.)

use base64::Engine as _;

use crate::support::dpx::{Dpx, Serve};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, Route};
use crate::support::{assert_success, scaled};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Claims as dpx issues them, for `repo`, valid for ten minutes.
fn claims(repo: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": "dpx", "sub": "dpx", "aud": "dpx", "exp": now() + 600, "nbf": now() - 60,
        "iat": now() - 60, "jti": "forged",
        "access": [{"type": "repository", "name": repo, "actions": ["pull"]}]
    })
}

fn sign(alg: jsonwebtoken::Algorithm, key: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign")
}

/// A token from `/token` for `repo`, with the real password.
fn issued(serve: &Serve, password: &str, repo: &str) -> String {
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/token?service=dpx&scope=repository:{repo}:pull"),
        &[("Authorization", &basic("dpx", password))],
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("token JSON");
    v["token"].as_str().expect("token").to_string()
}

fn bearer_get(serve: &Serve, path: &str, token: &str) -> RawResponse {
    let value = format!("Bearer {token}");
    request(&serve.addr, "GET", path, &[("Authorization", &value)])
}

/// A 401 with dpx's Bearer challenge and a distribution-spec error body.
fn assert_refused(resp: &RawResponse, serve: &Serve, what: &str) {
    assert_eq!(resp.status, 401, "{what}: {}", resp.body_text());
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"http://{}/token\",service=\"dpx\"",
            serve.addr
        )),
        "{what}: {challenge}"
    );
    assert_eq!(
        resp.header("content-type"),
        Some("application/json"),
        "{what}"
    );
    let body: serde_json::Value = serde_json::from_slice(&resp.body)
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", resp.body_text()));
    let errors = body["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 1, "{what}: {body}");
    assert_eq!(errors[0]["code"], "UNAUTHORIZED", "{what}: {body}");
    assert!(
        errors[0]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

#[test]
fn forged_tokens_are_refused_with_a_challenge_on_every_route() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/guarded", "v1", &[1000], 1901);
    let layer = hub.layers(&digest)[0].clone();
    hub.add_image("library/other", "v1", &[1000], 1902);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve.auth]\nenabled = true\n",
    );
    let out = dpx.run(&["serve", "--print-password"]);
    assert_success(&out, "dpx serve --print-password");
    let password = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let serve = dpx.serve();
    let key = std::fs::read_to_string(dpx.dir.path().join("serve-token-key")).expect("key file");
    let key = key.trim().as_bytes();
    let good = issued(&serve, &password, "library/guarded");
    let others = issued(&serve, &password, "library/other");
    let repo = "library/guarded";

    let parts: Vec<&str> = good.split('.').collect();
    let with = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut c = claims(repo);
        change(&mut c);
        c
    };
    let hs256 = jsonwebtoken::Algorithm::HS256;
    let none_header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims(repo).to_string().as_bytes());
    // The other repository's token with this one's access in its payload.
    let other_parts: Vec<&str> = others.split('.').collect();
    let forged: Vec<(&str, String)> = vec![
        ("alg none", format!("{none_header}.{payload}.")),
        (
            "alg none with a real signature",
            format!("{none_header}.{payload}.{}", parts[2]),
        ),
        (
            "alg None spelled otherwise",
            format!("{}.{payload}.", b64(br#"{"alg":"NONE","typ":"JWT"}"#)),
        ),
        (
            "another key",
            sign(hs256, b"not the key of this dpx serve!!!", &claims(repo)),
        ),
        (
            "HS512 with the server's key",
            sign(jsonwebtoken::Algorithm::HS512, key, &claims(repo)),
        ),
        (
            "wrong audience",
            sign(
                hs256,
                key,
                &with(&|c| c["aud"] = "registry.docker.io".into()),
            ),
        ),
        (
            "wrong issuer",
            sign(hs256, key, &with(&|c| c["iss"] = "auth.docker.io".into())),
        ),
        (
            "expired",
            sign(hs256, key, &with(&|c| c["exp"] = (now() - 5).into())),
        ),
        (
            "not yet valid",
            sign(hs256, key, &with(&|c| c["nbf"] = (now() + 600).into())),
        ),
        (
            "no expiry",
            sign(
                hs256,
                key,
                &with(&|c| {
                    c.as_object_mut().map(|o| o.remove("exp"));
                }),
            ),
        ),
        ("another repository's scope", others.clone()),
        (
            "altered payload",
            format!("{}.{payload}.{}", other_parts[0], other_parts[2]),
        ),
        ("truncated signature", good[..good.len() - 4].to_string()),
        ("no signature", format!("{}.{}.", parts[0], parts[1])),
        ("two parts", format!("{}.{}", parts[0], parts[1])),
        ("garbage", "garbage".to_string()),
        ("three dots of garbage", "a.b.c".to_string()),
        ("empty", String::new()),
        ("64 KB", "A".repeat(64 * 1024)),
    ];
    let routes = [
        "/v2/".to_string(),
        format!("/v2/{repo}/manifests/v1"),
        format!("/v2/{repo}/blobs/{layer}"),
        format!("/v2/{repo}/tags/list"),
    ];
    for (what, token) in &forged {
        for route in &routes {
            // "another repository's scope" is a valid token: the ping lets it in.
            if *what == "another repository's scope" && route == "/v2/" {
                continue;
            }
            let resp = bearer_get(&serve, route, token);
            assert_refused(&resp, &serve, &format!("{what} on {route}"));
        }
    }
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::BlobGet) + hub.count(Route::TagsList),
        0,
        "nothing went upstream for a forged token"
    );
    // The real token passes on each: the refusals were for the forgeries.
    for route in &routes {
        assert_eq!(bearer_get(&serve, route, &good).status, 200, "{route}");
    }
    let log = serve.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains(&good) && !log.contains(&password), "{log}");
    eprintln!(
        "forged tokens: {} forgeries × {} routes refused",
        forged.len(),
        routes.len()
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// A token request with Basic credentials from the loopback address `from`
/// (127.0.0.0/8 is all this machine's), status and Retry-After.
fn token_from(
    rt: &tokio::runtime::Runtime,
    from: std::net::Ipv4Addr,
    serve: &str,
    auth: &str,
) -> (u16, Option<String>) {
    use std::io::{Read as _, Write as _};
    let addr: std::net::SocketAddr = serve.parse().expect("serve address");
    let stream = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(std::net::SocketAddr::new(from.into(), 0))
            .expect("bind a loopback source address");
        socket.connect(addr).await.expect("connect to dpx serve")
    });
    let mut s = stream.into_std().expect("std stream");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let req = format!(
        "GET /token?service=dpx HTTP/1.1\r\nHost: {serve}\r\nConnection: close\r\nAuthorization: {auth}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let retry_after = text.lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("retry-after:")
            .map(|v| v.trim().to_string())
    });
    (status, retry_after)
}

#[test]
fn thousands_of_wrong_passwords_are_slowed_and_leave_memory_bounded() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve.auth]\nenabled = true\n",
    );
    let out = dpx.run(&["serve", "--print-password"]);
    assert_success(&out, "dpx serve --print-password");
    let password = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let serve = dpx.serve();
    let pid = serve.child.id();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let attempts = scaled(2_000, 20_000);
    let before = rss_kib(pid);

    // One address guessing the user `dpx`: a few mistakes are free, then 429s.
    let one = std::net::Ipv4Addr::new(127, 0, 0, 1);
    let mut refused = 0;
    let mut slowed = 0;
    let started = std::time::Instant::now();
    for i in 0..attempts {
        let (status, retry_after) =
            token_from(&rt, one, &serve.addr, &basic("dpx", &format!("guess-{i}")));
        match status {
            401 => refused += 1,
            429 => {
                slowed += 1;
                assert!(
                    retry_after
                        .and_then(|v| v.parse::<u64>().ok())
                        .is_some_and(|s| s >= 1),
                    "a 429 says when to come back"
                );
            }
            other => panic!("guess {i}: {other}"),
        }
    }
    // README: after 5 wrong passwords, 429s for 1 s, doubling: within T
    // seconds at most 6 checks and one more per doubling lockout that ended.
    let secs = started.elapsed().as_secs_f64();
    let most = 6 + (secs + 1.0).log2().ceil() as usize;
    assert!(
        refused <= most,
        "{refused} passwords checked from one address in {secs:.1}s (at most {most})"
    );
    assert_eq!(refused + slowed, attempts);

    // Many addresses, each with its own made-up user name (4 KB of it):
    // each guess is counted, in a table that stays bounded.
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..attempts {
        let from = std::net::Ipv4Addr::new(
            127,
            1 + (i / 62_500) as u8,
            (i / 250 % 250) as u8,
            (i % 250 + 1) as u8,
        );
        let user = format!("user{i}-{}", "u".repeat(4 * 1024));
        let (status, _) = token_from(&rt, from, &serve.addr, &basic(&user, "wrong"));
        *statuses.entry(status).or_insert(0usize) += 1;
    }
    assert!(
        statuses.keys().all(|s| [401, 429].contains(s)),
        "{statuses:?}"
    );
    let after = rss_kib(pid);
    eprintln!(
        "password guessing: {attempts} from one address ({refused} checked, {slowed} slowed), \
         {attempts} from {attempts} addresses {statuses:?}; dpx serve RSS {before} KiB -> {after} KiB"
    );
    // The guessing table is capped (10,000 counters of at most 64 characters
    // of user name): far less than this, whatever the number of guesses.
    let bound = before + 32 * 1024;
    assert!(
        after < bound,
        "RSS {before} KiB -> {after} KiB (bound {bound} KiB)"
    );
    // Guessing `dpx`'s password from many addresses is slowed too: past 10
    // wrong ones for the user (from anywhere), each address is turned away,
    // and so is the right password from a new one until the lockout ends.
    let spread: Vec<u16> = (1..=30u8)
        .map(|i| {
            let from = std::net::Ipv4Addr::new(127, 50, 0, i);
            token_from(&rt, from, &serve.addr, &basic("dpx", "spread-guess")).0
        })
        .collect();
    let first = spread.iter().position(|s| *s == 429);
    assert!(
        first.is_some_and(|f| f <= 10 && spread[f..].iter().all(|s| *s == 429)),
        "{spread:?}"
    );
    let fresh = std::net::Ipv4Addr::new(127, 200, 0, 1);
    let (status, retry_after) = token_from(&rt, fresh, &serve.addr, &basic("dpx", &password));
    assert_eq!(status, 429, "the user's lockout holds from any address");
    assert!(retry_after.is_some());
    assert!(!serve.log_text().contains("panicked"));
}
