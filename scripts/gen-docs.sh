#!/usr/bin/env bash
# Regenerates shell completions and the man page from the clap definitions.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
for shell in bash zsh fish; do
  target/debug/dpx completions "$shell" > "completions/dpx.$shell"
done
target/debug/dpx man > man/dpx.1
