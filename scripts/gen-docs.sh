#!/usr/bin/env bash
# Regenerates shell completions and the man pages from the clap definitions
# (tests/it/docs.rs fails when the committed files are out of date).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q
for shell in bash zsh fish; do
  target/debug/dpx completions "$shell" > "completions/dpx.$shell"
done
target/debug/dpx completions powershell > completions/dpx.ps1
rm -f man/*.1
target/debug/dpx man --dir man
