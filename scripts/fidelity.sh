#!/usr/bin/env bash
# Runs `pmemlab oracle --json` over every example scenario and the seed's
# command lines, with the host's folios as they are (thp) and pre-read (4k),
# and writes the results into docs/fidelity.md between the "fidelity:begin"
# and "fidelity:end" markers. The JSON reports stay in target/oracle/runs/.
#
# Needs scripts/ensure-qemu.sh (run first) and python3. Takes about 10
# minutes (each run boots a guest under TCG; background-writeback waits 31 s
# for real).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-qemu.sh >/dev/null
cargo build -q -p pmemlab
runs="${CARGO_TARGET_DIR:-target}/oracle/runs"
rm -rf "$runs"
mkdir -p "$runs/scenarios"
# A copy, so that a build during the runs does not change the binary.
bin="$runs/pmemlab"
cp "${CARGO_TARGET_DIR:-target}/debug/pmemlab" "$bin"

# The seed's command line: -object memory-backend-file,id=mem1,share,
# mem-path=./virtio_pmem.img,size=4G -device virtio-pmem-pci,memdev=mem1,id=nv1
# (one device, then two), as scenarios.
cat >"$runs/scenarios/seed-one-device.json" <<'EOF'
{ "version": 1, "name": "seed: one 4G device",
  "devices": [ { "id": "nv1", "mem-path": "./virtio_pmem.img", "size": "4G", "share": true } ],
  "steps": [
    { "op": "write", "device": "nv1", "offset": 0, "text": "hello, pmem" },
    { "op": "fsync", "device": "nv1" },
    { "op": "expect_durable", "device": "nv1", "offset": 0, "text": "hello, pmem" },
    { "op": "write", "device": "nv1", "offset": "2M", "text": "sixteen pages ", "len": "64K" },
    { "op": "read", "device": "nv1", "offset": "2M", "len": 14 },
    { "op": "fsync", "device": "nv1" },
    { "op": "write", "device": "nv1", "offset": "1G", "text": "unflushed" },
    { "op": "power_failure" },
    { "op": "expect_data", "device": "nv1", "offset": "2M", "text": "sixteen pages " },
    { "op": "expect_data", "device": "nv1", "offset": "1G", "hex": "00", "len": 9 }
  ] }
EOF
cat >"$runs/scenarios/seed-two-devices.json" <<'EOF'
{ "version": 1, "name": "seed: two devices",
  "devices": [ { "id": "nv1", "mem-path": "./virtio_pmem.img", "size": "4G", "share": true },
               { "id": "nv2", "mem-path": "./virtio_pmem2.img", "size": "1G", "share": true } ],
  "steps": [
    { "op": "write", "device": "nv1", "offset": 0, "text": "first device" },
    { "op": "write", "device": "nv2", "offset": "4K", "text": "second device" },
    { "op": "fsync", "device": "nv2" },
    { "op": "expect_durable", "device": "nv2", "offset": "4K", "text": "second device" },
    { "op": "expect_durable", "device": "nv1", "offset": 0, "hex": "00", "len": 12 },
    { "op": "fsync", "device": "nv1" },
    { "op": "expect_durable", "device": "nv1", "offset": 0, "text": "first device" }
  ] }
EOF

# readonly=on: QEMU maps the file read-only and drops the guest's stores
# without telling it; the file stays untouched.
cat >"$runs/scenarios/readonly.json" <<'EOF'
{ "version": 1, "name": "readonly=on",
  "devices": [ { "id": "nv1", "mem-path": "./ro.img", "size": "16M", "readonly": true } ],
  "steps": [
    { "op": "write", "device": "nv1", "offset": 0, "text": "hello" },
    { "op": "read", "device": "nv1", "offset": 0, "len": 5 },
    { "op": "expect_data", "device": "nv1", "offset": 0, "hex": "00", "len": 5 },
    { "op": "fsync", "device": "nv1" },
    { "op": "expect_flush", "device": "nv1", "result": "ok" },
    { "op": "expect_durable", "device": "nv1", "offset": 0, "hex": "00", "len": 5 }
  ] }
EOF

# name|scenario|options (the seed-one-device-maxmem-2G run: both sides
# refuse the 4G device in maxmem=2G, and their messages are compared)
jobs=()
for s in examples/scenarios/*.json; do
    jobs+=("$(basename "$s" .json)|$s|")
done
jobs+=("fsync-then-crash-4k|examples/scenarios/fsync-then-crash.json|--host-folios 4k")
jobs+=("hotplug-4k|examples/scenarios/hotplug.json|--host-folios 4k")
jobs+=("seed-one-device|$runs/scenarios/seed-one-device.json|--maxmem 8G")
jobs+=("seed-one-device-4k|$runs/scenarios/seed-one-device.json|--maxmem 8G --host-folios 4k")
jobs+=("seed-two-devices|$runs/scenarios/seed-two-devices.json|--maxmem 8G")
jobs+=("seed-one-device-maxmem-2G|$runs/scenarios/seed-one-device.json|")
jobs+=("readonly|$runs/scenarios/readonly.json|")
jobs+=("flushers-300-serialized|examples/scenarios/fsync-then-crash.json|--flushers 300")
jobs+=("flushers-300-unserialized|examples/scenarios/fsync-then-crash.json|--flushers 300 --driver unserialized")
# A slow host disk (each QEMU fsync waits first): the unserialized driver
# fills the queue and hangs; the serialized one is only slow. The old
# driver's run waits 1 s per fsync: with 200 ms the queue filled in 2 of 3
# runs (104 in flight at most in the third, on a loaded machine); with 1 s
# QEMU's 64 worker threads finish at most 64 fsyncs a second.
slow="--flushers 300 --flush-count 3"
jobs+=("slow-disk-300-serialized|examples/scenarios/fsync-then-crash.json|$slow --host-fsync-delay 200 --flushers-wait 240")
jobs+=("slow-disk-300-unserialized|examples/scenarios/fsync-then-crash.json|$slow --host-fsync-delay 1000 --flushers-wait 30 --driver unserialized")

for j in "${jobs[@]}"; do
    IFS='|' read -r name scenario opts <<<"$j"
    echo "== $name" >&2
    set +e
    # shellcheck disable=SC2086
    "$bin" oracle "$scenario" --json $opts >"$runs/$name.json" 2>"$runs/$name.err"
    echo $? >"$runs/$name.rc"
    set -e
done

python3 - "$runs" docs/fidelity.md "${jobs[@]}" <<'EOF'
import json, sys, os
runs, doc, jobs = sys.argv[1], sys.argv[2], sys.argv[3:]
out = ["| run | options | exit | boots | wall s | compared | agree | disagree | quantities that disagree (model → real) |",
       "|---|---|---|---|---|---|---|---|---|"]
details = []
for j in jobs:
    name, scenario, opts = j.split("|")
    rc = open(f"{runs}/{name}.rc").read().strip()
    err = open(f"{runs}/{name}.err").read().strip()
    try:
        r = json.load(open(f"{runs}/{name}.json"))
    except Exception:
        out.append(f"| {name} | {opts or '—'} | {rc} | — | — | — | — | — | not run: {err.replace('|', '/')} |")
        continue
    qs = [(s["index"], q) for s in r["steps"] for q in s["quantities"] if q["compared"]]
    bad = [(i, q) for i, q in qs if not q["agree"]]
    kinds = {}
    for i, q in bad:
        key = q["name"] + (f" [{q['device']}]" if q.get("device") else "")
        kinds.setdefault(key, (q["model"], q["real"], []))[2].append(i)
    text = "; ".join(f"{k}: {m} → {rr} (steps {', '.join(map(str, s))})" for k, (m, rr, s) in kinds.items()) or "—"
    out.append(f"| {name} | {opts or '—'} | {rc} | {r['boots']} | {r['wall_seconds']:.1f} | {len(qs)} | {len(qs) - len(bad)} | {len(bad)} | {text} |")
    dirty = [f"{s['index']}{'[' + q['device'] + ']' if len(r['guest_devices']) > 1 else ''}:{q['model']}/{q['real']}"
             for s in r["steps"] for q in s["quantities"]
             if q["name"].startswith("dirty pages") and "model, 4 KiB" not in q["name"]]
    flushes = sum(int(q["real"]) for s in r["steps"] for q in s["quantities"] if q["name"].startswith("flush requests"))
    load = [q for s in r["steps"] if s["op"] == "flushers" for q in s["quantities"]]
    load_text = "; load: " + ", ".join(f"{q['name']} {q['model']}/{q['real']}" for q in load) if load else ""
    details.append(f"- **{name}**: dirty pages per step (step:model/real) {' '.join(dirty)}; "
                   f"flush requests in steps {flushes}, at poweroff {r['after_last_step']['requests']}{load_text}")
block = "\n".join(out) + "\n\nPer run:\n\n" + "\n".join(details) + "\n"
text = open(doc).read()
begin, end = "<!-- fidelity:begin -->", "<!-- fidelity:end -->"
a, b = text.index(begin) + len(begin), text.index(end)
open(doc, "w").write(text[:a] + "\n" + block + text[b:])
EOF
echo "docs/fidelity.md updated; reports in $runs" >&2
