//! The command line: global options and the command enum (clap derive).
//! Help, the man page and shell completions all come from these definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::oci::Platform;

#[derive(Debug, Parser)]
#[command(
    name = "dpx",
    version,
    about = "A pull-through cache for container images on your own machine",
    long_about = "dpx keeps container images (manifests, configs, layers) in a local \
digest-addressed cache and serves them to docker, containerd, podman and skopeo as a \
localhost registry mirror, so repeated pulls cost no Docker Hub rate-limit units and keep \
working when the upstream registry is down."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Config file (TOML) [default: the platform's config dir, dpx/config.toml]
    #[arg(long, global = true, env = "DPX_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Cache directory [default: the platform's cache dir, e.g. ~/.cache/dpx]
    #[arg(long, global = true, env = "DPX_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Machine-readable JSON output on stdout
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors (and the result digests)
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Where `--config` and `--cache-dir` came from (flag or env), for `dpx config show`.
    #[arg(skip)]
    pub origins: GlobalOrigins,
}

/// Filled in from the parsed matches: clap's derive does not keep value sources.
#[derive(Debug, Default, Clone, Copy)]
pub struct GlobalOrigins {
    pub config: Option<clap::parser::ValueSource>,
    pub cache_dir: Option<clap::parser::ValueSource>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch images (manifest, config, layers) into the cache
    Pull(PullArgs),
    /// Warm the cache for many images at once
    Prefetch(PrefetchArgs),
    /// Run the localhost registry mirror, with a status page for browsers at /
    Serve(ServeArgs),
    /// Remove images and content from the cache to free disk space
    Purge(PurgeArgs),
    /// Look after the cache: list its images, show its disk use, check it, find it
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// Write cached images to an OCI image layout archive (tar), without the network
    Export(ExportArgs),
    /// Verify an OCI image layout archive and add its images to the cache
    Import(ImportArgs),
    /// Show the Docker Hub pull quota left, without spending a pull (--cached: the last figures seen, no network)
    Ratelimit(RatelimitArgs),
    /// Manifest requests answered from the cache, and manifest GETs/HEADs sent upstream
    Stats,
    /// Run the mirror in the background for this cache: start, stop, status, logs, ensure
    Daemon {
        #[command(subcommand)]
        command: DaemonCommand,
    },
    /// Log in to an upstream registry: check the credentials with it, then store them
    Login(LoginArgs),
    /// Remove a registry's credentials from dpx's store
    Logout(LogoutArgs),
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(hide = true)]
    Man(ManArgs),
    /// Point docker, containerd or podman at the dpx mirror
    Setup {
        #[command(subcommand)]
        command: SetupCommand,
    },
    /// Print the variables a shell or CI job needs to pull through dpx
    Env(EnvArgs),
    /// Check why pulls might not go through the cache, and say how to fix it
    Doctor(DoctorArgs),
    /// Show the effective configuration and where it comes from
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write every man page (dpx.1, dpx-pull.1, ...) into this directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum SetupCommand {
    /// Print the registry-mirrors entry for the Docker daemon, or merge it into daemon.json
    Docker(SetupDockerArgs),
    /// Print (or --apply: write) containerd hosts.toml files for docker.io and each
    /// configured registry, and the CRI's config_path in containerd's config.toml
    Containerd(SetupContainerdArgs),
    /// Print the registries.conf mirror stanzas for podman, buildah and CRI-O
    Podman,
    /// Print (or --apply: install) a systemd .socket + .service pair: the first
    /// connection to the port starts dpx, which stops again when idle
    Systemd(SetupSystemdArgs),
}

#[derive(Debug, Args)]
pub struct SetupDockerArgs {
    /// Merge the mirror into the file (keeping every other key, with a backup)
    #[arg(long)]
    pub apply: bool,
    /// The Docker daemon's configuration file
    #[arg(long, value_name = "PATH", default_value = "/etc/docker/daemon.json")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct SetupContainerdArgs {
    /// Write the files (with a backup of each changed one) instead of printing them
    #[arg(long)]
    pub apply: bool,
    /// containerd's registry hosts directory (its `config_path`)
    #[arg(long, value_name = "DIR", default_value = "/etc/containerd/certs.d")]
    pub hosts_dir: PathBuf,
    /// containerd's configuration file, whose CRI `config_path` --apply sets to --hosts-dir
    #[arg(long, value_name = "FILE", default_value = crate::engines::containerd::DEFAULT_PATH)]
    pub containerd_config: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvFormat {
    /// `export NAME='value'` for sh, bash and zsh (`eval "$(dpx env)"`)
    Sh,
    /// `set -gx NAME 'value'` (`dpx env --format fish | source`)
    Fish,
    /// One JSON object
    Json,
    /// `NAME=value` lines for `$GITHUB_ENV`
    Github,
    /// `NAME=value` lines for a GitLab dotenv report
    Gitlab,
}

#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Output format
    #[arg(long, value_enum, default_value = "sh")]
    pub format: EnvFormat,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// containerd's registry hosts directory to check
    #[arg(long, value_name = "DIR", default_value = "/etc/containerd/certs.d")]
    pub hosts_dir: PathBuf,
    /// containerd's configuration file, whose CRI `config_path` must name --hosts-dir
    #[arg(long, value_name = "FILE", default_value = crate::engines::containerd::DEFAULT_PATH)]
    pub containerd_config: PathBuf,
    /// podman's registries.conf to check [default: $CONTAINERS_REGISTRIES_CONF, else
    /// ~/.config/containers/registries.conf, else /etc/containers/registries.conf]
    #[arg(long, value_name = "FILE")]
    pub registries_conf: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Every setting's effective value and where it came from (default, file, env, flag)
    Show,
    /// Print the config file's path
    Path,
    /// Set a key in the config file (created if missing); the file is changed only
    /// when the result loads, keeping its comments and order
    Set {
        /// A key as `dpx config show` prints it, e.g. cache.tag_ttl or registries."docker.io".url
        key: String,
        /// Its value, e.g. 30m, 20GiB, http://127.0.0.1:5001; lists comma-separated
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove a key from the config file: its default applies again
    Unset {
        /// A key as `dpx config show` prints it
        key: String,
    },
    /// Open the config file in $VISUAL or $EDITOR; the edit is kept only when it loads
    Edit,
}

#[derive(Debug, Args)]
pub struct PlatformArgs {
    /// Platform to take from a multi-arch image, os/arch[/variant] [default: this machine's]
    #[arg(
        long,
        value_name = "OS/ARCH[/VARIANT]",
        conflicts_with = "all_platforms"
    )]
    pub platform: Option<Platform>,
    /// Take every platform of a multi-arch image
    #[arg(long)]
    pub all_platforms: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image references, e.g. alpine, user/app:1, ghcr.io/org/app@sha256:...
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
pub struct PrefetchArgs {
    /// Image references
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// File with one image reference per line (`#` starts a comment)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Read images from a Dockerfile, compose file, .gitlab-ci.yml or GitHub workflow,
    /// or from the files with those usual names in a directory (repeatable)
    #[arg(long = "from", value_name = "PATH")]
    pub from: Vec<PathBuf>,
    /// List the images found, and where, without fetching anything
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Images fetched at the same time
    #[arg(short = 'j', long = "jobs", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Send at most N manifest GETs upstream (each is a pull on Docker Hub); stop
    /// with exit code 3 before the next one
    #[arg(long, value_name = "N")]
    pub max_pulls: Option<u64>,
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("password_action").multiple(false)))]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000, or [serve] listen]
    #[arg(long, env = "DPX_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Stop after this long without a request, e.g. 30m; 0 never [default: [serve] idle_timeout, else never]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub idle_timeout: Option<std::time::Duration>,
    /// Run as this cache's daemon (what `dpx daemon start` runs)
    #[arg(long, hide = true)]
    pub daemon: bool,
    /// Clients must log in (docker login) as a dpx user [or [serve.auth] enabled = true]
    #[arg(long)]
    pub auth: bool,
    /// Listen off loopback without client auth: anyone who reaches the port reads every cached image
    #[arg(long, conflicts_with = "auth")]
    pub insecure_no_auth: bool,
    /// PEM certificate chain: serve HTTPS [or [serve] tls_cert]
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert [or [serve] tls_key]
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Print the password of the dpx user `dpx` (generated the first time) and exit
    #[arg(long, group = "password_action")]
    pub print_password: bool,
    /// Replace the password of the dpx user `dpx` with a new one, print it and exit
    #[arg(long, group = "password_action")]
    pub reset_password: bool,
    /// Read a password on stdin, print its hash for [serve.auth.users] and exit
    #[arg(long, group = "password_action")]
    pub hash_password: bool,
}

#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Start the daemon in the background; returns once it answers, printing its address
    Start(DaemonStartArgs),
    /// Stop the daemon: in-flight requests finish first (SIGTERM, SIGKILL after 20s)
    Stop,
    /// Address, status page, pid, uptime, cache size, requests served, hits and misses (exit 1 if not running)
    Status {
        /// Start the daemon first if it is not running
        #[arg(long)]
        ensure: bool,
        #[command(flatten)]
        start: DaemonStartArgs,
    },
    /// Print the daemon's log
    Logs {
        /// Keep printing new lines as they are written (until Ctrl-C)
        #[arg(short, long)]
        follow: bool,
    },
    /// Start the daemon unless it runs, then print its address (for scripts)
    Ensure(DaemonStartArgs),
}

#[derive(Debug, Args)]
pub struct DaemonStartArgs {
    /// Address to listen on when starting [default: 127.0.0.1:5000, or [serve] listen]
    #[arg(long, env = "DPX_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Stop after this long without a request; 0 never [default: [serve] idle_timeout, else 30m]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub idle_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct SetupSystemdArgs {
    /// Units for the user's own systemd (~/.config/systemd/user) [default]
    #[arg(long, conflicts_with = "system")]
    pub user: bool,
    /// Units for the system's systemd (/etc/systemd/system), run as root
    #[arg(long)]
    pub system: bool,
    /// Write the unit files instead of printing them
    #[arg(long)]
    pub apply: bool,
    /// Where --apply writes the units [default: the scope's unit directory]
    #[arg(long, value_name = "DIR", requires = "apply")]
    pub unit_dir: Option<PathBuf>,
    /// Address the socket listens on [default: 127.0.0.1:5000, or [serve] listen]
    #[arg(long, env = "DPX_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The service stops after this long without a request [default: [serve] idle_timeout, else 30m]
    #[arg(long, value_name = "DURATION", value_parser = crate::units::parse_duration)]
    pub idle_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("policy").required(true).multiple(true)))]
pub struct PurgeArgs {
    /// Remove tags, manifests and blobs not used for this long, e.g. 30d
    #[arg(long, value_name = "AGE", group = "policy", value_parser = crate::units::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Remove the least recently used content until the cache fits, e.g. 20GiB
    #[arg(long, value_name = "SIZE", group = "policy", value_parser = crate::units::parse_size)]
    pub max_size: Option<u64>,
    /// Forget an image (repository, :tag or @digest), keeping blobs other images need (repeatable)
    #[arg(long = "image", value_name = "IMAGE", group = "policy")]
    pub images: Vec<String>,
    /// Remove blobs and manifests no kept tag reaches (once 10 minutes old, so an
    /// unfinished pull keeps its content), and leftover temp and lock files
    #[arg(long, group = "policy")]
    pub unreferenced: bool,
    /// Remove everything
    #[arg(long, group = "policy")]
    pub all: bool,
    /// Do not ask before --all
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// List what would be removed and the bytes reclaimed; change nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List the images in the cache
    Ls,
    /// Disk usage: total, by registry, by repository (shared blobs counted once)
    Du,
    /// Re-hash every blob and manifest; remove what does not match its digest
    Verify(VerifyArgs),
    /// Print the cache directory
    Path,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only report problems; remove nothing
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Archive to write (`-` for stdout)
    #[arg(short = 'o', long = "output", value_name = "FILE.tar")]
    pub output: PathBuf,
    /// Cached image references, e.g. alpine:3.20, ghcr.io/org/app@sha256:...
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// OCI image layout archive, e.g. from `dpx export` or `skopeo copy ... oci-archive:FILE.tar`
    #[arg(value_name = "FILE.tar")]
    pub archive: PathBuf,
}

#[derive(Debug, Args)]
pub struct RatelimitArgs {
    /// Show the last figures seen on any upstream reply (by registry and
    /// identity, with the time seen), without any network request
    #[arg(long)]
    pub cached: bool,
    /// Ask anonymously even when credentials are stored (the quota of this IP address)
    #[arg(long)]
    pub anonymous: bool,
    /// Exit with status 4 when fewer than N pulls remain (a CI job can stop before it pulls)
    #[arg(long, value_name = "N")]
    pub min_remaining: Option<u64>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host, e.g. ghcr.io or 127.0.0.1:5000; docker.io is Docker Hub itself
    /// [default: where docker.io pulls go first: the host of [registries."docker.io"] url
    /// when set, else Docker Hub]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// Username [default: asked for]
    #[arg(short = 'u', long, conflicts_with = "list")]
    pub username: Option<String>,
    /// Read the password or access token from stdin (for scripts; needs --username)
    #[arg(long, requires = "username", conflicts_with = "list")]
    pub password_stdin: bool,
    /// List the credentials dpx would use (registry, username, source; never a secret)
    #[arg(long, conflicts_with = "registry")]
    pub list: bool,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Registry host [default: as for dpx login: the host of [registries."docker.io"] url
    /// when set, else Docker Hub]
    #[arg(value_name = "REGISTRY")]
    pub registry: Option<String>,
}
