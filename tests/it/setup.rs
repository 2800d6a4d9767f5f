//! Engine set-up, shell integration and diagnosis: `dpx setup docker|containerd|podman`
//! driving the real dockerd, ctr and podman; `dpx env`, `dpx doctor`, `dpx config`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use crate::support::assert_success;
use crate::support::dpx::{Dpx, path_str, wait_for};
use crate::support::engines::{engines, free_port, hub_image, private_dockerd};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Route, noise};
use crate::support::layout::{Layer, file_layer};

fn layers(seed: u64) -> Vec<Layer> {
    vec![
        file_layer("hello", &noise(seed, 100_000)),
        file_layer("etc/motd", format!("setup {seed}\n").as_bytes()),
    ]
}

/// A dpx whose mirror address (`[serve] listen`) is a fixed free port and whose
/// registries are the given fakes.
fn dpx_listening(registries: &[(&str, &str)]) -> (Dpx, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let dpx = Dpx::with_registries(registries, &format!("[serve]\nlisten = \"{addr}\"\n"));
    (dpx, addr)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().contains(".dpx-backup."))
        .collect();
    found.sort();
    found
}

#[test]
fn setup_docker_apply_keeps_other_keys_backs_up_and_is_idempotent() {
    let (dpx, addr) = dpx_listening(&[]);
    let mirror = format!("http://{addr}");
    let etc = tempfile::tempdir().expect("tempdir");
    let file = etc.path().join("daemon.json");
    let original = r#"{
  "log-driver": "json-file",
  "log-opts": {"max-size": "10m"},
  "registry-mirrors": ["https://mirror.example.com"],
  "debug": false
}"#;
    std::fs::write(&file, original).expect("daemon.json");

    // Without --apply: the entry, nothing written.
    let printed: Value =
        serde_json::from_str(&dpx.ok(&["setup", "docker", "--file", path_str(&file)]))
            .expect("printed JSON");
    assert_eq!(printed, serde_json::json!({"registry-mirrors": [mirror]}));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), original);

    let out = dpx.run(&["setup", "docker", "--apply", "--file", path_str(&file)]);
    assert_success(&out, "setup docker --apply");
    assert!(
        stderr(&out).contains("systemctl reload docker"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&file).expect("read");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc["log-driver"], "json-file");
    assert_eq!(doc["log-opts"]["max-size"], "10m");
    assert_eq!(doc["debug"], false);
    assert_eq!(
        doc["registry-mirrors"],
        serde_json::json!([mirror, "https://mirror.example.com"]),
        "dpx first, the existing mirror kept"
    );
    let keys: Vec<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["log-driver", "log-opts", "registry-mirrors", "debug"],
        "key order kept"
    );
    let saved = backups(etc.path());
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(
        std::fs::read_to_string(&saved[0]).expect("backup"),
        original
    );

    // Again: nothing changes, no second backup.
    let out = dpx.run(&["setup", "docker", "--apply", "--file", path_str(&file)]);
    assert_success(&out, "second apply");
    assert!(stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
    assert_eq!(backups(etc.path()).len(), 1);

    // --json says what happened.
    let report = dpx.json(&["setup", "docker", "--apply", "--file", path_str(&file)]);
    assert_eq!(report["changed"], false);
    assert_eq!(report["mirror"], mirror.as_str());

    // Malformed JSON: a clear error, the file untouched, no backup or temp file.
    let broken = etc.path().join("broken.json");
    std::fs::write(&broken, "{\"debug\": true,,}").expect("write");
    let out = dpx.run(&["setup", "docker", "--apply", "--file", path_str(&broken)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("is not valid JSON") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&broken).expect("read"),
        "{\"debug\": true,,}"
    );
    assert_eq!(
        std::fs::read_dir(etc.path()).expect("dir").count(),
        3,
        "no new files"
    );
}

#[test]
fn setup_docker_apply_writes_through_a_symlinked_daemon_json() {
    let (dpx, addr) = dpx_listening(&[]);
    let mirror = format!("http://{addr}");
    let etc = tempfile::tempdir().expect("tempdir");
    // As config management often leaves it: /etc/docker/daemon.json -> a managed file.
    let managed = etc.path().join("managed");
    std::fs::create_dir(&managed).expect("dir");
    let target = managed.join("daemon.json");
    std::fs::write(&target, r#"{"debug": true}"#).expect("target");
    let link = etc.path().join("daemon.json");
    std::os::unix::fs::symlink("managed/daemon.json", &link).expect("symlink");

    let out = dpx.run(&["setup", "docker", "--apply", "--file", path_str(&link)]);
    assert_success(&out, "setup docker --apply through a symlink");
    let meta = std::fs::symlink_metadata(&link).expect("link");
    assert!(
        meta.file_type().is_symlink(),
        "daemon.json is no longer a symlink"
    );
    assert_eq!(
        std::fs::read_link(&link).expect("read link"),
        Path::new("managed/daemon.json")
    );
    let doc: Value =
        serde_json::from_str(&std::fs::read_to_string(&target).expect("read")).expect("JSON");
    assert_eq!(doc["debug"], true);
    assert_eq!(doc["registry-mirrors"], serde_json::json!([mirror]));
}

fn doctor(dpx: &Dpx, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value) {
    let out = dpx
        .command()
        .args(["--json", "doctor"])
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run dpx doctor");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}\n{}",
            stdout(&out),
            stderr(&out)
        )
    });
    (out.status.code(), report)
}

fn status_of<'a>(report: &'a Value, check: &str) -> Vec<&'a str> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["check"] == check)
        .map(|c| c["status"].as_str().expect("status"))
        .collect()
}

#[test]
fn dockerd_reloaded_with_the_daemon_json_setup_wrote_pulls_through_an_ensured_daemon() {
    let (dockerd, _serial) = private_dockerd();
    let hub = FakeHub::start();
    let digest = hub_image(&hub, "library/setupapp", Some("v1"), "amd64", &layers(1));
    let (dpx, addr) = dpx_listening(&[("docker.io", &hub.url())]);
    // The on-demand daemon, stopping by itself once idle (long enough for the
    // reload and doctor runs below, which keep it busy).
    let ensured = dpx.ok(&["daemon", "ensure", "--idle-timeout", "15s"]);
    assert_eq!(ensured.trim(), addr);
    let work = tempfile::tempdir().expect("tempdir");
    let hosts_dir = work.path().join("certs.d");
    let conf = work.path().join("registries.conf");
    let containerd_config = work.path().join("containerd.toml");
    std::fs::write(&containerd_config, "version = 2\n").expect("containerd config");
    dpx.ok(&[
        "setup",
        "containerd",
        "--apply",
        "--hosts-dir",
        path_str(&hosts_dir),
        "--containerd-config",
        path_str(&containerd_config),
    ]);
    std::fs::write(&conf, dpx.ok(&["setup", "podman"])).expect("registries.conf");
    let env = [("DOCKER_HOST", dockerd.host.as_str())];
    let engine_args = [
        "--hosts-dir",
        path_str(&hosts_dir),
        "--containerd-config",
        path_str(&containerd_config),
        "--registries-conf",
        path_str(&conf),
    ];

    // Before: the daemon does not use dpx, and doctor says how to fix it.
    let (_, report) = doctor(&dpx, &engine_args, &env);
    assert_eq!(status_of(&report, "docker"), ["warning"], "{report:#}");
    let docker_check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "docker")
        .expect("docker check");
    assert!(
        docker_check["fix"]
            .as_str()
            .expect("fix")
            .contains("dpx setup docker --apply"),
        "{docker_check}"
    );

    let out = dpx.run(&[
        "setup",
        "docker",
        "--apply",
        "--file",
        path_str(&dockerd.config),
    ]);
    assert_success(&out, "setup docker --apply");
    dockerd.reload();
    let mirror = format!("http://{addr}");
    wait_for(
        "dockerd to reload its mirrors",
        Duration::from_secs(30),
        || {
            dockerd
                .mirrors()
                .iter()
                .any(|m| m.trim_end_matches('/') == mirror)
        },
    );

    // After: every check is ok, so doctor exits 0 (anonymous pulls are a note).
    let (code, report) = doctor(&dpx, &engine_args, &env);
    for c in report["checks"].as_array().expect("checks") {
        if c["check"] == "credentials" {
            assert_eq!(c["status"], "note", "{report:#}");
        } else if c["check"] != "disk" {
            assert_eq!(c["status"], "ok", "{report:#}");
        }
    }
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);

    // The real pull goes through dpx (there is no Docker Hub to fall back to here).
    let _ = dockerd.docker(&["rmi", "-f", "setupapp:v1"]);
    let out = dockerd.docker(&["pull", "setupapp:v1"]);
    assert_success(&out, "docker pull through the applied mirror");
    assert!(stdout(&out).contains(&digest), "{}", stdout(&out));
    let logs = dpx.ok(&["daemon", "logs"]);
    assert!(logs.contains("/v2/library/setupapp/manifests/v1"), "{logs}");
    assert_eq!(hub.count(Route::ManifestGet), 1);

    // Then, with nothing to do, the daemon stops by itself.
    wait_for(
        "the ensured daemon to stop after its idle timeout",
        Duration::from_secs(90),
        || !dpx.run(&["daemon", "status"]).status.success(),
    );
    let logs = dpx.ok(&["daemon", "logs"]);
    assert!(logs.contains("stopping ([serve] idle_timeout)"), "{logs}");
}

#[test]
fn ctr_pulls_with_the_hosts_dir_dpx_setup_containerd_wrote() {
    let (eng, _serial) = engines();
    let hub = FakeHub::start();
    let ghcr = FakeHub::start();
    let hub_digest = hub_image(&hub, "library/ctrapp", Some("v1"), "amd64", &layers(2));
    let ghcr_digest = hub_image(&ghcr, "some/ctrapp", Some("1.0"), "amd64", &layers(3));
    let (dpx, addr) = dpx_listening(&[("docker.io", &hub.url()), ("ghcr.io", &ghcr.url())]);
    let serve = dpx.serve_on(&addr, &[]);
    let work = tempfile::tempdir().expect("tempdir");
    let hosts_dir = work.path().join("certs.d");
    let containerd_config = work.path().join("containerd.toml");
    let setup = [
        "setup",
        "containerd",
        "--apply",
        "--hosts-dir",
        path_str(&hosts_dir),
        "--containerd-config",
        path_str(&containerd_config),
    ];
    dpx.ok(&setup);
    for host in ["docker.io", "ghcr.io"] {
        assert!(hosts_dir.join(host).join("hosts.toml").is_file(), "{host}");
    }

    let ctr = |image: &str| {
        Command::new("ctr")
            .arg("--address")
            .arg(&eng.containerd_sock)
            .args(["-n", "dpx-setup-tests", "image", "pull", "--hosts-dir"])
            .arg(&hosts_dir)
            .arg(image)
            .output()
            .expect("run ctr")
    };
    // Through dpx, not the `server` fallback (which is the fake hub here too).
    assert_success(&ctr("docker.io/library/ctrapp:v1"), "ctr pull docker.io");
    assert!(
        serve.log_shows("/v2/library/ctrapp/manifests/v1?ns=docker.io"),
        "{}",
        serve.log_text()
    );
    assert_success(&ctr("ghcr.io/some/ctrapp:1.0"), "ctr pull ghcr.io");
    assert!(
        serve.log_shows("/v2/some/ctrapp/manifests/1.0?ns=ghcr.io"),
        "{}",
        serve.log_text()
    );
    assert_eq!(hub.count(Route::ManifestGet), 1);
    assert_eq!(ghcr.count(Route::ManifestGet), 1);
    let listed = Command::new("ctr")
        .arg("--address")
        .arg(&eng.containerd_sock)
        .args(["-n", "dpx-setup-tests", "image", "ls"])
        .output()
        .expect("ctr image ls");
    let listed = stdout(&listed);
    assert!(
        listed.contains(&hub_digest) && listed.contains(&ghcr_digest),
        "{listed}"
    );

    // Running it again changes nothing.
    let out = dpx.run(&setup);
    assert_success(&out, "second setup containerd");
    assert_eq!(
        stderr(&out).matches(": unchanged").count(),
        3,
        "{}",
        stderr(&out)
    );
}

#[test]
fn podman_pulls_with_the_registries_conf_dpx_setup_podman_printed() {
    let hub = FakeHub::start();
    let ghcr = FakeHub::start();
    hub_image(&hub, "library/podapp", Some("v1"), "amd64", &layers(4));
    hub_image(&ghcr, "some/podapp", Some("1.0"), "amd64", &layers(5));
    let (dpx, addr) = dpx_listening(&[("docker.io", &hub.url()), ("ghcr.io", &ghcr.url())]);
    let serve = dpx.serve_on(&addr, &[]);
    let work = tempfile::tempdir().expect("tempdir");
    let conf = work.path().join("registries.conf");
    std::fs::write(&conf, dpx.ok(&["setup", "podman"])).expect("registries.conf");

    let podman = |image: &str| {
        Command::new("podman")
            .arg("--storage-driver=vfs")
            .arg("--root")
            .arg(work.path().join("root"))
            .arg("--runroot")
            .arg(work.path().join("runroot"))
            .args(["pull", "--registries-conf"])
            .arg(&conf)
            .arg(image)
            .output()
            .expect("run podman")
    };
    assert_success(
        &podman("docker.io/library/podapp:v1"),
        "podman pull docker.io",
    );
    assert_success(&podman("ghcr.io/some/podapp:1.0"), "podman pull ghcr.io");
    assert!(serve.log_shows("/v2/library/podapp/manifests/v1"));
    assert!(serve.log_shows("/v2/ghcr.io/some/podapp/manifests/1.0"));
    assert_eq!(hub.count(Route::ManifestGet), 1);
    assert_eq!(ghcr.count(Route::ManifestGet), 1);
}

#[test]
fn env_prints_the_mirror_address_in_every_format() {
    let hub = FakeHub::start();
    hub_image(&hub, "library/envapp", Some("v1"), "amd64", &layers(6));
    let (dpx, addr) = dpx_listening(&[("docker.io", &hub.url())]);
    let prefix = format!("{addr}/docker.io");

    let sh = dpx.ok(&["env"]);
    assert_eq!(
        sh,
        format!("export DPX_SERVER='{addr}'\nexport DPX_IMAGE_PREFIX='{prefix}'\n")
    );
    // What a shell makes of it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{sh}printf '%s|%s' \"$DPX_SERVER\" \"$DPX_IMAGE_PREFIX\""
        ))
        .output()
        .expect("sh");
    assert_eq!(stdout(&out), format!("{addr}|{prefix}"));
    let fish = dpx.ok(&["env", "--format", "fish"]);
    assert_eq!(
        fish,
        format!("set -gx DPX_SERVER '{addr}';\nset -gx DPX_IMAGE_PREFIX '{prefix}';\n")
    );
    let out = Command::new("fish")
        .arg("--no-config")
        .arg("-c")
        .arg(format!(
            "{fish}printf '%s|%s' \"$DPX_SERVER\" \"$DPX_IMAGE_PREFIX\""
        ))
        .output()
        .expect("fish (scripts/test.sh installs it)");
    assert_eq!(stdout(&out), format!("{addr}|{prefix}"));
    let json: Value = serde_json::from_str(&dpx.ok(&["env", "--format", "json"])).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"DPX_SERVER": addr, "DPX_IMAGE_PREFIX": prefix})
    );
    assert_eq!(dpx.json(&["env"]), json, "--json is --format json");
    let lines = format!("DPX_SERVER={addr}\nDPX_IMAGE_PREFIX={prefix}\n");
    assert_eq!(dpx.ok(&["env", "--format", "github"]), lines);
    assert_eq!(dpx.ok(&["env", "--format", "gitlab"]), lines);
    let out = dpx.run(&["env", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));

    // DPX_LISTEN wins over the file, as for dpx serve.
    let out = dpx
        .command()
        .args(["env", "--format", "github"])
        .env("DPX_LISTEN", "127.0.0.1:6123")
        .output()
        .expect("dpx env");
    assert!(
        stdout(&out).starts_with("DPX_SERVER=127.0.0.1:6123\n"),
        "{}",
        stdout(&out)
    );

    // `$DPX_IMAGE_PREFIX/envapp:v1` is a name dpx serves (prefix mode).
    let _serve = dpx.serve_on(&addr, &[]);
    let (host, path) = prefix.split_once('/').expect("HOST/PATH");
    let resp = request(host, "GET", &format!("/v2/{path}/envapp/manifests/v1"), &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(hub.count(Route::ManifestGet), 1);
}

#[test]
fn doctor_names_the_problem_and_its_fix_then_is_ok_with_serve_running() {
    let hub = FakeHub::start();
    let (dpx, addr) = dpx_listening(&[
        ("docker.io", &hub.url()),
        // Nothing listens on port 1: an upstream that cannot be reached.
        ("unreachable.example:5000", "http://127.0.0.1:1"),
    ]);
    let none = tempfile::tempdir().expect("tempdir");
    let env = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let args = ["--hosts-dir", path_str(none.path())];

    let out = dpx
        .command()
        .arg("doctor")
        .args(args)
        .envs(env)
        .output()
        .expect("dpx doctor");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "problem  serve       nothing answers at http://{addr}"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "fix: dpx daemon start --listen {addr} (in the background), or dpx serve --listen {addr}"
        )),
        "{text}"
    );
    assert!(text.contains("unreachable.example:5000"), "{text}");

    let (code, report) = doctor(&dpx, &args, &env);
    assert_eq!(code, Some(1));
    assert_eq!(report["ok"], false);
    assert_eq!(report["mirror"], format!("http://{addr}").as_str());
    for c in report["checks"].as_array().expect("checks") {
        assert!(c["check"].is_string() && c["message"].is_string(), "{c}");
        assert!(
            ["ok", "note", "warning", "problem"].contains(&c["status"].as_str().expect("status")),
            "{c}"
        );
        if c["status"] == "problem" {
            assert!(c["fix"].is_string(), "a problem comes with its fix: {c}");
        }
    }
    assert_eq!(status_of(&report, "serve"), ["problem"]);
    assert_eq!(
        status_of(&report, "upstream"),
        ["ok", "problem"],
        "{report:#}"
    );
    assert_eq!(status_of(&report, "docker"), ["note"], "{report:#}");
    assert!(hub.count(Route::Ping) >= 2, "doctor asked the upstream");
    let unreachable_creds = check_messages(&report, "credentials")
        .into_iter()
        .find(|m| m.starts_with("unreachable.example:5000:"))
        .unwrap_or_else(|| panic!("a credentials line per registry: {report:#}"));
    assert!(
        unreachable_creds.contains("anonymous"),
        "{unreachable_creds}"
    );

    // With dpx serve answering and the reachable upstream only: exit 0.
    let (dpx, addr) = dpx_listening(&[("docker.io", &hub.url())]);
    let _serve = dpx.serve_on(&addr, &[]);
    let (code, report) = doctor(&dpx, &args, &env);
    assert_eq!(status_of(&report, "serve"), ["ok"], "{report:#}");
    // The serve registered itself for this cache: doctor says it is this dpx.
    assert!(
        check_messages(&report, "serve")[0].contains("(dpx for this cache, pid "),
        "{report:#}"
    );
    assert_eq!(status_of(&report, "cache"), ["ok"], "{report:#}");
    assert_eq!(status_of(&report, "disk").len(), 1);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["ok"], true);

    // Credentials: which apply and from where, never the password; for
    // docker.io's upstream (the fake hub's host:port) too.
    let secret = "doctor-s3cret-pw";
    let hub_host = hub.url().trim_start_matches("http://").to_string();
    for (host, key) in [
        (None, "docker.io"),
        (Some(hub_host.as_str()), hub_host.as_str()),
    ] {
        let mut cred_env = vec![
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ("DPX_REGISTRY_USER", "ci-user"),
            ("DPX_REGISTRY_PASSWORD", secret),
        ];
        cred_env.extend(host.map(|h| ("DPX_REGISTRY_HOST", h)));
        let out = dpx
            .command()
            .arg("doctor")
            .args(args)
            .envs(cred_env.iter().copied())
            .output()
            .expect("dpx doctor");
        let text = stdout(&out);
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok       credentials docker.io: ")
                    && l.contains(&format!(
                        "user ci-user for {key} from env DPX_REGISTRY_USER/DPX_REGISTRY_PASSWORD"
                    ))),
            "{text}"
        );
        let (_, report) = doctor(&dpx, &args, &cred_env);
        assert_eq!(status_of(&report, "credentials"), ["ok"], "{report:#}");
        for shown in [text, report.to_string(), stderr(&out)] {
            assert!(!shown.contains(secret), "the password is never shown");
        }
    }
}

fn check_messages<'a>(report: &'a Value, check: &str) -> Vec<&'a str> {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["check"] == check)
        .map(|c| c["message"].as_str().expect("message"))
        .collect()
}

#[test]
fn config_show_names_where_each_value_came_from() {
    let dpx = Dpx::with_registries(
        &[("ghcr.io", "http://127.0.0.1:1")],
        "[cache]\ntag_ttl = \"30s\"\n",
    );
    let show = |cmd: &mut Command| -> Vec<(String, String, String)> {
        let out = cmd.output().expect("dpx config show");
        assert_success(&out, "config show");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        v.as_array()
            .expect("list")
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().expect("key").to_string(),
                    s["value"].as_str().expect("value").to_string(),
                    s["source"].as_str().expect("source").to_string(),
                )
            })
            .collect()
    };
    let find = |all: &[(String, String, String)], key: &str| {
        all.iter()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, s)| (v.clone(), s.clone()))
            .unwrap_or_else(|| panic!("no {key} in {all:?}"))
    };

    // Flags (Dpx passes --config and --cache-dir), the file, env and defaults.
    let all = show(
        dpx.command()
            .args(["--json", "config", "show"])
            .env("DPX_LISTEN", "127.0.0.1:7777"),
    );
    assert_eq!(
        find(&all, "config"),
        (path_str(&dpx.config).to_string(), "flag".into())
    );
    assert_eq!(
        find(&all, "cache.dir"),
        (path_str(&dpx.cache).to_string(), "flag".into())
    );
    assert_eq!(find(&all, "cache.tag_ttl"), ("30s".into(), "file".into()));
    assert_eq!(
        find(&all, "serve.listen"),
        ("127.0.0.1:7777".into(), "env".into())
    );
    assert_eq!(
        find(&all, "cache.lock_timeout"),
        ("1m".into(), "default".into())
    );
    assert_eq!(
        find(&all, "registries.\"ghcr.io\".url"),
        ("http://127.0.0.1:1".into(), "file".into())
    );
    assert_eq!(find(&all, "registries.\"docker.io\".url").1, "default");

    // The same paths from the environment instead of flags.
    let all = show(
        Command::new(env!("CARGO_BIN_EXE_dpx"))
            .args(["--json", "config", "show"])
            .env("DPX_CONFIG", &dpx.config)
            .env("DPX_CACHE_DIR", &dpx.cache)
            .env_remove("DPX_LISTEN"),
    );
    assert_eq!(find(&all, "config").1, "env");
    assert_eq!(find(&all, "cache.dir").1, "env");
    assert_eq!(
        find(&all, "serve.listen"),
        ("127.0.0.1:5000".into(), "default".into())
    );

    // The defaults of the newer keys.
    assert_eq!(
        find(&all, "serve.auth.enabled"),
        ("false".into(), "default".into())
    );
    assert_eq!(
        find(&all, "serve.auth.token_lifetime"),
        ("5m".into(), "default".into())
    );
    assert_eq!(find(&all, "serve.tls_cert").1, "default");
    assert_eq!(find(&all, "serve.tls_key").1, "default");
    assert_eq!(find(&all, "credentials.store").1, "default");
    assert_eq!(
        find(&all, "registries.\"ghcr.io\".repository_prefix"),
        ("none".into(), "default".into())
    );
    assert_eq!(
        find(&all, "registries.\"ghcr.io\".fallback"),
        ("none".into(), "default".into())
    );

    // ... and set in the file.
    let set = Dpx::with_registries(
        &[("ghcr.io", "http://127.0.0.1:1")],
        "repository_prefix = \"team/proxy\"\nfallback = [\"http://127.0.0.1:2\"]\n\
         [serve]\ntls_cert = \"/etc/dpx/cert.pem\"\ntls_key = \"/etc/dpx/key.pem\"\n\
         [serve.auth]\nenabled = true\ntoken_lifetime = \"2m\"\n\
         [credentials]\nstore = \"file\"\n",
    );
    let all = show(set.command().args(["--json", "config", "show"]));
    for (key, value) in [
        ("serve.auth.enabled", "true"),
        ("serve.auth.token_lifetime", "2m"),
        ("serve.tls_cert", "/etc/dpx/cert.pem"),
        ("serve.tls_key", "/etc/dpx/key.pem"),
        ("credentials.store", "file"),
        ("registries.\"ghcr.io\".repository_prefix", "team/proxy"),
        ("registries.\"ghcr.io\".fallback", "http://127.0.0.1:2"),
    ] {
        assert_eq!(find(&all, key), (value.into(), "file".into()), "{key}");
    }

    // GitLab CI's Dependency Proxy variables make docker.io's upstream: env.
    let all = show(
        dpx.command()
            .args(["--json", "config", "show"])
            .env(
                "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX",
                "gitlab.example.com:443/team/dependency_proxy/containers",
            )
            .env("CI_DEPENDENCY_PROXY_SERVER", "gitlab.example.com:443"),
    );
    let (url, source) = find(&all, "registries.\"docker.io\".url");
    assert_eq!(source, "env");
    assert!(
        url.starts_with("https://gitlab.example.com")
            && url.contains("CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX"),
        "{url}"
    );
    let (prefix, source) = find(&all, "registries.\"docker.io\".repository_prefix");
    assert_eq!(source, "env");
    assert!(
        prefix.starts_with("team/dependency_proxy/containers"),
        "{prefix}"
    );
    assert_eq!(find(&all, "registries.\"docker.io\".fallback").1, "env");

    // Human form: one line per key with its source; `config path` prints the file.
    let text = dpx.ok(&["config", "show"]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("cache.tag_ttl") && l.contains("file") && l.ends_with("30s")),
        "{text}"
    );
    assert_eq!(
        dpx.ok(&["config", "path"]).trim_end(),
        path_str(&dpx.config)
    );
    // ... even one that does not exist yet (where to create it).
    let missing = dpx.dir.path().join("new/config.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_dpx"))
        .args(["--json", "config", "path"])
        .env("DPX_CONFIG", &missing)
        .output()
        .expect("dpx config path");
    assert_success(&out, "config path of a missing file");
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v,
        serde_json::json!({"path": missing, "exists": false, "source": "env"})
    );
}

#[test]
fn setup_containerd_backs_up_a_different_hosts_toml_and_refuses_a_bad_listen() {
    let (dpx, addr) = dpx_listening(&[("registry.example.com:5000", "https://10.0.0.1:5000")]);
    let dir = tempfile::tempdir().expect("tempdir");
    let hub_dir = dir.path().join("docker.io");
    std::fs::create_dir_all(&hub_dir).expect("mkdir");
    let mine = "server = \"https://registry-1.docker.io\"\n# mine\n";
    std::fs::write(hub_dir.join("hosts.toml"), mine).expect("hosts.toml");

    let containerd_config = tempfile::NamedTempFile::new().expect("containerd config");
    let out = dpx.run(&[
        "setup",
        "containerd",
        "--apply",
        "--hosts-dir",
        path_str(dir.path()),
        "--containerd-config",
        path_str(containerd_config.path()),
    ]);
    assert_success(&out, "setup containerd");
    let saved = backups(&hub_dir);
    assert_eq!(saved.len(), 1, "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&saved[0]).expect("backup"), mine);
    let written: toml::Table =
        toml::from_str(&std::fs::read_to_string(hub_dir.join("hosts.toml")).expect("hosts.toml"))
            .expect("TOML");
    assert!(
        written["host"].get(format!("http://{addr}")).is_some(),
        "{written}"
    );
    // A configured registry gets its own file, with its configured endpoint as the fallback.
    let other: toml::Table = toml::from_str(
        &std::fs::read_to_string(dir.path().join("registry.example.com:5000/hosts.toml"))
            .expect("the configured registry's hosts.toml"),
    )
    .expect("TOML");
    assert_eq!(other["server"].as_str(), Some("https://10.0.0.1:5000"));

    // A listen address engines cannot use is bad input, and nothing is written.
    let empty = tempfile::tempdir().expect("tempdir");
    let out = dpx
        .command()
        .args(["setup", "containerd", "--apply", "--hosts-dir"])
        .arg(empty.path())
        .arg("--containerd-config")
        .arg(empty.path().join("config.toml"))
        .env("DPX_LISTEN", "127.0.0.1:0")
        .output()
        .expect("dpx");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("port 0"), "{}", stderr(&out));
    assert_eq!(std::fs::read_dir(empty.path()).expect("dir").count(), 0);
}

/// containerd's own reading of a config file (`containerd config dump`
/// merges it with the built-in defaults, as the daemon would).
fn containerd_reads(config: &Path) -> String {
    let out = Command::new("containerd")
        .arg("--config")
        .arg(config)
        .args(["config", "dump"])
        .output()
        .expect("run containerd config dump");
    assert_success(&out, "containerd config dump");
    stdout(&out)
}

#[test]
fn setup_containerd_prints_until_apply_which_sets_the_cri_config_path_containerd_reads() {
    let (dpx, addr) = dpx_listening(&[]);
    let work = tempfile::tempdir().expect("tempdir");
    let hosts_dir = work.path().join("certs.d");
    let config = work.path().join("config.toml");
    let mine = "# site settings, kept by dpx\nversion = 2\n\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"registry.k8s.io/pause:3.9\" # pinned\n";
    std::fs::write(&config, mine).expect("config.toml");
    let args = [
        "--hosts-dir",
        path_str(&hosts_dir),
        "--containerd-config",
        path_str(&config),
    ];
    let setup = |apply: bool| {
        let mut all = vec!["setup", "containerd"];
        if apply {
            all.push("--apply");
        }
        all.extend(args);
        let out = dpx.run(&all);
        assert_success(&out, "setup containerd");
        out
    };
    // The real containerd does not read dpx's hosts directory yet.
    assert!(containerd_reads(&config).contains("config_path = \"\""));

    // Without --apply: printed, nothing written.
    let out = setup(false);
    let printed = stdout(&out);
    assert!(!hosts_dir.exists(), "nothing written: {printed}");
    assert_eq!(std::fs::read_to_string(&config).expect("config"), mine);
    assert!(
        printed.contains(&format!("[host.\"http://{addr}\"]")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("config_path = \"{}\"", hosts_dir.display())),
        "{printed}"
    );
    assert!(
        stderr(&out).contains("dpx setup containerd --apply"),
        "{}",
        stderr(&out)
    );
    let (_, report) = doctor(&dpx, &args, &[]);
    assert_eq!(status_of(&report, "containerd"), ["warning"], "{report:#}");

    // --apply: the hosts files, and config.toml with a backup and the rest kept.
    setup(true);
    assert!(hosts_dir.join("docker.io/hosts.toml").is_file());
    let written = std::fs::read_to_string(&config).expect("config");
    assert!(
        written.starts_with("# site settings, kept by dpx\nversion = 2\n"),
        "{written}"
    );
    assert!(written.contains("# pinned"), "{written}");
    let saved = backups(work.path());
    assert_eq!(saved.len(), 1);
    assert_eq!(std::fs::read_to_string(&saved[0]).expect("backup"), mine);
    let dumped = containerd_reads(&config);
    assert!(
        dumped.contains(&format!("config_path = \"{}\"", hosts_dir.display())),
        "{dumped}"
    );
    assert!(dumped.contains("registry.k8s.io/pause:3.9"), "{dumped}");
    let (_, report) = doctor(&dpx, &args, &[]);
    assert_eq!(status_of(&report, "containerd"), ["ok"], "{report:#}");

    // Idempotent: nothing changes, no new backup.
    let out = setup(true);
    assert_eq!(
        stderr(&out).matches(": unchanged").count(),
        2,
        "{}",
        stderr(&out)
    );
    assert_eq!(backups(work.path()).len(), 1);
    assert_eq!(std::fs::read_to_string(&config).expect("config"), written);

    // Hosts files in place but a CRI that ignores them: a problem, with its fix.
    std::fs::write(&config, mine).expect("config.toml");
    let (code, report) = doctor(&dpx, &args, &[]);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(status_of(&report, "containerd"), ["problem"], "{report:#}");
    let check = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["check"] == "containerd")
        .expect("containerd check");
    let fix = check["fix"].as_str().expect("fix");
    assert!(
        fix.contains("dpx setup containerd --apply") && fix.contains("restart containerd"),
        "{check}"
    );
    assert!(
        check["message"]
            .as_str()
            .expect("message")
            .contains("config_path"),
        "{check}"
    );

    // A version 1 config is refused and left alone.
    let old = "[plugins.cri]\n  sandbox_image = \"pause\"\n";
    std::fs::write(&config, old).expect("config.toml");
    let mut all = vec!["setup", "containerd", "--apply"];
    all.extend(args);
    let out = dpx.run(&all);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("version 1"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&config).expect("config"), old);
}
