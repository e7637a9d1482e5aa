#!/usr/bin/env bash
# Installs what the browser build needs, idempotently:
# - wasm-bindgen-cli, exactly the wasm-bindgen version of Cargo.lock
#   (`cargo install`, the way wasm-bindgen documents; no prebuilt binary
#   can be fetched here). --no-default-features leaves out the TLS stack
#   (rustls, ring) that only wasm-bindgen-test-runner's downloads use;
# - wasm-opt from the npm package binaryen 132 into tools/web/node_modules
#   (Debian's binaryen is too old for current wasm-bindgen output; the npm
#   package ships it compiled to wasm, seconds to install).
# Prints nothing when everything is already there. Prints the PATH addition
# for callers with --path (`eval "$(scripts/ensure-web-tools.sh --path)"`).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools_bin="$root/tools/web/node_modules/.bin"
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"

if [ "${1:-}" = "--path" ]; then
  echo "export PATH=\"$tools_bin:$cargo_bin:\$PATH\""
  exit 0
fi

./scripts/ensure-toolchain.sh
export PATH="$tools_bin:$cargo_bin:$PATH"

wbg_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$wbg_version" ]; then
  echo "Cargo.lock has no wasm-bindgen entry: run cargo build -p pmem-web --target wasm32-unknown-unknown first" >&2
  exit 1
fi
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$wbg_version" ]; then
  echo "== installing wasm-bindgen-cli $wbg_version (compiles it: about 2 minutes on 2 idle cores)"
  cargo install -q --no-default-features wasm-bindgen-cli --version "=$wbg_version"
fi

if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "132" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: install Node.js (Debian: apt-get install nodejs npm) for wasm-opt" >&2
    exit 1
  fi
  echo "== installing wasm-opt (npm binaryen 132) into tools/web"
  (cd tools/web && npm ci --no-audit --no-fund --silent)
fi
