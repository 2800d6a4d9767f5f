//! Exit codes a shell script can branch on, and the error type that marks
//! bad input. Ground floor: commands and the library below them import it.

/// Something failed (network, upstream, disk).
pub const FAILURE: u8 = 1;
/// The input was wrong: a malformed reference, a bad config file or flag.
pub const USAGE: u8 = 2;
/// A registry refused the credentials (`dpx login`).
pub const AUTH_FAILED: u8 = 3;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Marks an error as credentials being refused (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);
