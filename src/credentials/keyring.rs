//! The OS keyring (Secret Service on Linux, Keychain on macOS, Credential
//! Manager on Windows) through the `keyring` crate: one entry per registry,
//! service `dpx`, user = the registry's host key. Blocking: call it off the
//! async runtime (`spawn_blocking`). Errors never carry the secret.

use std::time::Duration;

pub const SERVICE: &str = "dpx";
/// A keyring that neither answers nor fails (a locked collection waiting
/// for a prompt nobody sees) is taken as absent after this long.
const DEADLINE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// No keyring service here (no D-Bus session, no Secret Service, locked).
    #[error("no OS keyring is reachable ({0})")]
    Unavailable(String),
    #[error("the OS keyring failed: {0}")]
    Failed(String),
}

/// Classifies a keyring error; `BadEncoding` and `Ambiguous` carry secret
/// material in their fields, so only their kind is kept.
fn classify(e: ::keyring::Error) -> KeyringError {
    match e {
        ::keyring::Error::NoStorageAccess(inner) | ::keyring::Error::PlatformFailure(inner) => {
            KeyringError::Unavailable(inner.to_string())
        }
        ::keyring::Error::BadEncoding(_) => {
            KeyringError::Failed("the stored secret is not UTF-8".into())
        }
        ::keyring::Error::Ambiguous(_) => {
            KeyringError::Failed("more than one keyring entry matches".into())
        }
        ::keyring::Error::TooLong(what, max) => {
            KeyringError::Failed(format!("{what} is longer than {max}"))
        }
        ::keyring::Error::Invalid(what, why) => KeyringError::Failed(format!("{what}: {why}")),
        other => KeyringError::Failed(other.to_string()),
    }
}

/// Runs one keyring call on its own thread (the async Secret Service client
/// must not run on the caller's runtime thread) with a deadline.
fn call<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ::keyring::Error> + Send + 'static,
) -> Result<T, KeyringError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = tokio::runtime::Handle::try_current().ok();
    std::thread::Builder::new()
        .name("dpx-keyring".into())
        .spawn(move || {
            // zbus (tokio flavour) needs a runtime context for its I/O.
            let _guard = handle.as_ref().map(|h| h.enter());
            let _ = tx.send(f());
        })
        .map_err(|e| KeyringError::Failed(format!("cannot start a thread: {e}")))?;
    match rx.recv_timeout(DEADLINE) {
        Ok(result) => result.map_err(classify),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(KeyringError::Unavailable(format!(
            "no answer within {}",
            humantime::format_duration(DEADLINE)
        ))),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(KeyringError::Unavailable(
            "the keyring client stopped without an answer".into(),
        )),
    }
}

fn entry(registry: &str) -> Result<::keyring::Entry, ::keyring::Error> {
    ::keyring::Entry::new(SERVICE, registry)
}

/// The secret stored for `registry`, `None` when there is none.
pub fn get(registry: &str) -> Result<Option<String>, KeyringError> {
    let registry = registry.to_string();
    call(move || match entry(&registry)?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(::keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(e),
    })
}

pub fn set(registry: &str, secret: &str) -> Result<(), KeyringError> {
    let (registry, secret) = (registry.to_string(), secret.to_string());
    call(move || entry(&registry)?.set_password(&secret))
}

/// Removes the secret; no entry is not an error.
pub fn delete(registry: &str) -> Result<(), KeyringError> {
    let registry = registry.to_string();
    call(move || match entry(&registry)?.delete_credential() {
        Ok(()) | Err(::keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(e),
    })
}

/// An in-memory keyring for unit tests, installed for the whole test process
/// (the `keyring` crate's store is global): hosts starting `unavailable.`
/// find no keyring, hosts starting `broken.` one that refuses them.
#[cfg(test)]
pub(crate) mod fake {
    use std::collections::BTreeMap;
    use std::sync::{Mutex, MutexGuard, Once};

    use ::keyring::Error;
    use ::keyring::credential::{Credential, CredentialApi, CredentialBuilderApi};

    static SECRETS: Mutex<BTreeMap<String, Vec<u8>>> = Mutex::new(BTreeMap::new());

    fn secrets() -> MutexGuard<'static, BTreeMap<String, Vec<u8>>> {
        SECRETS.lock().unwrap_or_else(|e| e.into_inner())
    }

    struct Builder;

    impl CredentialBuilderApi for Builder {
        fn build(
            &self,
            _: Option<&str>,
            _: &str,
            user: &str,
        ) -> ::keyring::Result<Box<Credential>> {
            Ok(Box::new(Entry(user.to_string())))
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[derive(Debug)]
    struct Entry(String);

    impl Entry {
        fn reachable(&self) -> ::keyring::Result<()> {
            if self.0.starts_with("unavailable.") {
                Err(Error::NoStorageAccess(
                    "no Secret Service in this test".into(),
                ))
            } else if self.0.starts_with("broken.") {
                Err(Error::Invalid("user".into(), "refused in this test".into()))
            } else {
                Ok(())
            }
        }
    }

    impl CredentialApi for Entry {
        fn set_secret(&self, secret: &[u8]) -> ::keyring::Result<()> {
            self.reachable()?;
            secrets().insert(self.0.clone(), secret.to_vec());
            Ok(())
        }

        fn get_secret(&self) -> ::keyring::Result<Vec<u8>> {
            self.reachable()?;
            secrets().get(&self.0).cloned().ok_or(Error::NoEntry)
        }

        fn delete_credential(&self) -> ::keyring::Result<()> {
            self.reachable()?;
            secrets().remove(&self.0).map(drop).ok_or(Error::NoEntry)
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    /// Puts the fake in place of the OS keyring (once per process).
    pub(crate) fn install() {
        static ONCE: Once = Once::new();
        ONCE.call_once(|| ::keyring::set_default_credential_builder(Box::new(Builder)));
    }

    /// The secret the fake holds for a host.
    pub(crate) fn secret(host: &str) -> Option<String> {
        secrets()
            .get(host)
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }
}
