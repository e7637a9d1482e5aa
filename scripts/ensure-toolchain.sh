#!/usr/bin/env bash
# Installs what the Rust build needs, idempotently: the wasm32 target and the
# rustfmt / clippy components.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust with rustup first" >&2
  exit 1
fi
installed_targets=$(rustup target list --installed)
grep -qx wasm32-unknown-unknown <<<"$installed_targets" || rustup target add wasm32-unknown-unknown
installed_components=$(rustup component list --installed)
grep -q '^rustfmt' <<<"$installed_components" || rustup component add rustfmt
grep -q '^clippy' <<<"$installed_components" || rustup component add clippy
# GNU parallel runs the sharded campaign of native-runner/tests/merge.rs (and examples/scale-out/).
source "$(dirname "$0")/lib/debian-packages.sh"
ensure_debian_packages parallel
