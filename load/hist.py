#!/usr/bin/env python3
"""Quantiles of tutela's in-process added-latency histogram between two /metrics snapshots.

    python3 load/hist.py BEFORE.txt AFTER.txt   ->  "p50<=X ms p99<=Y ms (n=N)"

The histogram measures the time a request spends in tutela outside the upstream call (parsing,
detectors, engine, store hand-off, reply), without the kernel's and the load generator's share;
quantiles are bucket upper bounds.
"""

import re
import sys

NAME = "tutela_added_latency_seconds_bucket"


def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(NAME + r'\{le="([^"]+)"\} (\d+)', line)
        if m:
            out[m.group(1)] = int(m.group(2))
    return out


def main():
    a, b = buckets(sys.argv[1]), buckets(sys.argv[2])
    les = [le for le in b if le != "+Inf"]
    les.sort(key=float)
    total = b.get("+Inf", 0) - a.get("+Inf", 0)
    if total <= 0:
        print("no requests")
        return
    res = []
    for q in (0.5, 0.99, 0.999):
        want = q * total
        bound = "+Inf"
        for le in les:
            if b[le] - a.get(le, 0) >= want:
                bound = le
                break
        res.append("p%s<=%s ms" % (str(q * 100).rstrip("0").rstrip("."), "inf" if bound == "+Inf" else "%g" % (float(bound) * 1e3)))
    print(" ".join(res) + " (n=%d)" % total)


if __name__ == "__main__":
    main()
