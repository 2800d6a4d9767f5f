//! dpx's credential file (`credentials.json` in the config directory): the
//! index of `dpx login`s (registry -> username, and where the secret is) and,
//! where no keyring is used, the secrets themselves. Always mode 0600: it is
//! written to a temp file created 0600 and renamed into place, so it is never
//! readable by others, not even for a moment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::{Access, AtomicWrite, LockFile};

pub const FILE_NAME: &str = "credentials.json";

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("cannot read the credential file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Says where, never what: the file holds secrets.
    #[error(
        "the credential file {path} is not valid (line {line}); fix or remove it and run `dpx login` again"
    )]
    Parse { path: PathBuf, line: usize },
    #[error("cannot write the credential file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One `dpx login`: the username, and the secret unless the keyring holds it.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Entry {
    pub username: String,
    /// Absent when the secret is in the OS keyring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// True when the secret is in the OS keyring (service `dpx`, user = registry).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keyring: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("username", &self.username)
            .field("keyring", &self.keyring)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Contents {
    #[serde(default)]
    pub registries: BTreeMap<String, Entry>,
}

/// The credential file at a path.
#[derive(Debug, Clone)]
pub struct CredentialFile {
    path: PathBuf,
}

impl CredentialFile {
    pub fn in_dir(dir: &Path) -> CredentialFile {
        CredentialFile {
            path: dir.join(FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's contents; empty when it does not exist.
    pub fn load(&self) -> Result<Contents, FileError> {
        // Holds secrets: refused when others may read it, as dpx's other secrets are.
        let text = match crate::operator_files::read_secret(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Contents::default()),
            Err(source) => {
                return Err(FileError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_slice(&text).map_err(|e| FileError::Parse {
            path: self.path.clone(),
            line: e.line(),
        })
    }

    /// Replaces the file with `contents`, atomically, mode 0600 from the start.
    pub fn save(&self, contents: &Contents) -> Result<(), FileError> {
        let write_err = |source| FileError::Write {
            path: self.path.clone(),
            source,
        };
        let dir = self
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        create_private_dir(dir).map_err(write_err)?;
        let mut json =
            serde_json::to_vec_pretty(contents).map_err(|e| write_err(std::io::Error::other(e)))?;
        json.push(b'\n');
        AtomicWrite::new()
            .temp_name(".credentials-", ".tmp")
            .write(&self.path, &json)
            .map_err(|e| write_err(e.source))
    }

    /// Updates the file under an exclusive lock, so two `dpx login`s at once
    /// each keep the other's entry.
    pub fn update<T>(&self, change: impl FnOnce(&mut Contents) -> T) -> Result<T, FileError> {
        let lock_path = self.path.with_extension("lock");
        if let Some(dir) = lock_path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| FileError::Write {
                path: self.path.clone(),
                source,
            })?;
        }
        let lock = LockFile::open(&lock_path)
            .and_then(|f| f.lock(Access::Exclusive))
            .map_err(|source| FileError::Write {
                path: lock_path.clone(),
                source,
            })?;
        let mut contents = self.load()?;
        let result = change(&mut contents);
        self.save(&contents)?;
        drop(lock);
        Ok(result)
    }
}

/// Creates the config directory (and parents) private to the user when missing.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::in_dir(&dir.path().join("sub"));
        assert!(file.load().unwrap().registries.is_empty());
        file.update(|c| {
            c.registries.insert(
                "docker.io".into(),
                Entry {
                    username: "alice".into(),
                    password: Some("pw".into()),
                    keyring: false,
                },
            )
        })
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let c = file.load().unwrap();
        assert_eq!(c.registries["docker.io"].username, "alice");
        assert_eq!(c.registries["docker.io"].password.as_deref(), Some("pw"));
        let shown = format!("{:?}", c.registries["docker.io"]);
        assert!(shown.contains("alice") && !shown.contains("pw"), "{shown}");
        assert!(!format!("{c:?}").contains("pw"));
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_may_read_is_refused_not_taken_as_empty() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::in_dir(dir.path());
        std::fs::write(file.path(), r#"{"registries": {}}"#).unwrap();
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = file.load().unwrap_err();
        assert!(matches!(err, FileError::Read { .. }), "{err}");
        assert!(err.to_string().contains("credentials.json"), "{err}");
    }

    #[test]
    fn a_broken_file_is_named_without_its_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = CredentialFile::in_dir(dir.path());
        std::fs::write(file.path(), "{\"registries\": {\"x\": \"s3cr3t\"").unwrap();
        let err = file.load().unwrap_err().to_string();
        assert!(
            err.contains("credentials.json") && !err.contains("s3cr3t"),
            "{err}"
        );
    }
}
