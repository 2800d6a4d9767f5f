//! Shell completions and man pages, generated from the clap definitions
//! (`dpx completions SHELL`, and the hidden `dpx man [--dir DIR]` that
//! scripts/gen-docs.sh uses to refresh completions/ and man/).

use std::io::Write;
use std::path::Path;

use clap::CommandFactory as _;
use roff::{Roff, bold, roman};

use crate::cli::Cli;

/// The completion script for `shell`, rendered to memory (clap_complete
/// panics on a failed write).
pub fn completions(shell: clap_complete::Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, "dpx", &mut text);
    text
}

/// dpx.1: clap's sections plus configuration, environment, files and exit status.
pub fn main_page(w: &mut dyn Write) -> std::io::Result<()> {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    clap_mangen::Man::new(cmd).render(w)?;
    w.write_all(extra_sections().to_roff().as_bytes())
}

/// Every man page: dpx.1 and one per visible subcommand (dpx-pull.1,
/// dpx-cache-ls.1, ...), written into `dir`.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut names = Vec::new();
    let mut main = Vec::new();
    main_page(&mut main)?;
    std::fs::write(dir.join("dpx.1"), main)?;
    names.push("dpx.1".to_string());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_subpages(sub, dir, &mut names)?;
    }
    Ok(names)
}

fn write_subpages(cmd: &clap::Command, dir: &Path, names: &mut Vec<String>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_subpages(sub, dir, names)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let name = man.get_filename();
    let mut page = Vec::new();
    man.render(&mut page)?;
    let mut roff = Roff::new();
    roff.control("SH", ["SEE ALSO"]).text([
        bold("dpx"),
        roman("(1) for configuration, environment, files and exit status"),
    ]);
    page.extend_from_slice(roff.to_roff().as_bytes());
    std::fs::write(dir.join(&name), page)?;
    names.push(name);
    Ok(())
}

/// One `.TP` entry per (term, text).
fn entries(roff: &mut Roff, items: &[(&str, &str)]) {
    for (term, text) in items {
        roff.control("TP", [])
            .text([bold(*term)])
            .text([roman(*text)]);
    }
}

fn extra_sections() -> Roff {
    let mut r = Roff::new();
    r.control("SH", ["CONFIGURATION"]).text([roman(
        "A TOML file: --config, else DPX_CONFIG, else dpx/config.toml in the platform's \
         config directory (~/.config/dpx/config.toml on Linux). Settings come from built-in \
         defaults, then the file, then the environment, then flags; \
         dpx config show prints each effective value and where it came from, and the README \
         lists every key with its default. Tables: [registries.\"HOST\"] (url), [cache] \
         (dir, tag_ttl, max_blob_size, lock_timeout, max_size), [serve] (listen, \
         max_connections, header_timeout, idle_timeout, registries), [network] (retries, \
         low_speed_limit, low_speed_time). A mistake in the file is an error that names the \
         key, line and column, never the value.",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    entries(
        &mut r,
        &[
            ("DPX_CONFIG", "The config file (like --config)."),
            ("DPX_CACHE_DIR", "The cache directory (like --cache-dir)."),
            (
                "DPX_LISTEN",
                "The address dpx serve listens on (like serve --listen), and the one dpx setup, env and doctor name.",
            ),
            (
                "DPX_LOG",
                "A tracing filter for log output, e.g. dpx=debug.",
            ),
            (
                "DPX_LOG_MAX_SIZE",
                "The size at which a daemon's log file is rotated (default 10MiB; two older files are kept).",
            ),
            (
                "DOCKER_HOST",
                "The Docker daemon dpx doctor asks (through docker info).",
            ),
            (
                "CONTAINERS_REGISTRIES_CONF",
                "The registries.conf dpx doctor checks, as podman does.",
            ),
            (
                "HTTPS_PROXY, HTTP_PROXY, NO_PROXY",
                "Proxies for upstream registries.",
            ),
        ],
    );
    r.control("SH", ["FILES"]);
    entries(
        &mut r,
        &[
            ("~/.config/dpx/config.toml", "The default config file."),
            (
                "~/.cache/dpx/",
                "The default cache: blobs/, manifests/, index/, tmp/, locks/.",
            ),
            (
                "/etc/docker/daemon.json",
                "The Docker daemon's registry-mirrors (dpx setup docker --apply).",
            ),
            (
                "/etc/containerd/certs.d/HOST/hosts.toml",
                "containerd's mirrors (dpx setup containerd).",
            ),
            (
                "/etc/containers/registries.conf.d/",
                "podman's mirrors (dpx setup podman).",
            ),
        ],
    );
    r.control("SH", ["EXIT STATUS"]);
    entries(
        &mut r,
        &[
            ("0", "Success."),
            (
                "1",
                "A failure (network, upstream, disk); dpx cache verify found damage; dpx doctor found a problem.",
            ),
            (
                "2",
                "Bad input: a malformed reference, config file or flag.",
            ),
            ("130", "Interrupted (Ctrl-C)."),
        ],
    );
    r
}
