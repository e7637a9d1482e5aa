"""What a crash point promises a real client's checker: which transactions
had *returned* from their commit before the crash (shared by the checkers
of examples/programs/sqlite, lmdb and pmdk).

The workloads mark each commit after it returned: they store the
transaction's number k (8 bytes, little endian) at offset 8*k of a small
extra device, the *marks* device, without flushing it. The marks are part
of the recorded history, in program order, so the trace itself says where
every commit returned relative to the stores and flushes of the device a
campaign crashes. A crash point of that device sits at one of its events (a write, a flush
returning) and tells its checker how many of the device's writes were
issued (`writes_done`) and how many of its flushes had returned
(`acked_flushes`), counted from the start of the trace
(core/src/crash/history.rs); the other devices are as they were at that
event. At k's mark the counts are (W, F). A crash point with the same counts
sits at the device's last event *before* the mark (the commit may not have
returned yet: SQLite's rollback journal, for one, commits on the journal
device after the database's last flush), so transaction k must be in the
recovered image exactly when a count has moved past the mark's: writes_done
>= W and acked_flushes >= F, and one of them greater. (A crash between the
mark and the device's next write or flush return asks for a little less
than it could: the checker never asks too much.)

With `--no-flush` the campaign drops the flushes from the history, so the
counts at a mark are counted without them: a commit then "returned" after
its writes, and the negative control asks for it from there on.

Usage from a checker (as a server, see docs/checker-protocol.md):

    marks = CommitMarks.from_trace(trace, device, marks_device, no_flush)
    serve(lambda req: check(in_image_dir(req, "db.img"), marks.returned(req)))
"""
import json
import os
import struct
import sys


class CommitMarks:
    """Per transaction k: (k, writes before its mark, flushes before it)."""

    def __init__(self, marks):
        self.marks = marks

    @staticmethod
    def from_trace(trace_path, device, marks_device, no_flush=False):
        """Reads the trace; `device` and `marks_device` are ids or recorded paths."""
        with open(trace_path) as f:
            trace = json.load(f)

        def dev_id(name):
            for d in trace["devices"]:
                if name in (d["id"], d["path"]):
                    return d["id"]
            sys.exit(f"{trace_path}: no device {name!r} in the trace")

        crashed, marks_dev = dev_id(device), dev_id(marks_device)
        initial = trace["initial_steps"]
        writes = flushes = 0
        marks = []
        for i, step in enumerate(trace["scenario"]["steps"]):
            dev, op = step.get("device"), step["op"]
            flush = op in ("fsync", "msync")
            if no_flush and flush and i >= initial:
                continue  # the campaign dropped it
            if dev == crashed:
                writes += op == "write"
                flushes += flush
            elif dev == marks_dev and op == "write" and i >= initial:
                raw = bytes.fromhex(step["hex"])
                offset = offset_bytes(step["offset"])
                if offset % 8 == 0 and len(raw) == 8:
                    k = struct.unpack("<Q", raw)[0]
                    if k == offset // 8:
                        marks.append((k, writes, flushes))
        return CommitMarks(marks)

    def returned(self, request):
        """The highest k whose commit returned before this crash point (0: none)."""
        w, f = request["writes_done"], request["acked_flushes"]
        done = 0
        for k, writes, flushes in self.marks:
            if w >= writes and f >= flushes and (w, f) != (writes, flushes):
                done = max(done, k)
        return done

    def __len__(self):
        return len(self.marks)


def offset_bytes(text):
    """A scenario offset: a number or a string like "12K" / "1M" / "0x10"."""
    if isinstance(text, int):
        return text
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text and text[-1] in units:
        return int(text[:-1], 0) * units[text[-1]]
    return int(text, 0)


def serve(judge):
    """The checker-server loop: one JSON request a line on stdin, one verdict
    line (`ok` / `fail: REASON`) on stdout. `judge(request)` returns None or
    the reason."""
    for line in sys.stdin:
        request = json.loads(line)
        try:
            problem = judge(request)
        except Exception as e:  # a recovery that raises is a violation
            problem = f"{type(e).__name__}: {e}"
        sys.stdout.write("ok\n" if problem is None else f"fail: {' '.join(str(problem).split())}\n")
        sys.stdout.flush()


def in_image_dir(request, path):
    """A file of the program's (a device at its recorded relative path) in the
    crash image's directory: the crashed device, or another one as the crash
    left it."""
    return os.path.join(request.get("image_dir", "."), path)


def request_from_env():
    """The same request for a per-image run (`--checker`): from PMEMLAB_* variables."""
    env = os.environ
    return {
        "image": sys.argv[-1],
        "image_dir": env.get("PMEMLAB_IMAGE_DIR", "."),
        "crash_point": int(env["PMEMLAB_CRASH_POINT"]),
        "writes_done": int(env["PMEMLAB_WRITES_DONE"]),
        "acked_flushes": int(env["PMEMLAB_ACKED_FLUSHES"]),
    }


def main(judge_for, add_options=None):
    """Entry point of a checker: `CHECKER --trace T --device D --marks M
    [--no-flush] [--server]` (plus the checker's own options, added by
    `add_options(parser)`). `judge_for(marks, options)` gives the judge."""
    import argparse

    p = argparse.ArgumentParser()
    if add_options:
        add_options(p)
    p.add_argument("--trace", required=True)
    p.add_argument("--device", required=True, help="the device the campaign crashes (id or path)")
    p.add_argument("--marks", required=True, help="the marks device (id or path)")
    p.add_argument("--no-flush", action="store_true", help="the campaign runs with --no-flush")
    p.add_argument("--server", action="store_true", help="speak the checker-server protocol")
    p.add_argument("image", nargs="?")
    opts, _ = p.parse_known_args()
    marks = CommitMarks.from_trace(opts.trace, opts.device, opts.marks, opts.no_flush)
    if not marks:
        sys.exit(f"{opts.trace}: the trace holds no commit mark on {opts.marks}")
    judge = judge_for(marks, opts)
    if opts.server:
        serve(judge)
        return
    problem = judge(request_from_env())
    if problem is not None:
        print(problem)
        sys.exit(1)
