//! Credentials from the environment, for scripts and CI jobs:
//! `DPX_REGISTRY_USER` and `DPX_REGISTRY_PASSWORD` for the host in
//! `DPX_REGISTRY_HOST` (Docker Hub when unset).

use super::source::{CredentialSource, Credentials, Found, Listed};
use crate::reference::{DOCKER_HUB, HostKey};

pub const USER: &str = "DPX_REGISTRY_USER";
pub const PASSWORD: &str = "DPX_REGISTRY_PASSWORD";
pub const HOST: &str = "DPX_REGISTRY_HOST";
const SOURCE: &str = "env DPX_REGISTRY_USER/DPX_REGISTRY_PASSWORD";

/// The variables as read once at start.
#[derive(Debug)]
pub struct EnvSource {
    host: String,
    credentials: Option<Credentials>,
}

impl EnvSource {
    pub fn from_env() -> EnvSource {
        EnvSource::from_vars(|name| std::env::var(name).ok())
    }

    /// Both variables must be set and non-empty; one alone is ignored with a warning.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> EnvSource {
        let get = |name| var(name).filter(|v: &String| !v.is_empty());
        let host = get(HOST).map_or_else(
            || DOCKER_HUB.to_string(),
            |h| HostKey::of_registry(&h).into_string(),
        );
        let credentials = match (get(USER), get(PASSWORD)) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            _ => {
                tracing::warn!("{USER} and {PASSWORD} go together; ignoring the one that is set");
                None
            }
        };
        EnvSource { host, credentials }
    }
}

impl CredentialSource for EnvSource {
    fn lookup(&self, key: &str) -> Option<Found> {
        let credentials = self.credentials.as_ref().filter(|_| key == self.host)?;
        Some(Found {
            registry: self.host.clone(),
            credentials: credentials.clone(),
            source: SOURCE.to_string(),
        })
    }

    fn list(&self) -> Vec<Listed> {
        self.credentials
            .iter()
            .map(|c| Listed {
                registry: self.host.clone(),
                username: Some(c.username.clone()),
                source: SOURCE.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_to_docker_hub_unless_a_host_is_named() {
        let vars = |host: Option<&'static str>| {
            move |name: &str| match name {
                USER => Some("u".to_string()),
                PASSWORD => Some("p".to_string()),
                HOST => host.map(str::to_string),
                _ => None,
            }
        };
        let hub = EnvSource::from_vars(vars(None));
        assert!(hub.lookup("docker.io").is_some());
        assert!(hub.lookup("ghcr.io").is_none());
        let ghcr = EnvSource::from_vars(vars(Some("GHCR.io")));
        assert_eq!(ghcr.lookup("ghcr.io").unwrap().credentials.password, "p");
        assert!(ghcr.lookup("docker.io").is_none());
        let half = EnvSource::from_vars(|n| (n == USER).then(|| "u".to_string()));
        assert!(half.lookup("docker.io").is_none() && half.list().is_empty());
        let listed = crate::credentials::listed(&ghcr);
        assert_eq!(
            listed,
            [(
                "ghcr.io".to_string(),
                Some("u".to_string()),
                SOURCE.to_string()
            )]
        );
        let found = hub.lookup("docker.io").unwrap();
        assert_eq!(
            (found.registry.as_str(), found.source.as_str()),
            ("docker.io", SOURCE)
        );
    }

    #[test]
    fn an_empty_variable_is_an_unset_one() {
        let vars = |user: &'static str, host: &'static str| {
            move |name: &str| match name {
                USER => Some(user.to_string()),
                PASSWORD => Some("p".to_string()),
                HOST => Some(host.to_string()),
                _ => None,
            }
        };
        // An empty host is Docker Hub; an empty user is no credentials.
        assert!(
            EnvSource::from_vars(vars("u", ""))
                .lookup("docker.io")
                .is_some()
        );
        let empty_user = EnvSource::from_vars(vars("", "ghcr.io"));
        assert!(empty_user.lookup("ghcr.io").is_none() && empty_user.list().is_empty());
    }

    #[test]
    fn only_one_of_the_two_variables_is_warned_about() {
        let none = crate::credentials::captured_log(|| {
            EnvSource::from_vars(|_| None);
        });
        assert_eq!(none, "");
        let half = crate::credentials::captured_log(|| {
            EnvSource::from_vars(|n| (n == PASSWORD).then(|| "p".to_string()));
        });
        assert!(half.contains("go together"), "{half}");
    }
}
