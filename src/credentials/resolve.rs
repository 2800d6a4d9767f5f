//! Which credentials a registry host gets: the sources in order of
//! precedence, the first that has some wins, and the answer says which.
//!
//! Standard order (README "Logging in"):
//! 1. `DPX_REGISTRY_USER` / `DPX_REGISTRY_PASSWORD` (for `DPX_REGISTRY_HOST`, default Docker Hub)
//! 2. dpx's own store (`dpx login`: OS keyring or the 0600 file)
//! 3. `DOCKER_AUTH_CONFIG`
//! 4. Docker's `config.json` (`credHelpers`, `credsStore`, `auths`)
//!
//! More sources can be put in at a position (`Resolver::insert`), e.g. the
//! GitLab `CI_DEPENDENCY_PROXY_*` variables for a team tier's host.

use std::path::Path;

use super::docker::DockerSource;
use super::env::EnvSource;
use super::source::{CredentialSource, Found, Listed};
use super::store::{Saved, Store, StoreKind};
use crate::reference::HostKey;

/// The sources, first wins.
#[derive(Debug, Default)]
pub struct Resolver {
    sources: Vec<Box<dyn CredentialSource>>,
}

/// dpx's store as a source.
#[derive(Debug)]
pub struct StoreSource(pub Store);

fn saved_label(saved: &Saved) -> String {
    match saved {
        Saved::Keyring => "dpx login (keyring)".to_string(),
        Saved::File(path) => format!("dpx login (file {})", path.display()),
    }
}

impl CredentialSource for StoreSource {
    fn lookup(&self, key: &str) -> Option<Found> {
        match self.0.get(key) {
            Ok(found) => found.map(|(credentials, saved)| Found {
                registry: key.to_string(),
                credentials,
                source: saved_label(&saved),
            }),
            Err(e) => {
                tracing::warn!("not using dpx's stored login for {key}: {e}");
                None
            }
        }
    }

    fn list(&self) -> Vec<Listed> {
        match self.0.list() {
            Ok(entries) => entries
                .into_iter()
                .map(|(registry, username, saved)| Listed {
                    registry,
                    username: Some(username),
                    source: saved_label(&saved),
                })
                .collect(),
            Err(e) => {
                tracing::warn!("cannot list dpx's stored logins: {e}");
                Vec::new()
            }
        }
    }
}

impl Resolver {
    pub fn new(sources: Vec<Box<dyn CredentialSource>>) -> Resolver {
        Resolver { sources }
    }

    /// The standard sources: environment, dpx's store in `config_dir`,
    /// `DOCKER_AUTH_CONFIG`, Docker's config.json.
    /// Reads files: call it off the runtime. No config dir: no dpx store.
    pub fn standard(config_dir: Option<&Path>, store: Option<StoreKind>) -> Resolver {
        let mut sources: Vec<Box<dyn CredentialSource>> = vec![Box::new(EnvSource::from_env())];
        if let Some(dir) = config_dir {
            sources.push(Box::new(StoreSource(Store::new(dir, store))));
        }
        if let Some(s) = DockerSource::from_env() {
            sources.push(Box::new(s));
        }
        if let Some(s) = DockerSource::config_path().and_then(|p| DockerSource::from_file(&p)) {
            sources.push(Box::new(s));
        }
        Resolver { sources }
    }

    /// Puts a source at `index` in the order (clamped to the end).
    pub fn insert(&mut self, index: usize, source: Box<dyn CredentialSource>) {
        let index = index.min(self.sources.len());
        self.sources.insert(index, source);
    }

    /// The credentials for a registry host (any alias, URL or `host[:port]`), first source wins.
    pub fn lookup(&self, registry: &str) -> Option<Found> {
        let key = HostKey::of_registry(registry).into_string();
        let found = self.sources.iter().find_map(|s| s.lookup(&key));
        match &found {
            Some(f) => tracing::debug!(
                "credentials for {key}: user {} from {}",
                f.credentials.username,
                f.source
            ),
            None => tracing::debug!("no credentials for {key}: anonymous"),
        }
        found
    }

    /// Every credential every source holds, in precedence order, each with
    /// whether it is the one used for its registry.
    pub fn list(&self) -> Vec<(Listed, bool)> {
        let mut seen = std::collections::HashSet::new();
        self.sources
            .iter()
            .flat_map(|s| s.list())
            .map(|l| {
                let active = seen.insert(l.registry.clone());
                (l, active)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::source::Credentials;

    #[derive(Debug)]
    struct Fixed(&'static str, &'static str);

    impl CredentialSource for Fixed {
        fn lookup(&self, key: &str) -> Option<Found> {
            (key == self.0).then(|| Found {
                registry: key.into(),
                credentials: Credentials {
                    username: self.1.into(),
                    password: "pw".into(),
                },
                source: self.1.into(),
            })
        }
        fn list(&self) -> Vec<Listed> {
            vec![Listed {
                registry: self.0.into(),
                username: Some(self.1.into()),
                source: self.1.into(),
            }]
        }
    }

    #[test]
    fn dpx_logins_are_a_source_that_says_where_the_secret_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Some(StoreKind::File));
        let key = "resolve-store.example";
        store.save(key, "carol", "pw").unwrap();
        let label = format!("dpx login (file {})", store.file_path().display());
        let src = StoreSource(store.clone());
        let found = src.lookup(key).unwrap();
        assert_eq!(
            (
                found.registry.as_str(),
                found.credentials.username.as_str(),
                found.credentials.password.as_str(),
                found.source.as_str()
            ),
            (key, "carol", "pw", label.as_str())
        );
        assert!(src.lookup("other.example").is_none());
        let listed = crate::credentials::listed(&src);
        assert_eq!(
            listed,
            [(key.to_string(), Some("carol".into()), label.clone())]
        );
        assert_eq!(saved_label(&Saved::Keyring), "dpx login (keyring)");

        // The standard sources include the store of the config dir given.
        let standard = Resolver::standard(Some(dir.path()), Some(StoreKind::File));
        assert_eq!(standard.lookup(key).unwrap().source, label);
        assert!(Resolver::standard(None, None).lookup(key).is_none());

        // A broken file gives nothing (and says so in the log).
        std::fs::write(store.file_path(), "{").unwrap();
        assert!(src.lookup(key).is_none());
        assert!(src.list().is_empty());
    }

    #[test]
    fn first_source_wins_and_inserted_sources_take_their_place() {
        let mut r = Resolver::new(vec![
            Box::new(Fixed("docker.io", "first")),
            Box::new(Fixed("docker.io", "second")),
            Box::new(Fixed("ghcr.io", "third")),
        ]);
        assert_eq!(r.lookup("index.docker.io").unwrap().source, "first");
        assert_eq!(r.lookup("ghcr.io").unwrap().source, "third");
        assert!(r.lookup("quay.io").is_none());
        r.insert(0, Box::new(Fixed("ghcr.io", "zeroth")));
        assert_eq!(r.lookup("ghcr.io").unwrap().source, "zeroth");
        let active: Vec<_> = r.list().into_iter().map(|(l, a)| (l.source, a)).collect();
        assert_eq!(
            active,
            [
                ("zeroth".to_string(), true),
                ("first".to_string(), true),
                ("second".to_string(), false),
                ("third".to_string(), false)
            ]
        );
    }
}
