//! Secrets stay secret (issue 19): a representative session — `dpx login`
//! with a password, a pull with those credentials through a fake hub that
//! requires them, `dpx serve` with client access, logs at trace level,
//! `--json` outputs of the commands that show settings and state — keeps all
//! its directories; then every file under them, every captured stdout and
//! stderr, and the serve process's environment are searched for the suite's
//! passwords and tokens (tests/support/secrets.txt) and for this session's
//! (the client password, its token, `user:password` in base64): 0 hits.
//! Not searched: the stores that hold a secret by design (`credentials.json`,
//! `serve-password`, `serve-token-key`) and the two outputs whose job is to
//! print one (`serve --print-password`, the `/token` answer).

use std::process::Output;

use base64::Engine as _;

use crate::support::dpx::{Dpx, path_str};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Route};
use crate::support::secrets::{Scan, forms, known};
use crate::support::{assert_success, output_with_input};

const USER: &str = "scan";
const PASSWORD: &str = "pw-Secret-Scan-19";

#[test]
fn no_password_or_token_appears_in_any_output_log_file_or_environment() {
    let hub = FakeHub::start();
    hub.add_image("library/secretapp", "v1", &[2000], 1919);
    hub.add_image("library/secretsrv", "v1", &[2000], 1920);
    hub.require_basic(USER, PASSWORD);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve.auth]\nenabled = true\n[credentials]\nstore = \"file\"\n",
    );
    let trace = |args: &[&str]| -> Output {
        dpx.command()
            .env("DPX_LOG", "dpx=trace")
            .args(args)
            .output()
            .expect("run dpx")
    };
    let mut outputs: Vec<(String, Output)> = Vec::new();
    let login = output_with_input(
        dpx.command().env("DPX_LOG", "dpx=trace").args([
            "--json",
            "login",
            "--username",
            USER,
            "--password-stdin",
        ]),
        PASSWORD.as_bytes(),
    );
    assert_success(&login, "dpx login");
    outputs.push(("login".into(), login));
    for args in [
        &["--json", "pull", "secretapp:v1"][..],
        &["-v", "pull", "secretapp:v1"],
        &["--json", "login", "--list"],
        &["--json", "config", "show"],
        &["--json", "ratelimit"],
        &["--json", "cache", "ls"],
        &["--json", "cache", "verify"],
        &["--json", "doctor"],
    ] {
        outputs.push((format!("dpx {args:?}"), trace(args)));
    }
    assert_success(&outputs[1].1, "dpx pull with the stored login");
    assert!(
        hub.token_users().contains(&Some(USER.to_string())),
        "the pull used the login"
    );

    // Client access: the generated password, a token, pulls through serve.
    let printed = dpx.run(&["serve", "--print-password"]);
    assert_success(&printed, "dpx serve --print-password");
    let client_password = String::from_utf8_lossy(&printed.stdout).trim().to_string();
    let mut serve = dpx.serve_with(&[("DPX_LOG", "dpx=trace")]);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("dpx:{client_password}"))
    );
    let resp = request(
        &serve.addr,
        "GET",
        "/token?service=dpx&scope=repository:library/secretapp:pull&scope=repository:library/secretsrv:pull",
        &[("Authorization", &basic)],
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("token JSON");
    let token = v["token"].as_str().expect("token").to_string();
    let bearer = format!("Bearer {token}");
    for path in [
        "/v2/library/secretapp/manifests/v1",
        // Not cached: serve fetches it with the stored login.
        "/v2/library/secretsrv/manifests/v1",
    ] {
        let r = request(&serve.addr, "GET", path, &[("Authorization", &bearer)]);
        assert_eq!(r.status, 200, "{path}: {}", r.body_text());
    }
    let wrong = request(
        &serve.addr,
        "GET",
        "/token?service=dpx",
        &[("Authorization", &basic.replace('=', "A"))],
    );
    assert_eq!(wrong.status, 401);
    assert!(hub.count(Route::ManifestGet) >= 2);
    let environ = std::fs::read(format!("/proc/{}/environ", serve.child.id())).expect("environ");
    assert!(serve.log_shows("GET /v2/library/secretsrv/manifests/v1 200"));
    serve.stop();

    let mut needles = known();
    needles.extend(forms(USER, PASSWORD));
    needles.extend(forms("dpx", &client_password));
    needles.push(token.clone());
    // The token's signature alone is as good as the token.
    needles.push(token.rsplit('.').next().unwrap_or_default().to_string());
    let mut scan = Scan::default();
    scan.dir(
        dpx.dir.path(),
        &needles,
        &["credentials.json", "serve-password", "serve-token-key"],
    );
    scan.text("serve's environment", &environ, &needles);
    for (what, out) in &outputs {
        scan.text(&format!("{what} stdout"), &out.stdout, &needles);
        scan.text(&format!("{what} stderr"), &out.stderr, &needles);
    }
    eprintln!(
        "secrets: {} needles in {} files, {} outputs, 1 environment: {} bytes, {} hits",
        needles.len(),
        scan.files,
        outputs.len() * 2,
        scan.bytes,
        scan.hits.len()
    );
    assert!(
        scan.files >= 5,
        "the scan read the session's files under {}",
        path_str(dpx.dir.path())
    );
    assert!(
        scan.hits.is_empty(),
        "secrets leaked:\n{}",
        scan.hits.join("\n")
    );
}
