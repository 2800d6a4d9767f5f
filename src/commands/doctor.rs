//! `dpx doctor`: why pulls might not go through the cache. Each check is one
//! line (ok, note, warning or problem) with the command that fixes it; the
//! exit status is 1 when any check is a problem.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::containerd_config;
use super::endpoint::Endpoint;
use super::pull::human_bytes;
use super::setup::{DOCKER_RELOAD, mirrored_registries};
use super::{Context, Output};
use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::stdout::{print_json, with_stdout};

/// How long the mirror and each upstream get to answer `GET /v2/`.
const HTTP_DEADLINE: Duration = Duration::from_secs(5);
/// How long `docker info` (or `--version` of an engine) may take.
const PROGRAM_DEADLINE: Duration = Duration::from_secs(15);
/// Free disk below this is a problem, below `LOW_DISK` a warning.
const FULL_DISK: u64 = 512 * 1024 * 1024;
const LOW_DISK: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Not a fault: e.g. an engine that is not installed.
    Note,
    Warning,
    Problem,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Note => "note",
            Status::Warning => "warning",
            Status::Problem => "problem",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Check {
    /// What was checked: serve, docker, containerd, podman, upstream, cache, disk, ...
    pub check: String,
    pub status: Status,
    pub message: String,
    /// The command (or step) that fixes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(name: &str, status: Status, message: String, fix: Option<String>) -> Check {
    Check {
        check: name.to_string(),
        status,
        message,
        fix,
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    /// False when any check is a problem.
    ok: bool,
    mirror: String,
    checks: &'a [Check],
}

pub async fn run(ctx: &Context, args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let endpoint = Endpoint::from_config(&ctx.config)?;
    let registries = mirrored_registries(&ctx.config)?;
    let registries_conf = args.registries_conf.clone().or_else(podman_conf_override);
    let (serve, docker, containerd, podman, upstreams, disk) = tokio::join!(
        serve_check(&endpoint, &ctx.cache_dir),
        docker_check(&endpoint),
        containerd_check(
            &endpoint,
            &args.hosts_dir,
            &args.containerd_config,
            &registries
        ),
        podman_check(&endpoint, registries_conf),
        upstream_checks(&ctx.config, &registries),
        disk_checks(ctx),
    );
    let mut checks = vec![serve, docker, containerd, podman];
    checks.extend(upstreams);
    checks.extend(credentials_checks(ctx, &registries).await);
    checks.extend(ratelimit_checks(ctx).await);
    checks.extend(disk);
    let ok = checks.iter().all(|c| c.status != Status::Problem);
    if ctx.output == Output::Json {
        print_json(&Report {
            ok,
            mirror: endpoint.url(),
            checks: &checks,
        })?;
    } else {
        let text = render(&endpoint, &checks);
        with_stdout(|out| out.write_all(text.as_bytes()))?;
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::exit::FAILURE)
    })
}

fn render(endpoint: &Endpoint, checks: &[Check]) -> String {
    let mut text = format!(
        "dpx mirror: {} (from {})\n",
        endpoint.url(),
        match endpoint.origin {
            super::endpoint::Origin::Env => "DPX_LISTEN",
            super::endpoint::Origin::File | super::endpoint::Origin::Flag => "[serve] listen",
            super::endpoint::Origin::Default => "the default",
        }
    );
    for c in checks {
        text.push_str(&format!(
            "{:<8} {:<11} {}\n",
            c.status.label(),
            c.check,
            c.message
        ));
        if let Some(fix) = &c.fix {
            text.push_str(&format!("{:<8} {:<11} fix: {fix}\n", "", ""));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let (problems, warnings) = (count(Status::Problem), count(Status::Warning));
    text.push_str(&match (problems, warnings) {
        (0, 0) => "all good\n".to_string(),
        (p, w) => format!(
            "{p} {}, {w} {}\n",
            if p == 1 { "problem" } else { "problems" },
            if w == 1 { "warning" } else { "warnings" }
        ),
    });
    text
}

/// An HTTP client with the doctor's deadline; the loopback mirror is asked
/// without a proxy, upstreams through the environment's.
fn http_client(proxy: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(HTTP_DEADLINE)
        .connect_timeout(HTTP_DEADLINE)
        .redirect(reqwest::redirect::Policy::limited(3));
    let builder = if proxy { builder } else { builder.no_proxy() };
    builder.build()
}

/// The dpx serving this cache (`dpx daemon start`, or a `dpx serve` that
/// registered itself), as the daemon's runtime directory tells.
async fn serving_this_cache(cache_dir: &Path) -> Option<crate::daemon::State> {
    let runtime = crate::daemon::RuntimeDir::for_cache(cache_dir);
    match tokio::task::spawn_blocking(move || runtime.probe()).await {
        Ok(Ok(crate::daemon::Probe::Running(state))) => Some(state),
        _ => None,
    }
}

async fn serve_check(endpoint: &Endpoint, cache_dir: &Path) -> Check {
    let url = format!("{}/v2/", endpoint.url());
    let running = serving_this_cache(cache_dir).await;
    let fix = Some(format!(
        "dpx daemon start --listen {0} (in the background), or dpx serve --listen {0} (keep it \
         running; engines configured for it fall back to the registry, or fail, while it is down)",
        endpoint.host_port
    ));
    // One serving this cache on another address explains a mirror that is not there.
    let daemon_note = match running {
        Some(state) => match state.address {
            Some(addr) if addr == endpoint.host_port => {
                format!(" (dpx for this cache, pid {})", state.pid)
            }
            Some(addr) => format!(
                "; dpx for this cache runs at {addr} (pid {}), not at the configured address",
                state.pid
            ),
            None => format!("; dpx for this cache (pid {}) is still starting", state.pid),
        },
        None => String::new(),
    };
    let sent = match http_client(false) {
        Ok(client) => client.get(&url).send().await,
        Err(e) => Err(e),
    };
    match sent {
        Ok(resp) => {
            let status = resp.status();
            let is_registry = resp
                .headers()
                .get("docker-distribution-api-version")
                .is_some_and(|v| v.as_bytes().starts_with(b"registry/2"));
            if is_registry && (status.is_success() || status.as_u16() == 401) {
                check(
                    "serve",
                    Status::Ok,
                    format!(
                        "a registry answers at {} (HTTP {}){daemon_note}",
                        endpoint.url(),
                        status.as_u16()
                    ),
                    None,
                )
            } else {
                check(
                    "serve",
                    Status::Problem,
                    format!(
                        "something else answers at {} (HTTP {}, not a registry API): another \
                         program has the port",
                        endpoint.url(),
                        status.as_u16()
                    ),
                    Some("pick a free port: [serve] listen = \"127.0.0.1:PORT\" in the config file, then dpx serve".into()),
                )
            }
        }
        Err(e) => check(
            "serve",
            Status::Problem,
            format!(
                "nothing answers at {}: {}{daemon_note}",
                endpoint.url(),
                reqwest_reason(&e)
            ),
            fix,
        ),
    }
}

/// The innermost cause of a reqwest error ("Connection refused"), not its URL.
fn reqwest_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", HTTP_DEADLINE.as_secs());
    }
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// Runs a program with a deadline; `None` when it is not installed.
async fn program_output(
    program: &str,
    args: &[&str],
) -> Option<std::io::Result<std::process::Output>> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(PROGRAM_DEADLINE, cmd.output()).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => None,
        Ok(result) => Some(result),
        Err(_) => Some(Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!(
                "{program} gave no answer within {}s",
                PROGRAM_DEADLINE.as_secs()
            ),
        ))),
    }
}

async fn installed(program: &str) -> bool {
    program_output(program, &["--version"]).await.is_some()
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// dockerd falls back to Docker Hub silently when its mirror list lacks dpx:
/// `docker info` (the CLI honours DOCKER_HOST and contexts) says what it uses.
async fn docker_check(endpoint: &Endpoint) -> Check {
    let fix = Some(format!("dpx setup docker --apply, then {DOCKER_RELOAD}"));
    let out = match program_output(
        "docker",
        &["info", "--format", "{{json .RegistryConfig.Mirrors}}"],
    )
    .await
    {
        None => {
            return check(
                "docker",
                Status::Note,
                "docker is not installed".into(),
                None,
            );
        }
        Some(Err(e)) => {
            return check(
                "docker",
                Status::Warning,
                format!("cannot run docker info: {e}"),
                None,
            );
        }
        Some(Ok(out)) => out,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return check(
            "docker",
            Status::Note,
            format!(
                "docker is installed but its daemon did not answer: {}",
                first.trim()
            ),
            Some(
                "start the Docker daemon (sudo systemctl start docker), or set DOCKER_HOST".into(),
            ),
        );
    }
    let mirrors: Vec<String> = serde_json::from_slice::<Option<Vec<String>>>(&out.stdout)
        .ok()
        .flatten()
        .unwrap_or_default();
    if mirrors.iter().any(|m| same_url(m, &endpoint.url())) {
        check(
            "docker",
            Status::Ok,
            format!("docker info lists {} as a registry mirror", endpoint.url()),
            None,
        )
    } else {
        check(
            "docker",
            Status::Warning,
            format!(
                "the Docker daemon's registry mirrors ({}) do not include {}: docker pulls go \
                 straight to Docker Hub",
                if mirrors.is_empty() {
                    "none".to_string()
                } else {
                    mirrors.join(", ")
                },
                endpoint.url()
            ),
            fix,
        )
    }
}

/// Each mirrored registry's `hosts.toml` names dpx as a host, and
/// containerd's CRI reads them (`config_path`).
async fn containerd_check(
    endpoint: &Endpoint,
    hosts_dir: &Path,
    containerd_config: &Path,
    registries: &[String],
) -> Check {
    let fix = Some(containerd_config::apply_command(
        hosts_dir,
        containerd_config,
    ));
    let dir = hosts_dir.to_path_buf();
    let wanted = endpoint.url();
    let regs = registries.to_vec();
    let missing = tokio::task::spawn_blocking(move || {
        let mut missing = Vec::new();
        let mut found = 0usize;
        for host in &regs {
            let file = dir.join(host).join("hosts.toml");
            let names_dpx = crate::operator_files::read_to_string(&file)
                .ok()
                .and_then(|text| toml::from_str::<toml::Table>(&text).ok())
                .and_then(|t| t.get("host").and_then(|h| h.as_table()).cloned())
                .is_some_and(|hosts| hosts.keys().any(|k| same_url(k, &wanted)));
            if file.exists() {
                found += 1;
            }
            if !names_dpx {
                missing.push(host.clone());
            }
        }
        (missing, found)
    })
    .await
    .unwrap_or_else(|_| (registries.to_vec(), 0));
    let (missing, found) = missing;
    if missing.is_empty() {
        let hosts = format!(
            "hosts.toml in {} sends {} through dpx",
            hosts_dir.display(),
            registries.join(", ")
        );
        return cri_config_check(hosts, hosts_dir, containerd_config, fix).await;
    }
    if found == 0 && !installed("containerd").await {
        return check(
            "containerd",
            Status::Note,
            "containerd is not installed".into(),
            None,
        );
    }
    check(
        "containerd",
        Status::Warning,
        format!(
            "no hosts.toml in {} names {} for {}: containerd pulls those straight from the registry",
            hosts_dir.display(),
            endpoint.url(),
            missing.join(", ")
        ),
        fix,
    )
}

/// The hosts files are right: does containerd's CRI read them? Without
/// `config_path` naming the directory, only `ctr --hosts-dir` does.
async fn cri_config_check(
    hosts: String,
    hosts_dir: &Path,
    file: &Path,
    fix: Option<String>,
) -> Check {
    let installed = containerd_config::installed_version().await;
    let path = file.to_path_buf();
    let read = tokio::task::spawn_blocking(move || match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let text = match read {
        Ok(None) if installed.is_none() => return check("containerd", Status::Ok, hosts, None),
        Ok(text) => text,
        Err(e) => {
            return check(
                "containerd",
                Status::Warning,
                format!(
                    "{hosts}, but {} cannot be read ({e}) to check that containerd's CRI reads them",
                    file.display()
                ),
                None,
            );
        }
    };
    let version = containerd_config::version_for_containerd(installed.as_deref());
    let fix = fix.map(|f| format!("{f}, then {}", containerd_config::CONTAINERD_RESTART));
    match containerd_config::cri_registry(file, text.as_deref(), version) {
        Ok(cri) if cri.reads(hosts_dir) => check(
            "containerd",
            Status::Ok,
            format!(
                "{hosts}; its CRI reads them ({} config_path)",
                file.display()
            ),
            None,
        ),
        Ok(cri) => check(
            "containerd",
            Status::Problem,
            format!(
                "{hosts}, but containerd's CRI (kubelet, nerdctl, crictl) ignores them: {}{} \
                 {} config_path is {}, not {}",
                file.display(),
                if text.is_none() { " (absent)" } else { "" },
                containerd_config::registry_table_name(cri.version),
                if cri.dirs.is_empty() {
                    "unset".to_string()
                } else {
                    format!("{:?}", cri.dirs.join(":"))
                },
                hosts_dir.display()
            ),
            fix,
        ),
        Err(e) => check(
            "containerd",
            Status::Problem,
            format!("{hosts}, but containerd's CRI may ignore them: {e}"),
            Some(format!(
                "edit {} so that {} config_path names {}",
                file.display(),
                containerd_config::registry_table_name(version),
                hosts_dir.display()
            )),
        ),
    }
}

/// `CONTAINERS_REGISTRIES_CONF`, which podman reads instead of its usual files.
fn podman_conf_override() -> Option<PathBuf> {
    std::env::var_os("CONTAINERS_REGISTRIES_CONF")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The registries.conf files podman reads: the given one, else the user's or
/// the system's file and their `.d` drop-ins.
fn podman_conf_files(given: Option<PathBuf>) -> Vec<PathBuf> {
    if let Some(file) = given {
        return vec![file];
    }
    let mut files = Vec::new();
    let user = directories::BaseDirs::new().map(|d| d.config_dir().join("containers"));
    let main = user
        .as_ref()
        .map(|d| d.join("registries.conf"))
        .filter(|f| f.exists())
        .unwrap_or_else(|| PathBuf::from("/etc/containers/registries.conf"));
    files.push(main);
    let mut dirs = vec![PathBuf::from("/etc/containers/registries.conf.d")];
    dirs.extend(user.map(|d| d.join("registries.conf.d")));
    for dir in dirs {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            found.sort();
            files.extend(found);
        }
    }
    files
}

/// Whether a registries.conf has a docker.io registry whose mirror is dpx.
fn conf_mirrors_docker_hub(text: &str, host_port: &str) -> bool {
    let Ok(table) = toml::from_str::<toml::Table>(text) else {
        return false;
    };
    let wanted = [host_port.to_string(), format!("{host_port}/docker.io")];
    table
        .get("registry")
        .and_then(|r| r.as_array())
        .into_iter()
        .flatten()
        .filter(|r| {
            let field = |k: &str| r.get(k).and_then(|v| v.as_str());
            let prefix = field("prefix").or(field("location")).unwrap_or("");
            matches!(
                prefix,
                "docker.io" | "registry-1.docker.io" | "index.docker.io"
            )
        })
        .flat_map(|r| {
            r.get("mirror")
                .and_then(|m| m.as_array())
                .cloned()
                .unwrap_or_default()
        })
        .any(|m| {
            m.get("location")
                .and_then(|l| l.as_str())
                .is_some_and(|l| wanted.iter().any(|w| w == l.trim_end_matches('/')))
        })
}

async fn podman_check(endpoint: &Endpoint, given: Option<PathBuf>) -> Check {
    let host_port = endpoint.host_port.clone();
    let files = tokio::task::spawn_blocking(move || {
        podman_conf_files(given)
            .into_iter()
            .map(|f| {
                let hit = crate::operator_files::read_to_string(&f)
                    .map(|t| conf_mirrors_docker_hub(&t, &host_port))
                    .ok();
                (f, hit)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap_or_default();
    if let Some((file, _)) = files.iter().find(|(_, hit)| *hit == Some(true)) {
        return check(
            "podman",
            Status::Ok,
            format!(
                "{} mirrors docker.io through {}",
                file.display(),
                endpoint.host_port
            ),
            None,
        );
    }
    let any_file = files.iter().any(|(_, hit)| hit.is_some());
    if !any_file && !installed("podman").await {
        return check(
            "podman",
            Status::Note,
            "podman is not installed".into(),
            None,
        );
    }
    check(
        "podman",
        Status::Warning,
        format!(
            "no registries.conf read by podman ({}) mirrors docker.io through {}",
            files
                .iter()
                .map(|(f, _)| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            endpoint.host_port
        ),
        Some("dpx setup podman | sudo tee /etc/containers/registries.conf.d/50-dpx.conf".into()),
    )
}

/// `GET /v2/` of each upstream: any answer from a registry (a 401 included)
/// means it can be reached.
async fn upstream_checks(config: &Config, registries: &[String]) -> Vec<Check> {
    let client = match http_client(true) {
        Ok(client) => client,
        Err(e) => {
            let message = format!("cannot set up an HTTP client: {}", reqwest_reason(&e));
            return vec![check("upstream", Status::Problem, message, None)];
        }
    };
    let probes = registries.iter().map(|host| {
        let url = config.registry_url(host);
        let client = client.clone();
        async move {
            let name = format!("upstream {host}");
            match client.get(format!("{url}/v2/")).send().await {
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 401 => check(
                    "upstream",
                    Status::Ok,
                    format!("{host} ({url}) can be reached (HTTP {})", resp.status().as_u16()),
                    None,
                ),
                Ok(resp) => check(
                    "upstream",
                    Status::Warning,
                    format!(
                        "{host} ({url}) answers HTTP {}: pulls of what is not cached may fail \
                         (dpx serve still answers what it has)",
                        resp.status().as_u16()
                    ),
                    None,
                ),
                Err(e) => check(
                    "upstream",
                    Status::Problem,
                    format!("{name} ({url}) cannot be reached: {}", reqwest_reason(&e)),
                    Some(format!(
                        "check the network (proxy variables, DNS) or the url in the config file's [registries.\"{host}\"] table (dpx config show)"
                    )),
                ),
            }
        }
    });
    futures_util::future::join_all(probes).await
}

/// The upstream host keys credentials are looked up under for `registry`:
/// its own name, then each upstream endpoint's (`[registries."HOST"] url`,
/// fallbacks), as the registry client asks for them.
fn credential_keys(config: &Config, registry: &str) -> Vec<String> {
    let mut keys = vec![crate::credentials::host_key(registry)];
    for up in crate::registry::Upstream::configured(config, registry) {
        let key = crate::credentials::endpoint_key(up.url());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// One check per mirrored registry: which credentials apply and from which
/// source (a user name and a source, never a secret), or anonymous.
async fn credentials_checks(ctx: &Context, registries: &[String]) -> Vec<Check> {
    let sources = ctx.credential_sources();
    let wanted: Vec<(String, Vec<String>)> = registries
        .iter()
        .map(|r| (r.clone(), credential_keys(&ctx.config, r)))
        .collect();
    let found = tokio::task::spawn_blocking(move || {
        let resolver = sources.resolver();
        wanted
            .into_iter()
            .map(|(registry, keys)| {
                let found: Vec<_> = keys.iter().filter_map(|k| resolver.lookup(k)).collect();
                (registry, found)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let Ok(found) = found else {
        return vec![check(
            "credentials",
            Status::Warning,
            "cannot look the credentials up (the worker thread failed)".into(),
            None,
        )];
    };
    found
        .into_iter()
        .map(|(registry, found)| {
            if found.is_empty() {
                return check(
                    "credentials",
                    Status::Note,
                    format!("{registry}: anonymous (no credentials from any source)"),
                    None,
                );
            }
            let each: Vec<String> = found
                .iter()
                .map(|f| {
                    format!(
                        "user {} for {} from {}",
                        f.credentials.username, f.registry, f.source
                    )
                })
                .collect();
            check(
                "credentials",
                Status::Ok,
                format!("{registry}: {}", each.join("; ")),
                None,
            )
        })
        .collect()
}

/// The last pull-quota figures any dpx process recorded, with a warning when
/// they are at or below `[ratelimit] reserve` or used up.
async fn ratelimit_checks(ctx: &Context) -> Vec<Check> {
    if !ctx.cache_dir.exists() {
        return Vec::new();
    }
    let seen = match ctx.open_cache() {
        Ok(cache) => tokio::task::spawn_blocking(move || cache.read_quota_seen())
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string())),
        Err(e) => Err(e.to_string()),
    };
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => {
            return vec![check(
                "ratelimit",
                Status::Warning,
                format!("cannot read the recorded rate-limit figures: {e}"),
                Some("dpx cache verify".into()),
            )];
        }
    };
    let reserve = ctx.config.ratelimit.reserve.unwrap_or(0);
    let now = crate::cache::now_secs();
    seen.into_iter()
        .map(|s| {
            let remaining = s.remaining;
            let line = super::ratelimit_cached::describe(&s.into(), now);
            let why = match remaining {
                Some(0) => Some("no pulls left".to_string()),
                Some(r) if r <= reserve => Some(format!(
                    "at or below the reserve of {reserve} ([ratelimit] reserve)"
                )),
                _ => None,
            };
            if let Some(why) = why {
                check(
                    "ratelimit",
                    Status::Warning,
                    format!("{line}: {why}"),
                    Some(
                        "dpx ratelimit (the quota now; pulls are freed as the window slides)"
                            .into(),
                    ),
                )
            } else {
                check("ratelimit", Status::Ok, line, None)
            }
        })
        .collect()
}

/// Cache size (against `[cache] max_size`) and free disk where it lives.
async fn disk_checks(ctx: &Context) -> Vec<Check> {
    let dir = ctx.cache_dir.clone();
    let exists = dir.exists();
    let mut checks = Vec::new();
    if exists {
        let cache = ctx.open_cache();
        let size = match cache {
            Ok(cache) => {
                tokio::task::spawn_blocking(move || cache.inventory().map(|i| i.total_size()))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
            Err(e) => Err(e.to_string()),
        };
        checks.push(match (size, ctx.config.cache.max_size) {
            (Ok(size), Some(max)) if size > max => check(
                "cache",
                Status::Warning,
                format!(
                    "{} holds {}, over [cache] max_size {}",
                    dir.display(),
                    human_bytes(size),
                    human_bytes(max)
                ),
                Some(format!("dpx purge --max-size {max}")),
            ),
            (Ok(size), _) => check(
                "cache",
                Status::Ok,
                format!("{} holds {}", dir.display(), human_bytes(size)),
                None,
            ),
            (Err(e), _) => check(
                "cache",
                Status::Problem,
                format!("cannot read the cache: {e}"),
                Some("dpx cache verify".into()),
            ),
        });
    } else {
        checks.push(check(
            "cache",
            Status::Ok,
            format!(
                "{} does not exist yet (it is made on first use)",
                dir.display()
            ),
            None,
        ));
    }
    let free = tokio::task::spawn_blocking(move || crate::cache::free_space(&dir))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    checks.push(match free {
        Ok(free) if free < FULL_DISK => check(
            "disk",
            Status::Problem,
            format!(
                "{} free where the cache is: downloads will fail",
                human_bytes(free)
            ),
            Some("dpx purge --older-than 30d (or --max-size SIZE)".into()),
        ),
        Ok(free) if free < LOW_DISK => check(
            "disk",
            Status::Warning,
            format!("only {} free where the cache is", human_bytes(free)),
            Some("dpx purge --older-than 30d (or --max-size SIZE)".into()),
        ),
        Ok(free) => check(
            "disk",
            Status::Ok,
            format!("{} free where the cache is", human_bytes(free)),
            None,
        ),
        Err(e) => check(
            "disk",
            Status::Note,
            format!("cannot measure free space: {e}"),
            None,
        ),
    });
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_conf_with_a_docker_hub_mirror() {
        let conf = "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n[[registry.mirror]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n";
        assert!(conf_mirrors_docker_hub(conf, "127.0.0.1:5000"));
        assert!(!conf_mirrors_docker_hub(conf, "127.0.0.1:5001"));
        let other = conf.replace(
            "prefix = \"docker.io\"\nlocation = \"docker.io\"",
            "location = \"quay.io\"",
        );
        assert!(!conf_mirrors_docker_hub(&other, "127.0.0.1:5000"));
        assert!(!conf_mirrors_docker_hub("not toml [", "127.0.0.1:5000"));
    }
}
