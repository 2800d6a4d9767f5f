//! Configuration: built-in defaults < TOML file < environment < flags.
//! Paths follow the platform's conventions through `directories`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::reference::DOCKER_HUB;

pub mod keys;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
/// The client-access user whose password dpx generates (`[serve.auth]`).
pub const DPX_USER: &str = "dpx";
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 16 * 1024 * 1024 * 1024;
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);
pub const DOCKER_HUB_URL: &str = "https://registry-1.docker.io";
/// A body slower than this many bytes per second for `DEFAULT_LOW_SPEED_TIME` fails.
pub const DEFAULT_LOW_SPEED_LIMIT: u64 = 1024;
pub const DEFAULT_LOW_SPEED_TIME: Duration = Duration::from_secs(30);
/// After a 429, the first wait before a free check whether quota is back.
pub const DEFAULT_PROBE_INTERVAL: Duration = Duration::from_secs(30);
pub const DEFAULT_PROBE_INTERVAL_MAX: Duration = Duration::from_secs(5 * 60);
/// How long a token for a dpx client (`[serve.auth]`) is valid.
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Says where and what, never the value: a config file can hold secrets.
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error(
        "cannot find a home directory for the default cache and config paths; pass --cache-dir and --config"
    )]
    NoHome,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
    #[serde(default)]
    pub cache: CacheConfig,
    #[serde(default)]
    pub serve: ServeConfig,
    #[serde(default)]
    pub network: NetworkConfig,
    #[serde(default)]
    pub ratelimit: RatelimitConfig,
    #[serde(default)]
    pub credentials: CredentialsConfig,
    /// The file this config came from (or would have): its directory holds
    /// dpx's own secrets (`Config::config_dir`).
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

/// How much of the upstream pull quota dpx may spend (`fetch::quota`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatelimitConfig {
    /// At or below this many remaining pulls, `dpx serve` answers cached
    /// tags from the cache instead of spending a pull, and prefetch stops.
    pub reserve: Option<u64>,
    /// After a 429, how long until the first free check whether quota is
    /// back (a manifest HEAD); it doubles after each check that finds none.
    #[serde(default, with = "crate::units::serde_duration")]
    pub probe_interval: Option<Duration>,
    /// The longest wait between two such checks.
    #[serde(default, with = "crate::units::serde_duration")]
    pub probe_interval_max: Option<Duration>,
}

/// `[credentials]`: where `dpx login` keeps secrets.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// `"keyring"` or `"file"`; unset: the OS keyring when reachable, else the file.
    pub store: Option<CredentialStore>,
    /// The directory of dpx's credential file (an absolute path); unset: the
    /// platform's config directory, whichever config file is read.
    pub dir: Option<PathBuf>,
}

/// `[credentials] store` as written (`credentials::StoreKind` is built from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialStore {
    Keyring,
    File,
}

impl CredentialStore {
    /// As the file spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialStore::Keyring => "keyring",
            CredentialStore::File => "file",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the registry API for this host, e.g. `http://127.0.0.1:5001`.
    #[serde(default, deserialize_with = "url_with_scheme")]
    pub url: Option<String>,
    /// The path inside `url` this registry's repositories live under: a team
    /// tier such as GitLab's `GROUP/dependency_proxy/containers` or a Harbor
    /// proxy project. The cache still names them as this registry's.
    #[serde(default, deserialize_with = "prefix_of_repositories")]
    pub repository_prefix: Option<String>,
    /// Upstreams (URLs) tried in order when the ones before fail to answer
    /// (unreachable, 5xx, 429 after the retries); not when they answer no.
    #[serde(default, deserialize_with = "urls_with_scheme")]
    pub fallback: Option<Vec<String>>,
}

/// A `url` must say http:// or https://; `127.0.0.1:5000` alone would only fail at run time.
fn url_with_scheme<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let url = String::deserialize(d)?;
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(Some(url))
    } else {
        Err(serde::de::Error::custom(
            "a registry url needs its scheme: write url = 'http://HOST:PORT' for a plain-HTTP \
             registry or url = 'https://HOST'",
        ))
    }
}

fn has_scheme(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

fn urls_with_scheme<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    let urls = Vec::<String>::deserialize(d)?;
    if urls.iter().all(|u| has_scheme(u)) {
        Ok(Some(urls))
    } else {
        Err(serde::de::Error::custom(
            "each fallback is a registry URL with its scheme, e.g. \
             fallback = ['https://registry-1.docker.io']",
        ))
    }
}

/// A repository prefix is repository path components (`my-group/dependency_proxy/containers`).
fn prefix_of_repositories<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<String>, D::Error> {
    let prefix = String::deserialize(d)?;
    let trimmed = prefix.trim_matches('/');
    crate::reference::validate_repository(trimmed).map_err(|_| {
        serde::de::Error::custom(
            "a repository_prefix is lowercase path components joined by '/', e.g. \
             'my-group/dependency_proxy/containers' or 'dockerhub-proxy'",
        )
    })?;
    Ok(Some(trimmed.to_string()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub dir: Option<PathBuf>,
    /// How long a cached tag is served without asking upstream.
    #[serde(default, with = "crate::units::serde_duration")]
    pub tag_ttl: Option<Duration>,
    /// The largest blob accepted when neither a manifest nor the upstream says its size.
    #[serde(default, with = "crate::units::serde_size")]
    pub max_blob_size: Option<u64>,
    /// How long to wait for another dpx process that makes no progress on a
    /// download or manifest fetch we need too.
    #[serde(default, with = "crate::units::serde_duration")]
    pub lock_timeout: Option<Duration>,
    /// `dpx serve` evicts least recently used content beyond this size.
    #[serde(default, with = "crate::units::serde_size")]
    pub max_size: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<String>,
    /// Open client connections at most; beyond it a new client gets a 503.
    pub max_connections: Option<usize>,
    /// How long a client may take to send a request's headers.
    #[serde(default, with = "crate::units::serde_duration")]
    pub header_timeout: Option<Duration>,
    /// How long a connection may sit idle between requests.
    #[serde(default, with = "crate::units::serde_duration")]
    pub connection_idle_timeout: Option<Duration>,
    /// How long a response may make no progress (a client that stops reading)
    /// before its connection is closed.
    #[serde(default, with = "crate::units::serde_duration")]
    pub send_timeout: Option<Duration>,
    /// `dpx serve` stops after this long without a request ("0": never);
    /// unset, a foreground serve never does and a daemon after 30 minutes.
    #[serde(default, with = "crate::units::serde_duration")]
    pub idle_timeout: Option<Duration>,
    /// When set, the only upstream hosts `dpx serve` contacts (prefix mode, `?ns=`).
    pub registries: Option<Vec<String>>,
    /// PEM certificate chain and private key: `dpx serve` speaks HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Answering an image manifest fetched from upstream starts fetching
    /// its config and layers (`fetch::prefetch`).
    pub prefetch_blobs: Option<bool>,
    /// Client authentication (`[serve.auth]`).
    #[serde(default)]
    pub auth: ServeAuthConfig,
}

/// Who may pull from `dpx serve`: Bearer tokens for dpx users.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeAuthConfig {
    /// Off by default (`dpx serve --auth` turns it on for one run).
    pub enabled: Option<bool>,
    /// Extra users: name = Argon2 PHC hash (`dpx serve --hash-password`).
    /// The user `dpx` is dpx's own, with a generated password.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// How long a token is valid.
    #[serde(default, with = "crate::units::serde_duration")]
    pub token_lifetime: Option<Duration>,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECTION_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);
/// Whether `dpx serve` prefetches an image's blobs when it answers its manifest.
/// On: with a hub whose streams are paced as over a real link (bench/run's
/// workload 1b, 50 MB/s per stream, 40 ms), a 6-layer 503 MB cold pull by a
/// client fetching 3 layers at a time took 1.98 s with it against 3.64 s
/// without (direct 3.62 s). On bench/run's loopback hub, where the two cores
/// and not the round trips bound a pull, it neither paid nor cost (1.19 s
/// against 1.18 s).
pub const DEFAULT_PREFETCH_BLOBS: bool = true;
/// How long an auto-started daemon waits for a request before it stops.
pub const DEFAULT_DAEMON_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

impl ServeConfig {
    pub fn max_connections(&self) -> usize {
        self.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS)
    }

    pub fn header_timeout(&self) -> Duration {
        self.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT)
    }

    pub fn connection_idle_timeout(&self) -> Duration {
        self.connection_idle_timeout
            .unwrap_or(DEFAULT_CONNECTION_IDLE_TIMEOUT)
    }

    pub fn send_timeout(&self) -> Duration {
        self.send_timeout.unwrap_or(DEFAULT_SEND_TIMEOUT)
    }

    pub fn prefetch_blobs(&self) -> bool {
        self.prefetch_blobs.unwrap_or(DEFAULT_PREFETCH_BLOBS)
    }

    /// How long serve may go without a request before it stops: `None` is
    /// never. A daemon stops after 30 minutes unless the config says otherwise.
    pub fn idle_timeout(&self, daemon: bool) -> Option<Duration> {
        match self.idle_timeout {
            Some(Duration::ZERO) => None,
            Some(t) => Some(t),
            None if daemon => Some(DEFAULT_DAEMON_IDLE_TIMEOUT),
            None => None,
        }
    }
}

/// How hard dpx tries with a slow or failing upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Tries after the first for one manifest or blob (a resumed download included).
    pub retries: Option<u32>,
    /// A body slower than this for `low_speed_time` fails ("0" turns the check off).
    #[serde(default, with = "crate::units::serde_size")]
    pub low_speed_limit: Option<u64>,
    #[serde(default, with = "crate::units::serde_duration")]
    pub low_speed_time: Option<Duration>,
}

impl NetworkConfig {
    /// Tries after the first: `retries`, else the command's default.
    pub fn retries(&self, default_retries: u32) -> u32 {
        self.retries.unwrap_or(default_retries)
    }

    /// Bytes per second ("0": the check is off).
    pub fn low_speed_limit(&self) -> u64 {
        self.low_speed_limit.unwrap_or(DEFAULT_LOW_SPEED_LIMIT)
    }

    pub fn low_speed_time(&self) -> Duration {
        self.low_speed_time.unwrap_or(DEFAULT_LOW_SPEED_TIME)
    }
}

impl RatelimitConfig {
    /// The first and the longest wait between quota probes after a 429;
    /// the longest is never shorter than the first.
    pub fn probe_intervals(&self) -> (Duration, Duration) {
        let start = self.probe_interval.unwrap_or(DEFAULT_PROBE_INTERVAL);
        let max = self
            .probe_interval_max
            .unwrap_or(DEFAULT_PROBE_INTERVAL_MAX);
        (start, max.max(start))
    }
}

impl Config {
    /// Loads `path` if given (it must exist), else the default config file if present.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => match default_config_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(Config::default()),
            },
        };
        let text =
            crate::operator_files::read_to_string(&path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
        let mut config = Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.clone(),
            message,
        })?;
        config.path = Some(path);
        Ok(config)
    }

    /// dpx's config directory: the one holding the config file in use
    /// (`--config`), else the platform's.
    pub fn config_dir(&self) -> Result<PathBuf, ConfigError> {
        match self.path.as_deref().map(Path::parent) {
            Some(Some(dir)) if !dir.as_os_str().is_empty() => Ok(dir.to_path_buf()),
            Some(_) => Ok(PathBuf::from(".")),
            None => project_dirs()
                .map(|d| d.config_dir().to_path_buf())
                .ok_or(ConfigError::NoHome),
        }
    }

    /// Parses config text; the error names the key, line and column, never a value.
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        if config.serve.header_timeout == Some(Duration::ZERO)
            || config.serve.connection_idle_timeout == Some(Duration::ZERO)
            || config.serve.send_timeout == Some(Duration::ZERO)
        {
            return Err(
                "[serve] header_timeout, connection_idle_timeout and send_timeout must be longer than 0"
                    .into(),
            );
        }
        if config
            .serve
            .auth
            .token_lifetime
            .is_some_and(|t| t < Duration::from_secs(1))
        {
            return Err("[serve.auth] token_lifetime must be at least 1s".into());
        }
        if config.serve.tls_cert.is_some() != config.serve.tls_key.is_some() {
            return Err("[serve] tls_cert and tls_key go together: set both, or neither".into());
        }
        if config
            .credentials
            .dir
            .as_deref()
            .is_some_and(|d| !d.is_absolute())
        {
            return Err(
                "[credentials] dir must be an absolute path, e.g. dir = '/home/me/.config/dpx'"
                    .into(),
            );
        }
        if config.serve.max_connections == Some(0) {
            return Err(
                "[serve] max_connections must be at least 1 (it caps open client connections)"
                    .into(),
            );
        }
        Ok(config)
    }

    /// The API base URL for a registry host: the configured `url`, Docker Hub's
    /// real endpoint for `docker.io`, `http://HOST` for a loopback host (as
    /// docker does), else `https://HOST`.
    pub fn registry_url(&self, host: &str) -> String {
        if let Some(url) = self.registries.get(host).and_then(|r| r.url.as_deref()) {
            return url.trim_end_matches('/').to_string();
        }
        if host == DOCKER_HUB {
            DOCKER_HUB_URL.to_string()
        } else if is_loopback_host(host) {
            format!("http://{host}")
        } else {
            format!("https://{host}")
        }
    }

    pub fn tag_ttl(&self) -> Duration {
        self.cache.tag_ttl.unwrap_or(DEFAULT_TAG_TTL)
    }

    pub fn max_blob_size(&self) -> u64 {
        self.cache.max_blob_size.unwrap_or(DEFAULT_MAX_BLOB_SIZE)
    }

    pub fn lock_timeout(&self) -> Duration {
        self.cache.lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT)
    }

    /// The cache directory: flag/env first, then the config file, then the platform default.
    pub fn cache_dir(&self, flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
        if let Some(p) = flag.or(self.cache.dir.as_deref()) {
            return Ok(p.to_path_buf());
        }
        project_dirs()
            .map(|d| d.cache_dir().to_path_buf())
            .ok_or(ConfigError::NoHome)
    }
}

/// `localhost`, `127.x.x.x` or `::1`, with or without a port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// `line L, column C: key K: what is wrong`, from a TOML error, without the
/// source excerpt toml prints (it would echo a password on that line).
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = redact_values(e.message());
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before
        .get(line_start..)
        .map_or(1, |s| s.chars().count() + 1);
    match key_at(text, line) {
        Some(key) => format!("line {line}, column {column}: {key}: {message}"),
        None => format!("line {line}, column {column}: {message}"),
    }
}

/// The dotted key assigned on a line (`[table] key`), if the line is `key = ...`.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let this = lines.get(line.checked_sub(1)?)?.trim();
    if !starts_statement(&lines, line) {
        return None;
    }
    if this.starts_with('[') {
        return Some(
            this.split(']')
                .next()?
                .trim_start_matches('[')
                .trim()
                .to_string(),
        )
        .map(|t| format!("[{t}]"));
    }
    let key = this.split_once('=')?.0.trim();
    if key.is_empty() {
        return None;
    }
    let table = (1..line)
        .rev()
        .map(|n| (n, lines[n - 1].trim()))
        .find(|&(n, l)| l.starts_with('[') && starts_statement(&lines, n))
        .map(|(_, l)| {
            l.trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string()
        });
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

/// Whether line `n` (from 1) begins a statement: the text before it parses on
/// its own. A line inside a multi-line string or array continues a value,
/// and its text, however much it looks like `key = ...` or `[table]`, is no
/// key to name.
fn starts_statement(lines: &[&str], n: usize) -> bool {
    let before = lines.get(..n.saturating_sub(1)).unwrap_or(lines).join("\n");
    before.parse::<toml_edit::DocumentMut>().is_ok()
}

/// Replaces what serde quotes of a value (`"…"`, and `integer `5`` and the
/// like) so that no part of a value reaches the terminal; keys stay.
fn redact_values(message: &str) -> String {
    let mut out = String::new();
    let mut rest = message;
    while let Some(i) = rest.find('"') {
        out.push_str(&rest[..i]);
        match rest[i + 1..].find('"') {
            Some(j) => {
                out.push_str("\"…\"");
                rest = &rest[i + 1 + j + 1..];
            }
            None => {
                out.push('"');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    for kind in [
        "integer `",
        "float `",
        "character `",
        "boolean `",
        "unknown variant `",
    ] {
        while let Some(i) = out.find(kind) {
            let start = i + kind.len();
            let Some(len) = out[start..].find('`') else {
                break;
            };
            out.replace_range(i..start + len + 1, &format!("{}…", &kind[..kind.len() - 1]));
        }
    }
    out
}

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "dpx")
}

impl Config {
    /// Where dpx's credential file lives: `[credentials] dir`, else the
    /// platform's config directory (e.g. ~/.config/dpx), the same whichever
    /// config file (`--config`) is read, so a login is found by every command.
    pub fn credentials_dir(&self) -> Result<PathBuf, ConfigError> {
        if let Some(dir) = &self.credentials.dir {
            return Ok(dir.clone());
        }
        project_dirs()
            .map(|d| d.config_dir().to_path_buf())
            .ok_or(ConfigError::NoHome)
    }
}

pub fn default_config_path() -> Option<PathBuf> {
    project_dirs().map(|d| d.config_dir().join("config.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_keys() {
        let cfg: Config = toml::from_str(
            r#"
            [registries."docker.io"]
            url = "http://127.0.0.1:5001/"
            [cache]
            tag_ttl = "30s"
            max_blob_size = "1GiB"
            lock_timeout = "2m"
            [serve]
            listen = "127.0.0.1:6000"
            [network]
            retries = 5
            low_speed_limit = "10KiB"
            low_speed_time = "1m"
            "#,
        )
        .unwrap();
        assert_eq!(cfg.registry_url("docker.io"), "http://127.0.0.1:5001");
        assert_eq!(cfg.registry_url("ghcr.io"), "https://ghcr.io");
        assert_eq!(cfg.tag_ttl(), Duration::from_secs(30));
        assert_eq!(cfg.serve.listen.as_deref(), Some("127.0.0.1:6000"));
        assert_eq!(Config::default().registry_url("docker.io"), DOCKER_HUB_URL);
        assert_eq!(Config::default().tag_ttl(), DEFAULT_TAG_TTL);
        assert_eq!(cfg.network.retries(1), 5);
        assert_eq!(
            (cfg.network.low_speed_limit(), cfg.network.low_speed_time()),
            (10 * 1024, Duration::from_secs(60))
        );
        assert_eq!(Config::default().network.retries(1), 1);
        assert_eq!(
            (
                Config::default().network.low_speed_limit(),
                Config::default().network.low_speed_time()
            ),
            (DEFAULT_LOW_SPEED_LIMIT, DEFAULT_LOW_SPEED_TIME)
        );
        assert_eq!(cfg.max_blob_size(), 1024 * 1024 * 1024);
        assert_eq!(cfg.lock_timeout(), Duration::from_secs(120));
        assert_eq!(Config::default().max_blob_size(), DEFAULT_MAX_BLOB_SIZE);
    }

    #[test]
    fn loopback_registries_use_plain_http() {
        let cfg = Config::default();
        for host in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "localhost",
        ] {
            assert_eq!(cfg.registry_url(host), format!("http://{host}"), "{host}");
        }
        for host in [
            "ghcr.io",
            "10.0.0.1:5000",
            "localhost.example.com:5000",
            "[::2]:1",
        ] {
            assert_eq!(cfg.registry_url(host), format!("https://{host}"), "{host}");
        }
        let cfg =
            Config::parse("[registries.\"localhost:5000\"]\nurl = \"https://localhost:5000\"\n")
                .unwrap();
        assert_eq!(cfg.registry_url("localhost:5000"), "https://localhost:5000");
    }

    #[test]
    fn bad_prefixes_and_fallbacks_say_what_to_write() {
        let err = Config::parse("[registries.\"docker.io\"]\nrepository_prefix = \"My Group\"\n")
            .unwrap_err();
        assert!(err.contains("repository_prefix"), "{err}");
        assert!(err.contains("'dockerhub-proxy'"), "{err}");
        assert!(!err.contains("My Group"), "{err}");
        let err =
            Config::parse("[registries.\"docker.io\"]\nfallback = [\"registry-1.docker.io\"]\n")
                .unwrap_err();
        assert!(err.contains("fallback"), "{err}");
        assert!(err.contains("'https://registry-1.docker.io'"), "{err}");
        assert!(Config::parse("[registries.\"docker.io\"]\nfallback = \"https://x\"\n").is_err());
    }

    #[test]
    fn a_url_without_scheme_is_an_error_that_says_what_to_write() {
        let err =
            Config::parse("[registries.\"docker.io\"]\nurl = \"127.0.0.1:5000\"\n").unwrap_err();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("registries.\"docker.io\".url"), "{err}");
        assert!(err.contains("url = 'http://HOST:PORT'"), "{err}");
        assert!(!err.contains("127.0.0.1:5000"), "{err}");
    }

    #[test]
    fn errors_never_echo_values() {
        let secret = "hunter2-s3cret";
        for text in [
            format!("[registries.\"docker.io\"]\nurl = \"https://r\"\npassword = \"{secret}\"\n"),
            format!("[cache]\ntag_ttl = \"{secret}\"\n"),
            format!("[serve]\nlisten = [\"{secret}\"]\n"),
            format!("[serve]\nmax_connections = \"{secret}\"\n"),
            format!("[cache]\ndir = \"{secret}\"\ndir = \"{secret}\"\n"),
            format!("password = \"{secret}\n"),
            "[serve]\nlisten = 123454321\n".to_string(),
        ] {
            let err = Config::parse(&text).unwrap_err();
            assert!(!err.contains(secret) && !err.contains("123454321"), "{err}");
            assert!(err.contains("line "), "{err}");
        }
        let err =
            Config::parse("[registries.\"docker.io\"]\nurl = \"https://r\"\npassword = \"x\"\n")
                .unwrap_err();
        assert!(
            err.contains("line 3, column 1: registries.\"docker.io\".password"),
            "{err}"
        );
        assert!(err.contains("unknown field `password`"), "{err}");
    }

    #[test]
    fn serve_limits_have_defaults_and_are_configurable() {
        let cfg = Config::default();
        assert_eq!(cfg.serve.max_connections(), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            cfg.serve.connection_idle_timeout(),
            DEFAULT_CONNECTION_IDLE_TIMEOUT
        );
        assert_eq!(cfg.serve.idle_timeout(false), None);
        assert_eq!(
            cfg.serve.idle_timeout(true),
            Some(DEFAULT_DAEMON_IDLE_TIMEOUT)
        );
        let cfg = Config::parse(
            "[serve]\nmax_connections = 50\nheader_timeout = \"2s\"\nconnection_idle_timeout = \"1s\"\nidle_timeout = \"10m\"\nregistries = [\"ghcr.io\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.serve.max_connections(), 50);
        assert_eq!(cfg.serve.header_timeout(), Duration::from_secs(2));
        assert_eq!(cfg.serve.connection_idle_timeout(), Duration::from_secs(1));
        assert_eq!(
            cfg.serve.idle_timeout(false),
            Some(Duration::from_secs(600))
        );
        let off = Config::parse("[serve]\nidle_timeout = \"0\"\n").unwrap();
        assert_eq!(off.serve.idle_timeout(true), None);
        assert!(Config::parse("[serve]\nconnection_idle_timeout = \"0\"\n").is_err());
        assert!(Config::parse("[serve]\nsend_timeout = \"0\"\n").is_err());
        assert_eq!(
            cfg.serve.registries.as_deref(),
            Some(&["ghcr.io".to_string()][..])
        );
        assert!(Config::parse("[serve]\nmax_connections = 0\n").is_err());
    }

    #[test]
    fn rejects_typos_and_bad_units() {
        assert!(toml::from_str::<Config>("[cache]\ntag_tl = \"5m\"").is_err());
        assert!(toml::from_str::<Config>("[cache]\ntag_ttl = \"five\"").is_err());
        assert!(toml::from_str::<Config>("[network]\nretry = 3").is_err());
        assert!(toml::from_str::<Config>("[network]\nlow_speed_limit = \"fast\"").is_err());
        assert!(toml::from_str::<Config>("[network]\nretries = -1").is_err());
        assert!(toml::from_str::<Config>("[cache]\nmax_blob_size = \"huge\"").is_err());
        assert!(toml::from_str::<Config>("[credentials]\nstore = \"disk\"").is_err());
        assert!(Config::parse("[credentials]\ndir = \"relative/dir\"\n").is_err());
        let cfg = Config::parse("[credentials]\nstore = \"file\"\ndir = \"/srv/dpx\"\n").unwrap();
        assert_eq!(cfg.credentials_dir().unwrap(), Path::new("/srv/dpx"));
        assert_eq!(cfg.credentials.store, Some(CredentialStore::File));
    }

    #[test]
    fn a_value_spanning_lines_is_never_named_as_a_key() {
        // Found by a_config_error_never_shows_a_value: a line inside a
        // multi-line string or array looks like `key = ...` or `[table]`.
        for text in [
            "[serve.auth.users]\nalice = \"\"\"\nhunter2 = \\[\n\"\"\"\n",
            "[registries.\"ghcr.io\"]\nfallback = [\n\"hunter2\" = 1\n]\n",
            "[cache]\ndir = \"\"\"\n[hunter2]\n\"\"\"\ntag_ttl = \"never\"\n",
        ] {
            let e = Config::parse(text).unwrap_err();
            assert!(!e.contains("hunter2"), "{text}\n=> {e}");
        }
        // A key on its own line is still named.
        let e =
            Config::parse("[cache]\ndir = \"\"\"\nx\n\"\"\"\ntag_ttl = \"never\"\n").unwrap_err();
        assert!(e.contains("cache.tag_ttl"), "{e}");
    }

    /// A value's text that must never reach an error message.
    const MARK: &str = "Zq9Vx";

    /// Found by `a_config_error_never_shows_a_value`: serde names the
    /// unknown variant itself ("unknown variant `…`, expected ...").
    #[test]
    fn an_unknown_choice_is_not_echoed() {
        let e = Config::parse("[credentials]\nstore = 'Zq9Vx'\n").unwrap_err();
        assert!(!e.contains(MARK), "{e}");
        assert!(
            e.contains("credentials.store") && e.contains("`keyring` or `file`"),
            "{e}"
        );
    }

    /// Values for a config key, each holding `MARK` somewhere a value can:
    /// strings of every quoting, with bad escapes, lines that look like
    /// `key = value` inside a multi-line string, bare words and numbers.
    fn value_with_mark() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let inner = "[ a-z0-9=\\[\\]._\\\\-]{0,12}";
        prop_oneof![
            (inner, inner).prop_map(|(a, b)| format!("\"{a}{MARK}{b}\"")),
            (inner, inner).prop_map(|(a, b)| format!("'{a}{MARK}{b}'")),
            (inner, inner).prop_map(|(a, b)| format!("\"\"\"\n{a}{MARK}{b}\n\"\"\"")),
            (inner, inner).prop_map(|(a, b)| format!("'''\n{a}\n{MARK} = {b}\n'''")),
            (inner, inner).prop_map(|(a, b)| format!("\"\"\"{a}\n{MARK} = \\q{b}\n\"\"\"")),
            (inner, inner).prop_map(|(a, b)| format!("\"{a}\n{MARK}{b}\"")),
            inner.prop_map(|a| format!("{MARK}{a}")),
            inner.prop_map(|a| format!("5{MARK}{a}")),
            inner.prop_map(|a| format!("[\"{a}\", {MARK}]")),
            inner.prop_map(|a| format!("{{ x = \"{MARK}{a}\" }}")),
        ]
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_cases::config())]

        /// No config text panics the parser, and a refusal names the key,
        /// line and column but never any part of a value (it may be a password).
        #[test]
        fn a_config_error_never_shows_a_value(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "", "[cache]", "[serve]", "[serve.auth]", "[serve.auth.users]",
                        "[network]", "[credentials]", "[registries.\"ghcr.io\"]", "[ratelimit]",
                    ]),
                    proptest::sample::select(vec![
                        "dir", "tag_ttl", "max_blob_size", "max_size", "listen", "header_timeout",
                        "max_connections", "token_lifetime", "dpx", "retries", "url", "store",
                        "fallback", "tls_cert", "probe_interval", "enabled",
                    ]),
                    value_with_mark(),
                ),
                1..4,
            ),
            noise in "\\PC{0,40}",
        ) {
            let text: String = lines
                .iter()
                .map(|(table, key, value)| format!("{table}\n{key} = {value}\n"))
                .collect();
            if let Err(e) = Config::parse(&text) {
                proptest::prop_assert!(!e.contains(MARK), "{text}\n=> {e}");
            }
            let _ = Config::parse(&noise);
        }
    }
}
