#!/usr/bin/env bash
# The soak (see soak.py): `tutela serve` at a steady rate of mixed traffic, RSS every minute.
#
#   load/soak/run.sh [--minutes 30] [--rate 50] [--out FILE]
#
# Builds the release binaries (or takes them from $TUTELA_BIN_DIR), then runs load/soak/soak.py.
# Needs python3 (standard library only) and loopback ports. 30 minutes by default: start it in
# the background on a shared machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ -z "${TUTELA_BIN_DIR:-}" ]; then
    cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
    TUTELA_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
fi
exec python3 load/soak/soak.py --bin-dir "$TUTELA_BIN_DIR" "$@"
