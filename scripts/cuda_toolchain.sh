#!/usr/bin/env bash
# Install a CUDA toolchain from PyPI wheels, enough to COMPILE `--features cuda` on a machine
# without a GPU or a system CUDA install (issue #14). Nothing here needs a GPU or root.
#
# Usage:
#   scripts/cuda_toolchain.sh [VENV_DIR]        # default VENV_DIR=/tmp/cuda-venv
#   eval "$(scripts/cuda_toolchain.sh)"         # installs (once) and sets the env in this shell
#
# Why CUDA 13 and not the `nvidia-cuda-nvcc-cu12` wheels: the cu12 nvcc wheel (12.9.86) ships
# only ptxas, libnvvm and the crt headers, no `nvcc` driver binary. The CUDA 13 wheels
# (`nvidia-cuda-nvcc` 13.x, pulled in by `cuda-toolkit[nvcc]`) ship bin/nvcc, cudafe++,
# fatbinary, nvlink, and all install into one tree, site-packages/nvidia/cu13 (bin, include, lib,
# nvvm), which works as CUDA_HOME. 13.4 is pinned because cudarc 0.19.10 (candle 0.11.1) knows
# CUDA versions up to 13.4 and reads the version from `nvcc --version`; 13.5 would be rejected.
# The `cccl` extra is required: cuda_fp16.h includes <nv/target>.
#
# Running what this builds needs an NVIDIA driver that supports CUDA 13.x (R580 or newer).
#
# What the build reads: candle-kernels' build script (cudaforge 0.1.6) finds nvcc via $NVCC,
# then PATH, then $CUDA_HOME/bin; it needs CUDA_COMPUTE_CAP because nvidia-smi is absent
# (90 = H100, built as sm_90a; 80 = A100). cudarc's build script runs `nvcc --version` and adds
# link search paths from CUDA_HOME/CUDA_PATH/CUDA_ROOT/CUDA_TOOLKIT_ROOT_DIR (lib, lib/stubs).
#
# Linking (`cargo build`, not needed for `cargo check`): the wheels ship only versioned
# sonames (libcublas.so.13 ...), so unversioned symlinks are added, and there is no libcuda
# (the driver library) on PyPI, so a link-only stub libcuda.so (empty functions named after the
# cu* entry points of cuda.h, soname libcuda.so.1) is generated into lib/stubs. The stub is
# never on LD_LIBRARY_PATH; at run time the real driver's libcuda.so.1 is used.
#
# Commands (measured on a 2-core machine without GPU, see numbers below):
#   eval "$(scripts/cuda_toolchain.sh)"
#   CARGO_TARGET_DIR=/work/cuda-target cargo check -j 2 --locked --features cuda --no-default-features --lib
#   CARGO_TARGET_DIR=/work/cuda-target cargo build -j 2 --locked --features cuda --no-default-features --bins
# Measured 2026-12-06 on a 2-core x86_64 machine, no GPU, cold target dir, other builds running
# alongside: pip install 18 s (1.2 GB venv); cargo check --lib 6 min 41 s (about 3.5 min of it is
# candle-kernels' build script running nvcc: 11 PTX files plus a 15-file static lib for sm_90a);
# cargo build --bins afterwards 7 min 31 s (reruns that build script). Target dir: 2.9 GB.
# The binary links against libcuda.so.1, which only an NVIDIA driver provides; PTX is
# emitted as ISA 9.4 (CUDA 13.4), so the driver must support CUDA 13.4 to load the kernels.
set -euo pipefail

VENV="${1:-/tmp/cuda-venv}"
PY="${PYTHON:-python3}"
CUDA_TOOLKIT_VERSION=13.4.3   # meta-package; resolves to the pins below
PINS=(
  "cuda-toolkit[nvcc,cudart,cublas,curand,nvrtc,cccl]==${CUDA_TOOLKIT_VERSION}"
  nvidia-cuda-nvcc==13.4.92
  nvidia-cuda-crt==13.4.92
  nvidia-nvvm==13.4.92
  nvidia-cuda-runtime==13.4.92
  nvidia-cuda-nvrtc==13.4.92
  nvidia-cublas==13.8.0.4
  nvidia-curand==10.4.4.72
  nvidia-cuda-cccl==13.3.4.3.1
)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >&2
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}" >&2

CUDA_HOME="$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$CUDA_HOME/bin/nvcc" ] || { echo "nvcc not found under $CUDA_HOME/bin" >&2; exit 1; }

# Unversioned names for the linker (-lcudart, -lcublas, ...).
(
  cd "$CUDA_HOME/lib"
  for l in cudart cublas cublasLt nvrtc; do ln -sf "lib$l.so.13" "lib$l.so"; done
  ln -sf libcurand.so.10 libcurand.so
)

# Link-only stub for the driver library (-lcuda).
if [ ! -e "$CUDA_HOME/lib/stubs/libcuda.so" ]; then
  mkdir -p "$CUDA_HOME/lib/stubs"
  stub_c="$(mktemp --suffix=.c)"
  gcc -E -P -I"$CUDA_HOME/include" "$CUDA_HOME/include/cuda.h" \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' | sort -u \
    | sed 's/.*/void &(void) {}/' > "$stub_c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA_HOME/lib/stubs/libcuda.so" "$stub_c"
  rm -f "$stub_c"
fi

cat <<ENV
export CUDA_HOME=$CUDA_HOME
export CUDA_PATH=\$CUDA_HOME CUDA_ROOT=\$CUDA_HOME CUDA_TOOLKIT_ROOT_DIR=\$CUDA_HOME
export PATH=\$CUDA_HOME/bin:\$PATH
export CUDA_COMPUTE_CAP=\${CUDA_COMPUTE_CAP:-90}
export CUDAFORGE_THREADS=\${CUDAFORGE_THREADS:-2}
export LD_LIBRARY_PATH=\$CUDA_HOME/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
ENV
