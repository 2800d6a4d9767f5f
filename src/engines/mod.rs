//! The container engines dpx serves as a mirror: docker, containerd, podman,
//! and systemd socket activation. Each module writes its engine's config and
//! checks it; `dpx setup` and `dpx doctor` only turn flags into these calls
//! and render what comes back.

use std::collections::BTreeSet;

use anyhow::Context as _;

use crate::config::Config;
use crate::reference::{DOCKER_HUB, validate_registry};

pub mod check;
pub mod containerd;
pub mod docker;
pub mod endpoint;
mod files;
pub mod podman;
mod program;
pub mod systemd;

pub use check::{Check, Status};
pub use endpoint::Endpoint;

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
