//! `dpx serve` against misbehaving or hostile local clients: connection cap,
//! idle and half-open connections, which upstream hosts it will contact, and
//! its log formats.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::dpx::{Dpx, wait_for};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};

/// Reads until the server closes the connection (generous deadline).
fn read_until_closed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut all = Vec::new();
    s.read_to_end(&mut all)?;
    Ok(all)
}

#[test]
fn connections_beyond_the_cap_get_a_503_and_normal_service_resumes_when_they_close() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nmax_connections = 50\n",
    );
    let serve = dpx.serve();
    // 50 idle clients take every slot: prove each one is held by the server
    // (a request on the 50th would answer), then open 10 more.
    let idle: Vec<TcpStream> = (0..50)
        .map(|_| TcpStream::connect(&serve.addr).expect("connect"))
        .collect();
    // Accepts are in order: once a later connection is refused, all 50 are held.
    let mut extras = Vec::new();
    for _ in 0..10 {
        let mut s = TcpStream::connect(&serve.addr).expect("connect");
        // A client that sends a request and one that sends nothing both get the 503.
        if extras.len() % 2 == 0 {
            let _ = s.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        extras.push(s);
    }
    for (i, mut s) in extras.into_iter().enumerate() {
        let raw = read_until_closed(&mut s).unwrap_or_else(|e| panic!("extra {i}: {e}"));
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with("HTTP/1.1 503 "),
            "extra connection {i} got: {text}"
        );
        assert!(text.contains("\"code\":\"TOOMANYREQUESTS\""), "{text}");
        assert!(text.contains("max_connections"), "{text}");
    }
    assert!(
        serve
            .log_text()
            .lines()
            .all(|l| !l.contains("accept failed")),
        "{}",
        serve.log_text()
    );
    drop(idle);
    wait_for(
        "a normal request once the idle clients are gone",
        Duration::from_secs(20),
        || request(&serve.addr, "GET", "/v2/", &[]).status == 200,
    );
}

#[test]
fn a_silent_connection_and_an_idle_keep_alive_one_are_closed_after_the_idle_timeout() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nconnection_idle_timeout = \"1s\"\n",
    );
    let serve = dpx.serve();

    // Connected, never a byte sent (half-open from the server's view).
    let mut silent = TcpStream::connect(&serve.addr).expect("connect");
    let raw = read_until_closed(&mut silent).expect("the server closes a silent connection");
    assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));

    // One keep-alive request answered, then quiet.
    let mut kept = TcpStream::connect(&serve.addr).expect("connect");
    kept.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("send");
    let raw =
        read_until_closed(&mut kept).expect("the server closes an idle keep-alive connection");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1").count(),
        1,
        "one response, then EOF: {text}"
    );
}

#[test]
fn a_request_whose_headers_never_finish_is_cut_off_by_the_header_timeout() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nheader_timeout = \"1s\"\nconnection_idle_timeout = \"1h\"\n",
    );
    let serve = dpx.serve();
    let mut slow = TcpStream::connect(&serve.addr).expect("connect");
    // Enough bytes to pass protocol detection, then the headers stall while
    // a byte now and then keeps the connection from looking idle.
    slow.write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .expect("send");
    slow.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 1024];
    let mut got = Vec::new();
    loop {
        assert!(
            Instant::now() < deadline,
            "header timeout never closed the connection"
        );
        if slow.write_all(b"a").is_err() {
            break;
        }
        match slow.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(!text.contains(" 200 "), "{text}");
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 200);
}

#[test]
fn private_upstream_hosts_need_a_config_table_and_the_allow_list_is_exclusive() {
    let hub = FakeHub::start();
    let private = FakeHub::start();
    let digest = private.add_image("org/app", "1", &[10], 31);
    let host = private
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let port = host.rsplit(':').next().expect("port").to_string();

    // No table for the private host: refused, whatever name reaches it.
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "");
    let serve = dpx.serve();
    for path in [
        format!("/v2/{host}/org/app/manifests/1"),
        format!("/v2/org/app/manifests/1?ns={host}"),
        format!("/v2/org/app/manifests/1?ns=localhost:{port}"),
        format!("/v2/org/app/blobs/{digest}?ns={host}"),
    ] {
        let resp = request(&serve.addr, "GET", &path, &[]);
        assert_eq!(resp.status, 403, "{path}: {}", resp.body_text());
        assert_eq!(resp.error_code().as_deref(), Some("DENIED"), "{path}");
        assert!(
            resp.body_text().contains("[registries."),
            "{path}: {}",
            resp.body_text()
        );
    }
    assert_eq!(
        private.count(Route::ManifestGet) + private.count(Route::ManifestHead),
        0,
        "nothing reached the private host"
    );
    drop(serve);

    // With a table it is the user's choice, and it works.
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url()), (&host, &private.url())], "");
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/{host}/org/app/manifests/1"),
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    drop(serve);

    // An allow-list admits only its hosts, configured or not.
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url()), (&host, &private.url())],
        "[serve]\nregistries = [\"docker.io\"]\n",
    );
    let serve = dpx.serve();
    let resp = request(
        &serve.addr,
        "GET",
        &format!("/v2/org/app/manifests/1?ns={host}"),
        &[],
    );
    assert_eq!(resp.status, 403, "{}", resp.body_text());
    assert!(
        resp.body_text().contains("[serve] registries"),
        "{}",
        resp.body_text()
    );
    hub.add_image("library/allowed", "1", &[10], 32);
    let resp = request(&serve.addr, "GET", "/v2/library/allowed/manifests/1", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
}

#[test]
fn json_logs_one_object_per_request_and_verbose_shows_upstream_requests() {
    let hub = FakeHub::start();
    hub.add_image("library/logs", "1", &[10], 33);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "");

    let serve = dpx.serve_flags("127.0.0.1:0", &["--json"], &[]);
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 200);
    assert!(serve.log_shows("GET /v2/ 200"));
    let log = serve.log_text();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    assert!(
        lines.iter().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("GET /v2/ 200"))
        }),
        "{log}"
    );
    drop(serve);

    let serve = dpx.serve_flags("127.0.0.1:0", &["-v"], &[]);
    let resp = request(&serve.addr, "GET", "/v2/library/logs/manifests/1", &[]);
    assert_eq!(resp.status, 200);
    assert!(
        serve.log_shows(&format!(
            "upstream GET {}/v2/library/logs/manifests/1 200",
            hub.url().trim_end_matches('/')
        )),
        "{}",
        serve.log_text()
    );
}

#[test]
fn a_stale_reply_is_warned_about_once() {
    let hub = FakeHub::start();
    hub.add_image("library/stale1", "1", &[10], 34);
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "[cache]\ntag_ttl = \"0\"\n");
    let serve = dpx.serve();
    let path = "/v2/library/stale1/manifests/1";
    assert_eq!(request(&serve.addr, "GET", path, &[]).status, 200);
    hub.set_fault(Fault::Outage);
    let resp = request(&serve.addr, "GET", path, &[]);
    assert_eq!(resp.header("x-dpx-cache"), Some("stale"));
    assert!(serve.log_shows(&format!("GET {path} 200")));
    wait_for(
        "the stale request's log line",
        Duration::from_secs(10),
        || serve.log_text().matches(" stale ").count() >= 1,
    );
    // Retry warnings aside, one line says the cached copy was served.
    let warnings = serve
        .log_text()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("cached"))
        .count();
    assert_eq!(warnings, 1, "{}", serve.log_text());
}

#[test]
fn serve_raises_its_soft_open_files_limit_to_the_hard_limit() {
    let dpx = Dpx::new("http://127.0.0.1:9");
    let log = dpx.dir.path().join("stderr.txt");
    let inner = dpx.command();
    // Start it with a low soft limit, as many systems do (1024 or less).
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(inner.get_program())
        .args(inner.get_args())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("spawn");
    wait_for("the listening line", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("listening"))
    });
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("proc limits");
    let _ = child.kill();
    let _ = child.wait();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("open files line");
    let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    assert_ne!(numbers[0], "256", "soft limit not raised: {line}");
    assert_eq!(
        numbers[0], numbers[1],
        "soft limit below the hard one: {line}"
    );
}

/// DNS that changes its answer (rebinding): `evil.test` first fails to
/// resolve, then resolves to 127.0.0.1. dpx checks the addresses it connects
/// to, not an earlier lookup, so nothing reaches the loopback listener, and
/// the refusal reads the same whether the port is open or closed. (dpx runs in
/// a mount namespace with the test's hosts file and a dead name server, so no
/// lookup leaves the machine.)
#[test]
fn a_client_named_host_that_rebinds_to_loopback_never_gets_a_connection() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hub = FakeHub::start();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let open = listener.local_addr().expect("addr").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    std::thread::spawn(move || {
        for s in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            drop(s);
        }
    });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], "");
    let hosts = dpx.dir.path().join("hosts");
    let resolv = dpx.dir.path().join("resolv.conf");
    std::fs::write(&hosts, "127.0.0.1 localhost\n").expect("hosts");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.9\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let (hosts_arg, resolv_arg) = (
        hosts.to_str().expect("utf-8"),
        resolv.to_str().expect("utf-8"),
    );
    let serve = dpx.serve_wrapped(
        &[
            "unshare",
            "-m",
            "--",
            "sh",
            "-c",
            "mount --bind \"$1\" /etc/hosts && mount --bind \"$2\" /etc/resolv.conf && shift 2 && exec \"$@\"",
            "sh",
            hosts_arg,
            resolv_arg,
        ],
        "127.0.0.1:0",
        &[],
        &[],
    );
    let path = |host: &str, port: u16| format!("/v2/org/app/manifests/1?ns={host}:{port}");

    // Unresolvable: an error, and nothing remembered about the name.
    let resp = request(&serve.addr, "GET", &path("evil.test", open), &[]);
    assert_ne!(resp.status, 200, "{}", resp.body_text());
    // Now it resolves to loopback; so does a literal.
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 evil.test\n").expect("hosts");
    for host in ["evil.test", "127.0.0.1", "localhost"] {
        let mut bodies = Vec::new();
        for port in [open, closed] {
            let resp = request(&serve.addr, "GET", &path(host, port), &[]);
            assert_eq!(resp.status, 403, "{host}:{port}: {}", resp.body_text());
            assert_eq!(
                resp.error_code().as_deref(),
                Some("DENIED"),
                "{host}:{port}"
            );
            bodies.push(resp.body_text().replace(&port.to_string(), "PORT"));
        }
        assert_eq!(
            bodies[0], bodies[1],
            "{host}: the refusal tells nothing of the port"
        );
        assert!(bodies[0].contains("[registries."), "{}", bodies[0]);
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "dpx connected to the loopback listener"
    );
}

/// The header timeout runs from accept: a client that connects and sends
/// nothing (or only the HTTP/2 preface) is closed after it, not after the
/// longer idle timeout, so silent clients cannot hold every slot for long.
#[test]
fn silent_connections_are_closed_after_the_header_timeout_and_a_new_client_is_served() {
    let hub = FakeHub::start();
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nmax_connections = 20\nheader_timeout = \"1s\"\nconnection_idle_timeout = \"1h\"\n",
    );
    let serve = dpx.serve();
    let mut silent: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(&serve.addr).expect("connect"))
        .collect();
    silent[19]
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .expect("send the HTTP/2 preface");
    // The test keeps every socket open: only the server can free the slots.
    wait_for(
        "a new client served while the silent ones are still connected",
        Duration::from_secs(20),
        || request(&serve.addr, "GET", "/v2/", &[]).status == 200,
    );
    for (i, s) in silent.iter_mut().enumerate() {
        let raw = read_until_closed(s)
            .unwrap_or_else(|e| panic!("silent connection {i} was not closed: {e}"));
        // An HTTP/2 server may say goodbye (SETTINGS, GOAWAY); an HTTP/1 one says nothing.
        if i < 19 {
            assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
        }
    }
}

/// A client that asks for a large blob and stops reading holds its slot for
/// `send_timeout` at most; others are served meanwhile.
#[test]
fn a_client_that_stops_reading_a_blob_is_cut_off_after_the_send_timeout() {
    let hub = FakeHub::start();
    let size = 48 << 20;
    let digest = hub.add_blob(crate::support::hub::noise(0x5e4d, size));
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        "[serve]\nsend_timeout = \"1s\"\n",
    );
    let serve = dpx.serve();
    let path = format!("/v2/library/big/blobs/{digest}");
    let mut stalled = TcpStream::connect(&serve.addr).expect("connect");
    stalled
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .expect("send");
    let mut first = [0u8; 4096];
    let n = stalled.read(&mut first).expect("the response starts");
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200 "),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    // It reads no more. Others are served meanwhile...
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 200);
    // ...and the server gives up on it.
    wait_for(
        "the stalled transfer to be cut off",
        Duration::from_secs(30),
        || serve.log_text().contains(&format!("GET {path} 200")),
    );
    let line = serve
        .log_text()
        .lines()
        .find(|l| l.contains(&format!("GET {path} 200")))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("incomplete"), "{line}");
    let rest = read_until_closed(&mut stalled).unwrap_or_default();
    assert!(
        n + rest.len() < size,
        "the connection was closed before the whole blob went"
    );
    assert_eq!(request(&serve.addr, "GET", "/v2/", &[]).status, 200);
}
