#!/usr/bin/env python3
"""Runs a command several times and writes its median timings.

    timed.py PREFIX RUNS [--before SHELL_CMD] -- CMD...

Runs SHELL_CMD (untimed: cleanup, sync) and then CMD, RUNS times. Writes the median wall-clock
seconds to PREFIX.s and the median CPU seconds (user + system of CMD and everything it started)
to PREFIX.cpu, and every run's figures to PREFIX.runs. A median of several runs, each on a
clean output directory, keeps one slow run on a shared machine (or the first touch of fresh
memory by a new page cache) from standing for the tool.
"""
import resource
import statistics
import subprocess
import sys
import time


def main() -> None:
    args = sys.argv[1:]
    prefix, runs = args[0], int(args[1])
    rest = args[2:]
    before = None
    if rest and rest[0] == "--before":
        before, rest = rest[1], rest[2:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    walls, cpus = [], []
    for _ in range(runs):
        if before:
            subprocess.run(["bash", "-c", before], check=False)
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(rest, check=False, stdout=subprocess.DEVNULL)
        t1 = time.perf_counter()
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        walls.append(t1 - t0)
        cpus.append((r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    with open(prefix + ".s", "w") as f:
        f.write(f"{statistics.median(walls):.3f}")
    with open(prefix + ".cpu", "w") as f:
        f.write(f"{statistics.median(cpus):.3f}")
    with open(prefix + ".runs", "w") as f:
        for w, c in zip(walls, cpus):
            f.write(f"{w:.3f} s wall, {c:.3f} s CPU\n")


if __name__ == "__main__":
    main()
