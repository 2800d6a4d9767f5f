//! How `dpx pull` treats a failing or slow upstream (fake hub): one retry
//! budget per manifest and per blob download (resumes included), Retry-After
//! honoured, permanent errors not retried, a low-speed limit on every body.

use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::dpx::Dpx;
use crate::support::hub::{FakeHub, Fault, Route};

/// `[registries]` pointing at the hub plus a `[network]` table.
fn dpx_with(hub: &FakeHub, network: &str) -> Dpx {
    Dpx::with_registries(
        &[("docker.io", &hub.url())],
        &format!("[network]\n{network}"),
    )
}

/// Runs dpx, killing it (and failing) if it outlives a generous deadline.
fn run_bounded(dpx: &Dpx, args: &[&str]) -> Output {
    let mut child = dpx
        .command()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dpx");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("dpx {args:?} still running after 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The first layer of an image the hub serves under `repo:v1`.
fn layer_of(hub: &FakeHub, repo: &str, size: usize, seed: u64) -> String {
    hub.add_image(repo, "v1", &[size], seed);
    hub.add_blob(crate::support::hub::noise(seed.wrapping_mul(1000), size))
}

#[test]
fn a_manifest_answering_503_costs_exactly_retries_plus_one_gets() {
    let hub = FakeHub::start();
    hub.add_image("library/m503", "v1", &[100], 40);
    let dpx = dpx_with(&hub, "retries = 2\n");
    hub.set_fault_on("/manifests/", Fault::Outage, None);
    let out = run_bounded(&dpx, &["pull", "m503:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    assert_eq!(
        hub.count(Route::ManifestGet),
        3,
        "1 try + 2 retries, no more"
    );

    // Two 503s, then the manifest: the third try succeeds.
    hub.reset_counts();
    hub.set_fault_on("/manifests/", Fault::Outage, Some(2));
    run_ok(&dpx, &["pull", "m503:v1"]);
    assert_eq!(hub.count(Route::ManifestGet), 3);
}

#[test]
fn a_manifest_body_cut_short_is_tried_again() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/cut", "v1", &[100], 51);
    let dpx = dpx_with(&hub, "retries = 2\n");
    hub.set_fault_on("/manifests/", Fault::ConnectionReset, Some(1));
    run_ok(&dpx, &["pull", &format!("cut@{digest}")]);
    assert_eq!(
        hub.count(Route::ManifestGet),
        2,
        "the cut reply, then the manifest"
    );
}

fn run_ok(dpx: &Dpx, args: &[&str]) {
    let out = run_bounded(dpx, args);
    assert!(out.status.success(), "dpx {args:?}: {}", stderr(&out));
}

#[test]
fn a_cdn_answering_503_costs_exactly_retries_plus_one_requests() {
    let hub = FakeHub::start();
    let layer = layer_of(&hub, "library/cdn503", 50_000, 41);
    let cdn_path = format!("/cdn/{layer}");
    let dpx = dpx_with(&hub, "retries = 3\n");
    hub.set_fault_on(&cdn_path, Fault::Outage, None);
    let out = run_bounded(&dpx, &["pull", "cdn503:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    // Not 4 × 4: the blob download and its requests share one budget.
    assert_eq!(hub.count_path(Route::CdnBlobGet, &cdn_path), 4);
    assert_eq!(hub.count_path(Route::BlobGet, &layer), 4);
    assert!(!dpx.has_blob(&layer));
    assert!(dpx.tmp_is_empty());
}

#[test]
fn retry_after_is_waited_out_between_tries() {
    let hub = FakeHub::start();
    let layer = layer_of(&hub, "library/later", 50_000, 42);
    let cdn_path = format!("/cdn/{layer}");
    let dpx = dpx_with(&hub, "retries = 3\n");
    hub.set_retry_after(Some("1"));
    hub.set_fault_on(&cdn_path, Fault::Outage, Some(2));
    run_ok(&dpx, &["pull", "later:v1"]);
    assert!(dpx.has_blob(&layer));
    let times = hub.request_times(Route::CdnBlobGet, &cdn_path);
    assert_eq!(times.len(), 3, "two 503s, then the blob");
    for pair in times.windows(2) {
        // A lower bound the protocol sets: the server asked for a second.
        assert!(
            pair[1].duration_since(pair[0]) >= Duration::from_secs(1),
            "tried again {:?} after a Retry-After: 1",
            pair[1].duration_since(pair[0])
        );
    }

    // The same as an HTTP date, on the HEAD that revalidates the cached tag:
    // the second try comes no earlier than that date (whatever the load, a
    // late start only shortens the wait the date leaves).
    hub.reset_counts();
    let (sys0, t0) = (std::time::SystemTime::now(), std::time::Instant::now());
    let date = httpdate::fmt_http_date(sys0 + Duration::from_secs(2));
    let not_before = httpdate::parse_http_date(&date).unwrap();
    hub.set_retry_after(Some(&date));
    hub.set_fault_on("/manifests/", Fault::Outage, Some(1));
    run_ok(&dpx, &["pull", "later:v1"]);
    let times = hub.request_times(Route::ManifestHead, "/manifests/");
    assert_eq!(times.len(), 2);
    // Instants to wall-clock time, with a little slack for the two clocks.
    let retried_at = sys0 + times[1].duration_since(t0) + Duration::from_millis(50);
    assert!(
        retried_at >= not_before,
        "tried again {:?} before the Retry-After date",
        not_before.duration_since(retried_at).unwrap_or_default()
    );
}

#[test]
fn a_retry_after_longer_than_any_wait_fails_at_once() {
    let hub = FakeHub::start();
    hub.add_image("library/tomorrow", "v1", &[100], 43);
    let dpx = dpx_with(&hub, "retries = 3\n");
    hub.set_retry_after(Some("86400"));
    hub.set_fault_on("/manifests/", Fault::TooManyRequests, None);
    let out = run_bounded(&dpx, &["pull", "tomorrow:v1"]);
    // The quota stopped it: exit 3, the quota's code.
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("429"), "{}", stderr(&out));
    assert_eq!(
        hub.count(Route::ManifestGet),
        1,
        "no point asking again today"
    );
}

#[test]
fn a_redirect_loop_is_not_retried() {
    let hub = FakeHub::start();
    let layer = layer_of(&hub, "library/loop", 1000, 44);
    let dpx = dpx_with(&hub, "retries = 3\n");
    hub.set_redirect_loop(Some(&layer));
    let out = run_bounded(&dpx, &["pull", "loop:v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("redirects"), "{}", stderr(&out));
    // The first request and 5 redirects (dpx's MAX_REDIRECTS), once.
    assert_eq!(hub.count_path(Route::BlobGet, &layer), 6);
}

#[test]
fn an_oversized_response_head_is_not_retried() {
    let hub = FakeHub::start();
    let layer = layer_of(&hub, "library/bighead", 1000, 45);
    let dpx = dpx_with(&hub, "retries = 3\n");
    hub.set_huge_head(Some(&layer));
    let out = run_bounded(&dpx, &["pull", "bighead:v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("too large"), "{}", stderr(&out));
    assert_eq!(hub.count_path(Route::BlobGet, &layer), 1);
}

#[test]
fn a_dripping_manifest_fails_under_the_low_speed_limit() {
    let hub = FakeHub::start();
    hub.add_image("library/drip", "v1", &[100], 46);
    let dpx = dpx_with(
        &hub,
        "retries = 1\nlow_speed_limit = \"100B\"\nlow_speed_time = \"2s\"\n",
    );
    // ~300 bytes at 5 B/s would take a minute; the limit is 100 B/s.
    hub.set_manifest_drip(Some(Duration::from_millis(200)));
    let out = run_bounded(&dpx, &["pull", "drip:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("slower than") && err.contains("low_speed_limit"),
        "the error says what happened and what to change: {err}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 2, "1 try + 1 retry");
    assert_eq!(hub.count(Route::CdnBlobGet), 0);
}

#[test]
fn a_reply_that_never_comes_fails_after_bounded_tries() {
    let hub = FakeHub::start();
    hub.add_image("library/mute", "v1", &[100], 52);
    let dpx = dpx_with(&hub, "retries = 1\nlow_speed_time = \"2s\"\n");
    hub.set_fault_on("/manifests/", Fault::NoAnswer, None);
    let out = run_bounded(&dpx, &["pull", "mute:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no reply within 2s"),
        "{}",
        stderr(&out)
    );
    assert_eq!(hub.count(Route::ManifestGet), 2);
}

#[test]
fn a_stalled_blob_fails_after_bounded_tries() {
    let hub = FakeHub::start();
    let layer = layer_of(&hub, "library/stall", 200_000, 47);
    let cdn_path = format!("/cdn/{layer}");
    let dpx = dpx_with(&hub, "retries = 2\nlow_speed_time = \"2s\"\n");
    hub.set_fault_on(&cdn_path, Fault::StallAfter(10), None);
    let out = run_bounded(&dpx, &["pull", "stall:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("slower than"), "{}", stderr(&out));
    // Each try brought 10 bytes (and resumed after them): progress buys no
    // extra tries, so the budget bounds the whole download.
    assert_eq!(hub.count_path(Route::CdnBlobGet, &cdn_path), 3);
    assert!(!dpx.has_blob(&layer));
    assert!(dpx.tmp_is_empty());
}

#[test]
fn bad_network_settings_are_config_errors() {
    let hub = FakeHub::start();
    for bad in [
        "retries = \"three\"\n",
        "low_speed_limit = \"fast\"\n",
        "low_speed_time = \"soon\"\n",
        "retry = 3\n",
    ] {
        let dpx = dpx_with(&hub, bad);
        let out = dpx.run(&["pull", "x:v1"]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("config"), "{bad}: {}", stderr(&out));
    }
    assert_eq!(hub.count(Route::ManifestGet) + hub.count(Route::Token), 0);
}

#[test]
fn an_endless_error_body_is_read_only_in_part() {
    let hub = FakeHub::start();
    hub.add_image("library/chatty", "v1", &[100], 48);
    let dpx = dpx_with(&hub, "retries = 1\n");
    hub.set_endless_error_bodies(true);
    hub.set_fault_on("/manifests/", Fault::Outage, None);
    let out = run_bounded(&dpx, &["pull", "chatty:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("503"), "{}", stderr(&out));
    assert_eq!(hub.count(Route::ManifestGet), 2);
}

#[test]
fn an_oversized_token_reply_is_refused() {
    let hub = FakeHub::start();
    hub.add_image("library/fat", "v1", &[100], 49);
    hub.set_token_padding(100 * 1024);
    let dpx = dpx_with(&hub, "retries = 3\n");
    let out = run_bounded(&dpx, &["pull", "fat:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("token request") && err.contains("larger than"),
        "{err}"
    );
    assert_eq!(
        hub.count(Route::Token),
        1,
        "a broken token server is not retried"
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

#[test]
fn a_tls_failure_is_not_retried() {
    let hub = FakeHub::start();
    hub.add_image("library/tls", "v1", &[100], 50);
    // The hub speaks plain HTTP: a TLS handshake with it cannot succeed.
    let https = hub.url().replace("http://", "https://");
    let dpx = Dpx::with_registries(&[("docker.io", &https)], "[network]\nretries = 3\n");
    let out = run_bounded(&dpx, &["pull", "tls:v1"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("TLS"), "{err}");
    assert!(!err.contains("retrying"), "{err}");

    // A spurious failure, by contrast, is retried and says so.
    let dpx = dpx_with(&hub, "retries = 1\n");
    hub.set_fault_on("/manifests/", Fault::Outage, None);
    let err = stderr(&run_bounded(&dpx, &["pull", "tls:v1"]));
    assert!(err.contains("retrying"), "{err}");
}

/// What dpx printed has no terminal control characters and is bounded.
fn assert_printable(stderr: &str, what: &str) {
    assert!(
        !stderr
            .chars()
            .any(|c| (c.is_control() && c != '\n') || c == '\u{9b}'),
        "{what}: a raw control character was printed: {stderr:?}"
    );
    assert!(
        stderr.len() < 8 * 1024,
        "{what}: {} bytes printed",
        stderr.len()
    );
}

#[test]
fn an_upstream_error_message_is_printed_escaped_and_cut_short() {
    let hub = FakeHub::start();
    hub.add_image("library/hostile", "v1", &[100], 61);
    hub.set_fault(Fault::HostileError);
    let dpx = dpx_with(&hub, "");
    let out = dpx.run(&["pull", "hostile:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_printable(&err, "pull");
    assert!(
        err.contains("pwned") && err.contains("\\u{9b}31mdenied"),
        "the message is shown, escaped: {err}"
    );
}
