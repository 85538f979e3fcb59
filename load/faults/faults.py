#!/usr/bin/env python3
"""The fault suite against the real `tutela` binary (issue #12, "Done when").

    python3 load/faults/faults.py --bin-dir target/release [--short] [--rounds 3] [--load-secs 8]

Standard library only. Starts `tutela-mock-upstream` and `tutela serve` on loopback ports and:

1. kill -9 during mixed load (crisis, normal JSON, normal streaming, complaints), `--rounds`
   times on the same database; then `tutela audit verify` and, for every request the gateway
   acknowledged (200; a stream that reached [DONE]), whether its records are in the database:
   lost interventions, escalations and complaints must be 0; lost normal-turn records are
   counted (the group-commit window);
2. disk full: the database on a small tmpfs filled to the last byte (skipped, and said so,
   where `mount -t tmpfs` is not allowed): crisis replies still reach the person, /readyz is
   503, no complaint receipt without its row; then space is freed: ready again, the held
   records written, the chain verifies with the outage noted, SIGTERM checkpoints the WAL;
   and the same for `--full-secs` under steady mixed load with the gateway's log on the full
   disk too (every log line fails): the gateway and its store writer live on, crisis turns get
   help lines, SIGTERM exits 0;
3. the upstream refused, slow, erroring (500, 503), hanging past the timeout, and endless (a
   stream without event separators; one that never ends): the right status, crisis help
   that never depends on the model, bounded memory;
4. the client leaving mid-stream: the gateway stops reading the upstream, and keeps no
   connection or file descriptor per aborted stream.

Prints a Markdown report (also to --out) and exits 1 if a check failed. `--short` is the
version `scripts/test-all` runs: one kill -9 round, shorter load, the same checks.
"""

import argparse
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

CRISIS = "I don't want to live anymore. I want to end my life."
# A message no detector flags (the learned tiers are probabilistic: test the texts used here
# with `tutela check` when the models change).
NORMAL = "What is the capital of France?"
HELP_LINE = "988"  # us-ny's crisis line; every crisis request names us-ny
ADMIN = "faults-admin-token-0123456789"
SUBJECT_DOMAIN = b"tutela-subject-v1\0"


class Report:
    def __init__(self):
        self.lines = []
        self.failed = []

    def say(self, text=""):
        print(text, flush=True)
        self.lines.append(text)

    def check(self, ok, what):
        mark = "ok" if ok else "FAILED"
        self.say(f"- {mark}: {what}")
        if not ok:
            self.failed.append(what)
        return ok


R = Report()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, method, path, body=None, headers=None, timeout=30):
    """One HTTP request; returns (status, headers dict, body bytes) or (0, {}, error text)."""
    h = {"content-type": "application/json"}
    h.update(headers or {})
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.read()
        c.close()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, out
    except (OSError, http.client.HTTPException) as e:
        return 0, {}, str(e).encode()


def chat(port, user, text, stream=False, timeout=30, jurisdiction="us-ny"):
    """A chat turn. JSON: (status, content). Stream: (status, content, reached [DONE])."""
    body = {"model": "mock-1", "messages": [{"role": "user", "content": text}], "stream": stream}
    headers = {"x-tutela-user": user, "x-tutela-jurisdiction": jurisdiction}
    if not stream:
        status, _, out = request(port, "POST", "/v1/chat/completions", body, headers, timeout)
        if status != 200:
            return status, out.decode(errors="replace"), False
        v = json.loads(out)
        return status, v["choices"][0]["message"]["content"] or "", True
    status, _, out = request(port, "POST", "/v1/chat/completions", body, headers, timeout)
    if status != 200:
        return status, out.decode(errors="replace"), False
    text, done = [], False
    for event in out.decode(errors="replace").split("\n\n"):
        if not event.startswith("data: "):
            continue
        data = event[6:]
        if data == "[DONE]":
            done = True
            continue
        v = json.loads(data)
        for c in v.get("choices") or []:
            text.append((c.get("delta") or {}).get("content") or "")
    return status, "".join(text), done


def complaint(port, text, user=None, timeout=30):
    body = {"category": "other", "text": text}
    if user:
        body["user"] = user
    status, _, out = request(port, "POST", "/v1/tutela/complaints", body, timeout=timeout)
    receipt = json.loads(out)["id"] if status == 200 else None
    return status, receipt


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


class Gateway:
    def __init__(self, bins, workdir, db, upstream, extra="", name="gw", log=None, rust_log="warn"):
        self.bins, self.port = bins, free_port()
        self.db = db
        self.rust_log = rust_log
        self.config = os.path.join(workdir, f"{name}.toml")
        self.log = log or os.path.join(workdir, f"{name}.log")
        with open(self.config, "w") as f:
            f.write(f'listen = "127.0.0.1:{self.port}"\ndatabase = "{db}"\n'
                    'jurisdictions = ["us-ny"]\n'
                    "[takeover]\nwait_secs = 0\n"
                    "[complaints]\nper_client_per_hour = 1000000\nper_user_per_day = 1000000\n"
                    "global_per_hour = 1000000\n"
                    f'{extra}\n[upstream]\nkind = "openai"\nbase_url = "{upstream}"\ntimeout_secs = 3\n')
        self.proc = None

    def start(self, wait_ready=True):
        env = dict(os.environ, TUTELA_ADMIN_TOKEN=ADMIN, RUST_LOG=self.rust_log,
                   TUTELA_MODEL_DIR=os.path.join(os.path.dirname(self.config), "no-model"))
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen([os.path.join(self.bins, "tutela"), "serve", "--config", self.config],
                                     stdout=logf, stderr=logf, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"tutela serve exited: see {self.log}")
            status, _, _ = request(self.port, "GET", "/healthz", timeout=2)
            if status == 200:
                if not wait_ready or request(self.port, "GET", "/readyz", timeout=2)[0] == 200:
                    return self
            time.sleep(0.2)
        raise RuntimeError("tutela serve did not become ready in 120 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def term(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def metric(self, name):
        _, _, out = request(self.port, "GET", "/metrics", timeout=5)
        for line in out.decode(errors="replace").splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


def start_mock(bins, workdir, extra=()):
    port = free_port()
    log = open(os.path.join(workdir, f"mock-{port}.log"), "ab")
    p = subprocess.Popen([os.path.join(bins, "tutela-mock-upstream"), "--listen", f"127.0.0.1:{port}",
                          "--threads", "1", *extra], stdout=log, stderr=log)
    for _ in range(100):
        if request(port, "GET", "/v1/models", timeout=1)[0] == 200:
            return p, f"http://127.0.0.1:{port}/v1"
        time.sleep(0.1)
    raise RuntimeError("mock upstream did not start")


def verify(bins, db):
    r = subprocess.run([os.path.join(bins, "tutela"), "audit", "verify", "--db", db],
                       capture_output=True, text=True)
    return r.returncode, (r.stdout + r.stderr).strip()


def subject(salt, user):
    salt = salt.encode()
    return hashlib.sha256(SUBJECT_DOMAIN + len(salt).to_bytes(8, "big") + salt + user.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# 1. kill -9 during mixed load


def kill9_rounds(bins, workdir, upstream, rounds, load_secs, workers):
    R.say(f"## kill -9 during mixed load ({rounds} round(s), about {load_secs} s of load each, {workers} clients)")
    R.say()
    db = os.path.join(workdir, "kill9.db")
    acked = {"crisis": [], "normal": [], "stream": [], "complaint": []}
    lock = threading.Lock()
    for rnd in range(rounds):
        gw = Gateway(bins, workdir, db, upstream, name=f"kill9-{rnd}").start()
        stop = threading.Event()

        def worker(w):
            i = 0
            while not stop.is_set():
                kind = ("crisis", "normal", "stream", "complaint")[(w + i) % 4]
                tag = f"r{rnd}-w{w}-{i}"
                i += 1
                if kind == "complaint":
                    status, receipt = complaint(gw.port, f"complaint {tag}", user=f"cu-{tag}", timeout=10)
                    if status == 200:
                        with lock:
                            acked["complaint"].append((receipt, f"complaint {tag}"))
                    continue
                user = f"{kind}-{tag}"
                text = CRISIS if kind == "crisis" else NORMAL
                status, content, done = chat(gw.port, user, text, stream=(kind == "stream"), timeout=10)
                if status == 200 and done and (kind != "crisis" or HELP_LINE in content):
                    with lock:
                        acked[kind].append(user)

        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
        for t in threads:
            t.start()
        time.sleep(load_secs)
        gw.kill9()
        stop.set()
        for t in threads:
            t.join(15)
    con = sqlite3.connect(db)
    salt = con.execute("SELECT value FROM meta WHERE key = 'subject_salt'").fetchone()[0]

    def audit_kinds(user):
        return {k for (k,) in con.execute("SELECT kind FROM audit_log WHERE subject = ?", (subject(salt, user),))}

    lost = {}
    lost["intervention records"] = sum(1 for u in acked["crisis"] if "intervention" not in audit_kinds(u))
    lost["escalations"] = sum(
        1 for u in acked["crisis"]
        if con.execute("SELECT 1 FROM escalations WHERE user_id = ?", (u,)).fetchone() is None)
    lost["intervention rows"] = sum(
        1 for u in acked["crisis"]
        if con.execute("SELECT 1 FROM interventions WHERE user_id = ?", (u,)).fetchone() is None)
    lost["complaints"] = sum(
        1 for (cid, body) in acked["complaint"]
        if con.execute("SELECT 1 FROM complaints WHERE id = ? AND body = ?", (cid, body)).fetchone() is None)
    lost_turns = sum(1 for u in acked["normal"] + acked["stream"] if "turn" not in audit_kinds(u))
    con.close()
    code, out = verify(bins, db)
    R.say("| kind | acknowledged | lost |")
    R.say("|---|---|---|")
    R.say(f"| crisis: intervention audit records | {len(acked['crisis'])} | {lost['intervention records']} |")
    R.say(f"| crisis: escalations (cases) | {len(acked['crisis'])} | {lost['escalations']} |")
    R.say(f"| crisis: intervention rows | {len(acked['crisis'])} | {lost['intervention rows']} |")
    R.say(f"| complaints (receipts) | {len(acked['complaint'])} | {lost['complaints']} |")
    R.say(f"| normal turns' audit records (JSON + streamed) | {len(acked['normal']) + len(acked['stream'])} | {lost_turns} |")
    R.say()
    R.check(len(acked["crisis"]) > 0 and len(acked["complaint"]) > 0, "the load reached the gateway (acknowledged crisis turns and complaints)")
    for k, n in lost.items():
        R.check(n == 0, f"acknowledged but lost {k}: {n}")
    R.check(lost_turns <= rounds * 512 + rounds * 64,
            f"normal-turn records lost to kill -9 ({lost_turns}) within the group-commit window")
    R.check(code == 0, f"`tutela audit verify` after {rounds} kill -9: exit {code}: {out.splitlines()[0] if out else ''}")
    R.say()


# ---------------------------------------------------------------------------------------------
# 2. disk full


def disk_full(bins, workdir, upstream):
    R.say("## Disk full, then freed (the database on a small tmpfs)")
    R.say()
    disk = os.path.join(workdir, "disk")
    os.makedirs(disk)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", disk], capture_output=True, text=True)
    if r.returncode != 0:
        R.say(f"- skipped: cannot mount a tmpfs here ({r.stderr.strip() or 'not allowed'})")
        R.say()
        return
    try:
        _disk_full(bins, workdir, upstream, disk)
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)


def disk_full_under_load(bins, workdir, upstream, full_secs, workers, disk_mb=64):
    R.say(f"## Disk full for {full_secs:.0f} s under steady load, the log on the same disk")
    R.say()
    disk = os.path.join(workdir, "disk2")
    os.makedirs(disk)
    # Room for what the load writes (the database grows by the held records once space is
    # freed, the WAL to its 4 MB checkpoint size, the log): with 8 MB the data alone filled the
    # disk again after the filler was removed, and readiness and the checkpoint at SIGTERM then
    # failed for want of space, not for a defect. The filler makes it full whatever its size.
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={disk_mb}m", "tmpfs", disk], capture_output=True, text=True)
    if r.returncode != 0:
        R.say(f"- skipped: cannot mount a tmpfs here ({r.stderr.strip() or 'not allowed'})")
        R.say()
        return
    try:
        _disk_full_under_load(bins, workdir, upstream, disk, full_secs, workers)
    finally:
        # The gateway's log lived on the small disk: keep it with the other logs.
        try:
            shutil.copy(os.path.join(disk, "gateway.log"), os.path.join(workdir, "diskfull-load.log"))
        except OSError:
            pass
        subprocess.run(["umount", "-l", disk], capture_output=True)


def spill_kill(bins, workdir, upstream):
    R.say("## Disk full with a spill directory on another disk, kill -9, restart")
    R.say()
    disk = os.path.join(workdir, "disk3")
    os.makedirs(disk)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", disk], capture_output=True, text=True)
    if r.returncode != 0:
        R.say(f"- skipped: cannot mount a tmpfs here ({r.stderr.strip() or 'not allowed'})")
        R.say()
        return
    try:
        _spill_kill(bins, workdir, upstream, disk)
    finally:
        subprocess.run(["umount", "-l", disk], capture_output=True)


def _spill_kill(bins, workdir, upstream, disk):
    """`[store] spill_dir` on another disk: the intervention records acknowledged while the
    database's disk is full (the reply with help lines went out) are in the spill file, so
    kill -9 during the outage loses none: the next start replays them, in order."""
    db = os.path.join(disk, "spill.db")
    spill = os.path.join(workdir, "spill-dir")
    extra = f'[store]\nspill_dir = "{spill}"\n'
    gw = Gateway(bins, workdir, db, upstream, extra=extra, name="spill").start()
    for i in range(3):
        chat(gw.port, f"spill-warm-{i}", NORMAL)
    filler = os.path.join(disk, "filler")
    fill(filler)
    acked = []
    for i in range(6):
        user = f"spill-crisis-{i}"
        status, content, done = chat(gw.port, user, CRISIS, stream=(i % 2 == 1), timeout=20)
        if status == 200 and done and HELP_LINE in content:
            acked.append(user)
    spilled = gw.metric("tutela_audit_spilled_total") or 0
    R.check(len(acked) == 6, f"crisis replies with help lines while the disk is full: {len(acked)} of 6")
    R.check(spilled >= len(acked), f"records in the spill file before the kill: {spilled:.0f}")
    gw.kill9()
    os.remove(filler)
    gw = Gateway(bins, workdir, db, upstream, extra=extra, name="spill-2").start()
    t0 = time.time()
    while time.time() - t0 < 20 and (gw.metric("tutela_audit_pending_records") or 0) > 0:
        time.sleep(0.2)
    replayed = gw.metric("tutela_audit_replayed_total")
    code = gw.term()
    R.check(code == 0, f"SIGTERM after the replay: exit {code}")
    con = sqlite3.connect(db)
    salt = con.execute("SELECT value FROM meta WHERE key = 'subject_salt'").fetchone()[0]
    lost = [u for u in acked
            if con.execute("SELECT 1 FROM audit_log WHERE subject = ? AND kind = 'intervention'",
                           (subject(salt, u),)).fetchone() is None]
    con.close()
    R.check(not lost, f"acknowledged intervention records lost to kill -9 during the outage: {len(lost)} of {len(acked)}"
                      f" (replayed at start: {replayed})")
    left = [f for f in os.listdir(spill) if f.startswith("audit-spill-")] if os.path.isdir(spill) else []
    R.check(not left, f"spill files left after the replay: {len(left)}")
    code, out = verify(bins, db)
    R.check(code == 0 and "spill file" in out,
            f"`tutela audit verify`: exit {code}; {' / '.join(l for l in out.splitlines() if 'spill' in l or 'outage' in l)}")
    R.say()


def _disk_full_under_load(bins, workdir, upstream, disk, full_secs, workers):
    """The soak's defect: the disk that holds the database and the gateway's log fills up while
    traffic goes on. Every log line then fails; the store's writer must keep holding and
    retrying (never "the audit writer has stopped"), crisis turns must get help lines, and
    SIGTERM afterwards must exit 0 (it was a panic, exit 101)."""
    db = os.path.join(disk, "full.db")
    # The log on the full disk, at info level so that every turn and every failed write logs.
    gw = Gateway(bins, workdir, db, upstream, name="diskfull-load",
                 log=os.path.join(disk, "gateway.log"), rust_log="info").start()
    stop = threading.Event()
    lock = threading.Lock()
    seen = {"crisis": 0, "crisis_help": 0, "normal": 0, "normal_ok": 0, "stopped": 0, "errors": {}}

    def worker(w):
        i = 0
        while not stop.is_set():
            crisis = (w + i) % 3 == 0
            user = f"load-{w}-{i % 20}"
            i += 1
            status, content, done = chat(gw.port, user, CRISIS if crisis else NORMAL,
                                         stream=(i % 2 == 0), timeout=30)
            with lock:
                if crisis:
                    seen["crisis"] += 1
                    seen["crisis_help"] += int(status == 200 and HELP_LINE in content)
                else:
                    seen["normal"] += 1
                    seen["normal_ok"] += int(status == 200)
                if "writer has stopped" in content:
                    seen["stopped"] += 1
                if status != 200:
                    seen["errors"][status] = seen["errors"].get(status, 0) + 1
            time.sleep(0.02)

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(workers)]
    for t in threads:
        t.start()
    time.sleep(2)
    filler = os.path.join(disk, "filler")
    fill(filler)
    t0 = time.time()
    alive, not_ready = True, 0
    while time.time() - t0 < full_secs:
        time.sleep(1)
        if gw.proc.poll() is not None:
            alive = False
            break
        not_ready += int(request(gw.port, "GET", "/readyz", timeout=5)[0] == 503)
    failing = gw.metric("tutela_store_writes_failing")
    with lock:
        during = dict(seen, errors=dict(seen["errors"]))
    R.check(alive, f"the gateway lives through {full_secs:.0f} s of a full disk under load")
    R.check(not_ready > 0 and failing == 1,
            f"/readyz said 503 in {not_ready} of its checks; tutela_store_writes_failing = {failing}")
    R.check(during["crisis"] > 0 and during["crisis_help"] == during["crisis"],
            f"crisis turns with help lines while full: {during['crisis_help']} of {during['crisis']}")
    R.say(f"- normal turns while full: {during['normal_ok']} of {during['normal']} answered "
          f"(the rest waited: backpressure); statuses other than 200: {during['errors']}")
    os.remove(filler)
    t1 = time.time()
    while time.time() - t1 < 60 and request(gw.port, "GET", "/readyz", timeout=5)[0] != 200:
        time.sleep(0.2)
    R.check(request(gw.port, "GET", "/readyz", timeout=5)[0] == 200,
            f"ready again {time.time() - t1:.1f} s after space was freed")
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join(35)
    status, content, _ = chat(gw.port, "after-full-load", CRISIS)
    R.check(status == 200 and HELP_LINE in content, "a crisis turn after the outage is served")
    R.check(seen["stopped"] == 0, f"answers saying the audit writer has stopped: {seen['stopped']}")
    st = os.statvfs(disk)
    R.say(f"- free on the database's disk before SIGTERM: {st.f_bavail * st.f_frsize // 1024} KiB "
          f"(gateway log {os.path.getsize(gw.log) // 1024} KiB)")
    code = gw.term()
    R.check(code == 0, f"SIGTERM after the outage: exit {code} (was 101: a panic)")
    with open(gw.log, "rb") as f:
        log = f.read().decode(errors="replace")
    R.check("writer has stopped" not in log and "panicked" not in log,
            "the log names no stopped writer and no panic")
    wal = db + "-wal"
    wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
    R.check(wal_size == 0, f"SIGTERM: WAL checkpointed ({wal_size} bytes left)")
    code, out = verify(bins, db)
    R.check(code == 0, f"`tutela audit verify`: exit {code}; {' / '.join(out.splitlines()[:2])}")
    R.say()


def fill(path):
    """Writes zeros into `path` until the file system is full."""
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError:
            pass
        for size in (4096, 512, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError:
                pass


def _disk_full(bins, workdir, upstream, disk):
    db = os.path.join(disk, "full.db")
    gw = Gateway(bins, workdir, db, upstream, name="diskfull").start()
    for i in range(5):
        chat(gw.port, f"warm-{i}", NORMAL)
    filler = os.path.join(disk, "filler")
    fill(filler)
    crisis_users, replies_ok = [], 0
    for i in range(4):
        user = f"full-crisis-{i}"
        status, content, done = chat(gw.port, user, CRISIS, stream=(i % 2 == 1), timeout=20)
        crisis_users.append(user)
        if status == 200 and done and HELP_LINE in content:
            replies_ok += 1
    R.check(replies_ok == 4, f"crisis replies with help lines while the disk is full: {replies_ok} of 4 (JSON and streamed)")
    ready = request(gw.port, "GET", "/readyz", timeout=5)
    R.check(ready[0] == 503, f"/readyz while writes fail: {ready[0]} ({ready[2].decode(errors='replace').splitlines()[1:2]})")
    R.check(gw.metric("tutela_store_writes_failing") == 1, "metric tutela_store_writes_failing = 1")
    receipts = []
    statuses = []
    for i in range(3):
        status, receipt = complaint(gw.port, f"full complaint {i}", timeout=20)
        statuses.append(status)
        if receipt is not None:
            receipts.append((receipt, f"full complaint {i}"))
    R.say(f"- complaints while full: statuses {statuses} (a receipt only for a committed row)")
    normal = [chat(gw.port, f"full-normal-{i}", NORMAL, timeout=10)[0] for i in range(2)]
    R.say(f"- normal turns while full: statuses {normal} (their records are held)")
    os.remove(filler)
    t0 = time.time()
    while time.time() - t0 < 60 and request(gw.port, "GET", "/readyz", timeout=5)[0] != 200:
        time.sleep(0.2)
    recovered = time.time() - t0
    R.check(request(gw.port, "GET", "/readyz", timeout=5)[0] == 200, f"ready again {recovered:.1f} s after space was freed")
    outages = gw.metric("tutela_audit_outages_total")
    R.check((outages or 0) >= 1, f"metric tutela_audit_outages_total = {outages}")
    t1 = time.time()
    while time.time() - t1 < 30 and (gw.metric("tutela_side_effects_late_total") or 0) < len(crisis_users):
        time.sleep(0.2)
    late_effects = gw.metric("tutela_side_effects_late_total")
    R.check((late_effects or 0) >= len(crisis_users),
            f"the outage's crisis side effects (case, rows, counters) written late: {late_effects} of {len(crisis_users)}"
            f" within {time.time() - t1:.1f} s")
    status, receipt = complaint(gw.port, "after the outage")
    R.check(status == 200, f"a complaint after the outage: {status} (the pool is not poisoned)")
    if receipt is not None:
        receipts.append((receipt, "after the outage"))
    status, content, _ = chat(gw.port, "after-crisis", CRISIS)
    R.check(status == 200 and HELP_LINE in content, "a crisis turn after the outage is served and recorded")
    code = gw.term()
    wal = db + "-wal"
    wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
    R.check(code == 0, f"SIGTERM: exit {code}")
    R.check(wal_size == 0, f"SIGTERM: WAL checkpointed ({wal_size} bytes left)")
    con = sqlite3.connect(db)
    salt = con.execute("SELECT value FROM meta WHERE key = 'subject_salt'").fetchone()[0]
    late = sum(1 for u in crisis_users
               if con.execute("SELECT 1 FROM audit_log WHERE subject = ? AND kind = 'intervention'",
                              (subject(salt, u),)).fetchone())
    cases = sum(1 for u in crisis_users
                if con.execute("SELECT 1 FROM escalations WHERE user_id = ?", (u,)).fetchone())
    lost_complaints = sum(1 for (cid, body) in receipts
                          if con.execute("SELECT 1 FROM complaints WHERE id = ? AND body = ?", (cid, body)).fetchone() is None)
    con.close()
    R.check(late == len(crisis_users), f"intervention audit records of the outage written late: {late} of {len(crisis_users)}")
    R.check(cases == len(crisis_users), f"cases for the crisis team opened for the outage's crisis turns: {cases} of {len(crisis_users)}")
    R.check(lost_complaints == 0, f"complaint receipts without their row: {lost_complaints} of {len(receipts)}")
    code, out = verify(bins, db)
    R.check(code == 0 and "write outages: 1" in out, f"`tutela audit verify`: exit {code}; {' / '.join(out.splitlines()[:3])}")
    R.say()


# ---------------------------------------------------------------------------------------------
# 3. and 4. the upstream's faults, the client leaving


class Endless(threading.Thread):
    """A fake upstream whose streams never end: `endless:bytes` sends an event that never ends
    (no separator), `endless:events` a valid chunk every 10 ms forever. Counts the streams the
    other side stopped reading (`closed`)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.closed = 0
        self.open = 0
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = f.readline()
            if not chunk:
                return
            head += chunk
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = f.read(length)
        if b"/v1/models" in head.split(b"\r\n")[0]:
            payload = b'{"object":"list","data":[{"id":"mock-1","object":"model"}]}'
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                         + str(len(payload)).encode() + b"\r\n\r\n" + payload)
            conn.close()
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                     b"transfer-encoding: chunked\r\n\r\n")
        with self.lock:
            self.open += 1
        try:
            if b"endless:bytes" in body:
                piece = b"data: " + b"x" * 65536
                while True:
                    conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
                    piece = b"x" * 65536
            else:
                n = 0
                while True:
                    ev = ('data: {"id":"e","object":"chat.completion.chunk","created":0,"model":"mock-1",'
                          '"choices":[{"index":0,"delta":{"content":"la la %d. "},"finish_reason":null}]}\n\n' % n).encode()
                    conn.sendall(b"%x\r\n%s\r\n" % (len(ev), ev))
                    n += 1
                    time.sleep(0.01)
        except OSError:
            with self.lock:
                self.closed += 1
                self.open -= 1
        finally:
            conn.close()


def upstream_faults(bins, workdir, upstream):
    R.say("## The upstream refused, slow, erroring, hanging, endless; the client leaving mid-stream")
    R.say()
    db = os.path.join(workdir, "upstream.db")
    gw = Gateway(bins, workdir, db, upstream, name="upstream").start()
    status, content, done = chat(gw.port, "slow-1", NORMAL + " fault:slow", stream=True, timeout=30)
    R.check(status == 200 and done and content.count("ten") == 3,
            f"slow upstream stream (50 ms between chunks): {status}, complete: {done}, {len(content)} characters")
    for marker, want in (("fault:500", 502), ("fault:503", 503), ("fault:hang", 504)):
        t0 = time.time()
        status, _, _ = chat(gw.port, f"err-{marker}", f"{NORMAL} {marker}", timeout=30)
        R.check(status == want, f"upstream {marker}: {status} (want {want}) in {time.time() - t0:.1f} s")
    status, content, _ = chat(gw.port, "err-crisis", CRISIS + " fault:500")
    R.check(status == 200 and HELP_LINE in content, "a crisis message with a failing upstream: help lines (the model is not asked)")
    gw.term()

    dead = free_port()
    gw = Gateway(bins, workdir, os.path.join(workdir, "refused.db"), f"http://127.0.0.1:{dead}/v1", name="refused").start()
    status, _, out = request(gw.port, "POST", "/v1/chat/completions",
                             {"model": "mock-1", "messages": [{"role": "user", "content": NORMAL}]},
                             {"x-tutela-user": "refused-1"})
    code = json.loads(out)["error"]["code"] if status else None
    R.check(status == 502 and code == "upstream_unreachable", f"refused upstream: {status} {code}")
    status, content, _ = chat(gw.port, "refused-crisis", CRISIS)
    R.check(status == 200 and HELP_LINE in content, "a crisis message with the upstream down: help lines")
    gw.term()

    endless = Endless()
    endless.start()
    gw = Gateway(bins, workdir, os.path.join(workdir, "endless.db"), f"http://127.0.0.1:{endless.port}/v1",
                 name="endless").start()
    before = rss_mb(gw.proc.pid)
    t0 = time.time()
    status, body, _ = chat(gw.port, "endless-1", NORMAL + " endless:bytes", stream=True, timeout=60)
    took = time.time() - t0
    peak = rss_mb(gw.proc.pid)
    R.check(status in (200, 502) and took < 30,
            f"an upstream event without end: the stream ends in {took:.1f} s ({status}; RSS {before:.0f} -> {peak:.0f} MB)")
    R.check(peak - before < 64, f"memory bounded while the upstream sends an endless event (+{peak - before:.0f} MB)")

    # The client leaves: the gateway must stop reading the upstream (the fake upstream's write
    # fails), and keep nothing per aborted stream.
    base_fds = fds(gw.proc.pid)
    aborted = 20
    reached = 0
    for i in range(aborted):
        s = socket.create_connection(("127.0.0.1", gw.port), timeout=15)
        body = json.dumps({"model": "mock-1", "stream": True,
                           "messages": [{"role": "user", "content": NORMAL}]}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"x-tutela-user: leaver-%d\r\ncontent-length: %d\r\n\r\n%s" % (i, len(body), body))
        got = b""
        try:
            while got.count(b"la la") < 3:
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
        except OSError:
            pass
        reached += got.count(b"la la") >= 3
        s.close()
    R.check(reached == aborted, f"endless streams relayed as they come: {reached} of {aborted}")
    deadline = time.time() + 20
    while time.time() < deadline and endless.closed < aborted:
        time.sleep(0.1)
    R.check(endless.closed >= aborted,
            f"client left mid-stream: the gateway stopped reading the upstream for {endless.closed} of {aborted} streams")
    time.sleep(1)
    after_fds = fds(gw.proc.pid)
    R.check(after_fds - base_fds < 8, f"file descriptors after {aborted} aborted streams: {base_fds} -> {after_fds}")
    status, content, done = chat(gw.port, "after-leavers", CRISIS)
    R.check(status == 200 and HELP_LINE in content, "served normally after the aborted streams")
    gw.term()
    R.say()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--short", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--load-secs", type=float, default=8)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--full-secs", type=float, default=60,
                    help="how long the disk stays full under load (the log on the same disk)")
    ap.add_argument("--disk-mb", type=int, default=64,
                    help="size of the tmpfs of the disk-full-under-load part (8 was too small: the data refilled it)")
    ap.add_argument("--only", choices=["kill9", "diskfull", "diskload", "spill", "upstream"], action="append",
                    help="run only these parts (repeatable); all by default")
    ap.add_argument("--out")
    a = ap.parse_args()
    if a.short:
        a.rounds, a.load_secs, a.workers, a.full_secs = 1, 4, 6, 8
    bins = os.path.abspath(a.bin_dir)
    workdir = tempfile.mkdtemp(prefix="tutela-faults-")
    t0 = time.time()
    R.say(f"# Fault suite ({'short' if a.short else 'full'})")
    R.say()
    R.say(f"Machine: {os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}; "
          f"load average before: {os.getloadavg()[0]:.2f}; binaries: {a.bin_dir}")
    R.say()
    mock, upstream = start_mock(bins, workdir)
    try:
        parts = a.only or ["kill9", "diskfull", "diskload", "spill", "upstream"]
        if "kill9" in parts:
            kill9_rounds(bins, workdir, upstream, a.rounds, a.load_secs, a.workers)
        if "diskfull" in parts:
            disk_full(bins, workdir, upstream)
        if "diskload" in parts:
            disk_full_under_load(bins, workdir, upstream, a.full_secs, min(a.workers, 6), a.disk_mb)
        if "spill" in parts:
            spill_kill(bins, workdir, upstream)
        if "upstream" in parts:
            upstream_faults(bins, workdir, upstream)
    finally:
        mock.kill()
        mock.wait()
    R.say(f"{len(R.failed)} check(s) failed; {time.time() - t0:.0f} s in all.")
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(R.lines) + "\n")
    if R.failed:
        print(f"logs kept in {workdir}", file=sys.stderr)
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
