//! `dpx config show` and `dpx config path`: the effective configuration, and
//! where each value came from (default, file, env, flag).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use serde::Serialize;

use super::{Context, Output};
use crate::cli::{ConfigCommand, GlobalArgs};
use crate::config::{Config, default_config_path};
use crate::credentials::StoreKind;
use crate::engines::endpoint::{Endpoint, Origin};
use crate::registry::LowSpeedLimit;
use crate::stdout::{print_json, with_stdout};
use crate::units::human_bytes;

#[derive(Debug, Serialize)]
pub struct Setting {
    /// `cache.tag_ttl`, `registries."ghcr.io".url`, ... as written in the file.
    pub key: String,
    pub value: String,
    pub source: Origin,
}

fn setting(key: &str, value: impl Into<String>, source: Origin) -> Setting {
    Setting {
        key: key.to_string(),
        value: value.into(),
        source,
    }
}

/// A file value if set, else the default.
fn from_file<T>(key: &str, value: Option<T>, default: T, show: impl Fn(T) -> String) -> Setting {
    match value {
        Some(v) => setting(key, show(v), Origin::File),
        None => setting(key, show(default), Origin::Default),
    }
}

fn duration(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn origin_of(source: Option<ValueSource>) -> Option<Origin> {
    match source {
        Some(ValueSource::CommandLine) => Some(Origin::Flag),
        Some(ValueSource::EnvVariable) => Some(Origin::Env),
        _ => None,
    }
}

/// The config file in use and where its path came from.
fn config_file(global: &GlobalArgs) -> (Option<PathBuf>, Origin) {
    match (&global.config, origin_of(global.origins.config)) {
        (Some(path), Some(origin)) => (Some(path.clone()), origin),
        (Some(path), None) => (Some(path.clone()), Origin::Flag),
        (None, _) => (default_config_path(), Origin::Default),
    }
}

/// Every setting, in the order of the README's table. A new config key adds a line here.
pub fn settings(ctx: &Context, global: &GlobalArgs) -> anyhow::Result<Vec<Setting>> {
    let config: &Config = &ctx.config;
    let mut out = Vec::new();
    let (file, file_origin) = config_file(global);
    let file_text = match &file {
        Some(p) if p.exists() => p.display().to_string(),
        Some(p) => format!("{} (not present: built-in defaults)", p.display()),
        None => "(no home directory: built-in defaults)".into(),
    };
    out.push(setting("config", file_text, file_origin));

    let cache_origin =
        origin_of(global.origins.cache_dir).unwrap_or(if config.cache.dir.is_some() {
            Origin::File
        } else {
            Origin::Default
        });
    out.push(setting(
        "cache.dir",
        ctx.cache_dir.display().to_string(),
        cache_origin,
    ));
    let c = &config.cache;
    out.push(from_file(
        "cache.tag_ttl",
        c.tag_ttl,
        crate::config::DEFAULT_TAG_TTL,
        duration,
    ));
    out.push(from_file(
        "cache.max_blob_size",
        c.max_blob_size,
        crate::config::DEFAULT_MAX_BLOB_SIZE,
        human_bytes,
    ));
    out.push(from_file(
        "cache.lock_timeout",
        c.lock_timeout,
        crate::config::DEFAULT_LOCK_TIMEOUT,
        duration,
    ));
    out.push(match c.max_size {
        Some(v) => setting("cache.max_size", human_bytes(v), Origin::File),
        None => setting("cache.max_size", "none (no eviction)", Origin::Default),
    });

    let endpoint = Endpoint::from_config(config)?;
    out.push(setting("serve.listen", endpoint.host_port, endpoint.origin));
    let s = &config.serve;
    out.push(from_file(
        "serve.max_connections",
        s.max_connections,
        crate::config::DEFAULT_MAX_CONNECTIONS,
        |v| v.to_string(),
    ));
    out.push(from_file(
        "serve.header_timeout",
        s.header_timeout,
        crate::config::DEFAULT_HEADER_TIMEOUT,
        duration,
    ));
    out.push(from_file(
        "serve.connection_idle_timeout",
        s.connection_idle_timeout,
        crate::config::DEFAULT_CONNECTION_IDLE_TIMEOUT,
        duration,
    ));
    out.push(from_file(
        "serve.send_timeout",
        s.send_timeout,
        crate::config::DEFAULT_SEND_TIMEOUT,
        duration,
    ));
    out.push(match s.idle_timeout {
        Some(v) => setting("serve.idle_timeout", duration(v), Origin::File),
        None => setting(
            "serve.idle_timeout",
            format!(
                "never (serve), {} (daemon)",
                duration(crate::config::DEFAULT_DAEMON_IDLE_TIMEOUT)
            ),
            Origin::Default,
        ),
    });
    out.push(match &s.registries {
        Some(list) => setting("serve.registries", list.join(", "), Origin::File),
        None => setting("serve.registries", "any", Origin::Default),
    });
    let path_or = |p: &Option<PathBuf>, none: &str| match p {
        Some(p) => (p.display().to_string(), Origin::File),
        None => (none.to_string(), Origin::Default),
    };
    let (cert, origin) = path_or(&s.tls_cert, "none (plain HTTP)");
    out.push(setting("serve.tls_cert", cert, origin));
    let (key, origin) = path_or(&s.tls_key, "none (plain HTTP)");
    out.push(setting("serve.tls_key", key, origin));
    let a = &s.auth;
    out.push(from_file("serve.auth.enabled", a.enabled, false, |v| {
        v.to_string()
    }));
    out.push(from_file(
        "serve.auth.token_lifetime",
        a.token_lifetime,
        crate::serve_auth::DEFAULT_TOKEN_LIFETIME,
        duration,
    ));
    out.push(if a.users.is_empty() {
        setting(
            "serve.auth.users",
            format!("none (only `{}`)", crate::serve_auth::DPX_USER),
            Origin::Default,
        )
    } else {
        // Names only: the values are password hashes.
        let names: Vec<&str> = a.users.keys().map(String::as_str).collect();
        setting("serve.auth.users", names.join(", "), Origin::File)
    });

    out.push(match config.ratelimit.reserve {
        Some(v) => setting("ratelimit.reserve", v.to_string(), Origin::File),
        None => setting("ratelimit.reserve", "none", Origin::Default),
    });
    let probe = config.probe_backoff();
    for (key, set, value) in [
        (
            "ratelimit.probe_interval",
            config.ratelimit.probe_interval.is_some(),
            probe.start,
        ),
        (
            "ratelimit.probe_interval_max",
            config.ratelimit.probe_interval_max.is_some(),
            probe.max,
        ),
    ] {
        let origin = if set { Origin::File } else { Origin::Default };
        out.push(setting(
            key,
            humantime::format_duration(value).to_string(),
            origin,
        ));
    }

    out.push(match config.credentials.store {
        Some(kind) => setting(
            "credentials.store",
            match kind {
                StoreKind::Keyring => "keyring",
                StoreKind::File => "file",
            },
            Origin::File,
        ),
        None => setting(
            "credentials.store",
            "the OS keyring when reachable, else the file",
            Origin::Default,
        ),
    });

    out.push(match (&config.credentials.dir, config.credentials_dir()) {
        (Some(dir), _) => setting("credentials.dir", dir.display().to_string(), Origin::File),
        (None, Ok(dir)) => setting(
            "credentials.dir",
            dir.display().to_string(),
            Origin::Default,
        ),
        (None, Err(_)) => setting("credentials.dir", "(no home directory)", Origin::Default),
    });

    let n = &config.network;
    out.push(match n.retries {
        Some(v) => setting("network.retries", v.to_string(), Origin::File),
        None => setting(
            "network.retries",
            "3 (pull, prefetch), 1 (serve)",
            Origin::Default,
        ),
    });
    let low = LowSpeedLimit::default();
    out.push(from_file(
        "network.low_speed_limit",
        n.low_speed_limit,
        low.bytes_per_sec,
        |v| format!("{}/s", human_bytes(v)),
    ));
    out.push(from_file(
        "network.low_speed_time",
        n.low_speed_time,
        low.time,
        duration,
    ));

    for (host, registry) in &config.registries {
        // GitLab CI's variables made docker.io's table (see `dependency_proxy`).
        let from_proxy = ctx.dependency_proxy.is_some() && host == crate::reference::DOCKER_HUB;
        let origin = |set: bool| match (set, from_proxy) {
            (true, true) => Origin::Env,
            (true, false) => Origin::File,
            (false, _) => Origin::Default,
        };
        let via = if from_proxy {
            format!(
                " (from {})",
                crate::credentials::dependency_proxy::IMAGE_PREFIX
            )
        } else {
            String::new()
        };
        let key = |field: &str| format!("registries.\"{host}\".{field}");
        out.push(setting(
            &key("url"),
            format!("{}{via}", config.registry_url(host)),
            origin(registry.url.is_some()),
        ));
        out.push(match &registry.repository_prefix {
            Some(p) => setting(&key("repository_prefix"), format!("{p}{via}"), origin(true)),
            None => setting(&key("repository_prefix"), "none", Origin::Default),
        });
        out.push(match &registry.fallback {
            Some(list) if list.is_empty() => setting(&key("fallback"), "none", Origin::File),
            Some(list) => {
                let via = if from_proxy {
                    " (Docker Hub behind the Dependency Proxy unless the file sets fallback)"
                } else {
                    ""
                };
                setting(
                    &key("fallback"),
                    format!("{}{via}", list.join(", ")),
                    origin(true),
                )
            }
            None => setting(&key("fallback"), "none", Origin::Default),
        });
    }
    if !config.registries.contains_key(crate::reference::DOCKER_HUB) {
        out.push(setting(
            "registries.\"docker.io\".url",
            config.registry_url(crate::reference::DOCKER_HUB),
            Origin::Default,
        ));
    }
    out.push(match std::env::var("DPX_LOG") {
        Ok(v) if !v.is_empty() => setting("log", v, Origin::Env),
        _ => setting(
            "log",
            "dpx=warn (serve: dpx=info); -v for more",
            Origin::Default,
        ),
    });
    Ok(out)
}

/// `dpx config path`: needs no config loaded, so it also names a file that
/// does not exist yet (or does not parse).
pub fn path(global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let (file, origin) = config_file(global);
    let Some(file) = file else {
        anyhow::bail!(crate::config::ConfigError::NoHome);
    };
    if global.json {
        print_json(&serde_json::json!({
            "path": file,
            "exists": file.exists(),
            "source": origin,
        }))?;
    } else {
        with_stdout(|out| writeln!(out, "{}", file.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    command: ConfigCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        ConfigCommand::Path => return path(global),
        // Run before the config is loaded (src/lib.rs).
        ConfigCommand::Set { .. } | ConfigCommand::Unset { .. } | ConfigCommand::Edit => {}
        ConfigCommand::Show => {
            let settings = settings(ctx, global)?;
            if ctx.output == Output::Json {
                print_json(&settings)?;
            } else {
                let width = settings.iter().map(|s| s.key.len()).max().unwrap_or(0);
                with_stdout(|out| {
                    for s in &settings {
                        writeln!(
                            out,
                            "{:<width$}  {:<7}  {}",
                            s.key,
                            s.source.as_str(),
                            s.value
                        )?;
                    }
                    Ok(())
                })?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
