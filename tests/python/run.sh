#!/usr/bin/env bash
# End-to-end tests with the official `openai` Python SDK against a running gateway:
#   1. a virtual environment under .venv with `openai` and `pytest` (from PyPI);
#   2. `tutela serve` built (debug by default, the build `cargo test --workspace` already made;
#      TUTELA_PROFILE=release for an optimised one) and started on a free loopback port with a
#      temporary database and the demo upstream;
#   3. pytest on tests/python; 4. the server is stopped and the temporary files removed.
# Needs: python3 with the venv module, cargo. Extra pytest arguments are passed through.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="${TUTELA_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check openai pytest

profile="${TUTELA_PROFILE:-debug}"
if [ "$profile" = release ]; then
    cargo build --release --quiet -p tutela-cli
else
    cargo build --quiet -p tutela-cli
fi
bin="${CARGO_TARGET_DIR:-$root/target}/$profile/tutela"

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tmp=$(mktemp -d)
token="e2e-$("$venv/bin/python" -c 'import secrets; print(secrets.token_hex(16))')"
cat > "$tmp/tutela.toml" <<TOML
listen = "127.0.0.1:$port"
database = "$tmp/tutela.db"

[takeover]
# Keep the holding-message wait short so a test that waits for it stays quick.
wait_secs = 2
TOML

TUTELA_ADMIN_TOKEN="$token" "$bin" serve --config "$tmp/tutela.toml" > "$tmp/serve.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

url="http://127.0.0.1:$port"
# A debug build compiles the detectors' patterns at start, which takes a while.
for _ in $(seq 1 360); do
    if "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen('$url/readyz', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "tutela serve exited early:" >&2
        cat "$tmp/serve.log" >&2
        exit 1
    fi
    sleep 0.5
done

status=0
TUTELA_URL="$url" TUTELA_ADMIN_TOKEN="$token" "$venv/bin/python" -m pytest -q tests/python "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- tutela serve log ---" >&2
    cat "$tmp/serve.log" >&2
fi
exit "$status"
