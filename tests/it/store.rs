//! The cache under load and faults, with real processes: coalescing of
//! manifest fetches within and across processes, waiting for (and giving up
//! on) another dpx process, size limits, restarted downloads, a full disk.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::pull::mount;
use crate::support::dpx::{Dpx, sha256_hex, wait_for};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route, noise};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Starts a `dpx pull` whose layer download stalls halfway (`StallHalfway`),
/// so it holds that blob's lock; returns once its bytes are in tmp/.
fn stalled_holder(dpx: &Dpx, image: &str) -> Child {
    let child = dpx
        .command()
        .args(["-q", "pull", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the holder");
    let tmp = dpx.cache.join("tmp");
    wait_for(
        "the holder's partial download",
        Duration::from_secs(30),
        || {
            std::fs::read_dir(&tmp).is_ok_and(|d| {
                d.filter_map(Result::ok)
                    .any(|f| f.metadata().is_ok_and(|m| m.len() >= 64 * 1024))
            })
        },
    );
    child
}

fn wait_exit(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a child's stderr on a thread; lines arrive on the returned channel.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for a line containing `needle`; returns everything read so far.
fn wait_line(lines: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    loop {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(needle) {
                    return seen;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                assert!(
                    Instant::now() < deadline,
                    "no line with {needle:?}; stderr so far:\n{seen}"
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                panic!("exited without a line with {needle:?}; stderr:\n{seen}")
            }
        }
    }
}

#[test]
fn ctrl_c_while_another_dpx_holds_the_blob_exits_130_and_names_the_holder() {
    let hub = FakeHub::start();
    hub.add_image("library/held", "v1", &[3_000_000], 41);
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let mut holder = stalled_holder(&dpx, "held:v1");
    let mut waiter = dpx
        .command()
        .args(["pull", "held:v1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the waiter");
    let lines = stderr_lines(&mut waiter);
    wait_line(
        &lines,
        &format!(
            "waiting for dpx process {} which is downloading blob sha256:",
            holder.id()
        ),
    );
    let _ = std::process::Command::new("kill")
        .args(["-INT", &waiter.id().to_string()])
        .status();
    // A blocking wait for the lock would keep the process alive until the
    // holder finishes, which here is never (the upstream is stalled).
    let status = wait_exit(&mut waiter, "the waiting pull after SIGINT");
    assert_eq!(status.code(), Some(130));
    // The holder is untouched and finishes once the upstream goes on.
    hub.release();
    assert!(wait_exit(&mut holder, "the holder").success());
    dpx.assert_store_consistent();
    assert!(dpx.tmp_is_empty());
}

/// `registry/repo:tag` of every image `cache ls` lists.
fn listed(dpx: &Dpx) -> Vec<String> {
    let v = dpx.json(&["cache", "ls"]);
    v.as_array()
        .expect("ls is an array")
        .iter()
        .map(|i| format!("{}:{}", i["repository"], i["tag"]).replace('"', ""))
        .collect()
}

#[test]
fn starting_processes_never_delete_the_writes_of_a_pull_or_an_import_under_way() {
    let hub = FakeHub::start();
    hub.add_image("library/sweeper", "v1", &[1_000], 60);
    let pulled: Vec<String> = (0..4u64)
        .map(|i| {
            hub.add_image(&format!("library/busy{i}"), "v1", &[2_000, 3_000], 61 + i);
            format!("busy{i}:v1")
        })
        .collect();
    // An archive whose import stages a few MB in tmp/ for a while.
    let source = Dpx::new(&hub.url());
    hub.add_image("library/imported", "v1", &[4_000_000], 70);
    source.ok(&["-q", "pull", "imported:v1"]);
    let archive = source.dir.path().join("imported.tar");
    source.ok(&[
        "export",
        "-o",
        archive.to_str().expect("utf-8 path"),
        "imported:v1",
    ]);
    // Before the fix the first round lost a write; three keep it certain.
    for round in 0..3 {
        let dpx = Dpx::new(&hub.url());
        dpx.ok(&["-q", "pull", "sweeper:v1"]);
        let spawn = |args: &[&str]| {
            dpx.command()
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dpx")
        };
        let mut pull_args = vec!["-q", "pull"];
        pull_args.extend(pulled.iter().map(String::as_str));
        let mut pull = spawn(&pull_args);
        let mut import = spawn(&["import", archive.to_str().expect("utf-8 path")]);
        // Processes starting (and sweeping) while those two write.
        let mut starters = Vec::new();
        while matches!(pull.try_wait(), Ok(None)) || matches!(import.try_wait(), Ok(None)) {
            starters.push(spawn(&["-q", "pull", "sweeper:v1"]));
            if starters.len() >= 16 {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let stderr = |child: &mut Child| {
            let mut text = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut text);
            }
            (wait_exit(child, "dpx"), text)
        };
        let (pull_status, pull_err) = stderr(&mut pull);
        let (import_status, import_err) = stderr(&mut import);
        for mut s in starters {
            let (status, err) = stderr(&mut s);
            assert!(status.success(), "round {round}: a starting pull: {err}");
        }
        let ls = listed(&dpx);
        // Nothing here should fail; and an exit 0 means it is all cached.
        assert!(
            pull_status.success(),
            "round {round}: pull failed: {pull_err}"
        );
        assert!(
            import_status.success(),
            "round {round}: import failed: {import_err}"
        );
        let mut expected = pulled.clone();
        expected.push("imported:v1".into());
        for image in &expected {
            assert!(
                ls.iter().any(|l| l.ends_with(&format!("library/{image}"))),
                "round {round}: {image} exited 0 but is not in cache ls {ls:?}; pull: {pull_err}; import: {import_err}"
            );
        }
        assert!(dpx.assert_store_consistent() > 0);
    }
}

#[test]
fn serve_answers_503_naming_a_dpx_process_stuck_on_the_blob() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/stuck", "v1", &[3_000_000], 42);
    let layer = hub.layers(&manifest).remove(0);
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nlock_timeout = \"2s\"\n",
    );
    let mut holder = stalled_holder(&dpx, "stuck:v1");
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/stuck/blobs/{layer}"),
        &[],
    );
    assert_eq!(resp.status, 503, "{}", resp.body_text());
    assert!(
        resp.body_text()
            .contains(&format!("dpx process {}", holder.id())),
        "{}",
        resp.body_text()
    );
    hub.release();
    assert!(wait_exit(&mut holder, "the holder").success());
    // Once the holder is done, the blob is served from the cache.
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/stuck/blobs/{layer}"),
        &[],
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-dpx-cache"), Some("hit"));
}

#[test]
fn ten_cold_gets_of_one_manifest_by_digest_cost_one_upstream_get() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/bydigest", "v1", &[10], 43);
    // Slow enough that all ten overlap.
    hub.set_manifest_delay(Duration::from_millis(500));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let (addr, path) = (
                serve.addr.clone(),
                format!("/v2/library/bydigest/manifests/{digest}"),
            );
            std::thread::spawn(move || request(&addr, "GET", &path, &[]))
        })
        .collect();
    for c in clients {
        let resp = c.join().expect("client");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    }
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn serve_and_prefetch_fetch_a_tag_manifest_once_between_them() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/both", "v1", &[10], 44);
    // Whichever process asks first is still waiting for the upstream when
    // the other asks.
    hub.set_manifest_delay(Duration::from_millis(2000));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let prefetch = dpx
        .command()
        .args(["-q", "prefetch", "both:v1"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn prefetch");
    let resp = request(&serve.addr, "GET", "/v2/library/both/manifests/v1", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    let out = prefetch.wait_with_output().expect("prefetch");
    assert!(out.status.success());
    assert_eq!(
        hub.count(Route::ManifestGet),
        1,
        "one Docker Hub pull for both processes"
    );
    assert_eq!(
        hub.count(Route::ManifestHead),
        0,
        "the second process took the first one's fresh answer"
    );
}

#[test]
fn serve_and_pull_fetch_a_manifest_by_digest_once_between_them() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/bothdigest", "v1", &[10], 53);
    hub.set_manifest_delay(Duration::from_millis(2000));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let pull = dpx
        .command()
        .args(["-q", "pull", &format!("bothdigest@{digest}")])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn pull");
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/bothdigest/manifests/{digest}"),
        &[],
    );
    assert_eq!(resp.status, 200);
    assert!(pull.wait_with_output().expect("pull").status.success());
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn a_download_restarted_from_zero_keeps_its_streaming_client() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/restart", "v1", &[2_000_000], 45);
    let layer = hub.layers(&manifest).remove(0);
    // The blob path alone: no prefetch starts the download first.
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = false\n",
    );
    let serve = dpx.serve();
    let resp = request(&serve.addr, "GET", "/v2/library/restart/manifests/v1", &[]);
    assert_eq!(resp.status, 200);
    // The first body breaks off halfway; the retry's Range is ignored, so the
    // download starts over from byte 0 while the client is mid-stream. Slow
    // bodies, so the temp file can be watched as it grows.
    hub.set_fault_for(Fault::TruncatedBody, 1);
    hub.set_ignore_range(true);
    hub.set_body_pause(Duration::from_millis(10));
    let client = {
        let (addr, path) = (
            serve.addr.clone(),
            format!("/v2/library/restart/blobs/{layer}"),
        );
        std::thread::spawn(move || request(&addr, "GET", &path, &[]))
    };
    // Readers trust the byte count they were shown: the file must never shrink.
    let prefix = &layer.trim_start_matches("sha256:")[..12];
    let tmp = dpx.cache.join("tmp");
    let mut largest = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dpx.has_blob(&layer) {
        assert!(Instant::now() < deadline, "the download did not finish");
        let size = std::fs::read_dir(&tmp)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter(|f| f.file_name().to_string_lossy().starts_with(prefix))
            .filter_map(|f| f.metadata().ok())
            .map(|m| m.len())
            .max();
        if let Some(size) = size {
            assert!(
                size >= largest,
                "the temp file shrank from {largest} to {size}"
            );
            largest = size;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let resp = client.join().expect("client");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 2_000_000, "the client got the whole blob");
    assert_eq!(format!("sha256:{}", sha256_hex(&resp.body)), layer);
    assert_eq!(hub.count(Route::CdnBlobGet), 2, "cut off once, then whole");
    assert!(
        largest >= 1_000_000,
        "the first half was written: {largest}"
    );
    assert!(!serve.log_text().contains("shorter than expected"));
}

#[test]
fn an_endless_blob_of_unknown_size_stops_at_max_blob_size_and_is_not_retried() {
    let hub = FakeHub::start();
    let digest = hub.add_blob(noise(46, 100_000));
    // No Content-Length on the HEAD nor the GET, and a body that never ends.
    hub.set_fault(Fault::EndlessBody);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nmax_blob_size = \"1MiB\"\n",
    );
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/library/endless/blobs/{digest}"),
        &[],
    );
    assert!(resp.status >= 500, "{}", resp.status);
    assert!(
        resp.body_text().contains("larger than 1048576 bytes"),
        "{}",
        resp.body_text()
    );
    assert_eq!(hub.count(Route::BlobHead), 1, "the size was asked first");
    assert_eq!(
        hub.count(Route::BlobGet),
        1,
        "a refused body is not retried"
    );
    wait_for("the temp file to go", Duration::from_secs(10), || {
        dpx.tmp_is_empty()
    });
    assert!(!dpx.has_blob(&digest));
}

/// A GET read raw, tolerating a connection cut mid-body: (head, body bytes).
fn get_tolerant(addr: &str, path: &str) -> (String, usize) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    // A connection reset may take with it what was not read yet, the head
    // included: then there is no head and no body.
    match raw.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(split) => (
            String::from_utf8_lossy(&raw[..split]).into_owned(),
            raw.len() - split - 4,
        ),
        None => (String::new(), 0),
    }
}

#[test]
fn a_blob_longer_than_its_manifest_says_is_cut_at_that_size_without_a_head() {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/long", "v1", &[100_000], 47);
    let layer = hub.layers(&manifest).remove(0);
    // The blob path alone: no prefetch starts the download first.
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nprefetch_blobs = false\n",
    );
    let serve = dpx.serve();
    // The engine reads the manifest first: dpx learns the layer's size.
    let resp = request(&serve.addr, "GET", "/v2/library/long/manifests/v1", &[]);
    assert_eq!(resp.status, 200);
    hub.set_fault(Fault::EndlessBody);
    let (head, body) = get_tolerant(&serve.addr, &format!("/v2/library/long/blobs/{layer}"));
    assert!(
        !head.starts_with("HTTP/1.1 200") || body < 100_000,
        "never a whole 200 of a wrong blob: {head} / {body} bytes"
    );
    assert!(
        serve.log_shows("larger than 100000 bytes"),
        "{head} / {body} bytes\n{}",
        serve.log_text()
    );
    assert_eq!(hub.count(Route::BlobHead), 0, "the manifest gave the size");
    assert_eq!(
        hub.count(Route::BlobGet),
        1,
        "a refused body is not retried"
    );
    wait_for("the temp file to go", Duration::from_secs(10), || {
        dpx.tmp_is_empty()
    });
    assert!(!dpx.has_blob(&layer));
}

#[test]
fn pull_holds_an_endless_blob_to_its_manifest_size() {
    let hub = FakeHub::start();
    hub.add_image("library/longpull", "v1", &[50_000], 48);
    hub.set_fault(Fault::EndlessBody);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["pull", "longpull:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than"), "{err}");
    assert_eq!(
        hub.count(Route::BlobGet),
        2,
        "config and layer, each once: a refused body is not retried"
    );
    assert!(dpx.tmp_is_empty());
}

#[test]
fn a_head_of_a_cold_blob_is_answered_from_an_upstream_head() {
    let hub = FakeHub::start();
    let digest = hub.add_blob(noise(49, 50_000));
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "HEAD",
        &format!("/v2/library/headonly/blobs/{digest}"),
        &[],
    );
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("50000"));
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(hub.count(Route::BlobHead), 1);
    assert_eq!(hub.count(Route::BlobGet), 0, "no download for a HEAD");
    assert_eq!(hub.count(Route::CdnBlobGet), 0);
    assert!(!dpx.has_blob(&digest));
    let missing = format!("sha256:{}", "0".repeat(64));
    let resp = request(
        &serve.addr,
        "HEAD",
        &format!("/v2/library/headonly/blobs/{missing}"),
        &[],
    );
    assert_eq!(resp.status, 404);
}

#[test]
fn an_empty_media_type_sidecar_is_a_miss_and_is_written_again() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/side", "v1", &[10], 50);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let path = format!("/v2/library/side/manifests/{digest}");
    let resp = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(resp.header("content-type"), Some(OCI_MANIFEST));
    // What a crash between write and fsync could leave.
    let sidecar = dpx.cache.join(format!(
        "manifests/sha256/{}.json",
        digest.trim_start_matches("sha256:")
    ));
    // Written behind the answer: wait for it before spoiling it.
    wait_for("the sidecar", Duration::from_secs(10), || {
        std::fs::read_to_string(&sidecar).is_ok_and(|t| t == OCI_MANIFEST)
    });
    std::fs::write(&sidecar, "").expect("empty the sidecar");
    let resp = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(hub.count(Route::ManifestGet), 2, "fetched again");
    wait_for("the sidecar written again", Duration::from_secs(10), || {
        std::fs::read_to_string(&sidecar).is_ok_and(|t| t == OCI_MANIFEST)
    });
}

/// Fills the filesystem of `dir` with `name` until it is full.
fn fill(dir: &std::path::Path, name: &str) {
    let mut f = std::fs::File::create(dir.join(name)).expect("filler");
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn an_uncached_blob_on_a_full_disk_gets_503_saying_so_not_a_200_cut_off() {
    let hub = FakeHub::start();
    let big = hub.add_blob(noise(53, 1_000_000));
    let dpx = Dpx::new(&hub.url());
    let _m = mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &dpx.cache);
    let serve = dpx.serve();
    fill(&dpx.cache, "filler");
    let path = format!("/v2/library/full/blobs/{big}");
    let resp = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(resp.status, 503, "{}", resp.body_text());
    let body: serde_json::Value = serde_json::from_slice(&resp.body).expect("a JSON error body");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("disk holding the dpx cache is full"),
        "{body}"
    );
    assert!(serve.log_shows("ENOSPC"), "{}", serve.log_text());
    // Once there is room, the same request is served whole.
    std::fs::remove_file(dpx.cache.join("filler")).expect("free space");
    let resp = request(&serve.addr, "GET", &path, &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(sha256_hex(&resp.body), big.trim_start_matches("sha256:"));
}

#[test]
fn with_the_disk_full_a_cached_image_pulls_a_stale_tag_is_served_and_enospc_is_logged() {
    let hub = FakeHub::start();
    hub.add_image("library/full", "v1", &[10_000], 51);
    let big = hub.add_blob(noise(52, 3_000_000));
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let _m = mount(&["-t", "tmpfs", "-o", "size=2m", "tmpfs"], &dpx.cache);
    dpx.ok(&["pull", "full:v1"]);
    // Room for part of the big blob later, once the reserve is removed.
    std::fs::write(dpx.cache.join("reserve"), vec![0u8; 512 * 1024]).expect("reserve");
    // The next start sweeps the lock files this pull left, freeing their
    // pages: remove them now, so that the disk stays full.
    for lock in std::fs::read_dir(dpx.cache.join("locks")).expect("locks") {
        let lock = lock.expect("lock").path();
        if lock.extension().is_some_and(|e| e == "lock") {
            std::fs::remove_file(lock).expect("remove lock file");
        }
    }
    fill(&dpx.cache, "filler");

    let out = dpx.run(&["pull", "full:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("tag record not updated"), "{err}");

    let serve = dpx.serve();
    let resp = request(&serve.addr, "GET", "/v2/library/full/manifests/v1", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());

    // A blob download that runs out of space mid-stream.
    std::fs::remove_file(dpx.cache.join("reserve")).expect("free the reserve");
    hub.set_fault(Fault::SlowBody(Duration::from_millis(20)));
    let (head, body) = get_tolerant(&serve.addr, &format!("/v2/library/full/blobs/{big}"));
    assert!(
        !head.starts_with("HTTP/1.1 200") || body < 3_000_000,
        "{head} / {body} bytes"
    );
    assert!(serve.log_shows("ENOSPC"), "{}", serve.log_text());
    assert!(
        !serve.log_text().contains("client left"),
        "{}",
        serve.log_text()
    );
    assert!(!dpx.has_blob(&big));
}
