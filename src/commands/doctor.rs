//! `dpx doctor`: why pulls might not go through the cache. Each check is one
//! line (ok, note, warning or problem) with the command that fixes it; the
//! exit status is 1 when any check is a problem.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;

use super::{Context, Output};
use crate::cli::DoctorArgs;
use crate::config::Config;
use crate::daemon::v2_probe::{Answer, V2Probe, reqwest_reason};
use crate::engines::endpoint::Origin;
use crate::engines::{Check, Endpoint, Status, containerd, docker, mirrored_registries, podman};
use crate::reference::HostKey;
use crate::stdout::{print_json, with_stdout};
use crate::units::human_bytes;

/// How long the mirror and each upstream get to answer `GET /v2/`.
const HTTP_DEADLINE: Duration = Duration::from_secs(5);
/// Free disk below this is a problem, below `LOW_DISK` a warning.
const FULL_DISK: u64 = 512 * 1024 * 1024;
const LOW_DISK: u64 = 5 * 1024 * 1024 * 1024;

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
    let registries_conf = args.registries_conf.clone().or_else(podman::conf_override);
    let (serve, docker, containerd, podman, upstreams, disk) = tokio::join!(
        serve_check(&endpoint, &ctx.cache_dir),
        docker::check(&endpoint),
        containerd::check(
            &endpoint,
            &args.hosts_dir,
            &args.containerd_config,
            &registries
        ),
        podman::check(&endpoint, registries_conf),
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
            Origin::Env => "DPX_LISTEN",
            Origin::File | Origin::Flag => "[serve] listen",
            Origin::Default => "the default",
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

/// An HTTP client for the upstreams, with the doctor's deadline, through the
/// environment's proxy.
fn upstream_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HTTP_DEADLINE)
        .connect_timeout(HTTP_DEADLINE)
        .redirect(reqwest::redirect::Policy::limited(3))
        .build()
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
    let answer = V2Probe::new(HTTP_DEADLINE, HTTP_DEADLINE)
        .probe(&endpoint.host_port)
        .await;
    match answer {
        Answer::Registry { status } if (200..300).contains(&status) || status == 401 => {
            Check::new(
                "serve",
                Status::Ok,
                format!(
                    "a registry answers at {} (HTTP {status}){daemon_note}; status page: {}{}",
                    endpoint.url(),
                    endpoint.url(),
                    crate::server::PAGE_PATH
                ),
                None,
            )
        }
        Answer::Registry { status } | Answer::Other { status } => Check::new(
            "serve",
            Status::Problem,
            format!(
                "something else answers at {} (HTTP {status}, not a registry API): another \
                 program has the port",
                endpoint.url()
            ),
            Some("pick a free port: [serve] listen = \"127.0.0.1:PORT\" in the config file, then dpx serve".into()),
        ),
        Answer::Nothing { reason } => Check::new(
            "serve",
            Status::Problem,
            format!(
                "nothing answers at {}: {reason}{daemon_note}",
                endpoint.url()
            ),
            fix,
        ),
    }
}

/// `GET /v2/` of each upstream: any answer from a registry (a 401 included)
/// means it can be reached.
async fn upstream_checks(config: &Config, registries: &[String]) -> Vec<Check> {
    let client = match upstream_client() {
        Ok(client) => client,
        Err(e) => {
            let message = format!(
                "cannot set up an HTTP client: {}",
                reqwest_reason(&e, HTTP_DEADLINE)
            );
            return vec![Check::new("upstream", Status::Problem, message, None)];
        }
    };
    let probes = registries.iter().map(|host| {
        let url = config.registry_url(host);
        let client = client.clone();
        async move {
            let name = format!("upstream {host}");
            match client.get(format!("{url}/v2/")).send().await {
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 401 => Check::new(
                    "upstream",
                    Status::Ok,
                    format!("{host} ({url}) can be reached (HTTP {})", resp.status().as_u16()),
                    None,
                ),
                Ok(resp) => Check::new(
                    "upstream",
                    Status::Warning,
                    format!(
                        "{host} ({url}) answers HTTP {}: pulls of what is not cached may fail \
                         (dpx serve still answers what it has)",
                        resp.status().as_u16()
                    ),
                    None,
                ),
                Err(e) => Check::new(
                    "upstream",
                    Status::Problem,
                    format!("{name} ({url}) cannot be reached: {}", reqwest_reason(&e, HTTP_DEADLINE)),
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
    let mut keys = vec![HostKey::of_registry(registry).into_string()];
    for up in crate::registry::Upstream::configured(config, registry) {
        let key = HostKey::of_endpoint(up.url()).folded().into_string();
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
        return vec![Check::new(
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
                return Check::new(
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
            Check::new(
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
            return vec![Check::new(
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
            let line = super::quota_report::describe(&s.into(), now);
            let why = match remaining {
                Some(0) => Some("no pulls left".to_string()),
                Some(r) if r <= reserve => Some(format!(
                    "at or below the reserve of {reserve} ([ratelimit] reserve)"
                )),
                _ => None,
            };
            if let Some(why) = why {
                Check::new(
                    "ratelimit",
                    Status::Warning,
                    format!("{line}: {why}"),
                    Some(
                        "dpx ratelimit (the quota now; pulls are freed as the window slides)"
                            .into(),
                    ),
                )
            } else {
                Check::new("ratelimit", Status::Ok, line, None)
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
            (Ok(size), Some(max)) if size > max => Check::new(
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
            (Ok(size), _) => Check::new(
                "cache",
                Status::Ok,
                format!("{} holds {}", dir.display(), human_bytes(size)),
                None,
            ),
            (Err(e), _) => Check::new(
                "cache",
                Status::Problem,
                format!("cannot read the cache: {e}"),
                Some("dpx cache verify".into()),
            ),
        });
    } else {
        checks.push(Check::new(
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
        Ok(free) if free < FULL_DISK => Check::new(
            "disk",
            Status::Problem,
            format!(
                "{} free where the cache is: downloads will fail",
                human_bytes(free)
            ),
            Some("dpx purge --older-than 30d (or --max-size SIZE)".into()),
        ),
        Ok(free) if free < LOW_DISK => Check::new(
            "disk",
            Status::Warning,
            format!("only {} free where the cache is", human_bytes(free)),
            Some("dpx purge --older-than 30d (or --max-size SIZE)".into()),
        ),
        Ok(free) => Check::new(
            "disk",
            Status::Ok,
            format!("{} free where the cache is", human_bytes(free)),
            None,
        ),
        Err(e) => Check::new(
            "disk",
            Status::Note,
            format!("cannot measure free space: {e}"),
            None,
        ),
    });
    checks
}
