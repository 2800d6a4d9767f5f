//! The command line as a new user meets it: pipes, config mistakes, `--from`
//! discovery, messages and exit codes.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::dpx::{Dpx, path_str, wait_for};
use crate::support::hub::FakeHub;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs with stdout on a pipe whose reader is already gone: every write is EPIPE.
fn into_closed_pipe(mut cmd: Command) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    let out = cmd.output().expect("run dpx");
    assert!(out.stdout.is_empty());
    out
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_status_0() {
    let dpx = Dpx::new("http://127.0.0.1:9");
    let mut completions = dpx.command();
    completions.args(["completions", "bash"]);
    let mut man = dpx.command();
    man.arg("man");
    let dir = tempfile::tempdir().expect("tempdir");
    let list = dir.path().join("images.txt");
    let many: String = (0..5000).map(|i| format!("img{i}:1\n")).collect();
    std::fs::write(&list, many).expect("write list");
    let mut dry_run = dpx.command();
    dry_run.args(["prefetch", "--dry-run", "-f", path_str(&list)]);
    for (what, cmd) in [
        ("completions", completions),
        ("man", man),
        ("prefetch --dry-run", dry_run),
    ] {
        let out = into_closed_pipe(cmd);
        assert_eq!(out.status.code(), Some(0), "{what}: {}", stderr(&out));
        assert!(stderr(&out).is_empty(), "{what}: {}", stderr(&out));
    }
}

#[test]
fn a_config_error_names_key_and_line_but_never_echoes_a_value() {
    let secret = "pa55-w0rd-never-printed";
    let dpx = Dpx::with_registries(&[("docker.io", "http://127.0.0.1:9")], "");
    std::fs::write(
        &dpx.config,
        format!(
            "[registries.\"docker.io\"]\nurl = \"http://127.0.0.1:9\"\npassword = \"{secret}\"\n"
        ),
    )
    .expect("write config");
    let out = dpx.run(&["pull", "alpine"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(!err.contains(secret), "{err}");
    assert!(err.contains("line 3, column 1"), "{err}");
    assert!(err.contains("password"), "{err}");

    std::fs::write(&dpx.config, format!("[cache]\ntag_ttl = \"{secret}\"\n")).expect("write");
    let out = dpx.run(&["pull", "alpine"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr(&out).contains(secret), "{}", stderr(&out));
    assert!(stderr(&out).contains("cache.tag_ttl"), "{}", stderr(&out));
}

#[test]
fn a_registry_url_without_scheme_is_refused_at_load_time_with_what_to_write() {
    let dpx = Dpx::with_registries(&[("docker.io", "127.0.0.1:5000")], "");
    for args in [
        &["pull", "alpine"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
    ] {
        let out = dpx.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("url = 'http://HOST:PORT'"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn loopback_registries_use_plain_http_without_a_table() {
    let hub = FakeHub::start();
    let digest = hub.add_image("org/loop", "1", &[100], 41);
    let host = hub
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let port = host.rsplit(':').next().expect("port").to_string();
    // docker.io points nowhere: only the loopback default can reach the hub.
    let dpx = Dpx::new("http://127.0.0.1:9");
    for image in [
        format!("{host}/org/loop:1"),
        format!("localhost:{port}/org/loop:1"),
    ] {
        let v = dpx.json(&["pull", &image]);
        assert_eq!(v["images"][0]["digest"], digest.as_str(), "{image}: {v}");
    }
}

#[test]
fn bad_input_files_exit_2_and_messages_do_not_repeat() {
    let dpx = Dpx::new("http://127.0.0.1:9");
    for flag in ["-f", "--from"] {
        let out = dpx.run(&["prefetch", flag, "/nonexistent/images.txt"]);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(
            err.matches("No such file").count(),
            1,
            "{flag}: the cause is said once: {err}"
        );
    }
}

/// An index of linux/amd64 and linux/arm64 images, tagged `repo:tag`.
fn multi_arch(hub: &FakeHub, repo: &str, tag: &str, seed: u64) -> String {
    let amd = hub.add_image(&format!("{repo}-amd64"), "x", &[100], seed);
    let arm = hub.add_image(&format!("{repo}-arm64"), "x", &[100], seed + 1);
    let entry = |d: &str, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": d, "size": hub.manifest_len(d),
            "platform": {"os": "linux", "architecture": arch}
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd, "amd64"), entry(&arm, "arm64")]
    });
    hub.add_manifest(
        repo,
        Some(tag),
        "application/vnd.oci.image.index.v1+json",
        index.to_string().into_bytes(),
    )
}

#[test]
fn pull_says_which_platform_it_took_and_names_a_missing_one_once() {
    let hub = FakeHub::start();
    multi_arch(&hub, "library/multi", "1", 42);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.ok(&["pull", "--platform", "linux/arm64", "multi:1"]);
    assert!(
        out.contains("docker.io/library/multi:1: sha256:") && out.contains(" for linux/arm64 "),
        "{out}"
    );

    let out = dpx.run(&["pull", "--platform", "linux/s390x", "multi:1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("linux/s390x"), "{err}");
    assert_eq!(
        err.matches("docker.io/library/multi:1").count(),
        1,
        "the reference is named once: {err}"
    );
}

#[test]
fn pull_verbose_shows_upstream_requests_and_quiet_by_default() {
    let hub = FakeHub::start();
    hub.add_image("library/verbose", "1", &[100], 43);
    let dpx = Dpx::new(&hub.url());
    let quiet = dpx.run(&["pull", "verbose:1"]);
    assert!(quiet.status.success());
    assert!(
        !stderr(&quiet).contains("upstream GET"),
        "{}",
        stderr(&quiet)
    );
    let loud = dpx.run(&["-v", "pull", "verbose:1"]);
    assert!(loud.status.success());
    let err = stderr(&loud);
    let url = hub.url();
    let base = url.trim_end_matches('/');
    assert!(
        err.contains(&format!(
            "upstream HEAD {base}/v2/library/verbose/manifests/1 200"
        )),
        "{err}"
    );
    assert!(
        err.contains("docker.io/library/verbose:1: manifest sha256:"),
        "{err}"
    );
}

#[test]
fn prefetch_from_a_directory_finds_compose_dockerfile_and_workflow_images() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("compose.yaml"),
        "services:\n  web:\n    image: nginx:${NGINX_TAG:-1.27}\n  db:\n    image: postgres:${PG}\n  cache:\n    image: redis:${REDIS_TAG}\n  worker:\n    image: ${WORKER_IMAGE}\n",
    )
    .expect("write");
    std::fs::write(d.join(".env"), "PG=16\n").expect("write");
    std::fs::write(
        d.join("Dockerfile"),
        "FROM golang:1.22 AS build\nCOPY --from=busybox:1.36 /bin/sh /sh\nRUN --mount=type=bind,from=node:20,target=/n true\nFROM alpine:3.20\nCOPY --from=build /out /out\n",
    )
    .expect("write");
    std::fs::create_dir_all(d.join(".github/workflows")).expect("mkdir");
    std::fs::write(
        d.join(".github/workflows/ci.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n      - uses: docker://hello-world:latest\n",
    )
    .expect("write");
    let extra = d.join("extra.Dockerfile");
    std::fs::write(&extra, "FROM debian:12\n").expect("write");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let second = elsewhere.path().join("Containerfile");
    std::fs::write(&second, "FROM fedora:40\n").expect("write");

    let dpx = Dpx::new("http://127.0.0.1:9");
    let out = dpx
        .command()
        .args(["prefetch", "--dry-run", "--from", path_str(d), "--from"])
        .arg(&second)
        .env("REDIS_TAG", "7")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let compose = d.join("compose.yaml");
    let dockerfile = d.join("Dockerfile");
    for (image, at) in [
        (
            "docker.io/library/nginx:1.27",
            format!("{}:3", compose.display()),
        ),
        (
            "docker.io/library/postgres:16",
            format!("{}:5", compose.display()),
        ),
        (
            "docker.io/library/redis:7",
            format!("{}:7", compose.display()),
        ),
        (
            "docker.io/library/golang:1.22",
            format!("{}:1", dockerfile.display()),
        ),
        (
            "docker.io/library/busybox:1.36",
            format!("{}:2", dockerfile.display()),
        ),
        (
            "docker.io/library/node:20",
            format!("{}:3", dockerfile.display()),
        ),
        (
            "docker.io/library/alpine:3.20",
            format!("{}:4", dockerfile.display()),
        ),
        (
            "docker.io/library/debian:12",
            format!("{}:1", extra.display()),
        ),
        (
            "docker.io/library/hello-world:latest",
            format!("{}:7", d.join(".github/workflows/ci.yml").display()),
        ),
        (
            "docker.io/library/fedora:40",
            format!("{}:1", second.display()),
        ),
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with(image) && l.ends_with(&at)),
            "{image} at {at} missing from:\n{text}"
        );
    }
    assert_eq!(text.lines().count(), 10, "{text}");
    assert!(!text.contains("build"), "a stage is not an image: {text}");
    let err = stderr(&out);
    assert!(
        err.contains("WORKER_IMAGE is not set") && err.contains("compose.yaml:9"),
        "{err}"
    );

    let json = dpx.json(&["prefetch", "--dry-run", "--from", path_str(&second)]);
    assert_eq!(
        json[0]["reference"], "docker.io/library/fedora:40",
        "{json}"
    );
    assert_eq!(
        json[0]["source"],
        format!("{}:1", second.display()).as_str(),
        "{json}"
    );
}

#[test]
fn serve_prints_its_listening_line_once() {
    let dpx = Dpx::new("http://127.0.0.1:9");
    let log = dpx.dir.path().join("stderr.txt");
    let mut child = dpx
        .command()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(std::fs::File::create(&log).expect("log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the listening line", Duration::from_secs(20), || {
        text().contains("listening")
    });
    // Give a second line, if any, the moment it would take.
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(text().matches("listening").count(), 1, "{}", text());
}

#[test]
fn error_hints_name_only_commands_that_exist() {
    use clap::CommandFactory as _;
    let cli = dpx::cli::Cli::command();
    let commands: Vec<String> = cli
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let root = env!("CARGO_MANIFEST_DIR");
    let mut stack = vec![std::path::PathBuf::from(format!("{root}/src"))];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source");
            // Every `dpx WORD` a message or comment quotes names a real command.
            for quoted in text.split("`dpx ").skip(1) {
                let word: String = quoted
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '-')
                    .collect();
                if !word.starts_with(|c: char| c.is_ascii_lowercase()) {
                    continue;
                }
                assert!(
                    commands.contains(&word),
                    "{} names `dpx {word}`, which is no command",
                    path.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 10);
}

#[test]
fn a_config_file_is_read_with_a_size_cap() {
    use std::os::unix::process::CommandExt as _;
    let dpx = Dpx::new("http://127.0.0.1:9");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dpx"));
    cmd.args(["--config", "/dev/zero", "--cache-dir"])
        .arg(&dpx.cache)
        .args(["cache", "ls"])
        .stdin(Stdio::null());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    // The cap turns a read without a bound into an abort, not the machine's memory.
    unsafe {
        cmd.pre_exec(|| rlimit::setrlimit(rlimit::Resource::AS, 2 << 30, 2 << 30));
    }
    let out = cmd.output().expect("run dpx");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/dev/zero") && err.contains("larger than 1 MiB"),
        "the error names the file and the limit: {err}"
    );
}

/// Every leaf command of the CLI, as `["cache", "ls"]`.
fn leaf_commands(cmd: &clap::Command, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    let subs: Vec<&clap::Command> = cmd
        .get_subcommands()
        .filter(|c| c.get_name() != "help")
        .collect();
    if subs.is_empty() {
        out.push(path.clone());
    }
    for sub in subs {
        path.push(sub.get_name().to_string());
        leaf_commands(sub, path, out);
        path.pop();
    }
}

#[test]
fn every_command_prints_json_with_json() {
    use crate::support::engines::free_port;
    let hub = FakeHub::start();
    hub.add_image("library/jsonapp", "v1", &[20_000], 71);
    hub.add_ratelimit_preview();
    hub.set_account("jay", "jays-pw");
    let addr = format!("127.0.0.1:{}", free_port());
    let dpx = Dpx::with_registries(
        &[("docker.io", &hub.url())],
        &format!("[serve]\nlisten = \"{addr}\"\n[credentials]\nstore = \"file\"\n"),
    );
    let work = dpx.dir.path();
    let archive = work.join("jsonapp.tar");
    let (units, daemon_json, hosts, containerd) = (
        work.join("units"),
        work.join("daemon.json"),
        work.join("certs.d"),
        work.join("containerd.toml"),
    );
    let man = work.join("man");
    let p = path_str;
    // In an order where each finds what it needs; stdin for login.
    let runs: Vec<(Vec<&str>, Option<&str>)> = vec![
        (vec!["pull", "jsonapp:v1"], None),
        (vec!["prefetch", "jsonapp:v1"], None),
        (vec!["cache", "ls"], None),
        (vec!["cache", "du"], None),
        (vec!["cache", "verify"], None),
        (vec!["cache", "path"], None),
        (vec!["export", "-o", p(&archive), "jsonapp:v1"], None),
        (vec!["import", p(&archive)], None),
        (vec!["purge", "--unreferenced"], None),
        (vec!["ratelimit"], None),
        (vec!["ratelimit", "--cached"], None),
        (vec!["stats"], None),
        (vec!["daemon", "start", "--idle-timeout", "60s"], None),
        (vec!["daemon", "status"], None),
        (vec!["daemon", "ensure"], None),
        (vec!["daemon", "logs"], None),
        (vec!["daemon", "stop"], None),
        (
            vec!["login", "-u", "jay", "--password-stdin"],
            Some("jays-pw\n"),
        ),
        (vec!["login", "--list"], None),
        (vec!["logout"], None),
        (vec!["completions", "bash"], None),
        (vec!["man", "--dir", p(&man)], None),
        (vec!["man"], None),
        (
            vec!["setup", "docker", "--apply", "--file", p(&daemon_json)],
            None,
        ),
        (vec!["setup", "docker", "--file", p(&daemon_json)], None),
        (
            vec![
                "setup",
                "containerd",
                "--hosts-dir",
                p(&hosts),
                "--containerd-config",
                p(&containerd),
            ],
            None,
        ),
        (vec!["setup", "podman"], None),
        (vec!["setup", "systemd"], None),
        (
            vec!["setup", "systemd", "--apply", "--unit-dir", p(&units)],
            None,
        ),
        (vec!["env"], None),
        (
            vec![
                "doctor",
                "--hosts-dir",
                p(&hosts),
                "--containerd-config",
                p(&containerd),
            ],
            None,
        ),
        (vec!["config", "show"], None),
        (vec!["config", "path"], None),
        (vec!["config", "set", "cache.tag_ttl", "6m"], None),
        (vec!["config", "unset", "cache.tag_ttl"], None),
        // `true` as the editor: a run that changes nothing.
        (vec!["config", "edit"], None),
    ];
    // `serve --json` is the log format of a long-running server (stderr), not a result.
    let exempt = [vec!["serve".to_string()]];
    let mut leaves = Vec::new();
    leaf_commands(
        &<dpx::cli::Cli as clap::CommandFactory>::command(),
        &mut Vec::new(),
        &mut leaves,
    );
    for leaf in &leaves {
        let covered = exempt.contains(leaf)
            || runs.iter().any(|(args, _)| {
                args.len() >= leaf.len() && args.iter().zip(leaf).all(|(a, l)| *a == l.as_str())
            });
        assert!(
            covered,
            "dpx {} has no --json run here: add one",
            leaf.join(" ")
        );
    }
    for (args, input) in &runs {
        let mut cmd = dpx.command();
        cmd.arg("--json")
            .args(args)
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .env("EDITOR", "true")
            .env_remove("VISUAL");
        let out = match input {
            None => cmd.output().expect("run dpx"),
            Some(text) => crate::support::output_with_input(&mut cmd, text.as_bytes()),
        };
        let json: Result<serde_json::Value, _> = serde_json::from_slice(&out.stdout);
        assert!(
            json.is_ok(),
            "dpx --json {}: not JSON on stdout ({}):\n{}\nstderr: {}",
            args.join(" "),
            out.status,
            stdout(&out),
            stderr(&out)
        );
    }
}

/// `config set`/`unset` know every key `config show` prints (they once
/// missed `serve.send_timeout` and `ratelimit.probe_interval[_max]`).
#[test]
fn config_set_and_unset_know_every_key_config_show_prints() {
    let dpx = Dpx::with_registries(&[], "");
    let shown = dpx.json(&["config", "show", "--json"]);
    let keys: Vec<&str> = shown
        .as_array()
        .expect("a list of settings")
        .iter()
        .filter_map(|s| s["key"].as_str())
        // Not file keys, or set with `dpx config edit` only.
        .filter(|k| !["config", "log", "serve.auth.users"].contains(k))
        .collect();
    assert!(keys.len() >= 25, "{keys:?}");
    for key in &keys {
        let out = dpx.run(&["config", "unset", key]);
        assert!(out.status.success(), "unset {key}: {}", stderr(&out));
    }
    for (key, value, shown) in [
        ("serve.send_timeout", "10s", "10s"),
        ("ratelimit.probe_interval", "2m", "2m"),
        ("ratelimit.probe_interval_max", "1h", "1h"),
    ] {
        dpx.ok(&["config", "set", key, value]);
        let show = dpx.ok(&["config", "show"]);
        assert!(
            show.lines()
                .any(|l| l.starts_with(key) && l.contains(" file ") && l.ends_with(shown)),
            "{key}: {show}"
        );
    }
}

#[test]
fn config_set_unset_and_edit_keep_comments_and_refuse_what_would_not_load() {
    let hub = FakeHub::start();
    hub.add_image("library/setme", "v1", &[1000], 72);
    let dpx = Dpx::with_registries(&[], "# team settings\n[cache]\ntag_ttl = \"5m\" # short\n");
    let read = || std::fs::read_to_string(&dpx.config).expect("config");
    let url_key = "registries.\"docker.io\".url";

    // Pointing docker.io elsewhere without writing TOML by hand.
    let said = dpx.ok(&["config", "set", url_key, &hub.url()]);
    assert!(
        said.contains(&format!("{url_key} = \"{}\"", hub.url())),
        "{said}"
    );
    dpx.ok(&["-q", "pull", "setme:v1"]);
    assert_eq!(hub.count(crate::support::hub::Route::ManifestGet), 1);
    dpx.ok(&["config", "set", "cache.tag_ttl", "30m"]);
    let text = read();
    assert!(
        text.starts_with("# team settings\n[cache]\ntag_ttl = \"30m\" # short\n"),
        "{text}"
    );
    let show = dpx.ok(&["config", "show"]);
    assert!(
        show.lines()
            .any(|l| l.starts_with("cache.tag_ttl") && l.contains("file") && l.ends_with("30m")),
        "{show}"
    );

    // Refused, nothing changed: a value the loader refuses, an unknown key.
    let before = read();
    for (args, says) in [
        (
            vec!["config", "set", "cache.tag_ttl", "five"],
            "cache.tag_ttl",
        ),
        (
            vec!["config", "set", url_key, "127.0.0.1:5000"],
            "url = 'http://HOST:PORT'",
        ),
        (
            vec!["config", "set", "network.retries", "-1"],
            "network.retries",
        ),
        (
            vec!["config", "set", "cache.tag_tl", "1m"],
            "did you mean cache.tag_ttl?",
        ),
        (
            vec!["config", "unset", "serve.listn"],
            "did you mean serve.listen?",
        ),
    ] {
        let out = dpx.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
        assert_eq!(read(), before, "{args:?} changed the file");
    }

    dpx.ok(&["config", "unset", "cache.tag_ttl"]);
    assert!(!read().contains("tag_ttl"), "{}", read());
    assert!(read().starts_with("# team settings\n"), "{}", read());
    let again = dpx.ok(&["config", "unset", "cache.tag_ttl"]);
    assert!(again.contains("not set"), "{again}");

    // edit: kept only when it loads.
    let editor = |name: &str, script: &str| {
        let path = dpx.dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("editor script");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    };
    let before = read();
    let bad = editor("bad-editor", "printf '[network]\\nretry = 3\\n' >> \"$1\"");
    let out = dpx
        .command()
        .args(["config", "edit"])
        .env("EDITOR", &bad)
        .env_remove("VISUAL")
        .output()
        .expect("edit");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("network.retry") && stderr(&out).contains("kept in"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read(), before);
    let good = editor(
        "good-editor",
        "printf '[network]\\nretries = 7\\n' >> \"$1\"",
    );
    let out = dpx
        .command()
        .args(["config", "edit"])
        .env("EDITOR", &good)
        .env_remove("VISUAL")
        .output()
        .expect("edit");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read(), format!("{before}[network]\nretries = 7\n"));
}

#[test]
fn prefetch_says_which_image_each_layer_belongs_to() {
    let hub = FakeHub::start();
    let one = hub.add_image("library/labelone", "v1", &[3000], 73);
    let two = hub.add_image("team/labeltwo", "v2", &[4000], 74);
    let dpx = Dpx::new(&hub.url());
    let out = dpx.run(&["prefetch", "labelone:v1", "team/labeltwo:v2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    for (name, digest) in [("labelone:v1", &one), ("team/labeltwo:v2", &two)] {
        for layer in hub.layers(digest) {
            let short = &layer.trim_start_matches("sha256:")[..12];
            assert!(
                err.contains(&format!("{name} {short}: fetched")),
                "{name} {short}: {err}"
            );
        }
    }
}

#[test]
fn a_cache_dir_that_is_a_file_is_named_with_the_fix() {
    let dpx = Dpx::new("http://127.0.0.1:9");
    let file = dpx.dir.path().join("not-a-dir");
    std::fs::write(&file, "mine").expect("file");
    for dir in [file.clone(), file.join("cache")] {
        let out = Command::new(env!("CARGO_BIN_EXE_dpx"))
            .arg("--config")
            .arg(&dpx.config)
            .arg("--cache-dir")
            .arg(&dir)
            .args(["cache", "ls"])
            .output()
            .expect("dpx");
        let err = stderr(&out);
        assert!(!out.status.success());
        assert!(
            err.contains(&format!("{} is a file, not a directory", file.display()))
                && err.contains(&dir.display().to_string())
                && err.contains("--cache-dir"),
            "{err}"
        );
        assert!(!err.contains("os error"), "{err}");
        assert_eq!(std::fs::read_to_string(&file).expect("file"), "mine");
    }
}
