#!/usr/bin/env bash
# A campaign in N shards on this machine with GNU parallel, merged into the
# report of one run:
#
#   examples/scale-out/parallel.sh N OUT_DIR -- EXPLORE_ARGS…
#   examples/scale-out/parallel.sh 4 out -- --workload in-place
#   examples/scale-out/parallel.sh 4 out -- examples/explore/commit-no-barrier.json \
#       --checker-server examples/checkers/check-commit-server.sh
#
# Writes OUT_DIR/shard-I.json (one per shard), OUT_DIR/report.json and
# OUT_DIR/report.html; exits as `pmemlab merge` does (0 clean, 1
# violations, 2 bad input). PMEMLAB names the binary (default: pmemlab on
# PATH). Needs GNU parallel (Debian: apt-get install parallel).
set -euo pipefail
if [ $# -lt 3 ] || [ "$3" != "--" ]; then
  echo "usage: $0 N OUT_DIR -- EXPLORE_ARGS…" >&2
  exit 2
fi
n=$1 out=$2
shift 3
pmemlab=${PMEMLAB:-pmemlab}
mkdir -p "$out"
# Each shard is one job; --jobs 1 inside, since parallel runs the shards side
# by side. Exit status 1 (violations found) is a result, not a failure.
parallel --will-cite --halt now,fail=1 -j "$n" \
  "$pmemlab" explore "$@" --shard '{}/'"$n" --jobs 1 --json --no-progress '>' "$out/shard-{}.json" \
  '; test $? -le 1' ::: $(seq 0 $((n - 1)))
"$pmemlab" merge "$out"/shard-*.json -o "$out/report.json" --html "$out/report.html" --force
