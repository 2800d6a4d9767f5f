//! The cold path of `dpx serve` (issue 18): a cold pull costs the upstream no
//! more requests than a direct pull, a manifest is answered before it is on
//! disk and still lands there, and the blob prefetch that starts when an
//! image manifest is answered fetches nothing twice, never for an index, can
//! be turned off, and stops when no client comes.

use std::time::Duration;

use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::{RawResponse, request};
use crate::support::hub::{FakeHub, Route};

fn counts(hub: &FakeHub) -> Vec<(Route, usize)> {
    Route::ALL.iter().map(|r| (*r, hub.count(*r))).collect()
}

/// `http://host:port/path?query` -> (`host:port`, `/path?query`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// A GET that follows redirects (the hub sends blobs to its CDN).
fn get_following(addr: &str, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    let mut resp = request(addr, "GET", path, headers);
    let mut hops = 0;
    while (300..400).contains(&resp.status) && hops < 5 {
        let location = resp.header("location").expect("a Location").to_string();
        let (a, p) = split_url(&location);
        resp = request(&a, "GET", &p, &[]);
        hops += 1;
    }
    resp
}

/// A lean client's cold pull, as bench/run's: the ping, a token if asked,
/// the manifest, then its blobs `parallel` at a time. Checks every digest.
/// Returns the manifest's digest.
fn lean_pull(addr: &str, repo: &str, tag: &str, parallel: usize) -> String {
    let ping = request(addr, "GET", "/v2/", &[]);
    let mut auth = None;
    if ping.status == 401 {
        let challenge = ping.header("www-authenticate").expect("a challenge");
        let realm = challenge
            .split("realm=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a realm");
        let (a, p) = split_url(realm);
        let token = request(
            &a,
            "GET",
            &format!("{p}?service=fakehub&scope=repository:{repo}:pull"),
            &[],
        );
        assert_eq!(token.status, 200, "{}", token.body_text());
        let doc: serde_json::Value = serde_json::from_slice(&token.body).expect("token JSON");
        let t = doc["token"]
            .as_str()
            .or(doc["access_token"].as_str())
            .expect("a token");
        auth = Some(format!("Bearer {t}"));
    } else {
        assert_eq!(ping.status, 200);
    }
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default();
    let m = request(
        addr,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &headers,
    );
    assert_eq!(m.status, 200, "{}", m.body_text());
    let doc: serde_json::Value = serde_json::from_slice(&m.body).expect("manifest JSON");
    let mut digests = vec![
        doc["config"]["digest"]
            .as_str()
            .expect("config")
            .to_string(),
    ];
    for l in doc["layers"].as_array().expect("layers") {
        digests.push(l["digest"].as_str().expect("layer").to_string());
    }
    for batch in digests.chunks(parallel) {
        std::thread::scope(|s| {
            for d in batch {
                let headers = &headers;
                s.spawn(move || {
                    let b = get_following(addr, &format!("/v2/{repo}/blobs/{d}"), headers);
                    assert_eq!(b.status, 200, "{d}: {}", b.body_text());
                    assert_eq!(format!("sha256:{}", sha256_hex(&b.body)), *d);
                });
            }
        });
    }
    format!("sha256:{}", sha256_hex(&m.body))
}

fn manifest_file(dpx: &Dpx, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex)
}

/// Waits until the hub has seen a GET of every blob `digests` names.
fn wait_for_blob_gets(hub: &FakeHub, digests: &[String], what: &str) {
    wait_for(what, Duration::from_secs(20), || {
        digests
            .iter()
            .all(|d| hub.count_path(Route::BlobGet, d) >= 1)
    });
}

#[test]
fn a_cold_pull_costs_the_upstream_no_more_than_a_direct_pull_and_each_blob_once() {
    let hub = FakeHub::start();
    hub.add_image(
        "library/cold",
        "v1",
        &[200_000, 150_000, 100_000, 50_000],
        181,
    );
    // A direct client, for the reference counts.
    lean_pull(&hub.url().replace("http://", ""), "library/cold", "v1", 3);
    let direct = counts(&hub);
    hub.reset_counts();

    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let digest = lean_pull(&serve.addr, "library/cold", "v1", 3);
    let through = counts(&hub);
    let total = |c: &[(Route, usize)]| c.iter().map(|(_, n)| n).sum::<usize>();
    // dpx's first request, answered 401, stands for the direct client's ping.
    let probe = |c: &[(Route, usize)]| {
        c.iter()
            .filter(|(r, _)| matches!(r, Route::Ping | Route::Unauthorized))
            .map(|(_, n)| n)
            .sum::<usize>()
    };
    let said = format!("through dpx: {through:?}\ndirect: {direct:?}");
    assert!(total(&through) <= total(&direct), "{said}");
    assert!(probe(&through) <= probe(&direct), "{said}");
    for ((route, d), (_, t)) in direct.iter().zip(&through) {
        if !matches!(route, Route::Ping | Route::Unauthorized) {
            assert!(t <= d, "{route:?}: {t} through dpx, {d} direct\n{said}");
        }
    }
    assert_eq!(hub.count(Route::ManifestGet), 1, "{through:?}");
    let mut blobs = hub.layers(&digest);
    blobs.extend(config_of(&serve.addr, "library/cold", &digest));
    for b in &blobs {
        assert_eq!(hub.count_path(Route::BlobGet, b), 1, "{b} fetched once");
    }
}

/// The config digest of a manifest, asked of dpx (cached by now).
fn config_of(addr: &str, repo: &str, digest: &str) -> Option<String> {
    let m = request(addr, "GET", &format!("/v2/{repo}/manifests/{digest}"), &[]);
    let doc: serde_json::Value = serde_json::from_slice(&m.body).ok()?;
    doc["config"]["digest"].as_str().map(str::to_string)
}

#[test]
fn a_manifest_answered_before_it_is_written_is_in_the_cache_afterwards_even_after_a_stop() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/behind", "v1", &[1000], 182);
    let dpx = Dpx::new(&hub.url());
    let mut serve = dpx.serve();
    let first = request(&serve.addr, "GET", "/v2/library/behind/manifests/v1", &[]);
    assert_eq!(first.status, 200, "{}", first.body_text());
    assert_eq!(format!("sha256:{}", sha256_hex(&first.body)), digest);
    // Stopped at once: a write begun behind the answer still finishes.
    assert!(serve.stop().success());
    wait_for("the manifest on disk", Duration::from_secs(10), || {
        manifest_file(&dpx, &digest).is_file()
    });
    hub.reset_counts();
    let serve = dpx.serve();
    let again = request(&serve.addr, "GET", "/v2/library/behind/manifests/v1", &[]);
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("x-dpx-cache"), Some("hit"));
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
        0,
        "the tag record was written too"
    );
}

#[test]
fn concurrent_gets_of_a_cold_tag_are_answered_from_one_upstream_get() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/burst", "v1", &[1000], 183);
    hub.set_manifest_delay(Duration::from_millis(300));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let r = request(&serve.addr, "GET", "/v2/library/burst/manifests/v1", &[]);
                assert_eq!(r.status, 200, "{}", r.body_text());
                assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), digest);
            });
        }
    });
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn a_manifest_the_cache_cannot_take_is_still_answered_with_its_verified_bytes() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/nowrite", "v1", &[1000], 184);
    let dpx = Dpx::new(&hub.url());
    let _m = crate::pull::mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &dpx.cache);
    let serve = dpx.serve();
    fill(&dpx.cache);
    let r = request(&serve.addr, "GET", "/v2/library/nowrite/manifests/v1", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), digest);
    assert!(
        serve.log_shows(&format!("manifest {digest} not cached")),
        "{}",
        serve.log_text()
    );
    assert!(!manifest_file(&dpx, &digest).exists());
}

/// Fills the filesystem holding `dir`.
/// A dpx whose serve prefetches (`[serve] prefetch_blobs`, off by default).
fn prefetching(hub: &FakeHub) -> Dpx {
    Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = true\n",
    )
}

fn fill(dir: &std::path::Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(dir.join("filler")).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn answering_an_image_manifest_prefetches_its_blobs_which_clients_then_get_from_the_cache() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/pre", "v1", &[30_000, 20_000, 10_000], 185);
    let dpx = prefetching(&hub);
    let serve = dpx.serve();
    let m = request(&serve.addr, "GET", "/v2/library/pre/manifests/v1", &[]);
    assert_eq!(m.status, 200);
    let mut blobs = hub.layers(&digest);
    blobs.extend(config_of(&serve.addr, "library/pre", &digest));
    wait_for_blob_gets(&hub, &blobs, "the prefetch of every blob");
    wait_for("the blobs in the cache", Duration::from_secs(10), || {
        blobs.iter().all(|b| dpx.has_blob(b))
    });
    for b in &blobs {
        let r = request(
            &serve.addr,
            "GET",
            &format!("/v2/library/pre/blobs/{b}"),
            &[],
        );
        assert_eq!(r.status, 200);
        assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), *b);
        assert_eq!(r.header("x-dpx-cache"), Some("hit"));
        assert_eq!(hub.count_path(Route::BlobGet, b), 1, "{b} fetched once");
    }
}

#[test]
fn clients_joining_a_prefetch_get_their_bytes_and_each_blob_is_fetched_once() {
    let hub = FakeHub::start();
    let sizes = [400_000, 300_000, 300_000, 200_000, 200_000, 100_000];
    let digest = hub.add_image("library/join", "v1", &sizes, 186);
    // Slow bodies: the prefetch is still running when the clients ask.
    hub.set_body_pause(Duration::from_millis(30));
    let dpx = prefetching(&hub);
    let serve = dpx.serve();
    let m = request(&serve.addr, "GET", "/v2/library/join/manifests/v1", &[]);
    assert_eq!(m.status, 200);
    let layers = hub.layers(&digest);
    // The prefetch starts from the last layer, which no client has asked for.
    let last = layers.last().expect("layers").clone();
    wait_for_blob_gets(&hub, std::slice::from_ref(&last), "the prefetch");
    let mut blobs = layers.clone();
    blobs.extend(config_of(&serve.addr, "library/join", &digest));
    std::thread::scope(|s| {
        for b in &blobs {
            let addr = &serve.addr;
            s.spawn(move || {
                let r = request(addr, "GET", &format!("/v2/library/join/blobs/{b}"), &[]);
                assert_eq!(r.status, 200, "{b}: {}", r.body_text());
                assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), *b);
            });
        }
    });
    for b in &blobs {
        assert_eq!(hub.count_path(Route::BlobGet, b), 1, "{b} fetched once");
    }
}

#[test]
fn an_index_starts_no_prefetch_and_the_setting_turns_prefetch_off() {
    let hub = FakeHub::start();
    let child = hub.add_image("library/multi", "child", &[10_000, 10_000], 187);
    let child_len = hub.manifest_len(&child);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": child,
            "size": child_len,
            "platform": {"architecture": "amd64", "os": "linux"}
        }]
    });
    hub.add_manifest(
        "library/multi",
        Some("v1"),
        "application/vnd.oci.image.index.v1+json",
        serde_json::to_vec(&index).expect("index JSON"),
    );
    let sentinel = hub.add_image("library/sentinel", "v1", &[10_000], 188);

    let dpx = prefetching(&hub);
    let serve = dpx.serve();
    let r = request(&serve.addr, "GET", "/v2/library/multi/manifests/v1", &[]);
    assert_eq!(r.status, 200);
    // A prefetch started after the index's answer has fetched its first
    // blob: one the index started would have begun before it.
    let r = request(&serve.addr, "GET", "/v2/library/sentinel/manifests/v1", &[]);
    assert_eq!(r.status, 200);
    wait_for_blob_gets(&hub, &hub.layers(&sentinel), "the sentinel's prefetch");
    for b in hub.layers(&child) {
        assert_eq!(
            hub.count_path(Route::BlobGet, &b),
            0,
            "{b} of the index's image"
        );
    }
    drop(serve);

    // Off: an image manifest starts nothing.
    let hub = FakeHub::start();
    let digest = hub.add_image("library/off", "v1", &[10_000], 189);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = false\n",
    );
    let serve = dpx.serve();
    let r = request(&serve.addr, "GET", "/v2/library/off/manifests/v1", &[]);
    assert_eq!(r.status, 200);
    // Longer than a prefetch takes to start (see above: milliseconds).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(hub.count(Route::BlobGet), 0);
    let config = config_of(&serve.addr, "library/off", &digest).expect("config");
    let r = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/off/blobs/{config}"),
        &[],
    );
    assert_eq!(r.status, 200, "a client's GET still fetches");
    assert_eq!(hub.count(Route::BlobGet), 1);
}

#[test]
fn a_prefetch_no_client_comes_for_is_abandoned_and_leaves_no_partial_file() {
    let hub = FakeHub::start();
    // 4 MB at 64 KiB per 200 ms: about 13 s a layer, far beyond the 3 s grace.
    let digest = hub.add_image("library/gone", "v1", &[4_000_000], 190);
    hub.set_body_pause(Duration::from_millis(200));
    let dpx = prefetching(&hub);
    let serve = dpx.serve();
    let m = request(&serve.addr, "GET", "/v2/library/gone/manifests/v1", &[]);
    assert_eq!(m.status, 200);
    let layer = hub.layers(&digest).pop().expect("a layer");
    wait_for_blob_gets(&hub, std::slice::from_ref(&layer), "the prefetch");
    wait_for("a partial download", Duration::from_secs(10), || {
        !dpx.tmp_is_empty()
    });
    assert!(
        serve.log_shows("no client wants it; 1 download(s) abandoned"),
        "{}",
        serve.log_text()
    );
    wait_for("the partial file removed", Duration::from_secs(10), || {
        dpx.tmp_is_empty()
    });
    assert!(!dpx.has_blob(&layer));
    assert_eq!(hub.count_path(Route::BlobGet, &layer), 1, "not retried");
    // A client asking later gets the blob, fetched anew.
    hub.set_body_pause(Duration::from_millis(0));
    let r = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/gone/blobs/{layer}"),
        &[],
    );
    assert_eq!(r.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), layer);
}
