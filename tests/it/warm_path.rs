//! The warm path of `dpx serve`: cached blobs sent as memory-mapped windows,
//! cached tags answered from the in-memory hot set, the request log written
//! on a thread of its own.

use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::request;
use std::time::Duration;

use crate::support::hub::{FakeHub, Fault, Route, noise};

/// Layer sizes across the server's 1 MiB windows and its small-read limit.
const SIZES: [usize; 3] = [5 * 1024 * 1024 + 321, 64 * 1024 + 1, 700];

#[test]
fn cached_blobs_and_their_ranges_carry_exactly_the_stored_bytes() {
    let hub = FakeHub::start();
    let seed = 1801;
    let manifest = hub.add_image("library/warm", "v1", &SIZES, seed);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "library/warm:v1"]);
    let serve = dpx.serve();
    let layers = hub.layers(&manifest);
    assert_eq!(layers.len(), SIZES.len());
    for (i, (layer, size)) in layers.iter().zip(SIZES).enumerate() {
        let data = noise(seed * 1000 + i as u64, size);
        assert_eq!(&format!("sha256:{}", sha256_hex(&data)), layer);
        let path = format!("/v2/library/warm/blobs/{layer}");
        let whole = request(&serve.addr, "GET", &path, &[]);
        assert_eq!(whole.status, 200);
        assert_eq!(whole.header("x-dpx-cache"), Some("hit"));
        assert_eq!(&format!("sha256:{}", sha256_hex(&whole.body)), layer);
        let mut ranges = vec![
            (0, 0),
            (1, size - 2),
            (size / 3, size - 1),
            (size - 1, size - 1),
        ];
        if size > 4 * 1024 * 1024 {
            // Starting and ending exactly on, and one byte off, a window edge.
            let w = 1024 * 1024;
            ranges.extend([(w, 2 * w - 1), (w - 1, 2 * w), (2 * w + 1, size - 1)]);
        }
        for (first, last) in ranges {
            let spec = format!("bytes={first}-{last}");
            let part = request(&serve.addr, "GET", &path, &[("Range", &spec)]);
            assert_eq!(part.status, 206, "{spec}");
            assert_eq!(
                part.header("content-range"),
                Some(format!("bytes {first}-{last}/{size}").as_str())
            );
            assert_eq!(
                sha256_hex(&part.body),
                sha256_hex(&data[first..=last]),
                "{spec} of layer {i}"
            );
        }
        let suffix = request(&serve.addr, "GET", &path, &[("Range", "bytes=-500")]);
        assert_eq!(suffix.body, data[size - 500..], "suffix of layer {i}");
    }
    assert_eq!(hub.count(Route::BlobGet), SIZES.len() + 1, "pulled once");
}

#[test]
fn a_tag_purged_or_replaced_by_another_process_is_not_answered_from_memory() {
    let hub = FakeHub::start();
    let first = hub.add_image("library/hot", "v1", &[100], 1802);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = "/v2/library/hot/manifests/v1";
    let get = || request(&serve.addr, "GET", path, &[]);
    assert_eq!(get().header("x-dpx-cache"), Some("miss"));
    dpx.wait_stored("library/hot", "v1", &[]);
    for _ in 0..3 {
        let hit = get();
        assert_eq!(hit.header("x-dpx-cache"), Some("hit"));
        assert_eq!(hit.header("docker-content-digest"), Some(first.as_str()));
    }

    // Purged by another process: fetched again, not answered from memory.
    let out = dpx.ok(&["purge", "--all", "--yes"]);
    assert!(out.contains("removed 1 tags"), "{out}");
    hub.reset_counts();
    let after = get();
    assert_eq!(after.status, 200);
    assert_eq!(after.header("x-dpx-cache"), Some("miss"));
    assert_eq!(hub.count(Route::ManifestGet), 1);
    assert_eq!(format!("sha256:{}", sha256_hex(&after.body)), first);
    assert_eq!(get().header("x-dpx-cache"), Some("hit"));

    // Moved by another process's pull: the new record is what is served.
    let second = hub.add_image("library/hot", "v1", &[200], 1803);
    dpx.wait_stored("library/hot", "v1", &[]);
    let out = dpx.ok(&["purge", "--all", "--yes"]);
    assert!(out.contains("removed 1 tags"), "{out}");
    dpx.ok(&["-q", "pull", "library/hot:v1"]);
    hub.reset_counts();
    let moved = get();
    assert_eq!(moved.header("x-dpx-cache"), Some("hit"));
    assert_eq!(moved.header("docker-content-digest"), Some(second.as_str()));
    assert_eq!(format!("sha256:{}", sha256_hex(&moved.body)), second);
    assert_eq!(hub.count(Route::ManifestGet), 0, "served from the cache");

    // A manifest removed by hand under a tag record that stays: no dpx
    // process signals it (the cache's change counter), so memory may answer
    // for up to a second (with the verified bytes); after that it is not.
    assert_eq!(get().header("x-dpx-cache"), Some("hit"));
    let hex = second.trim_start_matches("sha256:");
    std::fs::remove_file(dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex))
        .expect("remove the manifest blob");
    std::thread::sleep(std::time::Duration::from_millis(1300));
    hub.reset_counts();
    let refetched = get();
    assert_eq!(refetched.header("x-dpx-cache"), Some("miss"));
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn every_request_log_line_is_written_before_serve_exits_on_sigterm() {
    let hub = FakeHub::start();
    let data = noise(1804, 1_000_000);
    let digest = hub.add_blob(data.clone());
    let dpx = Dpx::new(&hub.url());
    let mut serve = dpx.serve();
    let n = crate::support::scaled(300, 5_000);
    for i in 0..n {
        let r = request(&serve.addr, "GET", &format!("/v2/?line={i}"), &[]);
        assert_eq!(r.status, 200);
    }
    // Responses still in flight at SIGTERM: their lines are logged while
    // serve drains, just before it exits.
    hub.set_fault(Fault::SlowBody(Duration::from_millis(20)));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (addr, path) = (serve.addr.clone(), format!("/v2/library/x/blobs/{digest}"));
            std::thread::spawn(move || request(&addr, "GET", &path, &[]))
        })
        .collect();
    wait_for("the download to start", Duration::from_secs(20), || {
        !dpx.tmp_is_empty()
    });
    let status = serve.stop();
    assert_eq!(status.code(), Some(0));
    for c in clients {
        assert_eq!(c.join().expect("client").body, data);
    }
    // The log reaches its file through a pipe and a thread: a line not
    // there in a few seconds was never written.
    let all_there = |text: &str| {
        (0..n).all(|i| text.contains(&format!("GET /v2/?line={i} 200")))
            && text
                .matches(&format!("GET /v2/library/x/blobs/{digest} 200 1000000B"))
                .count()
                == 6
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !all_there(&serve.log_text()) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = serve.log_text();
    assert!(all_there(&text), "lines missing from the log:\n{text}");
}
