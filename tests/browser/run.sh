#!/usr/bin/env bash
# Browser tests of the operator console in real headless Chromium (issue 14's "done when"):
#   1. Debian's `chromium` package, installed here where it is missing (apt-get, as root);
#   2. Playwright for Python (pinned, from PyPI, into .venv) driving that Chromium (it never
#      downloads a browser of its own);
#   3. `tutela serve` (the debug build `cargo test --workspace` made) on a free loopback port
#      with a temporary database and four staff accounts made with `tutela staff add`;
#   4. pytest on tests/browser: sign-in, crisis messages in English and Chinese arriving live
#      in the queue with their severity, the case view, claim, reply, the person receiving the
#      reply, a second agent refused, a supervisor resolving with a note, the console in
#      Chinese at 390 px. Screenshots go to $TUTELA_ARTIFACTS (default tests/browser/artifacts).
# Needs: python3 with venv, cargo, curl; root (or chromium already installed).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

# Chromium, and a font with Chinese characters for the screenshots of the Chinese console.
missing=()
command -v chromium > /dev/null || missing+=(chromium)
if ! fc-list :lang=zh 2> /dev/null | grep -q .; then missing+=(fonts-noto-cjk); fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing Debian's ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing ${missing[*]} and this is not root: install Debian's packages" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" > /dev/null
fi
chromium=$(command -v chromium)

venv="${TUTELA_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check playwright==1.65.2 pytest==9.2.0

cargo build --quiet -p tutela-cli
bin="${CARGO_TARGET_DIR:-$root/target}/debug/tutela"

tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$tmp/tutela.toml" <<TOML
listen = "127.0.0.1:$port"
database = "$tmp/console.db"

[takeover]
# The person's turn waits this long for a human before the holding message.
wait_secs = 2
TOML
password="browser-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
for account in ann:agent bob:agent sue:supervisor cleo:compliance; do
    echo "$password" | "$bin" staff add "${account%%:*}" --role "${account##*:}" \
        --password-stdin --db "$tmp/console.db" > /dev/null
done
"$bin" serve --config "$tmp/tutela.toml" > "$tmp/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    if curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$tmp/serve.log" >&2; exit 1; fi
    sleep 0.1
done

export TUTELA_URL="http://127.0.0.1:$port"
export TUTELA_STAFF_PASSWORD="$password"
export TUTELA_CHROMIUM="$chromium"
export TUTELA_ARTIFACTS="${TUTELA_ARTIFACTS:-$root/tests/browser/artifacts}"
mkdir -p "$TUTELA_ARTIFACTS"
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/browser "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "== serve log"; tail -n 50 "$tmp/serve.log"
fi
exit "$status"
