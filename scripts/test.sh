#!/usr/bin/env bash
# Set-up if needed, then the whole test suite (unit tests and MPI tests under mpirun -np 1, 2, 3).
# Extra arguments go to ctest, e.g. scripts/test.sh -L mpi   or   scripts/test.sh -R Rsa
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
cd "$BUILD_DIR"
ctest --output-on-failure -j "${CLIPHBA_TEST_JOBS:-2}" --timeout 900 "$@"
