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
