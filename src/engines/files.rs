//! Engine config files: written in one rename, the previous file backed up first.

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

/// An engine config file's text, or `None` when there is none yet; read
/// with dpx's size cap on files it is pointed at.
pub(crate) fn read_optional(file: &Path) -> Result<Option<String>, SetupError> {
    match crate::operator_files::read_to_string(file) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SetupError::Read {
            path: file.to_path_buf(),
            source,
        }),
    }
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
    crate::fsutil::AtomicWrite::new()
        .keep_mode_else(0o644)
        .through_symlinks()
        .create_dir()
        .write(file, bytes)
        .map_err(|e| SetupError::Write {
            path: e.path,
            source: e.source,
        })
}
