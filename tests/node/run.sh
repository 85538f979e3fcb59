#!/usr/bin/env bash
# End-to-end tests with the official `openai` npm package (Node >= 20) against running gateways:
#   1. `npm ci` installs the pinned SDK from the npm registry (package-lock.json) into
#      tests/node/node_modules;
#   2. `tutela serve` in front of the demo, of the mock upstream and of a dead upstream
#      (tests/e2e/gateways.sh);
#   3. `node --test` on tests/node/*.test.mjs.
# Needs: node and npm, cargo, curl, python3. Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")/../.."

(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

source tests/e2e/gateways.sh

status=0
node --test tests/node/ "$@" || status=$?
if [ "$status" -ne 0 ]; then
    e2e_logs
fi
exit "$status"
