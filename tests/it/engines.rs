//! The real engines pulling through `dpx serve`: dockerd (mirror and prefix
//! mode), containerd's ctr (hosts.toml, `ns=`), podman (registries.conf) and skopeo.

use crate::support::assert_success;
use crate::support::dpx::Dpx;
use crate::support::engines::{engines, hub_image, hub_index, podman_pull};
use crate::support::hub::noise;
use crate::support::hub::{FakeHub, Fault, Route};
use crate::support::layout::{Layer, file_layer};

fn layers(seed: u64) -> Vec<Layer> {
    vec![
        file_layer("hello", &noise(seed, 200_000)),
        file_layer("etc/motd", format!("image {seed}\n").as_bytes()),
    ]
}

fn upstream_requests(hub: &FakeHub) -> (usize, usize, usize) {
    (
        hub.count(Route::ManifestGet),
        hub.count(Route::ManifestHead),
        // Each blob GET is one request to the hub (then one to its CDN).
        hub.count(Route::BlobGet),
    )
}

#[test]
fn dockerd_pulls_through_the_mirror_cache_ttl_head_and_outage() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let digest = hub_image(&hub, "library/dockerapp", Some("v1"), "amd64", &layers(1));
    hub_image(&hub, "library/uncached", Some("v1"), "amd64", &layers(2));
    let dpx = Dpx::new(&hub.url());
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
    eng.docker_rmi("dockerapp:v1");

    let out = eng.docker_pull("dockerapp:v1");
    assert!(out.contains(&digest), "{out}");
    let (gets, _, blobs) = upstream_requests(&hub);
    assert_eq!(gets, 1, "one manifest GET upstream for the first pull");
    assert_eq!(blobs, 3, "config and two layers, once each");

    // Ten pulls (each after `docker rmi`); returns what they cost upstream.
    let ten_pulls = || {
        hub.reset_counts();
        for _ in 0..10 {
            eng.docker_rmi("dockerapp:v1");
            eng.docker_pull("dockerapp:v1");
        }
        upstream_requests(&hub)
    };

    // Within the TTL: nothing at all upstream.
    assert_eq!(ten_pulls(), (0, 0, 0), "ten pulls within the TTL");
    assert!(serve.log_shows("/v2/library/dockerapp/manifests/v1 200"));
    serve.stop();

    // After the TTL (0 here): one HEAD per pull, no GET.
    let dpx0 = Dpx {
        dir: tempfile::tempdir().expect("tempdir"),
        cache: dpx.cache.clone(),
        config: dpx.dir.path().join("ttl0.toml"),
    };
    std::fs::write(
        &dpx0.config,
        format!(
            "[registries.\"docker.io\"]\nurl = \"{}\"\n[cache]\ntag_ttl = \"0\"\n",
            hub.url()
        ),
    )
    .expect("config");
    let mut serve = dpx0.serve_on(&eng.mirror_addr, &[]);
    assert_eq!(
        ten_pulls(),
        (0, 10, 0),
        "after the TTL each pull costs one HEAD, no GET"
    );

    // Upstream down: the cached tag still pulls, the uncached one fails.
    hub.set_fault(Fault::Outage);
    eng.docker_rmi("dockerapp:v1");
    eng.docker_pull("dockerapp:v1");
    assert!(serve.log_shows("stale"), "the stale answer is logged");
    let out = eng.docker(&["pull", "uncached:v1"]);
    assert!(!out.status.success());
    // In mirror mode dockerd falls back to Docker Hub and prints Hub's error;
    // dpx's message is in dockerd's log of the mirror attempt.
    assert!(
        eng.dockerd_log()
            .contains("not cached and the upstream registry is unavailable")
    );
    serve.stop();
}

#[test]
fn dockerd_prefix_mode_multi_arch_and_visible_errors() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let ghcr = FakeHub::start();
    let index = hub_index(
        &hub,
        "library/multi",
        "v1",
        &[("amd64", layers(3)), ("arm64", layers(4))],
    );
    hub_image(&ghcr, "some/app", Some("1.0"), "amd64", &layers(5));
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url()), ("ghcr.io", &ghcr.url())], "");
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);

    // A multi-arch OCI index: docker takes the amd64 image.
    eng.docker_rmi("multi:v1");
    let out = eng.docker_pull("multi:v1");
    assert!(out.contains(&index), "{out}");
    let inspect = eng.docker(&[
        "image",
        "inspect",
        "--format",
        "{{.Architecture}}",
        "multi:v1",
    ]);
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), "amd64");

    // Prefix mode: no engine configuration, just the dpx address in the name.
    let name = format!("{}/ghcr.io/some/app:1.0", eng.mirror_addr);
    eng.docker_rmi(&name);
    eng.docker_pull(&name);
    assert_eq!(ghcr.count(Route::ManifestGet), 1);
    assert_eq!(
        hub.count(Route::ManifestGet),
        2,
        "the index and the amd64 manifest, not the arm64 one"
    );

    // No fallback in prefix mode: dpx's message reaches the user.
    ghcr.set_fault(Fault::Outage);
    let out = eng.docker(&["pull", &format!("{}/ghcr.io/some/other:1", eng.mirror_addr)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not cached and the upstream registry is unavailable"),
        "{err}"
    );
    serve.stop();
}

#[test]
fn containerd_podman_and_skopeo_pull_through_dpx() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let digest = hub_image(&hub, "library/engines", Some("v1"), "amd64", &layers(6));
    let dpx = Dpx::new(&hub.url());
    let mut serve = dpx.serve_on(&eng.mirror_addr, &[]);
    let work = tempfile::tempdir().expect("tempdir");

    let out = eng.ctr_pull(
        &eng.mirror_addr,
        "docker.io/library/engines:v1",
        work.path(),
    );
    assert_success(&out, "ctr pull");
    assert!(
        serve.log_shows("ns=docker.io"),
        "containerd's mirror query reached dpx"
    );
    assert_eq!(hub.count(Route::ManifestGet), 1);

    hub.reset_counts();
    let out = podman_pull(
        &eng.mirror_addr,
        "docker.io/library/engines:v1",
        work.path(),
    );
    assert_success(&out, "podman pull");
    assert_eq!(
        upstream_requests(&hub),
        (0, 0, 0),
        "podman is served from the cache"
    );

    let oci = work.path().join("oci");
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false", "--preserve-digests"])
        .arg(format!("docker://{}/library/engines:v1", eng.mirror_addr))
        .arg(format!("oci:{}:v1", oci.display()))
        .output()
        .expect("skopeo");
    assert_success(&out, "skopeo copy");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).expect("index.json"))
            .expect("json");
    assert_eq!(
        index["manifests"][0]["digest"],
        digest.as_str(),
        "same digest as upstream"
    );
    serve.stop();
}
