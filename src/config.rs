//! Configuration: built-in defaults < TOML file < environment < flags.
//! Paths follow the platform's conventions through `directories`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::reference::DOCKER_HUB;
use crate::registry::{LowSpeedLimit, RetryPolicy};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5000";
pub const DEFAULT_TAG_TTL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_MAX_BLOB_SIZE: u64 = 16 * 1024 * 1024 * 1024;
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);
const DOCKER_HUB_URL: &str = "https://registry-1.docker.io";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL of the registry API for this host, e.g. `http://127.0.0.1:5001`.
    pub url: Option<String>,
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
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    pub listen: Option<String>,
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
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path,
            message: e.to_string(),
        })
    }

    /// The API base URL for a registry host: the configured `url`, Docker Hub's
    /// real endpoint for `docker.io`, else `https://HOST`.
    pub fn registry_url(&self, host: &str) -> String {
        if let Some(url) = self.registries.get(host).and_then(|r| r.url.as_deref()) {
            return url.trim_end_matches('/').to_string();
        }
        if host == DOCKER_HUB {
            DOCKER_HUB_URL.to_string()
        } else {
            format!("https://{host}")
        }
    }

    /// The retry policy: `[network] retries`, else the command's default.
    pub fn retry_policy(&self, default_retries: u32) -> RetryPolicy {
        RetryPolicy {
            retries: self.network.retries.unwrap_or(default_retries),
            ..RetryPolicy::default()
        }
    }

    pub fn low_speed_limit(&self) -> LowSpeedLimit {
        let default = LowSpeedLimit::default();
        LowSpeedLimit {
            bytes_per_sec: self
                .network
                .low_speed_limit
                .unwrap_or(default.bytes_per_sec),
            time: self.network.low_speed_time.unwrap_or(default.time),
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

fn project_dirs() -> Option<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "dpx")
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
        assert_eq!(cfg.retry_policy(1).retries, 5);
        assert_eq!(
            cfg.low_speed_limit(),
            LowSpeedLimit {
                bytes_per_sec: 10 * 1024,
                time: Duration::from_secs(60)
            }
        );
        assert_eq!(Config::default().retry_policy(1).retries, 1);
        assert_eq!(
            Config::default().low_speed_limit(),
            LowSpeedLimit::default()
        );
        assert_eq!(cfg.max_blob_size(), 1024 * 1024 * 1024);
        assert_eq!(cfg.lock_timeout(), Duration::from_secs(120));
        assert_eq!(Config::default().max_blob_size(), DEFAULT_MAX_BLOB_SIZE);
    }

    #[test]
    fn rejects_typos_and_bad_units() {
        assert!(toml::from_str::<Config>("[cache]\ntag_tl = \"5m\"").is_err());
        assert!(toml::from_str::<Config>("[cache]\ntag_ttl = \"five\"").is_err());
        assert!(toml::from_str::<Config>("[network]\nretry = 3").is_err());
        assert!(toml::from_str::<Config>("[network]\nlow_speed_limit = \"fast\"").is_err());
        assert!(toml::from_str::<Config>("[network]\nretries = -1").is_err());
        assert!(toml::from_str::<Config>("[cache]\nmax_blob_size = \"huge\"").is_err());
    }
}
