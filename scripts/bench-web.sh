#!/usr/bin/env bash
# The browser benchmark, in one run: the simulation workload natively (the
# native_bench example) and in wasm (the bench page in headless Chromium),
# the page grid's frame time for a 4 GiB (1 M-page) device during a write
# storm, the frame times of the app while Play runs through an fsync of
# 1,000 written pages (web/e2e/play-bench.mjs: median, p95 and max next to
# the 50 ms budget), and the size of the release wasm (raw, and the gzip
# and brotli copies build-web.sh writes). Writes the figures into the
# measurements section of docs/web.md.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/build-web.sh >/dev/null
wasm=$(ls target/site/*.wasm)
wasm_bytes=$(stat -c %s "$wasm")
wasm_gzip=$(stat -c %s "$wasm.gz")
wasm_br=$(stat -c %s "$wasm.br")
[ -d web/e2e/node_modules/playwright-core ] || ./scripts/test-web-e2e.sh >/dev/null
echo "== native" >&2
native=$(cargo run --release -q -p pmem-web --example native_bench)
echo "$native" >&2
echo "== wasm in headless Chromium" >&2
browser=$(node web/e2e/bench.mjs target/site)
echo "$browser" >&2
echo "== Play with 1,000 written pages in headless Chromium" >&2
play=$(node web/e2e/play-bench.mjs target/site)
echo "$play" >&2
load=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$native" "$browser" "$wasm_bytes" "$wasm_gzip" "$wasm_br" "$play" "$load" <<'PY'
import json, re, sys, datetime, subprocess
native, browser = json.loads(sys.argv[1]), json.loads(sys.argv[2])
wasm_bytes, wasm_gzip, wasm_br = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
play, load = json.loads(sys.argv[6]), sys.argv[7]
same = native["fingerprint"] == browser["fingerprint"] and native["steps"] == browser["steps"]
ua = re.search(r"Chrome/[\d.]+", browser["user_agent"])
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
rows = [
    "| what | native (release) | wasm (Chromium) | wasm / native |",
    "| --- | --- | --- | --- |",
    f"| simulation: {browser['rounds']} rounds, {browser['steps']:,} machine steps | {native['steps_per_sec']:,.0f} steps/s | {browser['steps_per_sec']:,.0f} steps/s | {browser['steps_per_sec'] / native['steps_per_sec']:.2f} |",
    f"| grid of the 4 GiB storm device per frame, median: page map + raster | {native['grid_storm_median_ms']:.2f} ms | {browser['grid_median_ms']:.2f} ms | {browser['grid_median_ms'] / max(native['grid_storm_median_ms'], 1e-9):.2f} |",
    f"| the same frame's putImageData (browser only) | — | {browser['paint_median_ms']:.2f} ms | — |",
    f"| grid with all 1,048,576 pages touched (worst case), median, raster + putImageData in the browser | {native['grid_every_page_median_ms']:.2f} ms | {browser['grid_every_page_median_ms']:.2f} ms | {browser['grid_every_page_median_ms'] / max(native['grid_every_page_median_ms'], 1e-9):.2f} |",
]
text = "\n".join([
    "<!-- bench:begin (written by scripts/bench-web.sh; do not edit by hand) -->",
    f"Measured {datetime.date.today().isoformat()} on {cpu or 'this machine'}, {ua.group(0) if ua else 'Chromium'} headless, by `./scripts/bench-web.sh` (one run: native and wasm side by side).",
    "",
    *rows,
    "",
    f"- Write storm in the browser: {browser['storm_frames']} frames of {browser['storm_writes_per_frame']} stores on a 4 GiB device, "
    f"{browser['pages_touched']:,} pages touched at the end; page map + raster per frame median {browser['grid_median_ms']:.2f} ms, "
    f"p95 {browser['grid_p95_ms']:.2f} ms, max {browser['grid_max_ms']:.2f} ms, putImageData median {browser['paint_median_ms']:.2f} ms, "
    f"p95 {browser['paint_p95_ms']:.2f} ms; requestAnimationFrame interval median "
    f"{browser['frame_interval_median_ms']:.1f} ms, p95 {browser['frame_interval_p95_ms']:.1f} ms (the storm's own simulation: "
    f"median {browser['storm_sim_median_ms']:.2f} ms per frame).",
    f"- Same work on both sides: {'yes' if same else 'NO'} — event-log fingerprint {browser['fingerprint']} in wasm, "
    f"{native['fingerprint']} natively ({browser['events']:,} events).",
    f"- Release wasm: {wasm_bytes:,} bytes, {wasm_gzip:,} bytes gzipped (gzip -9), {wasm_br:,} bytes brotli (quality 11): the copies `pmemlab serve` sends.",
    "- The machine has 2 cores shared with other jobs: absolute figures move by a third between runs; the ratios, measured side by side, move less.",
    "<!-- bench:end -->",
])
session = "\n".join([
    "<!-- session:begin (written by scripts/bench-web.sh; do not edit by hand) -->",
    f"Measured {datetime.date.today().isoformat()} by `./scripts/bench-web.sh`: time per appended action of a {browser['session_actions']:,}-action session, mean of actions 1–20, of the last 20 and of the second half over 30 sessions after one untimed.",
    "",
    "| where | around the 10th action (1–20) | around the 1,000th (981–1,000) | second half (501–1,000) | 1,000th / 10th | second half / 10th |",
    "| --- | --- | --- | --- | --- | --- |",
    *[f"| {name} | {d['session_first_ms'] * 1e3:.1f} µs | {d['session_last_ms'] * 1e3:.1f} µs | {d['session_second_half_ms'] * 1e3:.1f} µs | {d['session_last_ms'] / max(d['session_first_ms'], 1e-12):.2f} | {d['session_second_half_ms'] / max(d['session_first_ms'], 1e-12):.2f} |" for name, d in [("native (release)", native), ("wasm (Chromium)", browser)]],
    "<!-- session:end -->",
])
budget = play["budget_ms"]
def play_row(name, label):
    d = play[name]
    verdict = "within" if d["max_ms"] <= budget else "OVER"
    return (f"| {label} | {d['frames']} | {d['median_ms']:.1f} ms | {d['p95_ms']:.1f} ms | {d['max_ms']:.1f} ms | "
            f"{d['long_tasks']} (longest {d['longest_task_ms']:.0f} ms) | {budget} ms: {verdict} | {d['events_before']} → {d['events_after']} |")
animation = "\n".join([
    "<!-- play:begin (written by scripts/bench-web.sh; do not edit by hand) -->",
    f"Measured {datetime.date.today().isoformat()} by `./scripts/bench-web.sh` (`web/e2e/play-bench.mjs`): {play['seconds']} s of Play from the step after a store of {play['written_pages']:,} pages, through their fsync; the interval between requestAnimationFrame callbacks, and the long tasks (> 50 ms) Chromium reports. Load average of the machine at the start: {load} (2 cores, shared).",
    "",
    "| view and speed | frames | median | p95 | max | long tasks | budget | events shown |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    play_row("beginner_4_events_per_tick", "beginner view, default speed (4 events per tick)"),
    play_row("expert_64_events_per_tick", "expert view (every panel), fastest (64 events per tick)"),
    "<!-- play:end -->",
])
path = "docs/web.md"
doc = open(path).read()
doc = re.sub(r"<!-- bench:begin.*?<!-- bench:end -->", lambda _: text, doc, flags=re.S)
doc = re.sub(r"<!-- session:begin.*?<!-- session:end -->", lambda _: session, doc, flags=re.S)
doc = re.sub(r"<!-- play:begin.*?<!-- play:end -->", lambda _: animation, doc, flags=re.S)
open(path, "w").write(doc)
print(text)
print(animation)
if not same:
    sys.exit("the wasm and native runs did different work: determinism is broken")
PY
