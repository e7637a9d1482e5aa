#!/usr/bin/python3
"""LMDB workload for `pmemlab record` (see README.md): N write transactions
on an environment whose data file is a virtio-pmem device.

usage: workload.py default|writemap N DATA MARKS

Transaction k (1..N) puts key `tx-k` (a payload of its own) and `last` = k,
and deletes `tx-(k-5)` when k is a multiple of 7 (so freed pages are
reused). After commit returns, the workload stores k at offset 8*k of the
MARKS device (no flush): the trace then shows where each commit returned."""
import os
import struct
import sys

import lmdb

MAP_SIZE = 1 << 20


def payload(k):
    """What transaction k stores under tx-k (the checker's rule too)."""
    return (f"transaction {k} ".encode() * (1 + k * 13 % 40))[: 64 + k * 53 % 700]


def open_env(path, writemap):
    """The environment as the workload and the checker open it: one file, no
    lock file (one process; LMDB rebuilds its lock table at every open, it
    holds nothing durable), synchronous commits."""
    return lmdb.open(path, subdir=False, lock=False, map_size=MAP_SIZE, writemap=writemap, sync=True, metasync=True)


def main():
    mode, n, data, marks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if mode not in ("default", "writemap"):
        sys.exit(f"unknown mode {mode!r}: default or writemap")
    env = open_env(data, mode == "writemap")
    fd = os.open(marks, os.O_RDWR)
    for k in range(1, n + 1):
        with env.begin(write=True) as txn:
            txn.put(b"tx-%d" % k, payload(k))
            txn.put(b"last", b"%d" % k)
            if k % 7 == 0 and k > 5:
                txn.delete(b"tx-%d" % (k - 5))
        os.pwrite(fd, struct.pack("<Q", k), 8 * k)
        print(f"committed {k}", flush=True)
    env.close()


if __name__ == "__main__":
    main()
