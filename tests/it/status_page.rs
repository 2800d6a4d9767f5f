//! The status page (`GET /` on `dpx serve`) in a real browser: headless
//! Chromium loads it after known pulls through the fake hub, runs its script
//! (which fetches `/_dpx/page.json` and fills the DOM), and the test reads
//! the rendered DOM's figures. Plus its headers, access rule and escaping.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::dpx::{Dpx, Serve};
use crate::support::http::{RawResponse, request, request_exact};
use crate::support::hub::{FakeHub, Fault, HeaderStyle, Route};

/// What Chromium left: the DOM after its script ran, and its log.
struct Rendered {
    dom: String,
    log: String,
}

impl Rendered {
    /// Lines of the browser console (script errors, CSP refusals): the page
    /// itself logs nothing, so any is a fault.
    fn console(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught") || l.contains("Refused"))
            .collect()
    }

    /// The start tags of the DOM, each as its name and attributes.
    fn tags(&self) -> Vec<Tag> {
        start_tags(&self.dom)
    }

    /// The attribute `attr` of the element whose id is `id`.
    fn attr(&self, id: &str, attr: &str) -> String {
        self.tags()
            .into_iter()
            .find(|t| t.get("id") == Some(id))
            .unwrap_or_else(|| panic!("no element #{id} in the DOM:\n{}", self.dom))
            .get(attr)
            .unwrap_or_else(|| panic!("#{id} has no {attr}"))
            .to_string()
    }

    fn number(&self, id: &str, attr: &str) -> u64 {
        let v = self.attr(id, attr);
        v.parse()
            .unwrap_or_else(|_| panic!("#{id} {attr}={v:?} is no number"))
    }

    /// The image rows, in the order the table shows them.
    fn image_rows(&self) -> Vec<Tag> {
        self.tags()
            .into_iter()
            .filter(|t| t.name == "tr" && t.get("data-tag").is_some())
            .collect()
    }
}

#[derive(Debug)]
struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

impl Tag {
    fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The start tags of serialized HTML (as Chromium writes it: attribute
/// values double-quoted, `"` and `&` escaped).
fn start_tags(html: &str) -> Vec<Tag> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if !rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
            continue;
        }
        let end = tag_end(rest);
        let inside = &rest[..end];
        rest = &rest[end..];
        let name_len = inside
            .find(|c: char| c.is_whitespace() || c == '/')
            .unwrap_or(inside.len());
        let mut attrs = Vec::new();
        let mut a = &inside[name_len..];
        loop {
            a = a.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
            if a.is_empty() {
                break;
            }
            let key_len = a
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(a.len());
            let key = a[..key_len].to_string();
            a = &a[key_len..];
            let value = if let Some(v) = a.strip_prefix("=\"") {
                let close = v.find('"').unwrap_or(v.len());
                a = v.get(close + 1..).unwrap_or("");
                unescape(&v[..close])
            } else {
                String::new()
            };
            attrs.push((key, value));
        }
        tags.push(Tag {
            name: inside[..name_len].to_ascii_lowercase(),
            attrs,
        });
    }
    tags
}

/// Where a start tag ends (its `>`, not one inside a quoted value).
fn tag_end(s: &str) -> usize {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '>' if !quoted => return i,
            _ => {}
        }
    }
    s.len()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Loads `url` in headless Chromium (a fresh profile, nothing but the page
/// on the network), lets its timers run for 5 s of virtual time, and
/// returns the DOM; `screenshot` also writes a 1280x900 PNG there.
fn chromium(url: &str, screenshot: Option<&Path>) -> Rendered {
    let profile = tempfile::tempdir().expect("browser profile dir");
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    if let Some(png) = screenshot {
        cmd.arg(format!("--screenshot={}", png.display()))
            .arg("--window-size=1280,900");
    }
    cmd.arg("--dump-dom").arg(url);
    let log_path = profile.path().join("chromium.log");
    let log_file = std::fs::File::create(&log_path).expect("browser log file");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(log_file)
        .stdin(Stdio::null())
        .spawn()
        .expect("run chromium (Debian package `chromium`; scripts/test.sh installs it)");
    let mut stdout = child.stdout.take().expect("chromium stdout");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut dom).map(|_| dom)
    });
    // A browser that hangs is a failure, not a stuck suite.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let dom = reader
        .join()
        .expect("reader thread")
        .expect("chromium's DOM");
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    assert!(dom.contains("<body"), "no DOM from chromium:\n{dom}\n{log}");
    Rendered { dom, log }
}

fn loaded(r: &Rendered) {
    let body = r
        .tags()
        .into_iter()
        .find(|t| t.name == "body")
        .expect("a body");
    assert_ne!(
        body.get("data-loaded"),
        Some("0"),
        "the script never filled the page:\n{}\n{}",
        r.dom,
        r.log
    );
    assert_eq!(
        body.get("data-errors"),
        Some("0"),
        "script errors:\n{}",
        r.log
    );
    assert_eq!(body.get("data-fetch-failures"), Some("0"));
    assert!(r.console().is_empty(), "console: {:?}", r.console());
}

fn manifest(serve: &Serve, repo: &str, reference: &str) -> RawResponse {
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/{repo}/manifests/{reference}"),
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    resp
}

#[test]
fn the_page_shows_the_cache_pulls_and_quota_after_known_pulls() {
    let hub = FakeHub::start();
    hub.set_ratelimit(100, 97, 21_600, HeaderStyle::Standard);
    hub.add_image("library/app", "v2", &[300_000, 20_000], 31);
    hub.add_image("library/web", "v1", &[120_000], 32);
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[cache]\nmax_size = \"64MiB\"\n",
    );
    // Another process on the same cache: its counts reach the page through
    // the cache's record.
    dpx.ok(&["pull", "app:v2"]);
    let serve = dpx.serve();
    assert!(
        serve
            .startup
            .contains(&format!("dpx serve: status page: http://{}/", serve.addr)),
        "{}",
        serve.startup
    );
    // One GET upstream (and the image's blobs, as an engine pulls them),
    // then three answers from the cache; app:v2 (pulled above, within its
    // TTL) from the cache too.
    let web: serde_json::Value =
        serde_json::from_slice(&manifest(&serve, "library/web", "v1").body).expect("manifest");
    let blobs = web["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .chain([&web["config"]])
        .map(|d| d["digest"].as_str().expect("digest").to_string());
    for blob in blobs {
        let resp = request(
            &serve.addr,
            "GET",
            &format!("/v2/library/web/blobs/{blob}"),
            &[],
        );
        assert_eq!(resp.status, 200);
    }
    for _ in 0..3 {
        manifest(&serve, "library/web", "v1");
    }
    manifest(&serve, "library/app", "v2");
    assert_eq!(hub.count(Route::ManifestGet), 2, "one GET per image");

    let png = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page.png");
    let _ = std::fs::remove_file(&png);
    let page = chromium(&format!("{}/", serve.url()), Some(&png));
    loaded(&page);

    // Pulls saved, as `dpx stats` counts them (every process on the cache).
    let stats = dpx.json(&["stats"]);
    assert_eq!(page.number("pulls-upstream", "data-value"), 2);
    assert_eq!(page.number("pulls-from-cache", "data-value"), 4);
    assert_eq!(stats["upstream_manifest_gets"], 2, "{stats}");
    assert_eq!(stats["answered_without_get"], 4, "{stats}");
    // All of it within the last 24 hours' chart.
    assert_eq!(page.number("day-upstream", "data-value"), 2);
    assert_eq!(page.number("day-from-cache", "data-value"), 4);
    let hours: Vec<Tag> = page
        .tags()
        .into_iter()
        .filter(|t| t.name == "g" && t.get("data-hour").is_some())
        .collect();
    assert_eq!(hours.len(), 24, "one bar pair per hour");
    let charted: u64 = hours
        .iter()
        .map(|h| h.get("data-from-cache").unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(charted, 4);

    // The cached images, with the sizes and platforms `dpx cache ls` gives.
    let listed = dpx.json(&["cache", "ls"]);
    let listed = listed.as_array().expect("cache ls --json is a list");
    let rows = page.image_rows();
    assert_eq!(rows.len(), 2, "{}", page.dom);
    for row in &rows {
        let repo = row.get("data-repository").unwrap();
        let want = listed
            .iter()
            .find(|i| i["repository"] == repo)
            .unwrap_or_else(|| panic!("{repo} not in cache ls"));
        assert_eq!(row.get("data-tag"), want["tag"].as_str());
        assert_eq!(row.get("data-digest"), want["digest"].as_str());
        assert_eq!(row.get("data-registry"), Some("docker.io"));
    }
    let sizes: Vec<u64> = page
        .tags()
        .into_iter()
        .filter(|t| t.name == "td" && t.get("data-bytes").is_some())
        .map(|t| t.get("data-bytes").unwrap().parse().unwrap())
        .collect();
    let mut want: Vec<u64> = listed.iter().map(|i| i["size"].as_u64().unwrap()).collect();
    // Default order: last used first; compare as sets of sizes.
    let mut got = sizes.clone();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    assert!(
        want.iter().any(|s| *s > 320_000),
        "app:v2 was pulled whole: {want:?}"
    );
    assert!(page.dom.contains("linux/amd64"), "platforms shown");
    // The cache's size: every stored byte (the same as `dpx cache du`).
    let du = dpx.json(&["cache", "du"]);
    assert_eq!(page.number("cache-size", "data-bytes"), du["total"]);
    assert_eq!(page.number("cache-max", "data-bytes"), 64 << 20);

    // Upstream and quota: docker.io answered, 97 of 100 left (or fewer: the
    // fake hub counts the pulls down).
    let upstream = page
        .tags()
        .into_iter()
        .find(|t| t.name == "tr" && t.get("data-answers").is_some())
        .expect("an upstream row");
    assert_eq!(upstream.get("data-registry"), Some("docker.io"));
    assert_eq!(upstream.get("data-answers"), Some("true"));
    let quota = page
        .tags()
        .into_iter()
        .find(|t| t.name == "tr" && t.get("data-identity").is_some())
        .expect("a quota row");
    assert_eq!(quota.get("data-registry"), Some("docker.io"));
    assert!(page.dom.contains(">100<"), "the limit is shown");

    // The screenshot, for people to look at (docs/status-page.png).
    let shot = std::fs::read(&png).expect("the screenshot was written");
    assert!(
        shot.starts_with(b"\x89PNG\r\n\x1a\n") && shot.len() > 10_000,
        "a PNG of the page"
    );

    // Sorting by a header (kept in the address): largest first, then by name.
    let by_size = chromium(&format!("{}/#sort=-size", serve.url()), None);
    loaded(&by_size);
    let order: Vec<String> = by_size
        .image_rows()
        .iter()
        .map(|r| r.get("data-repository").unwrap().to_string())
        .collect();
    assert_eq!(order, ["library/app", "library/web"]);
    let by_name = chromium(&format!("{}/#sort=-repository", serve.url()), None);
    let order: Vec<String> = by_name
        .image_rows()
        .iter()
        .map(|r| r.get("data-repository").unwrap().to_string())
        .collect();
    assert_eq!(order, ["library/web", "library/app"]);
    assert!(
        by_name
            .dom
            .contains(r#"data-key="repository" aria-sort="descending""#),
        "the sorted header says so"
    );
}

#[test]
fn outside_text_is_shown_as_text_never_run() {
    let hub = FakeHub::start();
    // An upstream image whose config names a hostile "platform": the page
    // shows it, as text.
    let evil = r#"<script>document.body.dataset.pwned="1"</script><img src=x onerror="document.body.dataset.pwned=2">"#;
    let config = serde_json::json!({"architecture": "amd64", "os": evil, "rootfs": {"type": "layers", "diff_ids": []}})
        .to_string()
        .into_bytes();
    let config_size = config.len();
    let config_digest = hub.add_blob(config);
    let m = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": []
    });
    hub.add_manifest(
        "library/evil",
        Some("v1"),
        "application/vnd.oci.image.manifest.v1+json",
        m.to_string().into_bytes(),
    );
    let dpx = Dpx::new(&hub.url());
    dpx.ok(&["pull", "evil:v1"]);
    let serve = dpx.serve();
    let page = chromium(&format!("{}/", serve.url()), None);
    loaded(&page);
    assert_eq!(page.image_rows().len(), 1, "{}", page.dom);
    assert!(
        page.dom
            .contains("&lt;script&gt;document.body.dataset.pwned"),
        "the text is shown escaped:\n{}",
        page.dom
    );
    let body = page.tags().into_iter().find(|t| t.name == "body").unwrap();
    assert_eq!(body.get("data-pwned"), None, "no injected code ran");
    assert!(
        !page.tags().iter().any(|t| t.get("src") == Some("x")),
        "no element was injected"
    );
    // Only the page's own script element.
    assert_eq!(page.tags().iter().filter(|t| t.name == "script").count(), 1);
}

#[test]
fn the_page_is_read_only_unframeable_and_unreadable_elsewhere() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    for path in ["/", "/_dpx/page.js", "/_dpx/page.css", "/_dpx/page.json"] {
        let resp = request_exact(&serve.addr, "GET", path, &[]);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body_text());
        let csp = resp.header("content-security-policy").unwrap_or("");
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: CSP {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: no inline script");
        for (name, value) in [
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-resource-policy", "same-origin"),
            ("cache-control", "no-store"),
        ] {
            assert_eq!(resp.header(name), Some(value), "{path}: {name}");
        }
        // No CORS grant: another origin's script cannot read it.
        assert_eq!(resp.header("access-control-allow-origin"), None, "{path}");
    }
    let html = request_exact(&serve.addr, "GET", "/", &[]).body_text();
    assert!(
        !html.contains("<form") && !html.contains("<script>"),
        "no form, no inline script"
    );
    let json = request_exact(&serve.addr, "GET", "/_dpx/page.json", &[]);
    assert_eq!(json.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&json.body).expect("page JSON");
    assert_eq!(v["pulls"]["hours"].as_array().map(Vec::len), Some(24));

    // Nothing that changes anything: other methods are refused.
    for method in ["POST", "PUT", "DELETE"] {
        for path in ["/", "/_dpx/page.json"] {
            let resp = request_exact(&serve.addr, method, path, &[]);
            assert_eq!(resp.status, 405, "{method} {path}");
            assert_eq!(resp.header("x-frame-options"), Some("DENY"));
        }
    }
    // A site that points its own name at 127.0.0.1 (DNS rebinding) is
    // answered nothing: the browser would call that same-origin.
    let rebound = raw_get_with_host(&serve.addr, "/_dpx/page.json", "evil.example");
    assert!(rebound.starts_with("HTTP/1.1 403"), "{rebound}");
    assert!(!rebound.contains("\"pulls\""), "{rebound}");
    let local = raw_get_with_host(&serve.addr, "/_dpx/page.json", "localhost:5000");
    assert!(local.starts_with("HTTP/1.1 200"), "{local}");
}

/// A GET with exactly this `Host` header; the whole answer as text.
fn raw_get_with_host(addr: &str, path: &str, host: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to dpx");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

#[test]
fn with_client_auth_the_page_is_open_on_this_machine_but_not_to_a_rebound_name() {
    // The rule /metrics follows too: open to clients on this machine (a
    // browser there cannot send the registry's Bearer token), behind the gate
    // from elsewhere (tests/it/metrics.rs checks that from another address),
    // and never to a request that names some other host.
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve.auth]\nenabled = true\n",
    );
    let serve = dpx.serve();
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 401);
    for path in ["/", "/_dpx/page.json", "/metrics"] {
        let resp = request_exact(&serve.addr, "GET", path, &[]);
        assert_eq!(resp.status, 200, "{path}: {}", resp.body_text());
        let rebound = raw_get_with_host(&serve.addr, path, "evil.example:5000");
        assert!(rebound.starts_with("HTTP/1.1 403"), "{path}: {rebound}");
        assert!(
            rebound.contains("DENIED") && !rebound.contains("pulls"),
            "{path}: {rebound}"
        );
    }
    let data = request_exact(&serve.addr, "GET", "/_dpx/page.json", &[]);
    assert!(
        data.body_text().contains("\"pulls\""),
        "{}",
        data.body_text()
    );
}

#[test]
fn daemon_status_and_doctor_name_the_page() {
    let hub = FakeHub::start();
    let dpx = Dpx::new(&hub.url());
    // A foreground serve takes the daemon slot, so `dpx daemon status` sees it.
    let serve = dpx.serve();
    let page = format!("http://{}/", serve.addr);
    assert!(serve.startup.contains(&format!("status page: {page}")));
    let status = dpx.json(&["daemon", "status"]);
    assert_eq!(status["status_page"], page.as_str(), "{status}");
    let human = dpx.ok(&["daemon", "status"]);
    assert!(
        human.contains(&format!("page       {page} (status page")),
        "{human}"
    );
    let out = dpx
        .command()
        .env("DPX_LISTEN", &serve.addr)
        .args(["--json", "doctor"])
        .output()
        .expect("run dpx doctor");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let serve_check = report["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["check"] == "serve"))
        .unwrap_or_else(|| panic!("no serve check: {report}"));
    assert_eq!(serve_check["status"], "ok", "{serve_check}");
    assert!(
        serve_check["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("status page: {page}"))),
        "{serve_check}"
    );
}

#[test]
fn downloads_in_flight_are_listed_while_they_run() {
    let hub = FakeHub::start();
    let image = hub.add_image("library/big", "v1", &[1 << 20], 41);
    let layer = hub.layers(&image)[0].clone();
    let dpx = Dpx::new(&hub.url());
    let serve = dpx.serve();
    manifest(&serve, "library/big", "v1");
    // The blob's body stops halfway until released: in flight while the page loads.
    hub.set_fault_on(&layer, Fault::StallHalfway, Some(1));
    let addr = serve.addr.clone();
    let path = format!("/v2/library/big/blobs/{layer}");
    let pull = std::thread::spawn(move || request(&addr, "GET", &path, &[]).status);
    crate::support::dpx::wait_for("the download's first half", Duration::from_secs(20), || {
        let json = request_exact(&serve.addr, "GET", "/_dpx/page.json", &[]);
        let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap_or_default();
        v["downloads"][0]["digest"] == layer.as_str() && v["downloads"][0]["received"] == 512 * 1024
    });
    let page = chromium(&format!("{}/", serve.url()), None);
    loaded(&page);
    let row = page
        .tags()
        .into_iter()
        .find(|t| t.name == "tr" && t.get("data-digest") == Some(layer.as_str()))
        .unwrap_or_else(|| panic!("no row for the download:\n{}", page.dom));
    assert!(
        row.get("data-tag").is_none(),
        "a download row, not an image"
    );
    assert!(
        page.dom.contains("docker.io/library/big"),
        "its image is named"
    );
    assert!(
        page.dom.contains("512.0 KiB of 1.0 MiB"),
        "its progress is shown"
    );
    hub.release();
    assert_eq!(pull.join().expect("the pull"), 200);
    // Stored (the client's last byte goes once the digest is verified, the
    // move into the store follows): no longer in flight.
    crate::support::dpx::wait_for(
        "the download to leave the list",
        Duration::from_secs(20),
        || {
            let json = request_exact(&serve.addr, "GET", "/_dpx/page.json", &[]);
            let v: serde_json::Value = serde_json::from_slice(&json.body).unwrap_or_default();
            v["downloads"] == serde_json::json!([])
        },
    );
}
