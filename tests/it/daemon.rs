//! `dpx daemon`: start/status/stop/logs/ensure of the background `dpx serve`,
//! one per cache directory (lock + state file), the idle stop, stale state,
//! socket activation with `systemd-socket-activate`, and real dockerd pulls.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::dpx::{Dpx, wait_for};
use crate::support::engines::{engines, hub_image};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Route, noise};
use crate::support::layout::file_layer;

/// A cache with its own runtime dir (`XDG_RUNTIME_DIR`, or none: the state
/// then lives in the cache dir). Stops its daemon when dropped.
struct Fixture {
    dpx: Dpx,
    runtime: Option<PathBuf>,
}

impl Fixture {
    /// A daemon that stops by itself after `idle` should a test die early.
    fn new(hub: &FakeHub, idle: &str, xdg: bool) -> Fixture {
        let dpx = Dpx::with_registries(
            &[("docker.io", &hub.url())],
            &format!("[serve]\nidle_timeout = \"{idle}\"\n"),
        );
        let runtime = xdg.then(|| dpx.dir.path().join("run"));
        if let Some(r) = &runtime {
            std::fs::create_dir_all(r).expect("runtime dir");
        }
        Fixture { dpx, runtime }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.dpx.command();
        match &self.runtime {
            Some(r) => cmd.env("XDG_RUNTIME_DIR", r),
            None => cmd.env_remove("XDG_RUNTIME_DIR"),
        };
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run dpx")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dpx {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "dpx {args:?}: no JSON ({e}): {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Where the daemon's state lives: `$XDG_RUNTIME_DIR/dpx/<hash>/`, else `<cache>/daemon/`.
    fn state_dir(&self) -> PathBuf {
        match &self.runtime {
            Some(r) => {
                let dirs: Vec<PathBuf> = std::fs::read_dir(r.join("dpx"))
                    .expect("runtime dir dpx/")
                    .map(|e| e.expect("entry").path())
                    .collect();
                assert_eq!(dirs.len(), 1, "one runtime dir per cache: {dirs:?}");
                dirs[0].clone()
            }
            None => self.dpx.cache.join("daemon"),
        }
    }

    fn state_file(&self) -> PathBuf {
        self.state_dir().join("daemon.json")
    }

    fn running(&self) -> bool {
        let status = self.json(&["daemon", "status"]);
        status["running"].as_bool().expect("running")
    }

    fn start(&self) -> (String, u64) {
        let report = self.json(&["daemon", "start", "--listen", "127.0.0.1:0"]);
        (
            report["address"].as_str().expect("address").to_string(),
            report["pid"].as_u64().expect("pid"),
        )
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.run(&["daemon", "stop"]);
    }
}

/// Processes whose command line runs `serve --daemon` on this cache.
fn daemons_of(cache: &Path) -> Vec<u32> {
    let cache = cache.to_str().expect("utf-8");
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == cache) && args.iter().any(|a| a == "--daemon") {
            pids.push(pid);
        }
    }
    pids
}

fn alive(pid: u64) -> bool {
    // A zombie is gone for our purposes (its parent, init here, reaps it).
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn manifest_path(repo: &str, tag: &str) -> String {
    format!("/v2/{repo}/manifests/{tag}")
}

#[test]
fn start_status_logs_and_stop() {
    let hub = FakeHub::start();
    hub.add_image("library/daemonapp", "v1", &[1000], 11);
    let fx = Fixture::new(&hub, "120s", true);

    let (addr, pid) = fx.start();
    assert!(fx.state_file().is_file(), "the state is in the runtime dir");
    assert!(
        !fx.dpx.cache.join("daemon").exists(),
        "with XDG_RUNTIME_DIR nothing of the daemon is in the cache dir"
    );
    let path = manifest_path("library/daemonapp", "v1");
    assert_eq!(request(&addr, "GET", &path, &[]).status, 200);
    let second = request(&addr, "GET", &path, &[]);
    assert_eq!(second.header("x-dpx-cache"), Some("hit"));

    let status = fx.json(&["daemon", "status"]);
    assert_eq!(status["running"], true);
    assert_eq!(status["address"], addr.as_str());
    assert_eq!(status["pid"].as_u64(), Some(pid));
    let server = &status["server"];
    assert_eq!(server["pid"].as_u64(), Some(pid));
    assert!(
        server["requests"].as_u64().expect("requests") >= 2,
        "{server}"
    );
    assert_eq!(server["hits"].as_u64(), Some(1), "{server}");
    assert_eq!(server["misses"].as_u64(), Some(1), "{server}");
    assert_eq!(server["idle_timeout_secs"].as_u64(), Some(120));
    // The manifest is in the cache (its layers were not asked for).
    assert!(status["cache_size"].as_u64().expect("cache size") > 0);
    let human = fx.ok(&["daemon", "status"]);
    assert!(human.contains(&format!("http://{addr}")), "{human}");
    assert!(human.contains("1 hits, 1 misses"), "{human}");

    // The status endpoint answers outside /v2/, as JSON.
    let raw = request(&addr, "GET", "/_dpx/status", &[]);
    assert_eq!(raw.status, 200);
    let live: serde_json::Value = serde_json::from_str(&raw.body_text()).expect("json");
    assert_eq!(live["pid"].as_u64(), Some(pid));

    // `ensure` of a running daemon prints its address and starts nothing.
    assert_eq!(fx.ok(&["daemon", "ensure"]).trim(), addr);
    assert_eq!(daemons_of(&fx.dpx.cache), vec![pid as u32]);

    let logs = fx.ok(&["daemon", "logs"]);
    assert!(logs.contains(&format!("GET {path} 200")), "{logs}");
    assert!(logs.contains("dpx serve: listening on"), "{logs}");

    // `logs -f` goes on with lines written later.
    let mut follow = fx
        .command(&["daemon", "logs", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs -f");
    let out = follow.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(out)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("/v2/followed/"))
    });
    request(&addr, "GET", "/v2/followed/manifests/x", &[]);
    wait_for(
        "logs -f to show the new line",
        Duration::from_secs(20),
        || reader.is_finished(),
    );
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(reader.join().expect("reader").is_some());

    let out = fx.run(&["daemon", "stop"]);
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("stopped (pid {pid})")),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !fx.state_file().exists(),
        "a stopped daemon removes its state"
    );
    assert!(!alive(pid));
    let out = fx.run(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not running"));
    // Stopping again is no error.
    assert!(fx.run(&["daemon", "stop"]).status.success());
}

#[test]
fn the_daemon_log_rotates_by_size_and_keeps_a_bounded_number_of_files() {
    let hub = FakeHub::start();
    let fx = Fixture::new(&hub, "120s", true);
    let limit: u64 = 16 * 1024;
    let out = fx
        .command(&["--json", "daemon", "start", "--listen", "127.0.0.1:0"])
        .env("DPX_LOG_MAX_SIZE", "16KiB")
        .output()
        .expect("daemon start");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let addr = report["address"].as_str().expect("address").to_string();
    // About 80 bytes of log each: some 200 KB in all, twelve times the limit.
    for n in 0..2500 {
        assert_eq!(
            request(&addr, "GET", &format!("/v2/?n={n}"), &[]).status,
            200
        );
    }
    // The newest lines are in the current file (written in batches, a
    // moment after their response).
    let current = || std::fs::read_to_string(fx.state_dir().join("daemon.log")).expect("log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !current().contains("/v2/?n=2499") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(current().contains("/v2/?n=2499"), "{}", current());
    let logs: Vec<(String, u64)> = std::fs::read_dir(fx.state_dir())
        .expect("state dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().starts_with("daemon.log"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().expect("metadata").len())
        })
        .collect();
    let total: u64 = logs.iter().map(|(_, len)| len).sum();
    assert!(logs.len() <= 3, "{logs:?}");
    // A file is cut after the line that crossed the limit.
    assert!(logs.iter().all(|(_, len)| *len <= limit + 4096), "{logs:?}");
    assert!(total >= limit, "the log was written: {logs:?}");
}

#[test]
fn ten_concurrent_starts_leave_one_daemon_and_report_its_address() {
    let hub = FakeHub::start();
    let fx = Fixture::new(&hub, "120s", true);
    let children: Vec<Child> = (0..10)
        .map(|_| {
            fx.command(&["--json", "daemon", "start", "--listen", "127.0.0.1:0"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dpx daemon start")
        })
        .collect();
    let reports: Vec<serde_json::Value> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("wait");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice(&out.stdout).expect("json")
        })
        .collect();
    let first = &reports[0]["address"];
    assert!(
        reports.iter().all(|r| &r["address"] == first),
        "{reports:?}"
    );
    let started = reports.iter().filter(|r| r["started"] == true).count();
    assert_eq!(started, 1, "one of the ten started it: {reports:?}");
    let pid = reports[0]["pid"].as_u64().expect("pid");
    assert_eq!(
        daemons_of(&fx.dpx.cache),
        vec![pid as u32],
        "one daemon runs"
    );
    let addr = first.as_str().expect("address");
    assert_eq!(request(addr, "GET", "/v2/", &[]).status, 200);
}

#[test]
fn a_daemon_killed_with_sigkill_is_detected_and_cleaned_up() {
    let hub = FakeHub::start();
    // No XDG_RUNTIME_DIR: the state lives in the cache dir.
    let fx = Fixture::new(&hub, "120s", false);
    let (_, pid) = fx.start();
    assert!(fx.dpx.cache.join("daemon/daemon.json").is_file());
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
    // Gone means its lock is free: a killed process's other threads may
    // still hold its files for a moment after its main thread is a zombie.
    let lock = std::fs::File::open(fx.dpx.cache.join("daemon/daemon.lock")).expect("daemon lock");
    wait_for("the killed daemon to go", Duration::from_secs(10), || {
        !alive(pid) && lock.try_lock_shared().is_ok()
    });
    let _ = lock.unlock();
    assert!(fx.state_file().exists(), "a killed daemon leaves its state");

    let out = fx.run(&["daemon", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("pid {pid}")) && err.contains("gone without stopping"),
        "{err}"
    );
    assert!(!fx.state_file().exists(), "the stale state is removed");

    let (addr, new_pid) = fx.start();
    assert_ne!(new_pid, pid);
    assert_eq!(request(&addr, "GET", "/v2/", &[]).status, 200);
}

#[test]
fn a_state_file_naming_an_unrelated_live_process_is_stale_and_that_process_is_left_alone() {
    let hub = FakeHub::start();
    let fx = Fixture::new(&hub, "120s", true);
    // Make the runtime dir as a daemon would, then stop it.
    fx.start();
    fx.ok(&["daemon", "stop"]);
    // The pid was reused by another program: alive, but holding no lock.
    let mut other = Command::new("sleep").arg("60").spawn().expect("sleep");
    let state = serde_json::json!({
        "pid": other.id(), "address": "127.0.0.1:9", "started_at": 0,
        "cache_dir": fx.dpx.cache, "version": "0.1.0", "log": null
    });
    std::fs::write(fx.state_file(), state.to_string()).expect("state");

    let out = fx.run(&["daemon", "stop"]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gone without stopping"), "{err}");
    assert!(err.contains("not running"), "{err}");
    assert!(
        other.try_wait().expect("try_wait").is_none(),
        "the unrelated process was not signalled"
    );
    assert!(!fx.state_file().exists());
    // And a start is not fooled into reporting 127.0.0.1:9.
    let (addr, pid) = fx.start();
    assert_ne!(addr, "127.0.0.1:9");
    assert_ne!(pid, u64::from(other.id()));
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn an_idle_daemon_stops_cleanly_by_itself() {
    let hub = FakeHub::start();
    hub.add_image("library/idleapp", "v1", &[500], 12);
    let fx = Fixture::new(&hub, "2s", false);
    let (addr, pid) = fx.start();
    assert_eq!(
        request(&addr, "GET", &manifest_path("library/idleapp", "v1"), &[]).status,
        200
    );
    wait_for("the idle daemon to stop", Duration::from_secs(60), || {
        !fx.running()
    });
    assert!(!fx.state_file().exists(), "it removed its state file");
    wait_for("the process to exit", Duration::from_secs(10), || {
        !alive(pid)
    });
    let logs = fx.ok(&["daemon", "logs"]);
    assert!(
        logs.contains("no request for 2s: stopping ([serve] idle_timeout)"),
        "{logs}"
    );
    assert!(
        logs.contains("shutting down"),
        "a graceful shutdown: {logs}"
    );
}

#[test]
fn setup_systemd_prints_and_installs_a_socket_and_a_service() {
    let hub = FakeHub::start();
    let fx = Fixture::new(&hub, "120s", false);
    let printed = fx.ok(&["setup", "systemd", "--user", "--listen", "127.0.0.1:5999"]);
    assert!(
        printed.contains("ListenStream=127.0.0.1:5999\n"),
        "{printed}"
    );
    assert!(
        printed.contains(" serve --idle-timeout 120s\n"),
        "{printed}"
    );
    assert!(
        printed.contains("systemctl --user enable --now dpx.socket"),
        "{printed}"
    );

    let units = fx.dpx.dir.path().join("units");
    let out = fx.run(&[
        "setup",
        "systemd",
        "--apply",
        "--unit-dir",
        units.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:5999",
    ]);
    assert!(out.status.success());
    // systemd does not search this directory: the units are linked in first.
    let told = String::from_utf8_lossy(&out.stderr);
    assert!(
        told.contains(&format!(
            "now run:\n  systemctl --user link {} {}\n  systemctl --user daemon-reload\n",
            units.join("dpx.service").display(),
            units.join("dpx.socket").display()
        )),
        "{told}"
    );
    let socket = std::fs::read_to_string(units.join("dpx.socket")).expect("socket unit");
    let service = std::fs::read_to_string(units.join("dpx.service")).expect("service unit");
    assert!(printed.contains(&socket) && printed.contains(&service));
    assert!(
        service.contains(&format!("--cache-dir {}", fx.dpx.cache.display())),
        "{service}"
    );

    // A non-loopback address is refused, and nothing is written.
    let elsewhere = fx.dpx.dir.path().join("elsewhere");
    let out = fx.run(&[
        "setup",
        "systemd",
        "--apply",
        "--unit-dir",
        elsewhere.to_str().expect("utf-8"),
        "--listen",
        "0.0.0.0:5000",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
    assert!(!elsewhere.exists());
}

fn layers(seed: u64) -> Vec<crate::support::layout::Layer> {
    vec![
        file_layer("hello", &noise(seed, 100_000)),
        file_layer("etc/motd", format!("daemon image {seed}\n").as_bytes()),
    ]
}

/// Kills the activated dpx however the test ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn socket_activation_a_docker_pull_starts_dpx_and_succeeds() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let digest = hub_image(&hub, "library/activated", Some("v1"), "amd64", &layers(21));
    let fx = Fixture::new(&hub, "120s", false);
    let log = fx.dpx.dir.path().join("activated.log");
    let log_file = std::fs::File::create(&log).expect("log");
    let child = Command::new("systemd-socket-activate")
        .args(["-l", &eng.mirror_addr, env!("CARGO_BIN_EXE_dpx")])
        .arg("--config")
        .arg(&fx.dpx.config)
        .arg("--cache-dir")
        .arg(&fx.dpx.cache)
        .args(["serve", "--idle-timeout", "120s"])
        .env_remove("XDG_RUNTIME_DIR")
        .env("DPX_LOG", "dpx=info")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .expect("systemd-socket-activate (Debian package systemd)");
    let mut activated = Killed(child);
    wait_for("the socket to listen", Duration::from_secs(20), || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("Listening on"))
    });
    assert!(
        !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("dpx serve: listening"),
        "dpx is not started before the first connection"
    );

    eng.docker_rmi("activated:v1");
    let out = eng.docker_pull("activated:v1");
    assert!(out.contains(&digest), "{out}");
    assert_eq!(
        hub.count(Route::ManifestGet),
        1,
        "the pull went through dpx"
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains(&format!(
            "dpx serve: listening on http://{}",
            eng.mirror_addr
        )),
        "{text}"
    );
    assert!(
        text.contains("/v2/library/activated/manifests/v1 200"),
        "{text}"
    );

    // The activated serve is this cache's daemon for `dpx daemon status`.
    let status = fx.json(&["daemon", "status"]);
    assert_eq!(status["pid"].as_u64(), Some(u64::from(activated.0.id())));
    assert_eq!(status["address"], eng.mirror_addr.as_str());
    assert!(activated.0.try_wait().expect("try_wait").is_none());
}

#[test]
fn dockerd_pulls_through_an_ensured_daemon_which_then_stops_when_idle() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let digest = hub_image(&hub, "library/ensured", Some("v1"), "amd64", &layers(22));
    let fx = Fixture::new(&hub, "5s", true);
    let addr = fx.ok(&["daemon", "ensure", "--listen", &eng.mirror_addr]);
    assert_eq!(addr.trim(), eng.mirror_addr);

    eng.docker_rmi("ensured:v1");
    let out = eng.docker_pull("ensured:v1");
    assert!(out.contains(&digest), "{out}");
    assert_eq!(
        hub.count(Route::ManifestGet),
        1,
        "the pull went through dpx"
    );
    let status = fx.json(&["daemon", "status"]);
    assert!(
        status["server"]["misses"].as_u64().expect("misses") >= 1,
        "{status}"
    );

    wait_for(
        "the ensured daemon to stop after its idle timeout",
        Duration::from_secs(60),
        || !fx.running(),
    );
    let logs = fx.ok(&["daemon", "logs"]);
    assert!(
        logs.contains("/v2/library/ensured/manifests/v1 200"),
        "{logs}"
    );
    assert!(logs.contains("stopping ([serve] idle_timeout)"), "{logs}");
    assert!(!fx.state_file().exists());
}
