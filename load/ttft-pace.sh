#!/usr/bin/env bash
# Time to first token at a model's pace (issue #13 item 10): the mock streams a 200-character
# companion reply in 40 chunks of 5 characters, 25 ms apart; load/ttft.py measures, sequentially,
# the time to the first assistant text directly from the mock and through `tutela serve` (whole
# pipeline: detectors on both sides, the duties engine with cn, us-ca, us-ny, eu + baseline,
# SQLite store; with the default release rule (a sentence leaves once its checks are done, and
# a prefix of the first sentence once no check can block it: `[streaming] early_release`),
# the sentence rule alone (`early_release = false`, the default before 2026-12-07), the old
# hold-back of 64 characters, and a look-ahead of one sentence, `[streaming]
# lookahead_sentences = 1`), and prints each and the difference. Release build (TUTELA_PROFILE=debug for a quick look). Needs python3 and curl.
#   load/ttft-pace.sh [REQUESTS]     (TUTELA_BIN_DIR=DIR: use prebuilt binaries from DIR;
#                                     TTFT_REPLY=TEXT: the reply the mock streams instead)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n="${1:-60}"
profile="${TUTELA_PROFILE:-release}"
if [ -n "${TUTELA_BIN_DIR:-}" ]; then
    target=$TUTELA_BIN_DIR # prebuilt `tutela` and `tutela-mock-upstream`
else
    if [ "$profile" = release ]; then
        cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
    else
        cargo build --quiet -p tutela-cli -p tutela-mock-upstream
    fi
    target="${CARGO_TARGET_DIR:-$root/target}/$profile"
fi
tmp=$(mktemp -d)
port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mock_port=$(port)
reply="That sounds like a really long day. I'm glad you told me about it. What part of it felt the heaviest for you? We can go through it slowly, one piece at a time, and I am here for as long as you like."
reply="${TTFT_REPLY:-$reply}"
# The first sentence as the detectors cut it (up to a terminator run and the whitespace after it).
first=$(python3 -c 'import re, sys; m = re.match(r"[^.!?。！？；;…]*[.!?。！？；;…]+\s*", sys.argv[1]); print(len(m.group(0).rstrip()) if m else len(sys.argv[1]))' "$reply")
"$target/tutela-mock-upstream" --listen "127.0.0.1:$mock_port" --chunk-chars 5 --chunk-delay-ms 25 \
    --reply "$reply" > "$tmp/mock.log" 2>&1 &
mock_pid=$!
# gateway NAME HOLD_BACK LOOKAHEAD EARLY PORT: a gateway in front of the mock with that
# hold-back, sentence look-ahead and early release.
gateway() {
    local name=$1 hold=$2 ahead=$3 early=$4 p=$5
    cat > "$tmp/$name.toml" <<TOML
listen = "127.0.0.1:$p"
database = "$tmp/$name.db"

[upstream]
kind = "openai"
base_url = "http://127.0.0.1:$mock_port/v1"

[streaming]
hold_back_chars = $hold
lookahead_sentences = $ahead
early_release = $early
TOML
    TUTELA_ADMIN_TOKEN=load-test-admin-token-0000 RUST_LOG=warn "$target/tutela" serve --config "$tmp/$name.toml" > "$tmp/$name.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 600); do
        curl -sf -o /dev/null "http://127.0.0.1:$p/readyz" && break
        sleep 0.2
    done
}
pids=("$mock_pid")
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
old_port=$(port)
gateway old 64 0 false "$old_port"
sentence_port=$(port)
gateway sentence 0 0 false "$sentence_port"
new_port=$(port)
gateway new 0 0 true "$new_port"
ahead_port=$(port)
gateway ahead 0 1 true "$ahead_port"

echo "# Time to first token at a model's pace, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "Reply: ${#reply} characters in chunks of 5, 25 ms apart (first sentence: $first characters); $n sequential requests after 20 warm-up; $profile build."
echo "Machine: $(nproc) cores, $(uname -sr); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Gateway: $(grep -m1 'detectors:' "$tmp/new.log" | sed 's/^ *//')"
echo
direct=$(python3 load/ttft.py "http://127.0.0.1:$mock_port/v1/chat/completions" "$n" ttft-direct)
old=$(python3 load/ttft.py "http://127.0.0.1:$old_port/v1/chat/completions" "$n" ttft-old)
sentence=$(python3 load/ttft.py "http://127.0.0.1:$sentence_port/v1/chat/completions" "$n" ttft-sentence)
new=$(python3 load/ttft.py "http://127.0.0.1:$new_port/v1/chat/completions" "$n" ttft-new)
ahead=$(python3 load/ttft.py "http://127.0.0.1:$ahead_port/v1/chat/completions" "$n" ttft-ahead)
echo "- direct to mock: $direct"
echo "- through tutela, hold_back_chars = 64, early_release = false (the old default): $old"
echo "- through tutela, hold_back_chars = 0, early_release = false (the sentence rule alone): $sentence"
echo "- through tutela, hold_back_chars = 0, early_release = true (the default): $new"
echo "- through tutela, lookahead_sentences = 1 (early release does not apply): $ahead"
python3 - "$direct" "$old" "$sentence" "$new" "$ahead" <<'PY'
import json, sys
d, o, s, n, a = (json.loads(a) for a in sys.argv[1:6])
for name, t in (("hold-back 64", o), ("sentence rule", s), ("early release (default)", n), ("look-ahead 1", a)):
    print(f"- **added time to first token, {name}**: p50 {t['ttft_p50_ms'] - d['ttft_p50_ms']:.1f} ms, "
          f"p99 {t['ttft_p99_ms'] - d['ttft_p99_ms']:.1f} ms; to the whole reply: p50 "
          f"{t['total_p50_ms'] - d['total_p50_ms']:.1f} ms")
PY
