//! `dpx purge`, `dpx cache ls|du` and `[cache] max_size` with real processes:
//! purges racing a streaming client and a running prefetch, what each policy
//! removes and keeps, and that bad input or a planted symlink costs nothing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, SystemTime};

use crate::support::dpx::{Dpx, Serve, sha256_hex, wait_for};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};

const DAY: Duration = Duration::from_secs(86400);

fn blob_path(dpx: &Dpx, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex)
}

fn tag_path(dpx: &Dpx, repo: &str, tag: &str) -> PathBuf {
    dpx.cache
        .join("index/docker.io")
        .join(repo)
        .join("tags")
        .join(format!("{tag}.json"))
}

/// Adds `name:tag` to the hub as `library/name`; returns its manifest digest.
fn add_library_image(hub: &FakeHub, image: &str, layers: &[usize], seed: u64) -> String {
    let (name, tag) = image.split_once(':').expect("name:tag");
    hub.add_image(&format!("library/{name}"), tag, layers, seed)
}

/// A fake hub with the one image `name:tag` and a dpx that has pulled it;
/// returns its manifest digest too.
fn pulled(image: &str, layers: &[usize], seed: u64) -> (FakeHub, Dpx, String) {
    let hub = FakeHub::start();
    let manifest = add_library_image(&hub, image, layers, seed);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", image]);
    (hub, dpx, manifest)
}

/// Sets a file's last-use time (its mtime) to `age` ago.
fn age(path: &Path, age: Duration) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.set_modified(SystemTime::now() - age).expect("set mtime");
}

/// Ages an image: its tag record, manifest, config and layers.
fn age_image(dpx: &Dpx, hub: &FakeHub, repo: &str, tag: &str, manifest: &str, by: Duration) {
    age(&tag_path(dpx, repo, tag), by);
    for d in image_blobs(dpx, hub, manifest) {
        age(&blob_path(dpx, &d), by);
    }
}

/// The manifest, its config and its layers.
fn image_blobs(dpx: &Dpx, hub: &FakeHub, manifest: &str) -> Vec<String> {
    let bytes = std::fs::read(blob_path(dpx, manifest)).expect("manifest cached");
    let m: serde_json::Value = serde_json::from_slice(&bytes).expect("manifest json");
    let mut all = vec![
        manifest.to_string(),
        m["config"]["digest"].as_str().expect("config").to_string(),
    ];
    all.extend(hub.layers(manifest));
    all
}

/// Every path under the cache with its length and (for files) mtime; symlinks not followed.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime, bool)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir").flatten() {
            let m = std::fs::symlink_metadata(e.path()).expect("metadata");
            if m.is_dir() {
                stack.push(e.path());
            }
            // Directories' own mtimes move with the cache's write probe in tmp/.
            let mtime = if m.is_dir() {
                SystemTime::UNIX_EPOCH
            } else {
                m.modified().expect("mtime")
            };
            out.insert(e.path(), (m.len(), mtime, m.is_symlink()));
        }
    }
    out
}

/// A client's pull of `repo:v1` through serve: the manifest, then each of
/// `blobs`, every answer 200; returns the blobs' bodies.
fn pull_through(serve: &Serve, repo: &str, blobs: &[String]) -> Vec<Vec<u8>> {
    let m = request(&serve.addr, "GET", &format!("/v2/{repo}/manifests/v1"), &[]);
    assert_eq!(m.status, 200);
    blobs
        .iter()
        .map(|d| {
            let r = request(&serve.addr, "GET", &format!("/v2/{repo}/blobs/{d}"), &[]);
            assert_eq!(r.status, 200, "{d}");
            r.body
        })
        .collect()
}

fn tags(dpx: &Dpx) -> Vec<String> {
    let v = dpx.json(&["cache", "ls"]);
    v.as_array()
        .expect("ls is an array")
        .iter()
        .map(|i| {
            format!(
                "{}:{}",
                i["repository"].as_str().unwrap(),
                i["tag"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_purge_while_serve_streams_a_blob_leaves_the_client_every_byte() {
    let (hub, dpx, manifest) = pulled("stream:v1", &[8_000_000], 801);
    let layer = hub.layers(&manifest).remove(0);
    let serve = dpx.serve();

    // A client that reads the first bytes, then stops reading: serve has the
    // blob open and is mid-stream, held back by the socket buffers.
    let mut s = TcpStream::connect(&serve.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "GET /v2/library/stream/blobs/{layer} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut first = vec![0; 64 * 1024];
    s.read_exact(&mut first).expect("first bytes");

    let out = dpx.ok(&["purge", "--all", "--yes"]);
    assert!(out.contains("removed 1 tags"), "{out}");
    assert!(!blob_path(&dpx, &layer).exists(), "the blob was removed");

    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("the rest");
    let mut raw = first;
    raw.extend(rest);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    let body = &raw[split..];
    assert_eq!(body.len(), 8_000_000, "the client got the whole blob");
    assert_eq!(format!("sha256:{}", sha256_hex(body)), layer);
}

/// Temp files of the stalled 3 MB downloads (the other files in tmp/ are
/// small and renamed at once).
fn partial_downloads(dpx: &Dpx) -> Vec<PathBuf> {
    std::fs::read_dir(dpx.cache.join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|f| f.metadata().is_ok_and(|m| m.len() >= 1_000_000))
        .map(|f| f.path())
        .collect()
}

/// A download held up halfway: `command` (a pull or prefetch of `image`,
/// one 3 MB layer whose body stops halfway until `hub.release()`) running in
/// the background, its temp file on disk.
struct Stalled {
    hub: FakeHub,
    dpx: Dpx,
    layer: String,
    child: Child,
    temps: Vec<PathBuf>,
}

fn stalled(command: &str, image: &str, seed: u64) -> Stalled {
    let hub = FakeHub::start();
    let manifest = add_library_image(&hub, image, &[3_000_000], seed);
    let layer = hub.layers(&manifest).remove(0);
    hub.set_fault_on(
        layer.trim_start_matches("sha256:"),
        Fault::StallHalfway,
        None,
    );
    let dpx = Dpx::new(&hub.url());
    let child = dpx.spawn(&["-q", command, image]);
    wait_for("a partial download", Duration::from_secs(30), || {
        !partial_downloads(&dpx).is_empty()
    });
    let temps = partial_downloads(&dpx);
    Stalled {
        hub,
        dpx,
        layer,
        child,
        temps,
    }
}

#[test]
fn a_purge_while_prefetch_runs_removes_nothing_half_written_and_the_prefetch_succeeds() {
    let Stalled {
        hub,
        dpx,
        layer,
        child: prefetch,
        temps: before,
    } = stalled("prefetch", "busy:v1", 802);
    for args in [
        &["purge", "--unreferenced", "--older-than", "0s"][..],
        &["purge", "--all", "--yes"][..],
    ] {
        dpx.ok(args);
    }
    assert!(!dpx.has_blob(&layer), "still downloading during the purges");
    for p in &before {
        assert!(
            p.exists(),
            "the purge removed the live temp file {}",
            p.display()
        );
    }
    hub.release();
    let out = prefetch.wait_with_output().expect("prefetch");
    assert!(
        out.status.success(),
        "prefetch failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dpx.has_blob(&layer));
    dpx.assert_store_consistent();
    // Every stored file still hashes to its name.
    let verify = dpx.run(&["cache", "verify", "--keep"]);
    assert!(
        verify.status.success(),
        "cache verify after the purges: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn unreferenced_sweeps_dead_temp_files_and_orphaned_locks_but_not_a_live_download() {
    // A live download: its temp file and lock are held by this process.
    let Stalled {
        hub,
        dpx,
        layer,
        child: live,
        temps: live_temps,
    } = stalled("pull", "sweep:v1", 805);
    let tmp = dpx.cache.join("tmp");
    // What a SIGKILLed download leaves: a temp file and a lock nobody holds.
    let dead_hex = "ab".repeat(32);
    let dead_temp = tmp.join(format!("{}.dead01", &dead_hex[..12]));
    std::fs::write(&dead_temp, vec![7u8; 4096]).expect("dead temp");
    let orphan = dpx.cache.join("locks").join(format!("{dead_hex}.lock"));
    std::fs::write(&orphan, "").expect("orphaned lock");

    let summary = dpx.json(&["purge", "--unreferenced"]);
    assert!(!dead_temp.exists(), "the dead temp file is swept");
    assert!(!orphan.exists(), "the orphaned lock file is swept");
    assert!(
        summary["temp_files_removed"].as_u64() >= Some(1),
        "{summary}"
    );
    assert!(
        summary["lock_files_removed"].as_u64() >= Some(1),
        "{summary}"
    );
    for p in &live_temps {
        assert!(p.exists(), "the live download's {} was kept", p.display());
    }
    hub.release();
    assert!(live.wait_with_output().expect("pull").status.success());
    assert!(dpx.has_blob(&layer));
}

#[test]
fn after_forgetting_an_image_the_images_sharing_its_layers_pull_with_no_upstream_blob_request() {
    let hub = FakeHub::start();
    let a = hub.add_image_with_base("library/forget-a", "v1", 300_000, 803, &[100_000], 804);
    let b = hub.add_image_with_base("library/forget-b", "v1", 300_000, 803, &[100_000], 805);
    let (la, lb) = (hub.layers(&a), hub.layers(&b));
    assert_eq!(la[0], lb[0], "one shared base layer");
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "forget-a:v1", "forget-b:v1"]);
    let a_blobs = image_blobs(&dpx, &hub, &a);
    let b_blobs = image_blobs(&dpx, &hub, &b);

    let out = dpx.ok(&["purge", "--image", "forget-a"]);
    assert!(
        out.contains("removed 1 tags, 1 manifests, 2 blobs"),
        "{out}"
    );
    assert_eq!(tags(&dpx), ["library/forget-b:v1"]);
    for d in &a_blobs[..] {
        assert_eq!(dpx.has_blob(d), b_blobs.contains(d), "{d}");
    }

    let serve = dpx.serve();
    hub.reset_counts();
    let bodies = pull_through(&serve, "library/forget-b", &b_blobs[1..]);
    for (d, body) in b_blobs[1..].iter().zip(&bodies) {
        assert_eq!(&format!("sha256:{}", sha256_hex(body)), d);
    }
    assert_eq!(hub.count(Route::BlobGet) + hub.count(Route::CdnBlobGet), 0);
    assert_eq!(hub.count(Route::ManifestGet), 0);
}

#[test]
fn older_than_removes_what_was_not_used_for_that_long_and_keeps_what_a_recent_image_needs() {
    let hub = FakeHub::start();
    let old = hub.add_image_with_base("library/aged-old", "v1", 50_000, 806, &[40_000], 807);
    let new = hub.add_image_with_base("library/aged-new", "v1", 50_000, 806, &[40_000], 808);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "aged-old:v1", "aged-new:v1"]);
    age_image(&dpx, &hub, "library/aged-old", "v1", &old, 40 * DAY);
    // The shared base is old by its own mtime too, but the recent image needs it.
    age(&blob_path(&dpx, &hub.layers(&new)[0]), 40 * DAY);

    dpx.ok(&["purge", "--older-than", "30d"]);
    assert_eq!(tags(&dpx), ["library/aged-new:v1"]);
    let new_blobs = image_blobs(&dpx, &hub, &new);
    for d in image_blobs_of_hub(&hub, &old) {
        assert_eq!(dpx.has_blob(&d), new_blobs.contains(&d), "{d}");
    }
    for d in &new_blobs {
        assert!(dpx.has_blob(d), "{d}");
    }
    // Nothing else is 30 days old now.
    let again = dpx.json(&["purge", "--older-than", "30d"]);
    assert_eq!(again["bytes_reclaimed"], 0);
}

/// The layers and manifest of an image whose manifest may be gone from the cache.
fn image_blobs_of_hub(hub: &FakeHub, manifest: &str) -> Vec<String> {
    let mut v = vec![manifest.to_string()];
    v.extend(hub.layers(manifest));
    v
}

#[test]
fn max_size_evicts_the_least_recently_used_images_first() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let images: Vec<String> = (0..3)
        .map(|i| hub.add_image(&format!("library/lru{i}"), "v1", &[100_000], 810 + i))
        .collect();
    dpx.ok(&["-q", "pull", "lru0:v1", "lru1:v1", "lru2:v1"]);
    // lru1 is the least recently used, then lru0, then lru2.
    for (i, days) in [(0, 2), (1, 3), (2, 1)] {
        age_image(
            &dpx,
            &hub,
            &format!("library/lru{i}"),
            "v1",
            &images[i],
            days * DAY,
        );
    }
    let du = dpx.json(&["cache", "du"]);
    let total = du["total"].as_u64().unwrap();
    let one = du["repositories"]["docker.io/library/lru0"]
        .as_u64()
        .unwrap();
    // Room for two images, not three.
    let budget = total - one / 2;
    let s = dpx.json(&["purge", "--max-size", &format!("{budget}B")]);
    assert_eq!(s["tags"], 1, "{s}");
    assert!(s["size_after"].as_u64().unwrap() <= budget);
    assert_eq!(tags(&dpx), ["library/lru0:v1", "library/lru2:v1"]);
    assert!(!dpx.has_blob(&hub.layers(&images[1])[0]));
    dpx.assert_store_consistent();
    // Then the next least recently used.
    dpx.ok(&["purge", "--max-size", &format!("{}B", total - one * 3 / 2)]);
    assert_eq!(tags(&dpx), ["library/lru2:v1"]);
}

#[test]
fn dry_run_lists_what_would_go_and_changes_nothing() {
    let (_hub, dpx, m) = pulled("dry:v1", &[20_000, 30_000], 820);
    let before = tree(&dpx.cache);
    let out = dpx.ok(&["purge", "--all", "--dry-run"]);
    assert!(out.contains(&format!("would remove manifest {m}")), "{out}");
    assert!(
        out.contains("would remove 1 tags, 1 manifests, 3 blobs"),
        "{out}"
    );
    let v = dpx.json(&["purge", "--all", "--dry-run"]);
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["blobs"], 3);
    assert!(v["bytes_reclaimed"].as_u64().unwrap() > 50_000);
    assert_eq!(v["would_remove"].as_array().unwrap().len(), 5);
    // A budget below the one image keeps it, and says so.
    let v = dpx.json(&["purge", "--max-size", "1B", "--dry-run"]);
    assert_eq!(v["would_remove"].as_array().unwrap().len(), 0, "{v}");
    assert_eq!(v["over_max_size"], "docker.io/library/dry:v1", "{v}");
    assert_eq!(tree(&dpx.cache), before, "a dry run changed the cache");
}

#[test]
fn bad_durations_sizes_and_images_are_clear_errors_and_remove_nothing() {
    let (_hub, dpx, _) = pulled("keep:v1", &[10_000], 830);
    let before = tree(&dpx.cache);
    for (args, says) in [
        (
            &["purge", "--older-than", "5parsecs", "--all", "--yes"][..],
            "invalid duration",
        ),
        (
            &["purge", "--max-size", "lots", "--all", "--yes"][..],
            "invalid size",
        ),
        (
            &["purge", "--image", "Bad Name", "--all", "--yes"][..],
            "--image",
        ),
        (
            &["purge", "--image", "nosuch:1", "--unreferenced"][..],
            "no cached image matches",
        ),
        (&["purge", "--all"][..], "--yes"),
        (&["purge"][..], "--older-than"),
    ] {
        let out = dpx.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(tree(&dpx.cache), before, "{args:?} changed the cache");
    }
}

#[test]
fn a_purge_never_follows_a_symlink_out_of_the_cache() {
    let (_hub, dpx, _) = pulled("link:v1", &[10_000], 840);
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("precious");
    std::fs::write(&victim, b"not dpx's").unwrap();
    let hex = sha256_hex(b"not dpx's");
    // A blob that is a symlink to a file outside, a shard directory that is a
    // symlink to a directory outside, and a tag record that is a symlink.
    let shard = dpx.cache.join("blobs/sha256").join(&hex[..2]);
    std::fs::create_dir_all(&shard).unwrap();
    std::os::unix::fs::symlink(&victim, shard.join(&hex)).unwrap();
    let outside_shard = outside.path().join("shard");
    std::fs::create_dir(&outside_shard).unwrap();
    let hex2 = sha256_hex(b"other");
    std::fs::write(outside_shard.join(&hex2), b"other").unwrap();
    std::os::unix::fs::symlink(
        &outside_shard,
        dpx.cache.join("blobs/sha256").join(&hex2[..2]),
    )
    .expect("a shard no image uses");
    let tag_link = tag_path(&dpx, "library/link", "evil");
    std::fs::write(outside.path().join("tag.json"), b"{}").unwrap();
    std::os::unix::fs::symlink(outside.path().join("tag.json"), &tag_link).unwrap();

    let s = dpx.json(&["purge", "--all", "--yes"]);
    assert_eq!(s["blobs"], 2, "the real layer and config only: {s}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"not dpx's");
    assert_eq!(std::fs::read(outside_shard.join(&hex2)).unwrap(), b"other");
    assert!(outside.path().join("tag.json").exists());
    assert!(
        std::fs::symlink_metadata(shard.join(&hex))
            .unwrap()
            .is_symlink(),
        "left alone"
    );
    assert!(tags(&dpx).is_empty());
}

#[test]
fn cache_ls_and_du_count_shared_blobs_once() {
    let hub = FakeHub::start();
    let a = hub.add_image_with_base("library/du-a", "v1", 200_000, 850, &[10_000], 851);
    let b = hub.add_image_with_base("library/du-b", "v1", 200_000, 850, &[20_000], 852);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "du-a:v1", "du-b:v1"]);
    let size = |blobs: &[String]| -> u64 {
        blobs
            .iter()
            .map(|d| std::fs::metadata(blob_path(&dpx, d)).unwrap().len())
            .sum()
    };
    let (ab, bb) = (image_blobs(&dpx, &hub, &a), image_blobs(&dpx, &hub, &b));
    let ls = dpx.json(&["cache", "ls"]);
    assert_eq!(ls[0]["repository"], "library/du-a");
    assert_eq!(ls[0]["digest"], a.as_str());
    assert_eq!(ls[0]["size"], size(&ab));
    assert_eq!(ls[0]["platforms"][0], "linux/amd64");
    assert_eq!(ls[1]["size"], size(&bb));
    let du = dpx.json(&["cache", "du"]);
    let shared = std::fs::metadata(blob_path(&dpx, &ab[2])).unwrap().len();
    assert_eq!(du["total"], size(&ab) + size(&bb) - shared);
    assert_eq!(du["registries"]["docker.io"], du["total"]);
    assert_eq!(du["repositories"]["docker.io/library/du-a"], size(&ab));
    assert_eq!(du["untagged"], 0);
    let human = dpx.ok(&["cache", "ls"]);
    assert!(human.contains("docker.io/library/du-b"), "{human}");
}

#[test]
fn serve_with_max_size_evicts_the_least_recently_used_in_the_background() {
    let hub = FakeHub::start();
    let images: Vec<String> = (0..3)
        .map(|i| hub.add_image(&format!("library/ev{i}"), "v1", &[200_000], 860 + i))
        .collect();
    let late = hub.add_image("library/ev-late", "v1", &[200_000], 869);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nmax_size = \"500KB\"\n",
    );
    dpx.ok(&["-q", "pull", "ev0:v1", "ev1:v1", "ev2:v1"]);
    for (i, days) in [(0, 3), (1, 2), (2, 1)] {
        age_image(
            &dpx,
            &hub,
            &format!("library/ev{i}"),
            "v1",
            &images[i],
            days * DAY,
        );
    }
    let total = |dpx: &Dpx| dpx.json(&["cache", "du"])["total"].as_u64().unwrap();
    assert!(total(&dpx) > 500_000);
    let serve = dpx.serve();
    wait_for("eviction at start", Duration::from_secs(30), || {
        total(&dpx) <= 500_000
    });
    assert!(serve.log_shows("evicted"), "{}", serve.log_text());
    assert_eq!(tags(&dpx), ["library/ev1:v1", "library/ev2:v1"]);

    // A pull through serve goes over the budget again: the next oldest goes.
    pull_through(&serve, "library/ev-late", &hub.layers(&late));
    // Tags go before their blobs: wait for both.
    wait_for("eviction after a download", Duration::from_secs(60), || {
        tags(&dpx) == ["library/ev-late:v1", "library/ev2:v1"] && total(&dpx) <= 500_000
    });
}

#[test]
fn a_max_size_below_one_image_keeps_the_newest_image_and_warns_once() {
    let hub = FakeHub::start();
    hub.add_image("library/huge-old", "v1", &[300_000], 875);
    let late = hub.add_image("library/huge-new", "v1", &[300_000], 876);
    // No prefetch: the new image's store is what its client asked for.
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nmax_size = \"100KB\"\n\n[serve]\nprefetch_blobs = false\n",
    );
    dpx.ok(&["-q", "pull", "huge-old:v1"]);
    let serve = dpx.serve();
    let warning = "max_size 97.7 KiB is below the size of one image";
    wait_for(
        "the eviction pass at start",
        Duration::from_secs(30),
        || serve.log_shows(warning),
    );
    assert_eq!(tags(&dpx), ["library/huge-old:v1"], "{}", serve.log_text());
    assert_eq!(
        dpx.assert_store_consistent(),
        3,
        "its manifest, config, layer"
    );
    // Another image comes in: the older one goes, the newest stays whole.
    pull_through(&serve, "library/huge-new", &hub.layers(&late));
    // Its manifest and layer (no client asked for its config).
    wait_for("eviction after a download", Duration::from_secs(60), || {
        tags(&dpx) == ["library/huge-new:v1"] && dpx.assert_store_consistent() == 2
    });
    assert_eq!(
        serve.log_text().matches(warning).count(),
        1,
        "{}",
        serve.log_text()
    );
}

#[test]
fn on_a_terminal_all_asks_first_and_no_removes_nothing() {
    let (_hub, dpx, _) = pulled("ask:v1", &[10_000], 870);
    // The answer comes through the terminal.
    let on_a_terminal = |answer: &str| {
        let out = dpx.run_on_terminal(&["purge", "--all"], answer);
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let before = tree(&dpx.cache);
    let out = on_a_terminal("n\n");
    assert!(out.contains("Remove everything in the cache"), "{out}");
    assert!(out.contains("nothing removed"), "{out}");
    assert_eq!(tree(&dpx.cache), before);
    let out = on_a_terminal("y\n");
    assert!(out.contains("removed 1 tags"), "{out}");
    assert!(tags(&dpx).is_empty());
}
