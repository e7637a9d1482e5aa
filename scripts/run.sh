#!/usr/bin/env bash
# The main job of pmemlab. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-toolchain.sh
cargo run --release -q -p pmemlab -- demo "$@"
