#!/usr/bin/env python3
"""Merges the per-request CSV files of one or more oha processes (`--output-format csv`) into
one summary: responses, achieved rate over SECS, p50 / p99 / p99.9 of the request duration in
milliseconds (with `--latency-correction`, from the moment each request was due), and the
statuses. Prints one JSON object.

    lat.py SECS FILE.csv [FILE.csv ...]

oha writes a row only for requests that got a response; connection errors and requests still
in flight at the deadline are not rows (the recipe compares the count with rate x SECS)."""
import csv, json, math, sys
from collections import Counter

secs = float(sys.argv[1])
durations, statuses = [], Counter()
for path in sys.argv[2:]:
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            durations.append(float(row["request-duration"]))
            statuses[row["status"]] += 1
durations.sort()


def pct(p):
    if not durations:
        return float("nan")
    return durations[min(len(durations) - 1, max(0, math.ceil(p * len(durations)) - 1))] * 1e3


print(json.dumps({
    "responses": len(durations),
    "rate": len(durations) / secs,
    "p50_ms": pct(0.50),
    "p99_ms": pct(0.99),
    "p999_ms": pct(0.999),
    "statuses": ",".join(f"{k}:{v}" for k, v in sorted(statuses.items())),
}))
