#!/usr/bin/env bash
# Runs dpx's whole test suite on a fresh Debian machine: installs the real
# components the integration tests talk to (the CNCF distribution registry,
# skopeo, the Docker daemon, containerd, podman, fish, systemd-socket-activate;
# nginx and wrk for bench/run) when missing, then the tests, then the
# benchmark harness's smoke test (bench/run --quick).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v dockerd >/dev/null || need+=(docker.io)
command -v ctr >/dev/null || need+=(containerd)
command -v podman >/dev/null || need+=(podman)
command -v fish >/dev/null || need+=(fish)  # dpx env --format fish is sourced by a real fish
command -v systemd-socket-activate >/dev/null || need+=(systemd)
command -v openssl >/dev/null || need+=(openssl)      # test certificates for dpx serve over HTTPS
command -v unshare >/dev/null || need+=(util-linux)   # network namespaces (unshare, nsenter) for off-loopback tests
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v strace >/dev/null || need+=(strace)   # the crash suite checks each store path fsyncs before its rename
command -v promtool >/dev/null || need+=(prometheus)   # promtool check metrics parses GET /metrics
command -v nginx >/dev/null || need+=(nginx)          # bench/run --quick: the static-file reference
command -v wrk >/dev/null || need+=(wrk)              # bench/run --quick: requests per second
command -v ab >/dev/null || need+=(apache2-utils)    # bench/run --quick: HEAD requests per second (wrk 4.1 hangs on HEAD)
command -v chromium >/dev/null || need+=(chromium)  # the status page, tested in a real (headless) browser
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need[@]}"
fi

# The tests refuse to skip: a missing component is a failure, not a pass.
export DPX_TEST_REQUIRE_ALL=1
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
# The suite's output is kept and searched for the passwords and tokens the
# tests use (tests/support/secrets.txt): a hit fails the run.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --all-targets -- "$@" 2>&1 | tee "$log"
if grep -F -n -f tests/support/secrets.txt "$log"; then
  echo "a test password or token appears in the test output (above)" >&2
  exit 1
fi
# The benchmark harness runs (a smoke test: it checks that it runs, never the numbers).
python3 bench/run --quick
