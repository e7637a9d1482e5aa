#!/usr/bin/env bash
# Installs what the real clients of native-runner/tests/clients.rs need
# (idempotent; see examples/programs/{sqlite,lmdb,pmdk}/README.md):
#
# - python3 (Debian's /usr/bin/python3, with its sqlite3 module) and
#   python3-lmdb (LMDB's binding, on the system liblmdb);
# - libpmemobj-dev (PMDK's libpmemobj, to build pmdk-tx.c) and pmdk-tools
#   (pmempool check); gcc builds the C programs.
#
# `apt-get update` runs once, and only when one is missing.
set -euo pipefail
packages=(python3 python3-lmdb libpmemobj-dev pmdk-tools gcc)
source "$(dirname "$0")/lib/debian-packages.sh"
ensure_debian_packages "${packages[@]}"
