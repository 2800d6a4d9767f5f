//! Client access to `dpx serve`: client auth (Bearer challenge, `/token`,
//! JWTs checked on every route), the off-loopback rule, and HTTPS — with the
//! real Docker daemon, skopeo and raw HTTP.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use base64::Engine as _;

use crate::support::dpx::{Dpx, Serve, wait_for};
use crate::support::engines::{engines, hub_image};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, Route, noise};
use crate::support::layout::file_layer;
use crate::support::{assert_success, output_with_input};

const AUTH_ON: &str = "[serve.auth]\nenabled = true\n";

fn dpx_with_auth(hub: &FakeHub, extra: &str) -> Dpx {
    Dpx::with_registries(&[("docker.io", &hub.url())], &format!("{AUTH_ON}{extra}"))
}

/// The generated password of the user `dpx`, as a user gets it.
pub(crate) fn password(dpx: &Dpx) -> String {
    let out = dpx.run(&["serve", "--print-password"]);
    assert_success(&out, "dpx serve --print-password");
    let pw = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(pw.len(), 48, "a 24-byte hex password");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(&pw),
        "the password goes to stdout only"
    );
    pw
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn token_request(serve: &Serve, query: &str, auth: Option<&str>) -> RawResponse {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    request(&serve.addr, "GET", &format!("/token?{query}"), &headers)
}

/// A token for pulling `repo` (as the path names it).
fn token(serve: &Serve, password: &str, repo: &str) -> String {
    let resp = token_request(
        serve,
        &format!("service=dpx&scope=repository:{repo}:pull"),
        Some(&basic("dpx", password)),
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("token JSON");
    assert_eq!(v["token"], v["access_token"]);
    assert!(v["expires_in"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(
        v["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{v}"
    );
    v["token"].as_str().expect("token").to_string()
}

fn get(serve: &Serve, method: &str, path: &str, token: Option<&str>) -> RawResponse {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| ("Authorization", b))
        .into_iter()
        .collect();
    request(&serve.addr, method, path, &headers)
}

fn assert_challenged(resp: &RawResponse, serve: &Serve, what: &str) {
    assert_eq!(resp.status, 401, "{what}: {}", resp.body_text());
    assert_eq!(resp.error_code().as_deref(), Some("UNAUTHORIZED"), "{what}");
    let challenge = resp.header("www-authenticate").unwrap_or_default();
    assert!(
        challenge.starts_with(&format!(
            "Bearer realm=\"http://{}/token\",service=\"dpx\"",
            serve.addr
        )),
        "{what}: {challenge}"
    );
}

/// Signs claims with the given HS256 key.
fn jwt(key: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(key),
    )
    .expect("sign")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn assert_no_secret(texts: &[&str], secrets: &[&str]) {
    for text in texts {
        for secret in secrets {
            assert!(!text.contains(secret), "a secret leaked into: {text}");
        }
    }
}

#[test]
fn tokens_are_issued_for_the_right_password_and_checked_on_every_route() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/tokenapp", "v1", &[1000], 901);
    let dpx = dpx_with_auth(&hub, "token_lifetime = \"90s\"\n");
    let pw = password(&dpx);
    let serve = dpx.serve();
    let manifest = "/v2/library/tokenapp/manifests/v1";

    // No token: the challenge, on the ping and on a route (with its scope).
    assert_challenged(&get(&serve, "GET", "/v2/", None), &serve, "ping");
    let resp = get(&serve, "GET", manifest, None);
    assert_challenged(&resp, &serve, "manifest");
    assert!(
        resp.header("www-authenticate")
            .unwrap_or_default()
            .contains("scope=\"repository:library/tokenapp:pull\"")
    );
    assert_eq!(hub.count(Route::ManifestGet), 0, "nothing went upstream");

    // Anonymous and wrong-password token requests: 401 saying so.
    let resp = token_request(&serve, "service=dpx", None);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.error_code().as_deref(), Some("UNAUTHORIZED"));
    let resp = token_request(
        &serve,
        "service=dpx",
        Some(&basic("dpx", "not-the-password")),
    );
    assert_eq!(resp.status, 401);
    assert!(
        resp.body_text().contains("wrong user name or password"),
        "{}",
        resp.body_text()
    );
    let resp = token_request(&serve, "service=dpx", Some(&basic("nobody", &pw)));
    assert_eq!(resp.status, 401, "the password belongs to `dpx` only");

    // The right password: a token for the scope asked, with the configured lifetime.
    let resp = token_request(
        &serve,
        "service=dpx&scope=repository:library/tokenapp:pull",
        Some(&basic("dpx", &pw)),
    );
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("json");
    assert_eq!(v["expires_in"], 90);
    let good = token(&serve, &pw, "library/tokenapp");
    assert_eq!(get(&serve, "GET", "/v2/", Some(&good)).status, 200);
    let resp = get(&serve, "GET", manifest, Some(&good));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));

    // Tampered: one character of the payload changed.
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let middle = parts[1].len() / 2;
    let flipped = if &parts[1][middle..=middle] == "A" {
        "B"
    } else {
        "A"
    };
    parts[1].replace_range(middle..=middle, flipped);
    let tampered = parts.join(".");
    assert_challenged(
        &get(&serve, "GET", manifest, Some(&tampered)),
        &serve,
        "tampered",
    );

    // Expired, though signed with the server's own key; and signed with another key.
    let key = std::fs::read_to_string(dpx.dir.path().join("serve-token-key")).expect("key file");
    let claims = |exp: u64, aud: &str| {
        serde_json::json!({
            "iss": "dpx", "sub": "dpx", "aud": aud, "exp": exp, "nbf": now() - 600,
            "iat": now() - 600, "jti": "t",
            "access": [{"type": "repository", "name": "library/tokenapp", "actions": ["pull"]}]
        })
    };
    let resp = get(
        &serve,
        "GET",
        manifest,
        Some(&jwt(key.trim().as_bytes(), &claims(now() - 60, "dpx"))),
    );
    assert_challenged(&resp, &serve, "expired");
    assert!(resp.body_text().contains("expired"), "{}", resp.body_text());
    let resp = get(
        &serve,
        "GET",
        manifest,
        Some(&jwt(
            b"some other key of thirty-two bytes!",
            &claims(now() + 600, "dpx"),
        )),
    );
    assert_challenged(&resp, &serve, "foreign key");
    let resp = get(
        &serve,
        "GET",
        manifest,
        Some(&jwt(
            key.trim().as_bytes(),
            &claims(now() + 600, "registry.docker.io"),
        )),
    );
    assert_challenged(&resp, &serve, "foreign audience");
    // The server's key and a valid claim set do pass: the refusals above were for their flaw.
    let forged_ok = jwt(key.trim().as_bytes(), &claims(now() + 600, "dpx"));
    assert_eq!(get(&serve, "GET", manifest, Some(&forged_ok)).status, 200);

    // Another repository's route needs its own scope.
    let resp = get(&serve, "GET", "/v2/library/other/manifests/v1", Some(&good));
    assert_challenged(&resp, &serve, "other repository");
    assert!(
        resp.header("www-authenticate")
            .unwrap_or_default()
            .contains("error=\"insufficient_scope\"")
    );
    let resp = get(&serve, "GET", "/v2/library/other/tags/list", Some(&good));
    assert_eq!(resp.status, 401, "tag lists are scoped too");

    assert!(serve.log_shows("GET /v2/library/tokenapp/manifests/v1 200"));
    assert_no_secret(&[&serve.log_text()], &[&pw, &good, key.trim()]);
}

#[test]
fn a_token_for_one_repository_never_reads_a_blob_only_pulled_through_another() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/private-a", "v1", &[50_000], 902);
    let blob = hub.layers(&manifest)[0].clone();
    // Upstream, `public-b` has none of private-a's blobs.
    hub.add_image("library/public-b", "v1", &[1000], 903);
    hub.make_bare("library/public-b");
    let dpx = dpx_with_auth(&hub, "");
    let pw = password(&dpx);
    let serve = dpx.serve();

    let token_a = token(&serve, &pw, "library/private-a");
    let token_b = token(&serve, &pw, "library/public-b");
    let blob_a = format!("/v2/library/private-a/blobs/{blob}");
    let blob_via_b = format!("/v2/library/public-b/blobs/{blob}");
    let resp = get(&serve, "GET", &blob_a, Some(&token_a));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    // Stored once fsynced, a moment after the client's last byte.
    wait_for(
        "the blob cached",
        std::time::Duration::from_secs(10),
        || dpx.has_blob(&blob),
    );

    // A's token does not open B's routes, nor B's token A's.
    assert_eq!(get(&serve, "GET", &blob_via_b, Some(&token_a)).status, 401);
    assert_eq!(get(&serve, "GET", &blob_a, Some(&token_b)).status, 401);
    // B's token on B's route: the cached blob is not B's.
    for method in ["GET", "HEAD"] {
        let resp = get(&serve, method, &blob_via_b, Some(&token_b));
        assert_eq!(resp.status, 404, "{method}: {:?}", resp.error_code());
        assert!(resp.body.len() < 1000, "no blob bytes");
    }
    let resp = get(&serve, "GET", &blob_via_b, Some(&token_b));
    assert_eq!(resp.error_code().as_deref(), Some("BLOB_UNKNOWN"));
}

/// `docker` against the shared daemon with its own client config (credentials).
fn docker(host: &str, config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut docker = Command::new("docker");
    docker
        .arg("--config")
        .arg(config)
        .args(["-H", host])
        .args(args);
    output_with_input(&mut docker, stdin.unwrap_or_default().as_bytes())
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn docker_logs_in_with_the_dpx_password_and_pulls_through_dpx_serve() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let layers = vec![file_layer("hello", &noise(904, 100_000))];
    let digest = hub_image(&hub, "library/authapp", Some("v1"), "amd64", &layers);
    let dpx = dpx_with_auth(&hub, "");
    let pw = password(&dpx);
    let serve = dpx.serve();
    let client = tempfile::tempdir().expect("docker config dir");
    let image = format!("{}/authapp:v1", serve.addr);
    let _ = docker(
        &eng.docker_host,
        client.path(),
        &["rmi", "-f", &image],
        None,
    );

    // Not logged in: an authentication error, and nothing pulled upstream.
    let out = docker(&eng.docker_host, client.path(), &["pull", &image], None);
    let refused = text(&out);
    assert!(!out.status.success(), "{refused}");
    assert!(
        refused.contains("unauthorized") || refused.contains("authentication required"),
        "{refused}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);

    // A wrong password is refused by `docker login`.
    let login = ["login", "-u", "dpx", "--password-stdin", &serve.addr];
    let out = docker(
        &eng.docker_host,
        client.path(),
        &login,
        Some("wrong-password\n"),
    );
    let wrong = text(&out);
    assert!(!out.status.success(), "{wrong}");

    // The dpx password: login, then the pull works.
    let out = docker(
        &eng.docker_host,
        client.path(),
        &login,
        Some(&format!("{pw}\n")),
    );
    let logged_in = text(&out);
    assert!(out.status.success(), "docker login: {logged_in}");
    let out = docker(&eng.docker_host, client.path(), &["pull", &image], None);
    let pulled = text(&out);
    assert!(out.status.success(), "docker pull: {pulled}");
    assert!(pulled.contains(&digest), "{pulled}");
    assert_eq!(hub.count(Route::ManifestGet), 1);
    assert!(serve.log_shows("GET /v2/authapp/manifests/"));
    let _ = docker(
        &eng.docker_host,
        client.path(),
        &["rmi", "-f", &image],
        None,
    );

    assert_no_secret(
        &[
            &serve.log_text(),
            &refused,
            &wrong,
            &logged_in,
            &pulled,
            &eng.dockerd_log(),
        ],
        &[&pw],
    );
}

/// `dpx serve` in a network namespace of its own (only its own loopback
/// exists there), so that listening on 0.0.0.0 exposes nothing; it must
/// start listening (the helper fails the test with its stderr otherwise).
fn serve_in_own_netns(dpx: &Dpx, flags: &[&str]) -> Serve {
    dpx.serve_wrapped(
        &["unshare", "--net", "--"],
        "0.0.0.0:0",
        flags,
        &[("DPX_LOG", "dpx=info")],
    )
}

#[test]
fn off_loopback_listening_needs_client_auth_or_the_explicit_insecure_flag() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    // Refused before anything is bound.
    let out = dpx.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0")
            && err.contains("--auth")
            && err.contains("--insecure-no-auth"),
        "{err}"
    );

    let log = serve_in_own_netns(&dpx, &["--insecure-no-auth"])
        .startup
        .clone();
    assert!(log.contains("without client authentication"), "{log}");

    let log = serve_in_own_netns(&dpx, &["--auth"]).startup.clone();
    assert!(log.contains("client auth on"), "{log}");
    assert!(
        log.contains("only clients on this machine can log in"),
        "no TLS off loopback is a warning: {log}"
    );
    assert!(
        dpx.dir.path().join("serve-password").is_file(),
        "--auth generated the password"
    );
}

/// A CA and a server certificate for 127.0.0.1 made with openssl; returns
/// (CA directory for skopeo's --cert-dir, cert, key).
fn make_certificates(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_dir = dir.join("ca");
    std::fs::create_dir_all(&ca_dir).expect("ca dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert_success(&out, &format!("openssl {args:?}"));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca/ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=dpx test CA",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca/ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
    (ca_dir, dir.join("server.crt"), dir.join("server.key"))
}

#[test]
fn https_with_client_auth_works_for_skopeo_with_the_ca_trusted_and_fails_without() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/tlsapp", "v1", &[20_000, 3000], 905);
    let dpx = dpx_with_auth(&hub, "");
    let pw = password(&dpx);
    let certs = tempfile::tempdir().expect("certs dir");
    let (ca_dir, cert, key) = make_certificates(certs.path());
    let serve = dpx.serve_flags(
        "127.0.0.1:0",
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
        &[],
    );
    // skopeo reads the credentials from an auth file, not its arguments.
    let authfile = certs.path().join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("dpx:{pw}"));
    std::fs::write(
        &authfile,
        serde_json::json!({"auths": {serve.addr.clone(): {"auth": auth}}}).to_string(),
    )
    .expect("auth file");
    let src = format!("docker://{}/library/tlsapp:v1", serve.addr);
    let skopeo = |args: &[&str]| {
        Command::new("skopeo")
            .args(args)
            .output()
            .expect("run skopeo")
    };
    let authfile_arg = authfile.to_str().expect("utf-8");
    let ca_arg = ca_dir.to_str().expect("utf-8");

    let out = skopeo(&[
        "inspect",
        "--authfile",
        authfile_arg,
        "--cert-dir",
        ca_arg,
        &src,
    ]);
    assert_success(&out, "skopeo inspect over https");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&digest));
    let oci = certs.path().join("oci");
    let dest = format!("oci:{}:v1", oci.display());
    let out = skopeo(&[
        "copy",
        "--preserve-digests",
        "--src-authfile",
        authfile_arg,
        "--src-cert-dir",
        ca_arg,
        &src,
        &dest,
    ]);
    assert_success(&out, "skopeo copy over https");
    assert!(
        std::fs::read_to_string(oci.join("index.json"))
            .expect("index")
            .contains(&digest)
    );

    // Without the CA the server's certificate is not trusted.
    let out = skopeo(&["inspect", "--authfile", authfile_arg, &src]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate"), "{err}");
    // Without credentials the token service refuses.
    let empty = certs.path().join("empty.json");
    std::fs::write(&empty, "{}").expect("empty auth file");
    let out = skopeo(&[
        "inspect",
        "--authfile",
        empty.to_str().expect("utf-8"),
        "--cert-dir",
        ca_arg,
        &src,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unauthorized") || err.contains("401"), "{err}");
    assert!(serve.log_shows("GET /token"));
    assert_no_secret(&[&serve.log_text(), &err], &[&pw]);
}

#[test]
fn a_configured_user_logs_in_with_the_password_its_hash_was_made_from() {
    let hub = FakeHub::start();
    let secret = "team-password-1234";
    let helper = Dpx::new(&hub.url());
    let hash = hash_of(&helper, secret);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(secret));

    let dpx = dpx_with_auth(&hub, &format!("[serve.auth.users]\nci = \"{hash}\"\n"));
    let serve = dpx.serve();
    let resp = token_request(&serve, "service=dpx", Some(&basic("ci", secret)));
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let resp = token_request(
        &serve,
        "service=dpx",
        Some(&basic("ci", "team-password-123")),
    );
    assert_eq!(resp.status, 401);
    assert_no_secret(&[&serve.log_text()], &[secret]);

    // A password never goes to --json output: the options refuse it.
    let out = dpx.run(&["--json", "serve", "--print-password"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    // Empty input is an error, not the hash of nothing.
    let out = helper.run(&["serve", "--hash-password"]);
    assert_eq!(out.status.code(), Some(2));
    // A hash that is not one: refused at start, naming the user but not the value.
    let bad = dpx_with_auth(&hub, "[serve.auth.users]\nci = \"plain-text-oops\"\n");
    let out = bad.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ci") && !err.contains("plain-text-oops"),
        "{err}"
    );
}

#[test]
fn a_tls_client_that_never_finishes_its_handshake_is_closed_after_the_header_timeout() {
    use std::io::Read;
    let hub = FakeHub::start();
    let certs = tempfile::tempdir().expect("certs dir");
    let (ca_dir, cert, key) = make_certificates(certs.path());
    // TLS from the config file this time, not flags.
    let serve_table = format!(
        "[serve]\nheader_timeout = \"1s\"\ntls_cert = {:?}\ntls_key = {:?}\n",
        cert.to_str().expect("utf-8"),
        key.to_str().expect("utf-8")
    );
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], &serve_table);
    let serve = dpx.serve();
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{http_version}",
            "--cacert",
        ])
        .arg(ca_dir.join("ca.crt"))
        .arg(format!("https://{}/v2/", serve.addr))
        .output()
        .expect("run curl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "200 2",
        "HTTPS, HTTP/2 by ALPN"
    );
    // Half a TLS configuration is bad input.
    let half = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        &format!("[serve]\ntls_cert = {:?}\n", cert.to_str().expect("utf-8")),
    );
    let out = half.run(&["serve", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tls_cert and tls_key go together"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut silent = std::net::TcpStream::connect(&serve.addr).expect("connect");
    // Generous: only there so a broken server fails the test instead of hanging it.
    silent
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).expect("closed, not timed out");
    assert_eq!(n, 0, "dpx closed the silent connection");
}

/// `curl` inside another process's network namespace; `config` (curl's
/// `-K -` syntax) goes through stdin, so no secret is in its arguments.
/// Returns (HTTP status, body).
pub(crate) fn curl_in_netns(pid: u32, url: &str, config: &str) -> (u16, String) {
    let mut curl = Command::new("nsenter");
    curl.arg(format!("--net=/proc/{pid}/ns/net")).args([
        "curl",
        "-s",
        "-K",
        "-",
        "-w",
        "\n%{http_code}",
        url,
    ]);
    let out = output_with_input(&mut curl, config.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').expect("status line");
    (status.trim().parse().expect("status"), body.to_string())
}

#[test]
fn passwords_and_tokens_are_refused_over_plain_http_from_off_loopback() {
    let hub = FakeHub::start();
    let dpx = dpx_with_auth(&hub, "");
    let pw = password(&dpx);
    // dpx in a network namespace of its own, listening on a documentation
    // address (TEST-NET-1) put on that namespace's loopback interface: a
    // client there connects from 192.0.2.1, an address off loopback, and
    // nothing leaves the namespace.
    let off_loopback = dpx.serve_wrapped(
        &[
            "unshare",
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 192.0.2.1/32 dev lo && exec \"$@\"",
            "sh",
        ],
        "192.0.2.1:0",
        &[],
        &[],
    );
    let (addr, pid) = (&off_loopback.addr, off_loopback.child.id());

    let (status, body) = curl_in_netns(
        pid,
        &format!("http://{addr}/token?service=dpx"),
        &format!("user = \"dpx:{pw}\"\n"),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("DENIED") && body.contains("--tls-cert"),
        "{body}"
    );
    // A token (even a valid one, which could only have come from elsewhere) is refused too.
    let serve = dpx.serve();
    let valid = token(&serve, &pw, "library/x");
    let (status, body) = curl_in_netns(
        pid,
        &format!("http://{addr}/v2/"),
        &format!("header = \"Authorization: Bearer {valid}\"\n"),
    );
    assert_eq!(status, 403, "{body}");
    // Without credentials: the ordinary challenge.
    let (status, _) = curl_in_netns(pid, &format!("http://{addr}/v2/"), "");
    assert_eq!(status, 401);
}

#[test]
fn env_gives_the_client_login_when_client_auth_is_on() {
    let hub = FakeHub::start();
    // Auth on, but no password generated yet: nothing to log in with.
    let dpx = dpx_with_auth(&hub, "");
    let before = dpx.json(&["env", "--format", "json"]);
    assert!(before.get("DPX_USER").is_none(), "{before}");
    let pw = password(&dpx);

    let vars = dpx.json(&["env", "--format", "json"]);
    assert_eq!(vars["DPX_USER"], "dpx", "{vars}");
    assert_eq!(vars["DPX_PASSWORD"], pw.as_str());
    let server = vars["DPX_SERVER"].as_str().expect("DPX_SERVER");
    let config: serde_json::Value = serde_json::from_str(
        vars["DOCKER_AUTH_CONFIG"]
            .as_str()
            .expect("DOCKER_AUTH_CONFIG"),
    )
    .expect("DOCKER_AUTH_CONFIG is JSON");
    let auth = config["auths"][server]["auth"]
        .as_str()
        .expect("an auths entry for DPX_SERVER");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .expect("base64");
    assert_eq!(String::from_utf8_lossy(&decoded), format!("dpx:{pw}"));

    // The same password file with client auth off: no login offered.
    std::fs::write(
        &dpx.config,
        format!("[registries.\"docker.io\"]\nurl = \"{}\"\n", hub.url()),
    )
    .expect("rewrite config");
    let off = dpx.json(&["env", "--format", "json"]);
    assert!(off.get("DPX_USER").is_none(), "{off}");
    assert_eq!(off["DPX_SERVER"], server);
}

/// The Argon2 hash of `secret`, as a user makes it.
fn hash_of(dpx: &Dpx, secret: &str) -> String {
    let out = dpx.run_with_stdin(&["serve", "--hash-password"], secret.as_bytes());
    assert_success(&out, "dpx serve --hash-password");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Argon2 needs ~19 MiB a check: 100 checks two at a time (right
/// passwords, then wrong ones) must not leave the server holding
/// gigabytes; it reuses a bounded set of buffers.
#[test]
fn password_checks_keep_the_memory_of_serve_bounded() {
    let hub = FakeHub::start();
    let secret = "team-password-1234";
    let hash = hash_of(&Dpx::new(&hub.url()), secret);
    let dpx = dpx_with_auth(&hub, &format!("[serve.auth.users]\nci = \"{hash}\"\n"));
    let serve = dpx.serve();
    let pid = serve.child.id();
    let before = rss_kib(pid);
    for password in [secret, "wrong-password"] {
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let resp =
                            token_request(&serve, "service=dpx", Some(&basic("ci", password)));
                        assert!(
                            [200, 401, 429].contains(&resp.status),
                            "{}",
                            resp.body_text()
                        );
                    }
                });
            }
        });
    }
    let after = rss_kib(pid);
    eprintln!("dpx serve RSS: {before} KiB before, {after} KiB after 200 checks");
    // Two checks at once at ~19 MiB each, plus the server itself (~15 MiB).
    let bound = 150 * 1024;
    assert!(
        after < bound,
        "RSS went from {before} KiB to {after} KiB (bound {bound} KiB)"
    );
}

/// Guessing is slowed: after a few wrong passwords from one address its
/// token requests get 429 with a Retry-After, the right password included,
/// without a password check; the log has a line per burst, not per guess.
#[test]
fn repeated_wrong_passwords_are_answered_429_with_retry_after_and_logged_once_per_burst() {
    let hub = FakeHub::start();
    let dpx = dpx_with_auth(&hub, "");
    let pw = password(&dpx);
    let serve = dpx.serve();
    let statuses: Vec<(u16, Option<String>)> = (0..30)
        .map(|i| {
            let resp = token_request(
                &serve,
                "service=dpx",
                Some(&basic("dpx", &format!("guess-{i}"))),
            );
            (resp.status, resp.header("retry-after").map(str::to_string))
        })
        .collect();
    let first_429 = statuses
        .iter()
        .position(|(s, _)| *s == 429)
        .unwrap_or_else(|| panic!("no 429 among {statuses:?}"));
    assert!(first_429 >= 3, "a few mistakes are free: {statuses:?}");
    assert!(
        statuses[..first_429].iter().all(|(s, _)| *s == 401),
        "{statuses:?}"
    );
    for (status, retry_after) in &statuses[first_429..] {
        assert_eq!(*status, 429, "{statuses:?}");
        let secs: u64 = retry_after
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("Retry-After in whole seconds: {statuses:?}"));
        assert!(secs >= 1, "{statuses:?}");
    }
    // The right password while locked out learns nothing either.
    let resp = token_request(&serve, "service=dpx", Some(&basic("dpx", &pw)));
    assert_eq!(resp.status, 429, "{}", resp.body_text());
    assert_eq!(
        resp.error_code().as_deref(),
        Some("TOOMANYREQUESTS"),
        "{}",
        resp.body_text()
    );
    assert!(serve.log_shows("wrong password"), "{}", serve.log_text());
    let log = serve.log_text();
    let lines = log
        .lines()
        .filter(|l| l.contains("wrong password") || l.contains("wrong user name"))
        .count();
    assert!(lines <= 2, "one line per burst, not per guess:\n{log}");
    // Once the lockout is over, the right password works again.
    crate::support::dpx::wait_for(
        "the right password to be accepted after the lockout",
        std::time::Duration::from_secs(30),
        || token_request(&serve, "service=dpx", Some(&basic("dpx", &pw))).status == 200,
    );
}

/// Runs dpx with its address space capped at 2 GiB (a read without a bound
/// aborts instead of taking the machine's memory), killed if still running
/// after `bound` (a serve that started is a failure here).
fn run_capped(mut cmd: Command, bound: std::time::Duration) -> Output {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| rlimit::setrlimit(rlimit::Resource::AS, 2 << 30, 2 << 30));
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dpx");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "dpx still running after {bound:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn tls_files_are_read_with_a_size_cap_and_a_key_others_may_read_is_refused() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "");
    let certs = tempfile::tempdir().expect("certs dir");
    let (_ca_dir, cert, key) = make_certificates(certs.path());
    let cert_arg = cert.to_str().expect("utf-8");
    let serve_tls = |cert: &str, key: &str| {
        let mut cmd = dpx.command();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--tls-cert", cert])
            .args(["--tls-key", key]);
        run_capped(cmd, std::time::Duration::from_secs(20))
    };
    let serve = |key: &str| serve_tls(cert_arg, key);

    // /dev/zero (mode 666) is refused as a key others may read; a private
    // file of 4 GiB (sparse) for its size.
    let out = serve("/dev/zero");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("chmod 600 /dev/zero"), "{err}");
    let huge = certs.path().join("huge.key");
    let file = std::fs::File::create(&huge).expect("huge key");
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .expect("chmod");
    }
    file.set_len(4 << 30).expect("sparse 4 GiB");
    let out = serve(huge.to_str().expect("utf-8"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&huge.display().to_string()) && err.contains("larger than 1 MiB"),
        "the error names the file and the limit: {err}"
    );
    let out = serve_tls("/dev/zero", key.to_str().expect("utf-8"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than 1 MiB"), "{err}");

    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let out = serve(key.to_str().expect("utf-8"));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "a world-readable key is refused as the other secrets are: {err}"
    );
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}
