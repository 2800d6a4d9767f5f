//! Upstream credentials: where a username and password for a registry host
//! can come from (environment, dpx's own store, Docker's config), which one
//! wins, and dpx's store itself (OS keyring or a 0600 file).
//!
//! Credentials belong to the host dpx talks to (`host[:port]` of the endpoint
//! URL), with Docker Hub's aliases folded into `docker.io`
//! ([`crate::reference::HostKey`]). Nothing here logs, prints or formats a
//! secret: [`Credentials`] has a redacting `Debug`.
//!
//! This module sits below the registry client and never imports it: the
//! client asks it for credentials, not the other way round. Inside, every
//! source (`env`, `store`, `docker`, `dependency_proxy`) speaks `source`'s
//! types, and only `resolve` knows the sources.

pub mod dependency_proxy;
pub mod docker;
pub mod env;
pub mod file;
pub mod keyring;
pub mod resolve;
pub mod source;
pub mod store;

pub use docker::SECRET_VARS;
pub use resolve::Resolver;
pub use source::{CredentialSource, Credentials, Found, Listed};
pub use store::{Store, StoreKind};

use crate::reference::HostKey;

/// Whether `name` can be a registry host (`dpx login NAME`): a host with an
/// optional port, no path, no user info, no spaces.
pub fn is_valid_host(name: &str) -> bool {
    if !name.contains("://") && name.contains('/') {
        return false;
    }
    let key = HostKey::of_registry(name).into_string();
    !key.is_empty()
        && !key.contains(['@', ' ', '\t', '?', '#'])
        && url::Url::parse(&format!("https://{key}/")).is_ok_and(|u| {
            u.host_str().is_some_and(|h| !h.is_empty())
                && u.path() == "/"
                && format!(
                    "{}{}",
                    u.host_str().unwrap_or_default(),
                    u.port().map(|p| format!(":{p}")).unwrap_or_default()
                ) == key
        })
}

/// A source's listing as (registry, user, source) triples, for tests to compare.
#[cfg(test)]
pub(crate) fn listed(source: &dyn CredentialSource) -> Vec<(String, Option<String>, String)> {
    source
        .list()
        .into_iter()
        .map(|l| (l.registry, l.username, l.source))
        .collect()
}

/// What `f` logs on this thread, as text: sources report problems in the
/// log, not in what they return.
#[cfg(test)]
pub(crate) fn captured_log(f: impl FnOnce()) -> String {
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Log(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Log {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = log.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_are_checked() {
        for ok in [
            "docker.io",
            "127.0.0.1:5000",
            "ghcr.io",
            "[::1]:5000",
            "localhost",
        ] {
            assert!(is_valid_host(ok), "{ok}");
        }
        // "127.1" is a host URL parsing spells otherwise (127.0.0.1).
        for bad in [
            "",
            "user@host",
            "a b",
            "host:port",
            "host?x",
            "ghcr.io/org",
            "127.1",
        ] {
            assert!(!is_valid_host(bad), "{bad}");
        }
    }
}
