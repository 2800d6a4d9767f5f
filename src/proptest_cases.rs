//! How many cases a property test runs: a bounded number in CI, many more in
//! the reliability suite's long mode (`DPX_TEST_LONG=1`, the switch the
//! integration tests read through `support::long_mode`).

use proptest::test_runner::{Config, RngSeed};

/// Cases per property in an ordinary `cargo test`.
pub const CI_CASES: u32 = 256;
/// Cases per property under `DPX_TEST_LONG=1`.
pub const LONG_CASES: u32 = 8192;

/// The seed of an ordinary run's cases.
pub const CI_SEED: u64 = 0x6470_7819;

/// The config every `proptest!` block in dpx starts with. An ordinary run
/// draws the same cases every time (a landing is never failed by an input
/// drawn for the first time); the long mode draws new ones each run, and
/// what it finds becomes a named regression test. `PROPTEST_RNG_SEED`
/// picks a seed by hand.
pub fn config() -> Config {
    let long = std::env::var_os("DPX_TEST_LONG").is_some_and(|v| v == "1");
    let default = Config::default();
    let rng_seed = match default.rng_seed {
        RngSeed::Random if !long => RngSeed::Fixed(CI_SEED),
        seed => seed,
    };
    Config {
        cases: if long { LONG_CASES } else { CI_CASES },
        rng_seed,
        ..default
    }
}
