//! The cache on a small tmpfs the test mounts: a download that does not fit
//! fails clearly and leaves nothing behind, cached content is still served
//! while the disk is full, everything recovers once space is freed, and
//! `max_size` eviction under load never takes a blob from a client reading it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use crate::crash::{assert_verify_clean, leftovers, pull_through, try_get};
use crate::pull::mount;
use crate::support::dpx::{Dpx, path_str, sha256_hex};
use crate::support::hub::{FakeHub, noise};

/// Mounting a tmpfs needs root (tests run as root, CI too): without it the
/// test fails under `DPX_TEST_REQUIRE_ALL=1`, and says it skipped otherwise.
fn can_mount() -> bool {
    if rustix::process::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var_os("DPX_TEST_REQUIRE_ALL").is_none(),
        "this test mounts a tmpfs and needs root (DPX_TEST_REQUIRE_ALL=1 forbids skipping it)"
    );
    eprintln!("SKIPPED: this test mounts a tmpfs and needs root");
    false
}

/// Bytes still free on the file system holding `dir`.
fn free_bytes(dir: &std::path::Path) -> u64 {
    let s = rustix::fs::statvfs(dir).expect("statvfs");
    s.f_bavail * s.f_frsize
}

/// Fills the file system holding `dir` until `leave` bytes are free.
fn fill_leaving(dir: &std::path::Path, leave: u64) -> std::path::PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let mut left = free_bytes(dir).saturating_sub(leave);
    let chunk = vec![0u8; 64 * 1024];
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("write the filler");
        left -= n as u64;
    }
    f.sync_all().expect("sync the filler");
    path
}

#[test]
fn a_download_that_does_not_fit_fails_clearly_leaves_nothing_serving_goes_on_and_all_recovers() {
    if !can_mount() {
        return;
    }
    let hub = FakeHub::start();
    let fits = hub.add_image("library/fits", "v1", &[200_000], 1901);
    let huge = hub.add_image("library/huge", "v1", &[3_000_000], 1902);
    let huge_layer = hub.layers(&huge).remove(0);
    // An archive of a 3 MB image, exported by a cache elsewhere.
    let bulky = hub.add_image("library/bulky", "v1", &[3_000_000], 1903);
    let bulky_layer = hub.layers(&bulky).remove(0);
    let source = Dpx::new(&hub.url());
    source.ok(&["-q", "pull", "bulky:v1"]);
    let archive = source.dir.path().join("bulky.tar");
    source.ok(&["export", "-o", path_str(&archive), "bulky:v1"]);

    let dpx = Dpx::new(&hub.url());
    let _m = mount(&["-t", "tmpfs", "-o", "size=8m", "tmpfs"], &dpx.cache);
    dpx.ok(&["-q", "pull", "fits:v1"]);
    let serve = dpx.serve();
    // Room for manifests, records and a part of a layer: not a 3 MB one.
    let filler = fill_leaving(&dpx.cache, 1_000_000);

    // A pull that does not fit: says the disk is full and what to do.
    let out = dpx.run(&["pull", "huge:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("dpx pull on a full disk says:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    assert!(err.contains("free space"), "what to do: {err}");
    assert!(!dpx.has_blob(&huge_layer), "no partial layer stored");
    // An import that does not fit: the same, and nothing of it is kept.
    let out = dpx.run(&["import", path_str(&archive)]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("dpx import on a full disk says:\n{err}");
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    assert!(err.contains("free space"), "what to do: {err}");
    assert!(err.contains("nothing was imported"), "{err}");
    assert!(!dpx.has_blob(&bulky_layer));
    assert!(!dpx.has_blob(&bulky), "no manifest of a refused import");
    assert!(
        !dpx.cache.join("index/docker.io/library/bulky").exists(),
        "no tag record of a refused import"
    );
    // serve: a blob that cannot be stored is a 503 that says why or, once
    // its first bytes were stored, a 200 cut off before its last byte (never
    // a complete one); cached images are still served whole.
    let got = try_get(
        &serve.addr,
        &format!("/v2/library/huge/blobs/{huge_layer}"),
        &[],
    )
    .expect("an answer");
    let body = String::from_utf8_lossy(&got.body);
    match got.status {
        200 => assert!(!got.complete, "a blob that does not fit was sent whole"),
        503 => assert!(
            body.contains("disk holding the dpx cache is full") && body.contains("dpx purge"),
            "{body}"
        ),
        other => panic!("{other}: {body}"),
    }
    for _ in 0..3 {
        pull_through(&serve.addr, "library/fits", "v1", &fits)
            .unwrap_or_else(|e| panic!("a cached image on a full disk: {e:?}"));
    }
    // Nothing partial is left: no temp file (the live serve holds no
    // download), and what is stored checks out.
    let left: Vec<String> = leftovers(&dpx, &[serve.child.id()])
        .into_iter()
        .filter(|l| l.starts_with("tmp/"))
        .collect();
    assert!(left.is_empty(), "left behind on the full disk: {left:?}");
    assert_verify_clean(&dpx, "on the full disk");

    // Space freed: the same pull, import and request succeed.
    std::fs::remove_file(filler).expect("free space");
    let v = dpx.json(&["pull", "huge:v1"]);
    assert_eq!(
        v["images"][0]["digest"].as_str(),
        Some(huge.as_str()),
        "{v}"
    );
    let v = dpx.json(&["import", path_str(&archive)]);
    assert_eq!(
        v["images"][0]["digest"].as_str(),
        Some(bulky.as_str()),
        "{v}"
    );
    pull_through(&serve.addr, "library/huge", "v1", &huge)
        .unwrap_or_else(|e| panic!("after space was freed: {e:?}"));
    pull_through(&serve.addr, "library/bulky", "v1", &bulky)
        .unwrap_or_else(|e| panic!("after space was freed: {e:?}"));
    assert_verify_clean(&dpx, "after space was freed");
}

/// A client reading `path` slowly: it reads the head and the first bytes,
/// says so on `started`, waits for `go`, then reads the rest a little at a
/// time. Returns the head and the body.
fn slow_reader(
    addr: String,
    path: String,
    range: Option<String>,
    started: mpsc::Sender<()>,
    go: mpsc::Receiver<()>,
) -> std::thread::JoinHandle<(String, Vec<u8>)> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let range = range.map_or(String::new(), |r| format!("Range: {r}\r\n"));
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{range}Connection: close\r\n\r\n"
        )
        .expect("send");
        let mut raw = vec![0; 64 * 1024];
        s.read_exact(&mut raw).expect("the first bytes");
        started.send(()).expect("started");
        go.recv().expect("go");
        let mut buf = vec![0; 64 * 1024];
        loop {
            match s.read(&mut buf).expect("read the rest") {
                0 => break,
                n => raw.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        (head, raw[split..].to_vec())
    })
}

#[test]
fn max_size_eviction_under_load_never_removes_a_blob_a_client_is_reading() {
    if !can_mount() {
        return;
    }
    let hub = FakeHub::start();
    const BIG: usize = 8_000_000;
    const SEED: u64 = 1910;
    let big = hub.add_image("library/big", "v1", &[BIG], SEED);
    let layer = hub.layers(&big).remove(0);
    // What `add_image` made the layer of.
    let expected = noise(SEED * 1000, BIG);
    assert_eq!(format!("sha256:{}", sha256_hex(&expected)), layer);
    let small: Vec<(String, String)> = (0..4u64)
        .map(|i| {
            let repo = format!("library/small{i}");
            let digest = hub.add_image(&repo, "v1", &[1_500_000], SEED + 1 + i);
            (repo, digest)
        })
        .collect();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nmax_size = \"6MiB\"\n",
    );
    let _m = mount(&["-t", "tmpfs", "-o", "size=48m", "tmpfs"], &dpx.cache);
    let serve = dpx.serve();
    pull_through(&serve.addr, "library/big", "v1", &big).expect("cache the big image");

    // Two clients reading the big cached layer, whole and from the middle.
    let path = format!("/v2/library/big/blobs/{layer}");
    let (started, started_rx) = mpsc::channel();
    let mut gos = Vec::new();
    let mut readers = Vec::new();
    for range in [None, Some("bytes=3000000-".to_string())] {
        let (go, go_rx) = mpsc::channel();
        gos.push(go);
        readers.push(slow_reader(
            serve.addr.clone(),
            path.clone(),
            range,
            started.clone(),
            go_rx,
        ));
    }
    for _ in 0..readers.len() {
        started_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("a reader started");
    }

    // Load: other images pulled cold through serve, and purges to the budget,
    // at once; then one more purge once they are all stored.
    let pullers: Vec<_> = small
        .iter()
        .map(|(repo, digest)| {
            let (addr, repo, digest) = (serve.addr.clone(), repo.clone(), digest.clone());
            std::thread::spawn(move || pull_through(&addr, &repo, "v1", &digest))
        })
        .collect();
    for _ in 0..3 {
        dpx.ok(&["purge", "--max-size", "6MiB"]);
    }
    for p in pullers {
        p.join()
            .expect("puller")
            .unwrap_or_else(|e| panic!("a client under eviction: {e:?}"));
    }
    let out = dpx.ok(&["purge", "--max-size", "6MiB"]);
    assert!(
        !dpx.has_blob(&layer),
        "the eviction was to take the big layer while it was read: {out}\n{}",
        serve.log_text()
    );

    // The readers still get every byte, right.
    for go in gos {
        go.send(()).expect("go");
    }
    let mut results = readers.into_iter().map(|r| r.join().expect("reader"));
    let (head, body) = results.next().expect("whole");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-dpx-cache: hit"),
        "{head}"
    );
    assert_eq!(body.len(), BIG, "the whole blob");
    assert_eq!(format!("sha256:{}", sha256_hex(&body)), layer);
    let (head, body) = results.next().expect("ranged");
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(body == expected[3_000_000..], "the range's bytes");
    // The evicted image comes back on the next request, and the store checks out.
    pull_through(&serve.addr, "library/big", "v1", &big).expect("the big image again");
    assert_verify_clean(&dpx, "after eviction under load");
}
