//! Test support: the fake hub, real components, and the dpx binary.

pub mod distribution;
pub mod dpx;
pub mod engines;
pub mod http;
pub mod hub;
pub mod layout;
pub mod proc;
pub mod push;
pub mod secrets;

/// The fields of one quota report, as `dpx ratelimit --json` and each entry of
/// `dpx ratelimit --cached --json` print it (one schema for both), sorted.
pub const RATELIMIT_FIELDS: [&str; 15] = [
    "account",
    "authenticated",
    "endpoint",
    "exhausted",
    "hold",
    "limit",
    "limited",
    "message",
    "observed",
    "observed_at",
    "registry",
    "remaining",
    "retry_after_seconds",
    "source",
    "window_seconds",
];

/// Asserts a finished command succeeded; the panic carries its stderr.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `cmd` with `input` on its stdin (then closed); stdout and stderr
/// are captured.
pub fn output_with_input(cmd: &mut std::process::Command, input: &[u8]) -> std::process::Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write stdin");
    child.wait_with_output().expect("command output")
}

/// The reliability suite's long mode (`DPX_TEST_LONG=1`): more crash rounds,
/// property cases and load time than CI's bounded defaults.
pub fn long_mode() -> bool {
    std::env::var_os("DPX_TEST_LONG").is_some_and(|v| v == "1")
}

/// `ci` normally, `long` under `DPX_TEST_LONG=1`.
pub fn scaled(ci: usize, long: usize) -> usize {
    if long_mode() { long } else { ci }
}
