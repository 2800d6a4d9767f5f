//! Upstream replies that must not poison the cache or panic dpx: a captive
//! portal's HTML page instead of a manifest, a Content-Type of 100 KB, a
//! `Retry-After` in the year 9999; and what a HEAD of an uncached tag costs.

use std::path::Path;

use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::{request, request_exact};
use crate::support::hub::{FakeHub, Fault, Route};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Every regular file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.map_while(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

/// Nothing of a manifest was stored: no blob, no media type, no tag record.
fn assert_nothing_stored(dpx: &Dpx, when: &str) {
    for dir in ["blobs", "manifests"] {
        let files = files_under(&dpx.cache.join(dir));
        assert!(files.is_empty(), "{when}: {dir}/ holds {files:?}");
    }
    let tags: Vec<String> = files_under(&dpx.cache.join("index"))
        .into_iter()
        .filter(|f| f.contains("/tags/"))
        .collect();
    assert!(tags.is_empty(), "{when}: tag records {tags:?}");
    let ls = dpx.json(&["cache", "ls"]);
    assert_eq!(ls, serde_json::json!([]), "{when}: cache ls");
}

#[test]
fn a_captive_portal_page_is_never_served_or_cached_as_a_manifest() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/portal", "v1", &[100], 71);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    hub.set_captive_portal(true);
    let path = "/v2/library/portal/manifests/v1";
    let r = request(&serve.addr, "GET", path, &[]);
    assert!(
        r.status == 404 || r.status == 502,
        "the HTML page is an error, not a manifest: {} {:?} {}",
        r.status,
        r.header("content-type"),
        r.body_text()
    );
    assert!(
        r.body_text().contains("text/html"),
        "the error says what came: {}",
        r.body_text()
    );
    assert_nothing_stored(&dpx, "after the portal's page");

    // The network is back: the real manifest, fetched and verified.
    hub.set_captive_portal(false);
    for cache in ["miss", "hit"] {
        let r = request(&serve.addr, "GET", path, &[]);
        assert_eq!(r.status, 200, "{}", r.body_text());
        assert_eq!(r.header("x-dpx-cache"), Some(cache));
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), digest);
    }
}

#[test]
fn a_pull_through_a_captive_portal_or_with_a_100_kb_content_type_writes_nothing() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/portal", "v1", &[100], 72);
    let dpx = Dpx::new(&hub.url());
    hub.set_captive_portal(true);
    let out = dpx.run(&["pull", "portal:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("text/html"), "{err}");
    assert_nothing_stored(&dpx, "pull through a portal");

    // A Content-Type of 100 KB is no manifest type either, and is not echoed whole.
    hub.set_captive_portal(false);
    let huge = format!("application/x-{}", "a".repeat(100_000));
    hub.set_manifest_content_type(Some(&huge));
    let out = dpx.run(&["pull", "portal:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &err[..err.len().min(2000)]
    );
    assert!(err.len() < 4000, "{} bytes of error", err.len());
    assert_nothing_stored(&dpx, "pull with a 100 KB Content-Type");

    let serve = dpx.serve();
    let r = request(&serve.addr, "GET", "/v2/library/portal/manifests/v1", &[]);
    assert_ne!(r.status, 200);
    assert!(r.body.len() < 4000, "{} bytes of error", r.body.len());
    assert!(
        r.headers.iter().all(|(_, v)| v.len() < 1000),
        "{:?}",
        r.headers
    );
    assert_nothing_stored(&dpx, "serve with a 100 KB Content-Type");

    // A known type with 100 KB of parameters is the known type, stored bare.
    hub.set_manifest_content_type(Some(&format!("{OCI_MANIFEST}; x={}", "a".repeat(100_000))));
    let r = request(&serve.addr, "GET", "/v2/library/portal/manifests/v1", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
}

#[test]
fn cache_verify_removes_manifests_that_do_not_parse() {
    let hub = FakeHub::start();
    hub.add_image("library/good", "v1", &[100], 73);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "good:v1"]);
    let stored = dpx.assert_store_consistent();

    // Planted as an older dpx could have stored them: an HTML page with its
    // type, a body that is not the manifest its type claims, and a tag on the first.
    let plant = |body: &[u8], media_type: &str| {
        let hex = sha256_hex(body);
        let blob = dpx.cache.join("blobs/sha256").join(&hex[..2]).join(&hex);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(&blob, body).unwrap();
        let sidecar = dpx.cache.join(format!("manifests/sha256/{hex}.json"));
        std::fs::write(&sidecar, media_type).unwrap();
        (hex, blob, sidecar)
    };
    let (html, html_blob, html_sidecar) = plant(b"<html>Sign in</html>", "text/html");
    let (_, bad_blob, bad_sidecar) = plant(br#"{"schemaVersion":2}"#, OCI_MANIFEST);
    let tags = dpx.cache.join("index/docker.io/library/portal/tags");
    std::fs::create_dir_all(&tags).unwrap();
    let record = serde_json::json!({
        "digest": format!("sha256:{html}"), "fetched_at": 1, "checked_at": 1
    });
    std::fs::write(tags.join("v1.json"), record.to_string()).unwrap();

    let report = dpx.json(&["cache", "verify"]);
    assert_eq!(report["ok"], false, "{report}");
    let problems = report["problems"].as_array().expect("problems");
    let manifests = problems.iter().filter(|p| p["kind"] == "manifest").count();
    assert_eq!(manifests, 2, "{report}");
    assert!(problems.iter().any(|p| p["kind"] == "tag"), "{report}");
    assert!(problems.iter().all(|p| p["removed"] == true), "{report}");
    for gone in [&html_blob, &html_sidecar, &bad_blob, &bad_sidecar] {
        assert!(!gone.exists(), "{} is still there", gone.display());
    }
    assert!(dpx.run(&["cache", "verify"]).status.success(), "clean now");
    assert_eq!(dpx.assert_store_consistent(), stored);
    let ls = dpx.json(&["cache", "ls"]);
    assert_eq!(ls.as_array().map(Vec::len), Some(1), "{ls}");
}

#[test]
fn a_429_that_says_retry_in_the_year_9999_panics_nothing() {
    let hub = FakeHub::start();
    hub.add_image("library/far", "v1", &[10], 74);
    hub.set_retry_after(Some("Fri, 31 Dec 9999 23:59:59 GMT"));
    hub.set_fault(Fault::TooManyRequests);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["pull", "far:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    // Stopped by the quota: exit 3, the quota's code.
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("429"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The hold is recorded: the next pull does not ask, and says when dpx
    // looks again: within one rate-limit window, not in the year 9999.
    let out = dpx.run(&["pull", "far:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("looks again at"), "{err}");
    assert!(
        !err.contains("9999"),
        "a far-future date holds for ever: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let fresh = Dpx::new(&hub.url());
    let serve = fresh.serve();
    // The first answer passes the upstream's 429 on; the second is dpx's
    // own hold, which says when it looks again: within one window.
    for held in [false, true] {
        let r = request(&serve.addr, "GET", "/v2/library/far/manifests/v1", &[]);
        assert_eq!(r.status, 429, "{}", r.body_text());
        assert_eq!(r.error_code().as_deref(), Some("TOOMANYREQUESTS"));
        if held {
            let wait: u64 = r
                .header("retry-after")
                .and_then(|v| v.parse().ok())
                .expect("a Retry-After in seconds");
            assert!(wait <= 21_601, "held for at most one window: {wait}s");
        }
    }
    assert_eq!(hub.count(Route::ManifestGet), 2, "one GET per process");
    let ping = request(&serve.addr, "GET", "/v2/", &[]);
    assert_eq!(ping.status, 200, "serve is still up");
    assert!(
        !serve.log_text().contains("panicked"),
        "{}",
        serve.log_text()
    );
}

#[test]
fn a_head_of_an_uncached_tag_costs_an_upstream_head_not_a_pull() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/headonly", "v1", &[100], 75);
    let len = hub.manifest_len(&digest);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    hub.reset_counts();
    let path = "/v2/library/headonly/manifests/v1";
    for _ in 0..2 {
        let r = request(&serve.addr, "HEAD", path, &[]);
        assert_eq!(r.status, 200);
        assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("content-length"), Some(len.to_string().as_str()));
        assert!(r.body.is_empty());
    }
    assert_eq!(hub.count(Route::ManifestGet), 0, "no pull spent on a HEAD");
    assert_eq!(
        hub.count(Route::ManifestHead),
        1,
        "the second HEAD within the tag TTL asks nobody"
    );
    // A client that takes no OCI manifest is told so, still without a pull.
    let docker_only = [(
        "Accept",
        "application/vnd.docker.distribution.manifest.v2+json",
    )];
    let r = request_exact(&serve.addr, "HEAD", path, &docker_only);
    assert_eq!(r.status, 404);
    assert_eq!(hub.count(Route::ManifestGet), 0);
    assert_nothing_stored(&dpx, "after HEADs");

    // The GET fetches (once) and verifies; then everything is a hit.
    let r = request(&serve.addr, "GET", path, &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), digest);
    assert_eq!(r.body.len(), len);
    let r = request(&serve.addr, "HEAD", path, &[]);
    assert_eq!(r.header("x-dpx-cache"), Some("hit"));
    assert_eq!(hub.count(Route::ManifestGet), 1);

    // What an engine does: HEAD the tag, GET its digest. One pull, and the
    // tag is cached as a GET of it would leave it.
    let other = hub.add_image("library/headonly", "v2", &[100], 76);
    hub.reset_counts();
    let tag = "/v2/library/headonly/manifests/v2";
    let r = request(&serve.addr, "HEAD", tag, &[]);
    assert_eq!(r.header("docker-content-digest"), Some(other.as_str()));
    let by_digest = format!("/v2/library/headonly/manifests/{other}");
    let r = request(&serve.addr, "GET", &by_digest, &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    for method in ["HEAD", "GET"] {
        let r = request(&serve.addr, method, tag, &[]);
        assert_eq!(r.header("x-dpx-cache"), Some("hit"), "{method}");
    }
    assert_eq!(
        (
            hub.count(Route::ManifestGet),
            hub.count(Route::ManifestHead)
        ),
        (1, 1)
    );
    // The tag record is written behind the answer.
    wait_for(
        "both tags in the cache",
        std::time::Duration::from_secs(10),
        || dpx.json(&["cache", "ls"]).as_array().map(Vec::len) == Some(2),
    );
}
