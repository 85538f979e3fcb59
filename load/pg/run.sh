#!/usr/bin/env bash
# One gateway on SQLite vs one on PostgreSQL vs two on one PostgreSQL database (issue #15):
# the latency tutela adds at a fixed rate and the maximum rate, on this machine.
#
#   load/pg/run.sh [--secs 20] [--max-secs 15] [--rate 1000] [--conc 64] [--warmup 5]
#
# Needs `oha` (cargo install oha --locked), python3, curl, psql and PostgreSQL on
# 127.0.0.1:5432 with trust auth (user `postgres`, else `root`; database `test` to connect to).
# TUTELA_BIN_DIR=DIR uses prebuilt `tutela` and `tutela-mock-upstream` (else a release build).
#
# Traffic: the companion-chat mix of load/tiers/chat-mix.py (2,000 ordinary users, crisis turns
# from users of their own), one random line per request (oha -Z), JSON (not streamed); the
# mock answers with the mix's replies. Every gateway runs the whole pipeline except the encoder
# tier (TUTELA_MODEL_DIR points at a folder that does not exist; the encoder's cost is measured
# by load/tiers/run.sh), with `[takeover] wait_secs = 0` (no staff signed in during a run).
# Each setup gets a fresh store: a SQLite file, then a PostgreSQL database of the recipe's own
# (created, and dropped again on exit), created anew for the two instances, which share it.
#
# For each setup: a warm-up at the fixed rate through the gateway(s) (--warmup seconds: most of
# the mix's users are first seen then, and a cold gateway queues; reported, not counted), then
# oha at the fixed rate (`-q`, `--latency-correction`) straight to the mock,
# then through the gateway(s), p50 / p99 of both and the difference; then the maximum rate
# (no `-q`, `--conc` connections, --max-secs). Two instances are driven by two oha processes,
# one per instance, each at half the rate and half the connections, their per-request CSVs
# merged (lat.py); the direct baseline for that setup is two oha processes the same way.
# Prints Markdown.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
secs=20
max_secs=15
rate=1000
conc=64
warmup=5
while [ $# -gt 0 ]; do
    case "$1" in
        --secs) secs="$2"; shift 2 ;;
        --max-secs) max_secs="$2"; shift 2 ;;
        --rate) rate="$2"; shift 2 ;;
        --conc) conc="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked" >&2; exit 2; }
command -v psql >/dev/null || { echo "psql not found" >&2; exit 2; }
if [ -z "${TUTELA_BIN_DIR:-}" ]; then
    cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
    TUTELA_BIN_DIR="${CARGO_TARGET_DIR:-$root/target}/release"
fi
bin="$TUTELA_BIN_DIR"
export PGCONNECT_TIMEOUT=5
pg_user=""
for u in postgres root; do
    if psql -h 127.0.0.1 -U "$u" -d test -Atqc 'select 1' >/dev/null 2>&1; then pg_user=$u; break; fi
done
[ -n "$pg_user" ] || { echo "no PostgreSQL on 127.0.0.1:5432 with trust auth for postgres or root" >&2; exit 2; }
pg() { psql -h 127.0.0.1 -U "$pg_user" -d test -Atqc "$1"; }
db="tutela_load_$(date +%s)_$$"
pg_url="postgres://$pg_user@127.0.0.1:5432/$db"

tmp=$(mktemp -d)
pids=()
db_made=0
stop_gateways() { for p in "${gws[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
                  for p in "${gws[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done; gws=(); }
cleanup() {
    stop_gateways
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "$db_made" = 1 ] && pg "drop database if exists \"$db\" with (force)" || true
    rm -rf "$tmp"
}
gws=()
trap cleanup EXIT
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

python3 load/tiers/chat-mix.py --out "$tmp/mix" >&2
users=$(python3 -c 'import json,sys; print(len({json.loads(l)["user"] for l in open(sys.argv[1])}))' "$tmp/mix/bodies.jsonl")
mock_port=$(port)
"$bin/tutela-mock-upstream" --listen "127.0.0.1:$mock_port" --threads 1 --replies "$tmp/mix/replies.jsonl" > "$tmp/mock.log" 2>&1 &
pids+=($!)
mock="http://127.0.0.1:$mock_port/v1/chat/completions"
for _ in $(seq 1 100); do
    curl -s -o /dev/null "http://127.0.0.1:$mock_port/" && break
    sleep 0.1
done

# gateway NAME DATABASE PORT: a `tutela serve` in front of the mock, waited for until ready.
gateway() {
    local name=$1 database=$2 p=$3
    cat > "$tmp/$name.toml" <<TOML
listen = "127.0.0.1:$p"
database = "$database"
[upstream]
kind = "openai"
base_url = "http://127.0.0.1:$mock_port/v1"
# No staff are signed in during a load run: a crisis turn does not wait for one to join.
[takeover]
wait_secs = 0
TOML
    TUTELA_MODEL_DIR="$tmp/no-model" TUTELA_ADMIN_TOKEN=load-test-admin-token-0000 RUST_LOG=warn \
        "$bin/tutela" serve --config "$tmp/$name.toml" > "$tmp/$name.log" 2>&1 &
    gws+=($!)
    for _ in $(seq 1 300); do
        curl -sf -o /dev/null "http://127.0.0.1:$p/readyz" && return 0
        sleep 0.2
    done
    echo "gateway $name did not become ready:" >&2
    cat "$tmp/$name.log" >&2
    exit 1
}
# oha_csv OUT URL RATE|max CONNECTIONS SECS: one oha process, per-request CSV to OUT.
oha_csv() {
    local out=$1 url=$2 q=$3 c=$4 s=$5 qa=()
    [ "$q" != max ] && qa=(-q "$q" --latency-correction)
    oha --no-tui --output-format csv -o "$out" -z "${s}s" "${qa[@]}" -c "$c" -m POST \
        -H 'content-type: application/json' -Z "$tmp/mix/bodies.jsonl" "$url" 2> "$out.err" >/dev/null
}
# measure NAME RATE|max SECS URL...: one oha per URL, the rate and connections split evenly;
# prints lat.py's JSON for the merged CSVs.
measure() {
    local name=$1 q=$2 s=$3; shift 3
    local n=$# c=$((conc / $#)) each=() files=() i=0
    [ "$q" = max ] && each=(max) || each=($(python3 -c "print($q / $n)"))
    for url in "$@"; do
        i=$((i + 1))
        oha_csv "$tmp/$name.$i.csv" "$url" "${each[0]}" "$c" "$s" &
        files+=("$tmp/$name.$i.csv")
        ohas+=($!)
    done
    for p in "${ohas[@]}"; do wait "$p"; done
    ohas=()
    python3 load/pg/lat.py "$s" "${files[@]}"
}
ohas=()
f() { python3 -c "import json,sys; v=json.loads(sys.argv[1]); x=v['$2']; print(x if isinstance(x, str) else ('%.0f' % x if '$2' in ('rate','responses') else '%.3f' % x))" "$1"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

echo "# One instance on SQLite, one on PostgreSQL, two on PostgreSQL, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Machine: $(nproc) cores, $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before: $(loadavg)"
echo "PostgreSQL: $(pg 'show server_version') on 127.0.0.1 (same machine), user $pg_user, database $db; oha $(oha --version | awk '{print $2}')"
echo "Traffic: $(wc -l < "$tmp/mix/bodies.jsonl") request bodies from load/tiers/chat-mix.py ($users distinct user ids), a random one per request; per setup a $warmup s warm-up at $rate req/s, then $rate req/s for $secs s, then the maximum rate with $conc connections for $max_secs s."
echo

declare -A r
run_setup() { # LABEL URL...
    local label=$1; shift
    local la d g slug
    slug=${label//[^a-zA-Z0-9]/_}
    la=$(loadavg)
    g=$(measure "$slug-warm" "$rate" "$warmup" "$@")
    echo "| $label | warm-up, through tutela ($warmup s) | $la | $(f "$g" responses) | $(f "$g" rate) | $(f "$g" p50_ms) | $(f "$g" p99_ms) | $(f "$g" statuses) |"
    la=$(loadavg)
    d=$(if [ $# = 1 ]; then measure "$slug-direct" "$rate" "$secs" "$mock"; else measure "$slug-direct" "$rate" "$secs" "$mock" "$mock"; fi)
    echo "| $label | direct to mock | $la | $(f "$d" responses) | $(f "$d" rate) | $(f "$d" p50_ms) | $(f "$d" p99_ms) | $(f "$d" statuses) |"
    la=$(loadavg)
    g=$(measure "$slug-fixed" "$rate" "$secs" "$@")
    echo "| $label | through tutela | $la | $(f "$g" responses) | $(f "$g" rate) | $(f "$g" p50_ms) | $(f "$g" p99_ms) | $(f "$g" statuses) |"
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); g=json.loads(sys.argv[2]); print('| $label | **added by tutela** | | | | %.3f | %.3f | |' % (g['p50_ms']-d['p50_ms'], g['p99_ms']-d['p99_ms']))" "$d" "$g"
    la=$(loadavg)
    g=$(measure "$slug-max" max "$max_secs" "$@")
    r[$label]=$(f "$g" rate)
    maxrows+="| $label | $la | $(f "$g" rate) | $(f "$g" p50_ms) | $(f "$g" p99_ms) | $(f "$g" statuses) |
"
}
maxrows=""
echo "## Added latency at $rate requests/s"
echo
echo "| setup | path | load average before | responses | achieved req/s | p50 ms | p99 ms | statuses |"
echo "|---|---|---|---|---|---|---|---|"
la=$(loadavg)
dmax=$(measure direct-max max "$max_secs" "$mock")
maxrows+="| direct to mock | $la | $(f "$dmax" rate) | $(f "$dmax" p50_ms) | $(f "$dmax" p99_ms) | $(f "$dmax" statuses) |
"

p1=$(port)
gateway sqlite "$tmp/tutela.db" "$p1"
enc=$(grep -o 'encoder tier [a-z]*' "$tmp/sqlite.log" | head -1 || true)
run_setup "1 × SQLite" "http://127.0.0.1:$p1/v1/chat/completions"
stop_gateways

pg "create database \"$db\""
db_made=1
gateway pg1 "$pg_url" "$p1"
run_setup "1 × PostgreSQL" "http://127.0.0.1:$p1/v1/chat/completions"
stop_gateways

pg "drop database \"$db\" with (force)"
pg "create database \"$db\""
p2=$(port)
gateway pg2a "$pg_url" "$p1"
gateway pg2b "$pg_url" "$p2"
run_setup "2 × PostgreSQL" "http://127.0.0.1:$p1/v1/chat/completions" "http://127.0.0.1:$p2/v1/chat/completions"
conns=$(pg "select count(*) from pg_stat_activity where datname = '$db'")
stop_gateways

echo
echo "## Maximum rate ($conc connections in all, $max_secs s, no rate limit)"
echo
echo "| setup | load average before | achieved req/s | p50 ms | p99 ms | statuses |"
echo "|---|---|---|---|---|---|"
printf '%s' "$maxrows"
echo
echo "Gateways: ${enc:-encoder tier state not logged}; connections to the two instances' database at the end: $conns."
echo
python3 - "${r[1 × SQLite]}" "${r[1 × PostgreSQL]}" "${r[2 × PostgreSQL]}" <<'PY'
import sys
s, p1, p2 = map(float, sys.argv[1:])
print(f"- 1 × PostgreSQL / 1 × SQLite, maximum rate: {p1 / s:.2f} (target ≥ 0.80: {'met' if p1 >= 0.8 * s else 'not met'})")
print(f"- 2 × PostgreSQL / 1 × PostgreSQL, maximum rate: {p2 / p1:.2f} (target > 1: {'met' if p2 > p1 else 'not met'})")
PY
