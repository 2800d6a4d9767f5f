//! One module per subcommand: flags -> library calls -> rendering.

pub mod cache;
pub mod config_edit;
pub mod config_show;
pub mod daemon;
pub mod docs;
pub mod doctor;
pub mod env;
pub mod export;
pub mod import;
pub mod login;
pub mod prefetch;
pub mod pull;
pub mod pulling;
pub mod purge;
pub mod quota_report;
pub mod ratelimit;
pub mod ratelimit_cached;
pub mod serve;
pub mod setup;
pub mod stats;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;

use crate::cache::Cache;
use crate::cli::GlobalArgs;
use crate::config::Config;
use crate::credentials::dependency_proxy::DependencyProxy;
use crate::credentials::{Resolver, StoreKind};
use crate::fetch::quota::ProbeBackoff;
use crate::fetch::{Fetcher, Limits, PullPolicy};
use crate::registry::{CredentialLookup, LowSpeedLimit, RegistryClient, RetryPolicy, Upstream};

/// How results are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Human,
    Quiet,
    Json,
}

/// What every command needs: the merged configuration and the output mode.
pub struct Context {
    pub config: Arc<Config>,
    pub cache_dir: PathBuf,
    pub output: Output,
    /// GitLab CI's Dependency Proxy, when its variables made it docker.io's upstream.
    pub dependency_proxy: Option<DependencyProxy>,
}

impl Context {
    pub fn new(global: &GlobalArgs) -> anyhow::Result<Context> {
        let mut config = Config::load(global.config.as_deref())?;
        let dependency_proxy = dependency_proxy_from_env(&mut config)?;
        let cache_dir = config.cache_dir(global.cache_dir.as_deref())?;
        let output = if global.json {
            Output::Json
        } else if global.quiet {
            Output::Quiet
        } else {
            Output::Human
        };
        Ok(Context {
            config: Arc::new(config),
            cache_dir,
            output,
            dependency_proxy,
        })
    }

    /// Opens the cache as one of its users (shared), waiting up to
    /// `[cache] lock_timeout` for a whole-cache operation of another process.
    pub fn open_cache(&self) -> anyhow::Result<Cache> {
        Ok(Cache::open_with(
            &self.cache_dir,
            crate::cache::Access::Shared,
            self.config.lock_timeout(),
        )?)
    }

    /// The pull-through service over this context's cache and registries,
    /// retrying `default_retries` times unless the config file says otherwise,
    /// spending the pull quota as `policy` says.
    pub fn fetcher_with(
        &self,
        default_retries: u32,
        policy: PullPolicy,
    ) -> anyhow::Result<Arc<Fetcher>> {
        let client = self.registry_client(default_retries, false)?;
        self.fetcher_over(client, policy)
    }

    /// `dpx serve`'s pull-through service (one retry unless configured): registries
    /// that clients name and the config file does not are reached at public
    /// addresses only (see `registry::address`).
    pub fn serve_fetcher(&self, policy: PullPolicy) -> anyhow::Result<Arc<Fetcher>> {
        let trusted = self
            .config
            .registries
            .keys()
            .cloned()
            .chain([crate::reference::DOCKER_HUB.to_string()]);
        let client = self
            .registry_client(1, false)?
            .public_only_except(trusted)
            .context("cannot set up the registry client")?;
        self.fetcher_over(client, policy)
    }

    fn fetcher_over(
        &self,
        client: RegistryClient,
        policy: PullPolicy,
    ) -> anyhow::Result<Arc<Fetcher>> {
        let cache = self.open_cache()?;
        let limits = Limits {
            max_blob_size: self.config.max_blob_size(),
            lock_timeout: self.config.lock_timeout(),
        };
        let policy = PullPolicy {
            probe: ProbeBackoff::from_config(&self.config.ratelimit),
            ..policy
        };
        Ok(Fetcher::with_policy(cache, client, limits, policy))
    }

    /// The upstream client over the configured registries, retrying
    /// `default_retries` times unless the config file says otherwise.
    /// `anonymous`: no credentials are attached, whatever is stored.
    pub fn registry_client(
        &self,
        default_retries: u32,
        anonymous: bool,
    ) -> anyhow::Result<RegistryClient> {
        let config = Arc::clone(&self.config);
        let client = RegistryClient::new(
            Arc::new(move |host: &str| Upstream::configured(&config, host)),
            RetryPolicy::from_config(&self.config.network, default_retries),
            LowSpeedLimit::from_config(&self.config.network),
        )
        .context("cannot set up the registry client")?;
        Ok(if anonymous {
            client
        } else {
            client.with_credential_lookup(self.credential_lookup())
        })
    }

    /// The directory of dpx's credential file; `None` without a home.
    pub fn credentials_dir(&self) -> Option<PathBuf> {
        self.config.credentials_dir().ok()
    }

    /// Every credential source in order of precedence (see `credentials`),
    /// GitLab CI's Dependency Proxy login second.
    pub fn credential_sources(&self) -> CredentialSources {
        CredentialSources {
            config_dir: self.credentials_dir(),
            store: self.config.credentials.store.map(StoreKind::from),
            proxy: self
                .dependency_proxy
                .as_ref()
                .and_then(DependencyProxy::credential_source),
        }
    }

    /// A lookup that builds the resolver on its first use (on the client's
    /// blocking thread), so a pull that meets no challenge reads nothing.
    fn credential_lookup(&self) -> CredentialLookup {
        let sources = self.credential_sources();
        let resolver = OnceLock::new();
        Arc::new(move |host: &str| resolver.get_or_init(|| sources.resolver()).lookup(host))
    }
}

/// Where credentials may come from, for building a `Resolver` off the runtime.
pub struct CredentialSources {
    config_dir: Option<PathBuf>,
    store: Option<StoreKind>,
    proxy: Option<crate::credentials::dependency_proxy::ProxyLogin>,
}

impl CredentialSources {
    /// dpx's credential file, where `dpx login` stores (`None` without a home).
    pub fn store_file(&self) -> Option<PathBuf> {
        self.config_dir.as_deref().map(|d| {
            crate::credentials::Store::new(d, self.store)
                .file_path()
                .to_path_buf()
        })
    }

    /// Reads files (dpx's store index, Docker's config): call it off the runtime.
    pub fn resolver(&self) -> Resolver {
        let mut resolver = Resolver::standard(self.config_dir.as_deref(), self.store);
        if let Some(login) = &self.proxy {
            resolver.insert(1, Box::new(login.clone()));
        }
        resolver
    }
}

/// docker.io's team upstream from GitLab CI's variables, unless the config
/// file names docker.io's upstream itself (see `dependency_proxy`).
fn dependency_proxy_from_env(config: &mut Config) -> anyhow::Result<Option<DependencyProxy>> {
    let found = DependencyProxy::configure(config, |name| std::env::var(name).ok())
        .map_err(|e| crate::exit::UsageError(e.to_string()))?;
    let Some(proxy) = found else {
        return Ok(None);
    };
    tracing::debug!(
        "docker.io through GitLab's Dependency Proxy at {}/{}",
        proxy.url,
        proxy.repository_prefix
    );
    Ok(Some(proxy))
}

/// How blocking work started by [`run_blocking`] ended.
pub enum Finished<T> {
    Done(T),
    /// Ctrl-C or SIGTERM (the exit code for it): the work saw its cancel
    /// flag and cleaned up after itself.
    Interrupted(u8),
}

/// Runs one blocking operation (disk work) on a blocking thread. Ctrl-C (or SIGTERM) sets
/// the flag it is given and waits for it to stop, so its temp files are gone
/// before the process exits.
pub async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce(&AtomicBool) -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<Finished<T>> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&cancel);
    let mut task = tokio::task::spawn_blocking(move || work(&flag));
    tokio::select! {
        result = &mut task => Ok(Finished::Done(result.context("the worker thread failed")??)),
        code = crate::interrupt::stop_signal() => {
            cancel.store(true, Ordering::Relaxed);
            let _ = task.await;
            Ok(Finished::Interrupted(code))
        }
    }
}
