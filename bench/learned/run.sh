#!/usr/bin/env bash
# Quality and speed of the detection tiers, reproducibly:
#   1. retrains every learned tier from data/train/ into a temporary folder, checks that the
#      result is byte for byte the built-in model, and writes each tier's figures on the
#      held-out validation split (validation.json);
#   2. scores each tier and the fusion on the development set if it is there (dev.json; it is
#      for validation only, never trained on);
#   3. runs the criterion benchmarks of the n-gram tier and of the encoder.
# Needs the encoder model imported ($TUTELA_MODEL_DIR; scripts/test-all imports it to .model/).
set -euo pipefail
cd "$(dirname "$0")/../.."
export TUTELA_MODEL_DIR="${TUTELA_MODEL_DIR:-$PWD/.model}"
cargo build --release --quiet -p tutela-cli
bin=target/release/tutela
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" train --out "$out" --report bench/learned/validation.json > "$out/table.txt"
for f in crates/tutela-detect/model/*.bin; do
    cmp "$f" "$out/$(basename "$f")" && echo "same bytes: $f"
done
dev=../shared/eval-dev/dev.jsonl
if [ -f "$dev" ]; then
    "$bin" eval --data "$dev" --json > bench/learned/dev.json
fi
cargo bench -p tutela-detect --bench detect -- 'ordinary_chat|ngram_tier_alone'
cargo bench -p tutela-encoder --bench encoder
