//! Files an operator points dpx at (the config, TLS certificate and key,
//! secrets, credential files, Docker's config, image lists, engine configs,
//! daemon state): read with a size cap, so `/dev/zero` or a huge file is an
//! error that names the file and the limit rather than all of memory; and
//! the one rule for secret files: refused when group or others may read them.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// The cap for every operator file: far above any real one.
pub const MAX_SIZE: u64 = 1024 * 1024;

/// A file over [`MAX_SIZE`] (the `io::Error` a capped read returns).
#[derive(Debug, thiserror::Error)]
#[error("the file is larger than 1 MiB, more than dpx reads from such a file")]
pub struct TooLarge;

/// A secret file that group or others may read or write.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} holds a secret but others may read it (mode {mode:o}): run `chmod 600 {path}` and start again",
    path = .path.display()
)]
pub struct Exposed {
    pub path: PathBuf,
    pub mode: u32,
}

/// The bytes of `path`, at most [`MAX_SIZE`] of them.
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    read_from(File::open(path)?)
}

/// The text of `path`, at most [`MAX_SIZE`] bytes of it.
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Reads an open file to its end, at most [`MAX_SIZE`] bytes.
pub fn read_from(file: File) -> io::Result<Vec<u8>> {
    let mut data = Vec::new();
    file.take(MAX_SIZE + 1).read_to_end(&mut data)?;
    if data.len() as u64 > MAX_SIZE {
        return Err(io::Error::new(io::ErrorKind::InvalidData, TooLarge));
    }
    Ok(data)
}

/// Refuses a secret file that group or others may read or write, as ssh does.
#[cfg(unix)]
pub fn check_private(path: &Path, file: &File) -> io::Result<Result<(), Exposed>> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        return Ok(Err(Exposed {
            path: path.into(),
            mode: mode & 0o777,
        }));
    }
    Ok(Ok(()))
}

#[cfg(not(unix))]
pub fn check_private(_path: &Path, _file: &File) -> io::Result<Result<(), Exposed>> {
    Ok(Ok(()))
}

/// A secret file's bytes (capped), when only its owner may read it; the
/// refusal as an `io::Error` of kind `PermissionDenied` carrying [`Exposed`].
pub fn read_secret(path: &Path) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    check_private(path, &file)?.map_err(|e| io::Error::new(io::ErrorKind::PermissionDenied, e))?;
    read_from(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_capped() {
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, vec![b'a'; MAX_SIZE as usize]).unwrap();
        assert_eq!(read_to_string(&file).unwrap().len() as u64, MAX_SIZE);
    }

    #[cfg(unix)]
    #[test]
    fn secrets_others_may_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("key");
        std::fs::write(&file, "secret").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret(&file).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("chmod 600"), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret(&file).unwrap(), b"secret");
    }
}
