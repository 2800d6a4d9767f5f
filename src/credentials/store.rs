//! dpx's own credential store: what `dpx login` writes and `dpx logout`
//! removes. Secrets go to the OS keyring, or to the 0600 credential file when
//! no keyring is reachable (or `[credentials] store = "file"` says so); the
//! file always holds the index (registry -> username, where the secret is),
//! so listing never touches the keyring. Blocking: call it off the runtime.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::file::{CredentialFile, Entry, FileError};
use super::keyring::{self, KeyringError};
use super::source::Credentials;
use crate::reference::HostKey;

/// `[credentials] store`: where `dpx login` keeps secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// The OS keyring; an error when none is reachable.
    Keyring,
    /// The 0600 file in the config directory.
    File,
}

impl From<crate::config::CredentialStore> for StoreKind {
    fn from(store: crate::config::CredentialStore) -> StoreKind {
        match store {
            crate::config::CredentialStore::Keyring => StoreKind::Keyring,
            crate::config::CredentialStore::File => StoreKind::File,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error(
        "{source}; set [credentials] store = \"file\" in the config file to keep credentials in {file} (mode 0600) instead"
    )]
    KeyringRequired { source: KeyringError, file: PathBuf },
    #[error(transparent)]
    Keyring(#[from] KeyringError),
}

/// Where a saved secret went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Keyring,
    File(PathBuf),
}

/// What a save tells the user besides where: the keyring fallback notice.
#[derive(Debug, Clone)]
pub struct SaveOutcome {
    pub saved: Saved,
    /// Set when no keyring was reachable and the file was used instead.
    pub fell_back: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    file: CredentialFile,
    /// `None`: the keyring when reachable, else the file.
    kind: Option<StoreKind>,
}

impl Store {
    pub fn new(config_dir: &Path, kind: Option<StoreKind>) -> Store {
        Store {
            file: CredentialFile::in_dir(config_dir),
            kind,
        }
    }

    pub fn file_path(&self) -> &Path {
        self.file.path()
    }

    /// Stores a login, replacing any earlier one for the registry.
    pub fn save(
        &self,
        registry: &str,
        username: &str,
        password: &str,
    ) -> Result<SaveOutcome, StoreError> {
        let key = HostKey::of_registry(registry).into_string();
        let mut fell_back = None;
        if self.kind != Some(StoreKind::File) {
            match keyring::set(&key, password) {
                Ok(()) => {
                    self.file.update(|c| {
                        c.registries.insert(
                            key.clone(),
                            Entry {
                                username: username.to_string(),
                                password: None,
                                keyring: true,
                            },
                        )
                    })?;
                    return Ok(SaveOutcome {
                        saved: Saved::Keyring,
                        fell_back: None,
                    });
                }
                Err(KeyringError::Unavailable(why)) if self.kind.is_none() => {
                    fell_back = Some(why);
                }
                Err(source) if self.kind == Some(StoreKind::Keyring) => {
                    return Err(StoreError::KeyringRequired {
                        source,
                        file: self.file.path().to_path_buf(),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let previous = self.file.update(|c| {
            c.registries.insert(
                key.clone(),
                Entry {
                    username: username.to_string(),
                    password: Some(password.to_string()),
                    keyring: false,
                },
            )
        })?;
        if previous.is_some_and(|p| p.keyring) {
            // The old secret is stale now; a keyring that is gone keeps nothing to remove.
            let _ = keyring::delete(&key);
        }
        Ok(SaveOutcome {
            saved: Saved::File(self.file.path().to_path_buf()),
            fell_back,
        })
    }

    /// The stored login for a registry (host key) and where its secret is.
    pub fn get(&self, registry: &str) -> Result<Option<(Credentials, Saved)>, StoreError> {
        let key = HostKey::of_registry(registry).into_string();
        let Some(entry) = self.file.load()?.registries.remove(&key) else {
            return Ok(None);
        };
        if entry.keyring {
            return Ok(keyring::get(&key)?.map(|password| {
                (
                    Credentials {
                        username: entry.username,
                        password,
                    },
                    Saved::Keyring,
                )
            }));
        }
        Ok(entry.password.map(|password| {
            (
                Credentials {
                    username: entry.username,
                    password,
                },
                Saved::File(self.file.path().to_path_buf()),
            )
        }))
    }

    /// Removes a registry's login; whether there was one.
    pub fn remove(&self, registry: &str) -> Result<bool, StoreError> {
        let key = HostKey::of_registry(registry).into_string();
        if !self.file.load()?.registries.contains_key(&key) {
            return Ok(false);
        }
        let previous = self.file.update(|c| c.registries.remove(&key))?;
        if previous.as_ref().is_some_and(|p| p.keyring) {
            keyring::delete(&key)?;
        }
        Ok(previous.is_some())
    }

    /// Every stored login: registry, username, where the secret is. No keyring call.
    pub fn list(&self) -> Result<Vec<(String, String, Saved)>, StoreError> {
        Ok(self
            .file
            .load()?
            .registries
            .into_iter()
            .map(|(registry, e)| {
                let saved = if e.keyring {
                    Saved::Keyring
                } else {
                    Saved::File(self.file.path().to_path_buf())
                };
                (registry, e.username, saved)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::keyring::fake;

    fn file_entry(store: &Store, key: &str) -> Option<Entry> {
        store.file.load().unwrap().registries.remove(key)
    }

    #[test]
    fn the_keyring_holds_the_secret_and_the_file_the_index() {
        fake::install();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), None);
        assert_eq!(store.file_path(), dir.path().join("credentials.json"));
        let key = "keyring-store.example";
        let out = store.save(key, "alice", "pw1").unwrap();
        assert_eq!(out.saved, Saved::Keyring);
        assert!(out.fell_back.is_none());
        assert_eq!(fake::secret(key).as_deref(), Some("pw1"));
        let entry = file_entry(&store, key).unwrap();
        assert!(entry.keyring && entry.password.is_none() && entry.username == "alice");
        let (c, saved) = store.get(key).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str(), saved),
            ("alice", "pw1", Saved::Keyring)
        );
        assert_eq!(
            store.list().unwrap(),
            [(key.to_string(), "alice".to_string(), Saved::Keyring)]
        );

        // Saved to the file instead: the keyring's secret is stale and goes.
        let in_file = Store::new(dir.path(), Some(StoreKind::File));
        let out = in_file.save(key, "alice", "pw2").unwrap();
        assert_eq!(out.saved, Saved::File(store.file_path().to_path_buf()));
        assert_eq!(fake::secret(key), None);
        assert_eq!(
            file_entry(&store, key).unwrap().password.as_deref(),
            Some("pw2")
        );

        // Removing a keyring login removes its secret too.
        store.save(key, "alice", "pw3").unwrap();
        assert_eq!(fake::secret(key).as_deref(), Some("pw3"));
        assert!(store.remove(key).unwrap());
        assert_eq!(fake::secret(key), None);
        assert!(file_entry(&store, key).is_none());
        assert!(!store.remove(key).unwrap());
        assert!(store.get(key).unwrap().is_none());
    }

    #[test]
    fn without_a_keyring_the_file_is_used_unless_the_keyring_is_required() {
        fake::install();
        let dir = tempfile::tempdir().unwrap();
        let key = "unavailable.store.example";
        let any = Store::new(&dir.path().join("any"), None);
        let out = any.save(key, "bob", "pw").unwrap();
        assert_eq!(out.saved, Saved::File(any.file_path().to_path_buf()));
        assert!(
            out.fell_back
                .as_deref()
                .is_some_and(|why| why.contains("no Secret Service")),
            "{:?}",
            out.fell_back
        );
        let (c, saved) = any.get(key).unwrap().unwrap();
        assert_eq!(
            (c.password.as_str(), saved),
            ("pw", Saved::File(any.file_path().to_path_buf()))
        );

        let required = Store::new(&dir.path().join("required"), Some(StoreKind::Keyring));
        let err = required.save(key, "bob", "pw").unwrap_err();
        assert!(
            matches!(
                &err,
                StoreError::KeyringRequired {
                    source: KeyringError::Unavailable(_),
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("store = \"file\""), "{err}");
        assert!(required.list().unwrap().is_empty());

        // A keyring that is there but fails is an error, never a fallback.
        let broken = "broken.store.example";
        let err = Store::new(&dir.path().join("broken-any"), None)
            .save(broken, "bob", "pw")
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Keyring(KeyringError::Failed(_))),
            "{err}"
        );
        let err = required.save(broken, "bob", "pw").unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::KeyringRequired {
                    source: KeyringError::Failed(_),
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn file_store_saves_lists_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), Some(StoreKind::File));
        let out = store
            .save("https://index.docker.io/v1/", "alice", "pw1")
            .unwrap();
        assert!(matches!(out.saved, Saved::File(_)));
        assert!(out.fell_back.is_none());
        let (c, _) = store.get("registry-1.docker.io").unwrap().unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("alice", "pw1"));
        assert_eq!(store.list().unwrap()[0].0, "docker.io");
        assert!(store.remove("docker.io").unwrap());
        assert!(!store.remove("docker.io").unwrap());
        assert!(store.get("docker.io").unwrap().is_none());
    }
}
