//! Running the real `dpx` binary: one private cache dir and config per test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub struct Dpx {
    pub dir: tempfile::TempDir,
    pub cache: PathBuf,
    pub config: PathBuf,
}

impl Dpx {
    /// A dpx whose `docker.io` (and any `extra` hosts) point at the given URLs.
    pub fn new(docker_io: &str) -> Dpx {
        Dpx::with_registries(&[("docker.io", docker_io)], "")
    }

    pub fn with_registries(registries: &[(&str, &str)], extra_toml: &str) -> Dpx {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join("cache");
        let config = dir.path().join("config.toml");
        let mut toml = String::new();
        for (host, url) in registries {
            toml.push_str(&format!("[registries.\"{host}\"]\nurl = \"{url}\"\n"));
        }
        toml.push_str(extra_toml);
        std::fs::write(&config, toml).expect("write config");
        Dpx { dir, cache, config }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_dpx"));
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--cache-dir")
            .arg(&self.cache)
            // The platform config dir (dpx's credential file) is the test's own.
            .env("XDG_CONFIG_HOME", self.config_home())
            .env_remove("DPX_LISTEN")
            .env_remove("DPX_LOG")
            // A GitLab job's own Dependency Proxy must not reach the tests.
            .env_remove("CI_DEPENDENCY_PROXY_SERVER")
            .env_remove("CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX")
            .env_remove("CI_DEPENDENCY_PROXY_USER")
            .env_remove("CI_DEPENDENCY_PROXY_PASSWORD")
            .stdin(Stdio::null());
        cmd
    }

    /// `XDG_CONFIG_HOME` of every run: dpx's config dir is `dpx/` in it.
    pub fn config_home(&self) -> PathBuf {
        self.dir.path().join("config-home")
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run dpx")
    }

    /// Runs with `input` on stdin (a password for `serve --hash-password`).
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        super::output_with_input(self.command().args(args), input)
    }

    /// Starts a command in the background (a pull or prefetch a test holds
    /// up mid-download); stderr is piped for `wait_with_output`.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn dpx {args:?}: {e}"))
    }

    /// Runs with a terminal (script(1) from util-linux) whose input is
    /// `input`; stdout is what the terminal showed.
    pub fn run_on_terminal(&self, args: &[&str], input: &str) -> Output {
        let mut dpx = self.command();
        dpx.args(args);
        let line = std::iter::once(dpx.get_program())
            .chain(dpx.get_args())
            .map(|a| shell_quote(a.to_str().expect("utf-8 argument")))
            .collect::<Vec<_>>()
            .join(" ");
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]);
        for (k, v) in dpx.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        super::output_with_input(&mut script, input.as_bytes())
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "dpx {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "dpx {args:?}: no JSON on stdout ({e}); status {}\nstdout: {}\nstderr: {}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    /// Every file under blobs/ hashes to its name; returns how many there are.
    pub fn assert_store_consistent(&self) -> usize {
        let blobs = self.cache.join("blobs/sha256");
        let mut count = 0;
        for prefix in std::fs::read_dir(&blobs).expect("blobs dir") {
            let prefix = prefix.expect("entry").path();
            for f in std::fs::read_dir(&prefix).expect("prefix dir") {
                let path = f.expect("entry").path();
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
                    .to_string();
                let data = std::fs::read(&path).expect("read blob");
                assert_eq!(
                    hex::encode(Sha256::digest(&data)),
                    name,
                    "{} does not hash to its name",
                    path.display()
                );
                assert!(
                    name.starts_with(prefix.file_name().and_then(|n| n.to_str()).unwrap_or("?"))
                );
                count += 1;
            }
        }
        count
    }

    pub fn has_blob(&self, digest: &str) -> bool {
        let hex = digest.trim_start_matches("sha256:");
        self.cache
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .is_file()
    }

    pub fn tmp_is_empty(&self) -> bool {
        std::fs::read_dir(self.cache.join("tmp"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    }

    /// Starts `dpx serve` on a free loopback port.
    pub fn serve(&self) -> Serve {
        self.serve_with(&[])
    }

    pub fn serve_with(&self, env: &[(&str, &str)]) -> Serve {
        self.serve_on("127.0.0.1:0", env)
    }

    /// Starts `dpx serve` on a given address (a mirror URL fixed in an engine's config).
    pub fn serve_on(&self, listen: &str, env: &[(&str, &str)]) -> Serve {
        self.serve_flags(listen, &[], env)
    }

    /// Starts `dpx serve` with extra flags (`--json`, `-v`); with flags, the
    /// log level is theirs (no `DPX_LOG`).
    pub fn serve_flags(&self, listen: &str, flags: &[&str], env: &[(&str, &str)]) -> Serve {
        self.serve_wrapped(&[], listen, flags, env)
    }

    /// `serve_flags`, run by `wrapper` (a program and its arguments that
    /// ends by running the dpx command line it is given, such as `unshare`).
    pub fn serve_wrapped(
        &self,
        wrapper: &[&str],
        listen: &str,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Serve {
        let mut dpx = self.command();
        dpx.args(["serve", "--listen", listen]).args(flags);
        if flags.is_empty() {
            dpx.env("DPX_LOG", "dpx=info");
        }
        for (k, v) in env {
            dpx.env(k, v);
        }
        let mut cmd = match wrapper.split_first() {
            None => dpx,
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(dpx.get_program()).args(dpx.get_args());
                for (k, v) in dpx.get_envs() {
                    match v {
                        Some(v) => cmd.env(k, v),
                        None => cmd.env_remove(k),
                    };
                }
                cmd.stdin(Stdio::null());
                cmd
            }
        };
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn dpx serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut startup = String::new();
        let addr = loop {
            line.clear();
            let n = reader.read_line(&mut line).expect("read dpx serve output");
            assert!(
                n > 0 && Instant::now() < deadline,
                "dpx serve exited before listening:\n{startup}"
            );
            startup.push_str(&line);
            let listening = line.trim().strip_prefix("dpx serve: listening on ");
            if let Some(rest) =
                listening.and_then(|l| l.strip_prefix("http://").or(l.strip_prefix("https://")))
            {
                break rest.split_whitespace().next().unwrap_or(rest).to_string();
            }
        };
        // Keep draining the log into a file so the pipe never fills.
        let log = self.dir.path().join("serve.log");
        let mut file = std::fs::File::create(&log).expect("log file");
        std::thread::spawn(move || {
            for l in reader.lines().map_while(Result::ok) {
                let _ = writeln!(file, "{l}");
            }
        });
        Serve {
            child,
            addr,
            log,
            startup,
        }
    }
}

pub struct Serve {
    pub child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// Its log after the listening line.
    pub log: PathBuf,
    /// Its stderr up to and including the listening line (startup warnings).
    pub startup: String,
}

impl Serve {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The log as it is once the lines of what came before are in: serve
    /// writes its lines in batches, at most 50 ms after their request.
    pub fn log_text(&self) -> String {
        std::thread::sleep(Duration::from_millis(150));
        self.log_now()
    }

    /// The log as written so far.
    fn log_now(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the log shows `needle` within a few seconds (the log reaches
    /// its file through a pipe and a thread, a moment after the response).
    pub fn log_shows(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.log_now().contains(needle) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        self.stop_with("TERM")
    }

    /// Sends a signal (`TERM`, `INT`) and waits; returns the exit status.
    pub fn stop_with(&mut self, signal: &str) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "dpx serve did not stop after SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Waits until `cond` holds, panicking with `what` after `timeout`.
impl Dpx {
    /// Waits until serve has stored what it answered: a fetched manifest and
    /// its tag record are written behind the answer, and a blob moves into
    /// the store after the client's last byte. `blobs` are digests.
    pub fn wait_stored(&self, repo: &str, tag: &str, blobs: &[String]) {
        let record = self
            .cache
            .join(format!("index/docker.io/{repo}/tags/{tag}.json"));
        let blob = |d: &String| {
            let hex = d.trim_start_matches("sha256:");
            self.cache.join(format!("blobs/sha256/{}/{hex}", &hex[..2]))
        };
        wait_for(
            &format!("{repo}:{tag} in the store"),
            Duration::from_secs(20),
            || record.is_file() && blobs.iter().all(|d| blob(d).is_file()),
        );
    }

    /// Waits until a blob serve answered is in the store.
    pub fn wait_stored_blob(&self, digest: &str) {
        let hex = digest.trim_start_matches("sha256:");
        let path = self.cache.join(format!("blobs/sha256/{}/{hex}", &hex[..2]));
        wait_for(
            &format!("{digest} in the store"),
            Duration::from_secs(20),
            || path.is_file(),
        );
    }
}

pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `s` as one word for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
