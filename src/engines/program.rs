//! Asking an engine's own program (`docker info`, `podman --version`) with a deadline.

use std::time::Duration;

/// How long `docker info` (or `--version` of an engine) may take.
const PROGRAM_DEADLINE: Duration = Duration::from_secs(15);

/// Runs a program with a deadline; `None` when it is not installed.
pub(crate) async fn program_output(
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

pub(crate) async fn installed(program: &str) -> bool {
    program_output(program, &["--version"]).await.is_some()
}

pub(crate) fn same_url(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}
