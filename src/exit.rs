//! Exit codes a shell script can branch on, and the error type that marks
//! bad input. Ground floor: commands and the library below them import it.

/// Something failed (network, upstream, disk); also `dpx cache verify` finding
/// damage and `dpx doctor` finding a problem (warnings and notes exit 0).
pub const FAILURE: u8 = 1;
/// The input was wrong: a malformed reference, a bad config file or flag.
pub const USAGE: u8 = 2;
/// Stopped to save the upstream pull quota: `dpx prefetch` reached
/// `--max-pulls` or `[ratelimit] reserve` before every image was fetched, or
/// `dpx pull` did not ask upstream during the pause after a 429.
pub const QUOTA: u8 = 3;
/// Not an error: fewer pulls remain than asked for (`ratelimit --min-remaining`).
pub const QUOTA_LOW: u8 = 4;
/// A registry refused the credentials (`dpx login`).
pub const AUTH_FAILED: u8 = 5;
/// Interrupted by Ctrl-C.
pub const INTERRUPTED: u8 = 130;
/// Stopped by SIGTERM (cleaned up like Ctrl-C).
pub const TERMINATED: u8 = 143;

/// Marks an error as the user's input being wrong (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Marks an error as credentials being refused (exit code 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);
