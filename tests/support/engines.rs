//! The real container engines, started once per test run and shared: one
//! `dockerd` (with the containerd it manages, which `ctr` also uses) whose
//! registry mirror is a fixed loopback port. Engine tests take `serial()` and
//! start their own `dpx serve` on that port, each with its own cache and upstream.

use std::io::Write;

use super::layout::Layer;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub struct Engines {
    pub root: PathBuf,
    /// `unix:///...` socket of the shared dockerd.
    pub docker_host: String,
    /// containerd socket (the one dockerd manages).
    pub containerd_sock: PathBuf,
    /// `127.0.0.1:PORT`: dockerd's `--registry-mirror`; tests serve dpx here.
    pub mirror_addr: String,
}

static ENGINES: OnceLock<Engines> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

/// The shared engines, and a guard: only one engine test runs at a time
/// because they share the mirror port.
pub fn engines() -> (&'static Engines, MutexGuard<'static, ()>) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    (ENGINES.get_or_init(start), guard)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Runs `program` under a shell that kills it when our stdin pipe closes,
/// which happens when the test process exits, however it exits.
pub fn spawn_tied_to_test_process(program: &str, args: &[String], log: &Path) {
    let log_file = std::fs::File::create(log).expect("log file");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"prog="$1"; shift; "$prog" "$@" & pid=$!; cat >/dev/null; kill -TERM $pid; wait $pid"#)
        .arg("sh")
        .arg(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("log"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    // Leak the pipe's write end: it closes only when this process ends.
    if let Some(stdin) = child.stdin.take() {
        std::mem::forget(stdin);
    }
    std::mem::forget(child);
}

fn start() -> Engines {
    let root = std::env::temp_dir().join(format!("dpx-engines-{}", std::process::id()));
    std::fs::create_dir_all(&root).expect("engines dir");
    let sock = root.join("docker.sock");
    let mirror_addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = [
        "--storage-driver=vfs",
        "--iptables=false",
        "--ip6tables=false",
        "--bridge=none",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        format!("--data-root={}", root.join("data").display()),
        format!("--exec-root={}", root.join("exec").display()),
        format!("--pidfile={}", root.join("docker.pid").display()),
        format!("--host=unix://{}", sock.display()),
        format!("--registry-mirror=http://{mirror_addr}"),
    ])
    .collect();
    spawn_tied_to_test_process("dockerd", &args, &root.join("dockerd.log"));
    let engines = Engines {
        docker_host: format!("unix://{}", sock.display()),
        containerd_sock: root.join("exec/containerd/containerd.sock"),
        mirror_addr,
        root,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = Command::new("docker")
            .args(["-H", &engines.docker_host, "version"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok && engines.containerd_sock.exists() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dockerd did not start; its log:\n{}",
            std::fs::read_to_string(engines.root.join("dockerd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    engines
}

impl Engines {
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(&self.docker_host)
            .args(args)
            .output()
            .expect("run docker")
    }

    /// `docker pull`, asserting success; returns its combined output.
    pub fn docker_pull(&self, image: &str) -> String {
        let out = self.docker(&["pull", image]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "docker pull {image} failed:\n{text}");
        text
    }

    /// Removes an image if present (so the next pull goes to the registry again).
    pub fn docker_rmi(&self, image: &str) {
        let _ = self.docker(&["rmi", "-f", image]);
    }

    pub fn dockerd_log(&self) -> String {
        std::fs::read_to_string(self.root.join("dockerd.log")).unwrap_or_default()
    }

    /// `ctr image pull` with a hosts dir naming `mirror` for docker.io.
    pub fn ctr_pull(&self, mirror: &str, image: &str, dir: &Path) -> Output {
        let hosts = dir.join("certs.d/docker.io");
        std::fs::create_dir_all(&hosts).expect("hosts dir");
        std::fs::write(
            hosts.join("hosts.toml"),
            format!(
                "server = \"https://registry-1.docker.io\"\n\n[host.\"http://{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            ),
        )
        .expect("hosts.toml");
        Command::new("ctr")
            .arg("--address")
            .arg(&self.containerd_sock)
            .args(["-n", "dpx-tests", "image", "pull", "--hosts-dir"])
            .arg(dir.join("certs.d"))
            .arg(image)
            .output()
            .expect("run ctr")
    }
}

/// `podman pull` with a registries.conf whose docker.io mirror is `mirror`.
pub fn podman_pull(mirror: &str, image: &str, dir: &Path) -> Output {
    let conf = dir.join("registries.conf");
    let mut f = std::fs::File::create(&conf).expect("registries.conf");
    write!(
        f,
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    )
    .expect("write registries.conf");
    Command::new("podman")
        .arg("--storage-driver=vfs")
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .args(["pull", "--registries-conf"])
        .arg(&conf)
        .arg(image)
        .output()
        .expect("run podman")
}

/// Puts a runnable single-platform image (real layers) into the fake hub.
pub fn hub_image(
    hub: &super::hub::FakeHub,
    repo: &str,
    tag: Option<&str>,
    arch: &str,
    layers: &[Layer],
) -> String {
    let (manifest, _) = image_manifest(hub, arch, layers);
    hub.add_manifest(
        repo,
        tag,
        "application/vnd.oci.image.manifest.v1+json",
        manifest,
    )
}

/// A multi-arch OCI index in the fake hub: one image per (arch, layers).
pub fn hub_index(
    hub: &super::hub::FakeHub,
    repo: &str,
    tag: &str,
    images: &[(&str, Vec<Layer>)],
) -> String {
    let mut entries = Vec::new();
    for (arch, layers) in images {
        let (manifest, _) = image_manifest(hub, arch, layers);
        let size = manifest.len();
        let digest = hub.add_manifest(
            repo,
            None,
            "application/vnd.oci.image.manifest.v1+json",
            manifest,
        );
        entries.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"os": "linux", "architecture": arch}
        }));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries
    });
    hub.add_manifest(
        repo,
        Some(tag),
        "application/vnd.oci.image.index.v1+json",
        index.to_string().into_bytes(),
    )
}

fn image_manifest(hub: &super::hub::FakeHub, arch: &str, layers: &[Layer]) -> (Vec<u8>, String) {
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()}
    })
    .to_string()
    .into_bytes();
    let config_size = config.len();
    let config_digest = hub.add_blob(config);
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": hub.add_blob(l.data.clone()), "size": l.data.len()
            })
        })
        .collect();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layer_descs
    })
    .to_string()
    .into_bytes();
    (manifest, config_digest)
}

/// A private dockerd started from a daemon.json (the shared one takes its
/// mirror as a flag, which a daemon.json may not repeat). Started once per run.
pub struct PrivateDockerd {
    /// Its daemon.json (`--config-file`): tests may edit it and `reload()`.
    pub config: PathBuf,
    /// `unix:///...`, for DOCKER_HOST.
    pub host: String,
    pidfile: PathBuf,
    log: PathBuf,
}

static PRIVATE_DOCKERD: OnceLock<PrivateDockerd> = OnceLock::new();
static PRIVATE_SERIAL: Mutex<()> = Mutex::new(());

/// The private dockerd, started on first use, and a guard: its daemon.json is
/// one file that tests edit, so they take turns.
pub fn private_dockerd() -> (&'static PrivateDockerd, MutexGuard<'static, ()>) {
    let guard = PRIVATE_SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    (PRIVATE_DOCKERD.get_or_init(PrivateDockerd::start), guard)
}

impl PrivateDockerd {
    fn start() -> PrivateDockerd {
        let root = std::env::temp_dir().join(format!("dpx-setup-dockerd-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("dockerd root");
        let sock = root.join("docker.sock");
        let config = root.join("daemon.json");
        // Everything dockerd needs is in the file dpx setup will edit: if any
        // key were lost, this daemon would not come back the same.
        let daemon_json = serde_json::json!({
            "data-root": root.join("data"),
            "exec-root": root.join("exec"),
            "pidfile": root.join("docker.pid"),
            "hosts": [format!("unix://{}", sock.display())],
            "storage-driver": "vfs",
            "iptables": false,
            "ip6tables": false,
            "bridge": "none",
            "log-level": "info",
        });
        std::fs::write(
            &config,
            serde_json::to_string_pretty(&daemon_json).expect("json"),
        )
        .expect("daemon.json");
        let log = root.join("dockerd.log");
        spawn_tied_to_test_process(
            "dockerd",
            &[format!("--config-file={}", config.display())],
            &log,
        );
        let dockerd = PrivateDockerd {
            config,
            host: format!("unix://{}", sock.display()),
            pidfile: root.join("docker.pid"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(90);
        while !dockerd.docker(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "the private dockerd did not start; its log:\n{}",
                std::fs::read_to_string(&dockerd.log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        dockerd
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .expect("run docker")
    }

    pub fn mirrors(&self) -> Vec<String> {
        let out = self.docker(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
        serde_json::from_slice::<Option<Vec<String>>>(&out.stdout)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// SIGHUP: dockerd re-reads daemon.json (registry-mirrors is reloadable).
    pub fn reload(&self) {
        let pid = std::fs::read_to_string(&self.pidfile).expect("dockerd pidfile");
        let status = Command::new("kill")
            .args(["-HUP", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}
