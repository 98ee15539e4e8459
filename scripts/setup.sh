#!/usr/bin/env bash
# cliphba set-up on Debian 12: installs the Debian packages cliphba builds against, then configures
# and builds into build/. Idempotent: installed packages are skipped, an existing build is updated.
#
#   scripts/setup.sh            # as root, or as a user with sudo
#   CLIPHBA_BUILD_DIR=/scratch/cliphba-build scripts/setup.sh
#   CLIPHBA_TORCH_DIR=/opt/libtorch-cu130/share/cmake scripts/setup.sh   # another (CUDA) LibTorch
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
JOBS="${CLIPHBA_JOBS:-$(nproc)}"

PACKAGES=(
  build-essential cmake ccache pkg-config git procps  # procps: pkill in the signal tests
  libtorch-dev            # LibTorch (CPU) from Debian
  libopenblas0-pthread    # without it libtorch's GEMM falls back to reference BLAS (~10x slower)
  openmpi-bin libopenmpi-dev
  libhdf5-openmpi-dev hdf5-tools   # parallel HDF5 (MPI-IO); h5dump/h5diff
  libyaml-cpp-dev libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libstb-dev zlib1g-dev
  libssl-dev              # libcrypto: SHA-256 of checkpoints (known OpenAI files, convert's provenance)
  python3 python3-numpy python3-scipy python3-h5py  # reference scripts, reading results
  slurmctld slurmd slurm-client munge   # one-node Slurm for tests/slurm (munge: hard dependency)
  python3-matplotlib      # scripts/plot_results.py, scripts/report.py (Agg backend)
  python3-mne             # scripts/fif_to_h5.py (MNE -epo.fif -> epochs HDF5) and its test
  chromium chromium-driver python3-selenium  # the report opened in a real headless browser (a test)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    SUDO="sudo"
  fi
  echo "setup.sh: installing ${missing[*]}"
  APT=(-o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${APT[@]}" update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get "${APT[@]}" install -y -q --no-install-recommends "${missing[@]}"
fi

# libtorch calls whatever libblas.so.3 points to: it must be OpenBLAS.
blas="$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)"
case "$blas" in
  *openblas*) ;;
  *) echo "setup.sh: warning: libblas.so.3 -> '$blas', not OpenBLAS; GEMM will be slow." \
          "Fix: update-alternatives --config libblas.so.3-x86_64-linux-gnu" >&2 ;;
esac

# ccache (when installed) keys on relative paths below the checkout, so a second clone of the
# project (CI's fresh clone) reuses the objects of the first.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}"
# Another LibTorch (a CUDA one): CLIPHBA_TORCH_DIR=<prefix holding Torch/TorchConfig.cmake>, e.g.
# $(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)'); CLIPHBA_NCCL_DIR likewise.
EXTRA=()
[ -n "${CLIPHBA_TORCH_DIR:-}" ] && EXTRA+=(-DCLIPHBA_TORCH_DIR="$CLIPHBA_TORCH_DIR")
[ -n "${CLIPHBA_NCCL_DIR:-}" ] && EXTRA+=(-DCLIPHBA_NCCL_DIR="$CLIPHBA_NCCL_DIR")
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] || ((${#EXTRA[@]})); then
  cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${EXTRA[@]}"
fi
cmake --build "$BUILD_DIR" -j "$JOBS"
echo "setup.sh: built $BUILD_DIR/src/apps/cliphba"
