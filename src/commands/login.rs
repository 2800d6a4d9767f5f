//! `dpx login [REGISTRY]`, `dpx login --list`, `dpx logout [REGISTRY]`.
//! A login is checked with the registry before anything is stored.

use std::io::{BufRead as _, IsTerminal as _, Read as _};
use std::process::ExitCode;

use anyhow::Context as _;
use serde::Serialize;

use super::{Context, Output};
use crate::cli::{LoginArgs, LogoutArgs};
use crate::credentials::store::{Saved, Store};
use crate::credentials::{Credentials, is_valid_host};
use crate::exit::{AuthError, UsageError};
use crate::reference::DOCKER_HUB;
use crate::reference::HostKey;
use crate::registry::{DEFAULT_RETRIES, LoginCheck};
use crate::stdout::{print_json, with_stdout};

/// Docker Hub's API, where `dpx login` (docker.io) checks credentials.
const DOCKER_HUB_API: &str = "https://registry-1.docker.io";
/// A password on stdin longer than this is a mistake (a file piped in).
const MAX_PASSWORD_BYTES: u64 = 64 * 1024;

/// The host a login is for: the one named, else where docker.io's pulls go
/// first (its configured `url`), else Docker Hub.
fn login_key(ctx: &Context, arg: Option<&str>) -> Result<String, UsageError> {
    match (arg, docker_io_upstream(ctx)) {
        (None, Some(url)) => Ok(HostKey::of_endpoint(url).folded().into_string()),
        (arg, _) => registry_arg(arg),
    }
}

/// `[registries."docker.io"] url`, when set (in the file, or by GitLab CI's variables).
fn docker_io_upstream(ctx: &Context) -> Option<&str> {
    ctx.config
        .registries
        .get(DOCKER_HUB)
        .and_then(|r| r.url.as_deref())
}

fn registry_arg(arg: Option<&str>) -> Result<String, UsageError> {
    let name = arg.unwrap_or(DOCKER_HUB);
    if !is_valid_host(name) {
        return Err(UsageError(format!(
            "{name:?} is not a registry host: give HOST[:PORT], e.g. ghcr.io or 127.0.0.1:5000 \
             (credentials belong to the host dpx talks to)"
        )));
    }
    Ok(HostKey::of_registry(name).into_string())
}

/// The API root where a host's credentials are checked: Docker Hub's for
/// docker.io, the configured URL whose host this is, else the usual scheme.
fn api_url(ctx: &Context, key: &str) -> String {
    if key == DOCKER_HUB {
        return DOCKER_HUB_API.to_string();
    }
    ctx.config
        .registries
        .values()
        .filter_map(|r| r.url.as_deref())
        .find(|url| HostKey::of_endpoint(url).folded() == key)
        .map(|url| url.trim_end_matches('/').to_string())
        .unwrap_or_else(|| ctx.config.registry_url(key))
}

/// Username and password from the flags, stdin or the terminal (no echo).
fn read_credentials(args: &LoginArgs, key: &str) -> anyhow::Result<Credentials> {
    let username = match &args.username {
        Some(u) => u.clone(),
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(UsageError(
                    "no terminal to ask for the username: pass --username (and --password-stdin)"
                        .into(),
                )
                .into());
            }
            eprint!("Username for {key}: ");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the username")?;
            line.trim().to_string()
        }
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .take(MAX_PASSWORD_BYTES)
            .read_to_string(&mut text)
            .context("cannot read the password from stdin")?;
        text.trim_end_matches(['\n', '\r']).to_string()
    } else if !std::io::stdin().is_terminal() {
        return Err(UsageError(
            "no terminal to ask for the password: pipe it in with --password-stdin".into(),
        )
        .into());
    } else {
        rpassword::prompt_password(format!("Password or access token for {username}@{key}: "))
            .map_err(|_| {
                UsageError(
                    "no terminal to ask for the password: pipe it in with --password-stdin".into(),
                )
            })?
    };
    if username.is_empty() || password.is_empty() {
        return Err(UsageError("the username and the password must not be empty".into()).into());
    }
    Ok(Credentials { username, password })
}

#[derive(Serialize)]
struct LoginReport<'a> {
    registry: &'a str,
    /// The API root the credentials were checked with.
    checked: &'a str,
    username: &'a str,
    store: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

pub async fn login(ctx: &Context, args: LoginArgs) -> anyhow::Result<ExitCode> {
    if args.list {
        return list(ctx).await;
    }
    let key = login_key(ctx, args.registry.as_deref())?;
    if args.registry.is_none() && key != DOCKER_HUB && ctx.output == Output::Human {
        eprintln!(
            "Logging in to {key}, where docker.io pulls go first ([registries.\"docker.io\"] \
             url); `dpx login docker.io` logs in to Docker Hub itself"
        );
    }
    let prompt_key = key.clone();
    let creds = {
        // Reading the terminal blocks: off the runtime.
        let args = LoginArgs {
            registry: None,
            username: args.username.clone(),
            password_stdin: args.password_stdin,
            list: false,
        };
        tokio::task::spawn_blocking(move || read_credentials(&args, &prompt_key))
            .await
            .context("the prompt thread failed")??
    };
    let url = api_url(ctx, &key);
    let client = ctx.registry_client(DEFAULT_RETRIES, true)?;
    let check = client
        .check_login(&url, &creds)
        .await
        .with_context(|| format!("cannot check the credentials with {url}; nothing was stored"))?;
    match check {
        LoginCheck::Refused => {
            return Err(AuthError(format!(
                "{key} refused the password for user {}; nothing was stored. Check the username \
                 and password (Docker Hub takes a personal access token) and run `dpx login {key}` again",
                creds.username
            ))
            .into());
        }
        LoginCheck::NotRequired => {
            eprintln!("note: {url} asks for no credentials; storing them for when it does")
        }
        LoginCheck::Accepted => {}
    }
    let dir = ctx.credentials_dir().context(
        "cannot find the config directory for dpx's credential file: set [credentials] dir",
    )?;
    let store = Store::new(&dir, ctx.config.credentials.store.map(Into::into));
    let (save_key, username) = (key.clone(), creds.username.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        store.save(&save_key, &creds.username, &creds.password)
    })
    .await
    .context("the credential store thread failed")?
    .context("cannot store the credentials")?;
    let file = match &outcome.saved {
        Saved::File(path) => Some(path.display().to_string()),
        Saved::Keyring => None,
    };
    if let Some(why) = &outcome.fell_back {
        eprintln!(
            "note: no OS keyring is reachable ({why}); credentials are kept in {} (mode 0600). \
             Set [credentials] store = \"file\" to make this the choice and silence this note",
            file.as_deref().unwrap_or_default()
        );
    }
    match ctx.output {
        Output::Json => print_json(&LoginReport {
            registry: &key,
            checked: &url,
            username: &username,
            store: if file.is_some() { "file" } else { "keyring" },
            file,
        })?,
        Output::Quiet => {}
        Output::Human => {
            let place = file.unwrap_or_else(|| "the OS keyring".to_string());
            let line = format!(
                "Logged in to {key} as {username} (checked with {url}; stored in {place})\n"
            );
            with_stdout(|out| out.write_all(line.as_bytes()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ListEntry {
    registry: String,
    username: Option<String>,
    source: String,
    /// Whether this is what dpx uses for the registry (an earlier source wins).
    used: bool,
}

async fn list(ctx: &Context) -> anyhow::Result<ExitCode> {
    let sources = ctx.credential_sources();
    let store_file = sources.store_file();
    let docker_config = crate::credentials::docker::DockerSource::config_path();
    let entries: Vec<ListEntry> = tokio::task::spawn_blocking(move || sources.resolver().list())
        .await
        .context("the credential lookup thread failed")?
        .into_iter()
        .map(|(l, used)| ListEntry {
            registry: l.registry,
            username: l.username,
            source: l.source,
            used,
        })
        .collect();
    match ctx.output {
        Output::Json => print_json(&serde_json::json!({
            "credentials": entries,
            "store": store_file,
            "docker_config": docker_config,
        }))?,
        Output::Quiet | Output::Human => {
            let mut text = String::new();
            if entries.is_empty() {
                if ctx.output == Output::Human {
                    text.push_str("no credentials: every registry is used anonymously\n");
                }
            } else {
                // Columns as wide as their longest value or their heading.
                let width = entries
                    .iter()
                    .map(|e| e.registry.len())
                    .fold("REGISTRY".len(), usize::max);
                let uwidth = entries
                    .iter()
                    .map(|e| e.username.as_deref().map_or(1, str::len))
                    .fold("USERNAME".len(), usize::max);
                text.push_str(&format!(
                    "{:width$}  {:uwidth$}  SOURCE\n",
                    "REGISTRY", "USERNAME"
                ));
                for e in &entries {
                    let unused = if e.used {
                        ""
                    } else {
                        "  (not used: a source above wins)"
                    };
                    text.push_str(&format!(
                        "{:width$}  {:uwidth$}  {}{unused}\n",
                        e.registry,
                        e.username.as_deref().unwrap_or("?"),
                        e.source
                    ));
                }
            }
            with_stdout(|out| out.write_all(text.as_bytes()))?;
            if ctx.output == Output::Human {
                let shown = |p: &Option<std::path::PathBuf>| {
                    p.as_ref().map_or("(no home directory)".to_string(), |p| {
                        p.display().to_string()
                    })
                };
                eprintln!(
                    "looked in: DPX_REGISTRY_USER/DPX_REGISTRY_PASSWORD, dpx's store {} \
                     ([credentials] dir), DOCKER_AUTH_CONFIG, Docker's config {}",
                    shown(&store_file),
                    shown(&docker_config)
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn logout(ctx: &Context, args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let key = login_key(ctx, args.registry.as_deref())?;
    let dir = ctx.credentials_dir().context(
        "cannot find the config directory for dpx's credential file: set [credentials] dir",
    )?;
    let store = Store::new(&dir, ctx.config.credentials.store.map(Into::into));
    let remove_key = key.clone();
    let removed = tokio::task::spawn_blocking(move || store.remove(&remove_key))
        .await
        .context("the credential store thread failed")?
        .context("cannot remove the credentials")?;
    match ctx.output {
        Output::Json => print_json(&serde_json::json!({"registry": key, "removed": removed}))?,
        Output::Quiet => {}
        Output::Human => {
            let line = if removed {
                format!("Logged out of {key}\n")
            } else {
                format!(
                    "dpx holds no login for {key} (credentials from the environment or Docker's \
                     config are not dpx's to remove; `dpx login --list` shows them)\n"
                )
            };
            with_stdout(|out| out.write_all(line.as_bytes()))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
