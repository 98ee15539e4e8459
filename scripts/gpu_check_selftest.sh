#!/usr/bin/env bash
# Tests scripts/gpu_check.sh on this CPU machine the way a bare GPU node would run it: as root, in a
# private mount namespace where the system's Open MPI, PMIx, spdlog, fmt, nlohmann-json and the
# OpenSSL and zlib headers (with their CMake and pkg-config files) are hidden, so the relocated
# packages of .gpu/debs must do; both sides of every check on the CPU. Not a GPU result. ~3 min on
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
  for d in $L/openmpi $L/pmix2 $L/hwloc /usr/share/openmpi /etc/openmpi \
           $L/cmake/spdlog $L/cmake/fmt /usr/share/cmake/nlohmann_json /usr/include/spdlog \
           /usr/include/fmt /usr/include/nlohmann /usr/include/openssl \
           /usr/include/x86_64-linux-gnu/openssl; do
    [ -d "$d" ] && mount --bind "$empty" "$d"
  done
  for f in $L/libmpi*.so.* $L/libopen-*.so.* $L/libpmix.so.* $L/libspdlog.so.* $L/libfmt.so.* \
           /usr/bin/orted /usr/bin/orterun /usr/include/zlib.h $L/pkgconfig/libcrypto.pc \
           $L/pkgconfig/zlib.pc; do
    [ -e "$f" ] && [ ! -L "$f" ] && mount --bind /dev/null "$f"
  done
  echo "gpu_check_selftest: system Open MPI, spdlog, fmt, nlohmann, OpenSSL/zlib headers hidden" \
    "($(ls $L/openmpi | wc -l) files left in $L/openmpi, $(ls /usr/include/openssl | wc -l) in /usr/include/openssl)"
  cd "$0"
  rm -rf build-gpu
  OUT="${OUT:-/tmp/gpu_check_selftest}" CLIPHBA_GPU_DEVICE=cpu \
    CLIPHBA_TORCH_DIR="${CLIPHBA_TORCH_DIR:-/usr/lib/x86_64-linux-gnu/cmake}" \
    CLIPHBA_GPU_ARGS="${CLIPHBA_GPU_ARGS:---models tiny --throughput tiny --steps 2}" \
    bash scripts/gpu_check.sh
' "$ROOT"
