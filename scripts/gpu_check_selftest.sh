#!/usr/bin/env bash
# Tests scripts/gpu_check.sh on this CPU machine the way a bare GPU node would run it: as root, in a
# private mount namespace where the system's Open MPI and PMIx are hidden (so the relocated packages
# of .gpu/debs must do), with both sides of every check on the CPU. Not a GPU result. ~3 min on
# 2 cores (the reduced build). Needs: scripts/gpu_deps.sh run first, root, unshare(1).
#
#   sudo bash scripts/gpu_check_selftest.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
compgen -G "$ROOT/.gpu/debs/*.deb" >/dev/null || { echo "run scripts/gpu_deps.sh first" >&2; exit 2; }
exec unshare -m bash -c '
  set -euo pipefail
  L=/usr/lib/x86_64-linux-gnu
  empty=$(mktemp -d)
  for d in $L/openmpi $L/pmix2 $L/hwloc /usr/share/openmpi /etc/openmpi; do
    [ -d "$d" ] && mount --bind "$empty" "$d"
  done
  for f in $L/libmpi*.so.* $L/libopen-*.so.* $L/libpmix.so.* /usr/bin/orted /usr/bin/orterun; do
    [ -e "$f" ] && [ ! -L "$f" ] && mount --bind /dev/null "$f"
  done
  echo "gpu_check_selftest: system Open MPI hidden ($(ls $L/openmpi | wc -l) files left in $L/openmpi)"
  cd "$0"
  rm -rf build-gpu
  OUT="${OUT:-/tmp/gpu_check_selftest}" CLIPHBA_GPU_DEVICE=cpu \
    CLIPHBA_TORCH_DIR="${CLIPHBA_TORCH_DIR:-/usr/lib/x86_64-linux-gnu/cmake}" \
    CLIPHBA_GPU_ARGS="${CLIPHBA_GPU_ARGS:---models tiny --throughput tiny --steps 2}" \
    bash scripts/gpu_check.sh
' "$ROOT"
