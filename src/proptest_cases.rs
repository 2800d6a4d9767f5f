//! How many cases a property test runs: a bounded number in CI, many more in
//! the reliability suite's long mode (`DPX_TEST_LONG=1`, the switch the
//! integration tests read through `support::long_mode`).

use proptest::test_runner::Config;

/// Cases per property in an ordinary `cargo test`.
pub const CI_CASES: u32 = 256;
/// Cases per property under `DPX_TEST_LONG=1`.
pub const LONG_CASES: u32 = 8192;

/// The config every `proptest!` block in dpx starts with.
pub fn config() -> Config {
    let long = std::env::var_os("DPX_TEST_LONG").is_some_and(|v| v == "1");
    Config {
        cases: if long { LONG_CASES } else { CI_CASES },
        ..Config::default()
    }
}
