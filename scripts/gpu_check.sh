#!/usr/bin/env bash
# cliphba's GPU check (issue 19): builds tests/gpu/cliphba_gpu_check against the machine's CUDA
# LibTorch and runs it: NCCL against MPI on the same gradients, Stage-1 and MEG phase-2 steps on
# the GPU (float32, bfloat16) against the CPU, the Mantel kernel on the GPU against the CPU, and
# bf16 training throughput with model FLOP utilisation for ViT-B/32 and ViT-L/14. See the header
# of tests/gpu/gpu_check.cc for each check and its tolerance.
#
#   bash scripts/gpu_check.sh              # in the repository root, on the GPU machine
#
# Needs there: nvidia-smi, a CUDA toolkit (nvcc), CMake, a C++17 compiler and python3 with a CUDA
# PyTorch (its LibTorch and the NCCL of its wheel are used). The rest (Open MPI, spdlog, fmt,
# nlohmann-json, libcrypto, zlib) is taken from the system, or, where the node lacks it and has no
# network, from Debian packages fetched beforehand with scripts/gpu_deps.sh into .gpu/debs and
# carried with the checkout: they are unpacked into .gpu/root, never into /.
#
# Only a reduced build is made (-DCLIPHBA_GPU_CHECK_ONLY=ON: core, model, parallel, rsa, stats,
# the MEG loss and the check; no HDF5, YAML or GTest), so it builds in about a minute on 16 cores.
# Not run by this script: NCCL rings of several GPUs (one rank per GPU: run on a node with 2+ GPUs
# and the script starts one rank per GPU), and `cliphba permute` with permute.device: cuda (needs
# the full build; the Mantel calls it makes are check (c)).
#
# Environment:
#   OUT                 where the log and gpu_check.json go (default build-gpu/out)
#   CLIPHBA_TORCH_DIR   LibTorch prefix (default: python3's torch.utils.cmake_prefix_path)
#   CLIPHBA_GPU_DEVICE  cuda (default), or cpu: the same flow with both sides on the CPU, to test
#                       this script on a machine without a GPU
#   CLIPHBA_GPU_ARGS    extra arguments of cliphba_gpu_check (e.g. "--throughput vitb32")
#   CLIPHBA_JOBS        build jobs (default: nproc)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BUILD="$ROOT/build-gpu"
OUT="${OUT:-$BUILD/out}"
DEVICE="${CLIPHBA_GPU_DEVICE:-cuda}"
JOBS="${CLIPHBA_JOBS:-$(nproc)}"
mkdir -p "$OUT" "$BUILD"
LOG="$OUT/gpu_check.log"
exec > >(tee -a "$LOG") 2>&1
t_start=$(date +%s)
step() { echo "== [$(( $(date +%s) - t_start )) s] $*"; }

step "machine"
uname -srm
if command -v nvidia-smi >/dev/null; then nvidia-smi -L || true; else echo "nvidia-smi: not found"; fi
if command -v nvcc >/dev/null; then nvcc --version | tail -2; fi
PY="${PYTHON:-python3}"
if [ -z "${CLIPHBA_TORCH_DIR:-}" ]; then
  CLIPHBA_TORCH_DIR="$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
fi
"$PY" -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda,
      "gpus", torch.cuda.device_count())' 2>/dev/null || echo "python torch: not importable"
echo "LibTorch prefix: $CLIPHBA_TORCH_DIR"

# ---- carried Debian packages (only where the system lacks them) ----
CMAKE_EXTRA=()
DEBS="$ROOT/.gpu/debs"
if compgen -G "$DEBS/*.deb" >/dev/null; then
  step "unpacking $(ls "$DEBS"/*.deb | wc -l) carried Debian packages into .gpu/root"
  DEPS="$ROOT/.gpu/root"
  rm -rf "$DEPS"
  for d in "$DEBS"/*.deb; do dpkg -x "$d" "$DEPS"; done
  # Absolute links (Debian's libz.so -> /lib/x86_64-linux-gnu/libz.so.1.2.13) point into the
  # unpacked tree instead of the node's /.
  find "$DEPS" -type l -lname '/*' | while read -r link; do
    target="$(readlink "$link")"
    [ -e "$DEPS$target" ] && ln -sfn "$DEPS$target" "$link"
  done
  ARCH_LIB="$DEPS/usr/lib/x86_64-linux-gnu"
  # Open MPI relocated: OPAL_PREFIX moves every compiled-in path (libdir, components, help files);
  # PMIx (Debian's prefix /usr/lib/x86_64-linux-gnu/pmix2) likewise, and its plugin folder.
  export OPAL_PREFIX="$DEPS/usr"
  export PMIX_INSTALL_PREFIX="$ARCH_LIB/pmix2"
  export PMIX_MCA_mca_base_component_path="$ARCH_LIB/pmix2/lib/pmix"
  export PATH="$DEPS/usr/bin:$PATH"
  export LD_LIBRARY_PATH="$ARCH_LIB:$ARCH_LIB/openmpi/lib:$DEPS/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # Transport plugins of Open MPI whose libraries a GPU node lacks (InfiniBand providers) stay
  # unloaded quietly: one rank per GPU on one node needs none of them.
  export OMPI_MCA_mca_base_component_show_load_errors=0
  # pkg-config would read the carried libcrypto.pc (prefix=/usr, not the unpacked tree): the
  # library and headers are found by path instead (CMakeLists.txt's fallback).
  CMAKE_EXTRA+=(-DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON -DCMAKE_PREFIX_PATH="$DEPS/usr"
                -DMPI_C_COMPILER="$DEPS/usr/bin/mpicc.openmpi"
                -DMPI_CXX_COMPILER="$DEPS/usr/bin/mpicxx.openmpi")
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_base_warn_component_unused=0

# ---- configure and build the reduced target ----
# The CUDA toolkit (Torch's CMake package needs it) where nvcc is not on PATH yet.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH="/usr/local/cuda/bin:$PATH"
fi
# Torch's CMake package otherwise compiles a CUDA program to detect the GPU architecture.
if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ] && command -v nvidia-smi >/dev/null; then
  TORCH_CUDA_ARCH_LIST="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 || true)"
  [ -n "$TORCH_CUDA_ARCH_LIST" ] && export TORCH_CUDA_ARCH_LIST
fi

step "configure (CLIPHBA_GPU_CHECK_ONLY)"
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
if [ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "CLIPHBA_GPU_CHECK_ONLY:BOOL=ON" "$BUILD/CMakeCache.txt"; then
  echo "gpu_check.sh: $BUILD holds another configuration; remove it first" >&2
  exit 2
fi
cmake -S "$ROOT" -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DCLIPHBA_GPU_CHECK_ONLY=ON \
  -DCLIPHBA_TORCH_DIR="$CLIPHBA_TORCH_DIR" "${CMAKE_EXTRA[@]}" >"$OUT/configure.log" 2>&1 ||
  { tail -40 "$OUT/configure.log"; echo "gpu_check.sh: configure failed ($OUT/configure.log)" >&2; exit 1; }
grep -E "cliphba:|CUDA|Caffe2" "$OUT/configure.log" | head -20 || true
step "build (-j$JOBS)"
cmake --build "$BUILD" -j "$JOBS" --target cliphba_gpu_check >"$OUT/build.log" 2>&1 ||
  { grep -m 20 -E "error|Error" "$OUT/build.log"; tail -20 "$OUT/build.log";
    echo "gpu_check.sh: build failed ($OUT/build.log)" >&2; exit 1; }
BIN="$BUILD/tests/gpu/cliphba_gpu_check"

# ---- run: one rank per GPU (NCCL refuses two ranks on one GPU) ----
# The GPUs LibTorch sees (CUDA_VISIBLE_DEVICES included, as under Slurm), at least 1.
GPUS=1
if [ "$DEVICE" = cuda ]; then
  GPUS="$("$PY" -c 'import torch; print(max(1, torch.cuda.device_count()))' 2>/dev/null || echo 1)"
fi
step "cliphba_gpu_check --device $DEVICE on $GPUS rank(s)"
export OMP_WAIT_POLICY=PASSIVE
ARGS=(--device "$DEVICE" --json "$OUT/gpu_check.json")
# shellcheck disable=SC2206
[ -n "${CLIPHBA_GPU_ARGS:-}" ] && ARGS+=($CLIPHBA_GPU_ARGS)
rc=0
if [ "$GPUS" -gt 1 ]; then
  MPIRUN=mpirun
  command -v mpirun.openmpi >/dev/null && MPIRUN=mpirun.openmpi
  "$MPIRUN" -np "$GPUS" --oversubscribe -x OMP_NUM_THREADS=$(( $(nproc) / GPUS )) \
    "$BIN" "${ARGS[@]}" || rc=$?
else
  "$BIN" "${ARGS[@]}" || rc=$?
fi
step "done: exit $rc; $OUT/gpu_check.json, $LOG"
exit "$rc"
