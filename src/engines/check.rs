//! One line of `dpx doctor`: what was checked, how it stands, and the
//! command that fixes it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Not a fault: e.g. an engine that is not installed.
    Note,
    Warning,
    Problem,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked: serve, docker, containerd, podman, upstream, cache, disk, ...
    pub check: String,
    pub status: Status,
    pub message: String,
    /// The command (or step) that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn new(name: &str, status: Status, message: String, fix: Option<String>) -> Check {
        Check {
            check: name.to_string(),
            status,
            message,
            fix,
        }
    }
}
