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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch images (manifest, config, layers) into the cache
    Pull(PullArgs),
    /// Warm the cache for many images at once
    Prefetch(PrefetchArgs),
    /// Run the localhost registry mirror
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
    /// Print shell completions
    Completions {
        /// bash, zsh, fish, elvish or powershell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff)
    #[command(hide = true)]
    Man,
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
    #[command(flatten)]
    pub platform: PlatformArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("password_action").multiple(false)))]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000, or [serve] listen]
    #[arg(long, env = "DPX_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
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
