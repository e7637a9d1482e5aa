#!/usr/bin/env bash
# Runs the pmem-core fuzz targets one after another, each for DURATION seconds.
#
#   fuzz/run.sh DURATION [TARGET...]      (targets default to: device parse)
#
# Only the stable toolchain is installed; cargo-fuzz needs nightly flags, which
# RUSTC_BOOTSTRAP=1 unlocks. One in-process libFuzzer worker per target (no
# -jobs/-workers fork mode): the machine is shared. Corpora go to
# fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET, the full libFuzzer
# output to fuzz/target/logs/TARGET.log (all ignored by git).
#
# No sanitizer by default (FUZZ_SANITIZER=address to add ASan): pmem-core and
# the harnesses forbid unsafe code, so ASan checks only std's and vm-memory's,
# and it costs the device target about 7x (1,200 against 9,100 exec/s here).
set -euo pipefail

if [[ $# -lt 1 || ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: $0 DURATION_SECONDS [TARGET...]   (targets: device parse)" >&2
    exit 2
fi
duration=$1
shift
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(device parse)

cd "$(dirname "$0")/.."
mkdir -p fuzz/target/logs
export RUSTC_BOOTSTRAP=1
status=0
for t in "${targets[@]}"; do
    log=fuzz/target/logs/$t.log
    echo "== $t: ${duration}s, log in $log"
    # -timeout: an input running 10 s counts as a hang.
    if ! cargo fuzz run --sanitizer "${FUZZ_SANITIZER:-none}" "$t" -- -max_total_time="$duration" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status=1
        echo "!! $t failed; see $log and fuzz/artifacts/$t/" >&2
    fi
    grep -E '^#[0-9]+[[:space:]]+DONE|^Done [0-9]+ runs|^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' "$log" || true
    echo "corpus: $(find "fuzz/corpus/$t" -type f | wc -l) files"
done
exit $status
