//! The cache's boundary: layout version, cache-wide lock, per-repository
//! membership, start-up sweep.

use std::time::Duration;

use crate::support::dpx::{Dpx, wait_for};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};

#[test]
fn a_cache_of_a_newer_layout_is_refused_with_exit_1_and_left_alone() {
    let hub = FakeHub::start();
    hub.add_image("library/layout", "v1", &[10], 81);
    let dpx = Dpx::new(&hub.url());
    std::fs::create_dir_all(&dpx.cache).unwrap();
    std::fs::write(dpx.cache.join("VERSION"), "7\n").unwrap();
    let out = dpx.run(&["pull", "layout:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("layout version \"7\""), "{err}");
    assert!(err.contains("reads version 1"), "{err}");
    assert!(err.contains("--cache-dir"), "{err}");
    assert_eq!(hub.count(Route::ManifestGet), 0);
    assert!(!dpx.cache.join("blobs").exists());
    assert!(!dpx.cache.join("locks").exists());
    assert_eq!(
        std::fs::read_to_string(dpx.cache.join("VERSION")).unwrap(),
        "7\n"
    );
    // A new cache gets version 1.
    let fresh = Dpx::new(&hub.url());
    fresh.ok(&["-q", "pull", "layout:v1"]);
    assert_eq!(
        std::fs::read_to_string(fresh.cache.join("VERSION")).unwrap(),
        "1\n"
    );
}

/// Upstream blob and manifest requests of any kind.
fn upstream_blob_requests(hub: &FakeHub) -> (usize, usize) {
    (
        hub.count(Route::BlobHead),
        hub.count(Route::BlobGet) + hub.count(Route::CdnBlobGet),
    )
}

/// Two images sharing a base layer: `library/<a>:v1` is pulled (so the base
/// is cached through `a` only); returns (a's manifest, b's manifest, base).
fn shared_base(hub: &FakeHub, dpx: &Dpx, a: &str, b: &str, seed: u64) -> (String, String, String) {
    let ma = hub.add_image_with_base(&format!("library/{a}"), "v1", 4096, seed, &[100], seed + 1);
    let mb = hub.add_image_with_base(&format!("library/{b}"), "v1", 4096, seed, &[200], seed + 2);
    let base = hub.layers(&ma)[0].clone();
    assert_eq!(hub.layers(&mb)[0], base);
    dpx.ok(&["-q", "pull", &format!("{a}:v1")]);
    assert!(dpx.has_blob(&base));
    (ma, mb, base)
}

#[test]
fn a_blob_of_repo_a_is_served_under_b_when_a_cached_manifest_of_b_names_it() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let (_, _, base) = shared_base(&hub, &dpx, "mema", "memb", 501);
    // b's manifest cached (by a pull of b's config only: the pull stores it
    // and links what it names); then links forgotten, as in a cache written
    // before links existed: the tag record still names the manifest.
    dpx.ok(&["-q", "pull", "memb:v1"]);
    std::fs::remove_dir_all(dpx.cache.join("index/docker.io/library/memb/_links")).unwrap();
    hub.reset_counts();
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/memb/blobs/{base}"),
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("x-dpx-cache"), Some("hit"));
    assert_eq!(upstream_blob_requests(&hub), (0, 0));
    // And recorded: the link is back.
    let hex = base.trim_start_matches("sha256:");
    assert!(
        dpx.cache
            .join("index/docker.io/library/memb/_links")
            .join(hex)
            .is_file()
    );
}

#[test]
fn a_blob_of_repo_a_is_served_under_b_after_one_upstream_head_and_no_download() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let (_, _, base) = shared_base(&hub, &dpx, "heada", "headb", 511);
    hub.reset_counts();
    let serve = dpx.serve();
    for _ in 0..2 {
        let resp = request(
            &serve.addr,
            "GET",
            &format!("/v2/library/headb/blobs/{base}"),
            &[],
        );
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        assert_eq!(resp.header("x-dpx-cache"), Some("hit"));
    }
    // One HEAD for both requests (the second knows the link), no GET.
    assert_eq!(upstream_blob_requests(&hub), (1, 0));
}

#[test]
fn a_blob_of_repo_a_is_unknown_under_b_when_upstream_b_does_not_have_it() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let (_, _, base) = shared_base(&hub, &dpx, "privatea", "privateb", 521);
    hub.make_bare("library/privateb");
    hub.reset_counts();
    let serve = dpx.serve();
    for method in ["GET", "HEAD"] {
        let resp = request(
            &serve.addr,
            method,
            &format!("/v2/library/privateb/blobs/{base}"),
            &[],
        );
        assert_eq!(resp.status, 404, "{method}");
        if method == "GET" {
            assert_eq!(resp.error_code().as_deref(), Some("BLOB_UNKNOWN"));
        }
    }
    let (_, gets) = upstream_blob_requests(&hub);
    assert_eq!(gets, 0, "nothing downloaded");
    // Still served under a.
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/privatea/blobs/{base}"),
        &[],
    );
    assert_eq!(resp.status, 200);
}

#[test]
fn a_manifest_of_repo_a_by_digest_under_b_needs_b_membership() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let (ma, _, _) = shared_base(&hub, &dpx, "mana", "manb", 531);
    // Tagged in c too, and c's tag pulled: c's tag record names it.
    hub.tag("library/manc", "v1", &ma);
    dpx.ok(&["-q", "pull", "manc:v1"]);
    std::fs::remove_dir_all(dpx.cache.join("index/docker.io/library/manc/_links")).unwrap();
    hub.make_bare("library/mand");
    hub.reset_counts();
    let serve = dpx.serve();
    let get = |repo: &str| {
        request(
            &serve.addr,
            "GET",
            &format!("/v2/library/{repo}/manifests/{ma}"),
            &[],
        )
    };
    // A cached manifest of the repository names it: no upstream request.
    assert_eq!(get("manc").status, 200);
    assert_eq!(
        hub.count(Route::ManifestHead) + hub.count(Route::ManifestGet),
        0
    );
    // The upstream has it in b: one HEAD, no GET, also for a second request.
    for _ in 0..2 {
        let resp = get("manb");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("x-dpx-cache"), Some("hit"));
    }
    assert_eq!(hub.count(Route::ManifestHead), 1);
    assert_eq!(hub.count(Route::ManifestGet), 0);
    // Not in d: unknown, nothing fetched.
    let resp = get("mand");
    assert_eq!(resp.status, 404);
    assert_eq!(resp.error_code().as_deref(), Some("MANIFEST_UNKNOWN"));
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

fn blob_file(dpx: &Dpx, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn age_days(path: &std::path::Path) -> u64 {
    let m = std::fs::metadata(path).unwrap().modified().unwrap();
    std::time::SystemTime::now()
        .duration_since(m)
        .map_or(0, |d| d.as_secs() / 86400)
}

fn set_age_days(path: &std::path::Path, days: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(days * 86400);
    std::fs::File::open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn pulls_and_serves_record_last_use_in_file_times() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/used", "v1", &[300, 400], 541);
    let layers = hub.layers(&manifest);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "used:v1"]);
    let tag = dpx.cache.join("index/docker.io/library/used/tags/v1.json");
    let files: Vec<_> = [&manifest, &layers[0], &layers[1]]
        .iter()
        .map(|d| blob_file(&dpx, d))
        .chain([tag.clone()])
        .collect();
    for f in &files {
        set_age_days(f, 40);
    }
    // A pull of the cached image (tag still fresh: no upstream check).
    dpx.ok(&["-q", "pull", "used:v1"]);
    for f in &files {
        assert_eq!(age_days(f), 0, "{}", f.display());
    }
    // serve: a manifest by digest and a layer; written at the latest at exit.
    for f in &files {
        set_age_days(f, 40);
    }
    let mut serve = dpx.serve();
    for path in [
        format!("/v2/library/used/manifests/{manifest}"),
        format!("/v2/library/used/blobs/{}", layers[1]),
    ] {
        assert_eq!(request(&serve.addr, "GET", &path, &[]).status, 200);
    }
    assert!(serve.stop().success());
    assert_eq!(age_days(&files[0]), 0);
    assert_eq!(age_days(&files[2]), 0);
    // Not used: left as it was.
    assert_eq!(age_days(&files[1]), 40);
}

/// The temp files in tmp/ of a blob download (named after its digest).
fn temps_of(dpx: &Dpx, digest: &str) -> Vec<std::path::PathBuf> {
    let prefix = format!("{}.", &digest.trim_start_matches("sha256:")[..12]);
    std::fs::read_dir(dpx.cache.join("tmp"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// A `dpx pull` stalled halfway through its layer; returns once bytes are in tmp/.
fn stalled_pull(dpx: &Dpx, image: &str, layer: &str) -> std::process::Child {
    let child = dpx
        .command()
        .args(["-q", "pull", image])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn dpx pull");
    wait_for(
        "the pull's partial download",
        Duration::from_secs(30),
        || {
            temps_of(dpx, layer)
                .iter()
                .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 64 * 1024))
        },
    );
    child
}

#[test]
fn start_up_sweeps_a_killed_pulls_temp_file_and_keeps_a_live_ones() {
    let hub = FakeHub::start();
    let killed = hub.add_image("library/killed", "v1", &[512 * 1024], 551);
    let alive = hub.add_image("library/alive", "v1", &[512 * 1024], 552);
    let (killed_layer, alive_layer) = (
        hub.layers(&killed)[0].clone(),
        hub.layers(&alive)[0].clone(),
    );
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let mut live = stalled_pull(&dpx, "alive:v1", &alive_layer);
    let mut dead = stalled_pull(&dpx, "killed:v1", &killed_layer);
    dead.kill().expect("SIGKILL the pull");
    dead.wait().expect("reap");
    assert_eq!(
        temps_of(&dpx, &killed_layer).len(),
        1,
        "SIGKILL leaves the temp file"
    );
    let serve = dpx.serve();
    // Its config's temp file may have gone with it (it depends on timing):
    // "1 temp files" or "2 temp files".
    assert!(serve.log_shows("swept the cache: "), "{}", serve.log_text());
    assert!(temps_of(&dpx, &killed_layer).is_empty());
    assert_eq!(
        temps_of(&dpx, &alive_layer).len(),
        1,
        "the live download's file stays"
    );
    // The live download finishes as if nothing happened.
    hub.release();
    let status = live.wait().expect("wait for the live pull");
    assert!(status.success());
    assert!(dpx.has_blob(&alive_layer));
    dpx.assert_store_consistent();
}

#[test]
fn a_whole_cache_operation_and_the_cache_users_wait_for_each_other_naming_the_holder() {
    let hub = FakeHub::start();
    hub.add_image("library/locked", "v1", &[10], 561);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nlock_timeout = \"1s\"\n",
    );
    let mut serve = dpx.serve();
    let err = dpx::cache::Cache::open_exclusive(&dpx.cache, Duration::ZERO)
        .expect_err("serve uses the cache")
        .to_string();
    assert!(
        err.contains(&format!("{} (dpx ", serve.child.id())),
        "{err}"
    );
    assert!(err.contains(" serve --listen"), "{err}");
    serve.stop();
    // Held exclusively (by this test process): a pull waits, then fails naming it.
    let exclusive = dpx::cache::Cache::open_exclusive(&dpx.cache, Duration::ZERO).unwrap();
    let out = dpx.run(&["pull", "locked:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("dpx process {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 0);
    drop(exclusive);
    dpx.ok(&["-q", "pull", "locked:v1"]);
}

#[test]
fn a_download_through_repo_a_is_not_joined_under_b_without_membership() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/flighta", "v1", &[512 * 1024], 571);
    let layer = hub.layers(&manifest)[0].clone();
    hub.make_bare("library/flightb");
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let (addr, path) = (
        serve.addr.clone(),
        format!("/v2/library/flighta/blobs/{layer}"),
    );
    let first = std::thread::spawn(move || request(&addr, "GET", &path, &[]));
    wait_for("the download under a", Duration::from_secs(30), || {
        temps_of(&dpx, &layer)
            .iter()
            .any(|p| std::fs::metadata(p).is_ok_and(|m| m.len() >= 64 * 1024))
    });
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/flightb/blobs/{layer}"),
        &[],
    );
    assert_eq!(resp.status, 404, "{}", resp.body_text());
    assert_eq!(resp.error_code().as_deref(), Some("BLOB_UNKNOWN"));
    hub.release();
    let resp = first.join().expect("client under a");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 512 * 1024);
}
