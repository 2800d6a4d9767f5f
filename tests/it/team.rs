//! A team upstream for docker.io: GitLab's Dependency Proxy configured by the
//! CI_DEPENDENCY_PROXY_* variables alone (the fake hub under a group path,
//! with a GitLab-like JWT realm that needs Basic credentials), a Harbor-like
//! proxy project from the config file, and falling back to a second upstream
//! when the team tier is down, with the cache keys unchanged.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::dpx::Dpx;
use crate::support::engines::{engines, hub_image};
use crate::support::http::request;
use crate::support::hub::{FakeHub, Fault, Route};
use crate::support::layout::file_layer;

const GROUP: &str = "my-group/dependency_proxy/containers";
const CI_USER: &str = "gitlab-ci-token";
const CI_PASSWORD: &str = "ci-job-t0ken-4f2a9c";

/// The fake hub as a GitLab Dependency Proxy: repositories under the group
/// path, tokens from `/jwt/auth` only with the CI job's Basic credentials.
fn gitlab() -> FakeHub {
    let hub = FakeHub::start();
    hub.set_path_prefix(Some(GROUP));
    hub.set_gitlab_realm(true);
    hub.require_basic(CI_USER, CI_PASSWORD);
    hub
}

fn host_of(hub: &FakeHub) -> String {
    hub.url().trim_start_matches("http://").to_string()
}

/// What a GitLab runner sets in a job, for the Dependency Proxy `hub`.
fn ci_env(hub: &FakeHub, password: &str) -> Vec<(String, String)> {
    let host = host_of(hub);
    vec![
        ("CI_DEPENDENCY_PROXY_SERVER".into(), host.clone()),
        (
            "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX".into(),
            format!("{host}/{GROUP}"),
        ),
        ("CI_DEPENDENCY_PROXY_USER".into(), CI_USER.into()),
        ("CI_DEPENDENCY_PROXY_PASSWORD".into(), password.into()),
    ]
}

/// An HTTPS proxy on loopback that records what each connection asked for
/// and then hangs up: the Docker Hub fallback's requests end here, so
/// nothing leaves the machine and a test sees whether dpx tried Docker Hub.
struct ProxyRecorder {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ProxyRecorder {
    fn start() -> ProxyRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                log.lock().unwrap().push(line.trim().to_string());
            }
        });
        ProxyRecorder { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// The environment that sends dpx's HTTPS requests through this proxy.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("HTTPS_PROXY".into(), self.url.clone()),
            ("NO_PROXY".into(), "127.0.0.1,localhost".into()),
        ]
    }
}

/// `dpx` with no config file at all (an empty config home) and `env`.
fn dpx_without_config_file(dpx: &Dpx, env: &[(String, String)], args: &[&str]) -> Output {
    let home = dpx.dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpx"));
    cmd.arg("--cache-dir")
        .arg(&dpx.cache)
        .args(args)
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env_remove("DPX_CONFIG")
        .env_remove("DPX_LOG")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run dpx")
}

fn with_env(dpx: &Dpx, env: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = dpx.command();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run dpx")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// Every token request carried the CI job's Basic credentials.
fn assert_tokens_were_authenticated(hub: &FakeHub) {
    let users = hub.token_users();
    assert!(!users.is_empty(), "no token was asked for");
    assert!(
        users.iter().all(|u| u.as_deref() == Some(CI_USER)),
        "token requests without the CI credentials: {users:?}"
    );
}

#[test]
fn ci_variables_alone_pull_through_the_dependency_proxy_and_fall_back_to_docker_hub() {
    let hub = gitlab();
    hub.add_image("library/ci-one", "v1", &[3000, 5000], 901);
    hub.add_image("library/ci-two", "v1", &[3000], 902);
    let proxy = ProxyRecorder::start();
    let dpx = Dpx::with_registries(&[], "");
    let mut env = ci_env(&hub, CI_PASSWORD);
    env.extend(proxy.env());

    let out = dpx_without_config_file(&dpx, &env, &["pull", "ci-one:v1"]);
    assert_ok(&out, "dpx pull through the Dependency Proxy");
    // Every registry request went to the group path, none to the plain name.
    let under_group = format!("/v2/{GROUP}/library/ci-one/");
    assert_eq!(hub.count_path(Route::ManifestGet, &under_group), 1);
    assert_eq!(hub.count_path(Route::ManifestGet, "/v2/library/"), 0);
    assert_eq!(hub.count_path(Route::BlobGet, &under_group), 3);
    assert_eq!(hub.count(Route::BlobGet), 3);
    assert_tokens_were_authenticated(&hub);
    assert!(
        proxy.seen().is_empty(),
        "Docker Hub was contacted: {:?}",
        proxy.seen()
    );
    // The cache knows it as docker.io's, whoever served it.
    let ls = dpx_without_config_file(&dpx, &env, &["cache", "ls"]);
    assert_ok(&ls, "dpx cache ls");
    let ls = String::from_utf8_lossy(&ls.stdout);
    assert!(ls.contains("docker.io/library/ci-one"), "{ls}");

    // The Dependency Proxy down: by default dpx falls back to Docker Hub
    // (here the recording proxy stands in for the internet), and says so.
    hub.stop_listening();
    let out = dpx_without_config_file(&dpx, &env, &["pull", "ci-two:v1"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("falling back to https://registry-1.docker.io"),
        "{err}"
    );
    assert_eq!(err.matches("falling back").count(), 1, "{err}");
    assert!(
        proxy
            .seen()
            .iter()
            .any(|l| l.starts_with("CONNECT registry-1.docker.io:443")),
        "{:?}",
        proxy.seen()
    );
    assert!(!err.contains(CI_PASSWORD), "{err}");
}

#[test]
fn wrong_ci_credentials_are_a_clear_error_and_no_reason_to_fall_back() {
    let hub = gitlab();
    hub.add_image("library/ci-denied", "v1", &[1000], 903);
    let second = FakeHub::start();
    second.add_image("library/ci-denied", "v1", &[1000], 903);
    // The file adds a fallback only; the variables still configure the team tier.
    let dpx = Dpx::with_registries(
        &[],
        &format!(
            "[registries.\"docker.io\"]\nfallback = [\"{}\"]\n",
            second.url()
        ),
    );
    let wrong = "not-the-job-token-77";
    let out = with_env(&dpx, &ci_env(&hub, wrong), &["pull", "ci-denied:v1"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("refused the credentials for {}", host_of(&hub))),
        "{err}"
    );
    assert!(err.contains("incorrect username or password"), "{err}");
    assert!(!err.contains(wrong), "the password is never shown: {err}");
    assert_eq!(hub.count(Route::Token), 1, "a refused login is not retried");
    assert_eq!(hub.count(Route::ManifestGet), 0);
    // A refused login is an answer, not an outage: the fallback is not asked.
    assert_eq!(
        second.count(Route::Ping) + second.count(Route::ManifestHead),
        0
    );
    assert_eq!(second.count(Route::ManifestGet), 0);
    assert!(!err.contains("falling back"), "{err}");
    assert!(!dpx.cache.join("blobs").exists() || dpx.assert_store_consistent() == 0);

    // Malformed variables: a clear error naming the variable, nothing fetched.
    let mut bad = ci_env(&hub, CI_PASSWORD);
    bad[1].1 = host_of(&hub);
    let out = with_env(&dpx, &bad, &["pull", "ci-denied:v1"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "bad input: {err}");
    assert!(
        err.contains("CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX") && err.contains("no path"),
        "{err}"
    );
    assert!(!err.contains(CI_PASSWORD), "{err}");
    assert_eq!(hub.count(Route::Token), 1, "nothing more was asked");
}

#[test]
fn a_down_team_tier_falls_back_and_the_cache_keys_stay_the_same() {
    // A Harbor-like proxy project from the config file (anonymous tokens),
    // and a plain second upstream with the same images.
    let team = FakeHub::start();
    team.set_path_prefix(Some("dockerhub-proxy"));
    let second = FakeHub::start();
    let mut digests = Vec::new();
    for hub in [&team, &second] {
        digests.push(hub.add_image("library/fb-one", "v1", &[4000, 6000], 911));
        hub.add_image("library/fb-two", "v1", &[4000], 912);
    }
    assert_eq!(digests[0], digests[1]);
    let dpx = Dpx::with_registries(
        &[],
        &format!(
            "[registries.\"docker.io\"]\nurl = \"{}\"\nrepository_prefix = \"dockerhub-proxy\"\n\
             fallback = [\"{}\"]\n[cache]\ntag_ttl = \"0\"\n",
            team.url(),
            second.url()
        ),
    );
    dpx.ok(&["pull", "fb-one:v1"]);
    assert_eq!(
        team.count_path(Route::ManifestGet, "/v2/dockerhub-proxy/library/fb-one/"),
        1
    );
    assert_eq!(team.count_path(Route::BlobGet, "/v2/dockerhub-proxy/"), 3);
    assert_eq!(team.count_path(Route::ManifestGet, "/v2/library/"), 0);
    assert_eq!(
        second.count(Route::ManifestHead) + second.count(Route::ManifestGet),
        0
    );

    // The team tier goes down (connections refused): the next pull is
    // served by the second upstream, and the log says so once.
    team.stop_listening();
    let out = dpx.run(&["pull", "fb-two:v1"]);
    assert_ok(&out, "dpx pull with the team tier down");
    let err = stderr(&out);
    assert!(
        err.contains(&format!("upstream {}/dockerhub-proxy failed", team.url()))
            && err.contains(&format!("falling back to {}", second.url())),
        "{err}"
    );
    assert_eq!(
        err.matches("falling back").count(),
        1,
        "once per switch: {err}"
    );
    assert_eq!(
        second.count_path(Route::ManifestGet, "/v2/library/fb-two/"),
        1
    );
    assert_eq!(second.count_path(Route::BlobGet, "/v2/library/fb-two/"), 2);

    // The image fetched through the team tier is the same cache entry when
    // the second upstream is asked: a HEAD finds the same digest, no GET.
    second.reset_counts();
    dpx.ok(&["pull", "fb-one:v1"]);
    assert_eq!(second.count(Route::ManifestHead), 1);
    assert_eq!(second.count(Route::ManifestGet), 0);
    assert_eq!(second.count(Route::BlobGet), 0);

    // Both down: what either upstream brought is served from the cache.
    second.set_fault(Fault::Outage);
    for image in ["fb-one:v1", "fb-two:v1"] {
        let out = dpx.run(&["pull", image]);
        assert_ok(&out, &format!("dpx pull {image} with both upstreams down"));
    }
    let ls = dpx.ok(&["cache", "ls"]);
    assert!(
        ls.contains("docker.io/library/fb-one") && ls.contains("docker.io/library/fb-two"),
        "{ls}"
    );
    // fb-one: manifest, config, two layers; fb-two: manifest, config, one layer.
    assert_eq!(dpx.assert_store_consistent(), 4 + 3);
}

#[test]
fn docker_pulls_through_the_dependency_proxy_from_ci_variables_and_falls_back() {
    let (eng, _serial) = engines();
    let hub = gitlab();
    let second = FakeHub::start();
    let layers = |seed: u64| {
        vec![
            file_layer("hello", &crate::support::hub::noise(seed, 100_000)),
            file_layer("etc/motd", format!("team {seed}\n").as_bytes()),
        ]
    };
    let first = hub_image(&hub, "library/teamapp", Some("v1"), "amd64", &layers(921));
    let later = hub_image(
        &second,
        "library/teamlater",
        Some("v1"),
        "amd64",
        &layers(922),
    );
    let proxy = ProxyRecorder::start();
    // No docker.io url in the file: the CI variables make the Dependency
    // Proxy docker.io's upstream; the file only names the fallback.
    let dpx = Dpx::with_registries(
        &[],
        &format!(
            "[registries.\"docker.io\"]\nfallback = [\"{}\"]\n",
            second.url()
        ),
    );
    let mut env = ci_env(&hub, CI_PASSWORD);
    env.extend(proxy.env());
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let serve = dpx.serve_on(&eng.mirror_addr, &env_refs);
    eng.docker_rmi("teamapp:v1");
    eng.docker_rmi("teamlater:v1");

    let out = eng.docker_pull("teamapp:v1");
    assert!(out.contains(&first), "{out}");
    let under_group = format!("/v2/{GROUP}/library/teamapp/");
    assert!(hub.count_path(Route::ManifestGet, &under_group) >= 1);
    assert_eq!(hub.count_path(Route::BlobGet, &under_group), 3);
    assert_eq!(hub.count_path(Route::ManifestGet, "/v2/library/"), 0);
    assert_tokens_were_authenticated(&hub);
    assert_eq!(second.count(Route::ManifestGet), 0);

    // The Dependency Proxy answers 503s: docker pull still works, from the
    // fallback, and dpx's log says it switched.
    hub.set_fault(Fault::Outage);
    let out = eng.docker_pull("teamlater:v1");
    assert!(out.contains(&later), "{out}");
    assert!(second.count_path(Route::ManifestGet, "/v2/library/teamlater/") >= 1);
    assert_eq!(
        second.count_path(Route::BlobGet, "/v2/library/teamlater/"),
        3
    );
    // Once switched, the rest of the pull goes straight to the fallback.
    assert_eq!(hub.count_path(Route::BlobGet, "teamlater"), 0);
    assert!(serve.log_shows(&format!("falling back to {}", second.url())));
    assert_eq!(serve.log_text().matches("falling back").count(), 1);
    assert!(proxy.seen().is_empty(), "{:?}", proxy.seen());
    assert!(!serve.log_text().contains(CI_PASSWORD));
}

#[test]
fn serve_lists_tags_through_the_prefix_and_from_the_fallback_when_the_team_tier_answers_503() {
    let team = FakeHub::start();
    team.set_path_prefix(Some("dockerhub-proxy"));
    let second = FakeHub::start();
    for hub in [&team, &second] {
        for repo in ["library/tl-team", "library/tl-later"] {
            let digest = hub.add_image(repo, "v1", &[10], 931);
            for t in ["v2", "v3"] {
                hub.tag(repo, t, &digest);
            }
        }
        // Paged: the Link to the next page stays under the prefix.
        hub.set_tag_page_size(Some(2));
    }
    let dpx = Dpx::with_registries(
        &[],
        &format!(
            "[registries.\"docker.io\"]\nurl = \"{}\"\nrepository_prefix = \"dockerhub-proxy\"\n\
             fallback = [\"{}\"]\n",
            team.url(),
            second.url()
        ),
    );
    let serve = dpx.serve();
    let tags = |repo: &str| {
        let resp = request(&serve.addr, "GET", &format!("/v2/{repo}/tags/list"), &[]);
        assert_eq!(resp.status, 200, "{}", resp.body_text());
        let v: serde_json::Value = serde_json::from_slice(&resp.body).expect("json");
        assert_eq!(v["name"], repo, "named as the client asked");
        v["tags"].as_array().expect("tags").len()
    };
    assert_eq!(tags("library/tl-team"), 3);
    assert_eq!(
        team.count_path(Route::TagsList, "/v2/dockerhub-proxy/library/tl-team/"),
        2,
        "two pages, both under the prefix"
    );
    assert_eq!(team.count(Route::TagsList), 2);

    team.set_fault(Fault::Outage);
    assert_eq!(tags("library/tl-later"), 3);
    assert_eq!(
        second.count_path(Route::TagsList, "/v2/library/tl-later/"),
        2
    );
    assert!(serve.log_shows(&format!("falling back to {}", second.url())));
    // The manifest after the switch: straight from the fallback.
    let resp = request(&serve.addr, "GET", "/v2/library/tl-later/manifests/v1", &[]);
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    assert_eq!(
        team.count(Route::ManifestGet) + team.count(Route::ManifestHead),
        0
    );
    assert_eq!(second.count(Route::ManifestGet), 1);
}
