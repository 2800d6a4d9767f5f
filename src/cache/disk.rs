//! Free space on the file system that holds the cache.

use std::path::Path;

/// Bytes an unprivileged user can still write on the file system holding
/// `path` (the nearest existing ancestor if `path` does not exist yet).
#[cfg(unix)]
pub fn free_space(path: &Path) -> std::io::Result<u64> {
    let existing = path
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let stat = rustix::fs::statvfs(existing)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(not(unix))]
pub fn free_space(_path: &Path) -> std::io::Result<u64> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "free space is only measured on Unix",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn measures_an_existing_and_a_missing_dir() {
        let dir = tempfile::tempdir().unwrap();
        let free = super::free_space(dir.path()).unwrap();
        assert!(free > 0);
        assert!(super::free_space(&dir.path().join("not/yet")).unwrap() > 0);
    }
}
