//! Engine config files: written in one rename, the previous file backed up first.

use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Copies `file` to `FILE.dpx-backup.UNIXSECONDS` (a new name each time, so
/// no earlier backup is overwritten).
pub(crate) fn backup(file: &Path) -> Result<PathBuf, SetupError> {
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
pub(crate) fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), SetupError> {
    let file = &link_target(file).map_err(|source| SetupError::Write {
        path: file.to_path_buf(),
        source,
    })?;
    let err = |source| SetupError::Write {
        path: file.to_path_buf(),
        source,
    };
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(err)?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir).map_err(err)?;
    temp.write_all(bytes).map_err(err)?;
    let permissions = match std::fs::metadata(file) {
        Ok(m) => m.permissions(),
        Err(_) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::Permissions::from_mode(0o644)
            }
            #[cfg(not(unix))]
            {
                temp.as_file().metadata().map_err(err)?.permissions()
            }
        }
    };
    temp.as_file().set_permissions(permissions).map_err(err)?;
    temp.as_file().sync_all().map_err(err)?;
    temp.persist(file).map_err(|e| err(e.error))?;
    Ok(())
}

/// The file a path names after following symlinks (a dangling link's target
/// included, so writing creates it); the path itself when it is no link.
pub(crate) fn link_target(file: &Path) -> std::io::Result<PathBuf> {
    let mut path = file.to_path_buf();
    // A bound, as the kernel's own (ELOOP), for a link that leads to itself.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "too many levels of symbolic links; point it at the file itself",
    ))
}
