//! containerd's own config.toml: whether its CRI plugin reads registry hosts
//! from the directory `dpx setup containerd` writes (`config_path`), and the
//! edit that makes it, keeping the rest of the file (comments and order too).
//!
//! Without `config_path` the CRI plugin (kubelet, nerdctl, crictl) ignores
//! `certs.d` entirely, whatever hosts.toml says. Where the key lives depends
//! on the config's `version`: 2 for containerd 1.x (Debian 12, 13), 3 for 2.x.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use toml_edit::{DocumentMut, Item, Table, value};

use super::check::{Check, Status};
use super::endpoint::Endpoint;
use super::files::{SetupError, backup, read_optional, write_atomic};
use super::mirrored_registries;
use super::program::{installed, same_url};
use crate::config::Config;

/// Where containerd reads its configuration from.
pub const DEFAULT_PATH: &str = "/etc/containerd/config.toml";

/// How to make a running containerd re-read config.toml (it does not reload it).
pub const CONTAINERD_RESTART: &str = "sudo systemctl restart containerd";

#[derive(Debug, thiserror::Error)]
pub enum ContainerdConfigError {
    #[error(
        "{path} is not valid TOML ({message}); nothing was changed: fix the file, then run \
         dpx setup containerd --apply again"
    )]
    Malformed { path: PathBuf, message: String },
    #[error(
        "{path} is a version 1 containerd config (it has no `version = 2` or `version = 3`); \
         nothing was changed: convert it with `containerd config migrate` (containerd 2) or set \
         [plugins.\"io.containerd.grpc.v1.cri\".registry] config_path by hand, then run dpx doctor"
    )]
    OldVersion { path: PathBuf },
    #[error(
        "{path} configures registries the old way ({table}.mirrors or .configs), which containerd \
         refuses together with config_path; nothing was changed: move those settings into \
         hosts.toml files (dpx setup containerd writes docker.io's), remove them, then run \
         dpx setup containerd --apply again"
    )]
    OldMirrors { path: PathBuf, table: String },
}

/// The table holding the CRI registry settings for a config version.
fn registry_table(version: i64) -> Option<[&'static str; 3]> {
    match version {
        2 => Some(["plugins", "io.containerd.grpc.v1.cri", "registry"]),
        3 => Some(["plugins", "io.containerd.cri.v1.images", "registry"]),
        _ => None,
    }
}

/// `[plugins."…".registry]` as written in the file, for messages.
pub fn registry_table_name(version: i64) -> String {
    match registry_table(version) {
        Some([p, plugin, r]) => format!("[{p}.\"{plugin}\".{r}]"),
        None => "[plugins.\"io.containerd.grpc.v1.cri\".registry]".into(),
    }
}

/// The config version containerd would create for itself: 3 for containerd
/// 2 and later, else 2 (from `containerd --version`'s third word, e.g.
/// `1.6.20~ds1` or `v2.0.0`).
pub fn version_for_containerd(version_output: Option<&str>) -> i64 {
    let major = version_output
        .and_then(|out| out.split_whitespace().nth(2))
        .map(|v| v.trim_start_matches('v'))
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m >= 2 => 3,
        _ => 2,
    }
}

/// `containerd --version`, or `None` when containerd is not installed (or
/// does not answer within a few seconds).
pub async fn installed_version() -> Option<String> {
    let mut cmd = tokio::process::Command::new("containerd");
    cmd.arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(std::time::Duration::from_secs(15), cmd.output()).await {
        Ok(Ok(out)) if out.status.success() => {
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        _ => None,
    }
}

/// `sudo dpx setup containerd --apply`, with the paths when not the defaults.
pub fn apply_command(hosts_dir: &Path, containerd_config: &Path) -> String {
    let mut command = "sudo dpx setup containerd --apply".to_string();
    if hosts_dir != Path::new("/etc/containerd/certs.d") {
        command.push_str(&format!(" --hosts-dir {}", hosts_dir.display()));
    }
    if containerd_config != Path::new(DEFAULT_PATH) {
        command.push_str(&format!(
            " --containerd-config {}",
            containerd_config.display()
        ));
    }
    command
}

/// What a config file says of the CRI's registry hosts directories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CriRegistry {
    pub version: i64,
    /// The directories of `config_path` (colon-separated), as containerd sees them.
    pub dirs: Vec<String>,
}

impl CriRegistry {
    /// Whether the CRI reads hosts.toml files from `hosts_dir`.
    pub fn reads(&self, hosts_dir: &Path) -> bool {
        self.dirs
            .iter()
            .any(|d| Path::new(d.trim_end_matches('/')) == hosts_dir)
    }
}

fn parse(path: &Path, text: &str) -> Result<DocumentMut, ContainerdConfigError> {
    text.parse::<DocumentMut>()
        .map_err(|e| ContainerdConfigError::Malformed {
            path: path.to_path_buf(),
            message: e.message().to_string(),
        })
}

/// The version a file declares; an empty (or absent) file takes `default`.
fn version_of(path: &Path, doc: &DocumentMut, default: i64) -> Result<i64, ContainerdConfigError> {
    match doc.get("version").and_then(Item::as_integer) {
        Some(v) if registry_table(v).is_some() => Ok(v),
        None if doc.as_table().is_empty() => Ok(default),
        _ => Err(ContainerdConfigError::OldVersion {
            path: path.to_path_buf(),
        }),
    }
}

fn registry(doc: &DocumentMut, version: i64) -> Option<&Table> {
    let [p, plugin, r] = registry_table(version)?;
    doc.get(p)?.get(plugin)?.get(r)?.as_table()
}

/// Reads the CRI registry settings from config text (`None`: the file does
/// not exist, so containerd's built-in defaults apply with `default_version`).
pub fn cri_registry(
    path: &Path,
    text: Option<&str>,
    default_version: i64,
) -> Result<CriRegistry, ContainerdConfigError> {
    let doc = parse(path, text.unwrap_or(""))?;
    let version = version_of(path, &doc, default_version)?;
    let written = registry(&doc, version)
        .and_then(|t| t.get("config_path"))
        .and_then(Item::as_str);
    let config_path = match (written, version) {
        (Some(p), _) => p.to_string(),
        // containerd 2's built-in default; containerd 1's is "".
        (None, 3) => "/etc/containerd/certs.d:/etc/docker/certs.d".to_string(),
        (None, _) => String::new(),
    };
    Ok(CriRegistry {
        version,
        dirs: config_path
            .split(':')
            .filter(|d| !d.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The config text with `hosts_dir` first in the CRI's `config_path` (others
/// kept after it), or `None` when it is there already. A missing or empty
/// file becomes one with `version = default_version` and that one key.
pub fn with_hosts_dir(
    path: &Path,
    text: Option<&str>,
    hosts_dir: &Path,
    default_version: i64,
) -> Result<Option<String>, ContainerdConfigError> {
    let current = cri_registry(path, text, default_version)?;
    if current.reads(hosts_dir) {
        return Ok(None);
    }
    let mut doc = parse(path, text.unwrap_or(""))?;
    let version = current.version;
    if doc.get("version").is_none() {
        doc.insert("version", value(version));
    }
    if let Some(t) = registry(&doc, version)
        && (t.contains_key("mirrors") || t.contains_key("configs"))
    {
        return Err(ContainerdConfigError::OldMirrors {
            path: path.to_path_buf(),
            table: registry_table_name(version),
        });
    }
    // Only what was written stays after dpx's directory (not containerd 2's
    // defaults: writing them out would change nothing but the file).
    let written = registry(&doc, version)
        .and_then(|t| t.get("config_path"))
        .and_then(Item::as_str)
        .unwrap_or("")
        .to_string();
    let mut dirs = vec![hosts_dir.display().to_string()];
    dirs.extend(
        written
            .split(':')
            .filter(|d| !d.is_empty())
            .map(str::to_string),
    );
    let Some(keys) = registry_table(version) else {
        return Err(ContainerdConfigError::OldVersion {
            path: path.to_path_buf(),
        });
    };
    let mut table = doc.as_table_mut();
    for key in keys {
        let entry = table.entry(key).or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        });
        let Some(next) = entry.as_table_mut() else {
            return Err(ContainerdConfigError::Malformed {
                path: path.to_path_buf(),
                message: format!("{key} is not a table"),
            });
        };
        table = next;
    }
    table.insert("config_path", value(dirs.join(":")));
    Ok(Some(doc.to_string()))
}

/// A file `setup containerd` would write: its new text when it changes.
#[derive(Debug)]
pub struct Planned {
    pub path: PathBuf,
    pub text: Option<String>,
    pub backup: Option<PathBuf>,
}
pub struct ContainerdReport {
    pub hosts: Vec<Planned>,
    /// containerd's config.toml; `None` when neither it nor containerd exists.
    pub cri: Option<Planned>,
}
/// The config.toml change that makes the CRI read `hosts_dir`.
fn cri_config_change(
    file: &Path,
    hosts_dir: &Path,
    installed: Option<&str>,
) -> anyhow::Result<Option<Planned>> {
    let text = read_optional(file)?;
    if text.is_none() && installed.is_none() {
        return Ok(None);
    }
    let version = version_for_containerd(installed);
    let new = with_hosts_dir(file, text.as_deref(), hosts_dir, version)?;
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
/// Each mirrored registry's `hosts.toml` names dpx as a host, and
/// containerd's CRI reads them (`config_path`).
pub async fn check(
    endpoint: &Endpoint,
    hosts_dir: &Path,
    containerd_config: &Path,
    registries: &[String],
) -> Check {
    let fix = Some(apply_command(hosts_dir, containerd_config));
    let dir = hosts_dir.to_path_buf();
    let wanted = endpoint.url();
    let regs = registries.to_vec();
    let missing = tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        let mut found = 0usize;
        for host in &regs {
            let file = dir.join(host).join("hosts.toml");
            let names_dpx = crate::operator_files::read_to_string(&file)
                .ok()
                .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
                .and_then(|t| t.get("host").and_then(|h| h.as_table()).cloned())
                .is_some_and(|hosts| hosts.keys().any(|k| same_url(k, &wanted)));
            if file.exists() {
                found += 1;
            }
            if !names_dpx {
                missing.push(host.clone());
            }
        }
        (missing, found)
    })
    .await
    .unwrap_or_else(|_| (registries.to_vec(), 0));
    let (missing, found) = missing;
    if missing.is_empty() {
        let hosts = format!(
            "hosts.toml in {} sends {} through dpx",
            hosts_dir.display(),
            registries.join(", ")
        );
        return cri_config_check(hosts, hosts_dir, containerd_config, fix).await;
    }
    if found == 0 && !installed("containerd").await {
        return Check::new(
            "containerd",
            Status::Note,
            "containerd is not installed".into(),
            None,
        );
    }
    Check::new(
        "containerd",
        Status::Warning,
        format!(
            "no hosts.toml in {} names {} for {}: containerd pulls those straight from the registry",
            hosts_dir.display(),
            endpoint.url(),
            missing.join(", ")
        ),
        fix,
    )
}
/// The hosts files are right: does containerd's CRI read them? Without
/// `config_path` naming the directory, only `ctr --hosts-dir` does.
async fn cri_config_check(
    hosts: String,
    hosts_dir: &Path,
    file: &Path,
    fix: Option<String>,
) -> Check {
    let installed = installed_version().await;
    let path = file.to_path_buf();
    // The reason alone: the message below names the file.
    let read = tokio::task::spawn_blocking(move || {
        read_optional(&path).map_err(|e| match e {
            SetupError::Read { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        })
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let text = match read {
        Ok(None) if installed.is_none() => {
            return Check::new("containerd", Status::Ok, hosts, None);
        }
        Ok(text) => text,
        Err(e) => {
            return Check::new(
                "containerd",
                Status::Warning,
                format!(
                    "{hosts}, but {} cannot be read ({e}) to check that containerd's CRI reads them",
                    file.display()
                ),
                None,
            );
        }
    };
    let version = version_for_containerd(installed.as_deref());
    let fix = fix.map(|f| format!("{f}, then {}", CONTAINERD_RESTART));
    match cri_registry(file, text.as_deref(), version) {
        Ok(cri) if cri.reads(hosts_dir) => Check::new(
            "containerd",
            Status::Ok,
            format!(
                "{hosts}; its CRI reads them ({} config_path)",
                file.display()
            ),
            None,
        ),
        Ok(cri) => Check::new(
            "containerd",
            Status::Problem,
            format!(
                "{hosts}, but containerd's CRI (kubelet, nerdctl, crictl) ignores them: {}{} \
                 {} config_path is {}, not {}",
                file.display(),
                if text.is_none() { " (absent)" } else { "" },
                registry_table_name(cri.version),
                if cri.dirs.is_empty() {
                    "unset".to_string()
                } else {
                    format!("{:?}", cri.dirs.join(":"))
                },
                hosts_dir.display()
            ),
            fix,
        ),
        Err(e) => Check::new(
            "containerd",
            Status::Problem,
            format!("{hosts}, but containerd's CRI may ignore them: {e}"),
            Some(format!(
                "edit {} so that {} config_path names {}",
                file.display(),
                registry_table_name(version),
                hosts_dir.display()
            )),
        ),
    }
}

/// The hosts.toml of every mirrored registry and the config.toml change that
/// makes the CRI read them; with `apply`, written (each changed file backed
/// up first). Everything is read and checked before anything is written.
pub async fn setup(
    config: &Config,
    endpoint: &Endpoint,
    hosts_dir: &Path,
    containerd_config: &Path,
    apply: bool,
) -> anyhow::Result<ContainerdReport> {
    let files: Vec<(PathBuf, String)> = mirrored_registries(config)?
        .into_iter()
        .map(|host| {
            let text = hosts_toml(&config.registry_url(&host), endpoint);
            (hosts_dir.join(&host).join("hosts.toml"), text)
        })
        .collect();
    let installed = installed_version().await;
    let (config_file, hosts_dir) = (containerd_config.to_path_buf(), hosts_dir.to_path_buf());
    tokio::task::spawn_blocking(move || -> anyhow::Result<ContainerdReport> {
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
    .context("the setup task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTS: &str = "/etc/containerd/certs.d";

    fn p() -> &'static Path {
        Path::new("/etc/containerd/config.toml")
    }

    #[test]
    fn versions_from_containerd_version() {
        let debian12 =
            "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3";
        assert_eq!(version_for_containerd(Some(debian12)), 2);
        let two = "containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7";
        assert_eq!(version_for_containerd(Some(two)), 3);
        assert_eq!(version_for_containerd(None), 2);
    }

    #[test]
    fn sets_config_path_keeping_the_rest_of_a_version_2_file() {
        let text = "# my containerd\nversion = 2\n\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\"]\n    sandbox_image = \"pause:3.9\" # pinned\n    [plugins.\"io.containerd.grpc.v1.cri\".registry]\n      config_path = \"\"\n";
        assert!(
            !cri_registry(p(), Some(text), 2)
                .unwrap()
                .reads(Path::new(HOSTS))
        );
        let new = with_hosts_dir(p(), Some(text), Path::new(HOSTS), 2)
            .unwrap()
            .unwrap();
        assert!(new.starts_with("# my containerd\nversion = 2\n"), "{new}");
        assert!(
            new.contains("sandbox_image = \"pause:3.9\" # pinned"),
            "{new}"
        );
        let reg = cri_registry(p(), Some(&new), 2).unwrap();
        assert_eq!(reg.dirs, [HOSTS]);
        assert_eq!(
            with_hosts_dir(p(), Some(&new), Path::new(HOSTS), 2).unwrap(),
            None
        );
    }

    #[test]
    fn keeps_other_directories_after_dpx_s_and_writes_version_3_where_it_lives() {
        let text = "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\nconfig_path = \"/opt/certs.d\"\n";
        let new = with_hosts_dir(p(), Some(text), Path::new("/srv/dpx.d"), 3)
            .unwrap()
            .unwrap();
        let reg = cri_registry(p(), Some(&new), 3).unwrap();
        assert_eq!(reg.dirs, ["/srv/dpx.d", "/opt/certs.d"]);
        // containerd 2's default already reads /etc/containerd/certs.d.
        assert!(
            cri_registry(p(), Some("version = 3\n"), 3)
                .unwrap()
                .reads(Path::new(HOSTS))
        );
    }

    #[test]
    fn a_missing_file_is_created_with_the_version_containerd_uses() {
        let new = with_hosts_dir(p(), None, Path::new(HOSTS), 2)
            .unwrap()
            .unwrap();
        let t: toml::Table = toml::from_str(&new).unwrap();
        assert_eq!(t["version"].as_integer(), Some(2));
        assert_eq!(
            t["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["config_path"].as_str(),
            Some(HOSTS)
        );
    }

    #[test]
    fn refuses_what_it_cannot_edit_safely() {
        for (text, what) in [
            ("[plugins.cri]\nx = 1\n", "version 1"),
            ("version = 2\n[plugins", "not valid TOML"),
            (
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m\"]\n",
                "the old way",
            ),
        ] {
            let err = with_hosts_dir(p(), Some(text), Path::new(HOSTS), 2).unwrap_err();
            assert!(err.to_string().contains(what), "{text}: {err}");
            assert!(err.to_string().contains("nothing was changed"), "{err}");
        }
    }
}
