//! `dpx pull` / `dpx prefetch` against the CNCF distribution registry, with
//! images written as OCI layouts and pushed by skopeo.

use std::time::Instant;

use crate::support::distribution::shared_registry;
use crate::support::dpx::Dpx;
use crate::support::layout::{
    random_layer, skopeo_inspect_digest, skopeo_push, write_image, write_index,
};

#[test]
fn pulls_a_single_platform_image_pushed_by_skopeo() {
    let reg = shared_registry();
    let layout = tempfile::tempdir().expect("tempdir");
    write_image(
        layout.path(),
        "v1",
        &[random_layer(1, 200_000), random_layer(2, 30_000)],
        "amd64",
    );
    skopeo_push(
        layout.path(),
        "v1",
        &format!("{}/it-single/app:v1", reg.host),
        false,
    );
    let upstream = skopeo_inspect_digest(&format!("{}/it-single/app:v1", reg.host));

    let dpx = Dpx::with_registries(&[("docker.io", &reg.url)], "");
    let v = dpx.json(&["pull", "it-single/app:v1"]);
    assert_eq!(v["images"][0]["digest"], upstream.as_str(), "{v}");
    assert_eq!(v["images_failed"], 0);
    // manifest + config + 2 layers
    assert_eq!(dpx.assert_store_consistent(), 4);

    // Any registry host works through its config table (here: the same registry).
    let dpx2 = Dpx::with_registries(&[(&reg.host, &reg.url)], "");
    let v = dpx2.json(&["pull", &format!("{}/it-single/app:v1", reg.host)]);
    assert_eq!(v["images"][0]["digest"], upstream.as_str(), "{v}");
}

#[test]
fn pulls_the_host_platform_of_a_multi_arch_index_or_all_of_them() {
    let reg = shared_registry();
    let layout = tempfile::tempdir().expect("tempdir");
    write_index(
        layout.path(),
        "multi",
        &[
            ("amd64", vec![random_layer(10, 50_000)]),
            ("arm64", vec![random_layer(11, 60_000)]),
        ],
    );
    let name = format!("{}/it-multi/app:multi", reg.host);
    skopeo_push(layout.path(), "multi", &name, true);
    let upstream = skopeo_inspect_digest(&name);

    let dpx = Dpx::with_registries(&[("docker.io", &reg.url)], "");
    let v = dpx.json(&["pull", "--platform", "linux/amd64", "it-multi/app:multi"]);
    assert_eq!(v["images"][0]["digest"], upstream.as_str(), "{v}");
    assert_eq!(
        v["images"][0]["platforms"],
        serde_json::json!(["linux/amd64"])
    );
    // index + amd64 manifest + config + layer
    assert_eq!(dpx.assert_store_consistent(), 4);

    let v = dpx.json(&["pull", "--platform", "linux/arm64", "it-multi/app:multi"]);
    assert_eq!(
        v["images"][0]["platforms"],
        serde_json::json!(["linux/arm64"])
    );
    assert_eq!(v["blobs_fetched"], 2, "the arm64 config and layer: {v}");

    let v = dpx.json(&["pull", "--all-platforms", "it-multi/app:multi"]);
    assert_eq!(
        v["images"][0]["platforms"],
        serde_json::json!(["linux/amd64", "linux/arm64"])
    );
    assert_eq!(
        v["blobs_fetched"], 0,
        "both platforms are cached by now: {v}"
    );
    assert_eq!(dpx.assert_store_consistent(), 7);

    let out = dpx.run(&["pull", "--platform", "linux/s390x", "it-multi/app:multi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64"),
        "{err}"
    );
}

/// Also the measurement behind the core issue's note: a cold and a warm
/// prefetch of 12 images that share base layers.
#[test]
fn prefetch_of_twelve_images_cold_then_warm() {
    let reg = shared_registry();
    let base = random_layer(500, 2_000_000);
    let mid = random_layer(501, 1_000_000);
    let mut refs = Vec::new();
    for i in 0..12u64 {
        let layout = tempfile::tempdir().expect("tempdir");
        let mut layers = vec![base.clone()];
        if i % 2 == 0 {
            layers.push(mid.clone());
        }
        layers.push(random_layer(600 + i, 300_000));
        write_image(layout.path(), "v1", &layers, "amd64");
        skopeo_push(
            layout.path(),
            "v1",
            &format!("{}/it-prefetch/svc{i}:v1", reg.host),
            false,
        );
        refs.push(format!("it-prefetch/svc{i}:v1"));
    }
    let dpx = Dpx::with_registries(&[("docker.io", &reg.url)], "");
    let list = dpx.dir.path().join("images.txt");
    std::fs::write(&list, refs.join("\n")).expect("write list");
    let list = list.to_str().expect("path");

    let t = Instant::now();
    let cold = dpx.json(&["prefetch", "-j", "4", "-f", list]);
    let cold_s = t.elapsed().as_secs_f64();
    assert_eq!(cold["images_ok"], 12, "{cold}");
    // base + mid + 12 own layers + 12 configs
    assert_eq!(cold["blobs_fetched"], 26, "{cold}");
    let t = Instant::now();
    let warm = dpx.json(&["prefetch", "-j", "4", "-f", list]);
    let warm_s = t.elapsed().as_secs_f64();
    assert_eq!(warm["blobs_fetched"], 0, "{warm}");
    assert_eq!(warm["blobs_cached"], 26, "{warm}");
    dpx.assert_store_consistent();
    eprintln!(
        "MEASURE prefetch 12 images: cold {cold_s:.3}s {} bytes; warm {warm_s:.3}s {} bytes",
        cold["bytes_fetched"], warm["bytes_fetched"]
    );
}
