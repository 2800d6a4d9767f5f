//! Replacing a file so that a reader sees the old or the new one, never half
//! of one, and a crash leaves one of them whole: a temp file in the same
//! directory, written, fsynced, renamed over the file, and the directory
//! fsynced so the rename itself survives.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// Renames retried when the directory vanished under the write.
const RENAME_TRIES: usize = 3;
/// A bound, as the kernel's own (ELOOP), for a link that leads to itself.
const MAX_LINKS: usize = 40;

/// A replacement that failed; `path` is the file it was writing (the link's
/// target when it wrote through a symlink). Nothing was changed at `path`.
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// The permissions of the replacement.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// These bits, from the temp file's creation on (a secret is never
    /// readable by others, not even for a moment).
    Fixed(u32),
    /// The replaced file's permissions; these bits for a new file.
    KeepElse(u32),
}

/// How to replace a file. The default makes a file private to the user
/// (0600) and replaces a symlink at the path rather than its target.
#[derive(Debug, Clone)]
pub struct AtomicWrite {
    prefix: &'static str,
    suffix: &'static str,
    mode: Mode,
    through_symlinks: bool,
    create_dir: bool,
}

impl Default for AtomicWrite {
    fn default() -> Self {
        AtomicWrite {
            prefix: ".tmp",
            suffix: "",
            mode: Mode::Fixed(0o600),
            through_symlinks: false,
            create_dir: false,
        }
    }
}

impl AtomicWrite {
    pub fn new() -> Self {
        Self::default()
    }

    /// The temp file's name: `<prefix>XXXXXX<suffix>`, so a leftover of a
    /// crash says whose it is.
    pub fn temp_name(mut self, prefix: &'static str, suffix: &'static str) -> Self {
        self.prefix = prefix;
        self.suffix = suffix;
        self
    }

    /// Keeps the replaced file's permissions; a new file gets `mode`.
    pub fn keep_mode_else(mut self, mode: u32) -> Self {
        self.mode = Mode::KeepElse(mode);
        self
    }

    /// A symlink at the path stays one: its target is what is replaced (a
    /// dangling link's target is created).
    pub fn through_symlinks(mut self) -> Self {
        self.through_symlinks = true;
        self
    }

    /// Creates the file's directory (and parents) when missing.
    pub fn create_dir(mut self) -> Self {
        self.create_dir = true;
        self
    }

    /// Replaces `path` with `bytes`.
    pub fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self.replace(path, |mut file, target| {
            file.write_all(bytes).map_err(|source| WriteError {
                path: target.to_path_buf(),
                source,
            })
        })
    }

    /// Replaces `path` with what `fill` writes into the temp file (flushing
    /// any buffer of its own). When `fill` fails, the temp file is removed
    /// and `path` is left as it was.
    pub fn write_with<T, E: From<WriteError>>(
        &self,
        path: &Path,
        fill: impl FnOnce(&File) -> Result<T, E>,
    ) -> Result<T, E> {
        self.replace(path, |file, _| fill(file))
    }

    fn replace<T, E: From<WriteError>>(
        &self,
        path: &Path,
        fill: impl FnOnce(&File, &Path) -> Result<T, E>,
    ) -> Result<T, E> {
        let target = match self.through_symlinks {
            true => link_target(path).map_err(|source| WriteError {
                path: path.to_path_buf(),
                source,
            })?,
            false => path.to_path_buf(),
        };
        let failed = |source| WriteError {
            path: target.clone(),
            source,
        };
        let dir = parent(&target);
        if self.create_dir {
            fs::create_dir_all(dir).map_err(failed)?;
        }
        let temp = self.temp_in(dir, &target).map_err(failed)?;
        let value = fill(temp.as_file(), &target)?;
        commit(temp, &target).map_err(failed)?;
        Ok(value)
    }

    fn temp_in(&self, dir: &Path, target: &Path) -> io::Result<NamedTempFile> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(self.prefix).suffix(self.suffix);
        #[cfg(unix)]
        if let Mode::Fixed(mode) = self.mode {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(fs::Permissions::from_mode(mode));
        }
        let temp = builder.tempfile_in(dir)?;
        if let Mode::KeepElse(mode) = self.mode {
            let permissions = match fs::metadata(target) {
                Ok(m) => m.permissions(),
                Err(_) => new_file_permissions(&temp, mode)?,
            };
            temp.as_file().set_permissions(permissions)?;
        }
        Ok(temp)
    }
}

#[cfg(unix)]
fn new_file_permissions(_temp: &NamedTempFile, mode: u32) -> io::Result<fs::Permissions> {
    use std::os::unix::fs::PermissionsExt as _;
    Ok(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn new_file_permissions(temp: &NamedTempFile, _mode: u32) -> io::Result<fs::Permissions> {
    Ok(temp.as_file().metadata()?.permissions())
}

/// Makes a filled temp file (in `path`'s directory) the file at `path`:
/// fsyncs its data, renames it over `path`, fsyncs the directory.
pub fn commit(temp: NamedTempFile, path: &Path) -> io::Result<()> {
    commit_remaking_dir(temp, path, || Ok(false))
}

/// [`commit`], for a directory a cleaner may remove while it is empty (the
/// cache's purge): when the rename finds it gone, `remake` makes it again
/// (returning `true`) and the rename is retried, a few times.
pub fn commit_remaking_dir(
    mut temp: NamedTempFile,
    path: &Path,
    mut remake: impl FnMut() -> io::Result<bool>,
) -> io::Result<()> {
    temp.as_file().sync_all()?;
    let mut tries = 0;
    loop {
        match temp.persist(path) {
            Ok(_) => break,
            Err(e) if e.error.kind() == io::ErrorKind::NotFound && tries < RENAME_TRIES => {
                if !remake()? {
                    return Err(e.error);
                }
                tries += 1;
                temp = e.file;
            }
            Err(e) => return Err(e.error),
        }
    }
    sync_dir(parent(path))
}

/// Makes the entries of `dir` (a rename into it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The directory of `path`, `.` for a bare file name.
fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The file a path names after following symlinks (a dangling link's target
/// included, so writing creates it); the path itself when it is no link.
pub fn link_target(file: &Path) -> io::Result<PathBuf> {
    let mut path = file.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path),
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other(
        "too many levels of symbolic links; point it at the file itself",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replaces_the_file_or_on_failure_leaves_it_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, "old").unwrap();
        let err = AtomicWrite::new()
            .temp_name(".mine-", ".tmp")
            .write_with(&file, |mut f| {
                f.write_all(b"half").unwrap();
                Err::<(), _>(WriteError {
                    path: file.clone(),
                    source: io::Error::other("the source broke"),
                })
            })
            .unwrap_err();
        assert_eq!(err.source.to_string(), "the source broke");
        assert_eq!(fs::read_to_string(&file).unwrap(), "old");
        assert_eq!(names(dir.path()), ["f"]);

        AtomicWrite::new().write(&file, b"new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        assert_eq!(names(dir.path()), ["f"]);
    }

    #[test]
    fn a_missing_directory_fails_without_creating_anything_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sub/f");
        let err = AtomicWrite::new().write(&file, b"x").unwrap_err();
        assert_eq!(err.path, file);
        assert!(names(dir.path()).is_empty());
        AtomicWrite::new().create_dir().write(&file, b"x").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "x");
    }

    #[test]
    fn secrets_are_0600_and_kept_modes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, "old").unwrap();
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
        AtomicWrite::new().write(&secret, b"s3cr3t").unwrap();
        assert_eq!(mode(&secret), 0o600, "a secret is private, whatever it was");

        let shared = dir.path().join("shared");
        fs::write(&shared, "old").unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o640)).unwrap();
        AtomicWrite::new()
            .keep_mode_else(0o644)
            .write(&shared, b"new")
            .unwrap();
        assert_eq!(mode(&shared), 0o640, "the replaced file's mode stays");

        let fresh = dir.path().join("fresh");
        AtomicWrite::new()
            .keep_mode_else(0o644)
            .write(&fresh, b"new")
            .unwrap();
        assert_eq!(mode(&fresh), 0o644);
    }

    #[test]
    fn writes_through_a_symlink_when_asked_and_replaces_it_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("managed")).unwrap();
        let target = dir.path().join("managed/daemon.json");
        fs::write(&target, "old").unwrap();
        let link = dir.path().join("daemon.json");
        std::os::unix::fs::symlink("managed/daemon.json", &link).unwrap();

        AtomicWrite::new()
            .through_symlinks()
            .write(&link, b"through")
            .unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "through");
        assert_eq!(names(&dir.path().join("managed")), ["daemon.json"]);

        // A dangling link's target is created.
        fs::remove_file(&target).unwrap();
        AtomicWrite::new()
            .through_symlinks()
            .write(&link, b"created")
            .unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "created");

        AtomicWrite::new().write(&link, b"replaced").unwrap();
        assert!(!fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&target).unwrap(), "created");
    }

    #[test]
    fn a_link_loop_is_an_error_that_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("loop");
        std::os::unix::fs::symlink("loop", &link).unwrap();
        let err = AtomicWrite::new()
            .through_symlinks()
            .write(&link, b"x")
            .unwrap_err();
        assert!(err.source.to_string().contains("too many levels"), "{err}");
        assert_eq!(names(dir.path()), ["loop"]);
    }

    #[test]
    fn commit_remakes_a_directory_removed_under_it() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let mut temp = NamedTempFile::new_in(dir.path()).unwrap();
        temp.write_all(b"record").unwrap();
        fs::remove_dir(&sub).unwrap();
        let mut remade = 0;
        commit_remaking_dir(temp, &sub.join("r"), || {
            remade += 1;
            fs::create_dir_all(&sub).map(|()| true)
        })
        .unwrap();
        assert_eq!(remade, 1);
        assert_eq!(fs::read_to_string(sub.join("r")).unwrap(), "record");
        assert_eq!(names(dir.path()), ["sub"]);
    }
}
