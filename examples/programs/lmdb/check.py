#!/usr/bin/python3
"""Checker for workload.py's crash images (see README.md).

    check.py --trace /abs/T --device DATA --marks MARKS [--writemap] [--no-flush] [--server]

Opens the crashed environment with LMDB itself (its recovery: of the two
meta pages, the valid one with the higher transaction id names the root)
and reads it in one read transaction. It demands: the environment opens
(once a commit returned: LMDB creates a new file's meta pages without a
flush); `last` = n names a transaction at least as
new as the last whose commit returned before the crash point; exactly the
keys tx-1..tx-n are there less those deleted by transactions up to n, each
with its payload."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import committed  # noqa: E402
import lmdb  # noqa: E402
from workload import open_env, payload  # noqa: E402


def expected_keys(n):
    """The tx- keys present after transaction n."""
    keys = set(range(1, n + 1))
    keys -= {k - 5 for k in range(7, n + 1, 7)}
    return keys


def check(data, returned, writemap):
    """None when the environment is consistent, else what is wrong."""
    with open(data, "rb") as f:
        if not any(f.read(4096 * 2)):
            # The file was empty when the workload started (an image always
            # has the device's size): no environment yet.
            return None if returned == 0 else f"transaction {returned} returned but the meta pages are zeros"
    try:
        env = open_env(data, writemap)
    except lmdb.InvalidError:
        # LMDB writes a new file's two meta pages without a flush: until the
        # first commit returns, a crash may leave a file it does not accept.
        if returned == 0:
            return None
        raise
    try:
        with env.begin() as txn:
            last = txn.get(b"last")
            n = int(last) if last is not None else 0
            if n < returned:
                return f"transaction {returned} returned from commit but the environment holds transaction {n}"
            found = {}
            for key, value in txn.cursor():
                if key.startswith(b"tx-"):
                    found[int(key[3:])] = value
                elif key != b"last":
                    return f"unknown key {key!r}"
            want = expected_keys(n)
            if set(found) != want:
                return f"after transaction {n} the keys are wrong: missing {sorted(want - set(found))[:5]}, extra {sorted(set(found) - want)[:5]}"
            for k, value in found.items():
                if value != payload(k):
                    return f"tx-{k} holds a wrong payload"
    finally:
        env.close()
    return None


if __name__ == "__main__":

    def options(p):
        p.add_argument("--data", default=None, help="the data file's recorded path (default: --device)")
        p.add_argument("--writemap", action="store_true", help="open as the workload did, with writemap=True")

    committed.main(
        lambda marks, o: lambda req: check(committed.in_image_dir(req, o.data or o.device), marks.returned(req), o.writemap),
        options,
    )
