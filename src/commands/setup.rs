//! `dpx setup docker|containerd|podman`: the engine configuration that sends
//! pulls through the dpx mirror at [`Endpoint`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::Value;

use super::containerd_config::{self, CONTAINERD_RESTART};
use super::endpoint::Endpoint;
use super::{Context, Output};
use crate::cli::{GlobalArgs, SetupCommand, SetupContainerdArgs, SetupDockerArgs};
use crate::config::Config;
use crate::fsutil::AtomicWrite;
use crate::reference::{DOCKER_HUB, validate_registry};
use crate::stdout::{print_json, with_stdout};

/// The daemon.json key dockerd reads its mirrors from.
const MIRRORS_KEY: &str = "registry-mirrors";

/// Where `setup podman`'s stanzas go, system-wide and rootless.
const PODMAN_DROP_IN: &str = "/etc/containers/registries.conf.d/50-dpx.conf";
const PODMAN_ROOTLESS_DROP_IN: &str = "~/.config/containers/registries.conf.d/50-dpx.conf";

/// How to make a running dockerd re-read daemon.json (registry-mirrors is reloadable).
pub const DOCKER_RELOAD: &str =
    "sudo systemctl reload docker (or: sudo kill -HUP $(pidof dockerd))";

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "{path} is not valid JSON ({message}); nothing was changed: fix or move the file, then run \
         dpx setup docker --apply again"
    )]
    Malformed { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source} (run with sudo, or pass another --file/--hosts-dir)")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    command: SetupCommand,
) -> anyhow::Result<ExitCode> {
    let endpoint = || Endpoint::from_config(&ctx.config);
    match command {
        SetupCommand::Docker(args) => docker(ctx, &endpoint()?, args).await,
        SetupCommand::Containerd(args) => containerd(ctx, &endpoint()?, args).await,
        SetupCommand::Systemd(args) => super::setup_systemd::run(ctx, global, args).await,
        SetupCommand::Podman => {
            let endpoint = endpoint()?;
            let text = podman_stanzas(&ctx.config, &endpoint)?;
            if ctx.output == Output::Json {
                print_json(&serde_json::json!({
                    "mirror": endpoint.host_port,
                    "registries": mirrored_registries(&ctx.config)?,
                    "file": PODMAN_DROP_IN,
                    "rootless_file": PODMAN_ROOTLESS_DROP_IN,
                    "content": text,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            with_stdout(|out| out.write_all(text.as_bytes()))?;
            if ctx.output == Output::Human {
                eprintln!(
                    "Save this as {PODMAN_DROP_IN} (or, rootless, {PODMAN_ROOTLESS_DROP_IN}); \
                     podman reads it on its next pull. Check with: dpx doctor"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The registry hosts engines should send through dpx: Docker Hub, every
/// `[registries."HOST"]` table and every `[serve] registries` entry.
pub fn mirrored_registries(config: &Config) -> anyhow::Result<Vec<String>> {
    let mut hosts = BTreeSet::from([DOCKER_HUB.to_string()]);
    hosts.extend(config.registries.keys().cloned());
    hosts.extend(config.serve.registries.iter().flatten().cloned());
    for host in &hosts {
        // A host becomes a directory name under the hosts dir: no `/` or `..`.
        validate_registry(host)
            .with_context(|| format!("the configured registry {host:?} is not a registry host"))?;
    }
    Ok(hosts.into_iter().collect())
}

// ---------------------------------------------------------------- docker

async fn docker(
    ctx: &Context,
    endpoint: &Endpoint,
    args: SetupDockerArgs,
) -> anyhow::Result<ExitCode> {
    let mirror = endpoint.url();
    if !args.apply {
        let entry = serde_json::json!({ MIRRORS_KEY: [mirror] });
        print_json(&entry)?;
        if ctx.output == Output::Human {
            eprintln!(
                "Add this to {} (or run: dpx setup docker --apply), then reload the daemon: {DOCKER_RELOAD}",
                args.file.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let file = args.file.clone();
    let outcome = tokio::task::spawn_blocking(move || apply_docker(&file, &mirror))
        .await
        .context("the setup task failed")??;
    if ctx.output == Output::Json {
        print_json(&serde_json::json!({
            "file": args.file,
            "mirror": endpoint.url(),
            "changed": outcome.changed,
            "backup": outcome.backup,
        }))?;
    } else if outcome.changed {
        match &outcome.backup {
            Some(b) => eprintln!(
                "{}: added {} to {MIRRORS_KEY} (previous file saved as {})",
                args.file.display(),
                endpoint.url(),
                b.display()
            ),
            None => eprintln!(
                "{}: created with {MIRRORS_KEY} [{}]",
                args.file.display(),
                endpoint.url()
            ),
        }
        eprintln!(
            "Reload the Docker daemon to use it: {DOCKER_RELOAD}; then check with: dpx doctor"
        );
    } else {
        eprintln!(
            "{}: {MIRRORS_KEY} already lists {}; nothing changed",
            args.file.display(),
            endpoint.url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug)]
pub struct Applied {
    pub changed: bool,
    pub backup: Option<PathBuf>,
}

/// Puts `mirror` first in daemon.json's `registry-mirrors`, keeping every
/// other key and mirror. Writes nothing when it is already there; a file that
/// is not a JSON object (or whose mirrors are not a list of strings) is left alone.
pub fn apply_docker(file: &Path, mirror: &str) -> Result<Applied, SetupError> {
    let old = match crate::operator_files::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SetupError::Read {
                path: file.to_path_buf(),
                source,
            });
        }
    };
    let malformed = |message: String| SetupError::Malformed {
        path: file.to_path_buf(),
        message,
    };
    let mut doc = match old.as_deref().map(str::trim) {
        None | Some("") => Value::Object(serde_json::Map::new()),
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| malformed(e.to_string()))?,
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(malformed("the top level is not an object".into()));
    };
    let mirrors = object
        .entry(MIRRORS_KEY)
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = mirrors.as_array_mut() else {
        return Err(malformed(format!("\"{MIRRORS_KEY}\" is not a list")));
    };
    let same = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.trim_end_matches('/') == mirror.trim_end_matches('/'))
    };
    if list.iter().any(same) {
        return Ok(Applied {
            changed: false,
            backup: None,
        });
    }
    if list.iter().any(|v| !v.is_string()) {
        return Err(malformed(format!(
            "\"{MIRRORS_KEY}\" holds something other than URLs"
        )));
    }
    // First: dockerd tries mirrors in order.
    list.insert(0, Value::String(mirror.to_string()));
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| malformed(e.to_string()))?;
    text.push('\n');
    let backup = match old {
        Some(_) => Some(backup(file)?),
        None => None,
    };
    write_atomic(file, text.as_bytes())?;
    Ok(Applied {
        changed: true,
        backup,
    })
}

/// Copies `file` to `FILE.dpx-backup.UNIXSECONDS` (a new name each time, so
/// no earlier backup is overwritten).
fn backup(file: &Path) -> Result<PathBuf, SetupError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".dpx-backup.{secs}"));
    let mut path = PathBuf::from(&name);
    let mut n = 1u32;
    while path.exists() {
        let mut next = name.clone();
        next.push(format!(".{n}"));
        path = PathBuf::from(next);
        n = n.saturating_add(1);
    }
    std::fs::copy(file, &path).map_err(|source| SetupError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Replaces `file` in one rename (a reader sees the old or the new file,
/// never half of one), keeping the old file's permissions. A symlink stays
/// one: its target is what is replaced.
fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    AtomicWrite::new()
        .keep_mode_else(0o644)
        .through_symlinks()
        .create_dir()
        .write(file, bytes)
        .map_err(|e| SetupError::Write {
            path: e.path,
            source: e.source,
        })
}

// ---------------------------------------------------------------- containerd

async fn containerd(
    ctx: &Context,
    endpoint: &Endpoint,
    args: SetupContainerdArgs,
) -> anyhow::Result<ExitCode> {
    let files: Vec<(PathBuf, String)> = mirrored_registries(&ctx.config)?
        .into_iter()
        .map(|host| {
            let text = hosts_toml(&ctx.config.registry_url(&host), endpoint);
            (args.hosts_dir.join(&host).join("hosts.toml"), text)
        })
        .collect();
    let installed = containerd_config::installed_version().await;
    let (config_file, hosts_dir, apply) = (
        args.containerd_config.clone(),
        args.hosts_dir.clone(),
        args.apply,
    );
    let report = tokio::task::spawn_blocking(move || -> anyhow::Result<ContainerdReport> {
        // Everything is read and checked before anything is written.
        let cri = cri_config_change(&config_file, &hosts_dir, installed.as_deref())?;
        let mut hosts = Vec::new();
        for (path, text) in files {
            let changed =
                crate::operator_files::read_to_string(&path).ok().as_deref() != Some(&text);
            hosts.push(Planned {
                path,
                text: changed.then_some(text),
                backup: None,
            });
        }
        let mut report = ContainerdReport { hosts, cri };
        if apply {
            for file in report.hosts.iter_mut().chain(report.cri.as_mut()) {
                if let Some(text) = &file.text {
                    if file.path.exists() {
                        file.backup = Some(backup(&file.path)?);
                    }
                    write_atomic(&file.path, text.as_bytes())?;
                }
            }
        }
        Ok(report)
    })
    .await
    .context("the setup task failed")??;
    let restart = report.cri.as_ref().is_some_and(|c| c.text.is_some());
    if ctx.output == Output::Json {
        let entry = |f: &Planned| {
            serde_json::json!({
                "file": f.path,
                "changed": f.text.is_some(),
                "backup": f.backup,
                "content": if apply { None } else { f.text.as_deref() },
            })
        };
        print_json(&serde_json::json!({
            "mirror": endpoint.url(),
            "applied": apply,
            "files": report.hosts.iter().map(entry).collect::<Vec<_>>(),
            "containerd_config": report.cri.as_ref().map(entry),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let cri_table = containerd_config::registry_table_name(2);
    if !apply {
        let mut text = String::new();
        for f in report.hosts.iter().chain(report.cri.as_ref()) {
            match &f.text {
                Some(t) => text.push_str(&format!("# {}\n{t}\n", f.path.display())),
                None => text.push_str(&format!(
                    "# {}: already as dpx writes it\n\n",
                    f.path.display()
                )),
            }
        }
        with_stdout(|out| out.write_all(text.as_bytes()))?;
        if ctx.output == Output::Human {
            eprintln!(
                "Write these with: {} (each changed file is backed up first){}; ctr uses the \
                 hosts files with: ctr image pull --hosts-dir {} IMAGE",
                containerd_config::apply_command(&args.hosts_dir, &args.containerd_config),
                if restart {
                    format!(", then restart containerd: {CONTAINERD_RESTART}")
                } else {
                    String::new()
                },
                args.hosts_dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    for f in report.hosts.iter().chain(report.cri.as_ref()) {
        let what = match (&f.text, &f.backup) {
            (None, _) => "unchanged".to_string(),
            (Some(_), Some(b)) => format!("written (previous file saved as {})", b.display()),
            (Some(_), None) => "written".to_string(),
        };
        eprintln!("{}: {what}", f.path.display());
    }
    match &report.cri {
        None => eprintln!(
            "containerd is not installed and {} does not exist: left alone. Its CRI reads the \
             hosts files once {cri_table} config_path names {}",
            args.containerd_config.display(),
            args.hosts_dir.display()
        ),
        Some(_) if restart => eprintln!(
            "Restart containerd to use its new config_path: {CONTAINERD_RESTART}; then check with: dpx doctor"
        ),
        Some(_) => eprintln!(
            "containerd reads these on each pull; ctr uses them with: ctr image pull --hosts-dir {} IMAGE",
            args.hosts_dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// A file `setup containerd` would write: its new text when it changes.
#[derive(Debug)]
struct Planned {
    path: PathBuf,
    text: Option<String>,
    backup: Option<PathBuf>,
}

struct ContainerdReport {
    hosts: Vec<Planned>,
    /// containerd's config.toml; `None` when neither it nor containerd exists.
    cri: Option<Planned>,
}

/// The config.toml change that makes the CRI read `hosts_dir`.
fn cri_config_change(
    file: &Path,
    hosts_dir: &Path,
    installed: Option<&str>,
) -> anyhow::Result<Option<Planned>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SetupError::Read {
                path: file.to_path_buf(),
                source,
            }
            .into());
        }
    };
    if text.is_none() && installed.is_none() {
        return Ok(None);
    }
    let version = containerd_config::version_for_containerd(installed);
    let new = containerd_config::with_hosts_dir(file, text.as_deref(), hosts_dir, version)?;
    Ok(Some(Planned {
        path: file.to_path_buf(),
        text: new,
        backup: None,
    }))
}

/// A `hosts.toml` for one registry: dpx first, for pulls and tag resolution;
/// the registry itself (`server`) when dpx cannot answer. containerd adds
/// `?ns=HOST` to mirror requests, which tells dpx the upstream, so no
/// `override_path` is needed.
pub fn hosts_toml(server: &str, endpoint: &Endpoint) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    format!(
        "# Written by dpx setup containerd: pull through dpx, else from the registry itself.\n\
         server = {}\n\n[host.{}]\n  capabilities = [\"pull\", \"resolve\"]\n",
        quote(server),
        quote(&endpoint.url())
    )
}

// ---------------------------------------------------------------- podman

/// registries.conf (v2) stanzas: each registry with dpx as its mirror. Docker
/// Hub goes through mirror mode (`/v2/library/alpine`), others through prefix
/// mode (`/v2/ghcr.io/org/app`).
pub fn podman_stanzas(config: &Config, endpoint: &Endpoint) -> anyhow::Result<String> {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut text = String::from(
        "# dpx mirror for podman, buildah, skopeo and CRI-O (containers-registries.conf(5))\n",
    );
    for host in mirrored_registries(config)? {
        let mirror = if host == DOCKER_HUB {
            endpoint.host_port.clone()
        } else {
            format!("{}/{host}", endpoint.host_port)
        };
        text.push_str(&format!(
            "\n[[registry]]\nprefix = {host}\nlocation = {host}\n\n[[registry.mirror]]\nlocation = {}\ninsecure = true\n",
            quote(&mirror),
            host = quote(&host),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint {
            host_port: "127.0.0.1:5000".into(),
            origin: super::super::endpoint::Origin::Default,
        }
    }

    #[test]
    fn apply_keeps_keys_and_mirrors_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(
            &file,
            r#"{"debug": true, "registry-mirrors": ["https://mirror.example"], "log-opts": {"max-size": "10m"}}"#,
        )
        .unwrap();
        let first = apply_docker(&file, "http://127.0.0.1:5000").unwrap();
        assert!(first.changed);
        let backup = first.backup.unwrap();
        assert!(
            std::fs::read_to_string(&backup)
                .unwrap()
                .contains("mirror.example")
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(doc["debug"], true);
        assert_eq!(doc["log-opts"]["max-size"], "10m");
        assert_eq!(
            doc[MIRRORS_KEY],
            serde_json::json!(["http://127.0.0.1:5000", "https://mirror.example"])
        );
        let before = std::fs::read(&file).unwrap();
        let again = apply_docker(&file, "http://127.0.0.1:5000/").unwrap();
        assert!(!again.changed && again.backup.is_none());
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }

    #[test]
    fn apply_leaves_a_malformed_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        for bad in [
            "{\"debug\": true,",
            "[1, 2]",
            "{\"registry-mirrors\": \"http://x\"}",
            "{\"registry-mirrors\": [1]}",
        ] {
            std::fs::write(&file, bad).unwrap();
            let err = apply_docker(&file, "http://127.0.0.1:5000").unwrap_err();
            assert!(matches!(err, SetupError::Malformed { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("nothing was changed"), "{err}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), bad);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no backup, no temp file"
        );
    }

    #[test]
    fn apply_creates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etc/docker/daemon.json");
        let applied = apply_docker(&file, "http://127.0.0.1:5000").unwrap();
        assert!(applied.changed && applied.backup.is_none());
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({MIRRORS_KEY: ["http://127.0.0.1:5000"]})
        );
    }

    #[test]
    fn hosts_toml_and_podman_stanzas_parse() {
        let hosts: toml::Table =
            toml::from_str(&hosts_toml("https://registry-1.docker.io", &endpoint())).unwrap();
        assert_eq!(
            hosts["server"].as_str(),
            Some("https://registry-1.docker.io")
        );
        assert_eq!(
            hosts["host"]["http://127.0.0.1:5000"]["capabilities"],
            toml::Value::Array(vec!["pull".into(), "resolve".into()])
        );
        let config =
            Config::parse("[registries.\"ghcr.io\"]\nurl = \"https://ghcr.io\"\n").unwrap();
        let conf: toml::Table =
            toml::from_str(&podman_stanzas(&config, &endpoint()).unwrap()).unwrap();
        let regs = conf["registry"].as_array().unwrap();
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0]["prefix"].as_str(), Some("docker.io"));
        assert_eq!(
            regs[0]["mirror"][0]["location"].as_str(),
            Some("127.0.0.1:5000")
        );
        assert_eq!(regs[1]["prefix"].as_str(), Some("ghcr.io"));
        assert_eq!(
            regs[1]["mirror"][0]["location"].as_str(),
            Some("127.0.0.1:5000/ghcr.io")
        );
        assert_eq!(regs[1]["mirror"][0]["insecure"].as_bool(), Some(true));
    }
}
