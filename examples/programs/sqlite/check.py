#!/usr/bin/python3
"""Checker for workload.py's crash images (see README.md).

    check.py --trace /abs/T --device DEV --marks marks.img [--db db.img] [--no-flush] [--server]

Opens the crashed database with SQLite itself, in the image's directory
(next to it: the journal or WAL device as the crash left it, so SQLite's own
recovery — rolling back a hot journal, replaying the WAL — runs), then
demands: `PRAGMA integrity_check` is ok; the rows of `tx` are exactly
1..n for some n (transactions are atomic and in order) with n at least the
last transaction whose COMMIT returned before the crash point; each row's
payload is the one its transaction stored; the balances of `acct` sum to
1000 (every transfer is whole; the table may be empty before
transaction 1)."""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import committed  # noqa: E402


def payload(k):
    """What transaction k stores (the workload's own rule)."""
    return f"transaction {k} " + "x" * (k * 37 % 300)


def check(image, returned):
    """None when the recovered database is consistent, else what is wrong."""
    with open(image, "rb") as f:
        if not any(f.read(100)):
            # The file was empty when the workload started; an image always
            # has the device's size, so "no database yet" reads as zeros.
            return None if returned == 0 else f"transaction {returned} returned but the database header is zeros"
    con = sqlite3.connect(image, isolation_level=None)
    try:
        # The image is thrown away after the check: closing need not fsync
        # (the checkpoint at close would otherwise cost most of the time).
        con.execute("PRAGMA synchronous=OFF")
        verdict = con.execute("PRAGMA integrity_check").fetchall()
        if verdict != [("ok",)]:
            return f"integrity_check: {'; '.join(r[0] for r in verdict[:3])}"
        names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"tx", "acct"} <= names:
            return None if returned == 0 else f"transaction {returned} returned but the tables are missing"
        rows = con.execute("SELECT id, payload FROM tx ORDER BY id").fetchall()
        ids = [r[0] for r in rows]
        if ids != list(range(1, len(ids) + 1)):
            return f"the transactions present are not 1..n: {ids[:8]}…"
        if len(ids) < returned:
            return f"transaction {returned} returned from COMMIT but only 1..{len(ids)} are in the database"
        for k, text in rows:
            if text != payload(k):
                return f"transaction {k} has a wrong payload"
        total = con.execute("SELECT count(*), sum(balance) FROM acct").fetchone()
        if total != (10, 1000) and (ids or total[0] != 0):
            # Empty only while the workload's first transaction (filling it) may be lost.
            return f"acct holds {total[0]} rows summing to {total[1]}, not 10 rows summing to 1000"
        return None
    finally:
        con.close()


if __name__ == "__main__":
    committed.main(
        lambda marks, opts: lambda req: check(committed.in_image_dir(req, opts.db), marks.returned(req)),
        lambda p: p.add_argument("--db", default="db.img", help="the database file's recorded path"),
    )
