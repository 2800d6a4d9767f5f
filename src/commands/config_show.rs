//! `dpx config show` and `dpx config path`: the effective configuration, and
//! where each value came from (default, file, env, flag).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::parser::ValueSource;
use serde::Serialize;

use super::{Context, Output};
use crate::cli::{ConfigCommand, GlobalArgs};
use crate::config::keys::{KEYS, Outside, Read, Shown, Source};
use crate::config::{Config, default_config_path};
use crate::engines::endpoint::{Endpoint, Origin};
use crate::reference::DOCKER_HUB;
use crate::stdout::{print_json, with_stdout};

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

fn shown(key: &str, shown: Shown) -> Setting {
    let source = match shown.source {
        Source::Default => Origin::Default,
        Source::File => Origin::File,
        Source::Env => Origin::Env,
    };
    setting(key, shown.value, source)
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

/// Every setting, in the order of `config::keys::KEYS` (and the README's table).
pub fn settings(ctx: &Context, global: &GlobalArgs) -> anyhow::Result<Vec<Setting>> {
    let config: &Config = &ctx.config;
    let mut out = Vec::new();
    let mut registries_shown = false;
    for key in KEYS {
        match key.read {
            Read::File(read) => out.push(shown(key.name, read(config))),
            Read::Outside(outside) => out.push(from_outside(key.name, outside, ctx, global)?),
            // All of a host's keys together, host by host, at the first registry key.
            Read::Registry(_) if !registries_shown => {
                registries_shown = true;
                registry_settings(ctx, &mut out);
            }
            Read::Registry(_) => {}
        }
    }
    Ok(out)
}

/// The settings a flag or an env var decides.
fn from_outside(
    name: &str,
    outside: Outside,
    ctx: &Context,
    global: &GlobalArgs,
) -> anyhow::Result<Setting> {
    Ok(match outside {
        Outside::ConfigFile => {
            let (file, origin) = config_file(global);
            let text = match &file {
                Some(p) if p.exists() => p.display().to_string(),
                Some(p) => format!("{} (not present: built-in defaults)", p.display()),
                None => "(no home directory: built-in defaults)".into(),
            };
            setting(name, text, origin)
        }
        Outside::CacheDir => {
            let origin =
                origin_of(global.origins.cache_dir).unwrap_or(if ctx.config.cache.dir.is_some() {
                    Origin::File
                } else {
                    Origin::Default
                });
            setting(name, ctx.cache_dir.display().to_string(), origin)
        }
        Outside::Listen => {
            let endpoint = Endpoint::from_config(&ctx.config)?;
            setting(name, endpoint.host_port, endpoint.origin)
        }
        Outside::Log => match std::env::var("DPX_LOG") {
            Ok(v) if !v.is_empty() => setting(name, v, Origin::Env),
            _ => setting(
                name,
                "dpx=warn (serve: dpx=info); -v for more",
                Origin::Default,
            ),
        },
    })
}

/// Each `[registries."HOST"]` table's keys, then docker.io's url when it has no table.
fn registry_settings(ctx: &Context, out: &mut Vec<Setting>) {
    let config: &Config = &ctx.config;
    let registry_keys = || {
        KEYS.iter().filter_map(|k| match k.read {
            Read::Registry(read) => Some((k, read)),
            _ => None,
        })
    };
    for host in config.registries.keys() {
        // GitLab CI's variables made docker.io's table (see `dependency_proxy`).
        let via = (ctx.dependency_proxy.is_some() && host == DOCKER_HUB)
            .then_some(crate::credentials::dependency_proxy::IMAGE_PREFIX);
        for (key, read) in registry_keys() {
            out.push(shown(&key.for_host(host), read(config, host, via)));
        }
    }
    if !config.registries.contains_key(DOCKER_HUB)
        && let Some((key, read)) = registry_keys().find(|(k, _)| k.registry_field() == Some("url"))
    {
        out.push(shown(
            &key.for_host(DOCKER_HUB),
            read(config, DOCKER_HUB, None),
        ));
    }
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
