//! Connections and load against `dpx serve`: thousands of idle clients,
//! slowloris clients and clients that stop reading, each closed after its
//! documented timeout while a new client is still served; then 200 clients
//! mixing cached and cold pulls with every byte checked, RSS and latency stated.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::dpx::{Dpx, sha256_hex};
use crate::support::http::request;
use crate::support::hub::{FakeHub, noise};
use crate::support::proc::{open_fds, peak_rss_kb, raise_nofile, rss_kb, wait_for_fds_at_most};

/// The timeouts the test sets (`[serve]` settings; README "dpx serve"), short
/// to keep CI time low. Defaults: 30 s, 90 s, 60 s.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const IDLE_TIMEOUT: Duration = Duration::from_secs(6);
const SEND_TIMEOUT: Duration = Duration::from_secs(3);
/// How late after its timeout a connection may be closed: the server checks
/// idleness about once a second, and this machine is shared.
const LATE: Duration = Duration::from_secs(10);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Reads until EOF or reset; returns the bytes read, or an error past `wait`.
async fn read_to_close(s: &mut TcpStream, wait: Duration) -> Result<Vec<u8>, String> {
    let mut all = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Ok(all),
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => return Err(format!("still open after {wait:?}")),
        }
    }
}

/// How one held connection ended: seconds from just before its last byte
/// (its connect, its request) to its close.
#[derive(Debug)]
struct Closed {
    after: Duration,
    reply: Vec<u8>,
}

/// A connection that sends nothing.
async fn silent(addr: String) -> Result<Closed, String> {
    // From before the connect: serve's clock starts later, at its accept.
    let from = Instant::now();
    let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let reply = read_to_close(&mut s, HEADER_TIMEOUT + LATE * 2).await?;
    Ok(Closed {
        after: from.elapsed(),
        reply,
    })
}

/// One keep-alive request answered, then quiet.
async fn kept_alive(addr: String) -> Result<Closed, String> {
    let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    // From before the request: serve's last byte of the answer comes later.
    let from = Instant::now();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    // The whole answer: headers and the 2-byte body `{}`.
    while !head.ends_with(b"{}") {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed before the answer".into());
        }
        head.extend_from_slice(&buf[..n]);
    }
    if !head.starts_with(b"HTTP/1.1 200 ") {
        return Err(String::from_utf8_lossy(&head).into_owned());
    }
    let reply = read_to_close(&mut s, IDLE_TIMEOUT + LATE * 2).await?;
    Ok(Closed {
        after: from.elapsed(),
        reply,
    })
}

/// Slowloris: a request's headers dribbled a line every 200 ms, never ended.
async fn slowloris(addr: String) -> Result<Closed, String> {
    let from = Instant::now();
    let s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    let (mut r, mut w) = s.into_split();
    w.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        .await
        .map_err(|e| e.to_string())?;
    let dribble = async move {
        for i in 0u32.. {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if w.write_all(format!("X-{i}: a\r\n").as_bytes())
                .await
                .is_err()
            {
                return;
            }
        }
    };
    let reading = async {
        let mut reply = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => return reply,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
        }
    };
    let wait = HEADER_TIMEOUT + LATE * 2;
    tokio::select! {
        reply = reading => Ok(Closed { after: from.elapsed(), reply }),
        () = dribble => Ok(Closed { after: from.elapsed(), reply: Vec::new() }),
        () = tokio::time::sleep(wait) => Err(format!("still open after {wait:?}")),
    }
}

/// Asks for a large blob, reads its first bytes, stops reading; after the
/// send timeout has long passed, reads what is left: the server cut it off.
async fn stalled_reader(addr: String, path: String, size: usize) -> Result<Closed, String> {
    let mut s = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut first = vec![0u8; 4096];
    let n = s.read(&mut first).await.map_err(|e| e.to_string())?;
    if !first[..n].starts_with(b"HTTP/1.1 200 ") {
        return Err(String::from_utf8_lossy(&first[..n]).into_owned());
    }
    let from = Instant::now();
    tokio::time::sleep(SEND_TIMEOUT + Duration::from_secs(3)).await;
    let rest = read_to_close(&mut s, LATE * 2).await?;
    if n + rest.len() >= size {
        return Err(format!("all {size} bytes came: never cut off"));
    }
    Ok(Closed {
        after: from.elapsed(),
        reply: Vec::new(),
    })
}

/// The range of close times, for the report.
fn spread(closed: &[Closed]) -> (f64, f64) {
    let secs = closed.iter().map(|c| c.after.as_secs_f64());
    (
        secs.clone().fold(f64::MAX, f64::min),
        secs.fold(0.0, f64::max),
    )
}

#[test]
fn idle_slowloris_and_stalled_clients_are_closed_after_their_timeouts_and_fds_return_to_baseline() {
    // All at once: a burst of 3,120 connects (the kernel's accept queue is
    // capped by net.core.somaxconn, 4096 by default since Linux 5.4).
    let (idle_silent, idle_kept) = (2000, 1000);
    let (slow, stalled) = (100, 20);
    raise_nofile(2 * (idle_silent + idle_kept + slow + stalled) as u64 + 1024);
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/held", "v1", &[1024], 951);
    let size = 32 << 20;
    let blob = hub.add_blob(noise(952, size));
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        &format!(
            // No prefetch: the manifest GET below would start background
            // downloads whose temp files, locks and upstream connections come
            // and go around the descriptor baseline.
            "[serve]\nprefetch_blobs = false\nmax_connections = {}\nheader_timeout = \"{}s\"\nconnection_idle_timeout = \"{}s\"\nsend_timeout = \"{}s\"\n",
            idle_silent + idle_kept + slow + stalled + 100,
            HEADER_TIMEOUT.as_secs(),
            IDLE_TIMEOUT.as_secs(),
            SEND_TIMEOUT.as_secs()
        ),
    );
    let serve = dpx.serve();
    let pid = serve.child.id();
    let blob_path = format!("/v2/library/held/blobs/{blob}");
    let manifest_path = "/v2/library/held/manifests/v1";
    let r = request(&serve.addr, "GET", &blob_path, &[]);
    assert_eq!((r.status, r.body.len()), (200, size));
    assert_eq!(request(&serve.addr, "GET", manifest_path, &[]).status, 200);
    let baseline = open_fds(pid);
    let rss_before = rss_kb(pid);

    let rt = runtime();
    let addr = serve.addr.clone();
    let mut held = tokio::task::JoinSet::new();
    let opened = Instant::now();
    rt.block_on(async {
        for i in 0..idle_silent + idle_kept {
            let addr = addr.clone();
            if i < idle_silent {
                held.spawn(async move { ("idle, silent", silent(addr).await) });
            } else {
                held.spawn(async move { ("idle after a request", kept_alive(addr).await) });
            }
        }
        for _ in 0..slow {
            let addr = addr.clone();
            held.spawn(async move { ("slowloris", slowloris(addr).await) });
        }
        for _ in 0..stalled {
            let (addr, path) = (addr.clone(), blob_path.clone());
            held.spawn(async move { ("stopped reading", stalled_reader(addr, path, size).await) });
        }
    });
    // Every connection is open (and accepted: serve holds a descriptor each)
    // before a new client comes.
    let want = baseline + idle_silent + idle_kept + slow + stalled;
    let mut peak_fds = 0;
    while peak_fds < want && opened.elapsed() < HEADER_TIMEOUT * 3 / 4 {
        peak_fds = peak_fds.max(open_fds(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak_fds = peak_fds.max(open_fds(pid));
    let mut fresh = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let r = request(&serve.addr, "GET", manifest_path, &[]);
        fresh.push(started.elapsed());
        assert_eq!(r.status, 200, "a new client is served: {}", r.body_text());
        assert_eq!(format!("sha256:{}", sha256_hex(&r.body)), manifest);
    }
    let held_at_fresh = open_fds(pid);

    let mut by_class: std::collections::BTreeMap<&str, Vec<Closed>> = Default::default();
    let mut failures = Vec::new();
    rt.block_on(async {
        while let Some(done) = held.join_next().await {
            let (class, result) = done.expect("client task");
            match result {
                Ok(c) => by_class.entry(class).or_default().push(c),
                Err(e) => failures.push(format!("{class}: {e}")),
            }
        }
    });
    let failed = failures.len();
    failures.sort();
    failures.dedup();
    failures.truncate(20);
    if failed > 0 {
        failures.insert(
            0,
            format!("{failed} connections failed; fds now {}", open_fds(pid)),
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let fds_after = wait_for_fds_at_most(pid, baseline, Duration::from_secs(20));
    let peak = peak_rss_kb(pid);

    println!(
        "load connections: {} held ({idle_silent} silent, {idle_kept} idle after a request, {slow} slowloris, \
         {stalled} stopped reading a {} MiB blob); serve fds {baseline} at baseline, {peak_fds} at the peak \
         seen, {held_at_fresh} when new clients came, {fds_after} after",
        idle_silent + idle_kept + slow + stalled,
        size >> 20
    );
    println!(
        "load connections: new clients served in {:?}; RSS {} MiB before, peak {} MiB",
        fresh,
        rss_before / 1024,
        peak / 1024
    );
    for (class, closed) in &by_class {
        let (min, max) = spread(closed);
        if *class == "stopped reading" {
            println!(
                "load connections: {class}: {} found cut off short of the blob when read again {min:.1}-{max:.1}s \
                 after they stopped (send_timeout {SEND_TIMEOUT:?})",
                closed.len()
            );
            continue;
        }
        println!(
            "load connections: {class}: {} closed {min:.1}-{max:.1}s after their last byte (or connect)",
            closed.len()
        );
    }
    assert!(
        held_at_fresh >= baseline + idle_silent + idle_kept,
        "the idle connections were not all held when the new clients came ({held_at_fresh} fds, baseline {baseline})"
    );
    let slowest = fresh.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(1),
        "a new client waited {slowest:?} beside the held connections"
    );
    // Each class is closed after its timeout, not before, and not much later.
    for (class, timeout) in [
        ("idle, silent", HEADER_TIMEOUT),
        // README: an HTTP/1 connection between requests gets the shorter of the two.
        ("idle after a request", IDLE_TIMEOUT.min(HEADER_TIMEOUT)),
        ("slowloris", HEADER_TIMEOUT),
    ] {
        let closed = by_class.get(class).map(Vec::as_slice).unwrap_or_default();
        assert!(!closed.is_empty(), "{class}: none");
        let (min, max) = spread(closed);
        assert!(
            min >= timeout.as_secs_f64() - 0.05,
            "{class}: closed after {min:.2}s, before its timeout {timeout:?}"
        );
        assert!(
            max <= (timeout + LATE).as_secs_f64(),
            "{class}: open {max:.2}s, long after its timeout {timeout:?}"
        );
        for c in closed {
            assert!(
                !String::from_utf8_lossy(&c.reply).contains(" 200 "),
                "{class}: answered a request it never finished"
            );
        }
    }
    assert_eq!(
        by_class.get("stopped reading").map(Vec::len),
        Some(stalled),
        "every stalled reader was cut off"
    );
    assert!(
        fds_after <= baseline,
        "serve holds {fds_after} descriptors, {baseline} before the clients came"
    );
    assert!(serve.log_shows("incomplete: client left after"));
}

/// What the load's clients did.
#[derive(Default)]
struct Tally {
    requests: usize,
    errors: Vec<String>,
    wrong_bytes: usize,
    manifest_ms: Vec<f64>,
    cold_pulls: usize,
}

/// The 99th percentile of `ms` (sorted in place).
fn p99(ms: &mut [f64]) -> f64 {
    ms.sort_by(f64::total_cmp);
    ms.get((ms.len() * 99).div_ceil(100).saturating_sub(1))
        .copied()
        .unwrap_or(0.0)
}

fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// What the clients know to check bytes against.
struct Known {
    base: String,
    manifest: String,
    /// Cached blobs: digest and bytes.
    blobs: Vec<(String, Vec<u8>)>,
    /// Uncached images: `library/coldN:v1`.
    cold: usize,
    next_cold: std::sync::atomic::AtomicUsize,
}

/// One GET or HEAD; the body on a 2xx, else an error line.
async fn fetch(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    range: Option<String>,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), String> {
    let mut req = client
        .request(method.clone(), url)
        .header("accept", crate::support::http::ENGINE_ACCEPT);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("{method} {url}: {e}"))?;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("{method} {url}: body: {e}"))?;
    if !status.is_success() {
        return Err(format!("{method} {url}: {status}"));
    }
    Ok((status, headers, body.to_vec()))
}

/// One client: a mix of cached manifest HEAD/GET, cached blob GETs with and
/// without Range, and cold pulls, with a pause between requests, until `end`.
async fn client_loop(known: std::sync::Arc<Known>, end: Instant, seed: u64) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed);
    let client = reqwest::Client::new();
    let mut t = Tally::default();
    let tag_url = format!("{}/v2/library/hot/manifests/v1", known.base);
    while Instant::now() < end {
        // A pause as an engine's between layers and images: 200 clients
        // offer ~500 requests/s, under what a debug build serves on two cores.
        tokio::time::sleep(Duration::from_millis(rng.u64(200..=600))).await;
        let pick = rng.u32(0..100);
        let outcome: Result<bool, String> = async {
            match pick {
                0..30 => {
                    let started = Instant::now();
                    let (_, _, body) = fetch(&client, reqwest::Method::GET, &tag_url, None).await?;
                    t.manifest_ms.push(started.elapsed().as_secs_f64() * 1000.0);
                    t.requests += 1;
                    Ok(sha(&body) == known.manifest)
                }
                30..45 => {
                    let (_, h, _) = fetch(&client, reqwest::Method::HEAD, &tag_url, None).await?;
                    t.requests += 1;
                    Ok(h.get("docker-content-digest").and_then(|v| v.to_str().ok())
                        == Some(known.manifest.as_str()))
                }
                45..90 => {
                    let (digest, bytes) = &known.blobs[rng.usize(..known.blobs.len())];
                    let url = format!("{}/v2/library/hot/blobs/{digest}", known.base);
                    t.requests += 1;
                    if pick < 65 {
                        let (_, _, body) = fetch(&client, reqwest::Method::GET, &url, None).await?;
                        return Ok(sha(&body) == *digest);
                    }
                    let start = rng.usize(..bytes.len());
                    let end = rng.usize(start..bytes.len());
                    let range = format!("bytes={start}-{end}");
                    let (status, _, body) =
                        fetch(&client, reqwest::Method::GET, &url, Some(range)).await?;
                    Ok(status == 206 && sha(&body) == sha(&bytes[start..=end]))
                }
                _ => {
                    let n = known
                        .next_cold
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if n >= known.cold {
                        return Ok(true);
                    }
                    let url = format!("{}/v2/library/cold{n}/manifests/v1", known.base);
                    let (_, h, body) = fetch(&client, reqwest::Method::GET, &url, None).await?;
                    t.requests += 1;
                    let digest = h.get("docker-content-digest").and_then(|v| v.to_str().ok());
                    let mut right = digest == Some(sha(&body).as_str());
                    let m: serde_json::Value =
                        serde_json::from_slice(&body).map_err(|e| format!("{url}: {e}"))?;
                    let config = m["config"]["digest"].as_str().unwrap_or_default();
                    let layers = m["layers"].as_array().cloned().unwrap_or_default();
                    for d in std::iter::once(config)
                        .chain(layers.iter().filter_map(|l| l["digest"].as_str()))
                    {
                        let url = format!("{}/v2/library/cold{n}/blobs/{d}", known.base);
                        let (_, _, blob) = fetch(&client, reqwest::Method::GET, &url, None).await?;
                        t.requests += 1;
                        right &= sha(&blob) == d;
                    }
                    t.cold_pulls += 1;
                    Ok(right)
                }
            }
        }
        .await;
        match outcome {
            Ok(true) => {}
            Ok(false) => t.wrong_bytes += 1,
            Err(e) => t.errors.push(e),
        }
    }
    t
}

#[test]
fn two_hundred_clients_mixing_cached_and_cold_pulls_get_every_byte_right() {
    let clients = 200;
    let seconds = crate::support::scaled(15, 60) as u64;
    let cold = crate::support::scaled(150, 600);
    let hub = FakeHub::start();
    let manifest = hub.add_image("library/hot", "v1", &[16 << 10, 64 << 10, 256 << 10], 961);
    for i in 0..cold {
        hub.add_image(
            &format!("library/cold{i}"),
            "v1",
            &[32 << 10],
            10_000 + i as u64,
        );
    }
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    let pid = serve.child.id();
    let base = serve.url();
    let rt = runtime();

    // Cache the hot image, keeping its blobs to check ranges against.
    let mut blobs = Vec::new();
    for d in hub.layers(&manifest) {
        let r = request(
            &serve.addr,
            "GET",
            &format!("/v2/library/hot/blobs/{d}"),
            &[],
        );
        assert_eq!((r.status, sha(&r.body)), (200, d.clone()));
        blobs.push((d, r.body));
    }
    let known = std::sync::Arc::new(Known {
        base: base.clone(),
        manifest: manifest.clone(),
        blobs,
        cold,
        next_cold: std::sync::atomic::AtomicUsize::new(0),
    });
    let rss_before = rss_kb(pid);
    let tag_path = "/v2/library/hot/manifests/v1";
    assert_eq!(request(&serve.addr, "GET", tag_path, &[]).status, 200);

    // Unloaded: one client, the same manifest GET, one after another.
    let mut unloaded = rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("{base}/v2/library/hot/manifests/v1");
        let mut ms = Vec::new();
        for _ in 0..300 {
            let started = Instant::now();
            let (_, _, body) = fetch(&client, reqwest::Method::GET, &url, None)
                .await
                .expect("unloaded GET");
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(sha(&body), manifest);
        }
        ms
    });
    let unloaded_p99 = p99(&mut unloaded);
    let logged_before = wait_for_log_lines(&serve, tag_path, 301);

    let load_before = load_average();
    let end = Instant::now() + Duration::from_secs(seconds);
    let tallies = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..clients {
            set.spawn(client_loop(std::sync::Arc::clone(&known), end, 7000 + i));
        }
        let mut all = Vec::new();
        while let Some(t) = set.join_next().await {
            all.push(t.expect("client"));
        }
        all
    });
    let peak = peak_rss_kb(pid);
    // Measured before the load: our own clients raise it during.
    let busiest = load_before;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let mut total = Tally::default();
    for t in tallies {
        total.requests += t.requests;
        total.errors.extend(t.errors);
        total.wrong_bytes += t.wrong_bytes;
        total.manifest_ms.extend(t.manifest_ms);
        total.cold_pulls += t.cold_pulls;
    }
    let loaded_p99 = p99(&mut total.manifest_ms);
    // serve's own figures (its log's duration per request: head to last
    // byte), free of the test clients' scheduling on this shared machine.
    let logged = wait_for_log_lines(&serve, tag_path, 301 + total.manifest_ms.len());
    let (mut served_unloaded, mut served_loaded) = (
        logged_before[1..].to_vec(),
        logged[logged_before.len()..].to_vec(),
    );
    let (served_unloaded_p99, served_loaded_p99) =
        (p99(&mut served_unloaded), p99(&mut served_loaded));
    println!(
        "load: {clients} clients for {seconds}s: {} requests ({:.0}/s), {} errors, {} wrong bodies, \
         {} cold pulls of {cold}; serve RSS {} MiB before, peak {} MiB; cached manifest GET p99 {:.2} ms \
         unloaded, {:.2} ms loaded ({} samples): {:.1}x at the clients; in serve's log {:.2} ms and {:.2} ms: {:.1}x",
        total.requests,
        total.requests as f64 / seconds as f64,
        total.errors.len(),
        total.wrong_bytes,
        total.cold_pulls,
        rss_before / 1024,
        peak / 1024,
        unloaded_p99,
        loaded_p99,
        total.manifest_ms.len(),
        loaded_p99 / unloaded_p99,
        served_unloaded_p99,
        served_loaded_p99,
        served_loaded_p99 / served_unloaded_p99
    );
    total.errors.truncate(20);
    assert!(total.errors.is_empty(), "{}", total.errors.join("\n"));
    assert_eq!(total.wrong_bytes, 0, "bodies with the wrong bytes");
    assert!(total.cold_pulls > 0, "no cold pull ran");
    dpx.assert_store_consistent();
    assert!(
        peak < 512 * 1024,
        "serve's peak RSS {} MiB is over the 512 MiB bound",
        peak / 1024
    );
    // The p99 ratio is printed, not asserted: it is a timing goal, and on a
    // shared 2-core runner it measures the machine as much as dpx (seen: 317x
    // at load average 11-20, well under 10x on a quiet machine). Timing goals
    // live in the benchmark harness (bench/run), never in timed tests.
    println!("load: the machine's load average before: {busiest:.1} on {cpus} CPUs");
}

/// The durations serve logged for `GET <path> 200` (ms), once it has
/// logged at least `n` of them (the log reaches its file a moment later).
fn wait_for_log_lines(serve: &crate::support::dpx::Serve, path: &str, n: usize) -> Vec<f64> {
    let prefix = format!("GET {path} 200 ");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ms: Vec<f64> = serve
            .log_text()
            .lines()
            .filter_map(|l| {
                let rest = &l[l.find(&prefix)? + prefix.len()..];
                rest.split_whitespace()
                    .find_map(|w| w.strip_suffix("ms")?.parse().ok())
            })
            .collect();
        if ms.len() >= n || Instant::now() > deadline {
            assert!(
                ms.len() >= n,
                "serve logged {} of {n} GETs of {path}",
                ms.len()
            );
            return ms;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The 1-minute load average (runnable tasks), from /proc/loadavg.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// With an open-files limit below what `max_connections` needs, accept
/// would fail (EMFILE) and new clients would wait unanswered in the kernel's
/// queue until held ones time out; serve caps its connections to fit the
/// limit instead, so a new client gets the cap's 503 at once.
#[test]
fn under_a_low_open_files_limit_a_new_client_is_answered_not_left_queued() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nheader_timeout = \"30s\"\n",
    );
    let serve = dpx.serve_wrapped(
        &["sh", "-c", "ulimit -n 256 && exec \"$0\" \"$@\""],
        "127.0.0.1:0",
        &[],
        &[],
    );
    let held: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(&serve.addr).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let mut fresh = std::net::TcpStream::connect(&serve.addr).expect("connect");
    use std::io::{Read, Write};
    fresh
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("send");
    fresh
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = Vec::new();
    let _ = fresh.read_to_end(&mut reply);
    let waited = started.elapsed();
    let text = String::from_utf8_lossy(&reply);
    println!(
        "load fd limit: 300 held under ulimit -n 256; a new client answered in {waited:?}: {}",
        text.lines().next().unwrap_or("nothing")
    );
    assert!(
        text.starts_with("HTTP/1.1 503 ") && text.contains("max_connections"),
        "a new client got no answer in {waited:?} (serve out of descriptors?): {text}"
    );
    assert!(
        serve.log_shows("open files limit (256) allows"),
        "{}",
        serve.log_text()
    );
    assert!(
        !serve.log_text().contains("accept failed"),
        "{}",
        serve.log_text()
    );
    drop(held);
}
