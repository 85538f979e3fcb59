#!/usr/bin/env python3
"""The soak (issue #12, "Done when"): `tutela serve` at a steady rate of mixed traffic for a
long time, memory read every minute.

    python3 load/soak/soak.py --bin-dir target/release [--minutes 30] [--rate 50] [--out FILE]

Standard library only. Starts `tutela-mock-upstream` and `tutela serve` (SQLite in a temporary
directory, whole pipeline, RUST_LOG=warn) on loopback ports, then sends `--rate` requests per
second, on a fixed schedule (a request that cannot start on time is counted as late, never
skipped), of this mix:

- 40 % a normal turn, JSON;            - 25 % a normal turn, streamed;
- 25 % a multi-turn user: the next turn of one of 400 ongoing conversations (history of up to
  eight messages, JSON or streamed);   - 5 % a crisis message (help lines expected);
- 5 % a complaint (public intake).

One turn in five comes from a user never seen before (new users keep arriving, as in a real
deployment); the rest from a pool of 2,000 returning users. Every minute it prints the
gateway's resident memory (VmRSS) and the database's size; at the end the errors by kind
(a status other than 200, a crisis reply without help lines, a stream without [DONE]), the
memory trend (least-squares slope over the second half, MB per 10 minutes) and the database
size per million turns (after SIGTERM checkpointed the WAL). Exits 1 if there was an error,
the gateway died, or SIGTERM did not exit 0.
"""

import argparse
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

CRISIS = "I don't want to live anymore. I want to end my life."
NORMALS = [
    "What is the capital of France?",
    "Tell me about your day.",
    "Can you recommend a good book?",
    "I had pasta for dinner, what did you have?",
    "今天天气怎么样？",
    "What should I cook tonight?",
]
HELP_LINE = "988"  # us-ny's crisis line
ADMIN = "soak-admin-token-0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=30):
    h = {"content-type": "application/json"}
    h.update(headers or {})
    data = json.dumps(body).encode() if body is not None else None
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, out
    except (OSError, http.client.HTTPException) as e:
        return 0, str(e).encode()


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def size_mb(*paths):
    return sum(os.path.getsize(p) for p in paths if os.path.exists(p)) / 1e6


def metric(port, name):
    status, out = request(port, "GET", "/metrics", timeout=10)
    if status != 200:
        return None
    for line in out.decode(errors="replace").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.split()[-1])
            except ValueError:
                return None
    return None


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.done = {}
        self.errors = {}
        self.turns = 0
        self.late = 0

    def ok(self, kind, turn=True):
        with self.lock:
            self.done[kind] = self.done.get(kind, 0) + 1
            self.turns += int(turn)

    def error(self, kind, why):
        with self.lock:
            key = f"{kind}: {why}"
            self.errors[key] = self.errors.get(key, 0) + 1


class Traffic:
    """Decides each request's kind and user from its number, so a run is reproducible."""

    def __init__(self):
        self.new_users = 0
        self.lock = threading.Lock()
        self.convos = [[] for _ in range(400)]
        self.convo_locks = [threading.Lock() for _ in range(400)]

    def user(self, n):
        if n % 5 == 0:
            with self.lock:
                self.new_users += 1
                return f"new-{self.new_users}"
        return f"back-{(n * 7919) % 2000}"


def chat(port, user, messages, stream):
    body = {"model": "mock-1", "messages": messages, "stream": stream}
    headers = {"x-tutela-user": user, "x-tutela-jurisdiction": "us-ny"}
    status, out = request(port, "POST", "/v1/chat/completions", body, headers)
    if status != 200:
        return status, "", False
    text = out.decode(errors="replace")
    if not stream:
        try:
            return status, json.loads(text)["choices"][0]["message"]["content"] or "", True
        except (ValueError, KeyError, IndexError):
            return status, text, False
    parts, done = [], False
    for event in text.split("\n\n"):
        if not event.startswith("data: "):
            continue
        data = event[6:]
        if data == "[DONE]":
            done = True
            continue
        try:
            for c in json.loads(data).get("choices") or []:
                parts.append((c.get("delta") or {}).get("content") or "")
        except ValueError:
            pass
    return status, "".join(parts), done


def one(port, n, traffic, stats):
    pick = n % 20
    if pick < 8:
        kind, stream = "normal", False
    elif pick < 13:
        kind, stream = "streamed", True
    elif pick < 18:
        kind, stream = "multi-turn", pick % 2 == 0
    elif pick == 18:
        kind, stream = "crisis", n % 40 == 18
    else:
        kind, stream = "complaint", False
    if kind == "complaint":
        status, out = request(port, "POST", "/v1/tutela/complaints",
                              {"category": "other", "text": f"soak complaint {n}", "user": traffic.user(n)})
        if status == 200:
            stats.ok(kind, turn=False)
        else:
            stats.error(kind, f"status {status}")
        return
    if kind == "multi-turn":
        c = n % 400
        with traffic.convo_locks[c]:
            history = traffic.convos[c]
            history.append({"role": "user", "content": NORMALS[n % len(NORMALS)]})
            status, content, done = chat(port, f"convo-{c}", history[-8:], stream)
            history.append({"role": "assistant", "content": content or "..."})
            del history[:-8]
    else:
        text = CRISIS if kind == "crisis" else NORMALS[n % len(NORMALS)]
        status, content, done = chat(port, traffic.user(n), [{"role": "user", "content": text}], stream)
    if status != 200:
        stats.error(kind, f"status {status}")
    elif not done:
        stats.error(kind, "stream without [DONE]" if stream else "unreadable answer")
    elif kind == "crisis" and HELP_LINE not in content:
        stats.error(kind, "no help lines")
    else:
        stats.ok(kind)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--rate", type=float, default=50, help="requests per second")
    ap.add_argument("--every", type=float, default=60, help="seconds between memory readings")
    ap.add_argument("--workers", type=int, default=24)
    ap.add_argument("--idle-reset", type=int, default=30,
                    help="[engine] idle_reset_minutes: users idle this long leave the gateway's cache")
    ap.add_argument("--out")
    a = ap.parse_args()
    bins = os.path.abspath(a.bin_dir)
    work = tempfile.mkdtemp(prefix="tutela-soak-")
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    mock_port, port = free_port(), free_port()
    mock = subprocess.Popen([os.path.join(bins, "tutela-mock-upstream"), "--listen", f"127.0.0.1:{mock_port}",
                             "--threads", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = os.path.join(work, "soak.db")
    config = os.path.join(work, "soak.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\ndatabase = "{db}"\njurisdictions = ["us-ny"]\n'
                f"[engine]\nidle_reset_minutes = {a.idle_reset}\n"
                "[takeover]\nwait_secs = 0\n"
                "[complaints]\nper_client_per_hour = 1000000\nper_user_per_day = 1000000\n"
                "global_per_hour = 1000000\n"
                f'[upstream]\nkind = "openai"\nbase_url = "http://127.0.0.1:{mock_port}/v1"\ntimeout_secs = 10\n')
    log = open(os.path.join(work, "gateway.log"), "ab")
    env = dict(os.environ, TUTELA_ADMIN_TOKEN=ADMIN, RUST_LOG="warn",
               TUTELA_MODEL_DIR=os.environ.get("TUTELA_MODEL_DIR", os.path.join(work, "no-model")))
    gw = subprocess.Popen([os.path.join(bins, "tutela"), "serve", "--config", config],
                          stdout=log, stderr=log, env=env)
    try:
        for _ in range(600):
            if gw.poll() is not None:
                raise SystemExit(f"tutela serve exited at start: see {work}/gateway.log")
            if request(port, "GET", "/readyz", timeout=2)[0] == 200:
                break
            time.sleep(0.2)
        code = run(a, port, gw, db, work, say, mock)
    finally:
        if gw.poll() is None:
            gw.kill()
        mock.kill()
        mock.wait()
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    if code == 0:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}", file=sys.stderr)
    return code


def run(a, port, gw, db, work, say, mock):
    stats, traffic = Stats(), Traffic()
    jobs = queue.Queue()
    stop = threading.Event()

    def worker():
        while True:
            n = jobs.get()
            if n is None:
                return
            one(port, n, traffic, stats)

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(a.workers)]
    for w in workers:
        w.start()

    def schedule():
        t0, n = time.monotonic(), 0
        while not stop.is_set():
            due = t0 + n / a.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elif jobs.qsize() > a.workers:
                with stats.lock:
                    stats.late += 1
            jobs.put(n)
            n += 1

    say(f"# Soak: {a.minutes:g} minutes at {a.rate:g} requests/s (idle reset {a.idle_reset} min)")
    say()
    la = os.getloadavg()
    say(f"Machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; load average at start "
        f"{la[0]:.2f}; binaries: {a.bin_dir}; workers: {a.workers}")
    say()
    say("| minute | requests ok | errors | late starts | RSS MB | database + WAL MB | cached users / waiters |")
    say("|---|---|---|---|---|---|---|")
    start_rss = rss_mb(gw.pid)
    say(f"| 0 | 0 | 0 | 0 | {start_rss:.1f} | {size_mb(db, db + '-wal'):.1f} | {metric(port, 'tutela_cached_users')} |")
    sched = threading.Thread(target=schedule, daemon=True)
    t0 = time.monotonic()
    sched.start()
    readings = [(0.0, start_rss)]
    died = False
    k = 1
    while time.monotonic() - t0 < a.minutes * 60:
        time.sleep(max(0.0, t0 + k * a.every - time.monotonic()))
        k += 1
        if gw.poll() is not None:
            died = True
            say(f"- the gateway exited with {gw.returncode}")
            break
        minute = (time.monotonic() - t0) / 60
        mb = rss_mb(gw.pid)
        readings.append((minute, mb))
        with stats.lock:
            ok, errs, late = sum(stats.done.values()), sum(stats.errors.values()), stats.late
        say(f"| {minute:.1f} | {ok} | {errs} | {late} | {mb:.1f} | {size_mb(db, db + '-wal'):.1f} | "
            f"{metric(port, 'tutela_cached_users')} / {metric(port, 'tutela_takeover_waiters')} |")
    stop.set()
    sched.join()
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join(60)
    elapsed = time.monotonic() - t0
    code = None
    if not died:
        gw.send_signal(signal.SIGTERM)
        try:
            code = gw.wait(90)
        except subprocess.TimeoutExpired:
            code = None
    say()
    with stats.lock:
        done, errors, turns, late = dict(stats.done), dict(stats.errors), stats.turns, stats.late
    say(f"Requests: {sum(done.values())} ok in {elapsed / 60:.1f} min ({sum(done.values()) / elapsed:.1f}/s): "
        + ", ".join(f"{k} {v}" for k, v in sorted(done.items())))
    say(f"New users: {traffic.new_users}; returning pool 2,000; ongoing conversations 400.")
    say(f"Errors: {sum(errors.values())}" + ("" if not errors else " (" + ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) + ")"))
    say(f"Late starts (the schedule could not start a request on time): {late}")
    half = [p for p in readings if p[0] >= readings[-1][0] / 2]
    first = readings[1][1] if len(readings) > 1 else start_rss
    say(f"RSS: {start_rss:.1f} MB idle, {first:.1f} MB after the first minute, {readings[-1][1]:.1f} MB at the end, "
        f"max {max(r for _, r in readings):.1f} MB; slope over the second half {slope(half) * 10:+.2f} MB per 10 minutes")
    db_bytes = os.path.getsize(db) if os.path.exists(db) else 0
    wal = os.path.getsize(db + "-wal") if os.path.exists(db + "-wal") else 0
    say(f"SIGTERM: exit {code}; WAL left {wal} bytes")
    if turns:
        say(f"Database: {db_bytes / 1e6:.1f} MB for {turns} chat turns and {done.get('complaint', 0)} complaints: "
            f"{db_bytes / turns:.0f} bytes per turn, {db_bytes / turns * 1e6 / 1e9:.2f} GB per million turns")
    r = subprocess.run([os.path.join(os.path.dirname(gw.args[0]), "tutela"), "audit", "verify", "--db", db],
                       capture_output=True, text=True)
    say(f"`tutela audit verify`: exit {r.returncode}: {(r.stdout + r.stderr).strip().splitlines()[0] if (r.stdout + r.stderr).strip() else ''}")
    failed = died or code != 0 or errors or r.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
