#!/usr/bin/env bash
# The main job of pmemlab: builds the browser visualizer and serves it on
# 127.0.0.1 (it opens on the playground; the lessons are built in).
# Installs what it needs first (idempotent; the first run compiles trunk
# and wasm-bindgen-cli, about 12 minutes).
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
port=${PMEMLAB_PORT:-8417}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 50); do
  port_free "$port" && break
  port=$((port + 1))
done
echo "pmemlab visualizer: http://127.0.0.1:$port/   (benchmark: http://127.0.0.1:$port/bench.html; Ctrl-C stops)"
exec python3 -m http.server --bind 127.0.0.1 --directory target/site "$port"
