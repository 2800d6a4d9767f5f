//! `dpx pull` / `dpx prefetch` against the fake hub: token flow, redirects,
//! rate-limit headers, request counting, faults, bad input.

use std::time::Duration;

use crate::support::assert_success;
use crate::support::dpx::{Dpx, wait_for};
use crate::support::hub::{FakeHub, Fault, HeaderStyle, Route, TokenStyle};

fn image(hub: &FakeHub, repo: &str, tag: &str, sizes: &[usize], seed: u64) -> String {
    hub.add_image(repo, tag, sizes, seed)
}

#[test]
fn pull_caches_everything_and_a_second_pull_downloads_nothing() {
    let hub = FakeHub::start();
    let digest = image(&hub, "library/app", "v1", &[300_000, 5_000, 70_000], 1);
    let dpx = Dpx::new(&hub.url());

    let out = dpx.ok(&["pull", "app:v1"]);
    assert!(
        out.contains(&digest),
        "pull prints the resolved digest: {out}"
    );
    assert_eq!(hub.count(Route::ManifestGet), 1);
    // config + 3 layers, each fetched once
    assert_eq!(hub.count(Route::CdnBlobGet), 4);
    // manifest + config + 3 layers, each hashing to its name
    assert_eq!(dpx.assert_store_consistent(), 5);
    assert!(dpx.tmp_is_empty());
    assert!(
        !hub.cdn_saw_authorization(),
        "the bearer token must not follow a redirect to another host"
    );

    hub.reset_counts();
    let v = dpx.json(&["pull", "app:v1"]);
    assert_eq!(v["images"][0]["digest"], digest.as_str());
    assert_eq!(v["images"][0]["manifest"], "revalidated");
    assert_eq!(v["blobs_fetched"], 0);
    assert_eq!(v["blobs_cached"], 4);
    assert_eq!(
        hub.count(Route::ManifestGet),
        0,
        "an unchanged tag costs no manifest GET"
    );
    assert_eq!(hub.count(Route::ManifestHead), 1);
    assert_eq!(
        hub.count(Route::BlobGet) + hub.count(Route::CdnBlobGet),
        0,
        "no blob GET for cached blobs"
    );
}

#[test]
fn a_moved_tag_is_fetched_again() {
    let hub = FakeHub::start();
    let first = image(&hub, "library/moving", "latest", &[1000], 10);
    let dpx = Dpx::new(&hub.url());
    assert!(dpx.ok(&["pull", "moving"]).contains(&first));
    let second = image(&hub, "library/moving", "latest", &[1000, 2000], 11);
    hub.reset_counts();
    let out = dpx.ok(&["pull", "moving"]);
    assert!(out.contains(&second), "{out}");
    assert_eq!(hub.count(Route::ManifestHead), 1);
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn pull_by_digest_and_quiet_output() {
    let hub = FakeHub::start();
    let digest = image(&hub, "user/tool", "1.0", &[2048], 3);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.ok(&["-q", "pull", &format!("user/tool@{digest}")]);
    assert_eq!(out.trim(), format!("docker.io/user/tool@{digest}"));
    hub.reset_counts();
    dpx.ok(&["pull", &format!("user/tool@{digest}")]);
    assert_eq!(
        hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
        0,
        "digests never go stale"
    );
}

#[test]
fn token_styles_are_all_understood_and_tokens_are_reused() {
    for style in [TokenStyle::Token, TokenStyle::AccessToken, TokenStyle::Both] {
        let hub = FakeHub::start();
        hub.set_token_response(style, None);
        image(&hub, "library/tok", "v1", &[100, 200, 300], 4);
        let dpx = Dpx::new(&hub.url());
        dpx.ok(&["pull", "tok:v1"]);
        assert_eq!(
            hub.count(Route::Token),
            1,
            "one token serves the whole pull ({style:?})"
        );
    }
}

#[test]
fn basic_credentials_are_required_by_the_realm() {
    let hub = FakeHub::start();
    hub.require_basic("alice", "s3cret");
    image(&hub, "library/private", "v1", &[100], 5);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["pull", "private:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token request") && err.contains("401"),
        "{err}"
    );
}

#[test]
fn rate_limit_headers_are_reported_in_both_spellings() {
    for (style, window) in [
        (HeaderStyle::Standard, 21600),
        (HeaderStyle::XPrefixed, 3600),
    ] {
        let hub = FakeHub::start();
        hub.set_ratelimit(100, 76, window, style);
        image(&hub, "library/rl", "v1", &[10], 6);
        let dpx = Dpx::new(&hub.url());
        let v = dpx.json(&["pull", "rl:v1"]);
        let rl = &v["rate_limits"]["docker.io"];
        assert_eq!(rl["limit"], 100, "{v}");
        // the manifest GET spent one unit
        assert_eq!(rl["remaining"], 75, "{v}");
        assert_eq!(rl["window_secs"], window, "{v}");
    }
}

#[test]
fn a_truncated_download_is_resumed_with_range() {
    // From the CDN after a redirect, and from the registry host itself.
    for redirect in [true, false] {
        let hub = FakeHub::start();
        hub.set_redirect_blobs(redirect);
        image(&hub, "library/big", "v1", &[4_000_000], 7);
        hub.set_fault_for(Fault::TruncatedBody, 1);
        let dpx = Dpx::new(&hub.url());
        dpx.ok(&["pull", "big:v1"]);
        assert_eq!(dpx.assert_store_consistent(), 3);
        assert!(dpx.tmp_is_empty());
        // config + the layer, plus one more GET that resumed the cut layer
        let gets = if redirect {
            hub.count(Route::CdnBlobGet)
        } else {
            hub.count(Route::BlobGet)
        };
        assert_eq!(gets, 3, "redirect={redirect}");
    }
}

#[test]
fn a_corrupt_blob_is_refused_and_not_stored() {
    let hub = FakeHub::start();
    image(&hub, "library/bad", "v1", &[50_000], 8);
    hub.set_fault(Fault::CorruptBody);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["pull", "bad:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("hashing to"),
        "the error names the digest mismatch: {err}"
    );
    // only the manifest is stored; no blob with wrong bytes exists anywhere
    assert_eq!(dpx.assert_store_consistent(), 1);
    assert!(dpx.tmp_is_empty());
}

#[test]
fn outage_and_429_give_clear_errors() {
    let hub = FakeHub::start();
    image(&hub, "library/down", "v1", &[10], 9);
    let dpx = Dpx::new(&hub.url());
    hub.set_fault(Fault::Outage);
    let out = dpx.run(&["pull", "down:v1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("503"));
    hub.set_fault(Fault::TooManyRequests);
    let out = dpx.run(&["pull", "down:v1"]);
    // The quota stopped it: exit 3, as for a prefetch at --max-pulls.
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("429"));
}

#[test]
fn a_cached_tag_still_pulls_when_upstream_is_down() {
    let hub = FakeHub::start();
    let digest = image(&hub, "library/steady", "v1", &[10], 12);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["pull", "steady:v1"]);
    hub.set_fault(Fault::Outage);
    let v = dpx.json(&["pull", "steady:v1"]);
    assert_eq!(v["images"][0]["digest"], digest.as_str());
    assert_eq!(v["images"][0]["manifest"], "stale");
    assert_eq!(v["images_failed"], 0);
}

#[test]
fn malformed_references_exit_2_and_touch_nothing() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    for bad in [
        "Alpine",
        "a/../b",
        "alpine:",
        "alpine@sha256:123",
        "a//b",
        "ex ample/x",
    ] {
        let out = dpx.run(&["pull", bad]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("invalid"),
            "{bad}"
        );
    }
    assert!(!dpx.cache.exists(), "bad input must not create the cache");
    assert_eq!(hub.count(Route::Ping) + hub.count(Route::ManifestGet), 0);
}

#[test]
fn two_processes_pulling_at_once_both_succeed_and_write_once() {
    let hub = FakeHub::start();
    image(&hub, "library/race", "v1", &[3_000_000, 2_000_000], 13);
    hub.set_fault(Fault::SlowBody(Duration::from_millis(2)));
    let dpx = Dpx::new(&hub.url());
    let children: Vec<_> = (0..2)
        .map(|_| {
            dpx.command()
                .args(["-q", "pull", "race:v1"])
                .spawn()
                .expect("spawn")
        })
        .collect();
    for mut c in children {
        assert!(c.wait().expect("wait").success());
    }
    assert_eq!(dpx.assert_store_consistent(), 4);
    assert_eq!(
        hub.count(Route::CdnBlobGet),
        3,
        "each blob is downloaded once across processes"
    );
}

#[test]
fn interrupting_a_download_leaves_no_partial_blob() {
    let hub = FakeHub::start();
    let _ = image(&hub, "library/slow", "v1", &[8_000_000], 14);
    // The layer download stalls halfway and is never released.
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let mut child = dpx
        .command()
        .args(["pull", "slow:v1"])
        .spawn()
        .expect("spawn");
    wait_for("the download to start", Duration::from_secs(30), || {
        !dpx.tmp_is_empty()
    });
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    assert!(dpx.tmp_is_empty(), "Ctrl-C removes the partial download");
    // The manifest and perhaps the small config are complete; the stalled
    // layer is not (it is the only blob big enough to stall).
    assert!(dpx.assert_store_consistent() <= 2);
}

#[test]
fn sigterm_mid_download_cleans_up_like_ctrl_c_and_exits_143() {
    let hub = FakeHub::start();
    let _ = image(&hub, "library/termed", "v1", &[8_000_000], 15);
    hub.set_fault(Fault::StallHalfway);
    let dpx = Dpx::new(&hub.url());
    let child = dpx
        .command()
        .args(["pull", "termed:v1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let holder = dpx.cache.join(format!("locks/users/{}", child.id()));
    wait_for("the download to start", Duration::from_secs(30), || {
        !dpx.tmp_is_empty() && holder.exists()
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("terminated; partial downloads removed"),
        "{err}"
    );
    assert!(dpx.tmp_is_empty(), "SIGTERM removes the partial download");
    assert!(!holder.exists(), "and the process's lock-holder file");
    assert!(dpx.assert_store_consistent() <= 2);
}

#[test]
fn prefetch_shares_layers_and_reports_each_failure() {
    let hub = FakeHub::start();
    // Five images sharing a base layer (same seed -> same bytes for layer 0).
    for i in 0..5u64 {
        hub.add_image_with_base(
            &format!("team/svc{i}"),
            "v1",
            500_000,
            99,
            &[10_000 + i as usize],
            100 + i,
        );
    }
    let dpx = Dpx::new(&hub.url());
    let list = dpx.dir.path().join("images.txt");
    let mut text = String::from("# services\n");
    for i in 0..5 {
        text.push_str(&format!("team/svc{i}:v1\n"));
    }
    text.push_str("team/missing:v1  # not upstream\n");
    std::fs::write(&list, text).expect("write list");
    let v = dpx.json(&["prefetch", "-j", "3", "-f", list.to_str().expect("path")]);
    assert_eq!(v["images_ok"], 5, "{v}");
    assert_eq!(v["images_failed"], 1, "{v}");
    let failed: Vec<_> = v["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter(|i| !i["error"].is_null())
        .collect();
    assert!(
        failed[0]["reference"]
            .as_str()
            .unwrap_or("")
            .contains("team/missing")
    );
    // 1 shared base + 5 own layers + 5 configs
    assert_eq!(v["blobs_fetched"], 11, "{v}");
    assert_eq!(
        hub.count(Route::CdnBlobGet),
        11,
        "the shared layer is downloaded once"
    );
    let out = dpx.run(&["prefetch", "-f", list.to_str().expect("path")]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed image makes the exit code non-zero"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("team/missing"));
}

#[test]
fn prefetch_reads_images_from_a_dockerfile() {
    let hub = FakeHub::start();
    image(&hub, "library/base", "1.0", &[100], 20);
    image(&hub, "library/runtime", "2", &[100], 21);
    let dpx = Dpx::new(&hub.url());
    let dockerfile = dpx.dir.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "ARG BASE=base:1.0\nFROM $BASE AS build\nRUN make\nFROM runtime:2\nCOPY --from=build /x /x\nFROM build\n",
    )
    .expect("write Dockerfile");
    let v = dpx.json(&["prefetch", "--from", dockerfile.to_str().expect("path")]);
    let refs: Vec<&str> = v["images"]
        .as_array()
        .expect("images")
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(
        refs,
        ["docker.io/library/base:1.0", "docker.io/library/runtime:2"]
    );
    assert_eq!(v["images_failed"], 0);
}

/// Mounts a filesystem for the test; needs root (as CI and dockerd do).
pub(crate) fn mount(args: &[&str], target: &std::path::Path) -> MountGuard {
    std::fs::create_dir_all(target).expect("mount point");
    let out = std::process::Command::new("mount")
        .args(args)
        .arg(target)
        .output()
        .expect("run mount");
    assert_success(&out, &format!("mount {args:?}"));
    MountGuard(target.to_path_buf())
}

pub(crate) struct MountGuard(std::path::PathBuf);

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_clearly_and_leaves_nothing_partial() {
    let hub = FakeHub::start();
    image(&hub, "library/huge", "v1", &[3_000_000], 30);
    let dpx = Dpx::new(&hub.url());
    let _m = mount(&["-t", "tmpfs", "-o", "size=1m", "tmpfs"], &dpx.cache);
    let out = dpx.run(&["pull", "huge:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disk is full"), "{err}");
    assert!(dpx.tmp_is_empty(), "the partial download is removed");
    assert!(
        dpx.assert_store_consistent() <= 2,
        "the manifest and config fit; the 3 MB layer does not"
    );
}

#[test]
fn a_pull_whose_manifest_cannot_be_cached_fails_and_says_why() {
    let hub = FakeHub::start();
    let digest = image(&hub, "library/nometa", "v1", &[1_000], 31);
    let dpx = Dpx::new(&hub.url());
    // The manifest's media-type record cannot be written: a directory (not
    // empty) stands where it goes.
    let hex = digest.trim_start_matches("sha256:");
    let blocker = dpx.cache.join(format!("manifests/sha256/{hex}.json"));
    std::fs::create_dir_all(blocker.join("x")).expect("blocker");
    let out = dpx.run(&["pull", "nometa:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error: docker.io/library/nometa:v1"), "{err}");
    assert!(err.contains("cannot write"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&digest),
        "nothing is printed as pulled"
    );
}

#[test]
fn a_read_only_cache_dir_fails_clearly() {
    let hub = FakeHub::start();
    image(&hub, "library/ro", "v1", &[100], 31);
    let dpx = Dpx::new(&hub.url());
    std::fs::create_dir_all(&dpx.cache).expect("cache dir");
    let cache = dpx.cache.to_str().expect("path").to_string();
    let _m = mount(&["--bind", "-o", "ro", &cache], &dpx.cache);
    let out = dpx.run(&["pull", "ro:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot use cache directory") && err.contains("--cache-dir"),
        "{err}"
    );
    assert_eq!(
        hub.count(Route::ManifestGet),
        0,
        "nothing is fetched into a cache that can't hold it"
    );
}

#[test]
fn a_manifest_that_does_not_hash_to_its_digest_is_refused_and_not_stored() {
    let hub = FakeHub::start();
    let digest = image(&hub, "library/forged", "v1", &[10], 21);
    hub.tamper_manifest(&digest);
    let dpx = Dpx::new(&hub.url());
    for reference in ["forged:v1".to_string(), format!("forged@{digest}")] {
        let out = dpx.run(&["pull", &reference]);
        assert_eq!(out.status.code(), Some(1), "{reference}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("expected {digest}")) && err.contains("hashing to"),
            "{reference}: the error names the mismatch: {err}"
        );
    }
    let stored = std::fs::read_dir(dpx.cache.join("manifests/sha256"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(stored, 0, "no manifest stored");
    assert!(
        !dpx.cache.join("index/docker.io/library/forged").exists(),
        "no tag record"
    );
    assert_eq!(
        hub.count(Route::BlobGet),
        0,
        "nothing a forged manifest names is fetched"
    );
}
