//! `dpx setup systemd`: a `.socket` + `.service` pair for socket activation.
//! systemd holds the port; the first connection starts `dpx serve`, which
//! stops again after its idle timeout, so an engine never finds the mirror
//! down (dockerd would silently fall back to Docker Hub).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::Config;
use crate::daemon::listen::{check_exposure, configured_addr};

const SOCKET: &str = "dpx.socket";
const SERVICE: &str = "dpx.service";

#[derive(Serialize)]
pub struct Unit {
    pub path: PathBuf,
    pub text: String,
}

#[derive(Serialize)]
pub struct Plan {
    /// Where the units go.
    #[serde(skip)]
    pub dir: PathBuf,
    pub socket: Unit,
    pub service: Unit,
    /// What to run after the files are in place.
    pub commands: Vec<String>,
}

/// The two units for serving `cache_dir` (with `config_file`, when given) on
/// the configured address, and the commands that enable them.
pub fn plan(
    config: &Config,
    cache_dir: &Path,
    config_file: Option<&Path>,
    listen: Option<&str>,
    idle_timeout: Option<Duration>,
    unit_dir: Option<&Path>,
    system: bool,
) -> anyhow::Result<(SocketAddr, Plan)> {
    let addr = configured_addr(config, listen)?;
    // The unit runs plain `dpx serve`: off loopback only with client auth in the config.
    check_exposure(addr, crate::client_access::enabled(config, false), false)?;
    let idle = match idle_timeout {
        Some(t) if t.is_zero() => None,
        Some(t) => Some(t),
        None => config.serve.idle_timeout(true),
    };
    let dir = match unit_dir {
        Some(d) => d.to_path_buf(),
        None => default_unit_dir(system)?,
    };
    let exe = std::env::current_exe().context("cannot find the dpx binary")?;
    let mut exec = vec![
        exe.display().to_string(),
        "--cache-dir".into(),
        crate::daemon::absolute(cache_dir).display().to_string(),
    ];
    if let Some(config) = config_file {
        exec.push("--config".into());
        exec.push(crate::daemon::absolute(config).display().to_string());
    }
    exec.push("serve".into());
    if let Some(t) = idle {
        exec.push("--idle-timeout".into());
        exec.push(format!("{}s", t.as_secs()));
    }
    let commands = enable_commands(&dir, system);
    let plan = Plan {
        dir: dir.clone(),
        socket: Unit {
            path: dir.join(SOCKET),
            text: socket_unit(&addr.to_string()),
        },
        service: Unit {
            path: dir.join(SERVICE),
            text: service_unit(&exec, idle.is_some()),
        },
        commands,
    };
    Ok((addr, plan))
}

fn socket_unit(addr: &str) -> String {
    format!(
        "[Unit]\n\
         Description=dpx registry mirror socket (starts dpx on the first connection)\n\
         \n\
         [Socket]\n\
         # Loopback only: dpx serve has no client authentication.\n\
         ListenStream={addr}\n\
         \n\
         [Install]\n\
         WantedBy=sockets.target\n"
    )
}

fn service_unit(exec: &[String], idle: bool) -> String {
    let exec_line = exec.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
    let idle_note = if idle {
        "# It stops after its idle timeout (exit 0); the socket starts it again.\n"
    } else {
        ""
    };
    format!(
        "[Unit]\n\
         Description=dpx: pull-through cache for container images\n\
         Requires={SOCKET}\n\
         After={SOCKET}\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec_line}\n\
         {idle_note}\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         Also={SOCKET}\n"
    )
}

/// One ExecStart word: quoted when it has spaces or quotes, with `%` and `$`
/// doubled so systemd takes them literally.
fn quote(word: &str) -> String {
    let escaped = word
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    if escaped.contains([' ', '\t', '"', '\'']) || escaped.is_empty() {
        format!("\"{escaped}\"")
    } else {
        escaped
    }
}

/// Directories the system's systemd reads units from, and the user's.
const SYSTEM_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];
const USER_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
    "/lib/systemd/user",
];

/// What to run once the units are in `dir`: the scope is the directory's
/// (a system dir needs plain `systemctl`, whatever --user says), and a
/// directory systemd does not search needs `systemctl link` first.
fn enable_commands(dir: &Path, system: bool) -> Vec<String> {
    let user_dirs: Vec<PathBuf> = directories::BaseDirs::new()
        .map(|b| {
            vec![
                b.config_dir().join("systemd/user"),
                b.data_dir().join("systemd/user"),
            ]
        })
        .unwrap_or_default();
    // `/etc/systemd/system/` and `/etc/systemd/system` alike.
    let dir: PathBuf = dir.components().collect();
    let (scope, searched) = if SYSTEM_UNIT_DIRS.iter().any(|d| dir == Path::new(d)) {
        ("", true)
    } else if USER_UNIT_DIRS.iter().any(|d| dir == Path::new(d))
        || user_dirs.iter().any(|d| d == &dir)
    {
        (" --user", true)
    } else {
        (if system { "" } else { " --user" }, false)
    };
    let mut commands = Vec::new();
    if !searched {
        commands.push(format!(
            "systemctl{scope} link {} {}",
            dir.join(SERVICE).display(),
            dir.join(SOCKET).display()
        ));
    }
    commands.push(format!("systemctl{scope} daemon-reload"));
    commands.push(format!("systemctl{scope} enable --now {SOCKET}"));
    commands
}

fn default_unit_dir(system: bool) -> anyhow::Result<PathBuf> {
    if system {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let base = directories::BaseDirs::new().ok_or_else(|| {
        anyhow::anyhow!("cannot find a home directory for the user units; pass --unit-dir")
    })?;
    Ok(base.config_dir().join("systemd/user"))
}

/// Writes both units into `dir` (made when missing).
pub fn write_units(dir: &Path, socket: &str, service: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (name, text) in [(SOCKET, socket), (SERVICE, service)] {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_fit_the_directory_written() {
        let system = enable_commands(Path::new("/etc/systemd/system/"), false);
        assert_eq!(
            system,
            [
                "systemctl daemon-reload",
                "systemctl enable --now dpx.socket"
            ]
        );
        let user = enable_commands(Path::new("/usr/lib/systemd/user"), true);
        assert!(
            user.iter().all(|c| c.starts_with("systemctl --user ")),
            "{user:?}"
        );
        let elsewhere = enable_commands(Path::new("/srv/units"), false);
        assert_eq!(
            elsewhere[0],
            "systemctl --user link /srv/units/dpx.service /srv/units/dpx.socket"
        );
        assert!(enable_commands(Path::new("/srv/units"), true)[0].starts_with("systemctl link "));
    }

    #[test]
    fn exec_words_are_quoted_for_systemd() {
        assert_eq!(quote("/usr/bin/dpx"), "/usr/bin/dpx");
        assert_eq!(quote("/my cache"), "\"/my cache\"");
        assert_eq!(quote("50%$x"), "50%%$$x");
        let unit = service_unit(&["/bin/dpx".into(), "serve".into()], true);
        assert!(unit.contains("ExecStart=/bin/dpx serve\n"), "{unit}");
        assert!(socket_unit("127.0.0.1:5000").contains("ListenStream=127.0.0.1:5000\n"));
    }
}
