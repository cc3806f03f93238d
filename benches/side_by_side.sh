#!/usr/bin/env bash
# Ours beside PyTorch in one session, interleaved model by model (the machine is shared, so
# only ratios measured together mean anything). Needs a release build and a Python with torch:
#   PYTHON=venv/bin/python benches/side_by_side.sh [resnet20 resnet18 ...]
# Writes OUT/pytorch_<model>.json, OUT/ours.jsonl, and prints one table per model.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
BIN=${BIN:-target/release/blindspot}
OUT=${OUT:-target/side_by_side}
SECS=${SECS:-15}
# THREADS=1 compares one core against one core, which contention on a shared machine skews least.
THREADS=${THREADS:-$(nproc)}
mkdir -p "$OUT"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet20 resnet18 resnet50 efficientnet_lite0 vit_s16 vit_ti16)
for m in "${models[@]}"; do
  "$PYTHON" benches/pytorch_reference.py --model "$m" --seconds "$SECS" --threads "$THREADS" --out "$OUT/pytorch_$m.json"
  "$BIN" bench --model "$m" --with-no-fold --hull-batch 66 --seconds "$SECS" --threads "$THREADS" --vs-json "$OUT/pytorch_$m.json"
  "$BIN" bench --model "$m" --seconds "$SECS" --hull-batch 0 --threads "$THREADS" --json --vs-json "$OUT/pytorch_$m.json" >> "$OUT/ours.jsonl"
done
