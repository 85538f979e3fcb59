#!/usr/bin/env python3
"""Time to first token of streamed chat completions, standard library only.

Sends N sequential streaming requests to URL and prints the p50/p99 of the time from sending
the request to the first SSE event that carries assistant text, and of the whole stream.

    python3 load/ttft.py URL [N] [USER]
"""

import http.client
import json
import statistics
import sys
import time
import urllib.parse


def one(conn, path, body, headers):
    t0 = time.perf_counter()
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    if resp.status != 200:
        raise SystemExit(f"status {resp.status}: {resp.read()[:200]!r}")
    first = None
    buf = b""
    while True:
        line = resp.readline()
        if not line:
            break
        if first is None and line.startswith(b"data: {"):
            try:
                ev = json.loads(line[6:])
            except ValueError:
                continue
            choices = ev.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                first = time.perf_counter() - t0
        if line.strip() == b"data: [DONE]":
            break
    resp.read()
    return first if first is not None else float("nan"), time.perf_counter() - t0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    url = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    user = sys.argv[3] if len(sys.argv) > 3 else "load-ttft"
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    body = json.dumps({
        "model": "mock-1",
        "user": user,
        "stream": True,
        "messages": [{"role": "user", "content": "Tell me about your day, please."}],
    })
    headers = {"Content-Type": "application/json", "X-Tutela-User": user}
    for _ in range(20):  # warm-up: connection, caches
        one(conn, u.path, body, headers)
    firsts, totals = [], []
    for _ in range(n):
        f, t = one(conn, u.path, body, headers)
        firsts.append(f)
        totals.append(t)
    print(json.dumps({
        "requests": n,
        "ttft_p50_ms": round(statistics.median(firsts) * 1e3, 3),
        "ttft_p99_ms": round(pct(firsts, 99) * 1e3, 3),
        "total_p50_ms": round(statistics.median(totals) * 1e3, 3),
        "total_p99_ms": round(pct(totals, 99) * 1e3, 3),
    }))


if __name__ == "__main__":
    main()
