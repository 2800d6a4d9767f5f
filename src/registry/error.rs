//! Typed upstream failures; `is_transient` decides retries and serving stale.

use std::time::Duration;

use crate::reference::Digest;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{what} not found at {url}")]
    NotFound { what: String, url: String },
    #[error("{url} refused access ({status}): {message}; if the image is private, log in first")]
    Denied {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{url} answered 429 Too Many Requests: {message}")]
    RateLimited {
        url: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("{url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{what}: expected {expected}, received content hashing to {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: expected {expected} bytes, received {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("token request to {realm} failed: {message}")]
    Token { realm: String, message: String },
    #[error("unexpected reply from {url}: {message}")]
    Protocol { url: String, message: String },
    #[error("download from {url} broke off: {reason}")]
    Body { url: String, reason: String },
}

impl RegistryError {
    /// Failures that may pass: network trouble, 5xx, 429, a body cut short.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. }
            | RegistryError::RateLimited { .. }
            | RegistryError::Body { .. } => true,
            RegistryError::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }

    /// Upstream is down or refusing service (as opposed to "this image does not exist").
    pub fn is_outage(&self) -> bool {
        self.is_transient() || matches!(self, RegistryError::Token { .. })
    }

    pub fn from_reqwest(url: &str, e: &reqwest::Error) -> RegistryError {
        // reqwest's own text repeats the URL; the innermost cause says what happened.
        let mut root: &dyn std::error::Error = e;
        while let Some(s) = root.source() {
            root = s;
        }
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "connection failed"
        } else {
            "request failed"
        };
        let reason = format!("{kind}: {root}");
        if e.is_body() || e.is_decode() {
            RegistryError::Body {
                url: url.to_string(),
                reason,
            }
        } else {
            RegistryError::Unreachable {
                url: url.to_string(),
                reason,
            }
        }
    }
}
