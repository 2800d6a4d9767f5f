//! `GET /metrics` on `dpx serve`: the exposition passes Prometheus's own
//! parser (`promtool check metrics`), its counts move by exactly what a
//! pull through the fake hub did, and it is open on loopback and behind
//! client auth from elsewhere.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve_auth::{curl_in_netns, password};
use crate::support::dpx::{Dpx, Serve};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, HeaderStyle, Route};
use crate::support::output_with_input;

/// The samples of one scrape, by `name{labels}` as written.
struct Scrape(HashMap<String, f64>);

impl Scrape {
    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// The one sample whose key starts with `prefix`.
    fn only(&self, prefix: &str) -> f64 {
        let found: Vec<_> = self
            .0
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .collect();
        assert_eq!(found.len(), 1, "one sample {prefix}...: {found:?}");
        *found[0].1
    }
}

/// Scrapes `serve`, checks the text with promtool, and reads its samples.
fn scrape(serve: &Serve) -> Scrape {
    let resp = request(&serve.addr, "GET", "/metrics", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = resp.body_text();
    let out = output_with_input(
        Command::new("promtool").args(["check", "metrics"]),
        text.as_bytes(),
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (key, value) = l.rsplit_once(' ').expect("sample line");
            (key.to_string(), value.parse().expect("sample value"))
        })
        .collect();
    Scrape(samples)
}

/// The hub's request counters, to compare with dpx's own.
fn hub_counts(hub: &FakeHub) -> [f64; 5] {
    [
        Route::ManifestGet,
        Route::ManifestHead,
        Route::BlobGet,
        Route::Token,
        Route::Unauthorized,
    ]
    .map(|r| hub.count(r) as f64)
}

fn upstream(kind: &str, answer: &str) -> String {
    format!("dpx_upstream_requests_total{{kind=\"{kind}\",answer=\"{answer}\"}}")
}

fn requests(route: &str, cache: &str) -> String {
    format!("dpx_requests_total{{route=\"{route}\",status=\"2xx\",cache=\"{cache}\"}}")
}

/// What dpx counted upstream between two scrapes, in `hub_counts` order.
fn upstream_delta(before: &Scrape, after: &Scrape) -> [f64; 5] {
    let d = |k: &str| after.get(k) - before.get(k);
    [
        d(&upstream("manifest_get", "2xx")),
        d(&upstream("manifest_head", "2xx")),
        d(&upstream("blob_get", "2xx")),
        d(&upstream("token", "2xx")),
        [
            "manifest_get",
            "manifest_head",
            "blob_get",
            "blob_head",
            "other",
        ]
        .iter()
        .map(|k| d(&upstream(k, "401")))
        .sum(),
    ]
}

/// Pulls an image as an engine does: the manifest by tag, then every blob.
/// Returns the manifest's answer and the blob bytes received.
fn pull(serve: &Serve, repo: &str, tag: &str) -> (RawResponse, u64) {
    let m = request(
        &serve.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[],
    );
    assert_eq!(m.status, 200, "{}", m.body_text());
    let v: serde_json::Value = serde_json::from_slice(&m.body).expect("manifest JSON");
    let mut blobs = vec![v["config"]["digest"].as_str().expect("config").to_string()];
    for l in v["layers"].as_array().expect("layers") {
        blobs.push(l["digest"].as_str().expect("layer").to_string());
    }
    let mut bytes = 0;
    for d in blobs {
        let b = request(&serve.addr, "GET", &format!("/v2/{repo}/blobs/{d}"), &[]);
        assert_eq!(b.status, 200, "{d}: {}", b.body_text());
        bytes += b.body.len() as u64;
    }
    (m, bytes)
}

#[test]
fn counts_move_by_what_a_cold_and_a_warm_pull_did_upstream() {
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 100, 21600, HeaderStyle::Standard);
    let layers = [3000, 5000];
    hub.add_image("library/metricsapp", "v1", &layers, 601);
    // No prefetch: each blob's cache outcome is then the client's own miss
    // (with it, a blob the prefetch finished first is a hit).
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = false\n",
    );
    let serve = dpx.serve();

    let before = scrape(&serve);
    let hub_before = hub_counts(&hub);
    let (manifest, blob_bytes) = pull(&serve, "metricsapp", "v1");
    assert_eq!(manifest.header("x-dpx-cache"), Some("miss"));
    // A client has its last byte once the digest is verified; the move into
    // the store (and the manifest's write) follow it: wait for all four.
    crate::support::dpx::wait_for(
        "the pulled blobs in the store",
        Duration::from_secs(20),
        || scrape(&serve).get("dpx_cache_blobs") == 4.0,
    );
    let cold = scrape(&serve);
    let hub_cold = hub_counts(&hub);
    let hub_delta: Vec<f64> = hub_cold
        .iter()
        .zip(hub_before)
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(
        upstream_delta(&before, &cold).to_vec(),
        hub_delta,
        "dpx's upstream counts against the hub's (manifest GET, HEAD, blob GET, token, 401)"
    );
    assert_eq!(
        hub_delta[0], 1.0,
        "a cold pull is one manifest GET upstream"
    );
    assert_eq!(hub_delta[2], 3.0, "config and two layers");
    let manifest_len = manifest.body.len() as f64;
    let config_len = blob_bytes as f64 - layers.iter().sum::<usize>() as f64;
    assert!(config_len > 0.0);
    let received = |s: &Scrape, kind: &str| {
        s.get(&format!(
            "dpx_upstream_received_bytes_total{{kind=\"{kind}\"}}"
        ))
    };
    assert_eq!(
        received(&cold, "blob") - received(&before, "blob"),
        blob_bytes as f64
    );
    assert_eq!(
        received(&cold, "manifest") - received(&before, "manifest"),
        manifest_len
    );
    assert_eq!(cold.get(&requests("manifest", "miss")), 1.0);
    assert_eq!(cold.get(&requests("blob", "miss")), 3.0);
    assert_eq!(
        cold.get("dpx_response_bytes_total{route=\"blob\",cache=\"miss\"}"),
        blob_bytes as f64
    );
    assert_eq!(cold.get("dpx_served_from_cache_bytes_total"), 0.0);
    assert_eq!(
        cold.get("dpx_request_duration_seconds_count{route=\"blob\"}"),
        3.0
    );
    // The store: config, two layers and the manifest.
    assert_eq!(cold.get("dpx_cache_blobs"), 4.0);
    assert_eq!(
        cold.get("dpx_cache_bytes"),
        blob_bytes as f64 + manifest_len
    );
    // The quota the hub announced, less the one pull.
    assert_eq!(cold.only("dpx_quota_limit{registry=\"docker.io\""), 100.0);
    assert_eq!(
        cold.only("dpx_quota_remaining{registry=\"docker.io\""),
        99.0
    );
    assert_eq!(cold.only("dpx_quota_hold{registry=\"docker.io\""), 0.0);
    assert_eq!(cold.get("dpx_downloads_in_flight"), 0.0);
    assert!(cold.get("process_resident_memory_bytes") > 0.0);
    assert!(cold.get("process_open_fds") > 0.0);

    let (manifest, warm_bytes) = pull(&serve, "metricsapp", "v1");
    assert_eq!(manifest.header("x-dpx-cache"), Some("hit"));
    let warm = scrape(&serve);
    let hub_delta: Vec<f64> = hub_counts(&hub)
        .iter()
        .zip(hub_cold)
        .map(|(a, b)| a - b)
        .collect();
    assert_eq!(hub_delta, vec![0.0; 5], "a warm pull asks the hub nothing");
    assert_eq!(upstream_delta(&cold, &warm).to_vec(), hub_delta);
    assert_eq!(warm.get(&requests("manifest", "hit")), 1.0);
    assert_eq!(warm.get(&requests("blob", "hit")), 3.0);
    assert_eq!(
        warm.get("dpx_served_from_cache_bytes_total"),
        warm_bytes as f64 + manifest_len
    );
    assert_eq!(received(&warm, "blob"), received(&cold, "blob"));
    // Scrapes are not requests: none of the three shows in the counts.
    assert_eq!(
        warm.0
            .iter()
            .filter(|(k, _)| k.starts_with("dpx_requests_total{"))
            .map(|(_, v)| v)
            .sum::<f64>(),
        8.0
    );
}

#[test]
fn metrics_are_open_on_loopback_and_behind_client_auth_elsewhere() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve.auth]\nenabled = true\n",
    );
    let pw = password(&dpx);
    // dpx in a network namespace of its own on all its addresses: clients
    // there connect from 127.0.0.1 or from 192.0.2.1 (TEST-NET-1, put on
    // that namespace's loopback), an address off loopback.
    let serve = dpx.serve_wrapped(
        &[
            "unshare",
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && ip addr add 192.0.2.1/32 dev lo && exec \"$@\"",
            "sh",
        ],
        "0.0.0.0:0",
        &[],
        &[],
    );
    let pid = serve.child.id();
    let port = serve.addr.rsplit_once(':').expect("port").1;
    let on_loopback = format!("http://127.0.0.1:{port}");
    let elsewhere = format!("http://192.0.2.1:{port}");

    let (status, body) = curl_in_netns(pid, &format!("{on_loopback}/metrics"), "");
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("# TYPE dpx_upstream_requests_total counter"),
        "{body}"
    );
    // The registry routes want a token even there.
    let (status, _) = curl_in_netns(pid, &format!("{on_loopback}/v2/"), "");
    assert_eq!(status, 401);

    let (status, body) = curl_in_netns(pid, &format!("{elsewhere}/metrics"), "");
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("UNAUTHORIZED") && !body.contains("dpx_"),
        "{body}"
    );
    // The status page and its figures follow the same rule.
    for page in ["/", "/_dpx/page.json"] {
        let (status, body) = curl_in_netns(pid, &format!("{elsewhere}{page}"), "");
        assert_eq!(status, 401, "{page}: {body}");
        assert!(!body.contains("pulls"), "{page}: {body}");
    }
    // A valid token, from loopback: over plain HTTP from elsewhere it is
    // refused, as on the registry routes.
    let (status, body) = curl_in_netns(
        pid,
        &format!("{on_loopback}/token?service=dpx&scope=repository:x:pull"),
        &format!("user = \"dpx:{pw}\"\n"),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
    let token = v["token"].as_str().expect("token");
    for path in ["/metrics", "/v2/"] {
        let (status, body) = curl_in_netns(
            pid,
            &format!("{elsewhere}{path}"),
            &format!("header = \"Authorization: Bearer {token}\"\n"),
        );
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("DENIED"), "{path}: {body}");
    }
}

#[test]
fn scrapes_do_not_keep_an_idle_server_up() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let mut serve = dpx.serve_flags("127.0.0.1:0", &["--idle-timeout", "2s"], &[]);
    // A scrape every 200 ms, ten times within the idle timeout: the server
    // still stops, as it does under `GET /_dpx/status` polls.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut scrapes = 0;
    let status = loop {
        if let Some(status) = serve.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "dpx serve was still up after {scrapes} scrapes in 60s, with a 2s idle timeout"
        );
        if let Ok(mut s) = TcpStream::connect(&serve.addr) {
            let _ = s.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
            );
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            if answer.starts_with(b"HTTP/1.1 200") {
                scrapes += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(scrapes >= 5, "only {scrapes} scrapes answered");
    assert!(status.success(), "a clean stop: {status}");
}
