//! The pull quota: figures recorded from every reply (`ratelimit --cached`),
//! `[ratelimit] reserve`, the pause after a 429, `prefetch --max-pulls`, the
//! counts of `dpx stats`, and one upstream check of a tag however many
//! clients and processes ask at once. Counted at the fake hub.

use std::time::Duration;

use crate::support::dpx::{Dpx, Serve, wait_for};
use crate::support::engines::{engines, hub_image};
use crate::support::http::request;
use crate::support::hub::{FakeHub, HeaderStyle, Route, noise};
use crate::support::layout::{Layer, file_layer};

fn layers(seed: u64) -> Vec<Layer> {
    vec![
        file_layer("quota", &noise(seed, 50_000)),
        file_layer("etc/motd", format!("quota image {seed}\n").as_bytes()),
    ]
}

fn dpx_with(hub: &FakeHub, extra_toml: &str) -> Dpx {
    Dpx::with_registries(&[("docker.io", &hub.url())], extra_toml)
}

fn manifest_path(repo: &str, reference: &str) -> String {
    format!("/v2/{repo}/manifests/{reference}")
}

fn gets_heads(hub: &FakeHub) -> (usize, usize) {
    (
        hub.count(Route::ManifestGet),
        hub.count(Route::ManifestHead),
    )
}

/// Lets every tag record of a cache with a TTL of 2 s or less expire.
fn let_tags_expire() {
    std::thread::sleep(Duration::from_millis(3100));
}

#[test]
fn at_the_reserve_docker_pulls_cached_tags_without_a_manifest_get_and_uncached_ones_still() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 50, 21600, HeaderStyle::Standard);
    let old = hub_image(&hub, "library/reserved", Some("v1"), "amd64", &layers(1));
    hub_image(&hub, "library/fresh", Some("v1"), "amd64", &layers(2));
    let dpx = dpx_with(
        &hub,
        "[cache]\ntag_ttl = \"1s\"\n[ratelimit]\nreserve = 5\n",
    );
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
    eng.docker_rmi("reserved:v1");
    eng.docker_rmi("fresh:v1");
    assert!(eng.docker_pull("reserved:v1").contains(&old));

    // At the reserve, an unchanged tag is revalidated by the free HEAD.
    hub.set_rate_remaining(5);
    let_tags_expire();
    hub.reset_counts();
    let same = request(
        &serve.addr,
        "GET",
        &manifest_path("library/reserved", "v1"),
        &[],
    );
    assert_eq!(same.header("x-dpx-cache"), Some("revalidated"));
    assert_eq!(same.header("x-dpx-stale"), None);
    assert_eq!(gets_heads(&hub), (0, 1));

    // The tag moves upstream (a pull would normally GET the new manifest),
    // and the quota is down to the reserve.
    let new = hub_image(&hub, "library/reserved", Some("v1"), "amd64", &layers(3));
    hub.set_rate_remaining(5);
    let_tags_expire();
    hub.reset_counts();
    eng.docker_rmi("reserved:v1");
    let out = eng.docker_pull("reserved:v1");
    assert!(out.contains(&old), "the cached image is served: {out}");
    assert!(!out.contains(&new), "{out}");
    assert_eq!(
        gets_heads(&hub),
        (0, 1),
        "one free HEAD tells the tag moved; no manifest GET is spent"
    );
    assert!(serve.log_shows("(reserve)"), "{}", serve.log_text());
    // Marked for any client that looks.
    let resp = request(
        &serve.addr,
        "GET",
        &manifest_path("library/reserved", "v1"),
        &[],
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-dpx-stale"), Some("reserve"));
    assert_eq!(resp.header("docker-content-digest"), Some(old.as_str()));
    assert_eq!(hub.count(Route::ManifestGet), 0);

    // Content not cached at all still spends a pull.
    let out = eng.docker_pull("fresh:v1");
    assert!(out.contains("fresh"), "{out}");
    assert!(hub.count(Route::ManifestGet) >= 1);
    serve.stop();
}

#[test]
fn after_a_429_cached_tags_keep_pulling_and_no_manifest_get_is_sent_until_the_window_passed() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    // A 2 s window that refills, and 429s that say when (Retry-After).
    hub.set_ratelimit(100, 50, 2, HeaderStyle::Standard);
    let cached = hub_image(&hub, "library/limited", Some("v1"), "amd64", &layers(4));
    hub_image(&hub, "library/later", Some("v1"), "amd64", &layers(5));
    let dpx = dpx_with(&hub, "[cache]\ntag_ttl = \"0\"\n");
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
    eng.docker_rmi("limited:v1");
    assert!(eng.docker_pull("limited:v1").contains(&cached));

    hub.set_rate_remaining(0);
    hub.set_ratelimit_refill(true);
    hub.reset_counts();
    let refused = request(
        &serve.addr,
        "GET",
        &manifest_path("library/later", "v1"),
        &[],
    );
    assert_eq!(refused.status, 429, "{}", refused.body_text());
    assert_eq!(refused.error_code().as_deref(), Some("TOOMANYREQUESTS"));
    assert!(
        refused.body_text().contains("retry after"),
        "{}",
        refused.body_text()
    );
    assert_eq!(hub.count(Route::ManifestGet), 1, "the 429 is not retried");

    // Paused: uncached content gets a 429 with the time to retry, without
    // asking upstream; the cached tag pulls (stale, not even a HEAD).
    let paused = request(
        &serve.addr,
        "GET",
        &manifest_path("library/later", "v1"),
        &[],
    );
    assert_eq!(paused.status, 429);
    assert_eq!(paused.error_code().as_deref(), Some("TOOMANYREQUESTS"));
    assert!(
        paused.body_text().contains("retry after"),
        "{}",
        paused.body_text()
    );
    eng.docker_rmi("limited:v1");
    assert!(eng.docker_pull("limited:v1").contains(&cached));
    assert_eq!(
        gets_heads(&hub),
        (1, 0),
        "nothing more upstream while paused"
    );
    assert!(serve.log_shows("rate-limited"), "{}", serve.log_text());

    // Once the window has passed, dpx asks again (and the hub answers).
    wait_for("the pause to end", Duration::from_secs(30), || {
        request(
            &serve.addr,
            "GET",
            &manifest_path("library/later", "v1"),
            &[],
        )
        .status
            == 200
    });
    assert!(hub.count(Route::ManifestGet) >= 2);
    let text = serve.log_text();
    serve.stop();
    assert!(text.contains("429"), "{text}");
}

/// `n` concurrent GETs of a manifest through `addr`; returns their statuses.
fn concurrent_gets(addr: &str, path: &str, n: usize) -> Vec<u16> {
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (addr, path) = (addr.to_string(), path.to_string());
            std::thread::spawn(move || request(&addr, "GET", &path, &[]).status)
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect()
}

#[test]
fn fifty_clients_revalidating_one_expired_tag_cost_one_head() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/crowd", "v1", &[1000], 60);
    // 2 s: a client a moment late finds the tag just checked, and fresh.
    let dpx = dpx_with(&hub, "[cache]\ntag_ttl = \"2s\"\n");
    let serve = dpx.serve();
    let path = manifest_path("library/crowd", "v1");
    assert_eq!(request(&serve.addr, "GET", &path, &[]).status, 200);
    let_tags_expire();
    // The HEAD takes a while, so the clients overlap it.
    hub.set_manifest_head_delay(Duration::from_secs(2));
    hub.reset_counts();
    let statuses = concurrent_gets(&serve.addr, &path, 50);
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(gets_heads(&hub), (0, 1), "one HEAD for 50 clients");
    let resp = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
}

#[test]
fn two_serves_and_a_prefetch_on_one_cache_revalidate_an_expired_tag_once() {
    let hub = FakeHub::start();
    hub.add_image("library/shared", "v1", &[1000], 61);
    let dpx = dpx_with(&hub, "[cache]\ntag_ttl = \"2s\"\n");
    let (a, b) = (dpx.serve(), dpx.serve());
    let path = manifest_path("library/shared", "v1");
    assert_eq!(request(&a.addr, "GET", &path, &[]).status, 200);
    let_tags_expire();
    hub.set_manifest_head_delay(Duration::from_secs(3));
    hub.reset_counts();
    let prefetch = {
        let mut cmd = dpx.command();
        cmd.args(["prefetch", "shared:v1"]);
        std::thread::spawn(move || cmd.output().expect("prefetch"))
    };
    let clients: Vec<_> = [(&a, 25), (&b, 25)]
        .into_iter()
        .map(|(s, n): (&Serve, usize)| {
            let (addr, path) = (s.addr.clone(), path.clone());
            std::thread::spawn(move || concurrent_gets(&addr, &path, n))
        })
        .collect();
    for c in clients {
        let statuses = c.join().expect("clients");
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    let out = prefetch.join().expect("prefetch thread");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        gets_heads(&hub),
        (0, 1),
        "one HEAD for 50 clients of two serves and a prefetch"
    );
}

#[test]
fn prefetch_stops_before_max_pulls_or_the_reserve_with_exit_code_3() {
    let hub = FakeHub::start();
    for (i, repo) in ["library/p1", "library/p2", "library/p3"]
        .iter()
        .enumerate()
    {
        hub.add_image(repo, "v1", &[1000], 70 + i as u64);
    }
    let dpx = dpx_with(&hub, "");
    let out = dpx.run(&[
        "prefetch",
        "-j",
        "1",
        "--max-pulls",
        "2",
        "p1:v1",
        "p2:v1",
        "p3:v1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("--max-pulls"), "{stderr}");
    assert!(stderr.contains("2 of 3 images"), "{stderr}");
    assert!(
        stderr.contains("1 left: docker.io/library/p3:v1"),
        "{stderr}"
    );
    // The summary says the image was left for the quota, not that it failed.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("3 images (0 failed, 1 left to save the pull quota: 2 manifest GETs spent, the most --max-pulls allows)"),
        "{stdout}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 2);

    // The reserve: 6 left, reserve 5: one more GET, then stop.
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 6, 21600, HeaderStyle::Standard);
    for (i, repo) in ["library/r1", "library/r2"].iter().enumerate() {
        hub.add_image(repo, "v1", &[1000], 80 + i as u64);
    }
    let dpx = dpx_with(&hub, "[ratelimit]\nreserve = 5\n");
    let v = {
        let out = dpx.run(&["--json", "prefetch", "-j", "1", "r1:v1", "r2:v1"]);
        assert_eq!(out.status.code(), Some(3));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).expect("json")
    };
    assert!(
        v["stopped"].as_str().is_some_and(|s| s.contains("reserve")),
        "{v}"
    );
    assert_eq!(v["images"][0]["error"], serde_json::Value::Null);
    assert_eq!(v["images"][1]["stopped"], true);
    assert_eq!(v["manifest_requests"]["upstream_manifest_gets"], 1);
    assert_eq!(hub.count(Route::ManifestGet), 1);
    // Bad input changes nothing.
    let out = dpx.run(&["prefetch", "--max-pulls", "-1", "r2:v1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(hub.count(Route::ManifestGet), 1);

    // Parallel jobs count the GETs under way: 7 left (recorded by an
    // earlier run), reserve 5, four jobs at once: two GETs.
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 8, 21600, HeaderStyle::Standard);
    let names: Vec<String> = (0..5).map(|i| format!("library/j{i}")).collect();
    for (i, repo) in names.iter().enumerate() {
        hub.add_image(repo, "v1", &[1000], 85 + i as u64);
    }
    let dpx = dpx_with(&hub, "[ratelimit]\nreserve = 5\n");
    dpx.ok(&["pull", "j0:v1"]);
    let out = dpx.run(&["prefetch", "-j", "4", "j1:v1", "j2:v1", "j3:v1", "j4:v1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("2 left"), "{stderr}");
    assert_eq!(hub.count(Route::ManifestGet), 3, "the pull's and two");
}

#[test]
fn ratelimit_cached_shows_the_last_figures_seen_across_restarts_without_network() {
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 42, 21600, HeaderStyle::XPrefixed);
    hub.add_image("library/figures", "v1", &[1000], 90);
    let dpx = dpx_with(&hub, "");
    let none = dpx.ok(&["ratelimit", "--cached"]);
    assert!(none.contains("no rate-limit figures seen yet"), "{none}");
    dpx.ok(&["pull", "figures:v1"]);

    hub.reset_counts();
    let v = dpx.json(&["ratelimit", "--cached"]);
    let f = &v["figures"][0];
    assert_eq!(f["registry"], "docker.io");
    assert_eq!(f["source"], "127.0.0.1");
    assert_eq!(f["account"], "anonymous");
    assert_eq!(f["authenticated"], false);
    assert_eq!(f["limit"], 100);
    assert_eq!(f["remaining"], 41, "the GET spent one");
    assert_eq!(f["window_seconds"], 21600);
    assert!(
        f["observed_at"].as_u64().is_some_and(|t| t > 1_700_000_000),
        "{f}"
    );
    // One schema with `dpx ratelimit --json`.
    let mut keys: Vec<&str> = f
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, crate::support::RATELIMIT_FIELDS);
    let human = dpx.ok(&["ratelimit", "--cached"]);
    assert!(
        human.contains("docker.io: 127.0.0.1 (anonymous): 41 of 100 pulls left per 6h"),
        "{human}"
    );

    // A served request updates them; they outlive the server.
    let serve = dpx.serve();
    let mut serve = serve;
    assert_eq!(
        request(
            &serve.addr,
            "GET",
            &manifest_path("library/figures", "latest"),
            &[]
        )
        .status,
        404
    );
    hub.add_image("library/figures", "v2", &[1000], 91);
    let got = request(
        &serve.addr,
        "GET",
        &manifest_path("library/figures", "v2"),
        &[],
    );
    assert_eq!(got.status, 200);
    serve.stop();
    let before = hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead);
    let v = dpx.json(&["ratelimit", "--cached"]);
    assert_eq!(v["figures"][0]["remaining"], 40);
    assert_eq!(v["figures"].as_array().map(Vec::len), Some(1));
    drop(hub);
    // No hub at all: still there, from the record.
    let v = dpx.json(&["ratelimit", "--cached"]);
    assert_eq!(v["figures"][0]["remaining"], 40);
    assert!(before > 0);
}

#[test]
fn stats_count_cache_hits_revalidations_and_what_went_upstream() {
    let hub = FakeHub::start();
    hub.add_image("library/counted", "v1", &[1000], 95);
    let dpx = dpx_with(&hub, "");
    let zero = dpx.json(&["stats"]);
    assert_eq!(zero["cache_hits"], 0);
    // A pull: one GET; a second pull: a HEAD revalidates (pull's TTL is 0).
    dpx.ok(&["pull", "counted:v1"]);
    dpx.ok(&["pull", "counted:v1"]);
    let mut serve = dpx.serve();
    for _ in 0..3 {
        let r = request(
            &serve.addr,
            "GET",
            &manifest_path("library/counted", "v1"),
            &[],
        );
        assert_eq!(r.status, 200);
    }
    serve.stop();
    let v = dpx.json(&["stats"]);
    assert_eq!(v["upstream_manifest_gets"], 1, "{v}");
    assert_eq!(v["upstream_manifest_heads"], 1, "{v}");
    assert_eq!(v["revalidated"], 1, "{v}");
    assert_eq!(v["cache_hits"], 3, "serve's three, within the TTL: {v}");
    assert_eq!(v["answered_without_get"], 4, "{v}");
    assert_eq!(
        (
            hub.count(Route::ManifestGet),
            hub.count(Route::ManifestHead)
        ),
        (1, 1)
    );
    let human = dpx.ok(&["stats"]);
    assert!(human.contains("1 manifest GETs"), "{human}");
}

/// The number the issue asks for: what `n` docker pulls of an unchanged tag
/// cost upstream, with the default TTL and with TTL 0 (`DPX_QUOTA_PULLS`,
/// default 10; the closing note used 100). Printed, and asserted.
#[test]
fn docker_pulls_of_an_unchanged_tag_spend_no_manifest_get() {
    let n: usize = std::env::var("DPX_QUOTA_PULLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    hub_image(&hub, "library/unchanged", Some("v1"), "amd64", &layers(6));
    for (ttl, toml) in [("default", ""), ("0", "[cache]\ntag_ttl = \"0\"\n")] {
        let dpx = dpx_with(&hub, toml);
        let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
        eng.docker_rmi("unchanged:v1");
        eng.docker_pull("unchanged:v1");
        // A docker that still holds the manifest (from the last round) only
        // HEADs the tag, which dpx answers from an upstream HEAD without
        // caching the manifest: the GET caches it, as an engine's first real
        // pull would.
        let warm = request(
            &serve.addr,
            "GET",
            &manifest_path("library/unchanged", "v1"),
            &[],
        );
        assert_eq!(warm.status, 200, "{}", warm.body_text());
        hub.reset_counts();
        for _ in 0..n {
            eng.docker_rmi("unchanged:v1");
            eng.docker_pull("unchanged:v1");
        }
        let (gets, heads) = gets_heads(&hub);
        serve.stop();
        eprintln!("{n} docker pulls, TTL {ttl}: {gets} manifest GETs, {heads} HEADs upstream");
        assert_eq!(gets, 0);
        assert_eq!(heads, if ttl == "0" { n } else { 0 });
        let stats = dpx.json(&["stats"]);
        assert_eq!(
            stats["upstream_manifest_gets"], 1,
            "the first pull: {stats}"
        );
    }
}

/// Waits until `dpx ratelimit --cached` says the hold's next probe is due.
fn wait_for_probe_due(dpx: &Dpx) {
    let v = dpx.json(&["ratelimit", "--cached", "--json"]);
    let next = v["figures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["hold"]["next_probe_at"].as_u64())
        .max()
        .unwrap_or_else(|| panic!("no hold recorded: {v}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Whole seconds on both sides: one more makes sure it is due.
    std::thread::sleep(Duration::from_secs(next.saturating_sub(now) + 1));
}

/// Issue 16, item 1: Docker Hub's window rolls, so quota comes back a pull
/// at a time; after a 429 without Retry-After (whose `w=` says 6 hours) dpx
/// holds back manifest GETs only until a free probe shows quota again.
#[test]
fn after_a_429_the_hold_lifts_as_soon_as_one_pull_ages_out_of_the_rolling_window() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let window = Duration::from_secs(6);
    hub.set_ratelimit(2, 2, 21600, HeaderStyle::Standard);
    hub.set_ratelimit_rolling(window);
    let cached = hub_image(&hub, "library/held", Some("v1"), "amd64", &layers(7));
    hub_image(&hub, "library/spent", Some("v1"), "amd64", &layers(8));
    hub_image(&hub, "library/wanted", Some("v1"), "amd64", &layers(9));
    let dpx = dpx_with(
        &hub,
        "[cache]\ntag_ttl = \"0\"\n[ratelimit]\nprobe_interval = \"1s\"\nprobe_interval_max = \"2s\"\n",
    );
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
    let mut phases = Vec::new();
    let mut note = |phase: &str, hub: &FakeHub| {
        phases.push(format!("{phase}: {:?}", gets_heads(hub)));
        hub.reset_counts();
    };

    // Exhaust: two pulls spend the quota of 2, the third GET gets a 429.
    eng.docker_rmi("held:v1");
    let first_pull = std::time::Instant::now();
    assert!(eng.docker_pull("held:v1").contains(&cached));
    let spent = request(
        &serve.addr,
        "GET",
        &manifest_path("library/spent", "v1"),
        &[],
    );
    assert_eq!(spent.status, 200, "{}", spent.body_text());
    let refused = request(
        &serve.addr,
        "GET",
        &manifest_path("library/wanted", "v1"),
        &[],
    );
    assert_eq!(refused.status, 429, "{}", refused.body_text());
    assert_eq!(gets_heads(&hub).0, 3, "the 429 is not retried");
    note("exhaust (docker pull, GET, GET refused)", &hub);

    // Held: the cached tag pulls through dockerd without a manifest GET; an
    // uncached manifest gets a 429 that says when dpx looks again.
    eng.docker_rmi("held:v1");
    assert!(eng.docker_pull("held:v1").contains(&cached));
    let held = request(
        &serve.addr,
        "GET",
        &manifest_path("library/wanted", "v1"),
        &[],
    );
    assert_eq!(held.status, 429, "{}", held.body_text());
    assert_eq!(held.error_code().as_deref(), Some("TOOMANYREQUESTS"));
    let retry_after: u64 = held
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", held.header("retry-after")));
    assert!(
        (1..=2).contains(&retry_after),
        "the next probe, not the window: {retry_after}"
    );
    let text = held.body_text();
    assert!(
        text.contains("used up") && text.contains("looks again"),
        "{text}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 0, "nothing spent while held");
    let shown = dpx.ok(&["ratelimit", "--cached"]);
    assert!(shown.contains("held back since"), "{shown}");
    note(
        "hold (docker pull of the cached tag, GET of an uncached one)",
        &hub,
    );

    // The first pull ages out of the window: the next request, once the
    // probe is due, is served with one manifest GET (and one free HEAD).
    std::thread::sleep(window.saturating_sub(first_pull.elapsed()));
    wait_for_probe_due(&dpx);
    hub.reset_counts();
    let served = request(
        &serve.addr,
        "GET",
        &manifest_path("library/wanted", "v1"),
        &[],
    );
    assert_eq!(served.status, 200, "{}", served.body_text());
    assert_eq!(served.header("x-dpx-cache"), Some("miss"));
    assert_eq!(gets_heads(&hub), (1, 1), "one probe HEAD, one manifest GET");
    note("recover (probe HEAD, then the GET)", &hub);
    let v = dpx.json(&["ratelimit", "--cached", "--json"]);
    assert!(
        v["figures"]
            .as_array()
            .is_some_and(|f| f.iter().all(|f| f["hold"].is_null())),
        "the hold is lifted on record: {v}"
    );
    let log = serve.log_text();
    serve.stop();
    eprintln!(
        "fake hub (manifest GETs, HEADs) per phase:\n  {}",
        phases.join("\n  ")
    );
    assert!(log.contains("no longer held back"), "{log}");
}

/// Issue 16, item 2: every way `dpx pull` and `dpx prefetch` fail says why on
/// stderr, and a hold after a 429 exits 3 (the quota), in every output form.
/// Also: `dpx ratelimit` shows the hold, and its reply with quota left lifts
/// it for the next process, without waiting for a probe.
#[test]
fn every_failing_pull_and_prefetch_says_why_and_ratelimit_shows_and_lifts_the_hold() {
    let hub = FakeHub::start();
    hub.add_ratelimit_preview();
    hub.set_ratelimit(100, 0, 21600, HeaderStyle::Standard);
    hub_image(&hub, "library/spent", Some("v1"), "amd64", &layers(10));
    let dpx = dpx_with(&hub, "");
    let fails = |args: &[&str], code: i32| {
        let out = dpx.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            !stderr.trim().is_empty(),
            "{args:?} exits {code} without a word"
        );
        stderr
    };
    // The 429 begins a hold; then the hold itself stops the pull.
    for args in [
        &["pull", "spent:v1"][..],
        &["pull", "spent:v1"],
        &["pull", "-v", "spent:v1"],
        &["-q", "pull", "spent:v1"],
        &["--json", "pull", "spent:v1"],
    ] {
        let stderr = fails(args, 3);
        assert!(stderr.contains("dpx ratelimit"), "{args:?}: {stderr}");
    }
    let held = fails(&["pull", "spent:v1"], 3);
    assert!(
        held.contains("used up") && held.contains("looks again"),
        "{held}"
    );
    fails(&["prefetch", "spent:v1"], 3);
    fails(&["--json", "prefetch", "spent:v1"], 3);
    assert_eq!(hub.count(Route::ManifestGet), 1, "one 429, then held");

    let v = dpx.json(&["ratelimit"]);
    assert!(v["hold"]["next_probe_at"].as_u64().is_some(), "{v}");
    let text = dpx.ok(&["ratelimit"]);
    assert!(text.contains("held back since"), "{text}");
    // Quota shows again: `dpx ratelimit` lifts the hold for everyone.
    hub.set_rate_remaining(5);
    let v = dpx.json(&["ratelimit"]);
    assert!(v["hold"].is_null(), "{v}");
    dpx.ok(&["pull", "spent:v1"]);

    // Other failures: nothing upstream, a bad reference, no such list, the cap.
    fails(&["pull", "missing:v1"], 1);
    fails(&["-q", "pull", "missing:v1"], 1);
    fails(&["--json", "pull", "missing:v1"], 1);
    fails(&["pull", "UPPER/case"], 1);
    fails(&["prefetch", "missing:v1"], 1);
    fails(&["prefetch", "-f", "/nonexistent/images.txt"], 2);
    hub_image(&hub, "library/more", Some("v1"), "amd64", &layers(11));
    let capped = fails(&["prefetch", "--max-pulls", "0", "more:v1"], 3);
    assert!(capped.contains("--max-pulls"), "{capped}");
}

/// Issue 16, item 5: `dpx stats` counts a pull only when the upstream
/// answered the manifest GET with 200 (as Docker Hub counts), and with a
/// daemon running its figures are live, not up to a batch old.
#[test]
fn stats_count_only_gets_answered_200_and_ask_the_running_daemon() {
    use crate::support::hub::Fault;
    let hub = FakeHub::start();
    hub.add_image("library/counted", "v1", &[1000], 91);
    hub.add_image("library/live", "v1", &[1000], 92);
    let dpx = dpx_with(&hub, "");
    hub.set_fault_on("/manifests/", Fault::Outage, Some(4));
    let _ = dpx.run(&["pull", "counted:v1"]);
    dpx.ok(&["pull", "counted:v1"]);
    let gets = hub.count(Route::ManifestGet);
    assert!(
        gets > 4,
        "the outage took 4 GETs, then one was answered: {gets}"
    );
    let stats = dpx.json(&["stats"]);
    assert_eq!(
        stats["upstream_manifest_gets"].as_u64(),
        Some(gets as u64 - 4),
        "the 503s are no pulls: {stats}"
    );

    let mut serve = dpx.serve();
    let live = request(
        &serve.addr,
        "GET",
        &manifest_path("library/live", "v1"),
        &[],
    );
    assert_eq!(live.status, 200, "{}", live.body_text());
    let stats = dpx.json(&["stats"]);
    serve.stop();
    assert_eq!(
        stats["upstream_manifest_gets"].as_u64(),
        Some(gets as u64 - 3),
        "the daemon's GET, before its batch is written: {stats}"
    );
}
