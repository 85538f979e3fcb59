#!/usr/bin/env bash
# Side-by-side screening benchmark: tutela screen vs Hugging Face datatrove vs raw read speed,
# on a generated mixed English/Chinese corpus with several sources and planted violations/PII.
#
#   bench/screen/run.sh [SIZE_MB] [CORPUS_DIR]     (defaults: 1024, /tmp/tutela-bench-corpus)
#
# datatrove is installed without extras; its filters package imports `regex`, its JsonlReader needs `orjson`, and .zst input
# needs `zstandard`, so both are installed beside it.
# Env: DT_MB (MB of the corpus given to datatrove, default 200: it is slow, and its rate per
# core is what is compared), VENV (default /tmp/tutela-bench-venv), TARGET (cargo target dir).
# Writes a Markdown report to stdout and to bench/screen/results/<UTC date>-<host>.md.
# The corpus is never committed; keep it under /tmp.
set -euo pipefail
SIZE_MB=${1:-1024}
CORPUS=${2:-/tmp/tutela-bench-corpus}
DT_MB=${DT_MB:-200}
VENV=${VENV:-/tmp/tutela-bench-venv}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${TARGET:-$ROOT/target}
WORK=${WORK:-/tmp/tutela-bench-work}
CORES=$(nproc)
HERE=$ROOT/bench/screen
now() { date +%s.%N; }
# cpu FILE CMD...: runs CMD, writes the CPU seconds (user + system, children included) it used
# to FILE. "Per core" below divides by CPU time, so helper threads and processes count.
cpu() {
  local out=$1; shift
  python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[2:])
r = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{r.ru_utime + r.ru_stime:.2f}")' "$out" "$@"
}
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

cd "$ROOT"
CARGO_TARGET_DIR=$TARGET cargo build --release -q -p tutela-cli -p tutela-screen --example gen_corpus
TUTELA=$TARGET/release/tutela
if [ ! -f "$CORPUS/plan-summary.json" ]; then
  echo "generating ${SIZE_MB} MB corpus in $CORPUS" >&2
  "$TARGET/release/examples/gen_corpus" "$CORPUS" "$SIZE_MB" 42 > /dev/null
fi
STORED=$(du -sb "$CORPUS/corpus" | cut -f1)
rm -rf "$WORK"; mkdir -p "$WORK"

# Every timed step below runs RUNS times (default 3), each on a clean output directory, and
# the median is reported (timed.py): this machine is shared, and one slow run says little.
RUNS=${RUNS:-3}
timed() { python3 "$HERE/timed.py" "$@"; }
val() { cat "$WORK/$1"; }

# 1. Raw read speed (the physical limit): stored bytes, then decompressed, one core, warm cache.
cat "$CORPUS"/corpus/* > /dev/null
timed "$WORK/raw" "$RUNS" -- bash -c 'cat "$1"/corpus/* > /dev/null' _ "$CORPUS"
timed "$WORK/dec" "$RUNS" -- bash -c 'for f in "$1"/corpus/*; do
  case $f in *.gz) gzip -dc "$f";; *.zst) zstd -dcq "$f";; *) cat "$f";; esac
done > /dev/null' _ "$CORPUS"
# The I/O floor of any screener that writes its kept shards: read, decompress and write the
# same bytes back to the output disk (one core), then drop them.
timed "$WORK/copy" "$RUNS" --before "rm -rf '$WORK/copy'; mkdir -p '$WORK/copy'; sync" -- bash -c 'for f in "$1"/corpus/*; do
  o="$2/$(basename "$f")"
  case $f in *.gz) gzip -dc "$f" > "$o";; *.zst) zstd -dcq "$f" > "$o";; *) cat "$f" > "$o";; esac
done' _ "$CORPUS" "$WORK/copy"
rm -rf "$WORK/copy"
RAW_S=$(val raw.s); DEC_S=$(val dec.s); COPY_S=$(val copy.s)

# 2. tutela screen, all cores and one core (the last all-cores run stays for the checks).
timed "$WORK/tut1" "$RUNS" --before "rm -rf '$WORK/tutela-1'; sync" -- "$TUTELA" screen "$CORPUS/corpus" --out "$WORK/tutela-1" --rules "$CORPUS/rules.toml" --threads 1 --no-progress
rm -rf "$WORK/tutela-1"
timed "$WORK/tut" "$RUNS" --before "rm -rf '$WORK/tutela'; sync" -- "$TUTELA" screen "$CORPUS/corpus" --out "$WORK/tutela" --rules "$CORPUS/rules.toml" --no-progress
TUT1_S=$(val tut1.s); TUT_S=$(val tut.s)

# 3. Shards in separate processes, merged; must equal the single run.
pids=()
for k in $(seq 1 "$CORES"); do
  "$TUTELA" screen "$CORPUS/corpus" --out "$WORK/shard-$k" --rules "$CORPUS/rules.toml" --shard "$k/$CORES" --threads 1 --no-progress > /dev/null 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
"$TUTELA" screen merge "$WORK"/shard-* --out "$WORK/merged" > /dev/null || true
MERGE_SAME=$(python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
a = json.load(open(f"{w}/tutela/summary.json")); b = json.load(open(f"{w}/merged/summary.json"))
same = a["totals"] == b["totals"] and a["sources"] == b["sources"] and a["rejected_sources"] == b["rejected_sources"]
print("yes" if same else "NO")
PY
)

# 4. datatrove on the first DT_MB of stored files, one task (one core), same checks.
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q datatrove regex zstandard orjson > "$WORK/pip.log" 2>&1 || { echo "pip install datatrove failed; see $WORK/pip.log" >&2; }
DT_VER=$("$VENV/bin/python" -c "import importlib.metadata as m; print(m.version('datatrove'))" 2>/dev/null || echo "not installed")
mkdir -p "$WORK/dt-in"; acc=0
for f in $(ls "$CORPUS"/corpus/* | sort -t- -k3); do
  [ "$acc" -ge $((DT_MB * 1048576)) ] && break
  ln -s "$f" "$WORK/dt-in/"; acc=$((acc + $(stat -c %s "$f")))
done
DT_DOCS=0; DT_BYTES=0; DT_S=nan
if [ "$DT_VER" != "not installed" ]; then
  # (one run: it takes minutes.)
  t0=$(now); cpu "$WORK/dt.cpu" "$VENV/bin/python" "$HERE/datatrove_pipeline.py" "$WORK/dt-in" "$WORK/dt-out" 1 > "$WORK/dt.log" 2>&1; t1=$(now)
  DT_S=$(secs $t0 $t1)
  # tutela on exactly the same files, one core, for the per-core comparison.
  timed "$WORK/tdt" "$RUNS" --before "rm -rf '$WORK/tutela-dt'; sync" -- "$TUTELA" screen "$WORK/dt-in" --out "$WORK/tutela-dt" --rules "$CORPUS/rules.toml" --threads 1 --no-progress
  TDT_S=$(val tdt.s)
fi

SCORE=$(python3 "$HERE/score_plan.py" "$CORPUS" "$WORK/tutela")
python3 - "$WORK" "$CORPUS" "$STORED" "$RAW_S" "$DEC_S" "$TUT_S" "$TUT1_S" "$DT_S" "${TDT_S:-nan}" "$CORES" "$DT_VER" "$MERGE_SAME" "$SIZE_MB" "$COPY_S" "$RUNS" <<'PY' > "$WORK/report.md"
import json, sys, platform, subprocess, datetime
w, corpus, stored, raw_s, dec_s, tut_s, tut1_s, dt_s, tdt_s, cores, dt_ver, merge_same, size_mb, copy_s, runs = sys.argv[1:]
copy_s = float(copy_s)
def cpu_of(name):
    try:
        return float(open(f"{w}/{name}.cpu").read())
    except (OSError, ValueError):
        return float("nan")
dec_c, tut_c, tut1_c, dt_c, tdt_c = (cpu_of(n) for n in ("dec", "tut", "tut1", "dt", "tdt"))
stored = int(stored); cores = int(cores)
raw_s, dec_s, tut_s, tut1_s, dt_s, tdt_s = map(float, (raw_s, dec_s, tut_s, tut1_s, dt_s, tdt_s))
s = json.load(open(f"{w}/tutela/summary.json"))
t = s["totals"]; docs = t["docs"]; dec = t["raw_bytes"]
MB = 1048576
cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
print(f"# tutela screen benchmark — {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC\n")
print(f"- machine: {platform.node()}, {cpu}, {cores} cores (shared with other jobs), {platform.platform()}")
print(f"- command: `bench/screen/run.sh {size_mb} {corpus}`")
print(f"- corpus: {docs} documents, {dec/MB:.0f} MB decompressed JSON, {stored/MB:.0f} MB stored, {t['files']} files, {len(s['sources'])} sources")
print(f"- every figure but datatrove's is the median of {runs} runs, each on a clean output directory\n")
print("| what | seconds | docs/s | MB/s (decompressed) | MB/s per core |")
print("|---|---:|---:|---:|---:|")
print(f"| raw read, stored bytes (`cat`, 1 core) | {raw_s:.2f} | – | {stored/MB/raw_s:.0f} (stored) | {stored/MB/raw_s:.0f} |")
print(f"| raw read + decompress (`cat`/`zstd -dc`/`gzip -dc`, 1 core) | {dec_s:.2f} | {docs/dec_s:.0f} | {dec/MB/dec_s:.0f} | {dec/MB/dec_c:.0f} (per CPU-second) |")
print(f"| raw read + decompress + write back (`… > file`, 1 core) | {copy_s:.2f} | {docs/copy_s:.0f} | {dec/MB/copy_s:.0f} | {dec/MB/copy_s:.0f} |")
print(f"| tutela screen, {cores} threads (all cores) | {tut_s:.2f} | {docs/tut_s:.0f} | {dec/MB/tut_s:.1f} | {dec/MB/tut_c:.1f} (per CPU-second) |")
print(f"| tutela screen, 1 worker thread (+ reader and writer threads) | {tut1_s:.2f} | {docs/tut1_s:.0f} | {dec/MB/tut1_s:.1f} | {dec/MB/tut1_c:.1f} (per CPU-second) |")
if dt_s == dt_s:
    d = json.load(open(f"{w}/tutela-dt/summary.json"))["totals"]
    print(f"| datatrove {dt_ver}, 1 task, {d['docs']} docs subset | {dt_s:.2f} | {d['docs']/dt_s:.0f} | {d['raw_bytes']/MB/dt_s:.1f} | {d['raw_bytes']/MB/dt_c:.1f} (per CPU-second) |")
    print(f"| tutela screen, 1 worker thread, same subset | {tdt_s:.2f} | {d['docs']/tdt_s:.0f} | {d['raw_bytes']/MB/tdt_s:.1f} | {d['raw_bytes']/MB/tdt_c:.1f} (per CPU-second) |")
    print(f"\nPer core (CPU time) on the same files: tutela / datatrove = **{dt_c/tdt_c:.1f}×** (wall clock: {dt_s/tdt_s:.1f}×).")
print(f"\nraw read + decompress / tutela, throughput (wall clock, all {cores} cores, as `tutela screen` runs by default) = **{tut_s/dec_s:.1f}×**; with 1 worker thread: **{tut1_s/dec_s:.1f}×**; per core (CPU time, 1 worker thread) = **{tut1_c/dec_c:.1f}×**.")
print(f"\nread + decompress + write back / tutela (wall clock, 1 worker thread) = **{tut1_s/copy_s:.1f}×**: tutela writes its kept and removed shards (about the whole corpus), which the raw read does not.")
print(f"\nRejected sources: {', '.join(s['rejected_sources']) or 'none'}. Technical check pass rate {s['technical']['rate']*100:.2f} %. Manual sample: {len(t['sample'])} items. Malformed lines: {t['malformed']}.")
print(f"\n{cores} shard processes merged == single run: **{merge_same}**.")
PY
{ cat "$WORK/report.md"; echo; echo "## Recall and precision against the plan"; echo; echo "$SCORE" | sed '$d'; } | tee "$HERE/results/$(date -u +%Y-%m-%d-%H%M)-$(hostname).md"
