//! What every credential source speaks: a username and password for one
//! registry host, and how a source answers a lookup or a listing.

/// Credentials for one registry; sent only to that registry's token realm.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Credentials found for a registry, and where they came from.
#[derive(Debug, Clone)]
pub struct Found {
    /// The host key they are for.
    pub registry: String,
    pub credentials: Credentials,
    /// Human-readable origin, e.g. `env DPX_REGISTRY_USER/...`, `dpx login (keyring)`.
    pub source: String,
}

/// One line of `dpx login --list`: never a secret.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listed {
    pub registry: String,
    /// Unknown when a credential helper would not say.
    pub username: Option<String>,
    pub source: String,
}

/// A place credentials can come from. Blocking (files, helpers, keyring):
/// call it off the async runtime.
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// Credentials for a host key (see [`crate::reference::HostKey::of_registry`]); problems are logged, not returned.
    fn lookup(&self, key: &str) -> Option<Found>;
    /// Everything this source holds, for `dpx login --list`.
    fn list(&self) -> Vec<Listed>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_show_the_user_and_never_the_password() {
        let c = Credentials {
            username: "alice".into(),
            password: "s3cr3t".into(),
        };
        let shown = format!("{c:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cr3t"),
            "{shown}"
        );
    }
}
