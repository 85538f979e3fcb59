#!/usr/bin/env bash
# Load recipe: the latency tutela adds at fixed request rates, against direct-to-mock.
#
#   load/run.sh [SECONDS_PER_RUN]        (default 20)
#
# Needs `oha` (cargo install oha --locked) and python3. Builds the release binaries, starts the
# in-repo mock upstream and `tutela serve` (whole pipeline: detectors, duties engine, SQLite
# store with the batched audit writer) on loopback, then for 1,000 and 5,000 requests/s runs
# oha against the mock directly and through tutela, JSON requests; then time to first token of
# streamed requests (sequential, load/ttft.py); and reads tutela's resident memory idle and
# after load. Prints a Markdown table; results/ keeps dated runs.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs="${1:-20}"
command -v oha >/dev/null || { echo "oha not found: cargo install oha --locked" >&2; exit 2; }

cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
target="${CARGO_TARGET_DIR:-$root/target}/release"
tmp=$(mktemp -d)
mock_port=19090
gw_port=19080
"$target/tutela-mock-upstream" --listen "127.0.0.1:$mock_port" --latency-ms 0 --threads 1 > "$tmp/mock.log" 2>&1 &
mock_pid=$!
cat > "$tmp/tutela.toml" <<TOML
listen = "127.0.0.1:$gw_port"
database = "$tmp/tutela.db"
[upstream]
kind = "openai"
base_url = "http://127.0.0.1:$mock_port/v1"
TOML
TUTELA_ADMIN_TOKEN=load-test-admin-token-0000 RUST_LOG=warn "$target/tutela" serve --config "$tmp/tutela.toml" > "$tmp/tutela.log" 2>&1 &
gw_pid=$!
cleanup() { kill "$gw_pid" "$mock_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
    sleep 0.5
done
rss() { awk '/VmRSS/ {print $2/1024 " MB"}' "/proc/$1/status"; }
sleep 2
idle_rss=$(rss "$gw_pid")

body='{"model":"mock-1","user":"load-user","messages":[{"role":"user","content":"Tell me about your day, please."}]}'
run() { # url rate -> "p50_ms p99_ms rps"
    oha --no-tui --output-format json -z "${secs}s" -q "$2" --latency-correction -c 64 \
        -m POST -H 'content-type: application/json' -H 'x-tutela-user: load-user' -d "$body" "$1" \
      | python3 -c 'import json,sys; v=json.load(sys.stdin); p=v["latencyPercentiles"]; s=v["summary"]; sc=v.get("statusCodeDistribution",{}); print("%.3f %.3f %.0f %s" % (p["p50"]*1e3, p["p99"]*1e3, s["requestsPerSec"], ",".join("%s:%s"%kv for kv in sc.items())))'
}
metrics() { curl -s "http://127.0.0.1:$gw_port/metrics" > "$1"; }
echo "Machine: $(nproc) cores, $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| rate (req/s) | path | p50 ms | p99 ms | achieved req/s | statuses |"
echo "|---|---|---|---|---|---|"
inproc=""
for rate in 1000 5000; do
    read -r d50 d99 drps dst <<<"$(run "http://127.0.0.1:$mock_port/v1/chat/completions" "$rate")"
    echo "| $rate | direct to mock | $d50 | $d99 | $drps | $dst |"
    metrics "$tmp/before"
    read -r g50 g99 grps gst <<<"$(run "http://127.0.0.1:$gw_port/v1/chat/completions" "$rate")"
    metrics "$tmp/after"
    echo "| $rate | through tutela | $g50 | $g99 | $grps | $gst |"
    python3 -c "print('| $rate | **added by tutela** | %.3f | %.3f | | |' % ($g50-$d50, $g99-$d99))"
    inproc="$inproc
- $rate req/s: $(python3 load/hist.py "$tmp/before" "$tmp/after")"
done
echo
echo "In-process added latency (tutela_added_latency_seconds, bucket upper bounds):$inproc"
load_rss=$(rss "$gw_pid")
echo
echo "Streaming, time to first token (sequential, 300 requests after 20 warm-up):"
echo "- direct to mock: $(python3 load/ttft.py "http://127.0.0.1:$mock_port/v1/chat/completions" 300)"
echo "- through tutela: $(python3 load/ttft.py "http://127.0.0.1:$gw_port/v1/chat/completions" 300)"
echo
echo "tutela resident memory: idle $idle_rss, after the runs $load_rss"
curl -s "http://127.0.0.1:$gw_port/metrics" | grep -E '^tutela_(requests_total|added_latency_seconds_(sum|count))' || true
