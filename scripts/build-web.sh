#!/usr/bin/env bash
# Builds the browser visualizer into target/site: trunk (release), with
# wasm-bindgen and wasm-opt from the tools ensure-web-tools.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-web-tools.sh
eval "$(./scripts/ensure-web-tools.sh --path)"
# --offline: trunk must use the pinned tools on PATH, never download any.
trunk build --release --offline --config static/Trunk.toml >target/trunk-build.log 2>&1 || {
  cat target/trunk-build.log >&2
  echo "trunk build failed (log above, also in target/trunk-build.log)" >&2
  exit 1
}
wasm=$(ls target/site/*.wasm)
echo "built target/site: $(basename "$wasm") $(stat -c %s "$wasm") bytes, $(gzip -9 -c "$wasm" | wc -c) gzipped"
