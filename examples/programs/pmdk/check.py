#!/usr/bin/python3
"""Checker for pmdk-tx's crash images (see README.md).

    check.py --trace /abs/T --device POOL --marks MARKS --program /abs/pmdk-tx
             [--pmempool] [--no-flush] [--server]

For each image: with --pmempool, `pmempool check` must find the pool
consistent first (it only reads); then pmdk-tx's recovery mode opens the
pool with libpmemobj (its recovery finishes or rolls back an interrupted
transaction), walks the list and answers the last transaction n it holds.
One `pmdk-tx check -` process answers all the images of a server (a path a
line on its stdin), so the check costs no program start; one that dies is
the image's violation and a new one takes the next image.

Demanded: the pool opens and is whole (it was created before the recorded
run, so from the first crash point on), and n is at least the last
transaction whose commit returned before the crash point."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import committed  # noqa: E402

ENV = dict(os.environ, PMEM_IS_PMEM_FORCE="0")


class Recovery:
    """A `pmdk-tx check -` process, started again when it died."""

    def __init__(self, program):
        self.program, self.proc = program, None

    def check(self, pool):
        """pmdk-tx's answer line for `pool`."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [self.program, "check", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, text=True
            )
        self.proc.stdin.write(pool + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer:
            status = self.proc.wait()
            self.proc = None
            return f"fail: pmdk-tx check died on the pool (status {status})"
        return answer


def pmempool_check(pool):
    """None when `pmempool check` accepts the pool, else its last line."""
    p = subprocess.run(["pmempool", "check", pool], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV)
    lines = p.stdout.decode(errors="replace").strip().splitlines()
    return None if p.returncode == 0 else f"pmempool check: {lines[-1] if lines else p.returncode}"


def check(pool, returned, recovery, pmempool):
    """None when the pool is consistent, else what is wrong."""
    if pmempool:
        problem = pmempool_check(pool)
        if problem:
            return problem
    answer = recovery.check(pool)
    if answer.startswith("fail"):
        return f"pmdk-tx check: {answer[len('fail: '):]}"
    n = int(answer)
    if n < returned:
        return f"transaction {returned} returned from pmemobj_tx_end but the pool holds 1..{n}"
    return None


if __name__ == "__main__":

    def options(p):
        p.add_argument("--program", required=True, help="the pmdk-tx binary (absolute path)")
        p.add_argument("--pmempool", action="store_true", help="also run `pmempool check` on each image")

    def judge_for(marks, o):
        recovery = Recovery(o.program)
        return lambda req: check(committed.in_image_dir(req, o.device), marks.returned(req), recovery, o.pmempool)

    committed.main(judge_for, options)
