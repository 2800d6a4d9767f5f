//! Docker's credentials, used where they are and never copied: the
//! `config.json` in `$DOCKER_CONFIG` (else `~/.docker`) and the same JSON in
//! `DOCKER_AUTH_CONFIG` (GitLab runners set it). Per registry, as Docker
//! does: `credHelpers[host]`, then `credsStore`, then `auths[host]`
//! (`auth` = base64 `user:password`, or `username` + `password`). Helpers
//! speak the `docker-credential-*` protocol: `get` with the server on stdin,
//! `{"Username","Secret"}` on stdout.
//!
//! (The `docker_credential` crate reads the same file, but cannot say which
//! of the three answered, reads no `DOCKER_AUTH_CONFIG`, waits on a helper
//! forever, and puts a failing helper's output in its error.)

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;

use super::source::{CredentialSource, Credentials, Found, Listed};
use super::{dependency_proxy, env};
use crate::reference::{DOCKER_HUB, HostKey};

pub const AUTH_CONFIG_VAR: &str = "DOCKER_AUTH_CONFIG";

/// The secret variables dpx reads (or prints for a shell to set): removed
/// from a credential helper's environment, since a helper is another program
/// asked about one host and must not see the others' secrets.
pub const SECRET_VARS: &[&str] = &[
    env::USER,
    env::PASSWORD,
    AUTH_CONFIG_VAR,
    dependency_proxy::USER,
    dependency_proxy::PASSWORD,
    // What `dpx env` prints for clients of a password-protected serve.
    "DPX_USER",
    "DPX_PASSWORD",
];

/// The key Docker writes for Docker Hub, and asks helpers for.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";
/// A helper that has not answered by then is taken as having no credentials.
const HELPER_DEADLINE: Duration = Duration::from_secs(20);
/// A helper's reply is small; more is not read.
const MAX_HELPER_OUTPUT: u64 = 64 * 1024;

/// The parts of Docker's config.json that hold credentials.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    pub creds_store: Option<String>,
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerConfig")
            .field("auths", &self.auths.keys().collect::<Vec<_>>())
            .field("creds_store", &self.creds_store)
            .field("cred_helpers", &self.cred_helpers)
            .finish()
    }
}

impl AuthEntry {
    /// `auth` (base64 `user:password`) or `username` + `password`.
    fn credentials(&self) -> Option<Credentials> {
        if let Some(auth) = self.auth.as_deref().filter(|a| !a.is_empty()) {
            let engine = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let decoded = engine.decode(auth.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (username, password) = text.split_once(':')?;
            return Some(Credentials {
                username: username.to_string(),
                password: password.to_string(),
            });
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        }
    }
}

impl DockerConfig {
    /// Parses config.json text; the error gives the line only (the text holds secrets).
    pub fn parse(text: &str) -> Result<DockerConfig, usize> {
        serde_json::from_str(text).map_err(|e| e.line())
    }
}

/// What a helper said.
enum HelperAnswer {
    Found(Credentials),
    NotFound,
}

/// Set once dpx is stopping: running helpers are ended and no new one starts.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Ends every running helper (and what it started) and refuses new ones, so
/// a stopping dpx never waits on one. Called on a shutdown signal and
/// before the runtime is dropped.
pub fn stop_helpers() {
    STOPPING.store(true, Ordering::Relaxed);
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; its
/// stdout, or why not. One deadline covers the whole exchange (start, write,
/// read to the end, exit): a helper that leaves a child holding its stdout
/// is stopped at the deadline with its whole process group. The helper gets
/// dpx's environment without dpx's own secrets (`SECRET_VARS`). Never
/// returns the output in an error.
fn run_helper(helper: &str, action: &str, input: &str) -> Result<(bool, Vec<u8>), String> {
    let program = format!("docker-credential-{helper}");
    // Unit tests name a directory of fake helpers (PATH is the whole process's).
    #[cfg(test)]
    let program = tests::HELPER_DIR
        .with(|d| d.borrow().as_ref().map(|d| d.join(&program)))
        .map_or(program, |p| p.display().to_string());
    if STOPPING.load(Ordering::Relaxed) {
        return Err(format!("not running {program}: dpx is stopping"));
    }
    let deadline = Instant::now() + HELPER_DEADLINE;
    let mut command = Command::new(&program);
    command
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for var in SECRET_VARS {
        command.env_remove(var);
    }
    // Its own process group, so what it starts can be stopped with it.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    let input = input.to_string();
    let (sent, output) = std::sync::mpsc::channel();
    // Detached: if it blocks past the deadline, stopping the group ends it
    // (and if a grandchild escaped the group, nothing waits for it).
    std::thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            // A helper that exits without reading is judged by its exit status.
            let _ = stdin.write_all(input.as_bytes());
        }
        let mut out = Vec::new();
        if let Some(s) = stdout {
            let _ = s.take(MAX_HELPER_OUTPUT).read_to_end(&mut out);
        }
        let _ = sent.send(out);
    });
    let (mut out, mut status) = (None, None);
    loop {
        if out.is_none() {
            match output.try_recv() {
                Ok(o) => out = Some(o),
                Err(std::sync::mpsc::TryRecvError::Empty) => {}
                Err(std::sync::mpsc::TryRecvError::Disconnected) => out = Some(Vec::new()),
            }
        }
        if status.is_none() {
            status = match child.try_wait() {
                Ok(s) => s,
                Err(e) => {
                    stop_helper(&mut child);
                    return Err(format!("cannot wait for {program}: {e}"));
                }
            };
        }
        if let (Some(_), Some(s)) = (&out, status) {
            return Ok((s.success(), out.unwrap_or_default()));
        }
        if STOPPING.load(Ordering::Relaxed) {
            stop_helper(&mut child);
            return Err(format!("{program} stopped: dpx is stopping"));
        }
        if Instant::now() >= deadline {
            stop_helper(&mut child);
            let what = if status.is_some() {
                "exited, but something it started still held its output"
            } else {
                "was still running"
            };
            return Err(format!(
                "{program} gave no complete answer within {} ({what}); it was stopped",
                humantime::format_duration(HELPER_DEADLINE)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills a helper's process group (it leads it) and the helper, and reaps it.
fn stop_helper(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Some(group) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn helper_get(helper: &str, server: &str) -> Result<HelperAnswer, String> {
    let (ok, out) = run_helper(helper, "get", server)?;
    if !ok {
        // The protocol's "credentials not found in native keychain" and the
        // like: the helper has nothing for this server.
        return Ok(HelperAnswer::NotFound);
    }
    helper_reply(helper, &out)
}

/// What a helper's `get` printed; the error never quotes it (it holds a secret).
fn helper_reply(helper: &str, out: &[u8]) -> Result<HelperAnswer, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Reply {
        username: String,
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(out).map_err(|_| {
        format!("docker-credential-{helper} get: the reply is not the helper protocol's JSON")
    })?;
    if reply.username == "<token>" || reply.username.is_empty() {
        // An identity token needs an OAuth refresh flow dpx does not speak.
        return Ok(HelperAnswer::NotFound);
    }
    Ok(HelperAnswer::Found(Credentials {
        username: reply.username,
        password: reply.secret,
    }))
}

/// `list`: server -> username, no secrets.
fn helper_list(helper: &str) -> Result<BTreeMap<String, String>, String> {
    let (ok, out) = run_helper(helper, "list", "")?;
    if !ok {
        return Err(format!("docker-credential-{helper} list failed"));
    }
    serde_json::from_slice(&out)
        .map_err(|_| format!("docker-credential-{helper} list: the reply is not JSON"))
}

/// Docker's config, from a file or from `DOCKER_AUTH_CONFIG`.
#[derive(Debug)]
pub struct DockerSource {
    /// Names the source in `dpx login --list` and logs.
    label: String,
    config: DockerConfig,
}

impl DockerSource {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub fn config_path() -> Option<PathBuf> {
        DockerSource::config_path_in(|name| std::env::var_os(name))
    }

    /// `config_path` with the variables read through `var`.
    fn config_path_in(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
        match var("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
            Some(dir) => Some(PathBuf::from(dir).join("config.json")),
            None => var("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| Path::new(&h).join(".docker").join("config.json")),
        }
    }

    /// Docker's config file; `None` when there is none (or it is unreadable: said in the log).
    pub fn from_file(path: &Path) -> Option<DockerSource> {
        let text = match crate::operator_files::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!("not using Docker's {}: {e}", path.display());
                return None;
            }
        };
        let label = format!("docker {}", path.display());
        match DockerConfig::parse(&text) {
            Ok(config) => Some(DockerSource { label, config }),
            Err(line) => {
                tracing::warn!(
                    "not using Docker's {}: invalid JSON (line {line})",
                    path.display()
                );
                None
            }
        }
    }

    /// `DOCKER_AUTH_CONFIG`, when set.
    pub fn from_env() -> Option<DockerSource> {
        DockerSource::from_auth_config(std::env::var(AUTH_CONFIG_VAR).ok())
    }

    /// `DOCKER_AUTH_CONFIG`'s value, if any.
    fn from_auth_config(text: Option<String>) -> Option<DockerSource> {
        let text = text.filter(|t| !t.trim().is_empty())?;
        match DockerConfig::parse(&text) {
            Ok(config) => Some(DockerSource {
                label: AUTH_CONFIG_VAR.to_string(),
                config,
            }),
            Err(line) => {
                tracing::warn!("not using {AUTH_CONFIG_VAR}: invalid JSON (line {line})");
                None
            }
        }
    }

    pub fn from_config(label: &str, config: DockerConfig) -> DockerSource {
        DockerSource {
            label: label.to_string(),
            config,
        }
    }

    fn found(&self, key: &str, credentials: Credentials, how: &str) -> Found {
        Found {
            registry: key.to_string(),
            credentials,
            source: format!("{} ({how})", self.label),
        }
    }

    /// What a helper is asked for: the server as config.json names it.
    fn server_for(key: &str) -> String {
        if key == DOCKER_HUB {
            DOCKER_HUB_SERVER.to_string()
        } else {
            key.to_string()
        }
    }

    fn ask_helper(&self, helper: &str, server: &str, key: &str, how: &str) -> Option<Found> {
        match helper_get(helper, server) {
            Ok(HelperAnswer::Found(c)) => Some(self.found(key, c, how)),
            Ok(HelperAnswer::NotFound) => None,
            Err(why) => {
                tracing::warn!("{}: {why}", self.label);
                None
            }
        }
    }
}

impl CredentialSource for DockerSource {
    fn lookup(&self, key: &str) -> Option<Found> {
        if let Some((server, helper)) = self
            .config
            .cred_helpers
            .iter()
            .find(|(k, h)| HostKey::of_registry(k) == key && !h.is_empty())
        {
            let how = format!("credHelpers: docker-credential-{helper}");
            // Docker asks only the named helper for this host.
            return self.ask_helper(helper, server, key, &how);
        }
        if let Some(store) = self.config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let how = format!("credsStore: docker-credential-{store}");
            if let Some(found) = self.ask_helper(store, &Self::server_for(key), key, &how) {
                return Some(found);
            }
        }
        self.config
            .auths
            .iter()
            .filter(|(k, _)| HostKey::of_registry(k) == key)
            .find_map(|(_, entry)| entry.credentials())
            .map(|c| self.found(key, c, "auths"))
    }

    fn list(&self) -> Vec<Listed> {
        let mut out = Vec::new();
        for (server, helper) in &self.config.cred_helpers {
            let username = match helper_get(helper, server) {
                Ok(HelperAnswer::Found(c)) => Some(c.username),
                _ => None,
            };
            out.push(Listed {
                registry: HostKey::of_registry(server).into_string(),
                username,
                source: format!("{} (credHelpers: docker-credential-{helper})", self.label),
            });
        }
        if let Some(store) = self.config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            match helper_list(store) {
                Ok(servers) => out.extend(servers.into_iter().map(|(server, username)| Listed {
                    registry: HostKey::of_registry(&server).into_string(),
                    username: Some(username),
                    source: format!("{} (credsStore: docker-credential-{store})", self.label),
                })),
                Err(why) => tracing::warn!("{}: {why}", self.label),
            }
        }
        for (server, entry) in &self.config.auths {
            if let Some(c) = entry.credentials() {
                out.push(Listed {
                    registry: HostKey::of_registry(server).into_string(),
                    username: Some(c.username),
                    source: format!("{} (auths)", self.label),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Where `run_helper` looks for `docker-credential-*` on this test's thread.
        pub(super) static HELPER_DIR: std::cell::RefCell<Option<PathBuf>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Fake helpers, used by `run_helper` on this thread while it lives.
    struct FakeHelpers(#[allow(dead_code)] tempfile::TempDir);

    impl Drop for FakeHelpers {
        fn drop(&mut self) {
            HELPER_DIR.with(|d| d.borrow_mut().take());
        }
    }

    /// A longer secret than 1 KiB, for the output cap.
    const BIG_SECRET_LEN: usize = 5000;

    /// `docker-credential-fake` answers for Docker Hub (asked for as Docker
    /// names it), `ghcr.io`, an identity token for `token.example` and a big
    /// secret for `big.example`, "not found" otherwise, and lists two;
    /// `docker-credential-garbage` answers everything with text that is not JSON.
    fn fake_helpers() -> FakeHelpers {
        let fake = format!(
            r#"#!/bin/sh
server=$(cat)
case "$1 $server" in
  "get https://index.docker.io/v1/") echo '{{"ServerURL":"x","Username":"hub-user","Secret":"hub-pw"}}' ;;
  "get ghcr.io") echo '{{"Username":"gh-user","Secret":"gh-pw"}}' ;;
  "get token.example") echo '{{"Username":"<token>","Secret":"refresh"}}' ;;
  "get big.example") printf '{{"Username":"big","Secret":"%s"}}' "$(head -c {BIG_SECRET_LEN} /dev/zero | tr '\0' x)" ;;
  "list ") echo '{{"https://index.docker.io/v1/":"hub-user","ghcr.io":"gh-user"}}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
"#
        );
        let garbage = "#!/bin/sh\ncat >/dev/null\necho 'no JSON here'\n";
        let dir = tempfile::tempdir().unwrap();
        for (name, script) in [("fake", fake.as_str()), ("garbage", garbage)] {
            // Written by a child, so no fd of this process (inherited by a
            // test's fork elsewhere) makes running it fail with ETXTBSY.
            let path = dir.path().join(format!("docker-credential-{name}"));
            let mut sh = Command::new("sh")
                .args(["-c", "cat > \"$1\" && chmod 755 \"$1\"", "sh"])
                .arg(&path)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            sh.stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            assert!(sh.wait().unwrap().success());
        }
        HELPER_DIR.with(|d| *d.borrow_mut() = Some(dir.path().to_path_buf()));
        FakeHelpers(dir)
    }

    fn source(json: &str) -> DockerSource {
        DockerSource::from_config("test", DockerConfig::parse(json).unwrap())
    }

    fn user_and_source(found: Option<Found>) -> Option<(String, String, String)> {
        found.map(|f| (f.registry, f.credentials.username, f.source))
    }

    #[cfg(unix)]
    #[test]
    fn a_creds_store_is_asked_for_the_server_docker_names_then_auths() {
        let _helpers = fake_helpers();
        let src = source(
            r#"{"credsStore": "fake",
                "auths": {"quay.io": {"auth": "cTpw"}, "ghcr.io": {"auth": "bm90OnVzZWQ="}}}"#,
        );
        let hub = src.lookup("docker.io").unwrap();
        assert_eq!(
            (hub.registry.as_str(), hub.credentials.username.as_str()),
            ("docker.io", "hub-user")
        );
        assert_eq!(hub.credentials.password, "hub-pw");
        assert_eq!(hub.source, "test (credsStore: docker-credential-fake)");
        // The store wins over auths; what it has not, auths gives.
        assert_eq!(
            user_and_source(src.lookup("ghcr.io")),
            Some((
                "ghcr.io".into(),
                "gh-user".into(),
                "test (credsStore: docker-credential-fake)".into()
            ))
        );
        assert_eq!(
            user_and_source(src.lookup("quay.io")),
            Some(("quay.io".into(), "q".into(), "test (auths)".into()))
        );
        // An identity token is not a password dpx can use.
        assert!(src.lookup("token.example").is_none());
        assert!(src.lookup("nowhere.example").is_none());
        // A reply over 1 KiB is read whole (the cap is 64 KiB).
        let big = src.lookup("big.example").unwrap().credentials.password;
        assert_eq!(big.len(), BIG_SECRET_LEN);

        let mut listed = crate::credentials::listed(&src);
        listed.sort();
        let store = "test (credsStore: docker-credential-fake)".to_string();
        assert_eq!(
            listed,
            [
                ("docker.io".into(), Some("hub-user".into()), store.clone()),
                ("ghcr.io".into(), Some("gh-user".into()), store),
                ("ghcr.io".into(), Some("not".into()), "test (auths)".into()),
                ("quay.io".into(), Some("q".into()), "test (auths)".into()),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_hosts_cred_helper_is_the_only_one_asked_for_it() {
        let _helpers = fake_helpers();
        let src = source(
            r#"{"credHelpers": {"ghcr.io": "fake", "index.docker.io": "garbage", "quay.io": ""},
                "credsStore": "garbage",
                "auths": {"quay.io": {"auth": "cTpw"}, "docker.io": {"auth": "dTpw"}}}"#,
        );
        assert_eq!(
            user_and_source(src.lookup("ghcr.io")),
            Some((
                "ghcr.io".into(),
                "gh-user".into(),
                "test (credHelpers: docker-credential-fake)".into()
            ))
        );
        // A helper that answers garbage: no credentials, and no fallback to auths.
        assert!(src.lookup("docker.io").is_none());
        // An empty helper name is no helper: the store (garbage) then auths.
        assert_eq!(
            user_and_source(src.lookup("quay.io")),
            Some(("quay.io".into(), "q".into(), "test (auths)".into()))
        );
        let listed: Vec<_> = src
            .list()
            .into_iter()
            .map(|l| (l.registry, l.username))
            .collect();
        // credHelpers first (garbage and "" give no user), the store's list
        // fails (it is not JSON), then auths.
        assert_eq!(
            listed,
            [
                ("ghcr.io".into(), Some("gh-user".into())),
                ("docker.io".into(), None),
                ("quay.io".into(), None),
                ("docker.io".into(), Some("u".into())),
                ("quay.io".into(), Some("q".into())),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_store_that_cannot_list_lists_nothing() {
        let _helpers = fake_helpers();
        let src = source(r#"{"credsStore": "fake"}"#);
        assert_eq!(src.list().len(), 2);
        // `garbage list` prints text, `fake get` of an unknown server fails.
        assert!(source(r#"{"credsStore": "garbage"}"#).list().is_empty());
        assert!(helper_list("garbage").is_err());
        assert!(matches!(
            helper_get("fake", "nowhere.example"),
            Ok(HelperAnswer::NotFound)
        ));
        assert!(helper_get("no-such-helper-here", "x").is_err());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stopped_helper_is_ended_and_reaped_with_what_it_started() {
        let mut command = Command::new("sh");
        command
            .args(["-c", "sleep 60 & echo $!; wait"])
            .stdout(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut helper = command.spawn().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(helper.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let child: i32 = line.trim().parse().unwrap();
        stop_helper(&mut helper);
        assert!(helper.try_wait().unwrap().is_some(), "the helper is reaped");
        // Its child got SIGKILL with the group: it is gone or a zombie now
        // (nothing here reaps it), never still sleeping. Bounded, not timed.
        let stopped = || {
            std::fs::read_to_string(format!("/proc/{child}/stat")).map_or(true, |s| {
                s.rsplit(')')
                    .next()
                    .is_some_and(|r| r.trim_start().starts_with('Z'))
            })
        };
        let started = Instant::now();
        while !stopped() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stopped(), "the helper's child {child} still runs");
    }

    #[test]
    fn docker_config_path_and_auth_config() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let path = |p: &str| Some(PathBuf::from(p));
        assert_eq!(
            DockerSource::config_path_in(vars(&[("DOCKER_CONFIG", "/d"), ("HOME", "/h")])),
            path("/d/config.json")
        );
        assert_eq!(
            DockerSource::config_path_in(vars(&[("DOCKER_CONFIG", ""), ("HOME", "/h")])),
            path("/h/.docker/config.json")
        );
        assert_eq!(DockerSource::config_path_in(vars(&[("HOME", "")])), None);
        assert_eq!(DockerSource::config_path_in(vars(&[])), None);
        // The real one reads this process's variables (HOME is set where tests run).
        assert_eq!(
            DockerSource::config_path(),
            DockerSource::config_path_in(|name| std::env::var_os(name))
        );
        assert!(std::env::var_os("HOME").is_none() || DockerSource::config_path().is_some());

        let from = |t: &str| DockerSource::from_auth_config(Some(t.to_string()));
        let src = from(r#"{"auths": {"ghcr.io": {"auth": "dTpw"}}}"#).unwrap();
        assert_eq!(src.label, AUTH_CONFIG_VAR);
        assert_eq!(
            src.lookup("ghcr.io").unwrap().source,
            "DOCKER_AUTH_CONFIG (auths)"
        );
        assert!(from(" \n").is_none());
        assert!(from("{not json").is_none());
        assert!(DockerSource::from_auth_config(None).is_none());
    }

    #[test]
    fn docker_config_file_is_read_or_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        // No file is no source, and nothing to warn about; an unreadable one is said.
        let log = crate::credentials::captured_log(|| {
            assert!(DockerSource::from_file(&path).is_none());
        });
        assert_eq!(log, "");
        let log = crate::credentials::captured_log(|| {
            assert!(DockerSource::from_file(dir.path()).is_none());
        });
        assert!(log.contains("not using Docker's"), "{log}");
        std::fs::write(&path, r#"{"auths": {"ghcr.io": {"auth": "dTpw"}}}"#).unwrap();
        let src = DockerSource::from_file(&path).unwrap();
        assert_eq!(
            src.lookup("ghcr.io").unwrap().source,
            format!("docker {} (auths)", path.display())
        );
        std::fs::write(&path, "{").unwrap();
        assert!(DockerSource::from_file(&path).is_none());
        assert!(DockerSource::from_file(dir.path()).is_none());
    }

    #[test]
    fn auth_entries_in_their_edge_forms() {
        let entry = |auth: Option<&str>, user: Option<&str>, password: Option<&str>| AuthEntry {
            auth: auth.map(str::to_string),
            username: user.map(str::to_string),
            password: password.map(str::to_string),
        };
        let creds = |e: AuthEntry| e.credentials().map(|c| (c.username, c.password));
        // An empty `auth` is no `auth`: username and password apply.
        assert_eq!(
            creds(entry(Some(""), Some("u"), Some("p"))),
            Some(("u".into(), "p".into()))
        );
        // A user name is needed; an empty password is a password.
        assert_eq!(creds(entry(None, Some(""), Some("p"))), None);
        assert_eq!(
            creds(entry(None, Some("u"), Some(""))),
            Some(("u".into(), "".into()))
        );
        assert_eq!(creds(entry(None, Some("u"), None)), None);
        // `auth` wins over the other two; without a colon it is nothing.
        assert_eq!(
            creds(entry(Some("dTpw"), Some("other"), Some("x"))),
            Some(("u".into(), "p".into()))
        );
        assert_eq!(creds(entry(Some("dXNlcg=="), None, None)), None);
    }

    #[test]
    fn the_config_debug_form_names_hosts_and_helpers_only() {
        let config = DockerConfig::parse(
            r#"{"auths": {"ghcr.io": {"auth": "dTpzM2NyM3Q="}}, "credsStore": "desktop",
                "credHelpers": {"quay.io": "pass"}}"#,
        )
        .unwrap();
        let shown = format!("{config:?}");
        for part in ["ghcr.io", "desktop", "quay.io", "pass"] {
            assert!(shown.contains(part), "{part}: {shown}");
        }
        assert!(!shown.contains("dTpzM2NyM3Q="), "{shown}");
    }

    #[test]
    fn auths_in_both_forms_and_hub_aliases() {
        let config = DockerConfig::parse(
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "YWxpY2U6cHc6d2l0aDpjb2xvbnM="},
                "registry.example.com:5000": {"username": "bob", "password": "pw2"},
                "ghcr.io": {}
            }, "HttpHeaders": {"User-Agent": "x"}}"#,
        )
        .unwrap();
        let src = DockerSource::from_config("test", config);
        let hub = src.lookup("docker.io").unwrap();
        assert_eq!(hub.credentials.username, "alice");
        assert_eq!(hub.credentials.password, "pw:with:colons");
        assert_eq!(hub.source, "test (auths)");
        let other = src.lookup("registry.example.com:5000").unwrap();
        assert_eq!(other.credentials.username, "bob");
        assert!(src.lookup("ghcr.io").is_none());
        let listed = src.list();
        assert_eq!(listed.len(), 2);
        assert!(!format!("{listed:?}{src:?}").contains("pw"));
    }

    #[test]
    fn unpadded_auth_and_garbage() {
        let e = AuthEntry {
            auth: Some("dTpw".into()),
            ..AuthEntry::default()
        };
        assert_eq!(e.credentials().unwrap().password, "p");
        let e = AuthEntry {
            auth: Some("!!!".into()),
            ..AuthEntry::default()
        };
        assert!(e.credentials().is_none());
        assert_eq!(DockerConfig::parse("{\n\"auths\": 5}").unwrap_err(), 2);
    }

    #[test]
    fn a_missing_helper_is_no_credentials() {
        let config = DockerConfig::parse(
            r#"{"credHelpers": {"ghcr.io": "dpx-test-no-such-helper"},
                "auths": {"ghcr.io": {"auth": "dTpw"}}}"#,
        )
        .unwrap();
        let src = DockerSource::from_config("test", config);
        // Docker asks only the host's helper; its auths entry is not a fallback.
        assert!(src.lookup("ghcr.io").is_none());
    }

    use proptest::prelude::Strategy as _;

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No helper output panics dpx; a reply in the protocol gives its
        /// user and secret; a refusal never quotes the output.
        #[test]
        fn any_helper_reply_is_read_or_refused_without_quoting_it(
            out in proptest::prelude::prop_oneof![
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
                "\\{\"(Username|Secret|ServerURL)\":\"[ -~]{0,10}Zq9Vx\"(,\"[A-Za-z]{0,8}\":[ -~]{0,10})?\\}"
                    .prop_map(String::into_bytes),
            ],
            user in "[ -~]{0,12}",
            secret in "[ -~]{0,12}",
        ) {
            if let Err(why) = helper_reply("x", &out) {
                proptest::prop_assert!(!why.contains("Zq9Vx"), "{why}");
            }
            let good = serde_json::json!({"ServerURL": "h", "Username": user, "Secret": secret}).to_string();
            match helper_reply("x", good.as_bytes()) {
                Ok(HelperAnswer::Found(c)) => {
                    proptest::prop_assert_eq!((c.username, c.password), (user, secret));
                }
                Ok(HelperAnswer::NotFound) => proptest::prop_assert!(user.is_empty() || user == "<token>"),
                Err(why) => proptest::prop_assert!(false, "{}", why),
            }
        }

        /// No config.json panics the parser (whose error is a line number
        /// only); credentials are found under the registry their key names,
        /// and the config's debug form shows no password.
        #[test]
        fn any_docker_config_is_read_or_refused(
            noise in "\\PC{0,80}",
            entries in proptest::collection::vec(
                (
                    proptest::prelude::prop_oneof![
                        proptest::prelude::Just("https://index.docker.io/v1/".to_string()),
                        proptest::prelude::Just("registry-1.docker.io".to_string()),
                        "(https?://)?[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/v[12]/?)?",
                        "[ -~]{0,20}",
                    ],
                    "[a-zA-Z0-9._-]{1,8}",
                    proptest::prelude::any::<bool>(),
                ),
                0..4,
            ),
        ) {
            let _ = DockerConfig::parse(&noise);
            let mut auths = serde_json::Map::new();
            for (i, (key, user, encoded)) in entries.iter().enumerate() {
                let password = format!("pw{i}Zq9Vx");
                let entry = if *encoded {
                    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                    serde_json::json!({"auth": auth})
                } else {
                    serde_json::json!({"username": user, "password": password})
                };
                auths.insert(key.clone(), entry);
            }
            let text = serde_json::json!({"auths": auths}).to_string();
            let config = DockerConfig::parse(&text);
            proptest::prop_assert!(config.is_ok(), "{text}");
            let Ok(config) = config else { return Ok(()) };
            let shown = format!("{config:?}");
            proptest::prop_assert!(!shown.contains("Zq9Vx"));
            let source = DockerSource::from_config("config.json", config);
            for (key, _, _) in &entries {
                let registry = HostKey::of_registry(key);
                let found = source.lookup(registry.as_str());
                proptest::prop_assert!(found.is_some(), "{key}");
                if let Some(found) = found {
                    let from: Vec<&String> = auths
                        .keys()
                        .filter(|k| HostKey::of_registry(k) == registry)
                        .collect();
                    proptest::prop_assert!(!from.is_empty());
                    proptest::prop_assert!(found.credentials.password.ends_with("Zq9Vx"));
                }
            }
            proptest::prop_assert!(source.lookup("nowhere.invalid").is_none());
        }
    }
}
