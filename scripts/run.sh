#!/usr/bin/env bash
# The main job of pmemlab: builds the browser visualizer and serves it on
# 127.0.0.1 (it opens on the playground; the lessons are built in).
# Installs what it needs first (idempotent; the first run compiles
# wasm-bindgen-cli, about 2.5 minutes on an idle machine).
#
#   ./scripts/run.sh                 build and serve (port 8417, or the next free one)
#   PMEMLAB_PORT=9000 ./scripts/run.sh
#   ./scripts/run.sh --demo [--json] [--seed N]   the command-line demonstration
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-toolchain.sh
if [ "${1:-}" = "--demo" ]; then
  shift
  exec cargo run --release -q -p pmemlab -- demo "$@"
fi
if [ $# -gt 0 ]; then
  echo "unknown option '$1'; use no option (serve the visualizer) or --demo [--json] [--seed N]" >&2
  exit 2
fi
./scripts/build-web.sh
# pmemlab serve: 127.0.0.1 only, port PMEMLAB_PORT or 8417, or the next free
# one; precompressed assets (gzip, brotli) with caching headers.
exec cargo run --release -q -p pmemlab -- serve --dir target/site
