#!/usr/bin/env bash
# Fetches, on a Debian 12 machine with apt (no root needed), the Debian packages that
# scripts/gpu_check.sh unpacks on a GPU node which lacks them and has no network: Open MPI (with
# the libraries it loads), spdlog, fmt, nlohmann-json, OpenSSL's libcrypto and zlib. About 13 MB of
# .deb files in .gpu/debs (ignored by git); carry that folder to the GPU node with the checkout.
#
#   scripts/gpu_deps.sh [DIR]      # default: .gpu/debs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${1:-$ROOT/.gpu/debs}"
PACKAGES=(
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common  # MPI: the NCCL id travels over it
  libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7 libpmix2 libmunge2  # what libmpi loads
  libfabric1 libucx0 libibverbs1 librdmacm1 libpsm2-2 libpsm-infinipath1 libnl-3-200
  libnl-route-3-200 libnuma1
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 nlohmann-json3-dev  # cliphba_core's logging
  libssl-dev libssl3 zlib1g-dev zlib1g                          # SHA-256; checkpoint archives
)
mkdir -p "$DIR"
cd "$DIR"
apt-get download "${PACKAGES[@]}"
echo "gpu_deps.sh: $(ls "$DIR"/*.deb | wc -l) packages, $(du -sh "$DIR" | cut -f1) in $DIR"
