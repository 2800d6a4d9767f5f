//! Upstream credentials: `dpx login` checks with the fake hub's token
//! service before storing, stores in a 0600 file where no keyring is
//! reachable, and pulls then use authenticated tokens (the hub records whose);
//! Docker's config.json, `DOCKER_AUTH_CONFIG`, a credential helper and the
//! environment are used without a login, in the documented order. No secret
//! ever shows in dpx's output.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::support::dpx::Dpx;
use crate::support::http::request;
use crate::support::hub::{FakeHub, Route};

/// A dpx with a private HOME, Docker config dir and runtime dir (no D-Bus
/// session: no keyring), and no credential variables from the outside.
struct Env {
    dpx: Dpx,
    home: PathBuf,
    docker_config: PathBuf,
    vars: RefCell<Vec<(String, String)>>,
    /// Everything dpx printed, checked for secrets at the end.
    printed: RefCell<String>,
}

impl Env {
    fn new(hub: &FakeHub, extra_toml: &str) -> Env {
        let dpx = Dpx::with_registries(&[("docker.io", &hub.url())], extra_toml);
        let home = dpx.dir.path().join("home");
        let docker_config = dpx.dir.path().join("docker");
        for d in [&home, &docker_config, &dpx.dir.path().join("run")] {
            std::fs::create_dir_all(d).unwrap();
        }
        Env {
            dpx,
            home,
            docker_config,
            vars: RefCell::default(),
            printed: RefCell::default(),
        }
    }

    fn set(&self, k: &str, v: &str) {
        let mut vars = self.vars.borrow_mut();
        vars.retain(|(name, _)| name != k);
        vars.push((k.to_string(), v.to_string()));
    }

    fn unset(&self, k: &str) {
        self.vars.borrow_mut().retain(|(name, _)| name != k);
    }

    fn command(&self) -> Command {
        let mut cmd = self.dpx.command();
        for k in [
            "DBUS_SESSION_BUS_ADDRESS",
            "DOCKER_AUTH_CONFIG",
            "DPX_REGISTRY_USER",
            "DPX_REGISTRY_PASSWORD",
            "DPX_REGISTRY_HOST",
            "DISPLAY",
        ] {
            cmd.env_remove(k);
        }
        cmd.env("HOME", &self.home)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env("XDG_RUNTIME_DIR", self.dpx.dir.path().join("run"));
        for (k, v) in self.vars.borrow().iter() {
            cmd.env(k, v);
        }
        cmd
    }

    fn record(&self, out: &Output) {
        let mut p = self.printed.borrow_mut();
        p.push_str(&String::from_utf8_lossy(&out.stdout));
        p.push_str(&String::from_utf8_lossy(&out.stderr));
    }

    fn run(&self, args: &[&str]) -> Output {
        let out = self.command().args(args).output().expect("run dpx");
        self.record(&out);
        out
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let out = crate::support::output_with_input(self.command().args(args), input.as_bytes());
        self.record(&out);
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dpx {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn login(&self, host: &str, user: &str, password: &str) -> Output {
        self.run_stdin(
            &["login", host, "--username", user, "--password-stdin"],
            &format!("{password}\n"),
        )
    }

    fn credential_file(&self) -> PathBuf {
        self.dpx.config_home().join("dpx/credentials.json")
    }

    fn write_docker_config(&self, json: &serde_json::Value) {
        std::fs::write(self.docker_config.join("config.json"), json.to_string()).unwrap();
    }

    /// No secret (passwords, the hub's tokens) in anything dpx printed or
    /// in the files outside the credential store.
    fn assert_no_secret(&self, secrets: &[&str]) {
        let printed = self.printed.borrow();
        assert!(!printed.is_empty());
        for s in secrets {
            assert!(!printed.contains(s), "{s:?} was printed:\n{printed}");
        }
        for n in 1..=50 {
            let token = format!("tok{n}\"");
            assert!(!printed.contains(&token), "a token was printed:\n{printed}");
        }
        let config = std::fs::read_to_string(&self.dpx.config).unwrap();
        for s in secrets {
            assert!(!config.contains(s));
        }
    }
}

fn host_of(hub: &FakeHub) -> String {
    hub.url().trim_start_matches("http://").to_string()
}

fn basic(user: &str, pass: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_checks_before_storing_pulls_use_it_and_logout_removes_it() {
    let hub = FakeHub::start();
    hub.set_account("alice", "pw-Alice-41");
    hub.add_image("library/private", "v1", &[1000], 91);
    hub.add_image("library/private", "v2", &[1000], 92);
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);

    let wrong = env.login(&host, "alice", "pw-Wrong-17");
    assert_eq!(wrong.status.code(), Some(5), "{wrong:?}");
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        err.contains("refused") && err.contains("nothing was stored"),
        "{err}"
    );
    assert!(
        !env.credential_file().exists(),
        "a refused login stores nothing"
    );

    let right = env.login(&host, "alice", "pw-Alice-41");
    assert!(right.status.success(), "{right:?}");
    let text = std::fs::read_to_string(env.credential_file()).unwrap();
    assert!(text.contains("alice") && text.contains(&host), "{text}");
    assert_eq!(mode_of(&env.credential_file()), 0o600);
    let stderr = String::from_utf8_lossy(&right.stderr);
    assert!(
        !stderr.contains("keyring"),
        "store = file: no keyring note: {stderr}"
    );

    // The pull's requests carried a token issued to alice.
    env.ok(&["-vv", "pull", "private:v1"]);
    let served = hub.served_as(Route::ManifestGet);
    assert!(!served.is_empty());
    assert!(
        served.iter().all(|u| u.as_deref() == Some("alice")),
        "{served:?}"
    );

    let list = env.ok(&["login", "--list"]);
    assert!(list.contains(&host) && list.contains("alice"), "{list}");
    assert!(list.contains("dpx login (file"), "{list}");
    let json = env.ok(&["--json", "login", "--list"]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["credentials"][0]["username"], "alice", "{v}");
    assert_eq!(v["credentials"][0]["used"], true, "{v}");

    let out = env.ok(&["logout", &host]);
    assert!(out.contains("Logged out"), "{out}");
    let text = std::fs::read_to_string(env.credential_file()).unwrap();
    assert!(!text.contains("alice"), "{text}");
    hub.reset_counts();
    env.ok(&["pull", "private:v2"]);
    let served = hub.served_as(Route::ManifestGet);
    assert_eq!(served.last(), Some(&None), "after logout: anonymous");
    env.assert_no_secret(&["pw-Alice-41", "pw-Wrong-17"]);
}

#[test]
fn without_a_keyring_login_falls_back_to_a_private_file_and_says_so() {
    let hub = FakeHub::start();
    hub.require_basic("erin", "pw-Erin-08");
    hub.add_image("library/fb", "v1", &[500], 93);
    // No [credentials] store: the keyring is tried, and no D-Bus is reachable.
    let env = Env::new(&hub, "");
    let host = host_of(&hub);
    let out = env.login(&host, "erin", "pw-Erin-08");
    assert!(out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.matches("no OS keyring is reachable").count(),
        1,
        "said once: {err}"
    );
    assert!(
        err.contains("credentials.json") && err.contains("0600"),
        "{err}"
    );
    assert_eq!(mode_of(&env.credential_file()), 0o600);
    env.ok(&["pull", "fb:v1"]);
    assert!(
        hub.served_as(Route::ManifestGet)
            .iter()
            .all(|u| u.as_deref() == Some("erin"))
    );
    // An explicit keyring store with no keyring: a clear error, nothing stored.
    let env2 = Env::new(&hub, "[credentials]\nstore = \"keyring\"\n");
    let out = env2.login(&host, "erin", "pw-Erin-08");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no OS keyring is reachable") && err.contains("store = \"file\""),
        "{err}"
    );
    assert!(!env2.credential_file().exists());
    env.assert_no_secret(&["pw-Erin-08"]);
    env2.assert_no_secret(&["pw-Erin-08"]);
}

#[test]
fn docker_config_auths_and_docker_auth_config_are_used_without_login() {
    let hub = FakeHub::start();
    hub.require_basic("bob", "pw-Bob-55");
    hub.add_image("library/dc", "v1", &[700], 94);
    hub.add_image("library/dc", "v2", &[700], 95);
    let env = Env::new(&hub, "");
    let host = host_of(&hub);

    // Anonymous first: the token service refuses.
    let out = env.run(&["pull", "dc:v1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("dpx login {host}")), "{err}");

    env.write_docker_config(&serde_json::json!({
        "auths": {format!("http://{host}"): {"auth": basic("bob", "pw-Bob-55")}}
    }));
    env.ok(&["pull", "dc:v1"]);
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("bob".to_string()))
    );
    let list = env.ok(&["login", "--list"]);
    assert!(
        list.contains("config.json (auths)") && list.contains("bob"),
        "{list}"
    );
    assert!(
        !env.credential_file().exists(),
        "Docker's credentials are not copied"
    );

    std::fs::remove_file(env.docker_config.join("config.json")).unwrap();
    env.set(
        "DOCKER_AUTH_CONFIG",
        &serde_json::json!({"auths": {host.clone(): {"username": "bob", "password": "pw-Bob-55"}}})
            .to_string(),
    );
    env.ok(&["pull", "dc:v2"]);
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("bob".to_string()))
    );
    let list = env.ok(&["login", "--list"]);
    assert!(list.contains("DOCKER_AUTH_CONFIG (auths)"), "{list}");
    assert!(!env.credential_file().exists());
    env.assert_no_secret(&["pw-Bob-55", &basic("bob", "pw-Bob-55")]);
}

/// A `docker-credential-dpxtest` on the PATH of `env`'s dpx runs: `get`
/// answers `user`/`secret` for any server, `list` names `host`; each call is
/// appended to the returned file as `ACTION SERVER`.
fn install_helper(env: &Env, host: &str, user: &str, secret: &str) -> PathBuf {
    let asked = env.dpx.dir.path().join("asked");
    install_script(
        env,
        "docker-credential-dpxtest",
        &format!(
            "#!/bin/sh\nread server\necho \"$1 $server\" >> {asked}\n\
             if [ \"$1\" = list ]; then printf '{{\"{host}\":\"{user}\"}}'; exit 0; fi\n\
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"\n",
            asked = asked.display()
        ),
    );
    asked
}

/// Puts an executable script named `name` first on dpx's PATH; returns that PATH.
fn install_script(env: &Env, name: &str, text: &str) -> String {
    let bin = env.dpx.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join(name);
    std::fs::write(&script, text).unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    env.set("PATH", &path);
    path
}

/// Runs dpx and kills it if it has not finished after `bound` (a hang, not a timing check).
fn run_bounded(env: &Env, args: &[&str], bound: Duration) -> Output {
    let mut child = env
        .command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dpx");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > bound {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "dpx {args:?} hung: still running after {bound:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    env.record(&out);
    out
}

/// The hostile helper: answers at once, but leaves a child holding
/// its stdout for ten minutes. Touches `started` each time it runs.
fn install_lingering_helper(env: &Env, user: &str, secret: &str) -> (PathBuf, String) {
    let started = env.dpx.dir.path().join("started");
    let path = install_script(
        env,
        "docker-credential-evil",
        &format!(
            "#!/bin/sh\ntouch {started}\n(sleep 600) &\n\
             echo '{{\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}'\n",
            started = started.display()
        ),
    );
    (started, path)
}

#[test]
fn a_helper_whose_child_holds_its_output_cannot_hang_pull_or_serve() {
    let hub = FakeHub::start();
    hub.require_basic("eve", "pw-Evil-41");
    hub.add_image("library/held", "v1", &[300], 41);
    let env = Env::new(&hub, "");
    let (started, path) = install_lingering_helper(&env, "eve", "pw-Evil-41");
    env.write_docker_config(&serde_json::json!({"credsStore": "evil"}));

    let out = run_bounded(&env, &["pull", "held:v1"], Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("docker-credential-evil gave no complete answer within 20s"),
        "{stderr}"
    );

    let home = env.home.display().to_string();
    let docker = env.docker_config.display().to_string();
    let vars = [
        ("HOME", home.as_str()),
        ("DOCKER_CONFIG", docker.as_str()),
        ("PATH", path.as_str()),
    ];
    let serve = env.dpx.serve_with(&vars);
    let resp = request(&serve.addr, "GET", "/v2/library/held/manifests/v1", &[]);
    assert_ne!(resp.status, 200, "{}", resp.body_text());
    assert!(
        serve.log_shows("docker-credential-evil gave no complete answer"),
        "{}",
        serve.log_text()
    );

    // SIGTERM while a request waits on the helper: serve stops (its drain is
    // 10 s; Serve::stop gives up at 20 s) and the helper's child goes too.
    let mut serve = env.dpx.serve_with(&vars);
    std::fs::remove_file(&started).unwrap();
    let addr = serve.addr.clone();
    let waiting = std::thread::spawn(move || {
        request(&addr, "GET", "/v2/library/held/manifests/v1", &[]).status
    });
    crate::support::dpx::wait_for("the helper to run", Duration::from_secs(20), || {
        started.exists()
    });
    assert!(serve.stop().success());
    let _ = waiting.join();
    env.assert_no_secret(&["pw-Evil-41"]);
}

#[test]
fn a_helper_runs_without_dpx_s_secret_variables() {
    let hub = FakeHub::start();
    hub.require_basic("hal", "pw-Helper-77");
    hub.add_image("library/envless", "v1", &[300], 77);
    let env = Env::new(&hub, "");
    let dump = env.dpx.dir.path().join("helper-env");
    install_script(
        &env,
        "docker-credential-dumper",
        &format!(
            "#!/bin/sh\nenv > {dump}\nprintf '{{\"Username\":\"hal\",\"Secret\":\"pw-Helper-77\"}}'\n",
            dump = dump.display()
        ),
    );
    env.write_docker_config(&serde_json::json!({"credsStore": "dumper"}));
    // Secrets meant for other hosts (or for dpx's own clients).
    env.set("DPX_REGISTRY_HOST", "ghcr.io");
    env.set("DPX_REGISTRY_USER", "ghcr-user-Sec1");
    env.set("DPX_REGISTRY_PASSWORD", "pw-Ghcr-Sec2");
    env.set(
        "DOCKER_AUTH_CONFIG",
        &serde_json::json!({"auths": {"quay.io": {"auth": basic("q", "pw-Quay-Sec3")}}})
            .to_string(),
    );
    env.set("CI_DEPENDENCY_PROXY_USER", "gitlab-user-Sec4");
    env.set("CI_DEPENDENCY_PROXY_PASSWORD", "pw-Gitlab-Sec5");
    env.set("DPX_USER", "dpx");
    env.set("DPX_PASSWORD", "pw-Serve-Sec6");
    env.set("DPX_TEST_HARMLESS", "kept");
    env.ok(&["pull", "envless:v1"]);
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("hal".to_string()))
    );
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.contains("DPX_TEST_HARMLESS=kept"), "{seen}");
    for secret in [
        "Sec1",
        "Sec2",
        "Sec3",
        "Sec4",
        "Sec5",
        "Sec6",
        "DPX_REGISTRY_USER",
        "DPX_REGISTRY_PASSWORD",
        "DOCKER_AUTH_CONFIG",
        "CI_DEPENDENCY_PROXY_PASSWORD",
        "DPX_PASSWORD",
    ] {
        assert!(!seen.contains(secret), "the helper saw {secret}:\n{seen}");
    }
}

#[test]
fn a_creds_store_helper_is_asked_and_listed_and_prefetch_uses_it() {
    let hub = FakeHub::start();
    hub.require_basic("gina", "pw-Store-31");
    hub.add_image("library/stored", "v1", &[300], 121);
    let env = Env::new(&hub, "");
    let host = host_of(&hub);
    let asked = install_helper(&env, &host, "gina", "pw-Store-31");
    env.write_docker_config(&serde_json::json!({"credsStore": "dpxtest"}));
    env.ok(&["prefetch", "stored:v1"]);
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("gina".to_string()))
    );
    let calls = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(calls.lines().next(), Some(format!("get {host}").as_str()));
    let list = env.ok(&["login", "--list"]);
    assert!(
        list.contains("credsStore: docker-credential-dpxtest") && list.contains("gina"),
        "{list}"
    );
    assert!(std::fs::read_to_string(&asked).unwrap().contains("list"));
    env.assert_no_secret(&["pw-Store-31"]);
}

#[test]
fn a_credential_helper_named_in_cred_helpers_is_asked() {
    let hub = FakeHub::start();
    hub.require_basic("dave", "pw-Helper-23");
    hub.add_image("library/helped", "v1", &[300], 96);
    let env = Env::new(&hub, "");
    let host = host_of(&hub);
    let asked = install_helper(&env, &host, "dave", "pw-Helper-23");
    env.write_docker_config(&serde_json::json!({
        "credHelpers": {host.clone(): "dpxtest"},
        // The host's helper wins over the store-wide one and the auths entry.
        "credsStore": "dpx-test-missing",
        "auths": {host.clone(): {"auth": basic("dave", "pw-Not-This")}}
    }));
    env.ok(&["pull", "helped:v1"]);
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("dave".to_string()))
    );
    let calls = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(calls.lines().next(), Some(format!("get {host}").as_str()));
    let list = env.ok(&["login", "--list"]);
    assert!(
        list.contains("credHelpers: docker-credential-dpxtest") && list.contains("dave"),
        "{list}"
    );
    env.assert_no_secret(&["pw-Helper-23", "pw-Not-This"]);
}

#[test]
fn sources_take_precedence_in_the_documented_order() {
    let hub = FakeHub::start();
    for (i, repo) in ["one", "two", "three", "four"].iter().enumerate() {
        hub.add_image(&format!("library/{repo}"), "v1", &[200], 100 + i as u64);
    }
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);
    hub.set_account("stored", "pw-Stored-2");
    assert!(env.login(&host, "stored", "pw-Stored-2").status.success());
    env.set("DPX_REGISTRY_USER", "envuser");
    env.set("DPX_REGISTRY_PASSWORD", "pw-Env-1");
    env.set("DPX_REGISTRY_HOST", &host);
    env.set(
        "DOCKER_AUTH_CONFIG",
        &serde_json::json!({"auths": {host.clone(): {"auth": basic("runner", "pw-Runner-3")}}})
            .to_string(),
    );
    env.write_docker_config(&serde_json::json!({
        "auths": {host.clone(): {"auth": basic("docker", "pw-Docker-4")}}
    }));

    let list = env.ok(&["--json", "login", "--list"]);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let order: Vec<(String, bool)> = v["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["username"].as_str().unwrap().to_string(),
                e["used"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("envuser".to_string(), true),
            ("stored".to_string(), false),
            ("runner".to_string(), false),
            ("docker".to_string(), false)
        ],
        "{v}"
    );

    // The hub takes only the expected winner: any other source would fail the pull.
    let steps: [(&str, &str, &str); 4] = [
        ("envuser", "pw-Env-1", "one"),
        ("stored", "pw-Stored-2", "two"),
        ("runner", "pw-Runner-3", "three"),
        ("docker", "pw-Docker-4", "four"),
    ];
    for (user, pass, repo) in steps {
        hub.set_account(user, pass);
        env.ok(&["pull", &format!("{repo}:v1")]);
        assert_eq!(
            hub.served_as(Route::ManifestGet).last(),
            Some(&Some(user.to_string())),
            "{repo}"
        );
        match user {
            "envuser" => {
                env.unset("DPX_REGISTRY_USER");
                env.unset("DPX_REGISTRY_PASSWORD");
            }
            "stored" => {
                env.ok(&["logout", &host]);
            }
            "runner" => env.unset("DOCKER_AUTH_CONFIG"),
            _ => {}
        }
    }
    env.assert_no_secret(&["pw-Env-1", "pw-Stored-2", "pw-Runner-3", "pw-Docker-4"]);
}

#[test]
fn serve_uses_stored_credentials_upstream() {
    let hub = FakeHub::start();
    hub.require_basic("sam", "pw-Serve-61");
    let digest = hub.add_image("library/served", "v1", &[400], 110);
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);
    assert!(env.login(&host, "sam", "pw-Serve-61").status.success());
    let home = env.home.display().to_string();
    let docker = env.docker_config.display().to_string();
    let serve = env
        .dpx
        .serve_with(&[("HOME", &home), ("DOCKER_CONFIG", &docker)]);
    let resp = request(&serve.addr, "GET", "/v2/library/served/manifests/v1", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(resp.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(
        hub.served_as(Route::ManifestGet).last(),
        Some(&Some("sam".to_string()))
    );
    assert!(!serve.log_text().contains("pw-Serve-61"));
    env.assert_no_secret(&["pw-Serve-61"]);
}

#[test]
fn bad_hosts_unreachable_registries_and_missing_input_are_clear_errors() {
    let hub = FakeHub::start();
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");

    let out = env.login("ghcr.io/org", "u", "pw-Bad-0");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a registry host"), "{err}");

    // Nothing listens on port 1.
    let out = env.login("127.0.0.1:1", "u", "pw-Bad-0");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot check the credentials with http://127.0.0.1:1")
            && err.contains("nothing was stored"),
        "{err}"
    );

    // No terminal and no --username / --password-stdin.
    let out = env.run(&["login", &host_of(&hub)]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--username"), "{err}");
    let out = env.run(&["login", &host_of(&hub), "--username", "u"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--password-stdin"), "{err}");
    // --password-stdin needs --username; there is no password flag.
    assert_eq!(
        env.run(&["login", "--password-stdin"]).status.code(),
        Some(2)
    );
    assert_eq!(
        env.run(&["login", "--password", "x"]).status.code(),
        Some(2)
    );
    assert!(!env.credential_file().exists());
    let list = env.ok(&["login", "--list"]);
    assert!(list.contains("anonymous"), "{list}");
    env.assert_no_secret(&["pw-Bad-0"]);
}

#[test]
fn a_basic_challenge_registry_is_checked_and_used_with_basic_auth() {
    let hub = FakeHub::start();
    hub.set_basic_registry("frank", "pw-Basic-77");
    hub.add_image("library/basic", "v1", &[600], 120);
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);
    let wrong = env.login(&host, "frank", "pw-Nope-78");
    assert_eq!(wrong.status.code(), Some(5), "{wrong:?}");
    assert!(!env.credential_file().exists());
    let right = env.login(&host, "frank", "pw-Basic-77");
    assert!(right.status.success(), "{right:?}");
    env.ok(&["pull", "basic:v1"]);
    let served = hub.served_as(Route::ManifestGet);
    assert!(
        !served.is_empty() && served.iter().all(|u| u.as_deref() == Some("frank")),
        "{served:?}"
    );
    env.assert_no_secret(&["pw-Basic-77", "pw-Nope-78", &basic("frank", "pw-Basic-77")]);
}

#[test]
fn a_credential_file_others_may_read_is_refused_with_the_fix() {
    let hub = FakeHub::start();
    hub.require_basic("olga", "pw-Open-53");
    hub.add_image("library/exposed", "v1", &[300], 53);
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);
    assert!(env.login(&host, "olga", "pw-Open-53").status.success());
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(
            env.credential_file(),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
    }
    let out = env.run(&["pull", "exposed:v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a 0644 credentials.json was used: {err}"
    );
    let path = env.credential_file().display().to_string();
    assert!(
        err.contains(&path) && err.contains("chmod 600"),
        "the error names the file and the fix: {err}"
    );
    assert!(
        hub.served_as(Route::ManifestGet)
            .iter()
            .all(Option::is_none),
        "nothing was served to the exposed login"
    );
    env.assert_no_secret(&["pw-Open-53"]);
}

#[test]
fn a_bare_login_goes_where_docker_io_pulls_go_and_every_config_file_finds_it() {
    let hub = FakeHub::start();
    hub.set_account("dora", "pw-Dora-55");
    hub.add_image("library/dorasapp", "v1", &[1000], 94);
    let env = Env::new(&hub, "[credentials]\nstore = \"file\"\n");
    let host = host_of(&hub);

    // No REGISTRY: the configured docker.io upstream, not Docker Hub.
    let out = env.run_stdin(
        &["login", "--username", "dora", "--password-stdin"],
        "pw-Dora-55\n",
    );
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&format!(
            "Logged in to {host} as dora (checked with {}",
            hub.url()
        )),
        "{said}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`dpx login docker.io` logs in to Docker Hub itself"),
        "{err}"
    );
    assert_eq!(hub.token_users().last(), Some(&Some("dora".to_string())));
    assert!(env.credential_file().is_file());

    // Another config file (same upstream) finds the same login, and says where it looked.
    let other = Env::new(&hub, "");
    other.set(
        "XDG_CONFIG_HOME",
        crate::support::dpx::path_str(&env.dpx.config_home()),
    );
    let list = other.run(&["login", "--list"]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains(&host) && text.contains("dora"), "{text}");
    let looked = String::from_utf8_lossy(&list.stderr);
    assert!(
        looked.contains(&format!("dpx's store {}", env.credential_file().display())),
        "{looked}"
    );
    other.ok(&["pull", "dorasapp:v1"]);
    assert!(
        hub.served_as(Route::ManifestGet)
            .iter()
            .all(|u| u.as_deref() == Some("dora")),
        "the pull with the other config file used the login"
    );

    // [credentials] dir puts the store elsewhere, whatever the platform's dir.
    let elsewhere = env.dpx.dir.path().join("creds");
    let moved = Env::new(
        &hub,
        &format!(
            "[credentials]\nstore = \"file\"\ndir = \"{}\"\n",
            elsewhere.display()
        ),
    );
    let v: serde_json::Value =
        serde_json::from_str(&moved.ok(&["--json", "login", "--list"])).unwrap();
    assert_eq!(
        v["store"],
        format!("{}/credentials.json", elsewhere.display())
    );
    assert_eq!(v["credentials"].as_array().map(Vec::len), Some(0), "{v}");

    // The help says both.
    let help = env.ok(&["login", "--help"]);
    assert!(help.contains("docker.io is Docker Hub itself"), "{help}");
    assert!(help.contains("[registries.\"docker.io\"] url"), "{help}");
    env.assert_no_secret(&["pw-Dora-55"]);
}
