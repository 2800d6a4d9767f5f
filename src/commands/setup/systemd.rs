//! `dpx setup systemd`: a `.socket` + `.service` pair for socket activation
//! (`engines::systemd` writes them), printed or installed.

use std::process::ExitCode;

use crate::cli::{GlobalArgs, SetupSystemdArgs};
use crate::commands::{Context, Output};
use crate::engines::systemd::{plan, write_units};
use crate::stdout::{print_json, with_stdout};

pub async fn run(
    ctx: &Context,
    global: &GlobalArgs,
    args: SetupSystemdArgs,
) -> anyhow::Result<ExitCode> {
    let system = args.system;
    let (addr, plan) = plan(
        &ctx.config,
        &ctx.cache_dir,
        global.config.as_deref(),
        args.listen.as_deref(),
        args.idle_timeout,
        args.unit_dir.as_deref(),
        system,
    )?;
    if args.apply {
        let plan_dir = plan.dir.clone();
        let (socket, service) = (plan.socket.text.clone(), plan.service.text.clone());
        tokio::task::spawn_blocking(move || write_units(&plan_dir, &socket, &service)).await??;
    }
    if ctx.output == Output::Json {
        print_json(&plan)?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.apply {
        if ctx.output == Output::Human {
            eprintln!(
                "dpx setup systemd: wrote {} and {}\nnow run:\n  {}\nthen the first connection to http://{addr} starts dpx",
                plan.socket.path.display(),
                plan.service.path.display(),
                plan.commands.join("\n  ")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let text = format!(
        "# {}\n{}\n# {}\n{}\n# Install with `dpx setup systemd{} --apply`, or write these files, then run:\n#   {}\n",
        plan.socket.path.display(),
        plan.socket.text,
        plan.service.path.display(),
        plan.service.text,
        if system { " --system" } else { "" },
        plan.commands.join("\n#   ")
    );
    with_stdout(|out| out.write_all(text.as_bytes()))?;
    Ok(ExitCode::SUCCESS)
}
