//! dockerd: `registry-mirrors` in daemon.json, and whether the running daemon uses dpx.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::check::{Check, Status};
use super::endpoint::Endpoint;
use super::files::{SetupError, backup, read_optional, write_atomic};
use super::program::{program_output, same_url};

/// The daemon.json key dockerd reads its mirrors from.
pub const MIRRORS_KEY: &str = "registry-mirrors";

/// How to make a running dockerd re-read daemon.json (registry-mirrors is reloadable).
pub const DOCKER_RELOAD: &str =
    "sudo systemctl reload docker (or: sudo kill -HUP $(pidof dockerd))";

#[derive(Debug)]
pub struct Applied {
    pub changed: bool,
    pub backup: Option<PathBuf>,
}

/// Puts `mirror` first in daemon.json's `registry-mirrors`, keeping every
/// other key and mirror. Writes nothing when it is already there; a file that
/// is not a JSON object (or whose mirrors are not a list of strings) is left alone.
pub fn apply_docker(file: &Path, mirror: &str) -> Result<Applied, SetupError> {
    let old = read_optional(file)?;
    let malformed = |message: String| SetupError::Malformed {
        path: file.to_path_buf(),
        message,
    };
    let mut doc = match old.as_deref().map(str::trim) {
        None | Some("") => Value::Object(serde_json::Map::new()),
        Some(text) => serde_json::from_str::<Value>(text).map_err(|e| malformed(e.to_string()))?,
    };
    let Some(object) = doc.as_object_mut() else {
        return Err(malformed("the top level is not an object".into()));
    };
    let mirrors = object
        .entry(MIRRORS_KEY)
        .or_insert_with(|| Value::Array(Vec::new()));
    let Some(list) = mirrors.as_array_mut() else {
        return Err(malformed(format!("\"{MIRRORS_KEY}\" is not a list")));
    };
    let same = |v: &Value| {
        v.as_str()
            .is_some_and(|s| s.trim_end_matches('/') == mirror.trim_end_matches('/'))
    };
    if list.iter().any(same) {
        return Ok(Applied {
            changed: false,
            backup: None,
        });
    }
    if list.iter().any(|v| !v.is_string()) {
        return Err(malformed(format!(
            "\"{MIRRORS_KEY}\" holds something other than URLs"
        )));
    }
    // First: dockerd tries mirrors in order.
    list.insert(0, Value::String(mirror.to_string()));
    let mut text = serde_json::to_string_pretty(&doc).map_err(|e| malformed(e.to_string()))?;
    text.push('\n');
    let backup = match old {
        Some(_) => Some(backup(file)?),
        None => None,
    };
    write_atomic(file, text.as_bytes())?;
    Ok(Applied {
        changed: true,
        backup,
    })
}

/// dockerd falls back to Docker Hub silently when its mirror list lacks dpx:
/// `docker info` (the CLI honours DOCKER_HOST and contexts) says what it uses.
pub async fn check(endpoint: &Endpoint) -> Check {
    let fix = Some(format!("dpx setup docker --apply, then {DOCKER_RELOAD}"));
    let out = match program_output(
        "docker",
        &["info", "--format", "{{json .RegistryConfig.Mirrors}}"],
    )
    .await
    {
        None => {
            return Check::new(
                "docker",
                Status::Note,
                "docker is not installed".into(),
                None,
            );
        }
        Some(Err(e)) => {
            return Check::new(
                "docker",
                Status::Warning,
                format!("cannot run docker info: {e}"),
                None,
            );
        }
        Some(Ok(out)) => out,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Check::new(
            "docker",
            Status::Note,
            format!(
                "docker is installed but its daemon did not answer: {}",
                first.trim()
            ),
            Some(
                "start the Docker daemon (sudo systemctl start docker), or set DOCKER_HOST".into(),
            ),
        );
    }
    let mirrors: Vec<String> = serde_json::from_slice::<Option<Vec<String>>>(&out.stdout)
        .ok()
        .flatten()
        .unwrap_or_default();
    if mirrors.iter().any(|m| same_url(m, &endpoint.url())) {
        Check::new(
            "docker",
            Status::Ok,
            format!("docker info lists {} as a registry mirror", endpoint.url()),
            None,
        )
    } else {
        Check::new(
            "docker",
            Status::Warning,
            format!(
                "the Docker daemon's registry mirrors ({}) do not include {}: docker pulls go \
                 straight to Docker Hub",
                if mirrors.is_empty() {
                    "none".to_string()
                } else {
                    mirrors.join(", ")
                },
                endpoint.url()
            ),
            fix,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_keeps_keys_and_mirrors_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        std::fs::write(
            &file,
            r#"{"debug": true, "registry-mirrors": ["https://mirror.example"], "log-opts": {"max-size": "10m"}}"#,
        )
        .unwrap();
        let first = apply_docker(&file, "http://127.0.0.1:5000").unwrap();
        assert!(first.changed);
        let backup = first.backup.unwrap();
        assert!(
            std::fs::read_to_string(&backup)
                .unwrap()
                .contains("mirror.example")
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(doc["debug"], true);
        assert_eq!(doc["log-opts"]["max-size"], "10m");
        assert_eq!(
            doc[MIRRORS_KEY],
            serde_json::json!(["http://127.0.0.1:5000", "https://mirror.example"])
        );
        let before = std::fs::read(&file).unwrap();
        let again = apply_docker(&file, "http://127.0.0.1:5000/").unwrap();
        assert!(!again.changed && again.backup.is_none());
        assert_eq!(std::fs::read(&file).unwrap(), before);
    }

    #[test]
    fn apply_leaves_a_malformed_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        for bad in [
            "{\"debug\": true,",
            "[1, 2]",
            "{\"registry-mirrors\": \"http://x\"}",
            "{\"registry-mirrors\": [1]}",
        ] {
            std::fs::write(&file, bad).unwrap();
            let err = apply_docker(&file, "http://127.0.0.1:5000").unwrap_err();
            assert!(matches!(err, SetupError::Malformed { .. }), "{bad}: {err}");
            assert!(err.to_string().contains("nothing was changed"), "{err}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), bad);
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no backup, no temp file"
        );
    }

    #[test]
    fn apply_creates_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("etc/docker/daemon.json");
        let applied = apply_docker(&file, "http://127.0.0.1:5000").unwrap();
        assert!(applied.changed && applied.backup.is_none());
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({MIRRORS_KEY: ["http://127.0.0.1:5000"]})
        );
    }
}
