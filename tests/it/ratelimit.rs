//! `dpx ratelimit` against the fake hub: the quota read from a HEAD of
//! `ratelimitpreview/test:latest` (never a GET), in every header form, a 429
//! as "used up", `--min-remaining` exit codes, `--json` and `-q`.

use std::process::Output;

use crate::support::dpx::Dpx;
use crate::support::hub::{FakeHub, Fault, HeaderStyle, Route};

/// `dpx ratelimit` exits with this when fewer pulls remain than asked for.
const QUOTA_LOW: i32 = 4;

fn hub_with_preview() -> FakeHub {
    let hub = FakeHub::start();
    hub.add_ratelimit_preview();
    hub
}

/// A dpx whose docker.io is the hub, retrying once.
fn dpx_for(hub: &FakeHub) -> Dpx {
    Dpx::with_registries(&[("docker.io", &hub.url())], "[network]\nretries = 1\n")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn no_manifest_get(hub: &FakeHub) {
    assert_eq!(
        hub.count(Route::ManifestGet),
        0,
        "a quota check spent a pull"
    );
}

#[test]
fn the_quota_is_read_from_a_head_and_no_pull_is_spent() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 76, 21600, HeaderStyle::Standard);
    let dpx = dpx_for(&hub);
    let text = dpx.ok(&["ratelimit"]);
    for part in [
        "76 of 100",
        "6h",
        "IP address 127.0.0.1",
        "anonymous",
        "docker.io",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    no_manifest_get(&hub);
    assert_eq!(
        hub.count_path(
            Route::ManifestHead,
            "/v2/ratelimitpreview/test/manifests/latest"
        ),
        1
    );
    let tokens = hub.token_requests();
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(tokens[0].scopes, ["repository:ratelimitpreview/test:pull"]);

    // The HEAD spent nothing: a second check sees the same count.
    assert_eq!(dpx.json(&["ratelimit"])["remaining"], 76);
    no_manifest_get(&hub);
}

#[test]
fn json_has_the_documented_fields() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 76, 21600, HeaderStyle::Standard);
    let dpx = dpx_for(&hub);
    let v = dpx.json(&["ratelimit"]);
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, crate::support::RATELIMIT_FIELDS);
    assert_eq!(v["registry"], "docker.io");
    assert_eq!(v["endpoint"], hub.url());
    assert_eq!(v["limited"], true);
    assert_eq!(v["exhausted"], false);
    assert_eq!(v["limit"], 100);
    assert_eq!(v["remaining"], 76);
    assert_eq!(v["window_seconds"], 21600);
    assert_eq!(v["source"], "127.0.0.1");
    assert_eq!(v["authenticated"], false);
    assert!(v["retry_after_seconds"].is_null());
    assert!(v["message"].is_null());
    assert!(v["observed_at"].as_u64().is_some_and(|t| t > 1_700_000_000));
    no_manifest_get(&hub);
}

#[test]
fn x_prefixed_extra_parameters_and_bare_counts_are_read() {
    let hub = hub_with_preview();
    let dpx = dpx_for(&hub);

    hub.set_ratelimit(200, 150, 3600, HeaderStyle::XPrefixed);
    let v = dpx.json(&["ratelimit"]);
    assert_eq!(
        (&v["limit"], &v["remaining"], &v["window_seconds"]),
        (&200.into(), &150.into(), &3600.into())
    );

    // Odd forms seen in the wild or in the IETF drafts.
    let hub = hub_with_preview();
    let dpx = dpx_for(&hub);
    hub.set_raw_ratelimit_headers(&[
        // The IETF list form, and the window only on the remaining count.
        ("X-RateLimit-Limit", "200, 200;comment=\"pulls\""),
        ("x-ratelimit-remaining", "\"7\"; W=3600"),
        ("Docker-RateLimit-Source", "198.51.100.7"),
    ]);
    let v = dpx.json(&["ratelimit"]);
    assert_eq!(
        (&v["limit"], &v["remaining"], &v["window_seconds"]),
        (&200.into(), &7.into(), &3600.into())
    );
    assert_eq!(v["source"], "198.51.100.7");

    // A bare count: no window is made up.
    hub.set_raw_ratelimit_headers(&[("ratelimit-limit", "100"), ("ratelimit-remaining", "5")]);
    let v = dpx.json(&["ratelimit"]);
    assert_eq!((&v["limit"], &v["remaining"]), (&100.into(), &5.into()));
    assert!(v["window_seconds"].is_null(), "{v}");
    assert!(v["source"].is_null(), "{v}");
    let text = dpx.ok(&["ratelimit"]);
    assert!(text.contains("window:         not given"), "{text}");
    no_manifest_get(&hub);
}

#[test]
fn no_rate_limit_headers_means_not_limited() {
    let hub = hub_with_preview();
    let dpx = dpx_for(&hub);
    let text = dpx.ok(&["ratelimit"]);
    assert!(text.contains("not rate limited"), "{text}");
    let v = dpx.json(&["ratelimit"]);
    assert_eq!(v["limited"], false);
    assert_eq!(v["exhausted"], false);
    assert!(v["remaining"].is_null() && v["limit"].is_null(), "{v}");
    assert_eq!(dpx.ok(&["ratelimit", "-q"]), "unlimited\n");
    let out = dpx.run(&["ratelimit", "--min-remaining", "1000000"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    no_manifest_get(&hub);
}

#[test]
fn quiet_prints_the_remaining_count_alone() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 76, 21600, HeaderStyle::Standard);
    let dpx = dpx_for(&hub);
    let out = dpx.run(&["ratelimit", "-q"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "76\n");
    assert_eq!(stderr(&out), "");
    no_manifest_get(&hub);
}

#[test]
fn min_remaining_exits_4_only_below_the_threshold() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 20, 21600, HeaderStyle::Standard);
    let dpx = dpx_for(&hub);
    for (min, code) in [("19", 0), ("20", 0), ("21", QUOTA_LOW)] {
        let out = dpx.run(&["ratelimit", "--min-remaining", min]);
        assert_eq!(
            out.status.code(),
            Some(code),
            "--min-remaining {min}: {}",
            stderr(&out)
        );
        // The figures are shown either way.
        assert!(stdout(&out).contains("20 of 100"), "{}", stdout(&out));
    }
    let out = dpx.run(&["ratelimit", "--min-remaining", "21"]);
    assert!(
        stderr(&out).contains("fewer than --min-remaining 21"),
        "{}",
        stderr(&out)
    );
    // Quiet and JSON runs give the same verdict.
    let out = dpx.run(&["-q", "ratelimit", "--min-remaining", "21"]);
    assert_eq!(
        (out.status.code(), stdout(&out)),
        (Some(QUOTA_LOW), "20\n".into())
    );
    let out = dpx.run(&["--json", "ratelimit", "--min-remaining", "21"]);
    assert_eq!(out.status.code(), Some(QUOTA_LOW));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["remaining"], 20);

    // Bad input is a usage error, not a verdict.
    let out = dpx.run(&["ratelimit", "--min-remaining", "-1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    no_manifest_get(&hub);
}

#[test]
fn a_429_on_the_head_means_the_quota_is_used_up() {
    let hub = hub_with_preview();
    hub.set_fault_on("/manifests/", Fault::TooManyRequests, None);
    hub.set_retry_after(Some("120"));
    hub.set_raw_ratelimit_headers(&[
        ("ratelimit-limit", "100;w=21600"),
        ("ratelimit-remaining", "0;w=21600"),
    ]);
    let dpx = dpx_for(&hub);
    let out = dpx.run(&["ratelimit"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("used up"), "{text}");
    assert!(text.contains("in 2m"), "{text}");
    assert!(
        text.contains("TOOMANYREQUESTS") || text.contains("429"),
        "{text}"
    );
    assert_eq!(
        hub.count(Route::ManifestHead),
        1,
        "a 429 is the answer, not retried"
    );

    let v = dpx.json(&["ratelimit"]);
    assert_eq!(v["limited"], true);
    assert_eq!(v["exhausted"], true);
    assert_eq!(v["remaining"], 0);
    assert_eq!(v["limit"], 100);
    assert_eq!(v["window_seconds"], 21600);
    assert_eq!(v["retry_after_seconds"], 120);
    assert_eq!(dpx.ok(&["ratelimit", "-q"]), "0\n");
    let out = dpx.run(&["ratelimit", "--min-remaining", "1"]);
    assert_eq!(out.status.code(), Some(QUOTA_LOW));

    // Without Retry-After, the window says by when at the latest.
    hub.set_retry_after(None);
    let text = dpx.ok(&["ratelimit"]);
    assert!(text.contains("within 6h at the latest"), "{text}");
    no_manifest_get(&hub);
}

#[test]
fn a_429_from_the_token_service_means_the_quota_is_used_up() {
    let hub = hub_with_preview();
    hub.set_token_too_many(true);
    let dpx = dpx_for(&hub);
    let v = dpx.json(&["ratelimit"]);
    assert_eq!(v["exhausted"], true, "{v}");
    assert_eq!(v["remaining"], 0);
    assert!(
        v["message"].as_str().is_some_and(|m| m.contains("token")),
        "{v}"
    );
    assert_eq!(
        hub.count(Route::Token),
        1,
        "a 429 is the answer, not retried"
    );
    assert_eq!(hub.count(Route::ManifestHead), 0);
    no_manifest_get(&hub);
}

#[test]
fn an_unreachable_upstream_is_an_error_with_a_hint() {
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let dpx = Dpx::with_registries(
        &[("docker.io", &format!("http://{closed}"))],
        "[network]\nretries = 0\n",
    );
    let out = dpx.run(&["ratelimit"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("cannot check the pull quota of docker.io"),
        "{err}"
    );
    assert!(err.contains("[registries.\"docker.io\"] url"), "{err}");
    assert_eq!(stdout(&out), "");
    let out = dpx.run(&["ratelimit", "--min-remaining", "1"]);
    assert_eq!(out.status.code(), Some(1), "an error, not a verdict");

    // Down with 503: retried as configured, then the same error.
    let hub = hub_with_preview();
    hub.set_fault_on("/manifests/", Fault::Outage, None);
    let out = dpx_for(&hub).run(&["ratelimit"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    assert_eq!(hub.count(Route::ManifestHead), 2, "1 try + 1 retry");
    no_manifest_get(&hub);
}

#[test]
fn an_endpoint_without_the_preview_image_is_an_error() {
    let hub = FakeHub::start();
    let out = dpx_for(&hub).run(&["ratelimit"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("ratelimitpreview/test"),
        "{}",
        stderr(&out)
    );
    no_manifest_get(&hub);
}

#[test]
fn anonymous_sends_no_credentials_to_the_token_service() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 60, 21600, HeaderStyle::Standard);
    // Anonymous tokens are still given; Basic credentials must be these.
    hub.set_account("alice", "s3cret");
    let dpx = dpx_for(&hub);
    // Credentials are keyed by docker.io's upstream: the hub's host:port.
    let hub_host = hub.url().trim_start_matches("http://").to_string();
    let creds = [
        ("DPX_REGISTRY_USER", "alice"),
        ("DPX_REGISTRY_PASSWORD", "s3cret"),
        ("DPX_REGISTRY_HOST", hub_host.as_str()),
    ];
    let ratelimit = |args: &[&str]| -> serde_json::Value {
        let out = dpx
            .command()
            .args(["--json", "ratelimit"])
            .args(args)
            .envs(creds)
            .output()
            .expect("dpx ratelimit");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("json")
    };

    // Signed in: the token request carries Basic, the quota is the account's.
    let v = ratelimit(&[]);
    assert_eq!(v["authenticated"], true, "{v}");
    assert_eq!(v["source"], "account-alice");
    let signed_in = hub.token_requests();
    assert!(!signed_in.is_empty());
    assert!(
        signed_in.iter().all(|t| t.user.as_deref() == Some("alice")),
        "{signed_in:?}"
    );

    // --anonymous: the same credentials at hand, none sent.
    let v = ratelimit(&["--anonymous"]);
    assert_eq!(v["authenticated"], false, "{v}");
    assert_eq!(v["source"], "127.0.0.1");
    let tokens = hub.token_requests();
    let anonymous = &tokens[signed_in.len()..];
    assert!(!anonymous.is_empty());
    assert!(
        anonymous.iter().all(|t| !t.authorized && t.user.is_none()),
        "{anonymous:?}"
    );
    no_manifest_get(&hub);
}

/// The credentialed side, through the client `dpx ratelimit` uses: credentials
/// go to the token service, the quota counts against the account.
#[test]
fn signed_in_checks_count_against_the_account() {
    use dpx::registry::probe::{PREVIEW_REPO, PREVIEW_TAG};
    use dpx::registry::{Credentials, LowSpeedLimit, RegistryClient, RetryPolicy, Upstream};

    let hub = hub_with_preview();
    hub.set_ratelimit(200, 180, 21600, HeaderStyle::Standard);
    hub.require_basic("alice", "s3cret");
    let url = hub.url();
    let upstream = Upstream::new(&url, None);
    let client = RegistryClient::new(
        std::sync::Arc::new(move |_: &str| vec![upstream.clone()]),
        RetryPolicy::default(),
        LowSpeedLimit::default(),
    )
    .expect("client");
    client.set_credentials(
        dpx::reference::HostKey::of_endpoint(&url).as_str(),
        Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        },
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let probe = rt
        .block_on(client.probe_quota("docker.io", PREVIEW_REPO, PREVIEW_TAG))
        .expect("probe");
    assert!(probe.authenticated);
    assert!(probe.exhausted.is_none());
    let rl = probe.rate_limit.expect("figures");
    assert_eq!((rl.limit, rl.remaining), (Some(200), Some(180)));
    assert_eq!(rl.source.as_deref(), Some("account-alice"));
    let tokens = hub.token_requests();
    assert!(
        tokens.iter().all(|t| t.user.as_deref() == Some("alice")),
        "{tokens:?}"
    );
    no_manifest_get(&hub);
}

#[test]
fn a_remaining_count_of_zero_is_used_up_too() {
    let hub = hub_with_preview();
    hub.set_ratelimit(100, 0, 21600, HeaderStyle::Standard);
    let dpx = dpx_for(&hub);
    let v = dpx.json(&["ratelimit"]);
    assert_eq!(
        (&v["exhausted"], &v["remaining"]),
        (&true.into(), &0.into())
    );
    assert!(v["retry_after_seconds"].is_null(), "{v}");
    let text = dpx.ok(&["ratelimit"]);
    assert!(
        text.contains("used up") && text.contains("within 6h"),
        "{text}"
    );
    let out = dpx.run(&["ratelimit", "--min-remaining", "1"]);
    assert_eq!(out.status.code(), Some(QUOTA_LOW));
    let out = dpx.run(&["ratelimit", "--min-remaining", "0"]);
    assert_eq!(out.status.code(), Some(0));
    no_manifest_get(&hub);
}

/// `dpx doctor`'s ratelimit line: the figures recorded on the last upstream
/// reply, a warning (fix: dpx ratelimit) once they are at the reserve.
#[test]
fn doctor_reports_the_recorded_quota_and_warns_at_the_reserve() {
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 42, 21600, HeaderStyle::Standard);
    hub.add_image("library/doctorquota", "v1", &[1000], 95);
    let dpx = dpx_for(&hub);
    let ratelimit_checks = |dpx: &Dpx| -> Vec<serde_json::Value> {
        // Exit 1 here: nothing serves the mirror address.
        let v = dpx.json(&["doctor", "--hosts-dir", "/nonexistent"]);
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .filter(|c| c["check"] == "ratelimit")
            .cloned()
            .collect()
    };
    assert!(ratelimit_checks(&dpx).is_empty(), "no figures seen yet");
    dpx.ok(&["pull", "doctorquota:v1"]);

    let checks = ratelimit_checks(&dpx);
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["status"], "ok", "{checks:?}");
    let message = checks[0]["message"].as_str().expect("message");
    assert!(message.contains("41 of 100 pulls left"), "{message}");

    // The same record read with a reserve above what is left: a warning.
    let config = std::fs::read_to_string(&dpx.config).expect("config");
    std::fs::write(&dpx.config, format!("{config}[ratelimit]\nreserve = 50\n")).expect("config");
    let checks = ratelimit_checks(&dpx);
    assert_eq!(checks[0]["status"], "warning", "{checks:?}");
    assert!(
        checks[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at or below the reserve of 50")),
        "{checks:?}"
    );
    assert!(
        checks[0]["fix"]
            .as_str()
            .is_some_and(|f| f.starts_with("dpx ratelimit")),
        "{checks:?}"
    );
}
