#!/usr/bin/env bash
# Measures, in one run, the images/s of the same Python checker
# (check_commit.py) spawned per image (--checker) and run as a persistent
# server (--checker-server), on one campaign: a commit-word scenario of 30
# transactions with torn samples, so there are thousands of images.
#
#   examples/checkers/measure-ratio.sh            # builds pmemlab (debug) first
#   PMEMLAB=path/to/pmemlab JOBS=2 examples/checkers/measure-ratio.sh
#
# The per-image run stops after PER_IMAGE_STATES images (default 200); the
# server run checks the whole campaign. Prints both rates and their ratio.
# PYTHON defaults to /usr/bin/python3 when there is one (a pyenv shim in
# front of python3 costs ~0.5 s per start, which would flatter the server).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${PMEMLAB:-}" ]; then
  (cd "$root" && cargo build -q -p pmemlab)
  PMEMLAB="${CARGO_TARGET_DIR:-$root/target}/debug/pmemlab"
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi
JOBS=${JOBS:-2}
PER_IMAGE_STATES=${PER_IMAGE_STATES:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The scenario: transaction t stores "RECORD t" (padded to a page) at page t, then "COMMIT t" at
# offset 0, then fsyncs (no barrier between the two: violations).
"$PYTHON" - "$work/scenario.json" <<'PY'
import json, sys
steps = []
for t in range(1, 31):
    steps += [
        # A record of a whole page, so that torn samples (512 B sectors) differ.
        {"op": "write", "device": "nv1", "offset": 4096 * t, "text": f"RECORD {t}".ljust(4096, ".")},
        {"op": "write", "device": "nv1", "offset": 0, "text": f"COMMIT {t}"},
        {"op": "fsync", "device": "nv1"},
    ]
json.dump({"version": 1, "name": "commit word, 30 transactions", "seed": 1,
           "model": {"tear": "512B"},
           "devices": [{"id": "nv1", "mem-path": "./nv1.img", "size": "1M"}],
           "steps": steps}, open(sys.argv[1], "w"))
PY

rate() { "$PYTHON" -c 'import json,sys; r=json.load(sys.stdin); c=r["campaign"]; print(c["checked"], r["states_per_s"])'; }
common=("$work/scenario.json" --json --no-shrink --no-progress -j "$JOBS" --torn-samples 200)
read -r n1 r1 < <("$PMEMLAB" explore "${common[@]}" --max-states "$PER_IMAGE_STATES" \
  --checker "$PYTHON $here/check_commit.py" | rate || true)
read -r n2 r2 < <("$PMEMLAB" explore "${common[@]}" \
  --checker-server "$PYTHON $here/check_commit.py --server" | rate || true)
"$PYTHON" - "$n1" "$r1" "$n2" "$r2" "$JOBS" <<'PY'
import sys, os
n1, r1, n2, r2, jobs = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
load = os.getloadavg()[0]
print(f"per image: {n1} images, {r1:.1f} images/s")
print(f"server:    {n2} images, {r2:.1f} images/s")
print(f"ratio:     {r2 / r1:.0f}x  (jobs {jobs}, {os.cpu_count()} cores, load average {load:.1f})")
PY
