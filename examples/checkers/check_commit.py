#!/usr/bin/env python3
"""Checker for examples/explore/commit-*.json, in both of pmemlab's forms.

Per image:  pmemlab explore SCENARIO --checker 'python3 check_commit.py'
            (the image path is the last argument; exit 0 = consistent)
As server:  pmemlab explore SCENARIO --checker-server 'python3 check_commit.py --server'
            (one JSON line per image on stdin, one verdict line on stdout:
            `ok` or `fail: REASON`; see docs/checker-protocol.md)

Consistent when every transaction the commit word names has its record:
"COMMIT n" at offset 0 and "RECORD i" at the start of page i, for i = 1..n.
"""
import json
import sys

PAGE = 4096


def check(path):
    """None when the image is consistent, else what is wrong."""
    with open(path, "rb") as f:
        word = f.read(8).rstrip(b"\0").decode("latin-1")
        if not word:
            return None  # nothing committed yet
        n = word[len("COMMIT "):] if word.startswith("COMMIT ") else ""
        if not n.isdigit():
            return f"garbage commit word '{word}'"
        for i in range(1, int(n) + 1):
            f.seek(i * PAGE)
            rec = f.read(8).rstrip(b"\0").decode("latin-1")
            if rec != f"RECORD {i}":
                return f"transaction {i} is committed (commit word {n}) but its record is missing"
    return None


def serve():
    # One request per line; answer each with one line, flushed at once.
    for line in sys.stdin:
        request = json.loads(line)
        problem = check(request["image"])
        sys.stdout.write("ok\n" if problem is None else f"fail: {problem}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--server"]:
        serve()
    else:
        problem = check(sys.argv[-1])
        if problem is not None:
            print(problem)
            sys.exit(1)
