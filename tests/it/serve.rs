//! `dpx serve` over raw HTTP against the fake hub: TTL / HEAD / stale rules,
//! single-flight blobs, ranges, errors, shutdown.

use std::time::Duration;

use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};

fn manifest_path(repo: &str, reference: &str) -> String {
    format!("/v2/{repo}/manifests/{reference}")
}

#[test]
fn tag_within_ttl_makes_no_upstream_request_and_head_carries_digest_and_length() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/web", "v1", &[1000], 1);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();

    let first = request(&serve.addr, "GET", &manifest_path("library/web", "v1"), &[]);
    assert_eq!(first.status, 200, "{}", first.body_text());
    assert_eq!(first.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        first.header("content-type"),
        Some("application/vnd.oci.image.manifest.v1+json")
    );
    assert_eq!(first.header("x-dpx-cache"), Some("miss"));
    assert_eq!(format!("sha256:{}", sha256_hex(&first.body)), digest);
    assert_eq!(hub.count(Route::ManifestGet), 1);

    hub.reset_counts();
    for _ in 0..10 {
        let head = request(
            &serve.addr,
            "HEAD",
            &manifest_path("library/web", "v1"),
            &[],
        );
        assert_eq!(head.status, 200);
        assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(
            head.header("content-length"),
            Some(first.body.len().to_string().as_str())
        );
        assert!(head.body.is_empty());
        let get = request(
            &serve.addr,
            "GET",
            &manifest_path("library/web", &digest),
            &[],
        );
        assert_eq!(get.status, 200);
        assert_eq!(get.body, first.body);
    }
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
        0,
        "within the TTL nothing goes upstream"
    );
    assert!(
        serve.log_shows("HEAD /v2/library/web/manifests/v1 200"),
        "one log line per request"
    );
}

#[test]
fn after_the_ttl_only_a_head_and_a_moved_tag_is_fetched() {
    let hub = FakeHub::start();
    let first = hub.add_image("library/ttl", "v1", &[10], 2);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let serve = dpx.serve();
    assert_eq!(
        request(&serve.addr, "GET", &manifest_path("library/ttl", "v1"), &[]).status,
        200
    );
    hub.reset_counts();
    let again = request(&serve.addr, "GET", &manifest_path("library/ttl", "v1"), &[]);
    assert_eq!(again.header("x-dpx-cache"), Some("revalidated"));
    assert_eq!(again.header("docker-content-digest"), Some(first.as_str()));
    assert_eq!(
        (
            hub.count(Route::ManifestHead),
            hub.count(Route::ManifestGet)
        ),
        (1, 0)
    );

    let second = hub.add_image("library/ttl", "v1", &[20], 3);
    hub.reset_counts();
    let moved = request(&serve.addr, "GET", &manifest_path("library/ttl", "v1"), &[]);
    assert_eq!(moved.header("docker-content-digest"), Some(second.as_str()));
    assert_eq!(
        (
            hub.count(Route::ManifestHead),
            hub.count(Route::ManifestGet)
        ),
        (1, 1)
    );
}

#[test]
fn upstream_down_serves_stale_and_uncached_gets_a_distribution_error() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/cached", "v1", &[10], 4);
    hub.add_image("library/never", "v1", &[10], 5);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let serve = dpx.serve();
    assert_eq!(
        request(
            &serve.addr,
            "GET",
            &manifest_path("library/cached", "v1"),
            &[]
        )
        .status,
        200
    );

    for fault in [
        Fault::Outage,
        Fault::TooManyRequests,
        Fault::ConnectionReset,
    ] {
        hub.set_fault(fault);
        let stale = request(
            &serve.addr,
            "GET",
            &manifest_path("library/cached", "v1"),
            &[],
        );
        assert_eq!(stale.status, 200);
        assert_eq!(stale.header("x-dpx-cache"), Some("stale"));
        assert_eq!(stale.header("docker-content-digest"), Some(digest.as_str()));
    }
    hub.set_fault(Fault::Outage);
    let missing = request(
        &serve.addr,
        "GET",
        &manifest_path("library/never", "v1"),
        &[],
    );
    assert_eq!(
        missing.status, 404,
        "a 4xx, so that docker shows the message"
    );
    assert_eq!(missing.error_code().as_deref(), Some("MANIFEST_UNKNOWN"));
    assert!(
        missing.body_text().contains("not cached"),
        "{}",
        missing.body_text()
    );
    hub.set_fault(Fault::None);
    let unknown = request(
        &serve.addr,
        "GET",
        &manifest_path("library/nosuch", "v1"),
        &[],
    );
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.error_code().as_deref(), Some("MANIFEST_UNKNOWN"));
    // Last: a 429 to a manifest GET pauses manifest requests (tests/it/quota.rs).
    hub.set_fault(Fault::TooManyRequests);
    let limited = request(
        &serve.addr,
        "GET",
        &manifest_path("library/never", "v1"),
        &[],
    );
    assert_eq!(limited.status, 429);
    assert_eq!(limited.error_code().as_deref(), Some("TOOMANYREQUESTS"));
}

#[test]
fn twenty_clients_share_one_upstream_download_of_a_cold_blob() {
    let hub = FakeHub::start();
    let data: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let digest = hub.add_blob(data.clone());
    hub.set_fault(Fault::SlowBody(Duration::from_millis(1)));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = format!("/v2/library/big/blobs/{digest}");
    let want = sha256_hex(&data);
    let clients: Vec<_> = (0..20)
        .map(|_| {
            let (addr, path) = (serve.addr.clone(), path.clone());
            std::thread::spawn(move || request(&addr, "GET", &path, &[]))
        })
        .collect();
    for c in clients {
        let resp = c.join().expect("client thread");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body.len(), data.len());
        assert_eq!(sha256_hex(&resp.body), want);
    }
    assert_eq!(
        hub.count(Route::BlobGet),
        1,
        "exactly one upstream blob GET"
    );
    assert!(dpx.has_blob(&digest));
    hub.reset_counts();
    let again = request(&serve.addr, "GET", &path, &[("Range", "bytes=100-199")]);
    assert_eq!(again.status, 206);
    assert_eq!(again.body, &data[100..200]);
    assert_eq!(
        again.header("content-range"),
        Some(format!("bytes 100-199/{}", data.len()).as_str())
    );
    let head = request(&serve.addr, "HEAD", &path, &[]);
    assert_eq!(
        head.header("content-length"),
        Some(data.len().to_string().as_str())
    );
    assert_eq!(
        hub.count(Route::BlobGet) + hub.count(Route::BlobHead),
        0,
        "cached blobs never go upstream"
    );
}

#[test]
fn a_corrupt_upstream_blob_is_never_delivered_whole_nor_kept() {
    let hub = FakeHub::start();
    let data = vec![7u8; 300_000];
    let digest = hub.add_blob(data.clone());
    hub.set_fault(Fault::CorruptBody);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/x/blobs/{digest}"),
        &[],
    );
    assert!(
        resp.body.len() < data.len(),
        "the client must not receive a complete wrong blob"
    );
    assert!(!dpx.has_blob(&digest));
    wait_for("temp file removal", Duration::from_secs(10), || {
        dpx.tmp_is_empty()
    });
    hub.set_fault(Fault::None);
    let ok = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/x/blobs/{digest}"),
        &[],
    );
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body, data);
}

#[test]
fn bad_requests_get_4xx_distribution_errors_and_the_server_keeps_serving() {
    let hub = FakeHub::start();
    hub.add_image("library/ok", "v1", &[10], 6);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let long = format!("/v2/{}/manifests/v1", "a".repeat(300));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "GET",
            "/v2/../../etc/passwd/manifests/x".into(),
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/%2e%2e/%2e%2e/etc/manifests/x".into(),
            "NAME_INVALID",
        ),
        (
            "GET",
            "/v2/library/ok/manifests/..".into(),
            "MANIFEST_UNKNOWN",
        ),
        (
            "GET",
            "/v2/library/ok/blobs/sha256:abc".into(),
            "DIGEST_INVALID",
        ),
        (
            "GET",
            "/v2/library/ok/blobs/../../../../etc/passwd".into(),
            "NAME_INVALID",
        ),
        ("GET", "//etc/passwd".into(), "UNSUPPORTED"),
        ("GET", "/etc/passwd".into(), "UNSUPPORTED"),
        ("GET", long, "NAME_INVALID"),
        ("GET", "/v2/library/ok/unknown/x".into(), "UNSUPPORTED"),
        ("PUT", "/v2/library/ok/manifests/v1".into(), "UNSUPPORTED"),
        (
            "DELETE",
            "/v2/library/ok/manifests/v1".into(),
            "UNSUPPORTED",
        ),
        (
            "POST",
            "/v2/library/ok/blobs/uploads/".into(),
            "UNSUPPORTED",
        ),
    ];
    for (method, path, code) in cases {
        let resp = request(&serve.addr, method, &path, &[]);
        assert!(
            (400..500).contains(&resp.status),
            "{method} {path}: {}",
            resp.status
        );
        assert_eq!(
            resp.error_code().as_deref(),
            Some(code),
            "{method} {path}: {}",
            resp.body_text()
        );
    }
    let entries: Vec<_> = std::fs::read_dir(dpx.dir.path())
        .expect("test dir")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    assert!(
        entries.len() <= 3,
        "nothing outside the cache was touched: {entries:?}"
    );
    let unknown_blob = format!("/v2/library/ok/blobs/sha256:{}", "0".repeat(64));
    let resp = request(&serve.addr, "GET", &unknown_blob, &[]);
    assert_eq!(
        (resp.status, resp.error_code().as_deref()),
        (404, Some("BLOB_UNKNOWN"))
    );
    let ok = request(
        &serve.addr,
        "GET",
        "/v2/library/ok/manifests/v1?unknown=1",
        &[],
    );
    assert_eq!(ok.status, 200, "still serving after bad requests");
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 200);
}

#[test]
fn ns_query_and_prefix_mode_pick_the_upstream() {
    let hub = FakeHub::start();
    let other = FakeHub::start();
    let digest = other.add_image("org/app", "1", &[10], 7);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url()), ("ghcr.io", &other.url())], "");
    let serve = dpx.serve();
    let by_ns = request(
        &serve.addr,
        "GET",
        "/v2/org/app/manifests/1?ns=ghcr.io",
        &[],
    );
    assert_eq!(by_ns.header("docker-content-digest"), Some(digest.as_str()));
    let by_prefix = request(&serve.addr, "GET", "/v2/ghcr.io/org/app/manifests/1", &[]);
    assert_eq!(
        by_prefix.header("docker-content-digest"),
        Some(digest.as_str())
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

#[test]
fn sigterm_and_sigint_finish_in_flight_responses_and_exit_0() {
    for signal in ["TERM", "INT"] {
        let hub = FakeHub::start();
        let data = vec![3u8; 4_000_000];
        let digest = hub.add_blob(data.clone());
        hub.set_fault(Fault::SlowBody(Duration::from_millis(10)));
        let dpx = Dpx::new(&hub.url());
        let mut serve = dpx.serve();
        let addr = serve.addr.clone();
        let path = format!("/v2/library/x/blobs/{digest}");
        let client = std::thread::spawn(move || request(&addr, "GET", &path, &[]));
        wait_for("the download to start", Duration::from_secs(20), || {
            !dpx.tmp_is_empty()
        });
        let status = serve.stop_with(signal);
        assert_eq!(status.code(), Some(0), "SIG{signal}");
        let resp = client.join().expect("client");
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.body, data,
            "the in-flight response finished (SIG{signal})"
        );
        assert!(dpx.tmp_is_empty(), "no partial blob after shutdown");
        assert!(dpx.has_blob(&digest));
    }
}

#[test]
fn serve_and_a_concurrent_prefetch_share_one_cache() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/shared", "v1", &[3_000_000, 1_000_000], 8);
    hub.set_fault(Fault::SlowBody(Duration::from_millis(2)));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let prefetch = dpx
        .command()
        .args(["-q", "prefetch", "shared:v1"])
        .spawn()
        .expect("spawn prefetch");
    let manifest = request(
        &serve.addr,
        "GET",
        &manifest_path("library/shared", "v1"),
        &[],
    );
    assert_eq!(
        manifest.header("docker-content-digest"),
        Some(digest.as_str())
    );
    let m: serde_json::Value = serde_json::from_slice(&manifest.body).expect("manifest json");
    for layer in m["layers"].as_array().expect("layers") {
        let d = layer["digest"].as_str().expect("digest");
        let resp = request(
            &serve.addr,
            "GET",
            &format!("/v2/library/shared/blobs/{d}"),
            &[],
        );
        assert_eq!(resp.status, 200);
        assert_eq!(format!("sha256:{}", sha256_hex(&resp.body)), d);
    }
    let out = prefetch.wait_with_output().expect("prefetch");
    assert!(out.status.success());
    // Whoever came first downloaded each blob; the other waited on its lock.
    assert_eq!(
        hub.count(Route::BlobGet),
        3,
        "config + 2 layers, each once across both processes"
    );
    dpx.assert_store_consistent();
}

#[test]
fn listen_address_comes_from_config_or_env() {
    let hub = FakeHub::start();
    let port = crate::support::engines::free_port();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        &format!("[serve]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let port2 = crate::support::engines::free_port();
    for (env, port) in [(None, port), (Some(format!("127.0.0.1:{port2}")), port2)] {
        let mut cmd = dpx.command();
        cmd.arg("serve").stderr(std::process::Stdio::null());
        if let Some(e) = env {
            cmd.env("DPX_LISTEN", e);
        }
        let mut child = cmd.spawn().expect("spawn");
        wait_for("dpx to listen", Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn a_cold_blob_streams_to_the_client_before_the_download_completes() {
    use std::io::{Read, Write};
    let hub = FakeHub::start();
    let data = crate::support::hub::noise(77, 6_000_000);
    let digest = hub.add_blob(data.clone());
    // Upstream sends half the blob, then stalls until released.
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let mut s = std::net::TcpStream::connect(&serve.addr).expect("connect");
    // Without streaming, nothing would arrive before release(): fail, don't hang.
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET /v2/library/x/blobs/{digest} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut first = vec![0u8; 256 * 1024];
    s.read_exact(&mut first).expect("the first bytes arrive");
    assert!(
        !dpx.has_blob(&digest),
        "the upstream download is still stalled"
    );
    hub.release();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the rest arrives");
    first.extend_from_slice(&rest);
    let body_start = first
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    assert_eq!(&first[body_start..], &data[..]);
    // Stored once fsynced, a moment after the client's last byte.
    wait_for("the blob stored", Duration::from_secs(10), || {
        dpx.has_blob(&digest)
    });
}

#[test]
fn a_burst_of_pulls_of_one_tag_costs_one_upstream_check() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/burst", "v1", &[10], 9);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let serve = dpx.serve();
    let burst = |expect_cache: &'static str| {
        let clients: Vec<_> = (0..10)
            .map(|_| {
                let addr = serve.addr.clone();
                std::thread::spawn(move || {
                    request(&addr, "GET", &manifest_path("library/burst", "v1"), &[])
                })
            })
            .collect();
        for c in clients {
            let resp = c.join().expect("client");
            assert_eq!(resp.status, 200);
            assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
            if !expect_cache.is_empty() {
                assert_eq!(resp.header("x-dpx-cache"), Some(expect_cache));
            }
        }
    };
    // Cold: one GET (one rate-limit unit), not ten.
    burst("");
    assert_eq!(hub.count(Route::ManifestGet), 1);
    // Upstream down: every client gets the stale copy, and upstream is asked
    // once (plus the client's one retry), not once per waiting client.
    hub.set_fault(Fault::Outage);
    hub.reset_counts();
    burst("stale");
    assert!(
        hub.count(Route::ManifestHead) <= 2,
        "HEADs: {}",
        hub.count(Route::ManifestHead)
    );
}

#[test]
fn non_loopback_listen_addresses_are_refused() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    for addr in ["0.0.0.0:0", "[::]:0"] {
        let out = dpx.run(&["serve", "--listen", addr]);
        assert_eq!(out.status.code(), Some(2), "{addr}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("loopback only"),
            "{addr}"
        );
    }
}

#[test]
fn the_log_line_counts_the_bytes_sent_and_marks_a_client_that_left_early() {
    use std::io::{Read, Write};

    let hub = FakeHub::start();
    let blob = hub.add_blob(crate::support::hub::noise(77, 16 << 20));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = format!("/v2/library/logged/blobs/{blob}");

    let whole = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(whole.status, 200);
    assert!(
        serve.log_shows(&format!("GET {path} 200 {}B miss", 16 << 20)),
        "the line counts every byte sent:\n{}",
        serve.log_text()
    );

    // A client that reads 64 KiB of a cached 16 MiB blob and hangs up
    // (cached: the blob moves into the store just after the first client's
    // last byte).
    dpx.wait_stored_blob(&blob);
    let mut s = std::net::TcpStream::connect(&serve.addr).expect("connect");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut buf = vec![0u8; 64 << 10];
    s.read_exact(&mut buf).expect("read the start of the body");
    drop(s);
    assert!(
        serve.log_shows(&format!("of {} bytes", 16 << 20)) && serve.log_shows("hit"),
        "an early hang-up is logged as incomplete:\n{}",
        serve.log_text()
    );
    assert!(serve.log_shows("incomplete: client left after"));

    // The server is unaffected and the cached blob is whole.
    let again = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(format!("sha256:{}", sha256_hex(&again.body)), blob);
}

#[test]
fn an_expired_token_is_renewed_once_on_a_401() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/renew", "v1", &[1000], 31);
    // No prefetch: the blob GET below is the request that meets the 401.
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = false\n",
    );
    let serve = dpx.serve();
    let first = request(
        &serve.addr,
        "GET",
        &manifest_path("library/renew", "v1"),
        &[],
    );
    assert_eq!(first.status, 200);
    let manifest: serde_json::Value = serde_json::from_slice(&first.body).expect("manifest json");
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest");

    hub.revoke_tokens();
    hub.reset_counts();
    let blob = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/renew/blobs/{layer}"),
        &[],
    );
    assert_eq!(blob.status, 200, "{}", blob.body_text());
    assert_eq!(format!("sha256:{}", sha256_hex(&blob.body)), layer);
    assert_eq!(
        (hub.count(Route::Unauthorized), hub.count(Route::Token)),
        (1, 1),
        "one 401, one fresh token, then the request went through (manifest {digest})"
    );
}

#[test]
fn a_second_serve_on_the_same_port_names_the_running_one_once_and_fails() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let first = dpx.serve();
    let out = dpx
        .command()
        .args(["serve", "--listen", &first.addr])
        .output()
        .expect("second dpx serve");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let said = format!(
        "dpx serve (pid {}) already serves this cache on {}",
        first.child.id(),
        first.addr
    );
    assert_eq!(err.matches(&said).count(), 1, "{err}");
    assert!(
        !err.contains("is this cache's daemon") && !err.contains("os error"),
        "one message, no OS error text: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
