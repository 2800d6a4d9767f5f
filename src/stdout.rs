//! Writing results to stdout. A reader that goes away (`dpx ... | head`)
//! is not an error: like ripgrep, dpx then exits quietly with status 0.

use std::io::{self, Write};

/// Exits the process quietly if `result` is a broken pipe; passes anything else on.
pub fn quiet_on_broken_pipe<T>(result: io::Result<T>) -> io::Result<T> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other,
    }
}

/// Runs `write` against a locked stdout, then flushes; a closed pipe ends the process quietly.
pub fn with_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let mut out = io::stdout().lock();
    quiet_on_broken_pipe(write(&mut out).and_then(|()| out.flush()))
}

/// One pretty-printed JSON document and a newline: every command's `--json` output.
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// `write_json` to stdout.
pub fn print_json(value: &impl serde::Serialize) -> io::Result<()> {
    with_stdout(|out| write_json(out, value))
}
