//! GitLab CI's Dependency Proxy variables as docker.io's team upstream, so a
//! job needs no config file: `CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX`
//! (`gitlab.example.com:443/my-group/dependency_proxy/containers`) gives the
//! upstream's host and repository prefix, `CI_DEPENDENCY_PROXY_SERVER`
//! (`gitlab.example.com:443`) must name the same host, and
//! `CI_DEPENDENCY_PROXY_USER` / `CI_DEPENDENCY_PROXY_PASSWORD` are the Basic
//! credentials for that host's token realm.
//!
//! Precedence: GitLab sets these in every job, a config file is a deliberate
//! choice, so a `[registries."docker.io"]` table with a `url` wins and the
//! variables are ignored. Otherwise they give docker.io's `url` and
//! `repository_prefix`; the table's `fallback` applies when it has one, else
//! Docker Hub itself is the fallback (the same images, so a job still pulls
//! when the Dependency Proxy is down; `fallback = []` turns that off).

use super::source::{CredentialSource, Credentials, Found, Listed};
use crate::config::{Config, DOCKER_HUB_URL, is_loopback_host};
use crate::reference::{DOCKER_HUB, HostKey, validate_repository};

pub const IMAGE_PREFIX: &str = "CI_DEPENDENCY_PROXY_GROUP_IMAGE_PREFIX";
pub const SERVER: &str = "CI_DEPENDENCY_PROXY_SERVER";
pub const USER: &str = "CI_DEPENDENCY_PROXY_USER";
pub const PASSWORD: &str = "CI_DEPENDENCY_PROXY_PASSWORD";

/// A variable that is set but unusable. Names the variable; shows the value
/// only of the prefix and server (never of the user or password).
#[derive(Debug, thiserror::Error)]
#[error(
    "{variable} {problem}; fix or unset it, or set [registries.\"docker.io\"] url in the config file \
     (which makes dpx ignore the CI_DEPENDENCY_PROXY_* variables)"
)]
pub struct EnvError {
    pub variable: &'static str,
    pub problem: String,
}

fn invalid(variable: &'static str, problem: impl Into<String>) -> EnvError {
    EnvError {
        variable,
        problem: problem.into(),
    }
}

/// The Dependency Proxy the variables describe.
#[derive(Debug, Clone)]
pub struct DependencyProxy {
    /// `https://HOST[:PORT]` (`http://` for a loopback host, as docker does).
    pub url: String,
    /// `my-group/dependency_proxy/containers`.
    pub repository_prefix: String,
    pub credentials: Option<Credentials>,
}

impl DependencyProxy {
    /// Reads the variables through `var` (unset and empty are the same).
    /// `Ok(None)` without an image prefix: no Dependency Proxy to use.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<DependencyProxy>, EnvError> {
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        let Some(prefix) = get(IMAGE_PREFIX) else {
            return Ok(None);
        };
        let prefix = prefix.trim();
        let (host, path) = match prefix.split_once('/') {
            Some((host, path)) => (host, path.trim_matches('/')),
            None => (prefix, ""),
        };
        if prefix.contains("://") {
            return Err(invalid(
                IMAGE_PREFIX,
                format!(
                    "({prefix:?}) must not have a scheme: write HOST[:PORT]/GROUP/dependency_proxy/containers"
                ),
            ));
        }
        let url = server_url(host).ok_or_else(|| {
            invalid(
                IMAGE_PREFIX,
                format!("({prefix:?}) does not start with a valid HOST[:PORT]"),
            )
        })?;
        if path.is_empty() {
            return Err(invalid(
                IMAGE_PREFIX,
                format!(
                    "({prefix:?}) has no path after the host: expected HOST[:PORT]/GROUP/dependency_proxy/containers"
                ),
            ));
        }
        if let Err(e) = validate_repository(path) {
            return Err(invalid(
                IMAGE_PREFIX,
                format!("({prefix:?}) has an invalid path: {e}"),
            ));
        }
        if let Some(server) = get(SERVER) {
            let server = server.trim();
            let same = server_url(server)
                .is_some_and(|s| HostKey::of_endpoint(&s) == HostKey::of_endpoint(&url));
            if !same {
                return Err(invalid(
                    SERVER,
                    format!(
                        "({server:?}) is not the host of {IMAGE_PREFIX} ({host:?}): \
                         they must name the same HOST[:PORT]"
                    ),
                ));
            }
        }
        let credentials = match (get(USER), get(PASSWORD)) {
            (Some(username), Some(password)) => Some(Credentials { username, password }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(invalid(
                    PASSWORD,
                    format!("is not set but {USER} is: set both or neither"),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    USER,
                    format!("is not set but {PASSWORD} is: set both or neither"),
                ));
            }
        };
        Ok(Some(DependencyProxy {
            url,
            repository_prefix: path.to_string(),
            credentials,
        }))
    }

    /// Reads the variables (through `var`) into `config` as docker.io's
    /// upstream, unless the config file gives docker.io a `url` (then they
    /// are not even read). `Ok(None)` when they don't apply.
    pub fn configure(
        config: &mut Config,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<DependencyProxy>, EnvError> {
        if file_names_docker_hub_url(config) {
            tracing::debug!(
                "the config file sets docker.io's url: CI_DEPENDENCY_PROXY_* variables are ignored"
            );
            return Ok(None);
        }
        let proxy = DependencyProxy::from_env(var)?;
        if let Some(p) = &proxy {
            p.apply(config);
        }
        Ok(proxy)
    }

    /// The key its credentials are kept under (`Upstream::host`).
    pub fn host(&self) -> String {
        HostKey::of_endpoint(&self.url).into_string()
    }

    /// `CI_DEPENDENCY_PROXY_USER`/`PASSWORD` as a credential source for the
    /// proxy's host alone; `None` when they are not set.
    pub fn credential_source(&self) -> Option<ProxyLogin> {
        Some(ProxyLogin {
            host: HostKey::of_endpoint(&self.url).folded().into_string(),
            credentials: self.credentials.clone()?,
        })
    }

    /// Makes this docker.io's first upstream in `config`, unless the config
    /// file gives docker.io a `url`. Returns whether it did.
    pub(crate) fn apply(&self, config: &mut Config) -> bool {
        if file_names_docker_hub_url(config) {
            return false;
        }
        let table = config.registries.entry(DOCKER_HUB.to_string()).or_default();
        table.url = Some(self.url.clone());
        table.repository_prefix = Some(self.repository_prefix.clone());
        if table.fallback.is_none() {
            table.fallback = Some(vec![DOCKER_HUB_URL.to_string()]);
        }
        true
    }
}

fn file_names_docker_hub_url(config: &Config) -> bool {
    config
        .registries
        .get(DOCKER_HUB)
        .is_some_and(|r| r.url.is_some())
}

/// `https://HOST[:PORT]` for a `HOST[:PORT]` (`http://` on loopback), if it is one.
fn server_url(host: &str) -> Option<String> {
    let plausible = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !plausible {
        return None;
    }
    let scheme = if is_loopback_host(host) {
        "http"
    } else {
        "https"
    };
    let url = format!("{scheme}://{host}");
    let parsed = url::Url::parse(&url).ok()?;
    (parsed.host_str().is_some() && parsed.path() == "/").then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SECRET: &str = "s3cr3t-ci-job-token";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn gitlab() -> Vec<(&'static str, &'static str)> {
        vec![
            (SERVER, "gitlab.example.com:443"),
            (
                IMAGE_PREFIX,
                "gitlab.example.com:443/my-group/dependency_proxy/containers",
            ),
            (USER, "gitlab-ci-token"),
            (PASSWORD, SECRET),
        ]
    }

    #[test]
    fn reads_gitlabs_variables() {
        let p = DependencyProxy::from_env(env(&gitlab())).unwrap().unwrap();
        assert_eq!(p.url, "https://gitlab.example.com:443");
        assert_eq!(p.host(), "gitlab.example.com");
        assert_eq!(p.repository_prefix, "my-group/dependency_proxy/containers");
        let c = p.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("gitlab-ci-token", SECRET)
        );

        // Loopback is plain HTTP, as docker has it; no credentials is fine.
        let p = DependencyProxy::from_env(env(&[(
            IMAGE_PREFIX,
            "127.0.0.1:8080/g/dependency_proxy/containers/",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(p.url, "http://127.0.0.1:8080");
        assert_eq!(p.repository_prefix, "g/dependency_proxy/containers");
        assert!(p.credentials.is_none());

        assert!(DependencyProxy::from_env(env(&[])).unwrap().is_none());
        let no_prefix = [(SERVER, "gitlab.example.com"), (IMAGE_PREFIX, "")];
        assert!(
            DependencyProxy::from_env(env(&no_prefix))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_values_name_the_variable_and_never_the_password() {
        let with = |var: &'static str, value: &'static str| {
            let mut e = gitlab();
            e.retain(|(k, _)| *k != var);
            if !value.is_empty() {
                e.push((var, value));
            }
            DependencyProxy::from_env(env(&e)).unwrap_err().to_string()
        };
        for (var, value, says) in [
            (
                IMAGE_PREFIX,
                "https://gitlab.example.com/g/dependency_proxy/containers",
                "scheme",
            ),
            (IMAGE_PREFIX, "gitlab.example.com:443", "no path"),
            (IMAGE_PREFIX, "gitlab.example.com:443/", "no path"),
            (
                IMAGE_PREFIX,
                "gitlab.example.com:443/My-Group/x",
                "lowercase",
            ),
            (
                IMAGE_PREFIX,
                "gitlab.example.com:443/g//x",
                "empty path component",
            ),
            (IMAGE_PREFIX, "user@gitlab.example.com/g", "HOST[:PORT]"),
            (IMAGE_PREFIX, "gitlab.example.com:port/g", "HOST[:PORT]"),
            (SERVER, "other.example.com:443", "same HOST[:PORT]"),
            (SERVER, "gitlab.example.com:8443", "same HOST[:PORT]"),
            (SERVER, "https://gitlab.example.com", "same HOST[:PORT]"),
            (PASSWORD, "", "set both or neither"),
        ] {
            let err = with(var, value);
            assert!(err.starts_with(var), "{var}: {err}");
            assert!(err.contains(says), "{var}={value}: {err}");
            assert!(!err.contains(SECRET), "{err}");
            assert!(err.contains("[registries.\"docker.io\"] url"), "{err}");
        }
        let err = with(USER, "");
        assert!(err.starts_with(USER) && !err.contains(SECRET), "{err}");
    }

    #[test]
    fn the_variables_become_docker_ios_upstream_unless_the_config_names_one() {
        let mut config = Config::default();
        let p = DependencyProxy::configure(&mut config, env(&gitlab()))
            .unwrap()
            .unwrap();
        let table = &config.registries[DOCKER_HUB];
        assert_eq!(table.url.as_deref(), Some("https://gitlab.example.com:443"));
        assert_eq!(
            table.repository_prefix.as_deref(),
            Some("my-group/dependency_proxy/containers")
        );
        assert_eq!(table.fallback, Some(vec![DOCKER_HUB_URL.to_string()]));
        // Now the config names docker.io's url: applying again changes nothing.
        assert!(!p.apply(&mut config));

        // A table without a url takes the proxy and keeps its own fallback.
        let mut config = Config::default();
        config
            .registries
            .entry(DOCKER_HUB.to_string())
            .or_default()
            .fallback = Some(vec![]);
        assert!(p.apply(&mut config));
        let table = &config.registries[DOCKER_HUB];
        assert_eq!(table.url.as_deref(), Some("https://gitlab.example.com:443"));
        assert_eq!(table.fallback, Some(vec![]));

        // A url in the config file wins: the variables are not even read.
        let mut config = Config::default();
        config
            .registries
            .entry(DOCKER_HUB.to_string())
            .or_default()
            .url = Some("https://mirror.example".into());
        let bad = [(IMAGE_PREFIX, "https://gitlab.example.com/g")];
        assert!(
            DependencyProxy::configure(&mut config, env(&bad))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            config.registries[DOCKER_HUB].url.as_deref(),
            Some("https://mirror.example")
        );
        // Without one, bad variables are an error and no variables nothing.
        assert!(DependencyProxy::configure(&mut Config::default(), env(&bad)).is_err());
        let mut config = Config::default();
        assert!(
            DependencyProxy::configure(&mut config, env(&[]))
                .unwrap()
                .is_none()
        );
        assert!(config.registries.is_empty());
    }

    #[test]
    fn the_proxy_login_is_for_the_proxys_host_alone() {
        let p = DependencyProxy::from_env(env(&gitlab())).unwrap().unwrap();
        let login = p.credential_source().unwrap();
        let found = login.lookup("gitlab.example.com").unwrap();
        assert_eq!(
            (
                found.registry.as_str(),
                found.credentials.username.as_str(),
                found.credentials.password.as_str(),
                found.source.as_str()
            ),
            (
                "gitlab.example.com",
                "gitlab-ci-token",
                SECRET,
                PROXY_LOGIN_SOURCE
            )
        );
        assert!(login.lookup("docker.io").is_none());
        let listed = crate::credentials::listed(&login);
        assert_eq!(
            listed,
            [(
                "gitlab.example.com".to_string(),
                Some("gitlab-ci-token".to_string()),
                PROXY_LOGIN_SOURCE.to_string()
            )]
        );
        let anonymous = [(
            IMAGE_PREFIX,
            "gitlab.example.com/g/dependency_proxy/containers",
        )];
        let p = DependencyProxy::from_env(env(&anonymous)).unwrap().unwrap();
        assert!(p.credential_source().is_none());
    }
}

/// GitLab CI's Dependency Proxy login, for its host only.
#[derive(Debug, Clone)]
pub struct ProxyLogin {
    host: String,
    credentials: Credentials,
}

const PROXY_LOGIN_SOURCE: &str = "env CI_DEPENDENCY_PROXY_USER/CI_DEPENDENCY_PROXY_PASSWORD";

impl CredentialSource for ProxyLogin {
    fn lookup(&self, key: &str) -> Option<Found> {
        (key == self.host).then(|| Found {
            registry: self.host.clone(),
            credentials: self.credentials.clone(),
            source: PROXY_LOGIN_SOURCE.to_string(),
        })
    }

    fn list(&self) -> Vec<Listed> {
        vec![Listed {
            registry: self.host.clone(),
            username: Some(self.credentials.username.clone()),
            source: PROXY_LOGIN_SOURCE.to_string(),
        }]
    }
}
