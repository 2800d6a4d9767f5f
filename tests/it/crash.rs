//! Crashes: `kill -9` of `dpx serve`, `dpx pull` and `dpx import` at seeded
//! random moments of cold downloads, and several processes on one cache at
//! once (serve, prefetch, purge, new processes starting) with clients that
//! check every digest. Counts and durations follow `support::scaled` (CI,
//! then `DPX_TEST_LONG=1`); the seed is `DPX_TEST_SEED` else random, and is in
//! every failure message.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::dpx::{Dpx, path_str, sha256_hex};
use crate::support::hub::FakeHub;
use crate::support::scaled;

/// `DPX_TEST_SEED`, else a random one; printed so a failure can be rerun.
pub(crate) fn test_seed(test: &str) -> u64 {
    let seed = std::env::var("DPX_TEST_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: DPX_TEST_SEED={seed}");
    seed
}

/// One HTTP answer as a client that may be cut off sees it.
pub(crate) struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The body is as long as its Content-Length said.
    pub complete: bool,
}

impl Got {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

const ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json";

/// A GET that tolerates a server dying under it: `Err` when no head came
/// back, `complete: false` when the body was cut short.
pub(crate) fn try_get(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<Got, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut raw = Vec::new();
    // Whatever arrived before an error stays in `raw`.
    let _ = s.read_to_end(&mut raw);
    parse(&raw).ok_or_else(|| format!("no answer ({} bytes)", raw.len()))
}

fn parse(raw: &[u8]) -> Option<Got> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let body = raw[split + 4..].to_vec();
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok());
    Some(Got {
        status,
        complete: length == Some(body.len()),
        headers,
        body,
    })
}

/// Why a client's pull through serve did not finish.
#[derive(Debug)]
pub(crate) enum Bad {
    /// A complete answer whose bytes are not what its digest names: never allowed.
    Wrong(String),
    /// An error status, a refused connection or a body cut short.
    Failed(String),
}

/// A client pulling `repo:tag` through serve as an engine does: the manifest
/// by tag (its digest must be `want`), then the config and every layer, each
/// body checked against its digest. Returns the blobs checked.
pub(crate) fn pull_through(addr: &str, repo: &str, tag: &str, want: &str) -> Result<usize, Bad> {
    let m = fetch(
        addr,
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Accept", ACCEPT)],
    )?;
    let digest = format!("sha256:{}", sha256_hex(&m.body));
    if digest != want || m.header("docker-content-digest") != Some(want) {
        return Err(Bad::Wrong(format!(
            "{repo}:{tag}: manifest hashes to {digest}, header {:?}, expected {want}",
            m.header("docker-content-digest")
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&m.body)
        .map_err(|e| Bad::Wrong(format!("{repo}:{tag}: manifest is not JSON: {e}")))?;
    let mut blobs = vec![v["config"]["digest"].as_str().unwrap_or("").to_string()];
    blobs.extend(
        v["layers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| l["digest"].as_str().unwrap_or("").to_string()),
    );
    for blob in &blobs {
        let b = fetch(addr, &format!("/v2/{repo}/blobs/{blob}"), &[])?;
        let got = format!("sha256:{}", sha256_hex(&b.body));
        if &got != blob {
            return Err(Bad::Wrong(format!(
                "{repo}: blob {blob} came back as {} bytes hashing to {got}",
                b.body.len()
            )));
        }
    }
    Ok(blobs.len())
}

/// A GET that must be a complete 200.
fn fetch(addr: &str, path: &str, headers: &[(&str, &str)]) -> Result<Got, Bad> {
    let got = try_get(addr, path, headers).map_err(|e| Bad::Failed(format!("{path}: {e}")))?;
    if got.status != 200 {
        return Err(Bad::Failed(format!(
            "{path}: {} {}",
            got.status,
            String::from_utf8_lossy(&got.body)
        )));
    }
    if !got.complete {
        return Err(Bad::Failed(format!(
            "{path}: cut short after {} bytes",
            got.body.len()
        )));
    }
    Ok(got)
}

/// What a dead process may have left in the cache: temp files, blob/manifest/
/// tag lock files, holder files of processes other than `live`, `VERSION`
/// written aside.
pub(crate) fn leftovers(dpx: &Dpx, live: &[u32]) -> Vec<String> {
    let names = |dir: PathBuf| -> Vec<String> {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    };
    let mut found: Vec<String> = names(dpx.cache.join("tmp"))
        .into_iter()
        .map(|n| format!("tmp/{n}"))
        .collect();
    found.extend(
        names(dpx.cache.join("locks"))
            .into_iter()
            .filter(|n| n.ends_with(".lock"))
            .map(|n| format!("locks/{n}")),
    );
    found.extend(
        names(dpx.cache.join("locks/users"))
            .into_iter()
            .filter(|n| !live.iter().any(|p| p.to_string() == *n))
            .map(|n| format!("locks/users/{n}")),
    );
    found.extend(
        names(dpx.cache.clone())
            .into_iter()
            .filter(|n| n.starts_with(".VERSION.")),
    );
    found
}

/// Starts `dpx serve` (whose start-up sweep runs in the background) and
/// waits until nothing a dead process left is there any more.
fn restart_and_await_sweep(dpx: &Dpx, what: &str) -> crate::support::dpx::Serve {
    let serve = dpx.serve();
    let live = [serve.child.id()];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = leftovers(dpx, &live);
        if left.is_empty() {
            return serve;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: after the next start's sweep these are still there: {left:?}\nserve log:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `dpx cache verify --keep` exits 0 (nothing wrong, nothing removed).
pub(crate) fn assert_verify_clean(dpx: &Dpx, what: &str) {
    let out = dpx.run(&["cache", "verify", "--keep"]);
    assert!(
        out.status.success(),
        "{what}: cache verify is not clean ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dpx --json pull` of `images` (`name:tag` -> manifest digest) exits 0 with those digests.
fn assert_pulls(dpx: &Dpx, images: &[(String, String)], what: &str) {
    let mut args = vec!["pull"];
    args.extend(images.iter().map(|(i, _)| i.as_str()));
    let v = dpx.json(&args);
    for (i, (image, digest)) in images.iter().enumerate() {
        assert_eq!(
            v["images"][i]["digest"].as_str(),
            Some(digest.as_str()),
            "{what}: pulling {image} after the restart: {v}"
        );
    }
    assert_eq!(v["images_failed"], 0, "{what}: {v}");
}

#[derive(Debug, Clone, Copy)]
enum Victim {
    Pull,
    Serve,
    Import,
}

/// An archive fed through a FIFO at a trickle, so an import is still
/// reading it when the kill comes.
struct Trickle {
    fifo: PathBuf,
    writer: std::thread::JoinHandle<()>,
}

impl Trickle {
    fn start(archive: &Path, fifo: PathBuf) -> Trickle {
        let _ = std::fs::remove_file(&fifo);
        let status = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("run mkfifo");
        assert!(status.success(), "mkfifo {}", fifo.display());
        let data = std::fs::read(archive).expect("read the archive");
        let path = fifo.clone();
        let writer = std::thread::spawn(move || {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) else {
                return;
            };
            for chunk in data.chunks(64 * 1024) {
                if f.write_all(chunk).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(12));
            }
        });
        Trickle { fifo, writer }
    }

    /// Unblocks a writer still waiting for a reader (the import died before
    /// opening the FIFO), then waits for it.
    fn finish(self) {
        use std::os::unix::fs::OpenOptionsExt as _;
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(&self.fifo);
        drop(reader);
        self.writer.join().expect("trickle writer");
        let _ = std::fs::remove_file(&self.fifo);
    }
}

#[test]
fn kill_9_of_serve_pull_and_import_mid_download_leaves_a_cache_that_verifies_and_pulls() {
    let seed = test_seed("kill_9");
    let mut rng = fastrand::Rng::with_seed(seed);
    let kills_wanted = scaled(10, 50);
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());

    // The import's archive: one image, exported by another cache.
    let imported = hub.add_image("library/imported", "v1", &[1_500_000, 900_000], seed);
    let source = Dpx::new(&hub.url());
    source.ok(&["-q", "pull", "imported:v1"]);
    let archive = source.dir.path().join("imported.tar");
    source.ok(&["export", "-o", path_str(&archive), "imported:v1"]);

    let pause = Duration::from_millis(20);
    let mut landed = 0;
    let mut by_kind = [0usize; 3];
    let mut round = 0usize;
    let mut with_temp_files = 0;
    while landed < kills_wanted {
        assert!(
            round < kills_wanted * 3,
            "seed {seed}: only {landed} of {round} kills landed on a running process"
        );
        let victim = [Victim::Pull, Victim::Serve, Victim::Import][round % 3];
        let delay = Duration::from_millis(rng.u64(0..=600));
        let what = format!(
            "DPX_TEST_SEED={seed}, round {round}: kill -9 of {victim:?} after {} ms",
            delay.as_millis()
        );
        // Two images new to the cache (cold), sharing a base layer with every round's.
        let images: Vec<(String, String)> = ["a", "b"]
            .iter()
            .map(|x| {
                let name = format!("crash{round}{x}");
                let sizes = [rng.usize(500_000..1_500_000), rng.usize(100_000..800_000)];
                let digest = hub.add_image_with_base(
                    &format!("library/{name}"),
                    "v1",
                    300_000,
                    seed,
                    &sizes,
                    rng.u64(..),
                );
                (format!("{name}:v1"), digest)
            })
            .collect();
        hub.set_body_pause(pause);

        let hit = match victim {
            Victim::Pull => {
                let mut args = vec!["-q", "pull"];
                args.extend(images.iter().map(|(i, _)| i.as_str()));
                kill_after(&mut dpx.spawn(&args), delay)
            }
            Victim::Import => {
                let trickle = Trickle::start(&archive, dpx.dir.path().join("archive.fifo"));
                let mut child = dpx.spawn(&["-q", "import", path_str(&trickle.fifo)]);
                let hit = kill_after(&mut child, delay);
                trickle.finish();
                hit
            }
            Victim::Serve => {
                let mut serve = dpx.serve();
                let addr = serve.addr.clone();
                let clients: Vec<_> = images
                    .iter()
                    .map(|(image, digest)| {
                        let (addr, digest) = (addr.clone(), digest.clone());
                        let (name, tag) = image.split_once(':').expect("name:tag");
                        let repo = format!("library/{name}");
                        let tag = tag.to_string();
                        std::thread::spawn(move || pull_through(&addr, &repo, &tag, &digest))
                    })
                    .collect();
                let hit = kill_after(&mut serve.child, delay);
                for c in clients {
                    match c.join().expect("client thread") {
                        Err(Bad::Wrong(e)) => panic!("{what}: a client got wrong bytes: {e}"),
                        Ok(_) | Err(Bad::Failed(_)) => {}
                    }
                }
                hit
            }
        };
        if hit {
            landed += 1;
            by_kind[round % 3] += 1;
        }
        // What the dead process left for the next start to sweep.
        let left = leftovers(&dpx, &[]);
        if left.iter().any(|l| l.starts_with("tmp/")) {
            with_temp_files += 1;
        }

        // The next start sweeps what the dead process left; then the cache
        // checks out and the same images pull with their digests.
        hub.set_body_pause(Duration::ZERO);
        let mut serve = restart_and_await_sweep(&dpx, &what);
        let _ = serve.stop();
        assert_verify_clean(&dpx, &what);
        match victim {
            Victim::Import => {
                let v = dpx.json(&["import", path_str(&archive)]);
                assert_eq!(
                    v["images"][0]["digest"].as_str(),
                    Some(imported.as_str()),
                    "{what}: {v}"
                );
                assert_pulls(&dpx, &[("imported:v1".into(), imported.clone())], &what);
            }
            Victim::Pull | Victim::Serve => assert_pulls(&dpx, &images, &what),
        }
        round += 1;
    }
    assert_verify_clean(&dpx, &format!("DPX_TEST_SEED={seed}, at the end"));
    eprintln!(
        "kill_9: {landed} kills landed in {round} rounds (pull {}, serve {}, import {}); \
         {with_temp_files} left temp files for the next start to sweep",
        by_kind[0], by_kind[1], by_kind[2]
    );
}

/// SIGKILLs `child` after `delay`; whether it was still running then.
fn kill_after(child: &mut Child, delay: Duration) -> bool {
    std::thread::sleep(delay);
    let running = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    running
}

/// The purges so far, for deciding whether a process's output may be
/// checked against the cache: only when no purge ran at any time during it.
#[derive(Default)]
struct Purges {
    started: usize,
    running: usize,
}

/// A process's window: the purges started before it and whether one was running.
#[derive(Clone, Copy)]
struct Window {
    started: usize,
    clear: bool,
}

impl Purges {
    fn window(&self) -> Window {
        Window {
            started: self.started,
            clear: self.running == 0,
        }
    }

    /// No purge ran at any time since `w` was taken.
    fn none_since(&self, w: Window) -> bool {
        w.clear && self.running == 0 && self.started == w.started
    }
}

/// Every image a `--json pull`/`prefetch` printed as done is in the cache:
/// its tag record names the digest, and the manifest, its config and its
/// layers are stored.
fn assert_printed_is_cached(dpx: &Dpx, out: &serde_json::Value, what: &str) -> usize {
    let mut checked = 0;
    for image in out["images"].as_array().into_iter().flatten() {
        if !image["error"].is_null() {
            continue;
        }
        let reference = image["reference"].as_str().unwrap_or_default();
        let digest = image["digest"].as_str().unwrap_or_default();
        let (repo, tag) = reference
            .trim_start_matches("docker.io/")
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("{what}: odd reference {reference}"));
        let record = dpx
            .cache
            .join("index/docker.io")
            .join(repo)
            .join("tags")
            .join(format!("{tag}.json"));
        let text = std::fs::read_to_string(&record).unwrap_or_else(|e| {
            panic!("{what}: {reference} printed as pulled, but its tag record is gone ({e})")
        });
        let rec: serde_json::Value = serde_json::from_str(&text).expect("tag record JSON");
        assert_eq!(rec["digest"].as_str(), Some(digest), "{what}: {reference}");
        let blob = |d: &str| {
            let hex = d.trim_start_matches("sha256:");
            dpx.cache.join("blobs/sha256").join(&hex[..2]).join(hex)
        };
        let manifest = std::fs::read(blob(digest)).unwrap_or_else(|e| {
            panic!("{what}: {reference} printed as pulled, but manifest {digest} is gone ({e})")
        });
        let m: serde_json::Value = serde_json::from_slice(&manifest).expect("manifest JSON");
        let layers = m["layers"].as_array().into_iter().flatten();
        for d in std::iter::once(&m["config"])
            .chain(layers)
            .filter_map(|d| d["digest"].as_str())
        {
            assert!(
                blob(d).is_file(),
                "{what}: {reference} printed as pulled, but its blob {d} is not cached"
            );
        }
        checked += 1;
    }
    checked
}

/// How the chaos went: operations, and checks made.
#[derive(Default)]
struct Tally {
    client_pulls: AtomicUsize,
    client_blobs: AtomicUsize,
    client_errors: Mutex<Vec<String>>,
    runs: AtomicUsize,
    runs_checked: AtomicUsize,
    images_checked: AtomicUsize,
    purges: AtomicUsize,
}

#[test]
fn serve_prefetch_purge_and_starting_processes_on_one_cache_lose_nothing_and_serve_no_wrong_byte() {
    let seed = test_seed("chaos");
    let secs = scaled(10, 60) as u64;
    let hub = FakeHub::start();
    let mut rng = fastrand::Rng::with_seed(seed);
    let images: Vec<(String, String)> = (0..10usize)
        .map(|i| {
            let sizes = [rng.usize(100_000..900_000), rng.usize(10_000..400_000)];
            let digest = hub.add_image_with_base(
                &format!("library/chaos{i}"),
                "v1",
                200_000,
                (i % 3) as u64,
                &sizes,
                rng.u64(..),
            );
            (format!("chaos{i}:v1"), digest)
        })
        .collect();
    // Downloads that take a while, so processes overlap on them.
    hub.set_body_pause(Duration::from_millis(3));
    let dpx = Arc::new(Dpx::new(&hub.url()));
    let serve = dpx.serve();
    let purges = Arc::new(Mutex::new(Purges::default()));
    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let what = format!("DPX_TEST_SEED={seed}");
    let mut threads = Vec::new();

    // Clients of serve, checking every digest.
    for c in 0..3u64 {
        let (addr, images, tally, stop, what) = (
            serve.addr.clone(),
            images.clone(),
            Arc::clone(&tally),
            Arc::clone(&stop),
            what.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed ^ (c + 1));
            while !stop.load(Ordering::SeqCst) {
                let (image, digest) = &images[rng.usize(..images.len())];
                let (name, tag) = image.split_once(':').expect("name:tag");
                match pull_through(&addr, &format!("library/{name}"), tag, digest) {
                    Ok(n) => {
                        tally.client_pulls.fetch_add(1, Ordering::SeqCst);
                        tally.client_blobs.fetch_add(n, Ordering::SeqCst);
                    }
                    Err(Bad::Wrong(e)) => panic!("{what}: a client of serve got wrong bytes: {e}"),
                    Err(Bad::Failed(e)) => tally
                        .client_errors
                        .lock()
                        .expect("errors")
                        .push(format!("{image}: {e}")),
                }
            }
        }));
    }

    // Prefetches filling and pulls starting (each sweeps at start): every
    // exit 0 means what it printed is cached, checked when no purge ran
    // meanwhile (a purge may legitimately remove what it stored).
    for (k, command) in ["prefetch", "pull", "pull"].into_iter().enumerate() {
        let (dpx, images, tally, stop, purges, what) = (
            Arc::clone(&dpx),
            images.clone(),
            Arc::clone(&tally),
            Arc::clone(&stop),
            Arc::clone(&purges),
            what.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed ^ (k as u64 + 100));
            while !stop.load(Ordering::SeqCst) {
                let n = rng.usize(1..=3);
                let mut args = vec!["--json", command];
                for _ in 0..n {
                    args.push(images[rng.usize(..images.len())].0.as_str());
                }
                let window = purges.lock().expect("purges").window();
                let out = dpx.command().args(&args).output().expect("run dpx");
                tally.runs.fetch_add(1, Ordering::SeqCst);
                let text = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{what}: dpx {args:?} failed ({}): {text}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                    .unwrap_or_else(|e| panic!("{what}: dpx {args:?}: no JSON ({e}): {text}"));
                // Held while checking: no purge starts meanwhile.
                let p = purges.lock().expect("purges");
                if p.none_since(window) {
                    let checked =
                        assert_printed_is_cached(&dpx, &v, &format!("{what}: dpx {args:?}"));
                    tally.images_checked.fetch_add(checked, Ordering::SeqCst);
                    tally.runs_checked.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }

    // Purges evicting: to a size budget, or one image forgotten.
    {
        let (dpx, images, tally, stop, purges, what) = (
            Arc::clone(&dpx),
            images.clone(),
            Arc::clone(&tally),
            Arc::clone(&stop),
            Arc::clone(&purges),
            what.clone(),
        );
        threads.push(std::thread::spawn(move || {
            let mut rng = fastrand::Rng::with_seed(seed ^ 0x9e37);
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(rng.u64(300..900)));
                let image = images[rng.usize(..images.len())].0.clone();
                let args: Vec<&str> = if rng.bool() {
                    vec!["purge", "--max-size", "3MiB"]
                } else {
                    vec!["purge", "--image", image.as_str()]
                };
                {
                    let mut p = purges.lock().expect("purges");
                    p.started += 1;
                    p.running += 1;
                }
                let out = dpx.command().args(&args).output().expect("run dpx purge");
                purges.lock().expect("purges").running -= 1;
                tally.purges.fetch_add(1, Ordering::SeqCst);
                // An image a purge took already is not an error of the purge's.
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    out.status.success() || err.contains("no cached image matches"),
                    "{what}: dpx {args:?} failed: {err}"
                );
            }
        }));
    }

    while Instant::now() < deadline && !threads.iter().any(|t| t.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        if let Err(panic) = t.join() {
            std::panic::resume_unwind(panic);
        }
    }
    let mut serve = serve;
    assert!(serve.stop().success(), "{what}: serve did not stop cleanly");
    let errors = tally.client_errors.lock().expect("errors").clone();
    assert!(
        errors.is_empty(),
        "{what}: clients of serve got errors: {errors:#?}\nserve log:\n{}",
        serve.log_text()
    );
    let runs_checked = tally.runs_checked.load(Ordering::SeqCst);
    assert!(
        runs_checked > 0,
        "{what}: no pull or prefetch ran clear of purges: nothing was checked"
    );
    assert!(tally.client_pulls.load(Ordering::SeqCst) > 0, "{what}");
    assert!(tally.purges.load(Ordering::SeqCst) > 0, "{what}");
    // After it all: the next start leaves nothing dead behind, and the store checks out.
    hub.set_body_pause(Duration::ZERO);
    let mut after = restart_and_await_sweep(&dpx, &what);
    let _ = after.stop();
    assert_verify_clean(&dpx, &what);
    eprintln!(
        "chaos: {secs}s: {} client pulls through serve ({} blobs checked), {} pull/prefetch runs \
         ({} checked clear of purges, {} images found cached), {} purges",
        tally.client_pulls.load(Ordering::SeqCst),
        tally.client_blobs.load(Ordering::SeqCst),
        tally.runs.load(Ordering::SeqCst),
        runs_checked,
        tally.images_checked.load(Ordering::SeqCst),
        tally.purges.load(Ordering::SeqCst),
    );
}

/// What `strace -ff -y` recorded of one dpx process: per thread, its
/// fsyncs (the path of the file synced) and its renames and links (from, to).
#[derive(Debug)]
enum Syscall {
    Fsync(String),
    Rename(String, String),
}

const TRACED: &str = "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat";

/// Whether strace runs here; without it the test fails under
/// `DPX_TEST_REQUIRE_ALL=1` and says it skipped otherwise.
fn have_strace() -> bool {
    if Command::new("strace").arg("-V").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var_os("DPX_TEST_REQUIRE_ALL").is_none(),
        "strace is not installed (DPX_TEST_REQUIRE_ALL=1 forbids skipping)"
    );
    eprintln!("SKIPPED: strace is not installed");
    false
}

/// The strace arguments writing one file per thread to `<prefix>.<tid>`.
fn strace_args(prefix: &Path) -> Vec<String> {
    [
        "-f",
        "-ff",
        "-y",
        "-qq",
        "-e",
        TRACED,
        "-o",
        path_str(prefix),
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

/// Every thread's calls, in order, from the files under `dir` named `<stem>.<tid>`.
fn traced_threads(dir: &Path, stem: &str) -> Vec<Vec<Syscall>> {
    let mut threads = Vec::new();
    for f in std::fs::read_dir(dir).expect("trace dir").flatten() {
        let name = f.file_name().to_string_lossy().into_owned();
        if !name.starts_with(&format!("{stem}.")) {
            continue;
        }
        let text = std::fs::read_to_string(f.path()).expect("trace file");
        let calls = text
            .lines()
            .filter(|l| l.ends_with("= 0"))
            .filter_map(|l| {
                if l.starts_with("fsync(") || l.starts_with("fdatasync(") {
                    let path = l.split_once('<')?.1.rsplit_once('>')?.0;
                    return Some(Syscall::Fsync(path.to_string()));
                }
                // The quoted arguments: from, then to.
                let quoted: Vec<&str> = l.split('"').skip(1).step_by(2).collect();
                match quoted[..] {
                    [from, to] => Some(Syscall::Rename(from.to_string(), to.to_string())),
                    _ => None,
                }
            })
            .collect();
        threads.push(calls);
    }
    threads
}

/// Checks that every file made visible in the cache by a rename (or link)
/// was fsynced by the same thread before, and its directory fsynced after;
/// returns the kinds of store path seen (blob, manifest sidecar, tag record, ...).
fn assert_synced_before_visible(
    threads: &[Vec<Syscall>],
    cache: &Path,
    what: &str,
) -> std::collections::BTreeSet<&'static str> {
    let root = format!("{}/", path_str(cache));
    let mut kinds = std::collections::BTreeSet::new();
    for calls in threads {
        for (i, call) in calls.iter().enumerate() {
            let Syscall::Rename(from, to) = call else {
                continue;
            };
            // The store's files; `VERSION` (linked into place once, written
            // again if a crash loses it) is not one.
            let Some(rel) = to.strip_prefix(&root).filter(|r| {
                ["blobs/", "manifests/", "index/", "quota/"]
                    .iter()
                    .any(|d| r.starts_with(d))
            }) else {
                continue;
            };
            let synced_before = calls[..i]
                .iter()
                .any(|c| matches!(c, Syscall::Fsync(p) if p == from));
            assert!(
                synced_before,
                "{what}: {to} became visible (from {from}) before its data was fsynced; \
                 this thread did: {calls:#?}"
            );
            let dir = Path::new(to).parent().map(path_str).unwrap_or_default();
            let dir_synced_after = calls[i + 1..]
                .iter()
                .any(|c| matches!(c, Syscall::Fsync(p) if p == dir));
            assert!(
                dir_synced_after,
                "{what}: the rename to {to} was not made durable (no fsync of {dir} after it)"
            );
            kinds.insert(match rel {
                r if r.starts_with("blobs/") => "blob",
                r if r.starts_with("manifests/") => "manifest media type",
                r if r.contains("/tags/") => "tag record",
                r if r.starts_with("quota/") => "quota record",
                _ => "other record",
            });
        }
    }
    kinds
}

/// Runs `dpx ARGS` under strace (traces under `traces/what`) and checks
/// every store path it took; returns the kinds of file it stored.
fn traced_run(
    dpx: &Dpx,
    traces: &Path,
    what: &str,
    args: &[&str],
) -> std::collections::BTreeSet<&'static str> {
    let dpx_cmd = dpx.command();
    let mut strace = Command::new("strace");
    strace
        .args(strace_args(&traces.join(what)))
        .arg(env!("CARGO_BIN_EXE_dpx"))
        .args(dpx_cmd.get_args())
        .args(args);
    for (k, v) in dpx_cmd.get_envs() {
        match v {
            Some(v) => strace.env(k, v),
            None => strace.env_remove(k),
        };
    }
    let out = strace.output().expect("run strace dpx");
    crate::support::assert_success(&out, &format!("strace dpx {what}"));
    assert_synced_before_visible(
        &traced_threads(traces, what),
        &dpx.cache,
        &format!("dpx {what}"),
    )
}

#[test]
fn every_store_path_fsyncs_a_file_before_the_rename_that_makes_it_visible() {
    if !have_strace() {
        return;
    }
    let hub = FakeHub::start();
    let pulled = hub.add_image("library/traced", "v1", &[300_000, 2_000], 1950);
    let imported = hub.add_image("library/tracedimport", "v1", &[200_000], 1951);
    let served = hub.add_image("library/tracedserve", "v1", &[250_000], 1952);
    let source = Dpx::new(&hub.url());
    source.ok(&["-q", "pull", "tracedimport:v1"]);
    let archive = source.dir.path().join("import.tar");
    source.ok(&["export", "-o", path_str(&archive), "tracedimport:v1"]);
    let dpx = Dpx::new(&hub.url());
    let traces = dpx.dir.path().join("traces");
    std::fs::create_dir_all(&traces).expect("trace dir");
    let blob_media_tag = ["blob", "manifest media type", "tag record"];

    // pull (and the cache's creation): blobs, manifests, media types, tag
    // records; import: staged blobs committed, manifests, tag records.
    for (what, args) in [
        ("pull", vec!["-q", "pull", "traced:v1"]),
        ("import", vec!["-q", "import", path_str(&archive)]),
    ] {
        let kinds = traced_run(&dpx, &traces, what, &args);
        for k in blob_media_tag {
            assert!(kinds.contains(k), "dpx {what} stored no {k}: {kinds:?}");
        }
        eprintln!("dpx {what}: fsynced before visible, directory fsynced after: {kinds:?}");
    }

    // serve: a cold image pulled through it.
    let wrapper: Vec<String> = std::iter::once("strace".to_string())
        .chain(strace_args(&traces.join("serve")))
        .collect();
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut serve = dpx.serve_wrapped(&wrapper, "127.0.0.1:0", &[], &[]);
    pull_through(&serve.addr, "library/tracedserve", "v1", &served)
        .unwrap_or_else(|e| panic!("through traced serve: {e:?}"));
    // SIGTERM to dpx itself (strace would only detach), then strace ends with it.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", serve.child.id()))
            .expect("strace's children");
    let dpx_pid = children.split_whitespace().next().expect("traced dpx pid");
    let _ = Command::new("kill").args(["-TERM", dpx_pid]).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(serve.child.try_wait(), Ok(Some(_))) {
        assert!(Instant::now() < deadline, "traced serve did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kinds =
        assert_synced_before_visible(&traced_threads(&traces, "serve"), &dpx.cache, "dpx serve");
    for k in blob_media_tag {
        assert!(kinds.contains(k), "dpx serve stored no {k}: {kinds:?}");
    }
    eprintln!("dpx serve: fsynced before visible, directory fsynced after: {kinds:?}");
    let _ = (pulled, imported);
    assert_verify_clean(&dpx, "after the traced runs");
}

#[test]
fn a_purge_during_a_pulls_tag_check_leaves_no_tag_record_without_its_manifest() {
    let hub = FakeHub::start();
    let digest = hub.add_image("library/checked", "v1", &[50_000], 1960);
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["-q", "pull", "checked:v1"]);
    // The next pull reads the cached tag and manifest, then HEADs the tag:
    // slowly, so that a purge forgets the image meanwhile.
    hub.set_manifest_head_delay(Duration::from_millis(1500));
    hub.reset_counts();
    let pull = dpx
        .command()
        .args(["--json", "pull", "checked:v1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn dpx pull");
    crate::support::dpx::wait_for("the pull's HEAD", Duration::from_secs(20), || {
        hub.count(crate::support::hub::Route::ManifestHead) > 0
    });
    dpx.ok(&["purge", "--image", "checked:v1"]);
    let out = pull.wait_with_output().expect("the pull");
    crate::support::assert_success(&out, "the pull");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["images"][0]["digest"].as_str(), Some(digest.as_str()));
    // It exited 0 after the purge: what it printed is cached, its tag
    // record has its manifest.
    assert_printed_is_cached(&dpx, &v, "a pull whose image was purged mid-check");
    assert_verify_clean(&dpx, "a pull whose image was purged mid-check");
}
