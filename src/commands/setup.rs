//! `dpx setup docker|containerd|podman`: the engine configuration that sends
//! pulls through the dpx mirror at [`Endpoint`].

mod systemd;

use std::process::ExitCode;

use anyhow::Context as _;

use super::{Context, Output};
use crate::cli::{GlobalArgs, SetupCommand, SetupContainerdArgs, SetupDockerArgs};
use crate::engines::containerd::{self, CONTAINERD_RESTART, Planned};
use crate::engines::docker::{DOCKER_RELOAD, MIRRORS_KEY, apply_docker};
use crate::engines::podman::{self, PODMAN_DROP_IN, PODMAN_ROOTLESS_DROP_IN};
use crate::engines::{Endpoint, mirrored_registries};
use crate::stdout::{print_json, with_stdout};

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    command: SetupCommand,
) -> anyhow::Result<ExitCode> {
    let endpoint = || Endpoint::from_config(&ctx.config);
    match command {
        SetupCommand::Docker(args) => docker(ctx, &endpoint()?, args).await,
        SetupCommand::Containerd(args) => containerd(ctx, &endpoint()?, args).await,
        SetupCommand::Systemd(args) => systemd::run(ctx, global, args).await,
        SetupCommand::Podman => {
            let endpoint = endpoint()?;
            let text = podman::stanzas(&ctx.config, &endpoint)?;
            if ctx.output == Output::Json {
                print_json(&serde_json::json!({
                    "mirror": endpoint.host_port,
                    "registries": mirrored_registries(&ctx.config)?,
                    "file": PODMAN_DROP_IN,
                    "rootless_file": PODMAN_ROOTLESS_DROP_IN,
                    "content": text,
                }))?;
                return Ok(ExitCode::SUCCESS);
            }
            with_stdout(|out| out.write_all(text.as_bytes()))?;
            if ctx.output == Output::Human {
                eprintln!(
                    "Save this as {PODMAN_DROP_IN} (or, rootless, {PODMAN_ROOTLESS_DROP_IN}); \
                     podman reads it on its next pull. Check with: dpx doctor"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

// ---------------------------------------------------------------- docker

async fn docker(
    ctx: &Context,
    endpoint: &Endpoint,
    args: SetupDockerArgs,
) -> anyhow::Result<ExitCode> {
    let mirror = endpoint.url();
    if !args.apply {
        let entry = serde_json::json!({ MIRRORS_KEY: [mirror] });
        print_json(&entry)?;
        if ctx.output == Output::Human {
            eprintln!(
                "Add this to {} (or run: dpx setup docker --apply), then reload the daemon: {DOCKER_RELOAD}",
                args.file.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let file = args.file.clone();
    let outcome = tokio::task::spawn_blocking(move || apply_docker(&file, &mirror))
        .await
        .context("the setup task failed")??;
    if ctx.output == Output::Json {
        print_json(&serde_json::json!({
            "file": args.file,
            "mirror": endpoint.url(),
            "changed": outcome.changed,
            "backup": outcome.backup,
        }))?;
    } else if outcome.changed {
        match &outcome.backup {
            Some(b) => eprintln!(
                "{}: added {} to {MIRRORS_KEY} (previous file saved as {})",
                args.file.display(),
                endpoint.url(),
                b.display()
            ),
            None => eprintln!(
                "{}: created with {MIRRORS_KEY} [{}]",
                args.file.display(),
                endpoint.url()
            ),
        }
        eprintln!(
            "Reload the Docker daemon to use it: {DOCKER_RELOAD}; then check with: dpx doctor"
        );
    } else {
        eprintln!(
            "{}: {MIRRORS_KEY} already lists {}; nothing changed",
            args.file.display(),
            endpoint.url()
        );
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- containerd

async fn containerd(
    ctx: &Context,
    endpoint: &Endpoint,
    args: SetupContainerdArgs,
) -> anyhow::Result<ExitCode> {
    let report = containerd::setup(
        &ctx.config,
        endpoint,
        &args.hosts_dir,
        &args.containerd_config,
        args.apply,
    )
    .await?;
    let apply = args.apply;
    let restart = report.cri.as_ref().is_some_and(|c| c.text.is_some());
    if ctx.output == Output::Json {
        let entry = |f: &Planned| {
            serde_json::json!({
                "file": f.path,
                "changed": f.text.is_some(),
                "backup": f.backup,
                "content": if apply { None } else { f.text.as_deref() },
            })
        };
        print_json(&serde_json::json!({
            "mirror": endpoint.url(),
            "applied": apply,
            "files": report.hosts.iter().map(entry).collect::<Vec<_>>(),
            "containerd_config": report.cri.as_ref().map(entry),
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let cri_table = containerd::registry_table_name(2);
    if !apply {
        let mut text = String::new();
        for f in report.hosts.iter().chain(report.cri.as_ref()) {
            match &f.text {
                Some(t) => text.push_str(&format!("# {}\n{t}\n", f.path.display())),
                None => text.push_str(&format!(
                    "# {}: already as dpx writes it\n\n",
                    f.path.display()
                )),
            }
        }
        with_stdout(|out| out.write_all(text.as_bytes()))?;
        if ctx.output == Output::Human {
            eprintln!(
                "Write these with: {} (each changed file is backed up first){}; ctr uses the \
                 hosts files with: ctr image pull --hosts-dir {} IMAGE",
                containerd::apply_command(&args.hosts_dir, &args.containerd_config),
                if restart {
                    format!(", then restart containerd: {CONTAINERD_RESTART}")
                } else {
                    String::new()
                },
                args.hosts_dir.display()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    for f in report.hosts.iter().chain(report.cri.as_ref()) {
        let what = match (&f.text, &f.backup) {
            (None, _) => "unchanged".to_string(),
            (Some(_), Some(b)) => format!("written (previous file saved as {})", b.display()),
            (Some(_), None) => "written".to_string(),
        };
        eprintln!("{}: {what}", f.path.display());
    }
    match &report.cri {
        None => eprintln!(
            "containerd is not installed and {} does not exist: left alone. Its CRI reads the \
             hosts files once {cri_table} config_path names {}",
            args.containerd_config.display(),
            args.hosts_dir.display()
        ),
        Some(_) if restart => eprintln!(
            "Restart containerd to use its new config_path: {CONTAINERD_RESTART}; then check with: dpx doctor"
        ),
        Some(_) => eprintln!(
            "containerd reads these on each pull; ctr uses them with: ctr image pull --hosts-dir {} IMAGE",
            args.hosts_dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- podman
