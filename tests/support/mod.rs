//! Test support: the fake hub, real components, and the dpx binary.
#![allow(dead_code)]

pub mod distribution;
pub mod dpx;
pub mod engines;
pub mod http;
pub mod hub;
pub mod layout;
pub mod push;

/// Asserts a finished command succeeded; the panic carries its stderr.
pub fn assert_success(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
