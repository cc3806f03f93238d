#!/usr/bin/env bash
# The device check (#14), on a machine with an NVIDIA GPU:
#   1. builds blindspot with --features cuda;
#   2. runs the golden and gradient tests with their models on the GPU
#      (BLINDSPOT_TEST_DEVICE=cuda: tests/goldens.rs against PyTorch's f64 goldens,
#      tests/gradients.rs against f64 finite differences; same tolerances as on the CPU);
#   3. times `blindspot bench --device cuda` beside `benches/pytorch_reference.py --device cuda`
#      (skipped, with a note, when this Python has no CUDA torch).
# nvcc: the system's when on PATH, else scripts/cuda_toolchain.sh (PyPI wheels: needs the
# registry, or a venv made beforehand in $CUDA_VENV). CUDA_COMPUTE_CAP defaults to the GPU's own.
#   PYTHON=venv/bin/python MODELS="resnet20 resnet50 vit_s16" benches/gpu_check.sh
# Writes $OUT (target/gpu_check): tests.log, pytorch_cuda.json, ours.jsonl, table.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu_check}
PYTHON=${PYTHON:-python3}
SECS=${SECS:-10}
MODELS=${MODELS:-resnet20 resnet18 resnet50 efficientnet_lite0 vit_s16 vit_ti16}
mkdir -p "$OUT"

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "error: no NVIDIA GPU here (nvidia-smi -L failed)" >&2
  exit 1
fi
nvidia-smi -L | tee "$OUT/gpu.txt"
if [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
  CUDA_COMPUTE_CAP=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n 1 | tr -d '.')
  export CUDA_COMPUTE_CAP
fi
if ! command -v nvcc >/dev/null; then
  # Its libcuda stub (lib/stubs) is for linking only: at run time the driver's libcuda.so.1
  # loads from the system path, and the wheels' cuBLAS/cuRAND from $CUDA_HOME/lib.
  eval "$(scripts/cuda_toolchain.sh "${CUDA_VENV:-/tmp/blindspot-cuda-venv}")"
fi
echo "compute capability $CUDA_COMPUTE_CAP, nvcc $(command -v nvcc)"

cargo build --release --features cuda
BLINDSPOT_TEST_DEVICE=cuda cargo test --release --features cuda --test goldens --test gradients \
  -- --nocapture 2>&1 | tee "$OUT/tests.log"

models=()
read -r -a models <<<"$MODELS"
if "$PYTHON" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  args=()
  for m in "${models[@]}"; do args+=(--model "$m"); done
  "$PYTHON" benches/pytorch_reference.py --device cuda "${args[@]}" --seconds "$SECS" \
    --out "$OUT/pytorch_cuda.json"
  vs=(--vs-json "$OUT/pytorch_cuda.json")
else
  echo "note: $PYTHON has no CUDA torch: timing ours alone" >&2
  vs=()
fi
: >"$OUT/ours.jsonl"
for m in "${models[@]}"; do
  target/release/blindspot bench --device cuda --model "$m" --seconds "$SECS" "${vs[@]}" \
    | tee -a "$OUT/table.txt"
  target/release/blindspot bench --device cuda --model "$m" --seconds "$SECS" --json "${vs[@]}" \
    >>"$OUT/ours.jsonl"
done
echo "wrote $OUT"
