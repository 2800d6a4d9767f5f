//! The upstream fault matrix (issue 19): each fault the fake hub makes —
//! wrong, short, long, endless and dripping bodies, resets, hangs before the
//! headers and mid-body, 500s, 429s with every `Retry-After` form, a token
//! endpoint down, hanging, slow or answering garbage, redirect loops, an HTML
//! page for a manifest, an oversized head — on a manifest and on a blob,
//! through `dpx pull` and through a client GET at `dpx serve`. For each run:
//! a clear error (the message, or the registry error code and message) or a
//! successful retry, within the documented deadline; nothing wrong stored
//! (`dpx cache verify --keep` clean, every blob hashing to its name, the
//! faulted content absent after an error); no panic; and, through serve, a
//! second client's cached GET answered while the fault is in flight.
//!
//! The documented deadline (README, "Every setting" and the retry rules): a
//! try gives up after `[network] low_speed_time` without progress, an
//! operation has `[network] retries` tries after the first, and the wait
//! between two tries is the backoff or a `Retry-After` of at most 10 s (a
//! longer one fails at once). The runs use `retries = 1` and
//! `low_speed_time = "2s"`, so a run's bound is
//! `ops × 2 tries × (2 s + wait) + slack`, `ops` being the operations that
//! meet the fault (a manifest's HEAD and GET; a blob's API and CDN hops; every
//! operation's token). The slack covers starting the debug binary on a busy
//! machine; the bound is a correctness limit (nothing waits for ever), not a
//! performance goal.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::dpx::{Dpx, sha256_hex};
use crate::support::http::{ENGINE_ACCEPT, request};
use crate::support::hub::{FakeHub, Fault, Reply, Route, TokenReply};

/// `[network]` for every run: one retry, 2 s without progress ends a try,
/// and a body slower than 100 B/s counts as no progress.
const NETWORK: &str =
    "[network]\nretries = 1\nlow_speed_time = \"2s\"\nlow_speed_limit = \"100B\"\n";
const RETRIES: u64 = 1;
const LOW_SPEED_TIME: u64 = 2;
/// Starting the debug binary (and serve) on a machine other tests load.
const SLACK: u64 = 20;
/// The longest backoff between two tries at `retries = 1` (200 ms × 1.5).
const BACKOFF: u64 = 1;
/// Runs at once: most of a run is waiting out a fault.
const PARALLEL: usize = 6;

/// What meets the fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Manifest,
    Blob,
    Token,
}

/// How the fault is made, with the hub's knobs (old ones first).
#[derive(Debug, Clone, Copy)]
enum Inject {
    /// `set_fault_on` the target's path (blob body faults: at the CDN hop).
    Fault(Fault, Option<usize>),
    /// `set_fault_on` with a `Retry-After` (`set_retry_after`).
    RetryAfter(Fault, RetryAfter, Option<usize>),
    /// `set_reply_on` the target's path.
    Reply(Reply, Option<usize>),
    /// `set_manifest_drip`.
    ManifestDrip,
    /// `set_captive_portal`.
    Portal,
    /// `set_redirect_loop` (blobs).
    RedirectLoop,
    /// `set_huge_head` (blobs).
    HugeHead,
    /// `set_token_reply`.
    Token(TokenReply),
}

#[derive(Debug, Clone, Copy)]
enum RetryAfter {
    Seconds,
    Date,
    FarFuture,
    Garbage,
}

impl RetryAfter {
    fn value(self) -> String {
        match self {
            RetryAfter::Seconds => "1".into(),
            RetryAfter::Date => {
                httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2))
            }
            RetryAfter::FarFuture => "Fri, 31 Dec 9999 23:59:59 GMT".into(),
            RetryAfter::Garbage => "soon, maybe".into(),
        }
    }

    /// The wait it asks for, at most (garbage: the backoff).
    fn wait(self) -> u64 {
        match self {
            RetryAfter::Seconds => 1,
            RetryAfter::Date => 3,
            RetryAfter::FarFuture => 0,
            RetryAfter::Garbage => BACKOFF,
        }
    }
}

/// What the client must see.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The image (or blob) arrives whole: the fault was tried past.
    Retried,
    /// `dpx pull` exits 1 saying `says`; serve answers a distribution error
    /// whose message says it: 404 `MANIFEST_UNKNOWN` for a manifest (Docker
    /// shows the message of a 4xx only), 503 `UNAVAILABLE` for a blob — or,
    /// for a blob whose first bytes were already sent, cuts the reply short.
    Fails(&'static str),
    /// The upstream answered with bytes dpx cannot use (not retried):
    /// `dpx pull` exits 1 saying `pull`; serve answers 502 `UNKNOWN` whose
    /// message says `serve` (the two differ where pull knows the size from
    /// the manifest and serve does not).
    BadReply {
        pull: &'static str,
        serve: &'static str,
    },
    /// The quota's refusal: `dpx pull` exits `exit` saying `says`; serve
    /// answers 429 `TOOMANYREQUESTS` whose message says it.
    Refused(i32, &'static str),
}

struct Case {
    name: &'static str,
    target: Target,
    inject: Inject,
    expect: Expect,
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Inject as I;
    use Target::{Blob, Manifest, Token};
    let ms = Duration::from_millis;
    let fail = Expect::Fails;
    let bad = |pull, serve| Expect::BadReply { pull, serve };
    let case = |name, target, inject, expect| Case {
        name,
        target,
        inject,
        expect,
    };
    vec![
        // Bodies: wrong, short, long, endless, dripping.
        case("wrong manifest body", Manifest, I::Reply(Reply::Wrong, None), bad("hashing to", "hashing to")),
        case("wrong blob body", Blob, I::Fault(Fault::CorruptBody, None), bad("hashing to", "hashing to")),
        case("short manifest body", Manifest, I::Reply(Reply::Short, None), fail("broke off")),
        case("short manifest body once", Manifest, I::Reply(Reply::Short, Some(1)), Expect::Retried),
        case("short blob body", Blob, I::Fault(Fault::TruncatedBody, None), fail("broke off")),
        case("short blob body once", Blob, I::Fault(Fault::TruncatedBody, Some(1)), Expect::Retried),
        case("long manifest body", Manifest, I::Reply(Reply::Long, None), bad("hashing to", "hashing to")),
        case("long blob body", Blob, I::Reply(Reply::Long, None), bad("larger than", "larger than")),
        case("endless manifest body", Manifest, I::Reply(Reply::Endless, None), fail("larger than")),
        case("endless blob body", Blob, I::Fault(Fault::EndlessBody, None), bad("larger than", "larger than")),
        case("dripping manifest body", Manifest, I::ManifestDrip, fail("slower than 100 B/s")),
        case("dripping blob body", Blob, I::Reply(Reply::Drip(ms(100)), None), fail("slower than 100 B/s")),
        // Resets and hangs.
        case("manifest reset", Manifest, I::Fault(Fault::ConnectionReset, None), fail("broke off")),
        case("blob reset", Blob, I::Fault(Fault::ConnectionReset, None), fail("broke off")),
        case("blob reset once", Blob, I::Fault(Fault::ConnectionReset, Some(1)), Expect::Retried),
        case("manifest hang before headers", Manifest, I::Fault(Fault::NoAnswer, None), fail("no reply within 2s")),
        case("blob hang before headers", Blob, I::Fault(Fault::NoAnswer, None), fail("no reply within 2s")),
        case("manifest hang mid-body", Manifest, I::Reply(Reply::StallHalfway, None), fail("slower than 100 B/s")),
        case("blob hang mid-body", Blob, I::Fault(Fault::StallAfter(1000), None), fail("slower than 100 B/s")),
        // Status answers.
        case("manifest 500", Manifest, I::Reply(Reply::Status(500), None), fail("answered 500")),
        case("manifest 500 once", Manifest, I::Reply(Reply::Status(500), Some(1)), Expect::Retried),
        case("blob 500", Blob, I::Reply(Reply::Status(500), None), fail("answered 500")),
        // A 429 to a manifest GET is the pull quota: dpx holds manifest GETs
        // back instead of retrying (README, "Rate limits"), whatever it asks.
        case("manifest 429 seconds", Manifest, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Seconds, Some(1)), Expect::Refused(3, "429")),
        case("manifest 429 date", Manifest, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Date, Some(1)), Expect::Refused(3, "429")),
        case("manifest 429 far future", Manifest, I::RetryAfter(Fault::TooManyRequests, RetryAfter::FarFuture, None), Expect::Refused(3, "429")),
        case("manifest 429 garbage", Manifest, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Garbage, None), Expect::Refused(3, "429")),
        case("blob 429 seconds once", Blob, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Seconds, Some(1)), Expect::Retried),
        case("blob 429 date once", Blob, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Date, Some(1)), Expect::Retried),
        case("blob 429 far future", Blob, I::RetryAfter(Fault::TooManyRequests, RetryAfter::FarFuture, None), Expect::Refused(1, "429")),
        case("blob 429 garbage", Blob, I::RetryAfter(Fault::TooManyRequests, RetryAfter::Garbage, None), Expect::Refused(1, "429")),
        // Token endpoint.
        case("token endpoint down", Token, I::Token(TokenReply::Down), fail("answered 503")),
        case("token endpoint hangs", Token, I::Token(TokenReply::Hang), fail("no reply within 2s")),
        case("token endpoint slow", Token, I::Token(TokenReply::Slow(ms(500))), Expect::Retried),
        case("token endpoint garbage", Token, I::Token(TokenReply::Garbage), fail("invalid token response")),
        // Redirect loops, HTML, oversized heads.
        case("manifest redirect loop", Manifest, I::Reply(Reply::RedirectLoop, None), fail("more than 5 redirects")),
        case("blob redirect loop", Blob, I::RedirectLoop, fail("more than 5 redirects")),
        case("manifest is an HTML page", Manifest, I::Portal, fail("text/html")),
        case("blob is an HTML page", Blob, I::Reply(Reply::Html, None), bad("ended after 56 of 200000 bytes", "hashing to")),
        case("manifest oversized head", Manifest, I::Reply(Reply::HugeHead, None), fail("head is too large")),
        case("blob oversized head", Blob, I::HugeHead, fail("head is too large")),
    ]
}

impl Case {
    /// Operations that meet the fault, for the deadline.
    fn ops(&self) -> u64 {
        match self.target {
            Target::Manifest | Target::Blob => 2,
            // The manifest's, the config's and the layer's.
            Target::Token => 3,
        }
    }

    fn wait(&self) -> u64 {
        match self.inject {
            Inject::RetryAfter(_, ra, _) => ra.wait(),
            Inject::Token(TokenReply::Slow(d)) => d.as_secs() + 1,
            _ => BACKOFF,
        }
    }

    /// The documented bound on one run, with slack.
    fn deadline(&self) -> Duration {
        let tries = RETRIES + 1;
        Duration::from_secs(self.ops() * tries * (LOW_SPEED_TIME + self.wait()) + SLACK)
    }

    /// Whether the fault holds a request open (the second client's GET is
    /// then answered while it is in flight).
    fn hangs(&self) -> bool {
        matches!(
            self.inject,
            Inject::Fault(Fault::NoAnswer | Fault::StallAfter(_), _)
                | Inject::Reply(Reply::StallHalfway | Reply::Drip(_), _)
                | Inject::ManifestDrip
                | Inject::Token(TokenReply::Hang)
        )
    }

    /// Injects the fault into `hub` for the image `repo:v1` whose layer is `layer`.
    fn inject(&self, hub: &FakeHub, layer: &str) {
        let cdn = format!("/cdn/{layer}");
        let api = format!("/blobs/{layer}");
        let path = match self.target {
            Target::Manifest | Target::Token => "/manifests/",
            Target::Blob => match self.inject {
                // Faults of the reply's head come from the registry API; body
                // faults from the hop that sends the bytes.
                Inject::Fault(Fault::NoAnswer, _) => api.as_str(),
                Inject::Fault(..) | Inject::RetryAfter(..) => cdn.as_str(),
                _ => layer,
            },
        };
        match self.inject {
            Inject::Fault(f, times) => hub.set_fault_on(path, f, times),
            Inject::RetryAfter(f, ra, times) => {
                hub.set_retry_after(Some(&ra.value()));
                hub.set_fault_on(path, f, times);
            }
            Inject::Reply(r, times) => hub.set_reply_on(path, Some(r), times),
            Inject::ManifestDrip => hub.set_manifest_drip(Some(Duration::from_millis(100))),
            Inject::Portal => hub.set_captive_portal(true),
            Inject::RedirectLoop => hub.set_redirect_loop(Some(layer)),
            Inject::HugeHead => hub.set_huge_head(Some(layer)),
            Inject::Token(t) => hub.set_token_reply(Some(t)),
        }
    }

    /// The hub route whose counter shows the faulted request arrived.
    fn route(&self) -> Route {
        match self.target {
            Target::Manifest => Route::ManifestGet,
            Target::Blob => match self.inject {
                Inject::Fault(Fault::NoAnswer, _)
                | Inject::Reply(..)
                | Inject::RedirectLoop
                | Inject::HugeHead => Route::BlobGet,
                _ => Route::CdnBlobGet,
            },
            Target::Token => Route::Token,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Client {
    Pull,
    Serve,
}

/// What one run saw, for the table and the failures.
struct Seen {
    case: &'static str,
    client: Client,
    outcome: String,
    secs: f64,
    upstream_faults: usize,
}

/// A reply read to its end or its cut, whatever it is.
struct Got {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body ended as its framing said (not cut short).
    complete: bool,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn error(&self) -> Option<(String, String)> {
        let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        let e = &v["errors"][0];
        Some((
            e["code"].as_str()?.to_string(),
            e["message"].as_str()?.to_string(),
        ))
    }
}

/// A GET that survives a reply cut short or a reset: what came, and whether whole.
fn get_tolerant(addr: &str, path: &str, timeout: Duration) -> Got {
    let mut s = TcpStream::connect(addr).expect("connect to dpx serve");
    s.set_read_timeout(Some(timeout)).expect("timeout");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: {ENGINE_ACCEPT}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Got {
            status: 0,
            headers: Vec::new(),
            body: raw,
            complete: false,
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = raw[split + 4..].to_vec();
    let mut got = Got {
        status,
        headers,
        body: Vec::new(),
        complete: false,
    };
    if let Some(len) = got
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        got.complete = rest.len() == len;
        got.body = rest;
    } else {
        // Chunked: whole when the last chunk came.
        let (body, whole) = dechunk(&rest);
        got.body = body;
        got.complete = whole;
    }
    got
}

fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let Ok(size) = usize::from_str_radix(String::from_utf8_lossy(&data[..eol]).trim(), 16)
        else {
            return (out, false);
        };
        if size == 0 {
            return (out, true);
        }
        let start = eol + 2;
        if data.len() < start + size + 2 {
            out.extend_from_slice(&data[start.min(data.len())..]);
            return (out, false);
        }
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
}

/// Runs dpx, killed (and reported) if it outlives `bound`.
fn run_within(dpx: &Dpx, args: &[&str], bound: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = dpx
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dpx");
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (child.wait_with_output().expect("output"), started.elapsed())
}

/// The checks every run ends with: nothing wrong stored, no temp file left.
fn check_cache(dpx: &Dpx, problems: &mut Vec<String>) {
    let out = dpx.run(&["--json", "cache", "verify", "--keep"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    if report["ok"] != true {
        problems.push(format!(
            "cache verify: {report} {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if dpx.cache.join("blobs/sha256").is_dir() {
        dpx.assert_store_consistent();
    }
    if !dpx.tmp_is_empty() {
        problems.push("a temp file was left in tmp/".into());
    }
}

struct Image {
    name: String,
    manifest: String,
    layer: String,
}

fn image(hub: &FakeHub, index: usize) -> Image {
    let name = format!("fault{index}");
    let manifest = hub.add_image(
        &format!("library/{name}"),
        "v1",
        &[200_000],
        900 + index as u64,
    );
    let layer = hub.layers(&manifest)[0].clone();
    Image {
        name,
        manifest,
        layer,
    }
}

fn run_pull(index: usize, case: &Case) -> (Seen, Vec<String>) {
    let hub = FakeHub::start();
    let img = image(&hub, index);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], NETWORK);
    case.inject(&hub, &img.layer);
    let deadline = case.deadline();
    let reference = format!("{}:v1", img.name);
    let (out, took) = run_within(&dpx, &["pull", &reference], deadline);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut problems = Vec::new();
    if took > deadline {
        problems.push(format!("still running after the deadline {deadline:?}"));
    }
    if err.contains("panicked") {
        problems.push(format!("panicked: {err}"));
    }
    let code = out.status.code().unwrap_or(-1);
    match case.expect {
        Expect::Retried => {
            if code != 0 {
                problems.push(format!("exit {code}, expected a retry to succeed: {err}"));
            }
            if !dpx.has_blob(&img.layer) || !dpx.has_blob(&img.manifest) {
                problems.push("the image is not cached after a successful pull".into());
            }
        }
        Expect::Fails(says) | Expect::Refused(_, says) | Expect::BadReply { pull: says, .. } => {
            let exit = match case.expect {
                Expect::Refused(exit, _) => exit,
                _ => 1,
            };
            if code != exit || !err.contains(says) {
                problems.push(format!(
                    "exit {code}, expected {exit} saying {says:?}: {err}"
                ));
            }
            let faulted = match case.target {
                Target::Manifest | Target::Token => &img.manifest,
                Target::Blob => &img.layer,
            };
            if dpx.has_blob(faulted) {
                problems.push(format!("{faulted} is cached after the pull failed"));
            }
        }
    }
    check_cache(&dpx, &mut problems);
    let last_line = err.lines().last().unwrap_or_default().to_string();
    let seen = Seen {
        case: case.name,
        client: Client::Pull,
        outcome: format!("exit {code}: {}", cut(&last_line)),
        secs: took.as_secs_f64(),
        upstream_faults: faulted_requests(&hub, case, &img.layer),
    };
    (seen, problems)
}

/// The requests that met the fault, from the hub's counters.
fn faulted_requests(hub: &FakeHub, case: &Case, layer: &str) -> usize {
    match case.inject {
        Inject::Reply(..) | Inject::Token(_) => hub.matrix_injected(),
        _ => match case.target {
            Target::Manifest => hub.count(Route::ManifestGet) + hub.count(Route::ManifestHead),
            Target::Blob => {
                hub.count_path(Route::CdnBlobGet, layer) + hub.count_path(Route::BlobGet, layer)
            }
            Target::Token => hub.count(Route::Token),
        },
    }
}

fn cut(s: &str) -> String {
    s.chars().take(160).collect()
}

fn run_serve(index: usize, case: &Case) -> (Seen, Vec<String>) {
    let hub = FakeHub::start();
    let img = image(&hub, index);
    let warm = hub.add_image("library/warm", "v1", &[1000], 7);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], NETWORK);
    let mut serve = dpx.serve();
    let warm_path = "/v2/library/warm/manifests/v1";
    let mut problems = Vec::new();
    assert_eq!(request(&serve.addr, "GET", warm_path, &[]).status, 200);
    let route = case.route();
    let before = hub.count(route);
    case.inject(&hub, &img.layer);
    let path = match case.target {
        Target::Manifest | Target::Token => format!("/v2/library/{}/manifests/v1", img.name),
        Target::Blob => format!("/v2/library/{}/blobs/{}", img.name, img.layer),
    };
    let deadline = case.deadline();
    let started = Instant::now();
    let faulted = {
        let (addr, path) = (serve.addr.clone(), path.clone());
        std::thread::spawn(move || get_tolerant(&addr, &path, deadline))
    };
    // The faulted request reached the hub: a cached GET is still answered.
    let arrived = wait_until(Duration::from_secs(SLACK), || hub.count(route) > before);
    if arrived {
        let other = request(&serve.addr, "GET", warm_path, &[]);
        if other.status != 200 || other.header("docker-content-digest") != Some(warm.as_str()) {
            problems.push(format!("a cached GET got {}", other.status));
        }
        if case.hangs() && faulted.is_finished() {
            problems.push("the hanging request ended before the cached GET was tried".into());
        }
    } else {
        problems.push("the faulted request never reached the hub".into());
    }
    let got = faulted.join().expect("client thread");
    let took = started.elapsed();
    if took > deadline {
        problems.push(format!("answered after the deadline {deadline:?}"));
    }
    let error = got.error();
    match case.expect {
        Expect::Retried => {
            let want = match case.target {
                Target::Blob => &img.layer,
                _ => &img.manifest,
            };
            if got.status != 200 || format!("sha256:{}", sha256_hex(&got.body)) != *want {
                problems.push(format!(
                    "{} {:?}, expected the content after a retry",
                    got.status, error
                ));
            }
        }
        Expect::Fails(says) | Expect::Refused(_, says) | Expect::BadReply { serve: says, .. } => {
            let (status, code) = match (case.expect, case.target) {
                (Expect::Refused(..), _) => (429, "TOOMANYREQUESTS"),
                (Expect::BadReply { .. }, _) => (502, "UNKNOWN"),
                (_, Target::Blob) => (503, "UNAVAILABLE"),
                _ => (404, "MANIFEST_UNKNOWN"),
            };
            let cut_short = got.status == 200 && !got.complete && case.target == Target::Blob;
            if got.status == 200 && !cut_short {
                problems.push(format!(
                    "200 with {} bytes (whole: {}) for a fault",
                    got.body.len(),
                    got.complete
                ));
            }
            if !cut_short {
                match &error {
                    Some((c, m)) if got.status == status && c == code && m.contains(says) => {}
                    _ => problems.push(format!(
                        "{} {:?}, expected {status} {code} saying {says:?}",
                        got.status, error
                    )),
                }
            }
        }
    }
    // What a client got whole is what it asked for.
    if got.status == 200 && got.complete {
        let digest = format!("sha256:{}", sha256_hex(&got.body));
        if digest != img.layer && digest != img.manifest {
            problems.push(format!("a whole 200 of other bytes ({digest})"));
        }
    }
    let faulted_content = match case.target {
        Target::Blob => &img.layer,
        _ => &img.manifest,
    };
    // A failed download's cleanup runs a moment after the client's answer.
    if !matches!(case.expect, Expect::Retried) {
        let _ = wait_until(Duration::from_secs(10), || {
            !dpx.has_blob(faulted_content) && dpx.tmp_is_empty()
        });
        if dpx.has_blob(faulted_content) {
            problems.push(format!("{faulted_content} is cached after a fault"));
        }
    }
    let _ = serve.stop();
    let log = serve.log_text();
    if log.contains("panicked") {
        problems.push(format!("serve panicked: {log}"));
    }
    check_cache(&dpx, &mut problems);
    let outcome = match &error {
        Some((c, m)) => format!("{} {c}: {}", got.status, cut(m)),
        None => format!(
            "{} {} bytes{}",
            got.status,
            got.body.len(),
            if got.complete { "" } else { " (cut short)" }
        ),
    };
    let seen = Seen {
        case: case.name,
        client: Client::Serve,
        outcome,
        secs: took.as_secs_f64(),
        upstream_faults: faulted_requests(&hub, case, &img.layer),
    };
    (seen, problems)
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn every_upstream_fault_gives_a_clear_error_or_a_retry_and_stores_nothing_wrong() {
    // FAULT_MATRIX_ONLY=words runs only the faults whose names contain them.
    let only = std::env::var("FAULT_MATRIX_ONLY").unwrap_or_default();
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.name.contains(only.as_str()))
        .collect();
    let runs: Vec<(usize, Client)> = (0..cases.len())
        .flat_map(|i| [(i, Client::Pull), (i, Client::Serve)])
        .collect();
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| {
                while let Some(&(i, client)) = runs.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let result = match client {
                        Client::Pull => run_pull(i, &cases[i]),
                        Client::Serve => run_serve(i, &cases[i]),
                    };
                    results
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(result);
                }
            });
        }
    });
    let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut failures = Vec::new();
    let mut upstream = 0;
    for (seen, problems) in &results {
        upstream += seen.upstream_faults;
        eprintln!(
            "{:<32} {:<5} {:>5.1}s {:>3} faulted  {}",
            seen.case,
            format!("{:?}", seen.client),
            seen.secs,
            seen.upstream_faults,
            seen.outcome
        );
        for p in problems {
            failures.push(format!("{} via {:?}: {p}", seen.case, seen.client));
        }
    }
    eprintln!(
        "fault matrix: {} faults × 2 clients = {} runs, {upstream} faulted upstream replies, {:.0}s",
        cases.len(),
        results.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A blob download through serve that fails as its bytes come (a wrong
/// digest) is answered: a 502 saying so, or a 200 cut short once some bytes
/// went out — never a connection closed before any answer, which a 200 whose
/// body failed before its head was written was.
#[test]
fn a_blob_that_fails_before_its_first_chunk_is_sent_is_answered_with_its_error() {
    let hub = FakeHub::start();
    let blobs: Vec<String> = (0..crate::support::scaled(20, 200))
        .map(|i| hub.add_blob(crate::support::hub::noise(5000 + i as u64, 3000)))
        .collect();
    hub.set_fault(Fault::CorruptBody);
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let mut answers = std::collections::BTreeMap::new();
    for blob in &blobs {
        let got = get_tolerant(
            &serve.addr,
            &format!("/v2/library/corrupt/blobs/{blob}"),
            Duration::from_secs(60),
        );
        let seen = match (got.status, got.error()) {
            (502, Some((code, message))) if code == "UNKNOWN" && message.contains("hashing to") => {
                "502 UNKNOWN"
            }
            (200, _) if !got.complete => "200 cut short",
            (status, error) => panic!("{blob}: {status} {error:?} (whole: {})", got.complete),
        };
        *answers.entry(seen).or_insert(0) += 1;
        assert!(!dpx.has_blob(blob));
    }
    eprintln!("corrupt blobs through serve: {answers:?}");
    assert!(!serve.log_text().contains("panicked"));
}
