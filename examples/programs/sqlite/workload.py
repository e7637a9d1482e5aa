#!/usr/bin/python3
"""SQLite workload for `pmemlab record` (see README.md): N transactions on a
database whose file and journal (or WAL) are virtio-pmem devices.

usage: workload.py rollback|wal N DB MARKS

Transaction k (1..N) inserts row k of `tx` and moves one unit between two
rows of `acct` (their sum stays 1000). After COMMIT returns, the workload
stores k at offset 8*k of the MARKS device (no flush): the trace then shows
where each COMMIT returned, and the checker demands every transaction whose
mark precedes the crash point."""
import os
import sqlite3
import struct
import sys


def main():
    mode, n, db, marks = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    # isolation_level=None: the workload says BEGIN/COMMIT itself.
    con = sqlite3.connect(db, isolation_level=None)
    if mode == "rollback":
        # PERSIST: the journal is kept and its header zeroed at commit (no
        # unlink, which the recorder refuses).
        assert con.execute("PRAGMA journal_mode=PERSIST").fetchone()[0] == "persist"
    elif mode == "wal":
        assert con.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
    else:
        sys.exit(f"unknown mode {mode!r}: rollback or wal")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE tx(id INTEGER PRIMARY KEY, payload TEXT NOT NULL)")
    con.execute("CREATE TABLE acct(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)")
    con.execute("BEGIN")
    con.executemany("INSERT INTO acct VALUES (?, ?)", [(i, 100) for i in range(10)])
    con.execute("COMMIT")
    fd = os.open(marks, os.O_RDWR)
    for k in range(1, n + 1):
        con.execute("BEGIN")
        con.execute("INSERT INTO tx VALUES (?, ?)", (k, f"transaction {k} " + "x" * (k * 37 % 300)))
        con.execute("UPDATE acct SET balance = balance - 1 WHERE id = ?", (k % 10,))
        con.execute("UPDATE acct SET balance = balance + 1 WHERE id = ?", ((k * 3 + 1) % 10,))
        con.execute("COMMIT")
        os.pwrite(fd, struct.pack("<Q", k), 8 * k)
        print(f"committed {k}", flush=True)
        if mode == "wal" and k % 20 == 0:
            # Copy the WAL into the database (stores and a flush on the
            # database device); the next commit starts the WAL over.
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    # Leave without closing: closing the last connection of a WAL database
    # checkpoints and deletes the -wal file (an unlink of a device file).
    os._exit(0)


main()
