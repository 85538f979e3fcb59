#!/usr/bin/env bash
# End-to-end tests with the official `openai` Python SDK against running gateways:
#   1. a virtual environment under .venv with `openai` and `pytest` (pinned, from PyPI);
#   2. `tutela serve` in front of the demo, of the mock upstream and of a dead upstream
#      (tests/e2e/gateways.sh: built, started on free loopback ports, removed afterwards);
#   3. pytest on tests/python.
# Needs: python3 with the venv module, cargo, curl. Extra pytest arguments are passed through.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

venv="${TUTELA_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check openai==3.63.0 pytest==9.2.0

source tests/e2e/gateways.sh

status=0
"$venv/bin/python" -m pytest -q tests/python "$@" || status=$?
if [ "$status" -ne 0 ]; then
    e2e_logs
fi
exit "$status"
