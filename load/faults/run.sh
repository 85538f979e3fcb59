#!/usr/bin/env bash
# The fault suite against the real binary (see faults.py for what it checks).
#
#   load/faults/run.sh [--short] [--out FILE] [faults.py options]
#
# Builds `tutela` and `tutela-mock-upstream` (debug with --short, as scripts/test-all runs it;
# release otherwise), or takes the binaries in $TUTELA_BIN_DIR, then runs load/faults/faults.py.
# Needs python3 (standard library only) and loopback ports; the disk-full part needs
# `mount -t tmpfs` (root) and says "skipped" where that is not allowed.
set -euo pipefail
cd "$(dirname "$0")/../.."
profile=release
for a in "$@"; do [ "$a" = "--short" ] && profile=debug; done
if [ -z "${TUTELA_BIN_DIR:-}" ]; then
    if [ "$profile" = release ]; then
        cargo build --release --quiet -p tutela-cli -p tutela-mock-upstream
    else
        cargo build --quiet -p tutela-cli -p tutela-mock-upstream
    fi
    TUTELA_BIN_DIR="${CARGO_TARGET_DIR:-target}/$profile"
fi
exec python3 load/faults/faults.py --bin-dir "$TUTELA_BIN_DIR" "$@"
