//! `dpx export` / `dpx import` (OCI image layout archives) and
//! `dpx cache verify|path`, with real processes: the fake hub, skopeo and the
//! distribution registry, dockerd pulling through `dpx serve` offline.

use std::path::{Path, PathBuf};

use crate::support::assert_success;
use crate::support::distribution::shared_registry;
use crate::support::dpx::{Dpx, path_str};
use crate::support::engines::{engines, hub_image, hub_index};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route, noise};
use crate::support::layout::file_layer;

fn blob_file(dpx: &Dpx, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn blob_count(dpx: &Dpx) -> usize {
    std::fs::read_dir(dpx.cache.join("blobs/sha256"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|p| std::fs::read_dir(p.path()).map_or(0, |f| f.count()))
                .sum()
        })
        .unwrap_or(0)
}

fn tag_files(dpx: &Dpx) -> usize {
    fn walk(dir: &Path) -> usize {
        std::fs::read_dir(dir).map_or(0, |d| {
            d.filter_map(Result::ok)
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        usize::from(p.parent().is_some_and(|d| d.ends_with("tags")))
                    }
                })
                .sum()
        })
    }
    walk(&dpx.cache.join("index"))
}

/// The archive's entries as (path, bytes).
fn read_tar(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(std::fs::File::open(path).expect("archive"));
    let mut out = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
        out.push((name, data));
    }
    out
}

/// Writes entries as a tar; a name is written raw (so `..` can be tested).
fn write_tar(path: &Path, entries: &[(String, Vec<u8>)]) {
    let mut b = tar::Builder::new(std::fs::File::create(path).expect("create"));
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().expect("gnu").name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(if name.ends_with('/') {
            tar::EntryType::Directory
        } else if name.ends_with("@link") {
            tar::EntryType::Symlink
        } else {
            tar::EntryType::Regular
        });
        h.set_cksum();
        b.append(&h, data.as_slice()).expect("append");
    }
    b.finish().expect("finish");
}

fn exported(hub: &FakeHub, repo: &str, seed: u64) -> (Dpx, String, PathBuf) {
    let digest = hub.add_image(repo, "v1", &[300_000, 1_000], seed);
    export_pulled(hub, repo, digest)
}

/// Like `exported`, with layers an engine can unpack.
fn exported_runnable(hub: &FakeHub, repo: &str, seed: u64) -> (Dpx, String, PathBuf) {
    let layers = vec![
        file_layer("hello", &noise(seed, 150_000)),
        file_layer("etc/motd", format!("image {seed}\n").as_bytes()),
    ];
    let digest = hub_image(hub, repo, Some("v1"), "amd64", &layers);
    export_pulled(hub, repo, digest)
}

fn export_pulled(hub: &FakeHub, repo: &str, digest: String) -> (Dpx, String, PathBuf) {
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", &format!("{repo}:v1")]);
    let file = dpx.dir.path().join("out.tar");
    dpx.ok(&["export", "-o", path_str(&file), &format!("{repo}:v1")]);
    (dpx, digest, file)
}

#[test]
fn export_writes_an_oci_layout_that_skopeo_copies_into_a_registry() {
    let hub = FakeHub::start();
    let (_dpx, digest, file) = exported_runnable(&hub, "library/exportskopeo", 11);
    let entries = read_tar(&file);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"oci-layout") && names.contains(&"index.json"));
    let index: serde_json::Value = serde_json::from_slice(
        &entries
            .iter()
            .find(|(n, _)| n == "index.json")
            .expect("index")
            .1,
    )
    .expect("json");
    let entry = &index["manifests"][0];
    assert_eq!(entry["digest"], digest.as_str());
    let name = "docker.io/library/exportskopeo:v1";
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"],
        name
    );
    assert_eq!(entry["annotations"]["io.containerd.image.name"], name);

    let reg = shared_registry();
    let out = std::process::Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
        .arg(format!("oci-archive:{}:{name}", file.display()))
        .arg(format!("docker://{}/exportskopeo:v1", reg.host))
        .output()
        .expect("skopeo");
    assert_success(&out, "skopeo copy oci-archive:");
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
        .arg(format!("docker://{}/exportskopeo:v1", reg.host))
        .output()
        .expect("skopeo inspect");
    assert_success(&out, "skopeo inspect");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);

    // podman load reads it too, under the full name.
    let work = tempfile::tempdir().expect("tempdir");
    let podman = |args: &[&str]| {
        std::process::Command::new("podman")
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(work.path().join("root"))
            .arg("--runroot")
            .arg(work.path().join("runroot"))
            .args(args)
            .output()
            .expect("podman")
    };
    assert_success(&podman(&["load", "-i", path_str(&file)]), "podman load");
    let out = podman(&["image", "inspect", "--format", "{{.Digest}}", name]);
    assert_success(&out, "podman image inspect");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), digest);
}

#[test]
fn export_of_an_image_not_cached_names_it_and_writes_nothing() {
    let hub = FakeHub::start();
    let (dpx, _, _) = exported(&hub, "library/exportpart", 12);
    let file = dpx.dir.path().join("none.tar");
    let out = dpx.run(&[
        "export",
        "-o",
        path_str(&file),
        "library/exportpart:v1",
        "other:v2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("docker.io/library/other:v2 is not fully cached"),
        "{err}"
    );
    assert!(err.contains("dpx pull docker.io/library/other:v2"), "{err}");
    assert!(!file.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dpx.dir.path())
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".dpx-export"))
        .collect();
    assert!(leftovers.is_empty(), "temp file left: {leftovers:?}");
    assert_eq!(hub.count(Route::ManifestGet), 1, "export uses no network");
}

#[test]
fn import_then_serve_answers_within_the_ttl_and_stale_with_the_upstream_down() {
    let hub = FakeHub::start();
    let (_src, digest, file) = exported(&hub, "library/importserve", 13);
    // A runner whose upstream is down, with tags stale at once (TTL 0).
    let offline = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let out = offline.json(&["import", path_str(&file)]);
    assert_eq!(out["images"][0]["name"], "docker.io/library/importserve:v1");
    assert_eq!(out["blobs_added"], 4, "config, two layers, manifest");
    assert_eq!(offline.assert_store_consistent(), 4);
    hub.set_fault(Fault::Outage);
    hub.reset_counts();
    let mut serve = offline.serve();
    let addr = serve.url().trim_start_matches("http://").to_string();
    let r = request(&addr, "GET", "/v2/library/importserve/manifests/v1", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    assert_eq!(r.header("docker-content-digest"), Some(digest.as_str()));
    assert!(
        serve.log_shows("stale"),
        "served stale with the upstream down"
    );
    serve.stop();

    // Within the TTL: nothing upstream at all.
    let fresh = Dpx::new(&hub.url());
    fresh.ok(&["import", path_str(&file)]);
    hub.set_fault(Fault::None);
    hub.reset_counts();
    let mut serve = fresh.serve();
    let addr = serve.url().trim_start_matches("http://").to_string();
    let r = request(&addr, "GET", "/v2/library/importserve/manifests/v1", &[]);
    assert_eq!(r.status, 200, "{}", r.body_text());
    serve.stop();
    assert_eq!(
        hub.count(Route::ManifestHead) + hub.count(Route::ManifestGet),
        0
    );
}

#[test]
fn import_refuses_a_corrupt_or_unsafe_archive_and_adds_nothing() {
    let hub = FakeHub::start();
    let (_src, digest, file) = exported(&hub, "library/importbad", 14);
    let layer = hub.layers(&digest)[0].clone();
    let entries = read_tar(&file);
    let target = Dpx::new(&hub.url());
    let bad = target.dir.path().join("bad.tar");
    let check_refused = |entries: &[(String, Vec<u8>)], needle: &str| {
        write_tar(&bad, entries);
        let out = target.run(&["import", path_str(&bad)]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(needle) && err.contains("nothing was imported"),
            "{err}"
        );
        assert_eq!(blob_count(&target), 0, "no blob added");
        assert_eq!(tag_files(&target), 0, "no tag added");
        assert!(target.tmp_is_empty(), "staged files removed");
    };
    let mut corrupt = entries.clone();
    let hex = layer.trim_start_matches("sha256:");
    let (_, data) = corrupt
        .iter_mut()
        .find(|(n, _)| n.ends_with(hex))
        .expect("layer in archive");
    data[1000] ^= 0xff;
    check_refused(&corrupt, &format!("blob {layer} in the archive is corrupt"));

    let mut climbing = entries.clone();
    climbing.push(("../escape".into(), b"x".to_vec()));
    check_refused(&climbing, "climbs out");

    let mut link = entries.clone();
    link.push(("blobs/sha256/@link".into(), Vec::new()));
    check_refused(&link, "has a link");

    let mut sized = entries.clone();
    let (_, index) = sized
        .iter_mut()
        .find(|(n, _)| n == "index.json")
        .expect("index");
    let mut value: serde_json::Value = serde_json::from_slice(index).expect("json");
    let size = value["manifests"][0]["size"].as_u64().expect("size");
    value["manifests"][0]["size"] = (size + 1).into();
    *index = value.to_string().into_bytes();
    check_refused(&sized, "its descriptor says");

    let mut missing = entries.clone();
    missing.retain(|(n, _)| !n.ends_with(hex));
    check_refused(&missing, "does not contain it");

    let mut named = entries.clone();
    let (_, index) = named
        .iter_mut()
        .find(|(n, _)| n == "index.json")
        .expect("index");
    *index = String::from_utf8_lossy(index)
        .replace("docker.io/library/importbad:v1", "docker.io/../../etc:v1")
        .into_bytes();
    check_refused(&named, "image name");

    // The same entries, untouched, through the test's own tar writer: imported.
    let out = target.run(&["import", path_str(&dpx_tar(&target, &entries))]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn dpx_tar(dpx: &Dpx, entries: &[(String, Vec<u8>)]) -> PathBuf {
    let path = dpx.dir.path().join("good.tar");
    write_tar(&path, entries);
    path
}

#[test]
fn cache_verify_removes_a_corrupted_blob_keep_only_reports() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/verifyme", "v1", &[200_000], 15);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "library/verifyme:v1"]);
    assert_eq!(dpx.ok(&["cache", "path"]).trim(), path_str(&dpx.cache));
    assert!(dpx.run(&["cache", "verify"]).status.success());

    let layer = hub.layers(&digest)[0].clone();
    let path = blob_file(&dpx, &layer);
    let mut data = std::fs::read(&path).expect("blob");
    data[5] ^= 1;
    std::fs::write(&path, &data).expect("flip a byte");

    let out = dpx.run(&["cache", "verify", "--keep"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "kept blob {}",
            layer.trim_start_matches("sha256:")
        )),
        "{err}"
    );
    assert!(path.exists(), "--keep removes nothing");
    assert!(
        err.contains(": 1 problem, nothing removed (--keep)"),
        "{err}"
    );

    let report = dpx.json(&["cache", "verify"]);
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["kind"], "blob");
    assert_eq!(report["problems"][0]["removed"], true);
    assert!(!path.exists(), "the corrupt blob is gone");

    // `cache ls` says the image is incomplete now, in text and JSON; when it
    // was last used is a short relative time, and RFC 3339 in JSON.
    let ls = dpx.json(&["cache", "ls"]);
    assert_eq!(ls[0]["complete"], false, "{ls:#}");
    let used = ls[0]["last_used"].as_str().expect("last_used is a string");
    let used = humantime::parse_rfc3339(used).expect("RFC 3339");
    assert!(used.elapsed().expect("in the past") < std::time::Duration::from_secs(600));
    let out = dpx.run(&["cache", "ls"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let row = text.lines().nth(1).expect("a row");
    assert!(row.contains("linux/amd64 (incomplete)"), "{text}");
    assert!(row.ends_with(" ago") || row.ends_with("just now"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("dpx pull IMAGE"));

    let out = dpx.run(&["cache", "verify"]);
    assert!(out.status.success(), "clean now");
    // The next pull fetches the layer again and the cache is whole.
    dpx.ok(&["-q", "pull", "library/verifyme:v1"]);
    assert!(path.exists());
    assert_eq!(dpx.assert_store_consistent(), 3);
    assert_eq!(dpx.json(&["cache", "ls"])[0]["complete"], true);
}

#[test]
fn dockerd_pulls_an_imported_image_through_dpx_with_the_upstream_down() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let (_src, digest, file) = exported_runnable(&hub, "library/offlineapp", 16);
    let runner = Dpx::new(&hub.url());
    runner.ok(&["import", path_str(&file)]);
    hub.set_fault(Fault::Outage);
    hub.reset_counts();
    let mut serve = runner.serve_on(&eng.mirror_addr, &[]);
    eng.docker_rmi("offlineapp:v1");
    let out = eng.docker_pull("offlineapp:v1");
    assert!(out.contains(&digest), "{out}");
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::BlobGet),
        0,
        "everything came from the imported cache"
    );
    serve.stop();
    eng.docker_rmi("offlineapp:v1");
}

/// The manifest digest `dpx serve` (with the upstream down) answers for a tag.
fn served_digest(dpx: &Dpx, repo: &str, tag: &str) -> String {
    let mut serve = dpx.serve();
    let addr = serve.url().trim_start_matches("http://").to_string();
    let r = request(&addr, "GET", &format!("/v2/{repo}/manifests/{tag}"), &[]);
    serve.stop();
    assert_eq!(r.status, 200, "{}", r.body_text());
    r.header("docker-content-digest")
        .unwrap_or_default()
        .to_string()
}

#[test]
fn multi_arch_exports_the_index_only_when_every_platform_is_cached() {
    let hub = FakeHub::start();
    let layers = |seed| vec![file_layer("f", &noise(seed, 10_000))];
    let index = hub_index(
        &hub,
        "library/exportmulti",
        "v1",
        &[("amd64", layers(17)), ("arm64", layers(18))],
    );

    // One platform cached: its image goes alone, under the name, and the user is told.
    let one = Dpx::new(&hub.url());
    one.ok(&["-q", "pull", "--platform", "linux/arm64", "exportmulti:v1"]);
    let file = one.dir.path().join("one.tar");
    let out = one.run(&["export", "-o", path_str(&file), "exportmulti:v1"]);
    assert_success(&out, "export");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only 1 of 2 platforms are cached (linux/arm64)"),
        "{err}"
    );
    // -o - writes the same (deterministic) archive to stdout.
    let out = one.run(&["export", "-o", "-", "exportmulti:v1"]);
    assert_success(&out, "export -o -");
    assert_eq!(out.stdout, std::fs::read(&file).expect("archive"));
    let out = one.run(&["--json", "export", "-o", "-", "exportmulti:v1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--json and -o - both want stdout"
    );
    let offline = Dpx::new(&hub.url());
    offline.ok(&["import", path_str(&file)]);
    hub.set_fault(Fault::Outage);
    let arm = served_digest(&offline, "library/exportmulti", "v1");
    assert_ne!(arm, index, "the platform image, not the index");
    assert_eq!(
        offline.assert_store_consistent(),
        3,
        "manifest, config, layer"
    );

    // Every platform cached: the original index bytes (same digest) and both images.
    hub.set_fault(Fault::None);
    let all = Dpx::new(&hub.url());
    all.ok(&["-q", "pull", "--all-platforms", "exportmulti:v1"]);
    let file = all.dir.path().join("all.tar");
    all.ok(&["export", "-o", path_str(&file), "exportmulti:v1"]);
    let offline = Dpx::new(&hub.url());
    offline.ok(&["import", path_str(&file)]);
    hub.set_fault(Fault::Outage);
    assert_eq!(served_digest(&offline, "library/exportmulti", "v1"), index);
    assert_eq!(
        offline.assert_store_consistent(),
        7,
        "index, 2 x (manifest, config, layer)"
    );
}

#[test]
fn import_of_a_tar_with_a_hostile_header_prints_no_terminal_escapes() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let bad = dpx.dir.path().join("hostile.tar");
    let name = format!(
        "\u{1b}]0;pwned\u{7}\u{1b}[2J{}",
        "\u{1b}[1mA".repeat(20_000)
    );
    let mut bytes = Vec::new();
    // A GNU long name (100 KB, escapes in it) for the next entry...
    let mut long = tar::Header::new_gnu();
    long.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
    long.set_entry_type(tar::EntryType::GNULongName);
    long.set_size(name.len() as u64 + 1);
    long.set_mode(0o644);
    long.set_cksum();
    bytes.extend_from_slice(long.as_bytes());
    bytes.extend_from_slice(name.as_bytes());
    bytes.push(0);
    bytes.resize(bytes.len().div_ceil(512) * 512, 0);
    // ...whose header's size field is escapes, not octal digits.
    let mut entry = tar::Header::new_gnu();
    entry.as_gnu_mut().expect("gnu").name[..4].copy_from_slice(b"\x1b[2J");
    entry.set_mode(0o644);
    entry.as_gnu_mut().expect("gnu").size = *b"\x1b]0;pwn\x07\x1b[2J";
    entry.set_cksum();
    bytes.extend_from_slice(entry.as_bytes());
    bytes.extend_from_slice(&[0; 1024]);
    std::fs::write(&bad, &bytes).expect("write");
    let out = dpx.run(&["import", path_str(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(
        !err.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character was printed: {err:?}"
    );
    assert!(err.len() < 8 * 1024, "{} bytes printed", err.len());
    assert_eq!(blob_count(&dpx), 0);
}
