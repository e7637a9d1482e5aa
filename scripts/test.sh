#!/usr/bin/env bash
# Runs every test of pmemlab. Installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-toolchain.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
echo "== pmem-core for wasm32-unknown-unknown"
cargo build -p pmem-core --target wasm32-unknown-unknown
./scripts/ensure-qemu.sh >/dev/null # QEMU, the guest kernel and busybox for the oracle tests
./scripts/ensure-clients.sh # SQLite, LMDB and PMDK for the real clients' tests (native-runner/tests/clients.rs)
echo "== cargo test --workspace"
cargo test --workspace
echo "== fuzz harnesses: their invariants, negative controls and regressions (fuzz/, a workspace of its own)"
# libfuzzer-sys compiles libFuzzer's C++ sources.
source scripts/lib/debian-packages.sh
ensure_debian_packages g++
(cd fuzz && CARGO_TARGET_DIR=../target cargo test --quiet)
echo "== pmem-web for wasm32-unknown-unknown (clippy, -D warnings)"
cargo clippy -p pmem-web --target wasm32-unknown-unknown -- -D warnings
echo "== cargo doc (no warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== web visualizer end to end, in headless Chromium"
./scripts/test-web-e2e.sh
echo "all tests passed"
