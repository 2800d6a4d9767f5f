//! dpx's own secrets in the config directory: created once with mode 0600,
//! refused when others could read them.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use super::AuthError;
use crate::fsutil::AtomicWrite;

/// The token signing key.
pub const SIGNING_KEY_FILE: &str = "serve-token-key";
/// The generated password of the user `dpx`.
pub const PASSWORD_FILE: &str = "serve-password";

/// Reads a secret file, creating it with `generate()` (mode 0600) when it is
/// missing. Two processes racing to create it end up with the same secret.
pub fn read_or_create(path: &Path, generate: impl Fn() -> String) -> Result<String, AuthError> {
    match read(path)? {
        Some(secret) => Ok(secret),
        None => match write_new(path, &generate()) {
            Ok(secret) => Ok(secret),
            Err(AuthError::Exists(_)) => read(path)?.ok_or_else(|| AuthError::Empty(path.into())),
            Err(e) => Err(e),
        },
    }
}

/// The secret in `path`, `None` when there is no such file.
pub fn read(path: &Path) -> Result<Option<String>, AuthError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(io_err(path, source)),
    };
    crate::operator_files::check_private(path, &file)
        .map_err(|source| io_err(path, source))?
        .map_err(|e| AuthError::Exposed {
            path: e.path,
            mode: e.mode,
        })?;
    let mut text = String::new();
    // A secret is a line; a larger file is not one of ours.
    (&mut file)
        .take(4096)
        .read_to_string(&mut text)
        .map_err(|source| io_err(path, source))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(AuthError::Empty(path.into()));
    }
    Ok(Some(secret))
}

/// Replaces `path` with a new secret (mode 0600), atomically.
pub fn replace(path: &Path, secret: &str) -> Result<(), AuthError> {
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
    AtomicWrite::new()
        .temp_name(".dpx-secret", "")
        .write(path, format!("{secret}\n").as_bytes())
        .map_err(|e| io_err(path, e.source))
}

fn write_new(path: &Path, secret: &str) -> Result<String, AuthError> {
    let dir = parent(path);
    std::fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            return Err(AuthError::Exists(path.into()));
        }
        Err(source) => return Err(io_err(path, source)),
    };
    writeln!(file, "{secret}")
        .and_then(|()| file.sync_all())
        .and_then(|()| crate::fsutil::sync_dir(dir))
        .map_err(|source| io_err(path, source))?;
    Ok(secret.to_string())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> AuthError {
    AuthError::Io {
        path: PathBuf::from(path),
        source,
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn secrets_are_created_once_private_and_refused_when_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret");
        let first = read_or_create(&path, || "one".into()).unwrap();
        let second = read_or_create(&path, || "two".into()).unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        replace(&path, "three").unwrap();
        assert_eq!(read(&path).unwrap().as_deref(), Some("three"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("three"), "{err}");
    }
}
