//! Where a logical registry's content is fetched from: an ordered list of
//! upstreams (a team tier such as GitLab's Dependency Proxy or a Harbor proxy
//! project first, then its fallbacks), each an API base URL and an optional
//! repository prefix, and which of them is in use.
//!
//! How retries and fallback compose, for one operation (a manifest HEAD or
//! GET, a blob download with its resumes, a tag list):
//! - the upstream in use gets the whole retry budget (`[network] retries`);
//! - when it still fails to answer (`RegistryError::is_upstream_failure`:
//!   unreachable, timeouts, 5xx, 429, a broken reply), the operation falls over
//!   to the next upstream with a fresh budget, and the registry stays switched
//!   there (one warning in the log per switch, not per request);
//! - an answer (404, 401/403, a refused login, a digest mismatch) is final:
//!   the next upstream is not asked;
//! - every `PROBE_INTERVAL` one operation first tries the preferred upstreams
//!   again, once each without retries, and the registry switches back when one
//!   answers.
//!
//! The cache never sees any of this: it keys content by the logical registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{RegistryError, RetryPolicy};
use crate::config::Config;
use crate::reference::HostKey;

/// How long a registry stays on a fallback before its preferred upstream is tried again.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(60);

/// One place a logical registry's repositories can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    url: String,
    prefix: Option<String>,
    host: String,
    /// The logical registry it serves (`docker.io`), set by the client that
    /// resolved it: what quota records and observers are told.
    registry: String,
}

impl Upstream {
    /// Where a registry is fetched from, in order: its `url` (or the default
    /// endpoint) under its `repository_prefix`, then each `fallback`.
    pub fn configured(config: &Config, host: &str) -> Vec<Upstream> {
        let table = config.registries.get(host);
        let prefix = table.and_then(|r| r.repository_prefix.as_deref());
        let mut upstreams = vec![Upstream::new(&config.registry_url(host), prefix)];
        let fallbacks = table
            .and_then(|r| r.fallback.as_deref())
            .unwrap_or_default();
        upstreams.extend(fallbacks.iter().map(|url| Upstream::new(url, None)));
        upstreams
    }

    /// `url` is the registry API's base (`https://gitlab.example.com`);
    /// `prefix` the path its repositories live under
    /// (`my-group/dependency_proxy/containers`). Surrounding slashes are dropped.
    pub fn new(url: &str, prefix: Option<&str>) -> Upstream {
        let url = url.trim_end_matches('/').to_string();
        let prefix = prefix
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(str::to_string);
        Upstream {
            host: HostKey::of_endpoint(&url).into_string(),
            url,
            prefix,
            registry: String::new(),
        }
    }

    /// This upstream as one of `registry`'s.
    pub fn serving(self, registry: &str) -> Upstream {
        Upstream {
            registry: registry.to_string(),
            ..self
        }
    }

    /// The logical registry it serves; empty when built outside a client.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn prefix(&self) -> Option<&str> {
        self.prefix.as_deref()
    }

    /// `host[:port]` of the URL, the port only when it is not the scheme's
    /// default: what tokens, credentials and quota figures are kept under.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The repository's name at this upstream: `library/alpine` ->
    /// `my-group/dependency_proxy/containers/library/alpine`.
    pub fn repository(&self, repo: &str) -> String {
        match &self.prefix {
            Some(p) => format!("{p}/{repo}"),
            None => repo.to_string(),
        }
    }

    /// `<url>/v2/<prefix>/<repo>/<kind>/<reference>`.
    pub fn api_url(&self, repo: &str, kind: &str, reference: &str) -> String {
        format!(
            "{}/v2/{}/{kind}/{reference}",
            self.url,
            self.repository(repo)
        )
    }
}

impl std::fmt::Display for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.prefix {
            Some(p) => write!(f, "{}/{p}", self.url),
            None => f.write_str(&self.url),
        }
    }
}

/// Which upstream each registry is on, shared by all operations of a client.
#[derive(Default)]
pub struct Failover {
    registries: Mutex<HashMap<String, InUse>>,
}

#[derive(Clone, Copy)]
struct InUse {
    index: usize,
    /// When to try the upstreams before `index` again.
    probe_at: Instant,
}

impl Failover {
    /// The index of the upstream `registry` is on (0 until one failed).
    pub fn in_use(&self, registry: &str) -> usize {
        self.registries
            .lock()
            .ok()
            .and_then(|r| r.get(registry).map(|u| u.index))
            .unwrap_or(0)
    }

    /// The attempts for one operation: `(index, probe)`, in order. A probe
    /// (an upstream before the one in use) is tried once, when one is due;
    /// claiming it pushes the next probe out, so concurrent operations don't all probe.
    fn plan(&self, registry: &str, upstreams: usize) -> Vec<(usize, bool)> {
        let Ok(mut registries) = self.registries.lock() else {
            return (0..upstreams).map(|i| (i, false)).collect();
        };
        let Some(state) = registries.get_mut(registry) else {
            return (0..upstreams).map(|i| (i, false)).collect();
        };
        let now = Instant::now();
        let probe = now >= state.probe_at;
        if probe {
            state.probe_at = now + PROBE_INTERVAL;
        }
        let first = if probe { 0 } else { state.index };
        (first..upstreams).map(|i| (i, i < state.index)).collect()
    }

    /// The operation found upstream `index` answering.
    fn reached(&self, registry: &str, upstreams: &[Upstream], index: usize) {
        let Ok(mut registries) = self.registries.lock() else {
            return;
        };
        let Some(state) = registries.get_mut(registry) else {
            return;
        };
        if index < state.index {
            let (back, from) = (upstreams.get(index), upstreams.get(state.index));
            if let (Some(back), Some(from)) = (back, from) {
                tracing::warn!("{registry}: {back} answers again; using it instead of {from}");
            }
            if index == 0 {
                registries.remove(registry);
            } else {
                state.index = index;
            }
        }
    }

    /// Upstream `index` failed to answer; the operation goes on to `next`.
    /// Warns when this switches the registry (once, whoever switches it).
    fn failed(
        &self,
        registry: &str,
        upstreams: &[Upstream],
        index: usize,
        next: usize,
        err: &RegistryError,
    ) {
        let Ok(mut registries) = self.registries.lock() else {
            return;
        };
        let state = registries.entry(registry.to_string()).or_insert(InUse {
            index: 0,
            probe_at: Instant::now(),
        });
        if state.index != index {
            tracing::debug!("{registry}: {err}; trying the next upstream");
            return;
        }
        state.index = next;
        state.probe_at = Instant::now() + PROBE_INTERVAL;
        if let (Some(down), Some(to)) = (upstreams.get(index), upstreams.get(next)) {
            tracing::warn!(
                "{registry}: upstream {down} failed ({err}); falling back to {to} \
                 (trying {down} again in {}s)",
                PROBE_INTERVAL.as_secs()
            );
        }
    }
}

/// One operation's way along a registry's upstreams: the upstream to use
/// now, its retry budget, and what to do when it fails.
pub struct Route {
    registry: String,
    upstreams: Arc<[Upstream]>,
    plan: Vec<(usize, bool)>,
    at: usize,
    policy: RetryPolicy,
    failover: Arc<Failover>,
}

impl Route {
    /// `None` when there is no upstream at all.
    pub(super) fn new(
        registry: &str,
        upstreams: Arc<[Upstream]>,
        policy: RetryPolicy,
        failover: Arc<Failover>,
    ) -> Option<Route> {
        if upstreams.is_empty() {
            return None;
        }
        let mut plan = failover.plan(registry, upstreams.len());
        if plan.is_empty() {
            // The registry's own state is stale (fewer upstreams than before): start over.
            plan = (0..upstreams.len()).map(|i| (i, false)).collect();
        }
        Some(Route {
            registry: registry.to_string(),
            upstreams,
            plan,
            at: 0,
            policy,
            failover,
        })
    }

    /// The upstream to send the operation's requests to now.
    pub fn upstream(&self) -> &Upstream {
        let index = self.plan.get(self.at).map_or(0, |(i, _)| *i);
        // `new` made sure there is at least one.
        &self.upstreams[index.min(self.upstreams.len().saturating_sub(1))]
    }

    /// The retry budget for the current upstream: the policy's, or none for a probe.
    pub fn retry_policy(&self) -> RetryPolicy {
        match self.plan.get(self.at) {
            Some((_, true)) => RetryPolicy {
                retries: 0,
                ..self.policy
            },
            _ => self.policy,
        }
    }

    /// After the current upstream's last try failed with `err`: whether to go
    /// on to the next upstream (with a fresh budget). An answer, or the last
    /// upstream failing too, ends the operation.
    pub fn fall_over(&mut self, err: &RegistryError) -> bool {
        if !err.is_upstream_failure() {
            self.reached();
            return false;
        }
        let (Some(&(index, _)), Some(&(next, _))) =
            (self.plan.get(self.at), self.plan.get(self.at + 1))
        else {
            return false;
        };
        self.failover
            .failed(&self.registry, &self.upstreams, index, next, err);
        self.at += 1;
        true
    }

    /// After the current upstream's last try: whether to go on to the next
    /// upstream (`fall_over`), or the operation ends with `result`.
    pub fn next_after<T>(&mut self, result: &Result<T, RegistryError>) -> bool {
        match result {
            Ok(_) => {
                self.reached();
                false
            }
            Err(e) => self.fall_over(e),
        }
    }

    /// The current upstream answered (a success or a final answer).
    pub fn reached(&self) {
        if let Some(&(index, _)) = self.plan.get(self.at) {
            self.failover
                .reached(&self.registry, &self.upstreams, index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::dependency_proxy;

    /// GitLab CI's Dependency Proxy variables, as a job has them.
    fn gitlab_env() -> impl Fn(&str) -> Option<String> {
        use crate::credentials::dependency_proxy::{IMAGE_PREFIX, PASSWORD, SERVER, USER};
        move |k| {
            let v = match k {
                SERVER => "gitlab.example.com:443",
                IMAGE_PREFIX => "gitlab.example.com:443/my-group/dependency_proxy/containers",
                USER => "gitlab-ci-token",
                PASSWORD => "s3cr3t-ci-job-token",
                _ => return None,
            };
            Some(v.to_string())
        }
    }

    // The Dependency Proxy's variables (credentials/) become upstreams here.
    #[test]
    fn the_config_file_wins_and_docker_hub_is_the_default_fallback() {
        let p = crate::credentials::dependency_proxy::DependencyProxy::from_env(gitlab_env())
            .unwrap()
            .unwrap();
        let mut config = Config::default();
        assert!(p.apply(&mut config));
        let ups = Upstream::configured(&config, "docker.io");
        assert_eq!(ups.len(), 2);
        assert_eq!(
            ups[0].api_url("library/alpine", "manifests", "latest"),
            "https://gitlab.example.com:443/v2/my-group/dependency_proxy/containers/library/alpine/manifests/latest"
        );
        assert_eq!(ups[1].url(), crate::config::DOCKER_HUB_URL);
        assert_eq!(ups[1].prefix(), None);
        // Other registries are untouched.
        assert_eq!(Upstream::configured(&config, "ghcr.io").len(), 1);

        let mut config =
            Config::parse("[registries.\"docker.io\"]\nurl = \"http://127.0.0.1:5001\"\n").unwrap();
        assert!(!p.apply(&mut config), "a url in the file wins");
        assert_eq!(
            Upstream::configured(&config, "docker.io")[0].url(),
            "http://127.0.0.1:5001"
        );
        assert_eq!(Upstream::configured(&config, "docker.io").len(), 1);

        let mut config = Config::parse("[registries.\"docker.io\"]\nfallback = []\n").unwrap();
        assert!(p.apply(&mut config));
        assert_eq!(
            Upstream::configured(&config, "docker.io").len(),
            1,
            "fallback turned off"
        );

        // Malformed variables are not even read when the file wins.
        let bad =
            |k: &str| (k == dependency_proxy::IMAGE_PREFIX).then(|| "https://nonsense".to_string());
        let mut config =
            Config::parse("[registries.\"docker.io\"]\nurl = \"https://r.example\"\n").unwrap();
        assert!(
            crate::credentials::dependency_proxy::DependencyProxy::configure(&mut config, bad)
                .unwrap()
                .is_none()
        );
        let mut config = Config::default();
        assert!(
            crate::credentials::dependency_proxy::DependencyProxy::configure(&mut config, bad)
                .is_err()
        );
        assert!(config.registries.is_empty(), "bad input changes nothing");
        let mut config = Config::default();
        assert!(
            crate::credentials::dependency_proxy::DependencyProxy::configure(
                &mut config,
                gitlab_env()
            )
            .unwrap()
            .is_some()
        );
        assert_eq!(
            Upstream::configured(&config, "docker.io")[0].host(),
            "gitlab.example.com"
        );
    }

    #[test]
    fn a_team_tier_with_a_prefix_and_fallbacks() {
        let cfg = Config::parse(
            "[registries.\"docker.io\"]\nurl = \"https://gitlab.example.com/\"\n\
             repository_prefix = \"/my-group/dependency_proxy/containers/\"\n\
             fallback = [\"https://registry-1.docker.io\", \"http://127.0.0.1:5002\"]\n\
             [registries.\"harbor.example.com\"]\nrepository_prefix = \"dockerhub-proxy\"\n",
        )
        .unwrap();
        let ups = Upstream::configured(&cfg, "docker.io");
        let shown: Vec<String> = ups.iter().map(|u| u.to_string()).collect();
        assert_eq!(
            shown,
            [
                "https://gitlab.example.com/my-group/dependency_proxy/containers",
                "https://registry-1.docker.io",
                "http://127.0.0.1:5002"
            ]
        );
        assert_eq!(
            ups[0].repository("library/alpine"),
            "my-group/dependency_proxy/containers/library/alpine"
        );
        assert_eq!(cfg.registry_url("docker.io"), "https://gitlab.example.com");
        let harbor = Upstream::configured(&cfg, "harbor.example.com");
        assert_eq!(
            harbor[0].api_url("library/alpine", "manifests", "3"),
            "https://harbor.example.com/v2/dockerhub-proxy/library/alpine/manifests/3"
        );
        assert_eq!(
            Upstream::configured(&Config::default(), "docker.io")[0].url(),
            crate::config::DOCKER_HUB_URL
        );
        assert_eq!(
            Upstream::configured(&Config::default(), "docker.io").len(),
            1
        );
    }

    fn down() -> RegistryError {
        RegistryError::Unreachable {
            url: "u".into(),
            reason: "connection refused".into(),
        }
    }

    fn not_found() -> RegistryError {
        RegistryError::NotFound {
            what: "x".into(),
            url: "u".into(),
        }
    }

    fn upstreams() -> Arc<[Upstream]> {
        Arc::from(vec![
            Upstream::new(
                "https://gitlab.example.com",
                Some("my-group/dependency_proxy/containers"),
            ),
            Upstream::new("https://registry-1.docker.io", None),
        ])
    }

    #[test]
    fn maps_repositories_under_the_prefix() {
        let team = Upstream::new(
            "https://gitlab.example.com:443/",
            Some("/my-group/dependency_proxy/containers/"),
        );
        assert_eq!(team.host(), "gitlab.example.com");
        assert_eq!(
            team.repository("library/alpine"),
            "my-group/dependency_proxy/containers/library/alpine"
        );
        assert_eq!(
            team.api_url("library/alpine", "manifests", "latest"),
            "https://gitlab.example.com:443/v2/my-group/dependency_proxy/containers/library/alpine/manifests/latest"
        );
        let harbor = Upstream::new("https://harbor.example.com", Some("dockerhub-proxy"));
        assert_eq!(
            harbor.api_url("library/alpine", "blobs", "sha256:ab"),
            "https://harbor.example.com/v2/dockerhub-proxy/library/alpine/blobs/sha256:ab"
        );
        let plain = Upstream::new("http://127.0.0.1:5001", Some("/"));
        assert_eq!(plain.prefix(), None);
        assert_eq!(plain.host(), "127.0.0.1:5001");
        assert_eq!(plain.repository("a/b"), "a/b");
        assert_eq!(plain.to_string(), "http://127.0.0.1:5001");
        assert_eq!(
            harbor.to_string(),
            "https://harbor.example.com/dockerhub-proxy"
        );
    }

    fn route(f: &Arc<Failover>) -> Route {
        Route::new(
            "docker.io",
            upstreams(),
            RetryPolicy::default(),
            Arc::clone(f),
        )
        .unwrap()
    }

    #[test]
    fn falls_over_on_failures_not_on_answers_and_stays_switched() {
        let f = Arc::new(Failover::default());
        let mut r = route(&f);
        assert_eq!(r.upstream().host(), "gitlab.example.com");
        assert!(!r.fall_over(&not_found()), "a 404 is an answer");
        let refused = RegistryError::LoginRefused {
            realm: "https://gitlab.example.com/jwt/auth".into(),
            host: "gitlab.example.com".into(),
            status: 401,
            message: "HTTP Basic: Access denied".into(),
        };
        assert!(!r.fall_over(&refused), "so is a refused login");
        assert_eq!(f.in_use("docker.io"), 0);

        let mut r = route(&f);
        assert!(r.fall_over(&down()));
        assert_eq!(r.upstream().host(), "registry-1.docker.io");
        assert_eq!(r.retry_policy().retries, RetryPolicy::default().retries);
        assert!(!r.fall_over(&down()), "nothing after the last");
        assert_eq!(f.in_use("docker.io"), 1);

        // The next operation starts on the fallback, without a probe (not due).
        let r = route(&f);
        assert_eq!(r.upstream().host(), "registry-1.docker.io");
        r.reached();
        assert_eq!(f.in_use("docker.io"), 1);
    }

    #[test]
    fn a_due_probe_tries_the_preferred_upstream_once_and_switches_back() {
        let f = Arc::new(Failover::default());
        let mut r = route(&f);
        assert!(r.fall_over(&down()));
        // Make the probe due now.
        if let Ok(mut regs) = f.registries.lock() {
            regs.get_mut("docker.io").unwrap().probe_at = Instant::now();
        }
        let mut r = route(&f);
        assert_eq!(r.upstream().host(), "gitlab.example.com");
        assert_eq!(r.retry_policy().retries, 0, "a probe is one try");
        // Another operation meanwhile does not probe too.
        assert_eq!(route(&f).upstream().host(), "registry-1.docker.io");
        assert!(r.fall_over(&down()), "still down: on to the fallback");
        assert_eq!(f.in_use("docker.io"), 1);

        if let Ok(mut regs) = f.registries.lock() {
            regs.get_mut("docker.io").unwrap().probe_at = Instant::now();
        }
        let mut r = route(&f);
        assert!(!r.fall_over(&not_found()), "it answers again");
        assert_eq!(f.in_use("docker.io"), 0);
        assert_eq!(route(&f).upstream().host(), "gitlab.example.com");
    }
}
