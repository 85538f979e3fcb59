# Sourced by tests/python/run.sh and tests/node/run.sh: builds `tutela` and the mock upstream
# (debug by default, the build `cargo test --workspace` already made; TUTELA_PROFILE=release
# for an optimised one) and starts, on free loopback ports with temporary databases:
#   TUTELA_URL       a gateway in front of the built-in demo companion;
#   TUTELA_MOCK_URL  a gateway in front of `tutela-mock-upstream` (an OpenAI-compatible model
#                    whose markers pick a shape or a fault: shape:json, shape:tool, fault:404,
#                    ...; see its --help), with a 1-second upstream timeout;
#   TUTELA_DEAD_URL  a gateway whose upstream refuses connections.
# and exports them with TUTELA_ADMIN_TOKEN (the same token for all three). The processes and
# files are removed when the sourcing script exits. Needs: cargo, curl.
set -euo pipefail
e2e_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

e2e_profile="${TUTELA_PROFILE:-debug}"
if [ "$e2e_profile" = release ]; then
    (cd "$e2e_root" && cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream)
else
    (cd "$e2e_root" && cargo build --quiet -p tutela-cli -p tutela-mock-upstream)
fi
e2e_bin="${CARGO_TARGET_DIR:-$e2e_root/target}/$e2e_profile"

e2e_tmp=$(mktemp -d)
e2e_pids=()
e2e_cleanup() {
    for p in "${e2e_pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${e2e_pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$e2e_tmp"
}
trap e2e_cleanup EXIT

# A free loopback port (bound and released; the race with other processes is acceptable here).
e2e_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

export TUTELA_ADMIN_TOKEN="e2e-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"

mock_port=$(e2e_port)
"$e2e_bin/tutela-mock-upstream" --listen "127.0.0.1:$mock_port" --chunk-chars 6 \
    > "$e2e_tmp/mock.log" 2>&1 &
e2e_pids+=($!)
dead_port=$(e2e_port)

# e2e_gateway NAME UPSTREAM_TOML: starts a gateway and prints its URL.
e2e_gateway() {
    local name=$1 upstream=$2 port
    port=$(e2e_port)
    cat > "$e2e_tmp/$name.toml" <<TOML
listen = "127.0.0.1:$port"
database = "$e2e_tmp/$name.db"

[takeover]
# Keep the holding-message wait short so a test that waits for it stays quick.
wait_secs = 2

$upstream
TOML
    "$e2e_bin/tutela" serve --config "$e2e_tmp/$name.toml" > "$e2e_tmp/$name.log" 2>&1 &
    e2e_pids+=($!)
    echo "http://127.0.0.1:$port"
}

TUTELA_URL=$(e2e_gateway demo "")
TUTELA_MOCK_URL=$(e2e_gateway mock "[upstream]
kind = \"openai\"
base_url = \"http://127.0.0.1:$mock_port/v1\"
timeout_secs = 1")
TUTELA_DEAD_URL=$(e2e_gateway dead "[upstream]
kind = \"openai\"
base_url = \"http://127.0.0.1:$dead_port/v1\"")
export TUTELA_URL TUTELA_MOCK_URL TUTELA_DEAD_URL

# A debug build compiles the detectors' patterns at start, which takes a while.
for url in "$TUTELA_URL" "$TUTELA_MOCK_URL" "$TUTELA_DEAD_URL"; do
    for _ in $(seq 1 360); do
        if curl -sf -o /dev/null "$url/readyz"; then
            break
        fi
        sleep 0.5
    done
    if ! curl -sf -o /dev/null "$url/readyz"; then
        echo "a gateway did not become ready ($url):" >&2
        cat "$e2e_tmp"/*.log >&2
        exit 1
    fi
done

# e2e_logs: what the processes wrote (for a failed run).
e2e_logs() {
    for f in "$e2e_tmp"/*.log; do
        echo "--- $(basename "$f") ---" >&2
        cat "$f" >&2
    done
}
