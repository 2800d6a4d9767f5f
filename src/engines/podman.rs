//! podman, buildah, skopeo and CRI-O: registries.conf stanzas with dpx as
//! each registry's mirror, and whether a file podman reads has them.

use std::path::PathBuf;

use super::check::{Check, Status};
use super::endpoint::Endpoint;
use super::mirrored_registries;
use super::program::installed;
use crate::config::Config;
use crate::reference::DOCKER_HUB;

/// Where `setup podman`'s stanzas go, system-wide and rootless.
pub const PODMAN_DROP_IN: &str = "/etc/containers/registries.conf.d/50-dpx.conf";

pub const PODMAN_ROOTLESS_DROP_IN: &str = "~/.config/containers/registries.conf.d/50-dpx.conf";

/// registries.conf (v2) stanzas: each registry with dpx as its mirror. Docker
/// Hub goes through mirror mode (`/v2/library/alpine`), others through prefix
/// mode (`/v2/ghcr.io/org/app`).
pub fn stanzas(config: &Config, endpoint: &Endpoint) -> anyhow::Result<String> {
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

/// `CONTAINERS_REGISTRIES_CONF`, which podman reads instead of its usual files.
pub fn conf_override() -> Option<PathBuf> {
    std::env::var_os("CONTAINERS_REGISTRIES_CONF")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The registries.conf files podman reads: the given one, else the user's or
/// the system's file and their `.d` drop-ins.
pub fn conf_files(given: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(file) = given {
        return vec![file];
    }
    let mut files = Vec::new();
    let user = directories::BaseDirs::new().map(|d| d.config_dir().join("containers"));
    let main = user
        .as_ref()
        .map(|d| d.join("registries.conf"))
        .filter(|f| f.exists())
        .unwrap_or_else(|| PathBuf::from("/etc/containers/registries.conf"));
    files.push(main);
    let mut dirs = vec![PathBuf::from("/etc/containers/registries.conf.d")];
    dirs.extend(user.map(|d| d.join("registries.conf.d")));
    for dir in dirs {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files
}

/// Whether a registries.conf has a docker.io registry whose mirror is dpx.
fn conf_mirrors_docker_hub(text: &str, host_port: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    let wanted = [host_port.to_string(), format!("{host_port}/docker.io")];
    table
        .get("registry")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter(|r| {
            let field = |k: &str| r.get(k).and_then(|v| v.as_str());
            let prefix = field("prefix").or(field("location")).unwrap_or("");
            matches!(
                prefix,
                "docker.io" | "registry-1.docker.io" | "index.docker.io"
            )
        })
        .flat_map(|r| {
            r.get("mirror")
                .and_then(|m| m.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .any(|m| {
            m.get("location")
                .and_then(|l| l.as_str())
                .is_some_and(|l| wanted.iter().any(|w| w == l.trim_end_matches('/')))
        })
}

pub async fn check(endpoint: &Endpoint, given: Option<PathBuf>) -> Check {
    let host_port = endpoint.host_port.clone();
    let files = tokio::task::spawn_blocking(move || {
        conf_files(given)
            .into_iter()
            .map(|f| {
                let hit = crate::operator_files::read_to_string(&f)
                    .map(|t| conf_mirrors_docker_hub(&t, &host_port))
                    .ok();
                (f, hit)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    if let Some((file, _)) = files.iter().find(|(_, hit)| *hit == Some(true)) {
        return Check::new(
            "podman",
            Status::Ok,
            format!(
                "{} mirrors docker.io through {}",
                file.display(),
                endpoint.host_port
            ),
            None,
        );
    }
    let any_file = files.iter().any(|(_, hit)| hit.is_some());
    if !any_file && !installed("podman").await {
        return Check::new(
            "podman",
            Status::Note,
            "podman is not installed".into(),
            None,
        );
    }
    Check::new(
        "podman",
        Status::Warning,
        format!(
            "no registries.conf read by podman ({}) mirrors docker.io through {}",
            files
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            endpoint.host_port
        ),
        Some("dpx setup podman | sudo tee /etc/containers/registries.conf.d/50-dpx.conf".into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engines::containerd::hosts_toml;

    fn endpoint() -> Endpoint {
        Endpoint {
            host_port: "127.0.0.1:5000".into(),
            origin: crate::engines::endpoint::Origin::Default,
        }
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
        let conf: toml::Table = toml::from_str(&stanzas(&config, &endpoint()).unwrap()).unwrap();
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

    #[test]
    fn registries_conf_with_a_docker_hub_mirror() {
        let conf = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n";
        assert!(conf_mirrors_docker_hub(conf, "127.0.0.1:5000"));
        assert!(!conf_mirrors_docker_hub(conf, "127.0.0.1:5001"));
        let other = conf.replace(
            "prefix = \"docker.io\"\nlocation = \"docker.io\"",
            "location = \"quay.io\"",
        );
        assert!(!conf_mirrors_docker_hub(&other, "127.0.0.1:5000"));
        assert!(!conf_mirrors_docker_hub("not toml [", "127.0.0.1:5000"));
    }
}
