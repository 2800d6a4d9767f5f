//! Raw HTTP/1.1 and HTTP/2 bytes against `dpx serve`: path traversal in every
//! spelling, bad digests and algorithms, names over the limits, header floods,
//! bodies on GET, and HTTP/2 abuse (rapid reset, a CONTINUATION flood, streams
//! beyond the advertised limit, many streams on one connection). Every answer
//! is a 4xx (routing errors with the distribution-spec JSON body), serve's
//! memory stays bounded, and nothing outside the cache is opened or created.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustix::fs::inotify;

use crate::protocol::SPEC_CODES;
use crate::support::dpx::{Dpx, Serve, sha256_hex};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Route};
use crate::support::proc::{peak_rss_kb, rss_kb};

/// How much serve's resident memory may grow over a hostile run. The figures
/// measured are printed; this is a generous cap on them, not a target.
const RSS_GROWTH_BOUND_KB: u64 = 96 * 1024;

/// Every upstream request the fake hub counts.
fn upstream_requests(hub: &FakeHub) -> usize {
    Route::ALL.into_iter().map(|r| hub.count(r)).sum()
}

/// Every path under `dir`, directories included.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.map_while(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            out.extend(tree(&path));
        }
        out.insert(path);
    }
    out
}

/// inotify on directories outside the cache: any open, creation or rename
/// in them (by serve: the test itself stays out while it watches).
struct Watch {
    fd: OwnedFd,
    dirs: Vec<(i32, PathBuf)>,
}

impl Watch {
    fn new(dirs: &[&Path]) -> Watch {
        let fd = inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)
            .expect("inotify_init");
        let flags = inotify::WatchFlags::OPEN
            | inotify::WatchFlags::CREATE
            | inotify::WatchFlags::MOVED_TO
            | inotify::WatchFlags::DELETE;
        let dirs = dirs
            .iter()
            .map(|d| {
                let wd = inotify::add_watch(&fd, *d, flags).expect("inotify_add_watch");
                (wd, d.to_path_buf())
            })
            .collect();
        Watch { fd, dirs }
    }

    /// What happened since the last call, as `path: flags` lines.
    fn events(&self) -> Vec<String> {
        let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        let mut out = Vec::new();
        while let Ok(e) = reader.next() {
            let dir = self
                .dirs
                .iter()
                .find(|(wd, _)| *wd == e.wd())
                .map_or_else(|| PathBuf::from("?"), |(_, d)| d.clone());
            let name = e
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(format!("{}: {:?}", dir.join(name).display(), e.events()));
        }
        out
    }
}

/// What one raw exchange brought back.
#[derive(Debug)]
struct Outcome {
    /// Everything the server sent before closing (or going quiet).
    raw: Vec<u8>,
    /// How many of our bytes went out before the server stopped taking them.
    written: usize,
    /// Whether the server closed the connection (EOF or reset) within the wait.
    closed: bool,
}

impl Outcome {
    fn status(&self) -> Option<u16> {
        let line = self.raw.split(|b| *b == b'\n').next()?;
        std::str::from_utf8(line)
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// The first response's body (by its Content-Length).
    fn body(&self) -> &[u8] {
        let Some(split) = self.raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return &[];
        };
        let head = String::from_utf8_lossy(&self.raw[..split]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let start = split + 4;
        &self.raw[start..(start + len).min(self.raw.len())]
    }

    fn responses(&self) -> usize {
        self.raw
            .windows(9)
            .filter(|w| w.starts_with(b"HTTP/1.") && w.ends_with(b" "))
            .count()
    }
}

/// Writes `bytes` (from a thread, so a server that answers early and closes
/// cannot make us lose its answer) while reading until the server closes or
/// stays quiet for `quiet`.
fn exchange(addr: &str, bytes: Vec<u8>, quiet: Duration) -> Outcome {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(quiet)).expect("timeout");
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        let mut written = 0;
        for chunk in bytes.chunks(64 * 1024) {
            if w.write_all(chunk).is_err() {
                break;
            }
            written += chunk.len();
        }
        written
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock) => break false,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut) => break false,
            Err(_) => break true,
        }
    };
    let _ = s.shutdown(Shutdown::Both);
    let written = writer.join().expect("writer");
    Outcome {
        raw,
        written,
        closed,
    }
}

/// Whether it is a 4xx with the distribution-spec JSON error body.
fn spec_error(status: u16, body: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(body);
    if !(400..500).contains(&status) {
        return Err(format!("{status} {}", shorten(&text)));
    }
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("{status} body is not JSON ({e}): {}", shorten(&text)))?;
    let code = v["errors"][0]["code"].as_str().unwrap_or_default();
    if !SPEC_CODES.contains(&code) {
        return Err(format!(
            "{status} {code:?} is no spec code: {}",
            shorten(&text)
        ));
    }
    if v["errors"][0]["message"].as_str().is_none_or(str::is_empty) {
        return Err(format!("{status} no message: {}", shorten(&text)));
    }
    Ok(())
}

/// At most 200 characters of `s`, for failure lists.
fn shorten(s: &str) -> String {
    if s.chars().count() <= 200 {
        return s.to_string();
    }
    let head: String = s.chars().take(200).collect();
    format!("{head}... ({} bytes)", s.len())
}

/// A served cache with one image, a canary file next to the cache and
/// another in a sibling directory, and the hub's counters at zero.
struct Target {
    hub: FakeHub,
    dpx: Dpx,
    serve: Serve,
    manifest: String,
    layer: String,
    canary: PathBuf,
    secret: String,
}

fn target(seed: u64) -> Target {
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/ok", "v1", &[256 * 1024], seed);
    let layer = hub.layers(&manifest)[0].clone();
    let dpx = Dpx::new(&hub.url());
    let secret = format!("CANARY-{:016x}", fastrand::u64(..));
    let canary = dpx.dir.path().join("canary.txt");
    std::fs::write(&canary, &secret).expect("canary");
    let outside = dpx.dir.path().join("outside");
    std::fs::create_dir(&outside).expect("outside dir");
    std::fs::write(outside.join("canary.txt"), &secret).expect("canary");
    let serve = dpx.serve();
    // Cached: the manifest and its layer, so valid requests need nobody upstream.
    let mut bodies = Vec::new();
    for path in [
        "/v2/library/ok/manifests/v1".to_string(),
        format!("/v2/library/ok/blobs/{layer}"),
    ] {
        let r = request(&serve.addr, "GET", &path, &[]);
        assert_eq!(r.status, 200, "{path}");
        bodies.push(r.body);
    }
    // And the config, which the manifest GET prefetches: stored before the
    // test's "before" picture of the files and its upstream count start
    // (it landed after them in one full-suite run).
    let doc: serde_json::Value = serde_json::from_slice(&bodies[0]).expect("manifest json");
    let config = doc["config"]["digest"]
        .as_str()
        .expect("config")
        .to_string();
    dpx.wait_stored("library/ok", "v1", &[layer.clone(), config]);
    hub.reset_counts();
    Target {
        hub,
        dpx,
        serve,
        manifest,
        layer,
        canary,
        secret,
    }
}

/// Every spelling of "up one directory" and of a separator we know of.
const DOTS: &[&str] = &[
    "..",
    "%2e%2e",
    "%2E%2e",
    "%2e.",
    ".%2E",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "%u002e%u002e",
    "..%00",
    "....",
    ".",
];
const SEPARATORS: &[&str] = &[
    "/", "%2f", "%2F", "%252f", "%5c", "%5C", "\\", "//", "/./", "%00/", ";/",
];

/// Request targets that try to reach `canary` (absolute) through the routes.
fn traversal_targets(canary: &Path, layer: &str) -> Vec<String> {
    let abs = canary.display().to_string();
    let mut out = Vec::new();
    for dot in DOTS {
        for sep in SEPARATORS {
            let up = format!("{dot}{sep}").repeat(6);
            out.extend([
                format!("/v2/{up}canary.txt/manifests/v1"),
                format!("/v2/library/ok/manifests/{up}canary.txt"),
                format!("/v2/library/ok/blobs/{up}canary.txt"),
                format!("/v2/library/ok/blobs/{layer}{sep}{up}canary.txt"),
                format!("/v2/library/{up}ok/tags/list"),
                format!("/v2/library/ok/referrers/{up}canary.txt"),
                format!("/v2/library/ok/manifests/v1?ns={up}"),
                format!("/{up}canary.txt"),
                format!("/v2{sep}{up}canary.txt"),
            ]);
        }
    }
    out.extend([
        abs.clone(),
        format!("/{abs}"),
        format!("/v2{abs}/manifests/v1"),
        format!("/v2/{abs}/manifests/v1"),
        format!("/v2/library/ok/blobs/{abs}"),
        format!("/v2/library/ok/manifests/{abs}"),
        format!("/v2/library/ok/manifests/v1?ns={abs}"),
        format!("/v2/library/ok/manifests/v1?ns=file://{abs}"),
        "/v2/library/ok/manifests/v1?ns=localhost%2f..%2f..".into(),
        "/v2/library/ok/manifests/v1?ns=..".into(),
        "/v2/library/ok/manifests/v1?ns=%2e%2e".into(),
        "/v2//library/ok/manifests/v1".into(),
        "/v2/library//ok/manifests/v1".into(),
        "//v2/library/ok/manifests/v1".into(),
        "/v2/library/ok/blobs//etc/passwd".into(),
        "/v2/library/ok/blobs/sha256:../../../../etc/passwd".into(),
        "/v2/library/ok/manifests/sha256:..%2f..%2fetc%2fpasswd".into(),
        "/etc/passwd".into(),
    ]);
    out
}

/// Digests of the wrong length, case, alphabet or algorithm.
fn bad_digests() -> Vec<String> {
    let hex = "0123456789abcdef".repeat(4);
    vec![
        format!("sha256:{}", &hex[..63]),
        format!("sha256:{hex}0"),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{}", "g".repeat(64)),
        format!("sha512:{hex}{hex}"),
        format!("sha384:{}", &format!("{hex}{hex}")[..96]),
        format!("md5:{}", &hex[..32]),
        format!("sha256+b64u:{}", "A".repeat(43)),
        format!("SHA256:{hex}"),
        format!("sha256::{hex}"),
        format!(":{hex}"),
        format!("sha256{hex}"),
        format!("sha256:{hex}x"),
        format!("sha256:{hex}%00"),
        format!("sha256:%30{}", &hex[1..]),
        format!("sha256:{}", "0".repeat(20_000)),
        format!("{}:{hex}", "a".repeat(10_000)),
        "sha256:".into(),
        ":".into(),
    ]
}

/// Names and tags over the distribution limits (name ≤ 255, tag ≤ 128).
fn names_over_limits() -> Vec<String> {
    let host = format!("{}.example", "h".repeat(300));
    vec![
        format!("/v2/{}/manifests/v1", "a".repeat(256)),
        format!("/v2/library/{}/manifests/v1", "a".repeat(248)),
        format!("/v2/{}/manifests/v1", "a".repeat(40_000)),
        format!("/v2/{}manifests/v1", "a/".repeat(200)),
        format!("/v2/{}manifests/v1", "a/".repeat(10_000)),
        format!("/v2/library/ok/manifests/{}", "t".repeat(129)),
        format!("/v2/library/ok/manifests/{}", "t".repeat(30_000)),
        format!("/v2/{host}/app/manifests/v1"),
        format!("/v2/library/ok/manifests/v1?ns={host}"),
        format!("/v2/library/ok/tags/list?n={}", "9".repeat(40)),
        "/v2/library/ok/tags/list?n=-1".into(),
        "/v2/Library/OK/manifests/v1".into(),
        "/v2/library/ok-/manifests/v1".into(),
        "/v2/library/_ok/manifests/v1".into(),
        "/v2/library/o__k__/manifests/v1".into(),
    ]
}

#[test]
fn hostile_paths_digests_and_names_get_4xx_json_errors_and_nothing_outside_the_cache_is_touched() {
    let t = target(901);
    let outside = t.dpx.dir.path().join("outside");
    let before = tree(t.dpx.dir.path());
    let watch = Watch::new(&[t.dpx.dir.path(), &outside]);

    let mut targets = traversal_targets(&t.canary, &t.layer);
    let traversal = targets.len();
    for d in bad_digests() {
        for kind in ["blobs", "manifests", "referrers"] {
            // Without a colon it is a valid tag, which may be asked upstream.
            if kind != "manifests" || d.contains(':') {
                targets.push(format!("/v2/library/ok/{kind}/{d}"));
            }
        }
    }
    let digests = targets.len() - traversal;
    targets.extend(names_over_limits());
    let names = targets.len() - traversal - digests;

    let mut sent = 0;
    // Every case runs; the failures are listed together at the end.
    let mut failures = Vec::new();
    for path in &targets {
        for method in ["GET", "HEAD"] {
            let bytes = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nAccept: {}\r\nConnection: close\r\n\r\n",
                t.serve.addr,
                crate::support::http::ENGINE_ACCEPT
            );
            let out = exchange(&t.serve.addr, bytes.into_bytes(), Duration::from_secs(30));
            sent += 1;
            let what = format!("{method} {}", shorten(path));
            let text = String::from_utf8_lossy(&out.raw);
            assert!(!text.contains(&t.secret), "{what} served the canary");
            assert!(!text.contains("root:x:0:0"), "{what} served /etc/passwd");
            let Some(status) = out.status() else {
                failures.push(format!("{what}: no answer: {}", shorten(&text)));
                continue;
            };
            if method == "HEAD" {
                if !(400..500).contains(&status) {
                    failures.push(format!("{what}: {status}"));
                }
                continue;
            }
            if let Err(e) = spec_error(status, out.body()) {
                failures.push(format!("{what}: {e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {sent} hostile requests were not answered with a 4xx and a spec error body:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        upstream_requests(&t.hub),
        0,
        "hostile requests reached upstream: {:?}",
        t.hub.requests()
    );
    let events = watch.events();
    assert!(
        events.is_empty(),
        "serve touched files outside its cache: {events:?}"
    );
    // The watch sees what it should: the test's own read of the canary.
    assert_eq!(
        std::fs::read_to_string(&t.canary).expect("canary"),
        t.secret
    );
    let seen = watch.events();
    assert!(
        seen.iter().any(|e| e.contains("canary.txt")),
        "the watch saw nothing of the canary being read: {seen:?}"
    );
    let after = tree(t.dpx.dir.path());
    let new: Vec<_> = after.difference(&before).collect();
    assert!(new.is_empty(), "new files: {new:?}");
    // Still serving, the right bytes.
    let r = request(&t.serve.addr, "GET", "/v2/library/ok/manifests/v1", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), t.manifest);
    println!(
        "raw_http: {sent} hostile requests sent ({traversal} traversal targets, {digests} bad digests, \
         {names} names over limits; GET and HEAD each)"
    );
}

/// What a malformed or oversized request should get.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// hyper refuses it before dpx sees it: this status, no body, closed.
    Refused(u16),
    /// dpx answers it normally (the request is valid HTTP): 200.
    Served,
    /// Answered once, then closed: what follows its body is not read as
    /// another request (RFC 9112 §6.1: chunked wins over Content-Length).
    ServedOnce,
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: {}\r\n{extra}\r\n",
        crate::support::http::ENGINE_ACCEPT
    )
    .into_bytes()
}

fn with_body(mut head: Vec<u8>, body_len: usize) -> Vec<u8> {
    head.extend(std::iter::repeat_n(b'x', body_len));
    head
}

/// Header floods, malformed framing and bodies on GET.
fn flood_cases() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let m = "/v2/library/ok/manifests/v1";
    let many = |n: usize| (0..n).map(|i| format!("X-H{i}: v\r\n")).collect::<String>();
    let chunks: String = (0..20_000)
        .map(|_| "400\r\n".to_string() + &"c".repeat(1024) + "\r\n")
        .collect();
    vec![
        ("100 headers", get(m, &many(96)), Expect::Served),
        ("101 headers", get(m, &many(101)), Expect::Refused(431)),
        ("100,000 headers", get(m, &many(100_000)), Expect::Refused(431)),
        ("one 300 KB header", get(m, &format!("X-Big: {}\r\n", "b".repeat(300_000))), Expect::Served),
        ("one 1 MiB header", get(m, &format!("X-Big: {}\r\n", "b".repeat(1 << 20))), Expect::Refused(431)),
        ("a 64 MiB header line with no end", get(m, &format!("X-Big: {}", "b".repeat(64 << 20))), Expect::Refused(431)),
        ("a 100 KB Accept", get(m, &format!("Accept: {}\r\n", "text/plain, ".repeat(8_000))), Expect::Served),
        ("a 100 KB Range of 10,000 ranges", get(m, &format!("Range: bytes={}0-1\r\n", "0-1,".repeat(10_000))), Expect::Served),
        ("a 100 KB Authorization", get(m, &format!("Authorization: Bearer {}\r\n", "t".repeat(100_000))), Expect::Served),
        ("a header without a colon", get(m, "NoColonHere\r\n"), Expect::Refused(400)),
        ("an obs-fold continuation line", get(m, "X-A: a\r\n  folded\r\n"), Expect::Refused(400)),
        ("a NUL in a header value", get(m, "X-A: a\0b\r\n"), Expect::Refused(400)),
        ("a space before the colon", get(m, "X-A : a\r\n"), Expect::Refused(400)),
        ("two different Content-Lengths", get(m, "Content-Length: 1\r\nContent-Length: 2\r\n"), Expect::Refused(400)),
        ("Content-Length -1", get(m, "Content-Length: -1\r\n"), Expect::Refused(400)),
        ("Content-Length 2^70", get(m, "Content-Length: 1180591620717411303424\r\n"), Expect::Refused(400)),
        ("Transfer-Encoding gzip only", get(m, "Transfer-Encoding: gzip\r\n"), Expect::Refused(400)),
        ("Content-Length and chunked (smuggling)", format!("GET {m} HTTP/1.1\r\nHost: x\r\nAccept: {}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET {m} HTTP/1.1\r\nHost: x\r\n\r\n", crate::support::http::ENGINE_ACCEPT).into_bytes(), Expect::ServedOnce),
        ("a GET with a 1 TB Content-Length and 16 MiB sent", with_body(get(m, "Content-Length: 1000000000000\r\n"), 16 << 20), Expect::Served),
        ("a GET with 20 MiB of chunks and no end", [get(m, "Transfer-Encoding: chunked\r\n"), chunks.into_bytes()].concat(), Expect::Served),
        ("a GET with a chunk of 2^64 - 1 bytes", [get(m, "Transfer-Encoding: chunked\r\n"), b"ffffffffffffffff\r\nxx".to_vec()].concat(), Expect::Served),
        ("a GET with Expect: 100-continue and 1 GB", get(m, "Expect: 100-continue\r\nContent-Length: 1000000000\r\n"), Expect::Served),
        ("a request line of 70 KB", get(&format!("/v2/{}", "a".repeat(70_000)), ""), Expect::Refused(414)),
        ("HTTP/1.1 without Host", format!("GET {m} HTTP/1.1\r\nConnection: close\r\nAccept: {}\r\n\r\n", crate::support::http::ENGINE_ACCEPT).into_bytes(), Expect::Served),
        ("HTTP/0.9", format!("GET {m}\r\n\r\n").into_bytes(), Expect::Refused(400)),
        ("HTTP/3.0 in the request line", format!("GET {m} HTTP/3.0\r\nHost: x\r\n\r\n").into_bytes(), Expect::Refused(400)),
        ("binary garbage", (0..=255u8).cycle().take(1 << 20).collect(), Expect::Refused(400)),
    ]
}

#[test]
fn header_floods_malformed_framing_and_bodies_on_get_are_refused_or_ignored_in_bounded_memory() {
    let t = target(902);
    let pid = t.serve.child.id();
    let rss_before = rss_kb(pid);
    let mut sent = 0;
    let mut failures = Vec::new();
    for (name, bytes, expect) in flood_cases() {
        let len = bytes.len();
        let started = Instant::now();
        let out = exchange(&t.serve.addr, bytes, Duration::from_secs(20));
        sent += 1;
        let status = out.status();
        let ok = match expect {
            Expect::Refused(code) => status == Some(code) && out.closed && out.responses() == 1,
            Expect::Served => {
                status == Some(200)
                    && sha256_hex(out.body()) == t.manifest.trim_start_matches("sha256:")
            }
            Expect::ServedOnce => {
                status == Some(200)
                    && sha256_hex(out.body()) == t.manifest.trim_start_matches("sha256:")
                    && out.closed
                    && out.responses() == 1
            }
        };
        println!(
            "raw_http flood: {name}: {status:?}, {} of {len} bytes taken, closed {} after {:.1}s",
            out.written,
            out.closed,
            started.elapsed().as_secs_f64()
        );
        if !ok {
            failures.push(format!(
                "{name}: expected {expect:?}, got {status:?} (closed: {}): {}",
                out.closed,
                shorten(&String::from_utf8_lossy(&out.raw))
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // The same floods from 64 clients at once: memory stays bounded.
    let addr = t.serve.addr.clone();
    let cases = std::sync::Arc::new(flood_cases());
    let clients: Vec<_> = (0..64)
        .map(|i| {
            let (addr, cases) = (addr.clone(), std::sync::Arc::clone(&cases));
            std::thread::spawn(move || {
                let (_, bytes, _) = &cases[i % cases.len()];
                exchange(&addr, bytes.clone(), Duration::from_secs(20)).status()
            })
        })
        .collect();
    for c in clients {
        assert!(
            c.join().expect("flood client").is_some(),
            "a flood client got no answer"
        );
        sent += 1;
    }
    let (rss_after, peak) = (rss_kb(pid), peak_rss_kb(pid));
    println!(
        "raw_http flood: {sent} requests; serve RSS {} MiB before, {} MiB after, peak {} MiB (bound: +{} MiB)",
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
        RSS_GROWTH_BOUND_KB / 1024
    );
    assert!(
        peak < rss_before + RSS_GROWTH_BOUND_KB,
        "serve's peak RSS {peak} KiB grew more than {RSS_GROWTH_BOUND_KB} KiB over {rss_before} KiB"
    );
    let r = request(&t.serve.addr, "GET", "/v2/library/ok/manifests/v1", &[]);
    assert_eq!(r.status, 200, "still serving");
}

// --- HTTP/2 (h2c, prior knowledge) ---

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("frame size");
    let mut f = len.to_be_bytes()[1..].to_vec();
    f.extend([kind, flags]);
    f.extend(stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix, the first byte's other bits `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// A literal (not Huffman) HPACK string.
fn hpack_str(out: &mut Vec<u8>, s: &[u8]) {
    hpack_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// `GET <path>` on `http`: `:method GET` and `:scheme http` from the static
/// table, `:path` and `:authority` as literals with indexed names.
fn request_block(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86];
    hpack_int(&mut b, 0x00, 4, 4);
    hpack_str(&mut b, path.as_bytes());
    hpack_int(&mut b, 0x00, 4, 1);
    hpack_str(&mut b, b"x");
    b
}

/// What the server sent on a raw HTTP/2 connection.
#[derive(Debug, Default)]
struct H2Seen {
    frames: [usize; 10],
    answered: BTreeSet<u32>,
    reset: BTreeSet<u32>,
    goaway: Option<u32>,
    closed: bool,
}

/// A raw HTTP/2 connection: we write frames; a thread reads the server's,
/// acknowledging its SETTINGS and PINGs, until it closes or goes quiet.
struct H2Raw {
    writer: Arc<Mutex<TcpStream>>,
    reader: std::thread::JoinHandle<H2Seen>,
}

impl H2Raw {
    fn open(addr: &str) -> H2Raw {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let writer = Arc::new(Mutex::new(s.try_clone().expect("clone")));
        let acks = Arc::clone(&writer);
        let reader = std::thread::spawn(move || read_frames(s, &acks));
        let h = H2Raw { writer, reader };
        h.send(&[PREFACE.to_vec(), frame(SETTINGS, 0, 0, &[])].concat());
        h
    }

    /// Whether the server took the bytes.
    fn send(&self, bytes: &[u8]) -> bool {
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(bytes).is_ok()
    }

    fn finish(self) -> H2Seen {
        self.reader.join().expect("frame reader")
    }
}

fn read_frames(mut s: TcpStream, acks: &Mutex<TcpStream>) -> H2Seen {
    let mut seen = H2Seen::default();
    let mut head = [0u8; 9];
    loop {
        if let Err(e) = s.read_exact(&mut head) {
            seen.closed = !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            );
            return seen;
        }
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        if s.read_exact(&mut payload).is_err() {
            seen.closed = true;
            return seen;
        }
        if let Some(n) = seen.frames.get_mut(usize::from(kind)) {
            *n += 1;
        }
        let ack = |f: Vec<u8>| {
            let _ = acks.lock().unwrap_or_else(|p| p.into_inner()).write_all(&f);
        };
        match kind {
            SETTINGS if flags & ACK == 0 => ack(frame(SETTINGS, ACK, 0, &[])),
            PING if flags & ACK == 0 => ack(frame(PING, ACK, 0, &payload)),
            HEADERS => {
                seen.answered.insert(stream);
            }
            RST_STREAM => {
                seen.reset.insert(stream);
            }
            GOAWAY if payload.len() >= 8 => {
                seen.goaway = Some(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
            }
            _ => {}
        }
    }
}

/// How long a fresh client waits for `GET /v2/` (panics past 10 s).
fn fresh_client_wait(addr: &str) -> Duration {
    let started = Instant::now();
    let r = request(addr, "GET", "/v2/", &[]);
    assert_eq!(r.status, 200, "a fresh client is served");
    started.elapsed()
}

#[test]
fn http2_rapid_reset_continuation_flood_and_streams_over_the_limit_leave_serve_responsive() {
    let t = target(903);
    let pid = t.serve.child.id();
    let rss_before = rss_kb(pid);
    let mut sent_frames = 0usize;

    // Rapid reset (CVE-2023-44487): open a stream and cancel it at once, again and again.
    let pairs = crate::support::scaled(20_000, 200_000);
    let h = H2Raw::open(&t.serve.addr);
    let block = request_block("/v2/");
    let mut taken = 0;
    for batch in 0..pairs / 100 {
        let mut bytes = Vec::new();
        for i in 0..100 {
            let stream = u32::try_from(2 * (batch * 100 + i) + 1).expect("stream id");
            bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, stream, &block));
            bytes.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes()));
        }
        if !h.send(&bytes) {
            break;
        }
        taken += 100;
    }
    sent_frames += 2 * taken;
    let during = fresh_client_wait(&t.serve.addr);
    let rapid = h.finish();
    println!(
        "raw_http h2 rapid reset: {taken} of {pairs} HEADERS+RST_STREAM pairs taken; {} answered, \
         GOAWAY {:?}, closed {}; a fresh client waited {:?}",
        rapid.answered.len(),
        rapid.goaway,
        rapid.closed,
        during
    );
    assert!(
        taken == pairs || rapid.goaway.is_some() || rapid.closed,
        "the server neither took every stream nor ended the connection: {rapid:?}"
    );

    // CONTINUATION flood (CVE-2024-27316 and kin): a header block that never ends.
    let h = H2Raw::open(&t.serve.addr);
    let mut first = request_block("/v2/");
    first.truncate(3);
    let mut filler = Vec::new();
    while filler.len() < 16_000 {
        filler.push(0x00);
        hpack_str(&mut filler, b"x-flood");
        hpack_str(&mut filler, &[b'a'; 100]);
    }
    h.send(&frame(HEADERS, END_STREAM, 1, &first));
    let mut continuations = 0;
    let budget = crate::support::scaled(4096, 16_384); // 16,000 bytes each: 64 MiB in CI
    while continuations < budget && h.send(&frame(CONTINUATION, 0, 1, &filler)) {
        continuations += 1;
    }
    sent_frames += continuations + 1;
    let flood = h.finish();
    println!(
        "raw_http h2 CONTINUATION flood: {continuations} of {budget} frames taken; GOAWAY {:?}, closed {}",
        flood.goaway, flood.closed
    );
    assert!(
        continuations < budget && (flood.goaway.is_some() || flood.closed),
        "an endless header block was taken whole: {flood:?}"
    );

    // 1,000 streams opened at once, over the advertised limit (200).
    let h = H2Raw::open(&t.serve.addr);
    let mut bytes = Vec::new();
    let streams = 1000u32;
    for i in 0..streams {
        bytes.extend(frame(HEADERS, END_STREAM | END_HEADERS, 2 * i + 1, &block));
    }
    assert!(h.send(&bytes), "the server took the streams");
    sent_frames += streams as usize;
    let over = h.finish();
    let accounted = over.answered.union(&over.reset).count();
    println!(
        "raw_http h2 1,000 streams at once: {} answered, {} reset, GOAWAY {:?}, DATA frames {}",
        over.answered.len(),
        over.reset.len(),
        over.goaway,
        over.frames[usize::from(DATA)]
    );
    assert!(!over.answered.is_empty(), "no stream answered: {over:?}");
    assert!(
        accounted == streams as usize || over.goaway.is_some(),
        "{} of {streams} streams neither answered nor refused, and no GOAWAY: {over:?}",
        streams as usize - accounted
    );

    let (rss_after, peak) = (rss_kb(pid), peak_rss_kb(pid));
    println!(
        "raw_http h2: {sent_frames} frames sent; serve RSS {} MiB before, {} MiB after, peak {} MiB \
         (bound: +{} MiB)",
        rss_before / 1024,
        rss_after / 1024,
        peak / 1024,
        RSS_GROWTH_BOUND_KB / 1024
    );
    assert!(
        peak < rss_before + RSS_GROWTH_BOUND_KB,
        "serve's peak RSS {peak} KiB grew more than {RSS_GROWTH_BOUND_KB} KiB over {rss_before} KiB"
    );
    assert!(
        fresh_client_wait(&t.serve.addr) < Duration::from_secs(1),
        "a fresh client waited more than a second after the HTTP/2 abuse"
    );
}

/// Many concurrent streams over one HTTP/2 connection (a well-behaved client
/// at the advertised limit): every one gets the right bytes.
#[test]
fn many_concurrent_http2_streams_on_one_connection_get_the_right_bytes() {
    let t = target(904);
    let streams = crate::support::scaled(1000, 10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let addr = t.serve.addr.clone();
    let (manifest, layer) = (t.manifest.clone(), t.layer.clone());
    let ok = rt.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        // Windows as engines set them (Go: 1 GiB per connection, 4 MiB per
        // stream). With h2's 64 KiB defaults, hundreds of streams share one
        // 64 KiB window, the server sends them DATA frames of a few bytes,
        // and h2 0.4.20 takes that for abuse (ENHANCE_YOUR_CALM).
        let (client, conn) = h2::client::Builder::new()
            .initial_connection_window_size(256 << 20)
            .initial_window_size(4 << 20)
            .handshake::<_, bytes::Bytes>(tcp)
            .await
            .expect("h2 handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        // A client learns the server's stream limit from its SETTINGS: one
        // request first, so the rest respect it (streams sent before are refused).
        let mut first = client.clone().ready().await.expect("ready");
        let (resp, _) = first
            .send_request(
                http::Request::get("http://x/v2/")
                    .body(())
                    .expect("request"),
                true,
            )
            .expect("send");
        assert_eq!(resp.await.expect("first response").status(), 200);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..streams {
            let mut client = client.clone();
            let (path, want) = if i % 2 == 0 {
                ("/v2/library/ok/manifests/v1".to_string(), manifest.clone())
            } else {
                (format!("/v2/library/ok/blobs/{layer}"), layer.clone())
            };
            tasks.spawn(async move {
                let req = http::Request::get(format!("http://x{path}"))
                    .header("accept", crate::support::http::ENGINE_ACCEPT)
                    .body(())
                    .expect("request");
                client = client.ready().await.map_err(|e| format!("ready: {e}"))?;
                let (resp, _) = client
                    .send_request(req, true)
                    .map_err(|e| format!("send: {e}"))?;
                let resp = resp.await.map_err(|e| format!("response: {e}"))?;
                let status = resp.status();
                let mut body = resp.into_body();
                let mut bytes = Vec::new();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk.map_err(|e| format!("body: {e}"))?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                    bytes.extend_from_slice(&chunk);
                }
                let got = format!("sha256:{}", sha256_hex(&bytes));
                if status != 200 || got != want {
                    return Err(format!("{path}: {status}, {got}"));
                }
                Ok::<_, String>(())
            });
        }
        let mut ok = 0;
        while let Some(done) = tasks.join_next().await {
            done.expect("stream task")
                .unwrap_or_else(|e| panic!("stream {ok}: {e}"));
            ok += 1;
        }
        ok
    });
    println!("raw_http h2: {ok} concurrent streams on one connection, every body's sha256 right");
    assert_eq!(ok, streams);
}
